//! The two desks of the offline flow as tests drive them: the vendor's
//! (a ledger and the TEST-ONLY signing key) and a workstation's.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use super::*;

/// The vendor's desk: a ledger and the TEST-ONLY signing key.
pub struct Vendor {
    pub env: Env,
}

impl Vendor {
    pub fn new() -> Vendor {
        Vendor { env: Env::new() }
    }

    pub fn ledger(&self) -> PathBuf {
        self.env.path("ledger.sqlite")
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        let ledger = self.ledger();
        let mut all = args.to_vec();
        all.extend(["--ledger", ledger.to_str().unwrap(), "--operator", "support-anna"]);
        self.env.run(&all)
    }

    pub fn entitlement(&self, seats: u32, extra: &[&str]) -> String {
        let seats = seats.to_string();
        let mut args = vec![
            "vendor",
            "entitlement",
            "create",
            "--product",
            "surveyor",
            "--seats",
            &seats,
            "--json",
        ];
        args.extend(extra);
        let out = self.run(&args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        json(&out)["activation_key"].as_str().unwrap().to_owned()
    }

    pub fn answer(&self, request: &Path, out: &Path) -> std::process::Output {
        let key = fixture(VENDOR_KEY);
        self.run(&[
            "vendor",
            "answer",
            "--signing-key",
            key.to_str().unwrap(),
            request.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--json",
        ])
    }

    /// `vendor answer REQUEST -o OUT` as a process to spawn (and kill).
    pub fn answer_cmd(&self, request: &Path, out: &Path) -> std::process::Command {
        let mut cmd = self.env.std_cmd();
        cmd.args([
            "vendor",
            "answer",
            "--ledger",
            self.ledger().to_str().unwrap(),
            "--signing-key",
        ])
        .args([
            fixture(VENDOR_KEY).to_str().unwrap(),
            request.to_str().unwrap(),
            "-o",
        ])
        .arg(out)
        .stdout(Stdio::null());
        cmd
    }

    pub fn report(&self) -> Value {
        let out = self.run(&["vendor", "report", "--json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        json(&out)["entitlements"].clone()
    }

    pub fn used(&self) -> u64 {
        self.report()[0]["used"].as_u64().unwrap()
    }

    pub fn audit_events(&self) -> Vec<String> {
        let out = self.run(&["vendor", "audit", "--json"]);
        json(&out)["audit"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["event"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A workstation: a fixture machine with its own store.
pub fn workstation(machine_file: &str) -> Env {
    Env::new().on(machine_file).at("2026-06-01")
}

pub fn request(ws: &Env, key: &str, name: &str) -> PathBuf {
    let path = ws.path(name);
    let out = ws.run_store(&["request", key, "-o", path.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    path
}

pub fn import(ws: &Env, file: &Path) -> std::process::Output {
    ws.run_store(&[
        "import",
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        file.to_str().unwrap(),
        "--json",
    ])
}

pub fn license_id(ws: &Env) -> String {
    let out = ws.run_store(&["status", "--json"]);
    json(&out)["licenses"][0]["license_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every install key file in `dir` is owner-only, and there is at least one.
pub fn assert_owner_only_keys(dir: &Path) {
    let keys: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "key"))
        .collect();
    assert!(!keys.is_empty(), "no key in {}", dir.display());
    #[cfg(unix)]
    for k in keys {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            k.metadata().unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            k.path().display()
        );
    }
}

/// The whole offline activation: `ws` requests with `key` (`{stem}.req`),
/// the vendor answers (`{stem}.lic`), `ws` imports it. Returns the license file.
pub fn activate_offline(vendor: &Vendor, ws: &Env, key: &str, stem: &str) -> PathBuf {
    let req = request(ws, key, &format!("{stem}.req"));
    let lic = ws.path(&format!("{stem}.lic"));
    let out = vendor.answer(&req, &lic);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = import(ws, &lic);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    lic
}
