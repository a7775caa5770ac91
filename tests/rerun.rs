//! Activation the installer can re-run: one machine holds one seat of an
//! entitlement however often, and from however many stores, it activates.

mod common;

use common::desk::*;
use common::*;
use nodelock::vendor::ledger::Ledger;

fn activate(ws: &Env, key: &str, url: &str) -> std::process::Output {
    ws.run_store(&[
        "activate",
        key,
        "--server",
        url,
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        "--json",
    ])
}

fn used(ledger: &std::path::Path) -> u32 {
    Ledger::open(ledger).unwrap().report(0).unwrap()[0].used
}

#[test]
fn an_installer_run_twice_and_a_second_store_take_one_seat_online() {
    let vendor = Env::new();
    let ledger = vendor.path("ledger.sqlite");
    let key = entitlement(&vendor, &ledger, 1);
    let server = Server::start(&ledger);
    let a = Env::new().on("laptop.json").real_clock();

    let first = activate(&a, &key, &server.url);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert_eq!(json(&first)["reactivated"], false);
    // Every seat is in use, and the machine that holds it runs the installer again.
    let again = a.run_store(&["activate", &key, "--server", &server.url]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    let said = format!("{}{}", stdout(&again), stderr(&again));
    assert!(said.contains("no new seat was taken"), "{said}");
    assert_eq!(code(&a.run_store(&["check", "--product", "surveyor"])), 0);
    assert_eq!(used(&ledger), 1);

    // Another store on the same machine (another user, another installer).
    let other_store = Env {
        dir: tempfile::tempdir().unwrap(),
        facts: a.facts.clone(),
        now: a.now.clone(),
    };
    let out = activate(&other_store, &key, &server.url);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["reactivated"], true);
    assert_eq!(
        code(&other_store.run_store(&["check", "--product", "surveyor"])),
        0
    );
    assert_eq!(used(&ledger), 1);

    // The seat moved to the store that asked last: it gives the seat back.
    let id = json(&other_store.run_store(&["status", "--json"]))["licenses"][0]["license_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = other_store.run_store(&["deactivate", &id, "--server", &server.url, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(used(&ledger), 0);

    // A machine with a replaced Wi-Fi card is still that machine; another is not.
    let b = Env::new().on("laptop-wifi-gone.json").real_clock();
    assert_eq!(code(&activate(&b, &key, &server.url)), 0);
    let c = Env::new().on("laptop-same-model.json").real_clock();
    let refused = activate(&c, &key, &server.url);
    assert_eq!(code(&refused), 23, "{}", stderr(&refused));
    let d = Env::new().on("laptop.json").real_clock();
    let out = activate(&d, &key, &server.url);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["reactivated"], true);
    assert_eq!(used(&ledger), 1);
}

#[test]
fn two_request_files_from_one_machine_take_one_seat_offline() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(2, &[]);
    let a = workstation("laptop.json");
    let first = request(&a, &key, "first.req");
    let second_store = workstation("laptop.json");
    let second = request(&second_store, &key, "second.req");

    let out = vendor.answer(&first, &a.path("first.lic"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = vendor.answer(&second, &second_store.path("second.lic"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["activation"]["reactivated"], true);
    assert_eq!(vendor.used(), 1);
    assert_eq!(code(&import(&second_store, &second_store.path("second.lic"))), 0);
    assert_eq!(
        code(&second_store.run_store(&["check", "--product", "surveyor"])),
        0
    );
    let events = vendor.audit_events();
    assert_eq!(events.iter().filter(|e| *e == "activated").count(), 1);
    assert_eq!(events.iter().filter(|e| *e == "reactivated").count(), 1);
}
