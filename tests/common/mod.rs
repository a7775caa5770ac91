//! Helpers shared by the end-to-end tests: run the debug `nodelock` binary as
//! if on a fixture machine at a fixed time, with a private store.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Output;

use std::io::BufRead;

use assert_cmd::Command;

pub mod desk;
pub mod http;
pub mod pool;

pub fn fixture(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel);
    // Git keeps no mode but the executable bit, so a checkout leaves the
    // TEST-ONLY private keys group- and world-readable, and nodelock warns
    // about signing keys others can read. Give them the mode a private key has.
    #[cfg(unix)]
    if rel.ends_with(".key") {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    path
}

pub fn machine(name: &str) -> PathBuf {
    fixture(&format!("machines/{name}"))
}

pub const VENDOR_KEY: &str = "keys/TEST-ONLY-vendor.key";
pub const VENDOR_PUB: &str = "keys/TEST-ONLY-vendor.pub";
pub const OTHER_PUB: &str = "keys/TEST-ONLY-other-vendor.pub";

/// The facts (JSON) of machine number `n` of a fleet (see [`Env::nth_machine`]).
pub fn nth_machine_facts(n: usize) -> String {
    let mut facts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(machine("laptop.json")).unwrap()).unwrap();
    facts["machine_id"] = format!("{n:032x}").into();
    facts["product_uuid"] = format!("4c4c4544-0000-0000-0000-{n:012x}").into();
    facts["board_serial"] = format!("FLEET{n}").into();
    facts["disk_serials"] = serde_json::json!([format!("FLEETDISK{n}")]);
    facts["network"] = serde_json::json!([{
        "name": "eth0",
        "mac": format!("a4:5e:60:{:02x}:{:02x}:{:02x}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff),
        "physical": true,
    }]);
    facts.to_string()
}

/// A workstation (or vendor desk) in a temporary directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub facts: Option<PathBuf>,
    pub now: String,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            facts: None,
            now: "2026-06-01".into(),
        }
    }

    pub fn on(mut self, machine_file: &str) -> Env {
        self.facts = Some(machine(machine_file));
        self
    }

    /// Machine number `n` of a fleet: the laptop fixture with every
    /// identifier made its own (one machine asking twice takes one seat, so
    /// seat counting needs many machines).
    pub fn nth_machine(mut self, n: usize) -> Env {
        let path = self.path("machine.json");
        std::fs::write(&path, nth_machine_facts(n)).unwrap();
        self.facts = Some(path);
        self
    }

    /// Uses the system clock (for tests against a running server, which does).
    pub fn real_clock(mut self) -> Env {
        self.now = String::new();
        self
    }

    pub fn at(mut self, now: &str) -> Env {
        self.now = now.into();
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// A `nodelock` command with the machine, clock and store of this env.
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// The same, as a plain `std::process::Command` (to spawn and kill).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_nodelock"));
        // Files a command writes by default (left-behind request files) land in
        // the test's own directory, never in the source tree.
        cmd.current_dir(self.dir.path());
        cmd.env_remove("NODELOCK_STORE");
        // An empty `now` means the real clock (tests against a live server).
        if self.now.is_empty() {
            cmd.env_remove("NODELOCK_TEST_NOW");
        } else {
            cmd.env("NODELOCK_TEST_NOW", &self.now);
        }
        match &self.facts {
            Some(f) => cmd.env("NODELOCK_TEST_FACTS", f),
            None => cmd.env_remove("NODELOCK_TEST_FACTS"),
        };
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.std_cmd().args(args).output().unwrap()
    }

    /// Runs with `--store` appended.
    pub fn run_store(&self, args: &[&str]) -> Output {
        let store = self.store();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--store", store.to_str().unwrap()]);
        self.run(&all)
    }

    /// The `fingerprint --json` report of `machine_file`, written into the env.
    pub fn report(&self, machine_file: &str) -> PathBuf {
        let out = self.run(&[
            "fingerprint",
            "--json",
            "--facts",
            machine(machine_file).to_str().unwrap(),
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let path = self.path(&format!("{machine_file}.fp.json"));
        std::fs::write(&path, &out.stdout).unwrap();
        path
    }

    /// Issues a license for `product` bound to `machine_file` with extra flags.
    pub fn issue(&self, machine_file: &str, product: &str, extra: &[&str]) -> PathBuf {
        let fp = self.report(machine_file);
        let out_path = self.path(&format!("{product}-{machine_file}.lic"));
        let key = fixture(VENDOR_KEY);
        let mut args = vec![
            "vendor",
            "issue",
            "--signing-key",
            key.to_str().unwrap(),
            "--fingerprint",
            fp.to_str().unwrap(),
            "--product",
            product,
            "-o",
            out_path.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = self.run(&args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        out_path
    }
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// Every stderr message is one line: a sentence, not a backtrace.
pub fn assert_one_sentence(out: &Output) {
    let err = stderr(out);
    assert!(err.starts_with("nodelock: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// A running `nodelock vendor serve`.
pub struct Server {
    pub child: std::process::Child,
    pub url: String,
}

impl Server {
    pub fn start(ledger: &Path) -> Server {
        Server::start_with(ledger, &[])
    }

    /// A server with extra `vendor serve` arguments (limits, timeouts).
    pub fn start_with(ledger: &Path, extra: &[&str]) -> Server {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nodelock"))
            .args([
                "vendor",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--ledger",
                ledger.to_str().unwrap(),
            ])
            .args([
                "--signing-key",
                fixture(VENDOR_KEY).to_str().unwrap(),
                "--workers",
                "2",
            ])
            .args(extra)
            .env("NODELOCK_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        Server { child, url }
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates an entitlement for `surveyor` in `ledger`; returns its activation key.
pub fn entitlement(env: &Env, ledger: &Path, seats: u32) -> String {
    let out = env.run(&[
        "vendor",
        "entitlement",
        "create",
        "--ledger",
        ledger.to_str().unwrap(),
        "--product",
        "surveyor",
        "--seats",
        &seats.to_string(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    json(&out)["activation_key"].as_str().unwrap().to_owned()
}

/// The bytes whose Crockford base32 spelling begins with `code` (bits past
/// the code are zero): what a scripted random source must hand out for an
/// identifier or activation key to come out as `code`.
pub fn base32_bytes(code: &str, len: usize) -> Vec<u8> {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut out = vec![0u8; len];
    for (i, c) in code.chars().enumerate() {
        let v = ALPHABET
            .find(c)
            .unwrap_or_else(|| panic!("'{c}' is not Crockford base32"));
        for k in 0..5 {
            if v & (0x10 >> k) != 0 {
                let bit = i * 5 + k;
                out[bit / 8] |= 0x80 >> (bit % 8);
            }
        }
    }
    out
}

/// The installed license file for `product` in `store`: the key-scoped name
/// (`<product>@<key id>.lic`) or the name stores used before (`<product>.lic`);
/// a path that does not exist when neither is there.
pub fn license_file(store: &Path, product: &str) -> PathBuf {
    let dir = store.join("licenses");
    let scoped = std::fs::read_dir(&dir).ok().and_then(|entries| {
        entries.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{product}@"))
        })
    });
    scoped.unwrap_or_else(|| dir.join(format!("{product}.lic")))
}

/// A document vector in `fixtures/documents`: `text` must reproduce it
/// byte for byte (`NODELOCK_WRITE_VECTORS=1` rewrites it after a deliberate
/// format change).
pub fn check_vector(name: &str, text: &str) {
    let path = fixture(&format!("documents/{name}"));
    if std::env::var_os("NODELOCK_WRITE_VECTORS").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "{name} no longer reproduces"
    );
}
