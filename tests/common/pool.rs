//! A floating pool as tests drive it: the vendor sells a floating
//! entitlement, the customer's server machine activates it offline, and
//! `nodelock pool serve` runs on it.

use std::io::BufRead;
use std::path::PathBuf;

use super::desk::{Vendor, activate_offline};
use super::*;

/// The pool server's machine (a fixture other than the clients' laptop).
pub const SERVER_MACHINE: &str = "vmware-guest.json";

/// A pool server's machine with the pool license installed in its store.
pub struct PoolSite {
    pub vendor: Vendor,
    pub server: Env,
    pub license: PathBuf,
}

/// Sells a floating entitlement of `seats` (with `extra` flags) and
/// activates it on the server machine.
pub fn pool_site(seats: u32, extra: &[&str]) -> PoolSite {
    let vendor = Vendor::new();
    let mut args = vec!["--kind", "floating"];
    args.extend(extra);
    let key = vendor.entitlement(seats, &args);
    let server = Env::new().on(SERVER_MACHINE).at("2026-06-01");
    let license = activate_offline(&vendor, &server, &key, "pool");
    PoolSite {
        vendor,
        server,
        license,
    }
}

/// A running `nodelock pool serve`.
pub struct PoolServer {
    pub child: std::process::Child,
    pub url: String,
}

impl PoolServer {
    /// Starts the pool server of `site`'s store, on `site.server`'s machine
    /// and clock (`now` overrides the clock; empty: the real one).
    pub fn start(site: &Env, now: &str) -> PoolServer {
        PoolServer::try_start(site, now, &[]).unwrap_or_else(|out| panic!("pool serve failed: {out}"))
    }

    pub fn try_start(site: &Env, now: &str, extra: &[&str]) -> Result<PoolServer, String> {
        PoolServer::try_start_on(site, now, "127.0.0.1:0", extra)
    }

    /// The same on a given address (a restart on the same port).
    pub fn try_start_on(site: &Env, now: &str, listen: &str, extra: &[&str]) -> Result<PoolServer, String> {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            facts: site.facts.clone(),
            now: now.into(),
        };
        let mut child = env
            .std_cmd()
            .args([
                "pool",
                "serve",
                "--listen",
                listen,
                "--store",
                site.store().to_str().unwrap(),
            ])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.is_empty() {
            let out = child.wait_with_output().unwrap();
            return Err(format!(
                "exit {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let url = line
            .split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        Ok(PoolServer { child, url })
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PoolServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pool status --json` from the server at `url`.
pub fn pool_status(env: &Env, url: &str) -> serde_json::Value {
    let out = env.run(&["pool", "status", "--server", url, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    json(&out)
}

/// `lease checkout surveyor --json` from `ws` against the pool at `url`.
pub fn checkout(ws: &Env, url: &str) -> std::process::Output {
    checkout_as(ws, url, None)
}

/// The same as the user `user` (the label the client sends), when given.
pub fn checkout_as(ws: &Env, url: &str, user: Option<&str>) -> std::process::Output {
    let store = ws.store();
    let mut cmd = ws.std_cmd();
    if let Some(user) = user {
        cmd.env("USER", user);
    }
    cmd.args(["lease", "checkout", "surveyor", "--server", url, "--pubkey"])
        .arg(fixture(VENDOR_PUB))
        .args(["--json", "--store", store.to_str().unwrap()])
        .output()
        .unwrap()
}

/// An address on loopback no one listens on yet, for a server that must
/// restart on the same port.
pub fn free_listen() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}
