//! The vendor's commands around the ledger: where it comes from, and the
//! views support and finance read from it.

mod common;

use common::desk::*;
use common::*;

#[test]
fn only_init_and_entitlement_create_make_a_ledger() {
    let vendor = Vendor::new();
    let nested = vendor.env.path("typo/ledger.sqlite");
    let nested_s = nested.to_str().unwrap();
    // Every other vendor command refuses a ledger that is not there, says
    // how to make one, and makes nothing.
    let key = fixture(VENDOR_KEY);
    let req = vendor.env.path("none.req");
    std::fs::write(&req, "x").unwrap();
    for args in [
        vec!["vendor", "report", "--ledger", nested_s],
        vec!["vendor", "audit", "--ledger", nested_s],
        vec!["vendor", "check", "--ledger", nested_s],
        vec!["vendor", "entitlement", "list", "--ledger", nested_s],
        vec![
            "vendor",
            "entitlement",
            "show",
            "E-0000000000000000",
            "--ledger",
            nested_s,
        ],
        vec![
            "vendor",
            "answer",
            "--ledger",
            nested_s,
            "--signing-key",
            key.to_str().unwrap(),
            req.to_str().unwrap(),
            "-o",
            "out.lic",
        ],
        vec![
            "vendor",
            "serve",
            "--ledger",
            nested_s,
            "--signing-key",
            key.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
    ] {
        let out = vendor.env.run(&args);
        assert_eq!(code(&out), 34, "{args:?}: {}", stderr(&out));
        assert_one_sentence(&out);
        assert!(
            stderr(&out).contains(&format!("nodelock vendor init --ledger {nested_s}")),
            "{}",
            stderr(&out)
        );
        assert!(!nested.parent().unwrap().exists(), "{args:?} made a directory");
    }

    // The command it prints, run as printed, makes the ledger; running it
    // again changes nothing and says so.
    let out = vendor
        .env
        .run(&["vendor", "init", "--ledger", nested_s, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["created"], true);
    let version = json(&out)["schema_version"].as_u64().unwrap();
    assert!(version >= 8);
    let out = vendor
        .env
        .run(&["vendor", "init", "--ledger", nested_s, "--json"]);
    assert_eq!(json(&out)["created"], false);
    assert_eq!(json(&out)["schema_version"].as_u64().unwrap(), version);
    let out = vendor
        .env
        .run(&["vendor", "report", "--ledger", nested_s, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["entitlements"].as_array().unwrap().len(), 0);

    // Selling the first entitlement makes the ledger too.
    assert!(!vendor.ledger().exists());
    vendor.entitlement(1, &[]);
    assert!(vendor.ledger().exists());
}

/// A ledger with two products for two customers, sold and activated on two
/// days: what support narrows down and finance exports.
fn two_customers() -> (Vendor, String, String) {
    let vendor = Vendor::new();
    let key_acme = vendor.entitlement(2, &["--customer", "ACME Surveying"]);
    let out = vendor.run(&[
        "vendor",
        "entitlement",
        "create",
        "--product",
        "cad",
        "--seats",
        "1",
        "--customer",
        "=HYPERLINK(\"http://evil\")",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let key_other = json(&out)["activation_key"].as_str().unwrap().to_owned();
    let ids: Vec<String> = json(&vendor.run(&["vendor", "report", "--json"]))["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    // One activation of each, a day apart.
    let a = workstation("laptop.json");
    let req = request(&a, &key_acme, "a.req");
    assert_eq!(code(&vendor.answer(&req, &a.path("a.lic"))), 0);
    let b = workstation("laptop-same-model.json").at("2026-06-02");
    let req = request(&b, &key_other, "b.req");
    let vendor_next_day = Vendor {
        env: Env {
            dir: tempfile::tempdir().unwrap(),
            facts: None,
            now: "2026-06-02T12:00:00Z".into(),
        },
    };
    let ledger = vendor.ledger();
    let out = vendor_next_day.env.run(&[
        "vendor",
        "answer",
        "--ledger",
        ledger.to_str().unwrap(),
        "--signing-key",
        fixture(VENDOR_KEY).to_str().unwrap(),
        req.to_str().unwrap(),
        "-o",
        b.path("b.lic").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    (vendor, ids[0].clone(), ids[1].clone())
}

#[test]
fn reports_and_audits_narrow_to_a_product_customer_entitlement_or_time() {
    let (vendor, acme, other) = two_customers();
    let ids = |out: &std::process::Output, list: &str, field: &str| -> Vec<String> {
        assert_eq!(code(out), 0, "{}", stderr(out));
        json(out)[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[field].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let report = |extra: &[&str]| {
        let mut args = vec!["vendor", "report", "--json"];
        args.extend(extra);
        ids(&vendor.run(&args), "entitlements", "id")
    };
    assert_eq!(report(&[]), vec![acme.clone(), other.clone()]);
    assert_eq!(report(&["--product", "cad"]), vec![other.clone()]);
    assert_eq!(report(&["--customer", "ACME Surveying"]), vec![acme.clone()]);
    assert_eq!(report(&["--entitlement", &other]), vec![other.clone()]);
    assert!(report(&["--product", "cad", "--customer", "ACME Surveying"]).is_empty());

    let audit = |extra: &[&str]| {
        let mut args = vec!["vendor", "audit", "--json"];
        args.extend(extra);
        ids(&vendor.run(&args), "audit", "event")
    };
    assert_eq!(
        audit(&[]),
        vec![
            "entitlement-created",
            "entitlement-created",
            "activated",
            "activated"
        ]
    );
    assert_eq!(
        audit(&["--entitlement", &acme]),
        vec!["entitlement-created", "activated"]
    );
    assert_eq!(
        audit(&["--product", "cad"]),
        vec!["entitlement-created", "activated"]
    );
    assert_eq!(audit(&["--since", "2026-06-02"]), vec!["activated"]);
    assert_eq!(
        audit(&["--until", "2026-06-01"]),
        vec!["entitlement-created", "entitlement-created", "activated"]
    );
    assert!(audit(&["--since", "2026-06-03"]).is_empty());
    let out = vendor.run(&["vendor", "audit", "--since", "yesterday"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn csv_exports_parse_and_defuse_formulas() {
    let (vendor, acme, other) = two_customers();
    let out = vendor.run(&["vendor", "report", "--csv"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut rows = csv::Reader::from_reader(out.stdout.as_slice());
    let header = rows.headers().unwrap().clone();
    assert_eq!(&header[0], "id");
    assert_eq!(&header[7], "used");
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(&records[0][0], acme.as_str());
    assert_eq!(&records[0][3], "ACME Surveying");
    assert_eq!(&records[0][7], "1");
    assert_eq!(&records[1][0], other.as_str());
    assert_eq!(
        &records[1][3], "'=HYPERLINK(\"http://evil\")",
        "a formula is defused"
    );

    let out = vendor.run(&["vendor", "audit", "--csv", "--entitlement", &other]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut rows = csv::Reader::from_reader(out.stdout.as_slice());
    let events: Vec<String> = rows.records().map(|r| r.unwrap()[2].to_owned()).collect();
    assert_eq!(events, vec!["entitlement-created", "activated"]);

    let out = vendor.run(&["vendor", "report", "--csv", "--json"]);
    assert_eq!(code(&out), 2);
}
