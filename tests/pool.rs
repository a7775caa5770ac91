//! Floating licenses end to end: a pool license activated on the server
//! machine, `nodelock pool serve`, clients taking, renewing and giving back
//! seats, and the admin's views.

mod common;

use common::desk::Vendor;
use common::pool::*;
use common::*;

fn client(machine: &str) -> Env {
    Env::new().on(machine).real_clock()
}

#[test]
fn a_pool_serves_its_seats_and_says_who_holds_them_when_full() {
    let site = pool_site(2, &[]);
    let server = PoolServer::start(&site.server, "");
    let a = client("laptop.json");
    let out = checkout(&a, &server.url);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lease_a = json(&out)["lease_id"].as_str().unwrap().to_owned();
    assert!(lease_a.starts_with("S-"));
    assert!(json(&out)["expires_at"].as_str().is_some());
    let b = client("laptop-same-model.json");
    assert_eq!(code(&checkout(&b, &server.url)), 0);
    let c = client("kvm-guest.json");
    let full = checkout(&c, &server.url);
    assert_eq!(code(&full), 23, "{}", stderr(&full));
    assert!(
        stderr(&full).contains("all 2 seat(s) of surveyor are in use"),
        "{}",
        stderr(&full)
    );

    let status = pool_status(&a, &server.url);
    let p = &status["products"][0];
    assert_eq!(p["product"], "surveyor");
    assert_eq!(p["seats"], 2);
    assert_eq!(p["in_use"], 2);
    assert_eq!(p["available"], 0);
    assert_eq!(p["leases"].as_array().unwrap().len(), 2);

    // Renew and check in; only the store that holds the lease can.
    let out = a.run_store(&["lease", "renew", &lease_a, "--server", &server.url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = c.run_store(&["lease", "checkin", &lease_a, "--server", &server.url]);
    assert_eq!(code(&out), 29, "{}", stderr(&out));
    let out = a.run_store(&["lease", "checkin", &lease_a, "--server", &server.url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(pool_status(&a, &server.url)["products"][0]["in_use"], 1);

    // The renewal a checkout prints works as printed.
    let out = a.run_store(&["lease", "checkout", "surveyor", "--server", &server.url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let step: Vec<&str> = text
        .split('`')
        .find(|part| part.starts_with("nodelock lease renew"))
        .unwrap_or_else(|| panic!("no renew step in: {text}"))
        .split_whitespace()
        .collect();
    let renewed = a.run(&step[1..]);
    assert_eq!(code(&renewed), 0, "{}", stderr(&renewed));
    let out = a.run_store(&["lease", "checkin", step[3], "--server", &server.url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&checkout(&c, &server.url)), 0, "the freed seat is taken");
}

#[test]
fn pool_serve_refuses_a_pool_license_it_cannot_serve() {
    let site = pool_site(2, &["--expires", "2026-12-31"]);
    // On another machine.
    let moved = Env {
        dir: tempfile::tempdir().unwrap(),
        facts: Some(machine("laptop.json")),
        now: site.server.now.clone(),
    };
    let copy = moved.path("store");
    std::process::Command::new("cp")
        .args([
            "-r",
            site.server.store().to_str().unwrap(),
            copy.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    let err = PoolServer::try_start(&moved, "2026-06-01", &[]).err().unwrap();
    assert!(
        err.contains("exit Some(16)") && err.contains("cannot be served"),
        "{err}"
    );
    // After its end.
    let err = PoolServer::try_start(&site.server, "2027-02-01", &[])
        .err()
        .unwrap();
    assert!(err.contains("exit Some(14)"), "{err}");
    // Tampered.
    let file = license_file(&site.server.store(), "surveyor");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut bytes = pem::parse(text.trim()).unwrap().into_contents();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&file, pem::encode(&pem::Pem::new("NODELOCK LICENSE", bytes))).unwrap();
    let err = PoolServer::try_start(&site.server, "2026-06-01", &[])
        .err()
        .unwrap();
    assert!(err.contains("exit Some(10)"), "{err}");
}

#[test]
fn a_pool_license_activated_online_serves_too() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(5, &["--kind", "floating"]);
    let activation = Server::start(&vendor.ledger());
    let site = Env::new().on(SERVER_MACHINE).real_clock();
    let out = site.run_store(&[
        "activate",
        &key,
        "--server",
        &activation.url,
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["grant"]["kind"], "floating-pool");
    // One pool server holds the entitlement; a second machine gets no pool.
    let second = Env::new().on("laptop.json").real_clock();
    let out = second.run_store(&[
        "activate",
        &key,
        "--server",
        &activation.url,
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 23, "{}", stderr(&out));
    let server = PoolServer::start(&site, "");
    let status = pool_status(&site, &server.url);
    assert_eq!(status["products"][0]["seats"], 5);
    let a = client("laptop.json");
    assert_eq!(code(&checkout(&a, &server.url)), 0);
}

#[test]
fn the_pool_server_machine_gets_no_seat_from_the_pool_license_itself() {
    let site = pool_site(2, &[]);
    let out = site.server.run_store(&["check", "--product", "surveyor"]);
    assert_eq!(code(&out), 18, "{}", stderr(&out));
    assert_one_sentence(&out);
    assert!(
        stderr(&out).contains("nodelock lease checkout"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_admin_s_policy_file_says_who_may_take_a_seat_and_applies_without_a_restart() {
    let site = pool_site(3, &[]);
    let policy = site.server.store().join("pool-policy.toml");
    std::fs::write(&policy, "deny_users = [\"mallory\"]\nmax_per_user = 1\n").unwrap();
    let server = PoolServer::start(&site.server, "");
    let take = |user: &str, machine: &str| checkout_as(&client(machine), &server.url, Some(user));
    let out = take("mallory", "laptop.json");
    assert_eq!(code(&out), 37, "{}", stderr(&out));
    assert!(stderr(&out).contains("deny_users"), "{}", stderr(&out));
    assert_eq!(code(&take("anna", "laptop.json")), 0);
    let out = take("anna", "laptop-same-model.json");
    assert_eq!(code(&out), 37, "{}", stderr(&out));
    assert!(stderr(&out).contains("max_per_user of 1"), "{}", stderr(&out));
    // The admin lifts the limit; the running server applies it at once.
    std::fs::write(&policy, "deny_users = [\"mallory\"]\n").unwrap();
    assert_eq!(code(&take("anna", "laptop-same-model.json")), 0);
    // A policy that does not parse keeps the last good one in force …
    std::fs::write(&policy, "deny_users = 7\n").unwrap();
    assert_eq!(code(&take("mallory", "kvm-guest.json")), 37);
    // … and a server does not start on one.
    server.kill();
    let err = PoolServer::try_start(&site.server, "", &[]).err().unwrap();
    assert!(
        err.contains("exit Some(3)") && err.contains("pool-policy.toml"),
        "{err}"
    );
}

#[test]
fn a_policy_can_group_a_user_s_checkouts_into_one_seat() {
    let site = pool_site(1, &[]);
    let policy = site.server.store().join("pool-policy.toml");
    std::fs::write(&policy, "group = \"user\"\n").unwrap();
    let server = PoolServer::start(&site.server, "");
    // Anna's two applications on two machines share one seat …
    let first = client("laptop.json");
    let second = client("kvm-guest.json");
    let a = checkout_as(&first, &server.url, Some("anna"));
    assert_eq!(code(&a), 0, "{}", stderr(&a));
    let b = checkout_as(&second, &server.url, Some("anna"));
    assert_eq!(code(&b), 0, "{}", stderr(&b));
    let status = pool_status(&first, &server.url);
    assert_eq!(status["products"][0]["in_use"], 1);
    assert_eq!(status["products"][0]["available"], 0);
    assert_eq!(status["products"][0]["leases"].as_array().unwrap().len(), 2);
    // … which is not Bob's.
    let bob = client("laptop-same-model.json");
    let out = checkout_as(&bob, &server.url, Some("bob"));
    assert_eq!(code(&out), 23, "{}", stderr(&out));
    // The seat stays Anna's while either of her leases runs.
    let lease_a = json(&a)["lease_id"].as_str().unwrap().to_owned();
    let lease_b = json(&b)["lease_id"].as_str().unwrap().to_owned();
    let out = first.run_store(&["lease", "checkin", &lease_a, "--server", &server.url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(pool_status(&first, &server.url)["products"][0]["in_use"], 1);
    assert_eq!(code(&checkout_as(&bob, &server.url, Some("bob"))), 23);
    let out = second.run_store(&["lease", "checkin", &lease_b, "--server", &server.url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(pool_status(&first, &server.url)["products"][0]["in_use"], 0);
    let out = checkout_as(&bob, &server.url, Some("bob"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Off by default: without the policy, each checkout takes a seat.
    std::fs::write(&policy, "").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(&policy, "# no grouping\n").unwrap();
    let out = checkout_as(&bob, &server.url, Some("bob"));
    assert_eq!(code(&out), 23, "{}", stderr(&out));
}
