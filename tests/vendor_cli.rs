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
