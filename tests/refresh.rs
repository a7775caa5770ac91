//! Refresh and revalidation: a license whose entitlement asks for it must be
//! refreshed every N days (offline by a request file, online in one command);
//! once its seat was given back, no refresh is answered, so a license file
//! restored from a backup stops working at its revalidation date.

mod common;

use common::desk::*;
use common::*;

/// A workstation holding a license from a `--revalidate-days 30`
/// entitlement, activated offline on 2026-06-01.
fn activated(vendor: &Vendor) -> Env {
    let key = vendor.entitlement(2, &["--revalidate-days", "30"]);
    let ws = workstation("laptop.json");
    activate_offline(vendor, &ws, &key, "a");
    ws
}

/// The backquoted command in a message that starts with `nodelock refresh`.
fn printed_refresh_step(message: &str) -> Vec<String> {
    let step = message
        .split('`')
        .find(|s| s.starts_with("nodelock refresh") && s.contains(" -o "))
        .unwrap_or_else(|| panic!("no offline refresh step in: {message}"));
    step.split(' ').skip(1).map(str::to_owned).collect()
}

#[test]
fn a_license_is_revalidated_offline_with_the_step_it_prints() {
    let mut vendor = Vendor::new();
    let mut ws = activated(&vendor);
    ws.now = "2026-06-20".into();
    assert_eq!(code(&ws.run_store(&["check", "--product", "surveyor"])), 0);
    // Past its revalidation date: refused, saying what to run.
    ws.now = "2026-07-02".into();
    let out = ws.run_store(&["check", "--product", "surveyor"]);
    assert_eq!(code(&out), 33, "{}", stderr(&out));
    assert_one_sentence(&out);
    // The printed step, pasted as printed (with this test's store), makes the request.
    let mut step = printed_refresh_step(&stderr(&out));
    step.extend(["--store".into(), ws.store().to_str().unwrap().into()]);
    let args: Vec<&str> = step.iter().map(String::as_str).collect();
    let out = ws.run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let request = ws.dir.path().join("refresh.req");
    assert!(request.exists());
    // The vendor answers it; the workstation imports the refreshed license.
    vendor.env.now = "2026-07-02".into();
    let refreshed = ws.path("refreshed.lic");
    let out = vendor.answer(&request, &refreshed);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["refresh"]["revalidate_by"], "2026-08-01T00:00:00Z");
    let before = license_id(&ws);
    let out = import(&ws, &refreshed);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(license_id(&ws), before, "a refresh keeps the license id");
    assert_eq!(code(&ws.run_store(&["check", "--product", "surveyor"])), 0);
    // No seat was taken, and the audit says what happened.
    assert_eq!(vendor.used(), 1);
    assert!(vendor.audit_events().contains(&"refreshed".to_owned()));
}

#[test]
fn the_contract_form_request_refresh_license_id_makes_the_same_request() {
    let vendor = Vendor::new();
    let ws = activated(&vendor);
    let id = license_id(&ws);
    let req = ws.path("by-id.req");
    let out = ws.run_store(&["request", "--refresh", &id, "-o", req.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["product"], "surveyor");
    let out = vendor.answer(&req, &ws.path("r.lic"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["refresh"]["license_id"], id.as_str());
    // A license id this store does not hold: said so, nothing written.
    let none = ws.path("none.req");
    let out = ws.run_store(&["request", "--refresh", "L-NOSUCH", "-o", none.to_str().unwrap()]);
    assert_eq!(code(&out), 29, "{}", stderr(&out));
    assert!(!none.exists());
}

#[test]
fn a_license_restored_after_deactivation_stops_at_its_revalidation_date() {
    let mut vendor = Vendor::new();
    let mut ws = activated(&vendor);
    let id = license_id(&ws);
    // A backup of the whole store, then the seat given back.
    let backup = ws.path("backup");
    copy_dir(&ws.store(), &backup);
    let deact = ws.path("d.req");
    let out = ws.run_store(&["deactivate", &id, "-o", deact.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = vendor.answer(&deact, &ws.path("receipt"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(vendor.used(), 0);
    // The backup comes back: it works until its revalidation date …
    std::fs::remove_dir_all(ws.store()).unwrap();
    copy_dir(&backup, &ws.store());
    ws.now = "2026-06-30".into();
    assert_eq!(code(&ws.run_store(&["check", "--product", "surveyor"])), 0);
    // … and not after it, because the vendor answers no refresh for it.
    ws.now = "2026-07-02".into();
    assert_eq!(code(&ws.run_store(&["check", "--product", "surveyor"])), 33);
    let req = ws.path("r.req");
    let out = ws.run_store(&["refresh", "surveyor", "-o", req.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    vendor.env.now = "2026-07-02".into();
    let out = vendor.answer(&req, &ws.path("never.lic"));
    assert_eq!(code(&out), 30, "{}", stderr(&out));
    assert!(!ws.path("never.lic").exists());
    assert_eq!(vendor.used(), 0);
}

#[test]
fn refresh_online_in_one_command() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(1, &["--revalidate-days", "30"]);
    let server = Server::start(&vendor.ledger());
    let ws = workstation("laptop.json").real_clock();
    let out = ws.run_store(&[
        "activate",
        &key,
        "--server",
        &server.url,
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let before = std::fs::read(license_file(&ws.store(), "surveyor")).unwrap();
    let out = ws.run_store(&["refresh", "--server", &server.url, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["refreshed"].as_array().unwrap().len(), 1);
    let after = std::fs::read(license_file(&ws.store(), "surveyor")).unwrap();
    assert_ne!(before, after, "the refreshed license is installed");
    assert_eq!(code(&ws.run_store(&["check", "--product", "surveyor"])), 0);
    // A license from `vendor issue` (no activation) cannot be refreshed.
    let issued = ws.issue("laptop.json", "designer", &[]);
    assert_eq!(code(&import(&ws, &issued)), 0);
    let out = ws.run_store(&["refresh", "designer", "--server", &server.url]);
    assert_eq!(code(&out), 31, "{}", stderr(&out));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_renewal_reaches_the_machine_at_its_next_refresh() {
    let mut vendor = Vendor::new();
    let key = vendor.entitlement(2, &["--expires", "2026-12-31", "--features", "gnss"]);
    let mut ws = workstation("laptop.json");
    activate_offline(&vendor, &ws, &key, "a");
    let id = vendor.report()[0]["id"].as_str().unwrap().to_owned();
    let update = |vendor: &Vendor, args: &[&str]| {
        let mut all = vec!["vendor", "entitlement", "update", id.as_str()];
        all.extend(args);
        vendor.run(&all)
    };
    // Renewed and extended by the vendor …
    let out = update(
        &vendor,
        &["--expires", "2027-12-31", "--features", "gnss,cad", "--json"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["expires_at"], "2028-01-01T00:00:00Z");
    // … never below the seats in use, which changes nothing.
    let out = update(&vendor, &["--seats", "0"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = vendor.run(&["vendor", "entitlement", "update", &id, "--seats", "1", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The machine's license changes only when it refreshes.
    let check =
        |ws: &Env| json(&ws.run_store(&["check", "--product", "surveyor", "--json"]))["grant"].clone();
    assert_eq!(check(&ws)["expires_at"], "2027-01-01T00:00:00Z");
    ws.now = "2026-06-02".into();
    vendor.env.now = "2026-06-02".into();
    let refresh = ws.path("r.req");
    assert_eq!(
        code(&ws.run_store(&["refresh", "surveyor", "-o", refresh.to_str().unwrap()])),
        0
    );
    assert_eq!(code(&vendor.answer(&refresh, &ws.path("renewed.lic"))), 0);
    assert_eq!(code(&import(&ws, &ws.path("renewed.lic"))), 0);
    let grant = check(&ws);
    assert_eq!(grant["expires_at"], "2028-01-01T00:00:00Z");
    assert_eq!(grant["features"], serde_json::json!(["gnss", "cad"]));
    // Suspended: no refresh and no new seat until resumed.
    assert_eq!(code(&update(&vendor, &["--suspend"])), 0);
    let refresh = ws.path("r2.req");
    assert_eq!(
        code(&ws.run_store(&["refresh", "surveyor", "-o", refresh.to_str().unwrap()])),
        0
    );
    let out = vendor.answer(&refresh, &ws.path("never.lic"));
    assert_eq!(code(&out), 24, "{}", stderr(&out));
    assert!(stderr(&out).contains("suspended"), "{}", stderr(&out));
    assert_eq!(code(&update(&vendor, &["--resume"])), 0);
    assert_eq!(code(&vendor.answer(&refresh, &ws.path("again.lic"))), 0);
    // Every change is in the audit, and list/show see the entitlement.
    let updates = vendor
        .audit_events()
        .iter()
        .filter(|e| *e == "entitlement-updated")
        .count();
    assert_eq!(updates, 4);
    let list = vendor.run(&["vendor", "entitlement", "list"]);
    assert!(stdout(&list).contains(&id), "{}", stdout(&list));
    let show = vendor.run(&["vendor", "entitlement", "show", &id, "--json"]);
    assert_eq!(json(&show)["entitlement"]["seats"], 1);
    assert_eq!(
        json(&show)["entitlement"]["activations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        code(&vendor.run(&["vendor", "entitlement", "show", "E-NOSUCH"])),
        29
    );
}
