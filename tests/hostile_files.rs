//! Files that are not what they seem: endless devices, FIFOs and links where
//! documents, keys and store records belong. nodelock caps what it reads by
//! the bytes it actually reads (not the size a file reports), opens only
//! regular files, and does not follow links inside its store.
#![cfg(unix)]

mod common;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::desk::import;
use common::*;

/// Runs `nodelock` and fails the test if it does not finish within 20 s
/// (a hang on a FIFO or an endless read is the bug being tested).
fn run_bounded(env: &Env, args: &[&str]) -> Output {
    let mut child = env
        .std_cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("nodelock {args:?} did not finish in 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// [`run_bounded`] on the env's store (`--store` appended).
fn run_bounded_store(env: &Env, args: &[&str]) -> Output {
    let store = env.store();
    let mut all = args.to_vec();
    all.extend(["--store", store.to_str().unwrap()]);
    run_bounded(env, &all)
}

fn installed() -> Env {
    let env = Env::new().on("laptop.json");
    let lic = env.issue("laptop.json", "surveyor", &[]);
    let out = import(&env, &lic);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env
}

#[test]
fn endless_devices_are_refused_after_a_capped_read() {
    let env = installed();
    let lic = license_file(&env.store(), "surveyor");
    for args in [
        vec!["verify", "--pubkey", "/dev/zero", lic.to_str().unwrap()],
        vec![
            "verify",
            "--pubkey",
            fixture(VENDOR_PUB).to_str().unwrap(),
            "/dev/zero",
        ],
        vec!["fingerprint", "--facts", "/dev/zero"],
    ] {
        let out = run_bounded(&env, &args);
        assert_eq!(code(&out), 3, "{args:?}: {}", stderr(&out));
        assert_one_sentence(&out);
    }
    let out = run_bounded(
        &env,
        &[
            "vendor",
            "issue",
            "--signing-key",
            fixture(VENDOR_KEY).to_str().unwrap(),
            "--fingerprint",
            "/dev/zero",
            "--product",
            "surveyor",
            "-o",
            env.path("x.lic").to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(!env.path("x.lic").exists());
}

#[test]
fn a_fifo_in_the_store_does_not_hang_status_check_or_deactivate() {
    let env = installed();
    mkfifo(&license_file(&env.store(), "designer"));
    let out = run_bounded_store(&env, &["status", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let states: Vec<String> = json(&out)["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["damaged", "valid"]);
    let out = run_bounded_store(&env, &["check", "--product", "designer"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_one_sentence(&out);
    let out = run_bounded_store(&env, &["check", "--product", "surveyor"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // deactivate looks through every installed license, under the store lock.
    let out = run_bounded_store(
        &env,
        &[
            "deactivate",
            "L-NOSUCHLICENSE00",
            "-o",
            env.path("d.deact").to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 29, "{}", stderr(&out));
}

#[test]
fn links_in_the_store_are_not_followed() {
    let env = installed();
    // A trust root pointing at an endless device is not a trust root.
    std::os::unix::fs::symlink("/dev/zero", env.store().join("trust/zero.pub")).unwrap();
    let out = run_bounded_store(&env, &["check", "--product", "surveyor"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A dangling .lock link is refused, and its target is not created.
    let target = env.path("created-by-nodelock");
    std::fs::remove_file(env.store().join(".lock")).ok();
    std::os::unix::fs::symlink(&target, env.store().join(".lock")).unwrap();
    let lic = env.issue("laptop.json", "designer", &[]);
    let out = run_bounded_store(
        &env,
        &[
            "import",
            "--pubkey",
            fixture(VENDOR_PUB).to_str().unwrap(),
            lic.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_one_sentence(&out);
    assert!(
        !target.exists(),
        "nodelock created the target of a link in its store"
    );
    assert!(!license_file(&env.store(), "designer").exists());
}
