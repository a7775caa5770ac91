//! The workstation store through the CLI: import, status, check, refusals,
//! the clock watermark, concurrent writers and crashes.

mod common;

use std::process::Stdio;

use common::*;

fn pubkey() -> String {
    fixture(VENDOR_PUB).to_str().unwrap().to_owned()
}

#[test]
fn import_status_check_walkthrough() {
    let env = Env::new().on("laptop.json").at("2026-06-01");
    let lic = env.issue(
        "laptop.json",
        "surveyor",
        &[
            "--expires",
            "2026-06-30",
            "--features",
            "gnss,cad",
            "--customer",
            "ACME",
        ],
    );
    let out = env.run_store(&["import", "--pubkey", &pubkey(), lic.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Trusted key was recorded, so later commands need no --pubkey.
    let status = env.run_store(&["status", "--json"]);
    assert_eq!(code(&status), 0, "{}", stderr(&status));
    let s = json(&status);
    let entry = &s["licenses"][0];
    assert_eq!(entry["product"], "surveyor");
    assert_eq!(entry["state"], "valid");
    assert_eq!(entry["days_left"], 30, "June 1 to the end of June 30 (UTC)");
    assert!(entry["license_id"].as_str().unwrap().starts_with("L-"));
    let check = env.run_store(&["check", "--product", "surveyor", "--json"]);
    assert_eq!(code(&check), 0, "{}", stderr(&check));
    assert_eq!(
        json(&check)["grant"]["features"],
        serde_json::json!(["gnss", "cad"])
    );
    // Re-importing the same file changes nothing.
    let again = env.run_store(&["import", lic.to_str().unwrap(), "--json"]);
    assert_eq!(json(&again)["outcome"], "already-installed");
}

#[test]
fn each_denial_has_its_exit_code() {
    // Issued before its start, so that "not yet valid" is not also "issued
    // in the future" (which is the clock's fault: tests/clock.rs).
    let base = Env::new().on("laptop.json").at("2026-02-01");
    let lic = base.issue(
        "laptop.json",
        "surveyor",
        &[
            "--expires",
            "2026-12-31",
            "--not-before",
            "2026-03-01",
            "--maintenance-until",
            "2026-09-30",
        ],
    );
    let lic = lic.to_str().unwrap();
    let verify = |now: &str, extra: &[&str]| {
        let env = Env::new().on("laptop.json").at(now);
        let key = fixture(VENDOR_PUB);
        let mut args = vec!["verify", "--pubkey", key.to_str().unwrap()];
        args.extend(extra);
        args.push(lic);
        let out = env.run(&args);
        if code(&out) != 0 {
            assert_one_sentence(&out);
        }
        code(&out)
    };
    assert_eq!(verify("2026-06-01", &[]), 0);
    assert_eq!(verify("2026-06-01", &["--product", "other"]), 12);
    assert_eq!(verify("2026-02-27", &[]), 13);
    assert_eq!(
        verify("2026-12-31T23:59:59Z", &[]),
        0,
        "a date-only expiry runs to the end of that day (UTC)"
    );
    assert_eq!(verify("2027-01-01", &[]), 14);
    assert_eq!(verify("2026-06-01", &["--build-date", "2026-10-01"]), 15);
    assert_eq!(verify("2026-06-01", &["--build-date", "2026-09-30"]), 0);
    let elsewhere = Env::new().on("laptop-same-model.json").at("2026-06-01");
    let out = elsewhere.run(&["verify", "--pubkey", fixture(VENDOR_PUB).to_str().unwrap(), lic]);
    assert_eq!(code(&out), 16);
    assert!(
        stderr(&out).contains("product_uuid"),
        "the differing components are named: {}",
        stderr(&out)
    );
}

#[test]
fn missing_license_is_not_found() {
    let env = Env::new().on("laptop.json");
    let out = env.run_store(&["check", "--product", "surveyor", "--pubkey", &pubkey(), "--json"]);
    assert_eq!(code(&out), 18);
    assert_eq!(json(&out)["error"]["code"], "not-found");
    assert!(
        stderr(&out).contains("nodelock import"),
        "says what to do: {}",
        stderr(&out)
    );
}

#[test]
fn older_license_never_replaces_a_newer_one() {
    let old_env = Env::new().on("laptop.json").at("2026-01-10");
    let old = old_env.issue("laptop.json", "surveyor", &["--expires", "2026-12-31"]);
    let new_env = Env::new().on("laptop.json").at("2026-02-10");
    let new = new_env.issue("laptop.json", "surveyor", &["--expires", "2027-12-31"]);
    let ws = Env::new().on("laptop.json").at("2026-03-01");
    assert_eq!(
        code(&ws.run_store(&["import", "--pubkey", &pubkey(), new.to_str().unwrap()])),
        0
    );
    let before = std::fs::read(license_file(&ws.store(), "surveyor")).unwrap();
    let out = ws.run_store(&["import", "--pubkey", &pubkey(), old.to_str().unwrap()]);
    assert_eq!(code(&out), 19, "{}", stderr(&out));
    assert_one_sentence(&out);
    assert_eq!(
        std::fs::read(license_file(&ws.store(), "surveyor")).unwrap(),
        before
    );
    // The newer one may replace the older one.
    let ws2 = Env::new().on("laptop.json").at("2026-03-01");
    assert_eq!(
        code(&ws2.run_store(&["import", "--pubkey", &pubkey(), old.to_str().unwrap()])),
        0
    );
    let out = ws2.run_store(&["import", "--pubkey", &pubkey(), new.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0);
    assert!(json(&out)["replaced"].as_str().is_some());
}

#[test]
fn clock_set_back_is_refused_not_accepted() {
    let vendor = Env::new().on("laptop.json").at("2026-05-01");
    let lic = vendor.issue(
        "laptop.json",
        "surveyor",
        &["--expires", "2026-06-30", "--not-before", "2026-01-01"],
    );
    let ws = Env::new().on("laptop.json").at("2026-06-20");
    assert_eq!(
        code(&ws.run_store(&["import", "--pubkey", &pubkey(), lic.to_str().unwrap()])),
        0
    );
    assert_eq!(code(&ws.run_store(&["check", "--product", "surveyor"])), 0);
    // The user sets the clock back to stretch the subscription.
    let back = Env {
        dir: ws.dir,
        facts: ws.facts.clone(),
        now: "2026-06-10".into(),
    };
    let out = back.run_store(&["check", "--product", "surveyor", "--json"]);
    assert_eq!(code(&out), 17, "{}", stderr(&out));
    assert_eq!(json(&out)["error"]["code"], "clock-set-back");
    // Within the tolerance (24 h) it still works.
    let skew = Env {
        dir: back.dir,
        facts: back.facts.clone(),
        now: "2026-06-19T06:00:00Z".into(),
    };
    assert_eq!(code(&skew.run_store(&["check", "--product", "surveyor"])), 0);
}

#[test]
fn import_of_a_license_issued_in_the_future_moves_the_watermark() {
    // A vendor-signed issued-at is trusted time: a clock behind it (beyond
    // the tolerance) is reported as set back once the license is imported.
    let vendor = Env::new().on("laptop.json").at("2026-06-10");
    let lic = vendor.issue("laptop.json", "surveyor", &["--not-before", "2026-01-01"]);
    let ws = Env::new().on("laptop.json").at("2026-06-12");
    assert_eq!(
        code(&ws.run_store(&["import", "--pubkey", &pubkey(), lic.to_str().unwrap()])),
        0
    );
    let wm: i64 = std::fs::read_to_string(ws.store().join("clock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(nodelock::base::clock::format(wm), "2026-06-12T00:00:00Z");
    let back = Env {
        dir: ws.dir,
        facts: ws.facts.clone(),
        now: "2026-06-01".into(),
    };
    assert_eq!(code(&back.run_store(&["check", "--product", "surveyor"])), 17);
}

#[test]
fn concurrent_imports_leave_one_whole_license() {
    let ws = Env::new().on("laptop.json").at("2026-06-01");
    let lics: Vec<_> = (0..8)
        .map(|i| {
            let v = Env::new().on("laptop.json").at(&format!("2026-05-{:02}", 10 + i));
            let path = v.issue("laptop.json", "surveyor", &["--expires", "2027-01-01"]);
            let keep = ws.path(&format!("l{i}.lic"));
            std::fs::copy(&path, &keep).unwrap();
            keep
        })
        .collect();
    let store = ws.store();
    let children: Vec<_> = lics
        .iter()
        .map(|l| {
            ws.std_cmd()
                .args([
                    "import",
                    "--pubkey",
                    &pubkey(),
                    l.to_str().unwrap(),
                    "--store",
                    store.to_str().unwrap(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    assert!(codes.iter().all(|c| *c == 0 || *c == 19), "{codes:?}");
    // Whatever order they ran in, the newest license is installed, whole.
    let installed = std::fs::read(license_file(&store, "surveyor")).unwrap();
    assert_eq!(installed, std::fs::read(&lics[7]).unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(store.join("licenses")).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temporary files left behind");
}

#[cfg(unix)]
#[test]
fn killed_imports_never_leave_a_partial_license() {
    use std::time::Duration;
    let ws = Env::new().on("laptop.json").at("2026-06-01");
    let (va, vb) = (
        Env::new().on("laptop.json").at("2026-05-01"),
        Env::new().on("laptop.json").at("2026-05-02"),
    );
    let a = va.issue("laptop.json", "surveyor", &["--expires", "2027-01-01"]);
    let b = vb.issue("laptop.json", "surveyor", &["--expires", "2027-01-01"]);
    let (a_bytes, b_bytes) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let store = ws.store();
    assert_eq!(
        code(&ws.run_store(&["import", "--pubkey", &pubkey(), a.to_str().unwrap()])),
        0
    );
    let mut seen_new = false;
    for i in 0..40u64 {
        let mut child = ws
            .std_cmd()
            .args([
                "import",
                "--pubkey",
                &pubkey(),
                b.to_str().unwrap(),
                "--store",
                store.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros((i * 397) % 6000));
        let _ = child.kill();
        let _ = child.wait();
        let installed = std::fs::read(license_file(&store, "surveyor")).unwrap();
        assert!(
            installed == a_bytes || installed == b_bytes,
            "kill {i} left a mixed file"
        );
        seen_new |= installed == b_bytes;
        // Put the old one back for the next round when the new one landed.
        if installed == b_bytes {
            std::fs::write(license_file(&store, "surveyor"), &a_bytes).unwrap();
        }
        let status = ws.run_store(&["status", "--json"]);
        assert_eq!(json(&status)["licenses"][0]["state"], "valid");
    }
    let _ = seen_new; // timing decides how many rounds finish; both outcomes are fine
}

#[test]
fn json_errors_are_one_object_with_a_stable_code() {
    let env = Env::new().on("laptop.json");
    let out = env.run(&[
        "verify",
        "--pubkey",
        &pubkey(),
        env.path("nope.lic").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&out), 4);
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "io");
    assert_eq!(v["error"]["exit"], 4);
}

#[test]
fn hostile_text_in_a_license_does_not_reach_the_terminal_raw() {
    let env = Env::new().on("laptop.json");
    let lic = env.issue("laptop.json", "surveyor", &["--customer", "ACME\u{1b}[2J\u{7}"]);
    let out = env.run(&["verify", "--pubkey", &pubkey(), lic.to_str().unwrap()]);
    assert_eq!(code(&out), 0);
    assert!(!stdout(&out).contains('\u{1b}'));
    assert!(stdout(&out).contains("ACME?[2J?"));
}

#[test]
fn checks_warn_before_the_end_with_the_date_and_the_next_step() {
    let env = Env::new().on("laptop.json").at("2026-06-01");
    let lic = env.issue(
        "laptop.json",
        "surveyor",
        &["--expires", "2026-06-20", "--maintenance-until", "2026-06-25"],
    );
    let out = env.run_store(&["import", "--pubkey", &pubkey(), lic.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // 20 days left: a warning with the exact date and what to do.
    let out = env.run_store(&["check", "--product", "surveyor", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let grant = &json(&out)["grant"];
    assert_eq!(grant["days_left"], 20, "June 1 to the end of June 20");
    let warning = grant["warning"].as_str().unwrap();
    assert!(
        warning.contains("ends 2026-06-20, end of day UTC (20 days left)"),
        "{warning}"
    );
    assert!(warning.contains("install the license you get"), "{warning}");
    assert!(
        warning.contains("maintenance of surveyor ends 2026-06-25"),
        "{warning}"
    );
    let human = env.run_store(&["check", "--product", "surveyor"]);
    assert!(stderr(&human).contains("warning: license"), "{}", stderr(&human));
    // The notice period is the caller's to choose.
    let quiet = env.run_store(&["check", "--product", "surveyor", "--warn-days", "10", "--json"]);
    assert_eq!(json(&quiet)["grant"]["warning"], serde_json::Value::Null);
    let status = env.run_store(&["status"]);
    assert!(
        stdout(&status).contains("  warning: license"),
        "{}",
        stdout(&status)
    );
    let status = env.run_store(&["status", "--json", "--warn-days", "10"]);
    assert_eq!(json(&status)["licenses"][0]["warning"], serde_json::Value::Null);
}

#[test]
fn a_missing_store_is_said_to_be_missing() {
    let env = Env::new().on("laptop.json");
    let missing = env.path("nosuchdir");
    let m = missing.to_str().unwrap();
    let out = env.run(&[
        "check",
        "--product",
        "surveyor",
        "--store",
        m,
        "--pubkey",
        &pubkey(),
    ]);
    assert_eq!(code(&out), 18, "{}", stderr(&out));
    assert_one_sentence(&out);
    assert!(
        stderr(&out).contains("there is no license store at"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["doctor", "--store", m]);
    assert_eq!(code(&out), 45, "{}", stdout(&out));
    assert!(stdout(&out).contains("no license store at"), "{}", stdout(&out));
    // In JSON, the problems carry an error object like every failing command.
    let out = env.run(&["doctor", "--store", m, "--json"]);
    assert_eq!(code(&out), 45);
    let report = json(&out);
    assert_eq!(report["ok"], false);
    assert_eq!(report["error"]["code"], "problems");
    assert_eq!(report["error"]["exit"], 45);
    assert_eq!(report["problems"], report["findings"].as_array().unwrap().len());
    assert!(
        report["findings"][0]
            .as_str()
            .unwrap()
            .contains("no license store at"),
        "{report}"
    );
    // Nothing was created by looking.
    assert!(!missing.exists());
}
