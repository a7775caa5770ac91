//! Secrets are owner-only whatever the umask: the vendor's key directory, its
//! ledger, and the store's key directories; a group- or world-readable
//! signing key is named loudly before it is used.
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs `nodelock ARGS` under umask 000, as a careless service unit might.
fn run_with_open_umask(env: &Env, args: &[&str]) -> std::process::Output {
    let mut script = String::from("umask 000; exec \"$0\"");
    for (i, _) in args.iter().enumerate() {
        script.push_str(&format!(" \"${}\"", i + 1));
    }
    let cmd = env.std_cmd();
    let program = env!("CARGO_BIN_EXE_nodelock");
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c").arg(script).arg(program).args(args);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.current_dir(env.dir.path());
    sh.output().unwrap()
}

#[test]
fn vendor_keys_and_ledger_are_owner_only_under_any_umask() {
    let env = Env::new();
    let keys = env.path("vendor-keys");
    let out = run_with_open_umask(&env, &["vendor", "keygen", "--out", keys.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode(&keys), 0o700, "key directory");
    assert_eq!(mode(&keys.join("vendor.key")), 0o600, "private key");

    let ledger = env.path("ledger-dir/ledger.sqlite");
    let out = run_with_open_umask(
        &env,
        &[
            "vendor",
            "entitlement",
            "create",
            "--ledger",
            ledger.to_str().unwrap(),
            "--product",
            "surveyor",
            "--seats",
            "1",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode(ledger.parent().unwrap()), 0o700, "ledger directory");
    for file in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
        let path = ledger.with_file_name(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
}

#[test]
fn store_key_directories_are_owner_only_under_any_umask() {
    let vendor = Env::new();
    let key = entitlement(&vendor, &vendor.path("ledger.sqlite"), 1);
    let ws = Env::new().on("laptop.json");
    let store = ws.store();
    let req = ws.path("a.req");
    let out = run_with_open_umask(
        &ws,
        &[
            "request",
            &key,
            "-o",
            req.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for dir in ["", "pending", "keys"] {
        assert_eq!(mode(&store.join(dir)), 0o700, "store/{dir}");
    }
}

#[test]
fn a_signing_key_others_can_read_is_named_before_use() {
    let env = Env::new().on("laptop.json");
    let key = env.path("vendor.key");
    std::fs::copy(fixture(VENDOR_KEY), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let report = env.report("laptop.json");
    let issue = |env: &Env| {
        env.run(&[
            "vendor",
            "issue",
            "--signing-key",
            key.to_str().unwrap(),
            "--fingerprint",
            report.to_str().unwrap(),
            "--product",
            "surveyor",
            "-o",
            env.path("x.lic").to_str().unwrap(),
        ])
    };
    let out = issue(&env);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("readable by others"), "{}", stderr(&out));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = issue(&env);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("readable by others"), "{}", stderr(&out));
}
