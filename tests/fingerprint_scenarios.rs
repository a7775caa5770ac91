//! Every machine fixture with a `_scenario` gives its expected verdict through
//! `fingerprint compare`, `verify` and `import` alike (facts-v1 lets a snapshot
//! carry unknown fields, so each fixture states its own expectation).

mod common;

use common::*;

struct Scenario {
    file: String,
    bound_to: String,
    holds: bool,
    why: String,
    /// For a failure: the one next step the report must choose.
    next_step: Option<String>,
}

fn scenarios() -> Vec<Scenario> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixture("machines")).unwrap() {
        let path = entry.unwrap().path();
        let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let Some(s) = value.get("_scenario") else { continue };
        let Some(bound_to) = s.get("bound_to").and_then(|b| b.as_str()) else {
            continue;
        };
        out.push(Scenario {
            file: path.file_name().unwrap().to_string_lossy().into_owned(),
            bound_to: bound_to.to_owned(),
            holds: match s["expect"].as_str().unwrap() {
                "holds" => true,
                "fails" => false,
                other => panic!("bad expect {other}"),
            },
            why: s["why"].as_str().unwrap().to_owned(),
            next_step: s.get("next_step").and_then(|n| n.as_str()).map(str::to_owned),
        });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    assert!(out.len() >= 12, "fixtures missing");
    out
}

#[test]
fn every_scenario_gives_its_verdict_through_compare() {
    let env = Env::new();
    for s in scenarios() {
        let bound = env.report(&s.bound_to);
        let current = env.report(&s.file);
        let out = env.run(&[
            "fingerprint",
            "compare",
            bound.to_str().unwrap(),
            current.to_str().unwrap(),
        ]);
        assert_eq!(
            code(&out),
            if s.holds { 0 } else { 1 },
            "{}: {}\n{}",
            s.file,
            s.why,
            stdout(&out)
        );
        let text = stdout(&out);
        assert!(
            text.contains(if s.holds { "holds:" } else { "does not hold:" }),
            "{text}"
        );
        if let Some(step) = &s.next_step {
            let out = env.run(&[
                "fingerprint",
                "compare",
                bound.to_str().unwrap(),
                current.to_str().unwrap(),
                "--json",
            ]);
            assert_eq!(
                json(&out)["next_step"].as_str(),
                Some(step.as_str()),
                "{}",
                s.file
            );
        }
    }
}

/// A failure names one cause and one step: after a mainboard swap the
/// transfer, with no "run as another user" beside it; when what this user
/// cannot read could still decide it, reading it, with no transfer beside it.
#[test]
fn a_failure_gives_one_cause_and_one_step() {
    let env = Env::new().on("laptop-mainboard-replaced.json");
    let lic = env.issue("laptop.json", "surveyor", &[]);
    let pubkey = fixture(VENDOR_PUB);
    let verify = |env: &Env| {
        env.run(&[
            "verify",
            "--pubkey",
            pubkey.to_str().unwrap(),
            lic.to_str().unwrap(),
        ])
    };
    let out = verify(&env);
    assert_eq!(code(&out), 16);
    let said = stderr(&out);
    assert!(said.contains("the mainboard was replaced"), "{said}");
    assert!(
        said.trim_end()
            .ends_with("ask the vendor to transfer the license to this machine"),
        "{said}"
    );
    assert!(!said.contains("root") && !said.contains("same user"), "{said}");

    let as_user = Env {
        dir: tempfile::tempdir().unwrap(),
        facts: Some(machine("laptop-rebuilt-as-user.json")),
        now: env.now.clone(),
    };
    let out = verify(&as_user);
    assert_eq!(code(&out), 16);
    let said = stderr(&out);
    assert!(said.contains("cannot be read here"), "{said}");
    assert!(said.contains("as root"), "{said}");
    assert!(!said.contains("transfer"), "{said}");
}

#[test]
fn every_scenario_gives_its_verdict_through_verify_and_import() {
    for s in scenarios() {
        let env = Env::new().on(&s.file);
        let lic = env.issue(&s.bound_to, "surveyor", &["--expires", "2027-12-31"]);
        let pubkey = fixture(VENDOR_PUB);
        let verify = env.run(&[
            "verify",
            "--pubkey",
            pubkey.to_str().unwrap(),
            lic.to_str().unwrap(),
        ]);
        let import = env.run_store(&[
            "import",
            "--pubkey",
            pubkey.to_str().unwrap(),
            lic.to_str().unwrap(),
            "--json",
        ]);
        if s.holds {
            assert_eq!(code(&verify), 0, "{}: {}", s.file, stderr(&verify));
            assert_eq!(code(&import), 0, "{}: {}", s.file, stderr(&import));
            assert_eq!(json(&import)["outcome"], "installed");
        } else {
            assert_eq!(code(&verify), 16, "{}: {}", s.file, stderr(&verify));
            assert_one_sentence(&verify);
            assert!(stderr(&verify).contains("another machine"), "{}", stderr(&verify));
            assert_eq!(code(&import), 16, "{}", s.file);
            assert_eq!(json(&import)["error"]["code"], "other-machine");
            assert!(
                !license_file(&env.store(), "surveyor").exists(),
                "refused import stored a file"
            );
        }
    }
}

#[test]
fn compare_explains_without_printing_serials() {
    let env = Env::new();
    let bound = env.report("vm-template.json");
    let current = env.report("vm-clone.json");
    let out = env.run(&[
        "fingerprint",
        "compare",
        bound.to_str().unwrap(),
        current.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&out), 1);
    let report = json(&out);
    let outcome = |name: &str| {
        report["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["outcome"]
            .clone()
    };
    assert_eq!(outcome("machine_id"), "matched");
    assert_eq!(outcome("product_uuid"), "changed");
    assert_eq!(outcome("mac"), "changed");
    let all = format!("{}{}", stdout(&out), stderr(&out));
    for raw in ["5b8e2f0a", "564d", "00:50:56", "005056"] {
        assert!(!all.to_lowercase().contains(raw), "{raw} leaked");
    }
}

#[test]
fn nothing_identifying_is_a_clear_error() {
    let env = Env::new();
    let out = env.run(&[
        "fingerprint",
        "--facts",
        machine("nothing-identifying.json").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 5);
    assert_one_sentence(&out);
    assert!(stderr(&out).contains("no identifier"), "{}", stderr(&out));
}

#[test]
fn clone_only_machine_gets_an_id_and_a_warning_everywhere() {
    let env = Env::new().on("ci-vm.json");
    let out = env.run(&["fingerprint"]);
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("warning:"), "{}", stderr(&out));
    let lic = env.issue("ci-vm.json", "surveyor", &[]);
    let pubkey = fixture(VENDOR_PUB);
    let verify = env.run(&[
        "verify",
        "--pubkey",
        pubkey.to_str().unwrap(),
        lic.to_str().unwrap(),
    ]);
    assert_eq!(code(&verify), 0, "{}", stderr(&verify));
    assert!(stderr(&verify).contains("clone"), "{}", stderr(&verify));
    let json_out = env.run(&[
        "verify",
        "--json",
        "--pubkey",
        pubkey.to_str().unwrap(),
        lic.to_str().unwrap(),
    ]);
    assert!(
        json(&json_out)["grant"]["warning"]
            .as_str()
            .unwrap()
            .contains("clone")
    );
}

#[test]
fn policy_can_refuse_clone_only_machines() {
    let env = Env::new().on("ci-vm.json");
    let fp = env.report("ci-vm.json");
    let key = fixture(VENDOR_KEY);
    let out = env.run(&[
        "vendor",
        "issue",
        "--signing-key",
        key.to_str().unwrap(),
        "--fingerprint",
        fp.to_str().unwrap(),
        "--product",
        "surveyor",
        "--require-hardware-id",
        "-o",
        env.path("x.lic").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 3);
    assert_one_sentence(&out);
    assert!(!env.path("x.lic").exists());
}

#[test]
fn real_machine_fingerprint_is_stable_between_runs() {
    let env = Env::new();
    let a = env.run(&["fingerprint", "--json"]);
    let b = env.run(&["fingerprint", "--json"]);
    assert_eq!(code(&a), 0, "{}", stderr(&a));
    assert_eq!(json(&a)["workstation_id"], json(&b)["workstation_id"]);
    assert_eq!(json(&a)["components"], json(&b)["components"]);
}

#[test]
fn compare_takes_what_support_holds_a_license_or_a_request() {
    let env = Env::new().on("laptop.json");
    let lic = env.issue("laptop.json", "surveyor", &[]);
    let as_user = env.report("laptop-as-user.json");
    let other = env.report("laptop-same-model.json");
    let run = |args: &[&str]| {
        let mut all = vec!["fingerprint", "compare"];
        all.extend(args);
        env.run(&all)
    };
    // A license against a report, a facts snapshot, and this machine.
    assert_eq!(code(&run(&[lic.to_str().unwrap(), as_user.to_str().unwrap()])), 0);
    let out = run(&[lic.to_str().unwrap(), other.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let facts = machine("laptop-wifi-gone.json");
    assert_eq!(code(&run(&[lic.to_str().unwrap(), facts.to_str().unwrap()])), 0);
    let out = run(&[lic.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(json(&out)["policy"], "standard");
    // An activation request against this machine.
    let vendor = common::desk::Vendor::new();
    let key = vendor.entitlement(1, &[]);
    let req = common::desk::request(&env, &key, "a.req");
    assert_eq!(code(&run(&[req.to_str().unwrap()])), 0);
    // Digests and counts only: no serial of the facts reaches the output.
    let out = run(&[lic.to_str().unwrap(), facts.to_str().unwrap(), "--json"]);
    for serial in ["S3Z9NB0K123456A", "3c:52:82:aa:bb:cc", "CN1296373K0123"] {
        assert!(!stdout(&out).contains(serial), "{serial} printed");
    }
    // Anything else is named as what it is not.
    let out = run(&[facts.to_str().unwrap()]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_one_sentence(&out);
}
