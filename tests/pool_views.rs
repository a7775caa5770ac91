//! What the admin and an application see of a pool: the example application
//! holding a seat while it runs, the status as JSON and as a plain HTML page
//! agreeing at every step, the admin's remove, and the usage report's
//! figures for a scripted day.

mod common;

use std::process::Stdio;

use common::pool::*;
use common::*;

/// The example's binary (`cargo test` builds examples; a single test target
/// does not, so build it then).
fn example(name: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_BIN_EXE_nodelock"))
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    if !path.exists() {
        let built = std::process::Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(built.success());
    }
    path
}

/// The figures the HTML page shows, per product: seats, in use, available,
/// borrowed, and the lease ids in its table.
fn page_figures(html: &str) -> (Vec<u64>, Vec<String>) {
    let number = |class: &str| -> u64 {
        let tag = format!("<span class=\"{class}\">");
        let at = html.find(&tag).unwrap() + tag.len();
        html[at..].split('<').next().unwrap().parse().unwrap()
    };
    let leases = html
        .split("<tr class=\"lease\"><td>")
        .skip(1)
        .map(|row| row.split('<').next().unwrap().to_owned())
        .collect();
    (
        vec![
            number("seats"),
            number("in-use"),
            number("available"),
            number("borrowed"),
        ],
        leases,
    )
}

fn agree(env: &Env, url: &str) -> serde_json::Value {
    let status = pool_status(env, url);
    let p = &status["products"][0];
    let html = ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(!html.to_lowercase().contains("<script"));
    let (figures, leases) = page_figures(&html);
    assert_eq!(
        figures,
        vec![
            p["seats"].as_u64().unwrap(),
            p["in_use"].as_u64().unwrap(),
            p["available"].as_u64().unwrap(),
            p["borrowed"].as_u64().unwrap()
        ]
    );
    let ids: Vec<String> = p["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(leases, ids);
    status
}

#[test]
fn the_example_application_holds_a_seat_while_it_runs_and_the_views_agree() {
    let site = pool_site(1, &[]);
    let server = PoolServer::start(&site.server, "");
    let admin = Env::new();
    assert_eq!(agree(&admin, &server.url)["products"][0]["in_use"], 0);
    let app = std::process::Command::new(example("floating_app"))
        .args([&server.url, "surveyor", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it runs, its seat shows, and nobody else gets one.
    // (Polled through one view only: while the application starts, the two
    // views may be read on either side of its checkout.)
    let mut seen = false;
    for _ in 0..50 {
        if pool_status(&admin, &server.url)["products"][0]["in_use"] == 1 {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(seen, "the application's seat never showed");
    assert_eq!(agree(&admin, &server.url)["products"][0]["in_use"], 1);
    let other = Env::new().on("laptop-same-model.json").real_clock();
    let out = checkout(&other, &server.url);
    assert_eq!(code(&out), 23, "{}", stderr(&out));
    let out = app.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("seat given back"));
    // Dropping the guard checked the seat in.
    assert_eq!(agree(&admin, &server.url)["products"][0]["in_use"], 0);
}

#[test]
fn the_admin_removes_a_stuck_seat_with_the_token_only() {
    let site = pool_site(2, &[]);
    let server = PoolServer::start(&site.server, "");
    let ws = Env::new().on("laptop.json").real_clock();
    let out = checkout(&ws, &server.url);
    let id = json(&out)["lease_id"].as_str().unwrap().to_owned();
    assert_eq!(agree(&ws, &server.url)["products"][0]["in_use"], 1);
    // Without the token: refused, nothing changes.
    let wrong = ws.path("wrong.token");
    std::fs::write(&wrong, "NOT-THE-TOKEN").unwrap();
    let out = ws.run(&[
        "pool",
        "remove",
        &id,
        "--server",
        &server.url,
        "--token-file",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(agree(&ws, &server.url)["products"][0]["in_use"], 1);
    // The token pool serve wrote, owner-only, in its store.
    let token = site.server.store().join("pool-admin.token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&token).unwrap().permissions().mode() & 0o077, 0);
    }
    let out = ws.run(&[
        "pool",
        "remove",
        &id,
        "--server",
        &server.url,
        "--token-file",
        token.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["removed"], true);
    assert_eq!(agree(&ws, &server.url)["products"][0]["in_use"], 0);
    let out = ws.run_store(&["lease", "renew", &id, "--server", &server.url]);
    assert_eq!(code(&out), 36, "{}", stderr(&out));
    server.kill();

    // An emptied token file would let anyone who sends no token in: the
    // server does not start on one.
    std::fs::write(site.server.store().join("pool-admin.token"), "\n").unwrap();
    let refused = PoolServer::try_start(&site.server, "", &[])
        .err()
        .unwrap_or_default();
    assert!(refused.contains("shorter than 16 characters"), "{refused}");
}

#[test]
fn the_usage_report_counts_a_scripted_day() {
    let site = pool_site(2, &["--borrow-max-days", "3", "--lease-minutes", "60"]);
    let take = |machine: &str, now: &str, server: &PoolServer, borrow: bool| {
        let ws = Env::new().on(machine).at(now);
        let mut args = vec![];
        if borrow {
            args.extend(["borrow", "surveyor", "--days", "1"]);
        } else {
            args.extend(["lease", "checkout", "surveyor"]);
        }
        let pubkey = fixture(VENDOR_PUB);
        args.extend(["--server", &server.url, "--pubkey", pubkey.to_str().unwrap()]);
        code(&ws.run_store(&args))
    };
    // 09:00 A takes a seat for an hour, 09:10 B borrows one (2 of 2 held),
    // 09:20 C and 09:30 D are refused; 10:05 A's lease has lapsed, E gets it.
    let s = PoolServer::start(&site.server, "2026-06-01T09:00:00Z");
    assert_eq!(take("laptop.json", "2026-06-01T09:00:00Z", &s, false), 0);
    s.kill();
    let s = PoolServer::start(&site.server, "2026-06-01T09:10:00Z");
    assert_eq!(
        take("laptop-same-model.json", "2026-06-01T09:10:00Z", &s, true),
        0
    );
    s.kill();
    let s = PoolServer::start(&site.server, "2026-06-01T09:20:00Z");
    assert_eq!(take("kvm-guest.json", "2026-06-01T09:20:00Z", &s, false), 23);
    assert_eq!(
        take("vmware-guest-clone.json", "2026-06-01T09:30:00Z", &s, false),
        23
    );
    s.kill();
    let s = PoolServer::start(&site.server, "2026-06-01T10:05:00Z");
    assert_eq!(take("kvm-guest.json", "2026-06-01T10:05:00Z", &s, false), 0);
    s.kill();

    let out = site.server.run_store(&["pool", "report", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let days = json(&out)["days"].as_array().unwrap().clone();
    let june1 = days.iter().find(|d| d["day"] == "2026-06-01").unwrap();
    assert_eq!(june1["product"], "surveyor");
    assert_eq!(june1["peak"], 2);
    assert_eq!(june1["denials"], 2);
    assert_eq!(june1["borrows"], 1);
    // A an hour, B from 09:10 to midnight, E an hour from 10:05: 16.83 h.
    assert_eq!(june1["hours"], 16.83);
    let csv = site
        .server
        .run_store(&["pool", "report", "--csv", "--since", "2026-06-01"]);
    assert_eq!(code(&csv), 0);
    assert!(
        stdout(&csv).starts_with("product,day,peak,denials,borrows,hours\nsurveyor,2026-06-01,2,2,1,16.83\n"),
        "{}",
        stdout(&csv)
    );
}

#[test]
fn bad_input_to_every_pool_endpoint_is_a_4xx_json_error_and_records_nothing() {
    let site = pool_site(2, &[]);
    let server = PoolServer::start(&site.server, "");
    let agent = common::http::agent();
    let license = std::fs::read(&site.license).unwrap();
    let request = std::fs::read(fixture("documents/lease-request.req")).unwrap();
    let update = std::fs::read(fixture("documents/lease-update.upd")).unwrap();
    let leases = format!("{}/v1/leases", server.url);
    let updates = format!("{}/v1/leases/update", server.url);
    let remove = format!("{}/v1/admin/remove", server.url);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("empty", &leases, vec![], 400, "bad-document"),
        (
            "garbage",
            &leases,
            b"\x00\x01 not a document".to_vec(),
            400,
            "bad-document",
        ),
        (
            "truncated",
            &leases,
            request[..request.len() / 2].to_vec(),
            400,
            "bad-document",
        ),
        ("a license", &leases, license.clone(), 415, "wrong-kind"),
        ("an update as request", &leases, update.clone(), 415, "wrong-kind"),
        (
            "a request as update",
            &updates,
            request.clone(),
            415,
            "wrong-kind",
        ),
        ("an unknown lease", &updates, update.clone(), 404, "unknown-lease"),
        ("oversized", &leases, vec![b'a'; 70 * 1024], 413, "too-large"),
        (
            "remove without token",
            &remove,
            b"{\"lease_id\": \"S-X\"}".to_vec(),
            401,
            "token-needed",
        ),
    ];
    for (what, url, body, status, code_wanted) in cases {
        let (got, text) = common::http::post(&agent, url, &body).unwrap();
        assert_eq!(got, status, "{what}: {text}");
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert_eq!(v["error"]["code"], code_wanted, "{what}");
        assert!(
            v["error"]["message"].as_str().is_some_and(|m| m.len() > 10),
            "{what}: {text}"
        );
    }
    server.kill();
    let out = site.server.run_store(&["pool", "report", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        json(&out)["days"].as_array().unwrap().len(),
        0,
        "a refusal was recorded"
    );
}

#[test]
fn doctor_checks_a_pool_server_and_the_clock_against_it() {
    let site = pool_site(2, &["--expires", "2030-12-31"]);
    let server = PoolServer::start(&site.server, "");
    let ws = Env::new().on("laptop.json").real_clock();
    let out = ws.run_store(&["doctor", "--server", &server.url, "--json"]);
    let report = json(&out);
    assert_eq!(report["pool"]["products"][0]["product"], "surveyor");
    assert_eq!(
        report["pool"]["products"][0]["expires_at"],
        "2031-01-01T00:00:00Z"
    );
    let out = ws.run_store(&["doctor", "--server", &server.url]);
    assert!(
        stdout(&out).contains("pool: surveyor (2 seat(s), 0 in use, 0 borrowed)"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("from the pool server's"),
        "{}",
        stdout(&out)
    );
    // A client whose clock is a day off is told so.
    let off = Env::new().on("laptop.json").at("2020-01-01");
    let out = off.run_store(&["doctor", "--server", &server.url, "--json"]);
    assert!(
        json(&out)["findings"]
            .to_string()
            .contains("set this clock right"),
        "{}",
        stdout(&out)
    );
}

/// A pool server that restarts while an application runs: the application
/// keeps its seat (its lease is still valid), renews when the server is
/// back, and gives the seat back at the end.
#[test]
fn the_application_keeps_its_seat_through_a_pool_server_restart() {
    let site = pool_site(1, &["--lease-minutes", "1"]);
    let listen = free_listen();
    let server = PoolServer::try_start_on(&site.server, "", &listen, &[]).unwrap();
    let url = server.url.clone();
    let app = std::process::Command::new(example("floating_app"))
        .args([&url, "surveyor", "26"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    // Down for a few seconds, across no renewal (they come every 20 s) …
    server.kill();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let server = PoolServer::try_start_on(&site.server, "", &listen, &[]).unwrap();
    // … the seat is still the application's, and the renewal at 20 s finds the server back.
    let admin = Env::new();
    let before = pool_status(&admin, &server.url);
    assert_eq!(before["products"][0]["in_use"], 1);
    let until = before["products"][0]["leases"][0]["until"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::sleep(std::time::Duration::from_secs(16));
    let after = pool_status(&admin, &server.url);
    let renewed = after["products"][0]["leases"][0]["until"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        renewed > until,
        "the lease was not renewed after the restart ({until} → {renewed})"
    );
    let out = app.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("seat given back"));
    assert_eq!(pool_status(&admin, &server.url)["products"][0]["in_use"], 0);
}

#[test]
fn a_flooding_address_is_slowed_with_429() {
    let site = pool_site(1, &[]);
    let server = PoolServer::start(&site.server, "");
    let agent = common::http::agent();
    let url = format!("{}/v1/leases", server.url);
    // The burst (500) first, answered; then the limit.
    let mut limited = None;
    for _ in 0..700 {
        let mut response = agent.post(&url).send(&b"x"[..]).unwrap();
        if response.status().as_u16() == 429 {
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            limited = Some((retry, response.body_mut().read_to_string().unwrap()));
            break;
        }
    }
    let (retry, body) = limited.expect("no 429 after 700 requests");
    assert!(retry.is_some());
    assert!(body.contains("\"rate-limited\""), "{body}");
    // The status page is not limited.
    assert_eq!(pool_status(&site.server, &server.url)["products"][0]["seats"], 1);
}
