//! Does a binding hold on this machine? The tolerant match policy.
//!
//! Components are compared by name. For names that can occur several times
//! (disks, MACs) the component matches when any bound digest is still present,
//! so an added dongle or a removed Wi-Fi card changes nothing. A name missing on
//! either side is *unknown*, which is neither a match nor a mismatch.
//!
//! A strong binding (one with hardware anchors) holds when at least one anchor
//! still matches **and** more anchors match than changed. The machine id never
//! counts here: images and clones copy it, so on its own it would let a clone
//! pass. A clone-only binding (no anchor was found when it was made) holds when
//! its machine id matches and the license's policy allows such bindings; the
//! answer then carries the clone warning. Descriptive components (CPU, memory,
//! host name, OS) are reported but never decide.

use serde::Serialize;

use super::{CLONE_ONLY_WARNING, ComponentClass, ComponentName, Fingerprint, Identity};

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The binding holds on this machine.
    Holds,
    /// It does not.
    Fails,
}

/// What happened to one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentOutcome {
    /// Still present (for disks and MACs: at least one bound value is).
    Matched,
    /// Known on both sides and different.
    Changed,
    /// Not known on one side.
    Unknown,
}

/// One component's comparison; counts, never values.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentMatch {
    /// Component name.
    pub name: ComponentName,
    /// Its class.
    pub class: ComponentClass,
    /// The outcome.
    pub outcome: ComponentOutcome,
    /// Values bound.
    pub bound: usize,
    /// Values present now.
    pub current: usize,
    /// Bound values still present.
    pub matched: usize,
}

/// The full comparison, for people and for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct MatchReport {
    /// Holds or fails.
    pub verdict: Verdict,
    /// The binding's identity strength.
    pub identity: Identity,
    /// Anchors that still match.
    pub anchors_matched: usize,
    /// Anchors known on both sides that differ.
    pub anchors_changed: usize,
    /// One sentence: why it holds or fails.
    pub reason: String,
    /// The clone warning, for clone-only bindings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Per component.
    pub components: Vec<ComponentMatch>,
}

impl MatchReport {
    /// Names of the components that changed, for a one-line denial.
    pub fn changed(&self) -> Vec<ComponentName> {
        self.components
            .iter()
            .filter(|c| c.outcome == ComponentOutcome::Changed)
            .map(|c| c.name)
            .collect()
    }
}

/// Compares a bound fingerprint with the current one.
pub fn compare(bound: &Fingerprint, current: &Fingerprint, allow_clone_only: bool) -> MatchReport {
    let mut components = Vec::new();
    for name in ComponentName::ALL {
        let b = bound.digests(name);
        let c = current.digests(name);
        if b.is_empty() && c.is_empty() {
            continue;
        }
        let matched = b.intersection(&c).count();
        let outcome = if b.is_empty() || c.is_empty() {
            ComponentOutcome::Unknown
        } else if matched > 0 {
            ComponentOutcome::Matched
        } else {
            ComponentOutcome::Changed
        };
        components.push(ComponentMatch {
            name,
            class: name.class(),
            outcome,
            bound: b.len(),
            current: c.len(),
            matched,
        });
    }
    let count = |outcome| {
        components
            .iter()
            .filter(|c| c.class == ComponentClass::Anchor && c.outcome == outcome)
            .count()
    };
    let anchors_matched = count(ComponentOutcome::Matched);
    let anchors_changed = count(ComponentOutcome::Changed);
    let identity = bound.identity();
    let machine_id = components
        .iter()
        .find(|c| c.name == ComponentName::MachineId)
        .map(|c| c.outcome);

    let (verdict, reason) = match identity {
        Identity::Strong if anchors_matched >= 1 && anchors_matched > anchors_changed => (
            Verdict::Holds,
            format!("{anchors_matched} hardware identifier(s) of the licensed machine still match"),
        ),
        Identity::Strong if anchors_matched == 0 && anchors_changed == 0 => (
            Verdict::Fails,
            "none of the licensed machine's hardware identifiers can be read here; run as the same user (or as root) as when the license was requested".to_owned(),
        ),
        Identity::Strong if anchors_matched == 0 => (
            Verdict::Fails,
            "none of the licensed machine's hardware identifiers is present: this is another machine".to_owned(),
        ),
        Identity::Strong => (
            Verdict::Fails,
            format!("{anchors_changed} hardware identifier(s) changed and only {anchors_matched} still match"),
        ),
        Identity::CloneOnly if !allow_clone_only => (
            Verdict::Fails,
            "the license requires a hardware identifier, and it was bound to a machine without one".to_owned(),
        ),
        Identity::CloneOnly if machine_id == Some(ComponentOutcome::Matched) => {
            (Verdict::Holds, "the OS installation id matches".to_owned())
        }
        Identity::CloneOnly => (Verdict::Fails, "the OS installation id differs: this is another machine or a reinstalled one".to_owned()),
    };
    MatchReport {
        verdict,
        identity,
        anchors_matched,
        anchors_changed,
        reason,
        warning: (identity == Identity::CloneOnly).then(|| CLONE_ONLY_WARNING.to_owned()),
        components,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::facts::{Facts, Interface};

    fn nic(name: &str, mac: &str) -> Interface {
        Interface {
            name: Some(name.into()),
            mac: Some(mac.into()),
            physical: Some(true),
        }
    }

    fn machine(mid: &str, uuid: Option<&str>, disk: Option<&str>, macs: &[(&str, &str)]) -> Fingerprint {
        let mut f = Facts::empty();
        f.machine_id = Some(mid.into());
        f.product_uuid = uuid.map(Into::into);
        f.disk_serials = disk.map(|d| vec![d.to_owned()]);
        f.network = Some(macs.iter().map(|(n, m)| nic(n, m)).collect());
        Fingerprint::from_facts(&f).unwrap()
    }

    #[test]
    fn unknown_is_not_a_mismatch() {
        let bound = machine(
            "m1",
            Some("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
            Some("D1"),
            &[("e", "3c:52:82:aa:bb:cc")],
        );
        let user = machine("m1", None, Some("D1"), &[("e", "3c:52:82:aa:bb:cc")]);
        let r = compare(&bound, &user, true);
        assert_eq!(r.verdict, Verdict::Holds, "{}", r.reason);
        assert_eq!(r.anchors_changed, 0);
    }

    #[test]
    fn copied_machine_id_alone_never_passes_a_strong_binding() {
        let bound = machine(
            "m1",
            Some("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
            None,
            &[("e", "3c:52:82:aa:bb:cc")],
        );
        let clone = machine(
            "m1",
            Some("2c5f39cb-2fa1-11d2-883f-0016d3cca428"),
            None,
            &[("e", "3c:52:82:aa:bb:dd")],
        );
        let r = compare(&bound, &clone, true);
        assert_eq!(r.verdict, Verdict::Fails);
        assert_eq!(r.changed(), vec![ComponentName::ProductUuid, ComponentName::Mac]);
    }

    #[test]
    fn more_changed_than_matched_fails() {
        let bound = machine(
            "m1",
            Some("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
            Some("D1"),
            &[("e", "3c:52:82:aa:bb:cc")],
        );
        let moved_disk = machine(
            "m2",
            Some("2c5f39cb-2fa1-11d2-883f-0016d3cca428"),
            Some("D1"),
            &[("e", "3c:52:82:aa:bb:dd")],
        );
        assert_eq!(compare(&bound, &moved_disk, true).verdict, Verdict::Fails);
    }

    #[test]
    fn clone_only_binding_follows_policy() {
        let bound = machine("m1", None, None, &[]);
        assert_eq!(
            compare(&bound, &machine("m1", None, None, &[]), true).verdict,
            Verdict::Holds
        );
        assert!(
            compare(&bound, &machine("m1", None, None, &[]), true)
                .warning
                .is_some()
        );
        assert_eq!(
            compare(&bound, &machine("m1", None, None, &[]), false).verdict,
            Verdict::Fails
        );
        assert_eq!(
            compare(&bound, &machine("m2", None, None, &[]), true).verdict,
            Verdict::Fails
        );
    }
}
