//! Recovery from a wrong clock with the vendor's signed time: a store that
//! once saw a clock a year ahead takes the vendor's time, offline (clock
//! request, `vendor answer` or the portal, import) or online (`clock sync`),
//! and a statement cannot be kept to wind the store's clock back later.

mod common;

use common::*;

/// The same store and machine at another time.
fn at(env: Env, now: &str) -> Env {
    Env {
        dir: env.dir,
        facts: env.facts.clone(),
        now: now.into(),
    }
}

/// A workstation that trusts the test vendor and holds a subscription to
/// the end of 2035, as of 2026-06-01.
fn subscribed() -> Env {
    let ws = Env::new().on("laptop.json").at("2026-06-01");
    let lic = ws.issue("laptop.json", "designer", &["--expires", "2035-12-31"]);
    let out = ws.run_store(&[
        "import",
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        lic.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    ws
}

fn check(ws: &Env) -> std::process::Output {
    ws.run_store(&["check", "--product", "designer"])
}

/// The vendor's desk answering `request` at `now`.
fn vendor_answers(ws: &Env, request: &std::path::Path, name: &str, now: &str) -> std::path::PathBuf {
    let vendor = Env::new().at(now);
    let out_path = ws.path(name);
    let out = vendor.run(&[
        "vendor",
        "answer",
        "--signing-key",
        fixture(VENDOR_KEY).to_str().unwrap(),
        request.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["kind"], "time-statement");
    out_path
}

fn clock_request(ws: &Env, name: &str) -> std::path::PathBuf {
    let path = ws.path(name);
    let out = ws.run_store(&["clock", "request", "-o", path.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    path
}

#[test]
fn a_year_ahead_once_is_undone_offline_with_the_vendor_s_time() {
    let ws = subscribed();
    // A wrong BIOS date for one check, then the clock set right.
    let ahead = at(ws, "2027-06-01");
    assert_eq!(code(&check(&ahead)), 0);
    let ws = at(ahead, "2026-06-03");
    let out = check(&ws);
    assert_eq!(code(&out), 17, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nodelock clock request"),
        "{}",
        stderr(&out)
    );
    let doctor = ws.run_store(&["doctor", "--json"]);
    assert!(
        json(&doctor)["findings"].to_string().contains("clock sync"),
        "{}",
        stdout(&doctor)
    );

    // Offline: request → vendor → import, as printed.
    let req = clock_request(&ws, "clock.req");
    let statement = vendor_answers(&ws, &req, "clock.time", "2026-06-03T01:00:00Z");
    let out = ws.run_store(&["import", statement.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let synced = json(&out);
    assert_eq!(synced["outcome"], "clock-synced");
    assert_eq!(synced["clock"]["watermark"], "2026-06-03T01:00:00Z");
    assert_eq!(synced["clock"]["watermark_before"], "2027-06-01T00:00:00Z");
    let out = check(&ws);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // The same statement again: spent, nothing changes.
    let again = ws.run_store(&["import", statement.to_str().unwrap()]);
    assert_eq!(code(&again), 35, "{}", stderr(&again));
    assert_one_sentence(&again);
}

#[test]
fn a_statement_kept_for_later_cannot_wind_the_clock_back() {
    let ws = subscribed();
    let req = clock_request(&ws, "clock.req");
    let statement = vendor_answers(&ws, &req, "clock.time", "2026-06-01T00:10:00Z");
    // Months of checks move the store's clock on …
    let later = at(ws, "2026-11-01");
    assert_eq!(code(&check(&later)), 0);
    // … so importing the old statement (to set the clock back to June) is refused.
    let back = at(later, "2026-06-01");
    let out = back.run_store(&["import", statement.to_str().unwrap()]);
    assert_eq!(code(&out), 35, "{}", stderr(&out));
    assert!(stderr(&out).contains("out of date"), "{}", stderr(&out));
    assert_eq!(code(&check(&back)), 17, "the watermark stayed where it was");

    // A statement for another store's request is not this store's.
    let other = subscribed();
    let req = clock_request(&other, "other.req");
    let foreign = vendor_answers(&other, &req, "other.time", "2026-06-01T00:20:00Z");
    let out = back.run_store(&["import", foreign.to_str().unwrap()]);
    assert_eq!(code(&out), 35, "{}", stderr(&out));
    assert!(stderr(&out).contains("no clock request"), "{}", stderr(&out));

    // A statement signed by anyone but the vendor is refused by its signature.
    let tampered = back.path("tampered.time");
    let text = std::fs::read_to_string(&foreign).unwrap();
    let mut bytes = pem::parse(text.trim()).unwrap().into_contents();
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    std::fs::write(
        &tampered,
        pem::encode(&pem::Pem::new("NODELOCK TIME STATEMENT", bytes)),
    )
    .unwrap();
    let out = back.run_store(&["import", tampered.to_str().unwrap()]);
    assert_eq!(code(&out), 10, "{}", stderr(&out));
    assert_eq!(code(&check(&back)), 17);
}

#[test]
fn clock_sync_takes_the_activation_server_s_time() {
    let vendor = Env::new();
    let ledger = vendor.path("ledger.sqlite");
    let out = vendor.run(&["vendor", "init", "--ledger", ledger.to_str().unwrap()]);
    assert_eq!(code(&out), 0);
    let server = Server::start(&ledger);
    // The server runs on the real clock; so does this workstation, after one
    // check with its clock ten years ahead.
    let ws = subscribed();
    let ahead = at(ws, "2036-06-01");
    assert_eq!(code(&ahead.run_store(&["status"])), 0);
    assert_eq!(code(&check(&ahead)), 14, "expired by 2036, and observed");
    let ws = at(ahead, "");
    assert_eq!(code(&check(&ws)), 17);
    let out = ws.run_store(&["clock", "sync", "--server", &server.url, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["outcome"], "clock-synced");
    assert!(json(&out)["clock"]["skew_seconds"].as_i64().unwrap().abs() < 60);
    let out = check(&ws);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn an_online_activation_takes_the_server_s_time_when_the_store_is_ahead() {
    let vendor = Env::new();
    let ledger = vendor.path("ledger.sqlite");
    let key = entitlement(&vendor, &ledger, 1);
    let server = Server::start(&ledger);
    // A store that once ran with its clock ten years ahead, then set right.
    let ws = subscribed();
    let ahead = at(ws, "2036-06-01");
    assert_eq!(code(&check(&ahead)), 14);
    let ws = at(ahead, "");
    let out = ws.run_store(&[
        "activate",
        &key,
        "--server",
        &server.url,
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("server's signed time"), "{}", stderr(&out));
    assert_eq!(code(&ws.run_store(&["check", "--product", "surveyor"])), 0);
    assert_eq!(code(&check(&ws)), 0, "the subscription works again too");
}
