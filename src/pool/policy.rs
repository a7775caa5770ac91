//! Who may take a seat: the admin's policy file (FlexNet's options file),
//! `pool-policy.toml` in the pool server's store, read again whenever it
//! changes, so an edit applies without a restart.
//!
//! ```toml
//! allow_users = ["anna", "bob"]      # only these (empty or absent: everyone)
//! deny_users = ["mallory"]
//! allow_hosts = []
//! deny_hosts = ["kiosk-3"]
//! allow_subnets = ["10.1.0.0/16"]    # client addresses
//! deny_subnets = []
//! max_per_user = 2                   # seats one user may hold at once
//! borrow_max_days = 3                # never more than the pool license allows
//! return_on_reconnect = true         # borrows go back when the laptop is back
//! show_holders = false               # a full pool does not name who holds its seats
//! group = "user"                     # one seat per user, however many checkouts
//!                                    # ("host", "workstation"; absent: one per checkout)
//! [reserved]
//! seats = 2                          # kept for these users
//! users = ["anna", "bob"]
//! ```
//!
//! User and host names are the labels the client sends, as in FlexNet: they
//! steer fair sharing among colleagues, not a boundary against someone who
//! lies about their name (subnets are the server's own view of the peer).
//! Every denial names the rule that made it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

/// The policy, as the file says it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    allow_users: Vec<String>,
    #[serde(default)]
    deny_users: Vec<String>,
    #[serde(default)]
    allow_hosts: Vec<String>,
    #[serde(default)]
    deny_hosts: Vec<String>,
    #[serde(default)]
    allow_subnets: Vec<String>,
    #[serde(default)]
    deny_subnets: Vec<String>,
    max_per_user: Option<u32>,
    borrow_max_days: Option<u32>,
    #[serde(default)]
    return_on_reconnect: bool,
    show_holders: Option<bool>,
    group: Option<Group>,
    reserved: Option<Reserved>,
}

/// What groups checkouts into one seat (FlexNet's DUP_GROUP).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// One seat per user label.
    User,
    /// One seat per host label.
    Host,
    /// One seat per workstation id (the client's fingerprint).
    Workstation,
}

/// Seats kept for a group.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Reserved {
    seats: u32,
    #[serde(default)]
    users: Vec<String>,
}

/// Who asks, as the policy sees them.
pub struct Asker<'a> {
    /// The user label.
    pub user: Option<&'a str>,
    /// The host label.
    pub host: Option<&'a str>,
    /// The peer address.
    pub address: Option<IpAddr>,
}

/// Why the policy file could not be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "the pool policy {path} cannot be used: {reason}; fix it (the server keeps the last good policy meanwhile)"
)]
pub struct PolicyError {
    path: String,
    reason: String,
}

fn subnet_contains(subnet: &str, address: IpAddr) -> Option<bool> {
    let (base, bits) = subnet
        .split_once('/')
        .map_or((subnet, None), |(b, n)| (b, Some(n)));
    let base: IpAddr = base.trim().parse().ok()?;
    match (base, address) {
        (IpAddr::V4(b), IpAddr::V4(a)) => {
            let n: u32 = bits.map_or(Some(32), |n| n.trim().parse().ok())?;
            let mask = if n == 0 {
                0
            } else {
                u32::MAX.checked_shl(32 - n.min(32))?
            };
            Some(u32::from(b) & mask == u32::from(a) & mask)
        }
        (IpAddr::V6(b), IpAddr::V6(a)) => {
            let n: u32 = bits.map_or(Some(128), |n| n.trim().parse().ok())?;
            let mask = if n == 0 {
                0
            } else {
                u128::MAX.checked_shl(128 - n.min(128))?
            };
            Some(u128::from(b) & mask == u128::from(a) & mask)
        }
        _ => Some(false),
    }
}

impl Policy {
    /// Reads a policy text, refusing unknown keys and subnets that do not parse.
    pub fn parse(text: &str, origin: &Path) -> Result<Policy, PolicyError> {
        let err = |reason: String| PolicyError {
            path: origin.display().to_string(),
            reason,
        };
        let policy: Policy = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        for subnet in policy.allow_subnets.iter().chain(&policy.deny_subnets) {
            if subnet_contains(subnet, IpAddr::from([0, 0, 0, 0])).is_none() {
                return Err(err(format!(
                    "'{subnet}' is not an address or subnet (10.0.0.0/8, fd00::/8)"
                )));
            }
        }
        Ok(policy)
    }

    /// Whether borrows are given back the first time the laptop reaches the
    /// pool again after being away (the client does it; see
    /// `online::pool::return_on_reconnect`).
    pub fn returns_on_reconnect(&self) -> bool {
        self.return_on_reconnect
    }

    /// The seat key a checkout by `user`, `host` on `workstation` shares
    /// under the policy's `group` (none: it takes a seat of its own; so does
    /// a checkout without the label the group needs).
    pub fn seat_key(&self, user: Option<&str>, host: Option<&str>, workstation: &str) -> Option<String> {
        match self.group? {
            Group::User => user.map(|u| format!("user:{u}")),
            Group::Host => host.map(|h| format!("host:{h}")),
            Group::Workstation => Some(format!("workstation:{workstation}")),
        }
    }

    /// Whether a refusal for a full pool names who holds the seats (the
    /// default; an admin may keep the names to the status view).
    pub fn shows_holders(&self) -> bool {
        self.show_holders.unwrap_or(true)
    }

    /// Whether it limits the seats one user holds (only then are they counted).
    pub fn limits_per_user(&self) -> bool {
        self.max_per_user.is_some()
    }

    /// Whether `asker` may take a seat now, given the seats in use, the
    /// seats this user holds, the pool's size and whether it is a borrow of
    /// `days`; `Err` names the rule.
    pub fn admits(
        &self,
        asker: &Asker<'_>,
        in_use: usize,
        held_by_user: usize,
        seats: u32,
        borrow_days: Option<u32>,
    ) -> Result<(), String> {
        let user = asker.user.unwrap_or("");
        let host = asker.host.unwrap_or("");
        let named = |list: &[String], name: &str| list.iter().any(|n| n == name);
        if named(&self.deny_users, user) {
            return Err(format!("user '{user}' is denied by deny_users"));
        }
        if !self.allow_users.is_empty() && !named(&self.allow_users, user) {
            return Err(format!("user '{user}' is not in allow_users"));
        }
        if named(&self.deny_hosts, host) {
            return Err(format!("host '{host}' is denied by deny_hosts"));
        }
        if !self.allow_hosts.is_empty() && !named(&self.allow_hosts, host) {
            return Err(format!("host '{host}' is not in allow_hosts"));
        }
        if let Some(address) = asker.address {
            if let Some(subnet) = self
                .deny_subnets
                .iter()
                .find(|s| subnet_contains(s, address) == Some(true))
            {
                return Err(format!("address {address} is in deny_subnets ({subnet})"));
            }
            if !self.allow_subnets.is_empty()
                && !self
                    .allow_subnets
                    .iter()
                    .any(|s| subnet_contains(s, address) == Some(true))
            {
                return Err(format!("address {address} is in no subnet of allow_subnets"));
            }
        }
        if let Some(max) = self.max_per_user
            && held_by_user >= max as usize
        {
            return Err(format!(
                "user '{user}' already holds {held_by_user} seat(s), the max_per_user of {max}"
            ));
        }
        if let (Some(days), Some(max)) = (borrow_days, self.borrow_max_days)
            && days > max
        {
            return Err(format!(
                "a borrow may last at most {max} day(s) here (borrow_max_days)"
            ));
        }
        if let Some(reserved) = &self.reserved
            && !named(&reserved.users, user)
            && in_use + reserved.seats as usize >= seats as usize
        {
            return Err(format!(
                "the last {} seat(s) are reserved for {} (reserved)",
                reserved.seats,
                reserved.users.join(", ")
            ));
        }
        Ok(())
    }
}

/// How long after its last change a policy file counts as written.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// The policy file, read again when it changes. A file that stops parsing
/// keeps the last good policy in force (and says so in the log).
pub struct PolicyFile {
    path: PathBuf,
    seen: Option<SystemTime>,
    policy: Policy,
}

impl PolicyFile {
    /// The policy at `path` (none there: everyone may take a seat).
    pub fn load(path: PathBuf) -> Result<PolicyFile, PolicyError> {
        let mut file = PolicyFile {
            path,
            seen: None,
            policy: Policy::default(),
        };
        if let Some(e) = file.refresh() {
            return Err(e);
        }
        Ok(file)
    }

    /// Reads the file again if it changed; returns the error when it no
    /// longer parses (the previous policy stays).
    pub fn refresh(&mut self) -> Option<PolicyError> {
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if modified == self.seen {
            return None;
        }
        // A file changed within the last moments may still be being written
        // (and a second write can keep its time): read it again next time,
        // until its time has settled.
        let settled = modified
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= SETTLE);
        self.seen = if settled || modified.is_none() {
            modified
        } else {
            None
        };
        if modified.is_none() {
            self.policy = Policy::default();
            return None;
        }
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => {
                return Some(PolicyError {
                    path: self.path.display().to_string(),
                    reason: e.to_string(),
                });
            }
        };
        match Policy::parse(&text, &self.path) {
            Ok(p) => {
                self.policy = p;
                None
            }
            Err(e) => Some(e),
        }
    }

    /// [`refresh`](Self::refresh), with a failure written to the log (the
    /// previous policy stays in force).
    pub fn refresh_logged(&mut self) {
        if let Some(e) = self.refresh() {
            tracing::warn!(target: "nodelock::pool", error = %e, "policy file");
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asker<'a>(user: &'a str, address: &str) -> Asker<'a> {
        Asker {
            user: Some(user),
            host: Some("h"),
            address: address.parse().ok(),
        }
    }

    #[test]
    fn each_rule_admits_or_names_itself() {
        let p = Policy::parse(
            r#"
            deny_users = ["mallory"]
            allow_subnets = ["10.1.0.0/16", "fd00::/8"]
            max_per_user = 1
            borrow_max_days = 2
            [reserved]
            seats = 1
            users = ["anna"]
            "#,
            Path::new("p.toml"),
        )
        .unwrap();
        assert!(p.admits(&asker("bob", "10.1.2.3"), 0, 0, 3, None).is_ok());
        assert!(p.admits(&asker("bob", "fd00::1"), 0, 0, 3, None).is_ok());
        let no = |r: Result<(), String>| r.unwrap_err();
        assert!(no(p.admits(&asker("mallory", "10.1.2.3"), 0, 0, 3, None)).contains("deny_users"));
        assert!(no(p.admits(&asker("bob", "10.2.0.1"), 0, 0, 3, None)).contains("allow_subnets"));
        assert!(no(p.admits(&asker("bob", "10.1.2.3"), 0, 1, 3, None)).contains("max_per_user"));
        assert!(no(p.admits(&asker("bob", "10.1.2.3"), 0, 0, 3, Some(3))).contains("borrow_max_days"));
        assert!(no(p.admits(&asker("bob", "10.1.2.3"), 2, 0, 3, None)).contains("reserved"));
        assert!(p.admits(&asker("anna", "10.1.2.3"), 2, 0, 3, None).is_ok());
    }

    #[test]
    fn a_second_write_that_keeps_the_file_s_time_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool-policy.toml");
        std::fs::write(&path, "deny_users = [\"anna\"]\n").unwrap();
        let time = std::fs::metadata(&path).unwrap().modified().unwrap();
        let mut file = PolicyFile::load(path.clone()).unwrap();
        assert!(
            file.policy()
                .admits(&asker("anna", "10.0.0.1"), 0, 0, 3, None)
                .is_err()
        );
        // Rewritten within the same tick of the file system's clock.
        std::fs::write(&path, "deny_users = [\"bob\"]\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(time)
            .unwrap();
        assert!(file.refresh().is_none());
        assert!(
            file.policy()
                .admits(&asker("anna", "10.0.0.1"), 0, 0, 3, None)
                .is_ok()
        );
        assert!(
            file.policy()
                .admits(&asker("bob", "10.0.0.1"), 0, 0, 3, None)
                .is_err()
        );
    }

    #[test]
    fn a_policy_that_does_not_parse_is_refused_with_its_reason() {
        for text in [
            "allow_users = 3",
            "unknown_rule = true",
            "allow_subnets = [\"10.0.0/99x\"]",
        ] {
            assert!(Policy::parse(text, Path::new("p.toml")).is_err(), "{text}");
        }
        assert_eq!(
            subnet_contains("10.0.0.0/8", "10.255.1.1".parse().unwrap()),
            Some(true)
        );
        assert_eq!(
            subnet_contains("10.0.0.0/8", "11.0.0.1".parse().unwrap()),
            Some(false)
        );
        assert_eq!(
            subnet_contains("0.0.0.0/0", "11.0.0.1".parse().unwrap()),
            Some(true)
        );
        assert_eq!(
            subnet_contains("192.168.1.7", "192.168.1.7".parse().unwrap()),
            Some(true)
        );
    }
}
