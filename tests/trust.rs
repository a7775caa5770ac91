//! Trust roots and vendor scoping in the workstation store: trusting a key is
//! an explicit act (`trust add`, or a `--pubkey` that verified an import,
//! named by its id), a key file dropped into `trust/` by hand is ignored, and
//! a product name is only unique within a vendor key.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A second vendor: a fresh key pair made by `vendor keygen`; (key, pub, id).
fn other_vendor(env: &Env) -> (PathBuf, PathBuf, String) {
    let dir = env.path("other-vendor");
    let out = env.run(&["vendor", "keygen", "--out", dir.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = json(&out)["key_id"].as_str().unwrap().to_owned();
    (dir.join("vendor.key"), dir.join("vendor.pub"), id)
}

fn key_id(env: &Env, pubkey: &Path) -> String {
    let dir = env.path("probe-store");
    let out = env.run(&[
        "trust",
        "add",
        pubkey.to_str().unwrap(),
        "--store",
        dir.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    json(&out)["key_id"].as_str().unwrap().to_owned()
}

#[test]
fn a_pubkey_that_verified_an_import_is_kept_and_named() {
    let env = Env::new().on("laptop.json");
    let lic = env.issue("laptop.json", "surveyor", &[]);
    let pubkey = fixture(VENDOR_PUB);
    let id = key_id(&env, &pubkey);
    let out = env.run_store(&[
        "import",
        "--pubkey",
        pubkey.to_str().unwrap(),
        lic.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("now trusts vendor key {id}")),
        "{}",
        stderr(&out)
    );
    // Later commands need no --pubkey, and the note is not repeated.
    let check = env.run_store(&["check", "--product", "surveyor"]);
    assert_eq!(code(&check), 0, "{}", stderr(&check));
    let list = json(&env.run_store(&["trust", "list", "--json"]));
    assert_eq!(list["key_ids"], serde_json::json!([id]));
    let again = env.run_store(&[
        "import",
        "--pubkey",
        pubkey.to_str().unwrap(),
        lic.to_str().unwrap(),
    ]);
    assert!(!stderr(&again).contains("now trusts"), "{}", stderr(&again));
}

#[test]
fn a_key_dropped_into_trust_by_hand_is_not_trusted() {
    let env = Env::new().on("laptop.json");
    let lic = env.issue("laptop.json", "surveyor", &[]);
    let pubkey = fixture(VENDOR_PUB);
    let out = env.run_store(&[
        "import",
        "--pubkey",
        pubkey.to_str().unwrap(),
        lic.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The same key, copied in by hand under another name instead.
    let trust = env.store().join("trust");
    for entry in std::fs::read_dir(&trust).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let dropped = trust.join("vendor.pub");
    std::fs::copy(&pubkey, &dropped).unwrap();
    let check = env.run_store(&["check", "--product", "surveyor", "--json"]);
    assert_eq!(code(&check), 11, "{}", stdout(&check));
    let list = json(&env.run_store(&["trust", "list", "--json"]));
    assert_eq!(list["key_ids"], serde_json::json!([]));
    assert_eq!(list["ignored"][0], dropped.display().to_string());
    // The printed next step, pasted as printed, makes it a trust root.
    let human = stdout(&env.run_store(&["trust", "list"]));
    let step = human
        .lines()
        .find_map(|l| l.split("explicit: ").nth(1))
        .unwrap()
        .trim_end_matches(')')
        .to_owned();
    let words: Vec<&str> = step.split(' ').collect();
    assert_eq!(&words[..3], ["nodelock", "trust", "add"]);
    let added = env.run_store(&words[1..]);
    assert_eq!(code(&added), 0, "{}", stderr(&added));
    let check = env.run_store(&["check", "--product", "surveyor"]);
    assert_eq!(code(&check), 0, "{}", stderr(&check));
}

#[test]
fn a_product_name_is_scoped_by_the_vendor_key() {
    let env = Env::new().on("laptop.json");
    let ours = env.issue("laptop.json", "surveyor", &["--features", "ours"]);
    let (other_key, other_pub, _) = other_vendor(&env);
    // Another vendor sells a product of the same name, later.
    let report = env.report("laptop.json");
    let theirs = env.path("theirs.lic");
    let out = env.run(&[
        "vendor",
        "issue",
        "--signing-key",
        other_key.to_str().unwrap(),
        "--fingerprint",
        report.to_str().unwrap(),
        "--product",
        "surveyor",
        "--features",
        "theirs",
        "-o",
        theirs.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let our_pub = fixture(VENDOR_PUB);
    for (key, lic) in [(&our_pub, &ours), (&other_pub, &theirs)] {
        let out = env.run_store(&[
            "import",
            "--pubkey",
            key.to_str().unwrap(),
            lic.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(
            json(&out)["replaced"],
            serde_json::Value::Null,
            "one vendor's license replaced another's"
        );
    }
    // Each application, with its own compiled-in key, sees its own license.
    for (key, feature) in [(&our_pub, "ours"), (&other_pub, "theirs")] {
        let out = env.run_store(&[
            "check",
            "--product",
            "surveyor",
            "--pubkey",
            key.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(json(&out)["grant"]["features"], serde_json::json!([feature]));
    }
}

#[test]
fn a_store_written_before_scoping_keeps_working_and_moves_on_reimport() {
    let env = Env::new().on("laptop.json");
    let lic = env.issue("laptop.json", "surveyor", &[]);
    let pubkey = fixture(VENDOR_PUB);
    // What an earlier release left: licenses/<product>.lic and its trust root.
    let out = env.run_store(&["trust", "add", pubkey.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::create_dir_all(env.store().join("licenses")).unwrap();
    let legacy = env.store().join("licenses/surveyor.lic");
    std::fs::copy(&lic, &legacy).unwrap();
    let check = env.run_store(&["check", "--product", "surveyor"]);
    assert_eq!(code(&check), 0, "{}", stderr(&check));
    // A new license from the same vendor replaces it under the scoped name.
    let newer = env.issue("laptop.json", "surveyor", &[]);
    let out = env.run_store(&["import", newer.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(json(&out)["replaced"].is_string(), "{}", stdout(&out));
    assert!(!legacy.exists());
    assert!(
        license_file(&env.store(), "surveyor")
            .file_name()
            .unwrap()
            .to_string_lossy()
            .contains('@')
    );
}
