//! The server against strangers: anonymous floods leave the permanent audit
//! alone (they cost bounded counters), liveness is cheap, and slow or idle
//! connections are closed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::http::*;
use common::*;
use nodelock::base::random::OsRandom;
use nodelock::documents::activation::{self, ActivationKey};
use nodelock::format::PrivateKey;

#[test]
fn anonymous_refusals_cost_counters_not_audit_rows() {
    let env = Env::new();
    let ledger = env.path("ledger.sqlite");
    let key = entitlement(&env, &ledger, 1);
    let server = Server::start(&ledger);
    let agent = agent();
    let activations = format!("{}/v1/activations", server.url);
    let deactivations = format!("{}/v1/deactivations", server.url);

    // One real activation, so that a real license id exists.
    let (status, _) = post(&agent, &activations, &requests(&key, 1)[0]).unwrap();
    assert_eq!(status, 200);
    let real_license = nodelock::vendor::ledger::Ledger::open(&ledger)
        .unwrap()
        .report(0)
        .unwrap()[0]
        .activations[0]
        .license_id
        .clone();
    let before = audit_len(&ledger);

    // Well-formed requests under keys no entitlement has (each signed by a
    // key made up on the spot), deactivations of licenses that do not exist,
    // and deactivations of a real license signed by a stranger.
    let stranger_key = ActivationKey::generate(&OsRandom).unwrap().to_string();
    let strangers = requests(&stranger_key, 40);
    let stranger = PrivateKey::generate().unwrap();
    let (_, unknown_license) =
        activation::make_deactivation("L-NOSUCHLICENSE00", &stranger, [1; 16], 0).unwrap();
    let (_, wrong_key) = activation::make_deactivation(&real_license, &stranger, [2; 16], 0).unwrap();
    for body in &strangers {
        assert_eq!(post(&agent, &activations, body).unwrap().0, 404);
    }
    for _ in 0..40 {
        assert_eq!(
            post(&agent, &deactivations, unknown_license.as_bytes())
                .unwrap()
                .0,
            404
        );
        assert_eq!(post(&agent, &deactivations, wrong_key.as_bytes()).unwrap().0, 403);
    }
    assert_eq!(
        audit_len(&ledger),
        before,
        "anonymous refusals reached the permanent audit"
    );

    // A refusal a known entitlement stands behind is still audited.
    let (status, _) = post(&agent, &activations, &requests(&key, 2)[1]).unwrap();
    assert_eq!(status, 409);
    assert_eq!(audit_len(&ledger), before + 1);

    // The counters say what was refused, and liveness answers cheaply.
    let mut response = agent.get(format!("{}/healthz", server.url)).call().unwrap();
    let health: serde_json::Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["refused"]["unknown-key"], 40);
    assert_eq!(health["refused"]["unknown-license"], 40);
    assert_eq!(health["refused"]["wrong-install-key"], 40);
    assert_eq!(health["refused"]["no-free-seat"], 1);
}

#[test]
fn the_deep_ledger_check_is_an_operator_command() {
    let env = Env::new();
    let ledger = env.path("ledger.sqlite");
    entitlement(&env, &ledger, 1);
    let out = env.run(&["vendor", "check", "--ledger", ledger.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["integrity"], "ok");
    assert_eq!(json(&out)["sound"], true);
    // Counters edited behind the ledger's back are a problem it names.
    let conn = rusqlite::Connection::open(&ledger).unwrap();
    conn.execute("UPDATE entitlements SET seats_used = 5", [])
        .unwrap();
    drop(conn);
    let out = env.run(&["vendor", "check", "--ledger", ledger.to_str().unwrap()]);
    assert_eq!(code(&out), 45, "{}", stderr(&out));
    assert!(stdout(&out).contains("counters disagree"), "{}", stdout(&out));
}

fn host(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or 20 s pass); returns
/// what it sent and how long the close took.
fn read_until_closed(mut conn: TcpStream) -> (String, Duration) {
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), started.elapsed())
}

#[test]
fn slow_headers_slow_bodies_and_idle_connections_are_closed() {
    let env = Env::new();
    let ledger = env.path("ledger.sqlite");
    entitlement(&env, &ledger, 1);
    let server = Server::start_with(&ledger, &["--read-timeout", "2"]);

    // Headers that never finish.
    let mut slow_headers = TcpStream::connect(host(&server)).unwrap();
    slow_headers
        .write_all(b"POST /v1/activations HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (_, took) = read_until_closed(slow_headers);
    assert!(took < Duration::from_secs(10), "closed after {took:?}");

    // A body that never finishes: 408 slow-request, then the close.
    let mut slow_body = TcpStream::connect(host(&server)).unwrap();
    slow_body
        .write_all(b"POST /v1/activations HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\n-----BEGIN")
        .unwrap();
    let (answer, took) = read_until_closed(slow_body);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("slow-request"), "{answer}");
    assert!(took < Duration::from_secs(10), "closed after {took:?}");

    // An idle keep-alive connection after a complete request.
    let mut idle = TcpStream::connect(host(&server)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (answer, took) = read_until_closed(idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took < Duration::from_secs(10), "closed after {took:?}");
}

#[cfg(unix)]
#[test]
fn shutdown_does_not_wait_for_idle_connections() {
    let env = Env::new();
    let ledger = env.path("ledger.sqlite");
    entitlement(&env, &ledger, 1);
    let mut server = Server::start(&ledger);
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut conn = TcpStream::connect(host(&server)).unwrap();
        conn.write_all(b"POST /v1/activations HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        held.push(conn);
    }
    std::thread::sleep(Duration::from_millis(200));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "SIGTERM waited on idle connections"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(held);
}

#[test]
fn a_flooding_address_gets_429_with_retry_after_and_others_are_served() {
    let env = Env::new();
    let ledger = env.path("ledger.sqlite");
    let key = entitlement(&env, &ledger, 1);
    let server = Server::start_with(&ledger, &["--rate-limit", "1", "--rate-burst", "5"]);
    let agent = agent();
    let url = format!("{}/v1/activations", server.url);
    let body = &requests(&key, 1)[0];
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = agent.post(&url).send(body.as_slice()).unwrap();
        statuses.push((
            response.status().as_u16(),
            response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
        ));
    }
    // The burst of 5 is served (the first takes the seat, the rest replay it) …
    assert!(statuses[..5].iter().all(|(s, _)| *s == 200), "{statuses:?}");
    // … then the address is told to wait, with a JSON error and Retry-After.
    let (status, retry) = &statuses[7];
    assert_eq!(*status, 429, "{statuses:?}");
    assert!(
        retry.as_deref().is_some_and(|r| r.parse::<u64>().unwrap() >= 1),
        "{statuses:?}"
    );
    let mut response = agent.post(&url).send(body.as_slice()).unwrap();
    assert_eq!(response.headers().get("x-nodelock-code").unwrap(), "rate-limited");
    let text = response.body_mut().read_to_string().unwrap();
    assert!(text.contains("\"rate-limited\""), "{text}");
    // Liveness is not limited.
    let response = agent.get(format!("{}/healthz", server.url)).call().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // And without the limit (behind a proxy that limits), nothing is refused.
    let open = Server::start_with(&ledger, &["--rate-limit", "0"]);
    let url = format!("{}/v1/activations", open.url);
    for _ in 0..20 {
        assert_eq!(
            agent.post(&url).send(body.as_slice()).unwrap().status().as_u16(),
            200
        );
    }
}
