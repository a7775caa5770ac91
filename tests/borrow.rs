//! Borrowing a seat of a floating pool for field use: it works offline on
//! the borrowing laptop only, ends by itself on both sides, and comes back
//! early online or offline, exactly once.

mod common;

use common::pool::*;
use common::*;
use nodelock::base::clock::{FixedClock, parse_start};
use nodelock::machine::facts::{Facts, Snapshot};
use nodelock::workstation::check::Denial;
use nodelock::workstation::store::StoreError;

const T0: &str = "2026-06-01T10:00:00Z";

fn laptop(now: &str) -> Env {
    Env::new().on("laptop.json").at(now)
}

fn at(env: Env, now: &str) -> Env {
    Env {
        dir: env.dir,
        facts: env.facts.clone(),
        now: now.into(),
    }
}

fn borrow(ws: &Env, url: &str, days: &str) -> std::process::Output {
    ws.run_store(&[
        "borrow",
        "surveyor",
        "--server",
        url,
        "--days",
        days,
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        "--json",
    ])
}

fn check(ws: &Env) -> std::process::Output {
    ws.run_store(&["check", "--product", "surveyor", "--json"])
}

#[test]
fn a_borrow_works_offline_on_its_laptop_only_and_ends_by_itself() {
    let site = pool_site(2, &["--borrow-max-days", "7", "--borrow-max-seats", "1"]);
    let server = PoolServer::start(&site.server, T0);
    let ws = laptop(T0);
    let out = borrow(&ws, &server.url, "3");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["expires_at"], "2026-06-04T10:00:00Z");
    let status = pool_status(&ws, &server.url);
    assert_eq!(status["products"][0]["borrowed"], 1);
    assert_eq!(status["products"][0]["in_use"], 1);
    // Beyond the policy: too many days, too many seats out on borrow.
    let other = Env::new().on("laptop-same-model.json").at(T0);
    let out = borrow(&other, &server.url, "8");
    assert_eq!(code(&out), 25, "{}", stderr(&out));
    assert!(stderr(&out).contains("at most 7 day(s)"), "{}", stderr(&out));
    let out = borrow(&other, &server.url, "2");
    assert_eq!(code(&out), 25, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("at most 1 seat(s) may be out on borrow"),
        "{}",
        stderr(&out)
    );

    // Offline: the server is gone, the laptop keeps working.
    server.kill();
    let two_days = at(ws, "2026-06-03T10:00:00Z");
    let out = check(&two_days);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["grant"]["kind"], "borrowed");
    // The application's own check, through the library, grants the same;
    // the library on another machine, with this store, does not.
    let library = |machine: &str| {
        nodelock::Checker::new(include_str!("../fixtures/keys/TEST-ONLY-vendor.pub"))
            .unwrap()
            .store(two_days.store())
            .facts_from(Snapshot(Facts::load(&common::machine(machine)).unwrap()))
            .clock(FixedClock(parse_start("2026-06-03T10:00:00Z").unwrap()))
            .check("surveyor")
    };
    let grant = library("laptop.json").unwrap();
    assert_eq!(grant.kind, nodelock::documents::license::LicenseKind::Borrowed);
    assert!(matches!(
        library("laptop-same-model.json"),
        Err(nodelock::CheckError::Store(StoreError::Denied(
            Denial::OtherMachine { .. }
        )))
    ));
    // A copy of the store on another machine does not hold.
    let copy = Env::new().on("laptop-same-model.json").at("2026-06-03T10:00:00Z");
    std::process::Command::new("cp")
        .args([
            "-r",
            two_days.store().to_str().unwrap(),
            copy.store().to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert_eq!(code(&check(&copy)), 16);
    // At its end it stops, with no contact: on the laptop …
    let after = at(two_days, "2026-06-04T10:00:01Z");
    assert_eq!(code(&check(&after)), 14);
    // … and on the server, where the seat is back.
    let server = PoolServer::start(&site.server, "2026-06-04T10:00:01Z");
    let status = pool_status(&after, &server.url);
    assert_eq!(status["products"][0]["in_use"], 0);
    assert_eq!(status["products"][0]["borrowed"], 0);
}

#[test]
fn an_early_return_frees_the_seat_once_online_or_offline() {
    let site = pool_site(1, &["--borrow-max-days", "7"]);
    let server = PoolServer::start(&site.server, T0);
    let ws = laptop(T0);

    // Online. A second borrow while the first runs is refused (it would
    // lose the first one's key); the return it prints works as printed.
    assert_eq!(code(&borrow(&ws, &server.url, "5")), 0);
    let again = borrow(&ws, &server.url, "5");
    assert_eq!(code(&again), 20, "{}", stderr(&again));
    let step = printed_step(&stderr(&again), "return");
    let args: Vec<&str> = step[1..].iter().map(String::as_str).collect();
    let out = ws.run(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&check(&ws)), 18, "the borrow is gone from the laptop");
    assert_eq!(pool_status(&ws, &server.url)["products"][0]["in_use"], 0);

    // Offline: the laptop writes the return and forgets the borrow.
    assert_eq!(code(&borrow(&ws, &server.url, "5")), 0);
    let file = ws.path("surveyor.return");
    let out = ws.run_store(&["return", "surveyor", "--offline", "-o", file.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nodelock pool import-return"),
        "{}",
        stdout(&out)
    );
    assert_eq!(code(&check(&ws)), 18);
    assert_eq!(
        pool_status(&ws, &server.url)["products"][0]["in_use"],
        1,
        "not back before IT imports it"
    );
    let import = |site: &Env| site.run_store(&["pool", "import-return", file.to_str().unwrap(), "--json"]);
    let out = import(&site.server);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["freed"], true);
    assert_eq!(pool_status(&ws, &server.url)["products"][0]["in_use"], 0);
    // Imported again: nothing changes (and the seat, taken by someone else
    // meanwhile, stays taken).
    let other = Env::new().on("laptop-same-model.json").at(T0);
    assert_eq!(code(&borrow(&other, &server.url, "2")), 0);
    let out = import(&site.server);
    assert_eq!(code(&out), 30, "{}", stderr(&out));
    assert_eq!(pool_status(&ws, &server.url)["products"][0]["in_use"], 1);
}

#[test]
fn a_pool_license_is_not_given_back_while_seats_are_out_on_borrow() {
    let site = pool_site(2, &["--borrow-max-days", "7"]);
    let server = PoolServer::start(&site.server, T0);
    let ws = laptop(T0);
    assert_eq!(code(&borrow(&ws, &server.url, "2")), 0);
    server.kill();
    let pool_id = common::desk::license_id(&site.server);
    let request = site.server.path("pool.deact");
    let give_back = || {
        site.server
            .run_store(&["deactivate", &pool_id, "-o", request.to_str().unwrap()])
    };
    let out = give_back();
    assert_eq!(code(&out), 25, "{}", stderr(&out));
    assert!(stderr(&out).contains("out on borrow"), "{}", stderr(&out));
    assert!(!request.exists());
    assert_eq!(code(&site.server.run_store(&["status"])), 0);
    // The borrow comes back (offline return, imported); then the pool can move.
    let file = ws.path("r.return");
    assert_eq!(
        code(&ws.run_store(&["return", "surveyor", "--offline", "-o", file.to_str().unwrap()])),
        0
    );
    assert_eq!(
        code(
            &site
                .server
                .run_store(&["pool", "import-return", file.to_str().unwrap()])
        ),
        0
    );
    let out = give_back();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_laptop_whose_clock_is_off_gets_the_whole_borrow_and_no_more() {
    let site = pool_site(1, &["--borrow-max-days", "7"]);
    let server = PoolServer::start(&site.server, T0);
    // The laptop's clock is two days ahead of the pool server's.
    let ws = laptop("2026-06-03T10:00:00Z");
    let out = borrow(&ws, &server.url, "3");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Three days from when the laptop received it, on the laptop's clock.
    assert_eq!(json(&out)["expires_at"], "2026-06-06T10:00:00Z");
    let ws = at(ws, "2026-06-06T09:59:00Z");
    assert_eq!(code(&check(&ws)), 0);
    let ws = at(ws, "2026-06-06T10:00:00Z");
    assert_eq!(code(&check(&ws)), 14);
}

/// The command printed after `nodelock {verb}` in `text`, split into words.
fn printed_step(text: &str, verb: &str) -> Vec<String> {
    let start = text
        .find(&format!("nodelock {verb}"))
        .unwrap_or_else(|| panic!("no `nodelock {verb}` step in:\n{text}"));
    text[start..]
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_borrow_set_to_return_on_reconnect_goes_back_once_the_laptop_is_back() {
    let site = pool_site(2, &["--borrow-max-days", "7"]);
    let listen = free_listen();
    let server = PoolServer::try_start_on(&site.server, T0, &listen, &[]).unwrap();
    let url = server.url.clone();
    let ws = laptop(T0);
    let out = ws.run_store(&[
        "borrow",
        "surveyor",
        "--server",
        &url,
        "--days",
        "3",
        "--return-on-reconnect",
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["return_on_reconnect"], true);

    // Still in the office ten minutes later: the pool answers, the laptop
    // was never away, so the borrow stays.
    let office = at(ws, "2026-06-01T10:10:00Z");
    let out = check(&office);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["grant"]["kind"], "borrowed");
    assert_eq!(pool_status(&office, &url)["products"][0]["borrowed"], 1);

    // A server restart at the desk: one try fails, the next reaches the
    // pool again; that was no trip, and the borrow stays.
    server.kill();
    let blip = at(office, "2026-06-01T10:20:00Z");
    assert_eq!(code(&check(&blip)), 0);
    let server = PoolServer::try_start_on(&site.server, "2026-06-01T10:30:00Z", &listen, &[]).unwrap();
    let desk = at(blip, "2026-06-01T10:30:00Z");
    let out = check(&desk);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["grant"]["kind"], "borrowed");
    assert_eq!(pool_status(&desk, &url)["products"][0]["borrowed"], 1);

    // In the field: the pool stays out of reach for more than an hour; the
    // borrow works, and the laptop now counts as away.
    server.kill();
    let field = at(desk, "2026-06-02T09:00:00Z");
    let out = check(&field);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["grant"]["kind"], "borrowed");
    let field = at(field, "2026-06-02T10:30:00Z");
    assert_eq!(code(&check(&field)), 0);

    // Back at the office: the first check that reaches the pool gives the
    // borrow back, and says how to take a seat online instead.
    let server = PoolServer::try_start_on(&site.server, "2026-06-03T08:00:00Z", &listen, &[]).unwrap();
    let back = at(field, "2026-06-03T08:00:00Z");
    let out = check(&back);
    assert_eq!(code(&out), 18, "{}", stderr(&out));
    assert!(stderr(&out).contains("went back to the pool"), "{}", stderr(&out));
    assert!(
        !back.store().join("borrows/surveyor.return").exists(),
        "the return was answered, so it is not kept to send again"
    );
    let status = pool_status(&back, &url);
    assert_eq!(status["products"][0]["borrowed"], 0);
    assert_eq!(status["products"][0]["in_use"], 0);
    let step = printed_step(&stderr(&out), "lease checkout");
    let args: Vec<&str> = step[1..].iter().map(String::as_str).collect();
    let taken = back.run(&args);
    assert_eq!(code(&taken), 0, "{}", stderr(&taken));
    assert_eq!(pool_status(&back, &url)["products"][0]["in_use"], 1);

    // Offline again, the laptop has no borrow: it must borrow anew first.
    server.kill();
    let out = check(&at(back, "2026-06-03T12:00:00Z"));
    assert_eq!(code(&out), 18, "{}", stderr(&out));
}

#[test]
fn the_pool_s_policy_can_make_every_borrow_return_on_reconnect() {
    let site = pool_site(2, &["--borrow-max-days", "7"]);
    std::fs::write(
        site.server.store().join("pool-policy.toml"),
        "return_on_reconnect = true\n",
    )
    .unwrap();
    let server = PoolServer::start(&site.server, T0);
    let ws = laptop(T0);
    let out = borrow(&ws, &server.url, "2");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["return_on_reconnect"], true);
    let plain = Env::new().on("laptop-same-model.json").at(T0);
    std::fs::write(site.server.store().join("pool-policy.toml"), "").unwrap();
    // Policy files are re-read when they change; their time has a second's grain.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(site.server.store().join("pool-policy.toml"), "# none\n").unwrap();
    let out = borrow(&plain, &server.url, "2");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["return_on_reconnect"], false);
}
