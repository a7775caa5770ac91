//! Offline activation end to end: request, answer, import, deactivate,
//! receipt, transfer, reset; refusals (concurrency and crashes: ledger_concurrency.rs).

mod common;

use common::desk::*;
use common::*;

#[test]
fn one_seat_moves_from_machine_a_to_machine_b() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(1, &["--expires", "2027-06-30", "--customer", "ACME"]);
    let a = workstation("laptop.json");
    let b = workstation("laptop-same-model.json");

    // A requests, the vendor answers, A imports and checks.
    let req_a = request(&a, &key, "a.req");
    assert_owner_only_keys(&a.store().join("pending"));
    let lic_a = a.path("a.lic");
    assert_eq!(code(&vendor.answer(&req_a, &lic_a)), 0);
    assert_eq!(vendor.used(), 1);
    assert_eq!(json(&import(&a, &lic_a))["outcome"], "installed");
    assert!(
        std::fs::read_dir(a.store().join("pending"))
            .unwrap()
            .next()
            .is_none(),
        "pending request dropped"
    );
    assert_eq!(code(&a.run_store(&["check", "--product", "surveyor"])), 0);

    // The same license does not hold on B, and B cannot take a second seat.
    let on_b = Env {
        dir: tempfile::tempdir().unwrap(),
        facts: b.facts.clone(),
        now: b.now.clone(),
    };
    let out = on_b.run(&[
        "verify",
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        lic_a.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 16);
    let req_b = request(&b, &key, "b.req");
    let refused = vendor.answer(&req_b, &b.path("b.lic"));
    assert_eq!(code(&refused), 23, "{}", stderr(&refused));
    assert_one_sentence(&refused);
    assert!(stderr(&refused).contains("seat"), "{}", stderr(&refused));
    assert!(!b.path("b.lic").exists());
    assert_eq!(vendor.used(), 1, "a refusal takes no seat");

    // A gives the seat back; the vendor frees it and signs a receipt.
    let id_a = license_id(&a);
    let deact = a.path("a.deact");
    let out = a.run_store(&["deactivate", &id_a, "-o", deact.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        code(&a.run_store(&["check", "--product", "surveyor"])),
        18,
        "license gone from A"
    );
    assert!(
        !a.store().join(format!("keys/{id_a}.key")).exists(),
        "install key gone from A"
    );
    let receipt = a.path("a.receipt");
    let out = vendor.answer(&deact, &receipt);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["deactivation"]["details"]["transfers_used"], 1);
    assert_eq!(vendor.used(), 0);
    // Replaying the deactivation frees nothing more.
    let again = vendor.answer(&deact, &a.path("a2.receipt"));
    assert_eq!(code(&again), 0);
    assert_eq!(json(&again)["deactivation"]["replayed"], true);
    assert_eq!(
        std::fs::read(&receipt).unwrap(),
        std::fs::read(a.path("a2.receipt")).unwrap()
    );
    assert_eq!(vendor.report()[0]["transfers_used"], 1);
    let out = import(&a, &receipt);
    assert_eq!(json(&out)["outcome"], "receipt", "{}", stderr(&out));

    // B's earlier request now gets the seat.
    let lic_b = b.path("b.lic");
    assert_eq!(code(&vendor.answer(&req_b, &lic_b)), 0);
    assert_eq!(code(&import(&b, &lic_b)), 0);
    assert_eq!(code(&b.run_store(&["check", "--product", "surveyor"])), 0);
    assert_eq!(vendor.used(), 1);

    // A third request while the seat is taken is refused, clearly, with no seat taken.
    let c = workstation("laptop-usb-dongle.json");
    let req_c = request(&c, &key, "c.req");
    let out = vendor.answer(&req_c, &c.path("c.lic"));
    assert_eq!(code(&out), 23);
    assert_eq!(json(&out)["error"]["code"], "no-free-seat");
    assert_eq!(vendor.used(), 1);

    let report = vendor.report();
    let activations = report[0]["activations"].as_array().unwrap();
    assert_eq!(activations.len(), 2);
    assert_eq!(activations[0]["state"], "deactivated");
    assert_eq!(activations[1]["state"], "active");
    assert_eq!(
        vendor.audit_events(),
        [
            "entitlement-created",
            "activated",
            "refused",
            "deactivated",
            "deactivation-replayed",
            "activated",
            "refused"
        ]
    );
}

#[test]
fn answering_the_same_request_twice_returns_the_same_license_and_one_seat() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(2, &[]);
    let a = workstation("laptop.json");
    let req = request(&a, &key, "a.req");
    assert_eq!(code(&vendor.answer(&req, &a.path("1.lic"))), 0);
    let again = vendor.answer(&req, &a.path("2.lic"));
    assert_eq!(json(&again)["activation"]["replayed"], true);
    assert_eq!(
        std::fs::read(a.path("1.lic")).unwrap(),
        std::fs::read(a.path("2.lic")).unwrap()
    );
    assert_eq!(vendor.used(), 1);
}

#[test]
fn a_request_kept_from_before_a_deactivation_wins_no_seat_back() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(1, &[]);
    let a = workstation("laptop.json");
    let req = request(&a, &key, "a.req");
    let lic = a.path("a.lic");
    assert_eq!(code(&vendor.answer(&req, &lic)), 0);
    assert_eq!(code(&import(&a, &lic)), 0);
    let deact = a.path("a.deact");
    let id = license_id(&a);
    assert_eq!(
        code(&a.run_store(&["deactivate", &id, "-o", deact.to_str().unwrap()])),
        0
    );
    assert_eq!(code(&vendor.answer(&deact, &a.path("a.rcpt"))), 0);
    assert_eq!(vendor.used(), 0);

    // The old request file, answered again, must not bring the license back.
    let replay = vendor.answer(&req, &a.path("again.lic"));
    assert_eq!(code(&replay), 30, "{}", stderr(&replay));
    assert_one_sentence(&replay);
    assert!(
        stderr(&replay).contains("nodelock request"),
        "{}",
        stderr(&replay)
    );
    assert!(!a.path("again.lic").exists());
    assert_eq!(vendor.used(), 0);
}

/// Whether a refusal earns a row in the permanent audit: only when a known
/// entitlement or a verified signature stands behind the request.
#[derive(PartialEq)]
enum Audited {
    Yes,
    No,
}

fn assert_refused_without_change(
    vendor: &Vendor,
    out: &std::process::Output,
    exit: i32,
    used_before: u64,
    audit_before: &[String],
    audited: Audited,
) {
    assert_eq!(code(out), exit, "{}", stderr(out));
    assert_one_sentence(out);
    assert_eq!(vendor.used(), used_before, "a refusal changed the seats");
    let audit = vendor.audit_events();
    match audited {
        Audited::Yes => {
            assert_eq!(audit.len(), audit_before.len() + 1);
            assert_eq!(audit.last().map(String::as_str), Some("refused"));
        }
        Audited::No => assert_eq!(
            audit, audit_before,
            "an unauthenticated refusal reached the audit"
        ),
    }
}

#[test]
fn tampered_replayed_and_misdirected_documents_are_each_refused() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(2, &[]);
    let a = workstation("laptop.json");
    let req = request(&a, &key, "a.req");
    let lic = a.path("a.lic");
    assert_eq!(code(&vendor.answer(&req, &lic)), 0);
    assert_eq!(code(&import(&a, &lic)), 0);

    // A request edited after signing (one defect per file: the negative
    // vectors in fixtures/documents/negative/ are refused the same way).
    let audit = vendor.audit_events();
    let edited = fixture("documents/negative/edited-request.req");
    let out = vendor.answer(&edited, &a.path("x.lic"));
    assert_refused_without_change(&vendor, &out, 10, 1, &audit, Audited::No);

    // A license answered for another request: a second store on the same machine did not make it.
    let other_store = workstation("laptop.json");
    let out = import(&other_store, &lic);
    assert_eq!(code(&out), 27, "{}", stderr(&out));
    assert_one_sentence(&out);
    assert!(!license_file(&other_store.store(), "surveyor").exists());
    // ... and on another machine it is another machine's license.
    let b = workstation("laptop-same-model.json");
    assert_eq!(code(&import(&b, &lic)), 16);

    // A deactivation for another license, signed with another machine's install key.
    let c = workstation("laptop-same-model.json");
    let req_c = request(&c, &key, "c.req");
    assert_eq!(code(&vendor.answer(&req_c, &c.path("c.lic"))), 0);
    assert_eq!(code(&import(&c, &c.path("c.lic"))), 0);
    let id_c = license_id(&c);
    let id_a = license_id(&a);
    let a_key = nodelock::format::PrivateKey::load(&a.store().join(format!("keys/{id_a}.key"))).unwrap();
    let (_, forged) = nodelock::documents::activation::make_deactivation(&id_c, &a_key, [9; 16], 0).unwrap();
    let forged_path = a.path("forged.deact");
    std::fs::write(&forged_path, forged).unwrap();
    let audit = vendor.audit_events();
    let out = vendor.answer(&forged_path, &a.path("r"));
    assert_refused_without_change(&vendor, &out, 28, 2, &audit, Audited::No);

    // A deactivation signed by a key nobody activated with.
    let stranger = nodelock::format::PrivateKey::generate().unwrap();
    let (_, forged) =
        nodelock::documents::activation::make_deactivation(&id_a, &stranger, [9; 16], 0).unwrap();
    std::fs::write(&forged_path, forged).unwrap();
    let out = vendor.answer(&forged_path, &a.path("r"));
    assert_refused_without_change(&vendor, &out, 28, 2, &audit, Audited::No);

    // A document of one kind presented as another.
    let out = vendor.answer(&lic, &a.path("r"));
    assert_refused_without_change(&vendor, &out, 3, 2, &audit, Audited::No);
    let deact = a.path("a.deact");
    assert_eq!(
        code(&a.run_store(&["deactivate", &id_a, "-o", deact.to_str().unwrap()])),
        0
    );
    let out = c.run_store(&["import", deact.to_str().unwrap()]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("deactivation request, not a nodelock license"),
        "{}",
        stderr(&out)
    );

    // The activation key reused beyond its seats.
    let d = workstation("vmware-guest.json");
    let req_d = request(&d, &key, "d.req");
    let audit = vendor.audit_events();
    let out = vendor.answer(&req_d, &d.path("d.lic"));
    assert_refused_without_change(&vendor, &out, 23, 2, &audit, Audited::Yes);
}

#[test]
fn a_typo_in_the_key_is_caught_before_any_exchange() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(1, &[]);
    let ws = workstation("laptop.json");
    let mut chars: Vec<char> = key.chars().collect();
    chars[3] = if chars[3] == 'A' { 'B' } else { 'A' };
    let typo: String = chars.into_iter().collect();
    let out = ws.run_store(&["request", &typo, "-o", ws.path("r").to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 21);
    assert_eq!(json(&out)["error"]["code"], "bad-activation-key");
    assert!(!ws.path("r").exists());
    assert!(
        !ws.store().join("pending").exists()
            || std::fs::read_dir(ws.store().join("pending")).unwrap().count() == 0
    );
    // Case, dashes and read-alikes do not matter.
    let sloppy = key.to_lowercase().replace('-', " ");
    assert_eq!(
        code(&ws.run_store(&["request", &sloppy, "-o", ws.path("r").to_str().unwrap()])),
        0
    );
}

#[test]
fn requests_are_a_few_hundred_bytes() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(1, &[]);
    let ws = workstation("laptop.json");
    let out = ws.run_store(&["request", &key, "-o", ws.path("r").to_str().unwrap(), "--json"]);
    let size = json(&out)["size"].as_u64().unwrap();
    assert_eq!(size, std::fs::metadata(ws.path("r")).unwrap().len());
    assert!(size < 1000, "request file is {size} bytes");
    // Whoever reads the file on its way learns no key to claim seats with.
    let text = std::fs::read_to_string(ws.path("r")).unwrap();
    let bytes = pem::parse(text.trim()).unwrap().into_contents();
    assert!(bytes.len() < 660, "request envelope is {} bytes", bytes.len());
    let canonical: String = key.chars().filter(|c| *c != '-').collect();
    assert!(!bytes.windows(canonical.len()).any(|w| w == canonical.as_bytes()));
    assert!(!text.contains(&canonical) && !text.contains(&key));
    // Nor a digest that a guess could be checked against cheaply: the
    // fingerprint travels salted (algorithm 2).
    let report = ws.report("laptop.json");
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    for c in value["components"].as_array().unwrap() {
        let digest = base16ct::lower::decode_vec(c["digest"].as_str().unwrap()).unwrap();
        assert!(
            !bytes.windows(32).any(|w| w == digest.as_slice()),
            "{} travels unsalted",
            c["name"]
        );
    }
}

#[test]
fn deactivation_works_with_a_drifted_fingerprint_and_a_wrong_clock() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(1, &["--expires", "2026-12-31"]);
    let a = workstation("laptop.json");
    let req = request(&a, &key, "a.req");
    assert_eq!(code(&vendor.answer(&req, &a.path("a.lic"))), 0);
    assert_eq!(code(&import(&a, &a.path("a.lic"))), 0);
    let id = license_id(&a);
    // The motherboard was replaced and the clock is years off.
    let drifted = Env {
        dir: a.dir,
        facts: Some(machine("laptop-same-model.json")),
        now: "2019-01-01".into(),
    };
    let deact = drifted.path("a.deact");
    let out = drifted.run_store(&["deactivate", &id, "-o", deact.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&vendor.answer(&deact, &drifted.path("r"))), 0);
    assert_eq!(vendor.used(), 0);
    // Deactivating again prints the same request (the user lost the file).
    let again = drifted.path("again.deact");
    assert_eq!(
        code(&drifted.run_store(&["deactivate", &id, "-o", again.to_str().unwrap()])),
        0
    );
    assert_eq!(std::fs::read(&deact).unwrap(), std::fs::read(&again).unwrap());
}

#[test]
fn a_license_imported_without_a_request_cannot_be_deactivated_offline() {
    let ws = workstation("laptop.json");
    let lic = ws.issue("laptop.json", "surveyor", &[]);
    assert_eq!(code(&import(&ws, &lic)), 0);
    let id = license_id(&ws);
    let out = ws.run_store(&["deactivate", &id, "-o", ws.path("d").to_str().unwrap()]);
    assert_eq!(code(&out), 31, "{}", stderr(&out));
    assert_eq!(
        code(&ws.run_store(&["check", "--product", "surveyor"])),
        0,
        "still installed"
    );
    let out = ws.run_store(&[
        "deactivate",
        "L-NOSUCHLICENSE",
        "-o",
        ws.path("d").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 29);
}

#[test]
fn transfers_are_limited_by_the_entitlement() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(1, &["--max-transfers", "1"]);
    let machines = ["laptop.json", "laptop-same-model.json", "vm-template.json"];
    let mut results = Vec::new();
    for (i, m) in machines.iter().enumerate() {
        let ws = workstation(m);
        let req = request(&ws, &key, "r.req");
        let out = vendor.answer(&req, &ws.path("l.lic"));
        results.push(code(&out));
        if code(&out) != 0 {
            assert_eq!(json(&out)["error"]["code"], "limit-reached");
            assert!(stderr(&out).contains("transfer"), "{}", stderr(&out));
            break;
        }
        assert_eq!(code(&import(&ws, &ws.path("l.lic"))), 0);
        let id = license_id(&ws);
        let deact = ws.path("d");
        assert_eq!(
            code(&ws.run_store(&["deactivate", &id, "-o", deact.to_str().unwrap()])),
            0
        );
        assert_eq!(
            code(&vendor.answer(&deact, &ws.path("rcpt"))),
            0,
            "deactivation {i} refused"
        );
    }
    assert_eq!(
        results,
        [0, 0, 25],
        "first activation, one transfer, then the limit"
    );
}

#[test]
fn reset_frees_a_dead_machines_seat_is_limited_audited_and_revokes_its_license() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(1, &["--customer", "ACME", "--max-resets", "1"]);
    let a = workstation("laptop.json");
    let req = request(&a, &key, "a.req");
    assert_eq!(code(&vendor.answer(&req, &a.path("a.lic"))), 0);
    assert_eq!(code(&import(&a, &a.path("a.lic"))), 0);
    let id_a = license_id(&a);
    let activation = vendor.report()[0]["activations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let out = vendor.run(&[
        "vendor",
        "reset",
        &activation,
        "--reason",
        "motherboard died, ticket 4711",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["revoked_license_id"], id_a);
    assert_eq!(vendor.used(), 0);
    let audit = vendor.run(&["vendor", "audit", "--json"]);
    let last = json(&audit)["audit"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"], "reset");
    assert_eq!(last["actor"], "support-anna");
    assert!(last["detail"].as_str().unwrap().contains("ticket 4711"));
    // Resetting again is refused: it already ended.
    assert_eq!(
        code(&vendor.run(&["vendor", "reset", &activation, "--reason", "again"])),
        30
    );

    // The replacement machine activates; its license revokes A's.
    let b = workstation("laptop-same-model.json");
    let req_b = request(&b, &key, "b.req");
    assert_eq!(code(&vendor.answer(&req_b, &b.path("b.lic"))), 0);
    let lic_b =
        nodelock::documents::license::License::read_unverified(&std::fs::read(b.path("b.lic")).unwrap())
            .unwrap();
    assert_eq!(lic_b.revoked, vec![id_a.clone()]);

    // A second reset within the year is over the limit unless forced.
    assert_eq!(code(&import(&b, &b.path("b.lic"))), 0);
    let report = vendor.report();
    let active = report[0]["activations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["state"] == "active")
        .unwrap();
    let activation_b = active["id"].as_str().unwrap().to_owned();
    let audit = vendor.audit_events();
    let out = vendor.run(&["vendor", "reset", &activation_b, "--reason", "stolen"]);
    assert_refused_without_change(&vendor, &out, 25, 1, &audit, Audited::Yes);
    let out = vendor.run(&[
        "vendor",
        "reset",
        &activation_b,
        "--reason",
        "stolen, police report 99",
        "--force",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A, revived, learns of the revocation from the next license it imports for
    // this customer, and stops honouring its old license.
    let key2 = vendor.entitlement(1, &["--customer", "ACME"]);
    let req_a2 = request(&a, &key2, "a2.req");
    assert_eq!(code(&vendor.answer(&req_a2, &a.path("a2.lic"))), 0);
    let installed_before = std::fs::read(license_file(&a.store(), "surveyor")).unwrap();
    assert_eq!(code(&import(&a, &a.path("a2.lic"))), 0);
    assert_ne!(
        std::fs::read(license_file(&a.store(), "surveyor")).unwrap(),
        installed_before
    );
    let verify_old = a.run_store(&[
        "verify",
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        a.path("a.lic").to_str().unwrap(),
    ]);
    assert_eq!(code(&verify_old), 26, "{}", stderr(&verify_old));
    let reimport_old = import(&a, &a.path("a.lic"));
    assert_eq!(code(&reimport_old), 26);
}

#[test]
fn a_license_revoked_by_another_product_s_import_is_said_and_stays_revoked() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(1, &["--customer", "ACME"]);
    let a = workstation("laptop.json");
    activate_offline(&vendor, &a, &key, "a");
    let id_a = license_id(&a);
    let activation = vendor.report()[0]["activations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        code(&vendor.run(&["vendor", "reset", &activation, "--reason", "lost"])),
        0
    );
    // The same customer's other product arrives on A, carrying the revocation.
    let out = vendor.run(&[
        "vendor",
        "entitlement",
        "create",
        "--product",
        "designer",
        "--seats",
        "1",
        "--customer",
        "ACME",
        "--json",
    ]);
    let key2 = json(&out)["activation_key"].as_str().unwrap().to_owned();
    let req2 = request(&a, &key2, "d.req");
    assert_eq!(code(&vendor.answer(&req2, &a.path("d.lic"))), 0);
    let out = import(&a, &a.path("d.lic"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["revoked"][0]["license_id"], id_a.as_str());
    // The check names the revocation, not a missing license.
    let out = a.run_store(&["check", "--product", "surveyor", "--json"]);
    assert_eq!(code(&out), 26, "{}", stdout(&out));
    assert!(json(&out)["error"]["message"].as_str().unwrap().contains(&id_a));
}

#[test]
fn entitlement_past_its_term_is_refused() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(1, &["--expires", "2026-05-31"]);
    let ws = workstation("laptop.json");
    let req = request(&ws, &key, "r");
    let audit = vendor.audit_events();
    let out = vendor.answer(&req, &ws.path("l"));
    assert_refused_without_change(&vendor, &out, 24, 0, &audit, Audited::Yes);
    let unknown = nodelock::documents::activation::ActivationKey::generate(&nodelock::base::random::OsRandom)
        .unwrap()
        .to_string();
    let req = request(&ws, &unknown, "u");
    // A well-formed key no entitlement has: anyone can make one, so it
    // earns no audit row.
    let audit = vendor.audit_events();
    let out = vendor.answer(&req, &ws.path("l"));
    assert_refused_without_change(&vendor, &out, 22, 0, &audit, Audited::No);
}

#[test]
fn a_stolen_ledger_does_not_reveal_activation_keys_and_the_audit_is_append_only() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(1, &[]);
    let canonical = key.replace('-', "");
    let bytes = std::fs::read(vendor.ledger()).unwrap();
    let wal = std::fs::read(vendor.env.path("ledger.sqlite-wal")).unwrap_or_default();
    for hay in [&bytes, &wal] {
        assert!(!hay.windows(canonical.len()).any(|w| w == canonical.as_bytes()));
        assert!(!hay.windows(key.len()).any(|w| w == key.as_bytes()));
    }
    let conn = rusqlite::Connection::open(vendor.ledger()).unwrap();
    assert!(
        conn.execute("UPDATE audit SET detail = 'nothing happened'", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM audit", []).is_err());
}

#[test]
fn seat_counts_beyond_any_sale_are_a_usage_error() {
    let vendor = Vendor::new();
    for seats in ["4294967295", "0", "100000001"] {
        let out = vendor.run(&[
            "vendor",
            "entitlement",
            "create",
            "--product",
            "surveyor",
            "--seats",
            seats,
        ]);
        assert_eq!(code(&out), 2, "{seats}: {}", stderr(&out));
        assert!(stderr(&out).contains("--seats"), "{}", stderr(&out));
    }
    // Nothing was sold, so no ledger was made.
    assert!(!vendor.ledger().exists());
    // The largest allowed count works end to end.
    let key = vendor.entitlement(100_000_000, &["--max-transfers", "100000000"]);
    let a = workstation("laptop.json");
    let req = request(&a, &key, "a.req");
    assert_eq!(code(&vendor.answer(&req, &a.path("a.lic"))), 0);
}

#[test]
fn an_entitlement_that_requires_hardware_identity_refuses_clone_only_machines() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(2, &["--require-hardware-id"]);
    let vm = workstation("ci-vm.json");
    let req = request(&vm, &key, "vm.req");
    let audit = vendor.audit_events();
    let out = vendor.answer(&req, &vm.path("vm.lic"));
    assert_refused_without_change(&vendor, &out, 32, 0, &audit, Audited::Yes);
    assert!(stderr(&out).contains("hardware identifier"), "{}", stderr(&out));
    // A machine with hardware anchors gets a license that keeps the rule.
    let laptop = workstation("laptop.json");
    let req = request(&laptop, &key, "l.req");
    assert_eq!(code(&vendor.answer(&req, &laptop.path("l.lic"))), 0);
    let text = std::fs::read(laptop.path("l.lic")).unwrap();
    let lic = nodelock::documents::license::License::read_unverified(&text).unwrap();
    assert!(!lic.binding.allow_clone_only);
}

#[test]
fn the_vendor_report_lists_what_ends_soon() {
    let vendor = Vendor::new();
    vendor.entitlement(1, &["--expires", "2026-06-10", "--customer", "Soon"]);
    vendor.entitlement(1, &["--expires", "2026-12-31", "--customer", "Later"]);
    vendor.entitlement(1, &["--customer", "Never"]);
    let out = vendor.run(&["vendor", "report", "--ending-within", "30", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let customers: Vec<String> = json(&out)["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["customer"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(customers, ["Soon"]);
    let human = vendor.run(&["vendor", "report", "--ending-within", "30"]);
    assert!(stdout(&human).contains("ends 2026-06-10"), "{}", stdout(&human));
    assert_eq!(vendor.report().as_array().unwrap().len(), 3);
}
