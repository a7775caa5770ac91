//! Exact seats: N seats give at most N leases under any concurrency, across
//! a pool server killed and restarted, and a seat whose client stops
//! renewing comes back by itself after the lease's length.

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use common::http::{agent, post};
use common::pool::*;
use common::*;
use nodelock::documents::lease::{self, Checkout, LeaseMode};
use nodelock::format::PrivateKey;
use nodelock::machine::facts::Facts;
use nodelock::machine::fingerprint::Fingerprint;

/// `n` lease requests for surveyor, each from its own machine and holder key.
fn requests(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let facts = Facts::from_json(nth_machine_facts(i).as_bytes(), "fleet").unwrap();
            let fp = Fingerprint::from_facts(&facts).unwrap();
            let holder = PrivateKey::generate().unwrap();
            let mut nonce = [0u8; 16];
            nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let checkout = Checkout {
                product: "surveyor",
                mode: LeaseMode::Online,
                days: 0,
                fingerprint: &fp,
                user: Some(format!("user{i}")),
                host: Some(format!("host{i}")),
            };
            lease::make_lease_request(&checkout, &holder, nonce, 1_780_000_000)
                .unwrap()
                .1
                .into_bytes()
        })
        .collect()
}

/// Posts every request at once, each retried (the same bytes: the same
/// request) until some server answers; the answers.
fn load(url: &Mutex<String>, bodies: Vec<Vec<u8>>) -> Vec<(u16, String)> {
    let agent = agent();
    std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let agent = agent.clone();
                scope.spawn(move || {
                    for _ in 0..400 {
                        let target = format!("{}/v1/leases", url.lock().unwrap());
                        if let Ok(answer) = post(&agent, &target, &body) {
                            return answer;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    panic!("no pool server answered");
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn granted_ids(answers: &[(u16, String)]) -> BTreeSet<String> {
    answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, body)| {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            v["lease_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn three_hundred_concurrent_checkouts_for_twenty_seats() {
    let site = pool_site(20, &[]);
    let server = PoolServer::start(&site.server, "");
    let url = Mutex::new(server.url.clone());
    let answers = load(&url, requests(300));
    let granted = granted_ids(&answers);
    assert_eq!(granted.len(), 20);
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 20);
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 409, "{body}");
        assert!(
            body.contains("\"all-seats-in-use\"") && body.contains("all 20 seat(s)"),
            "{body}"
        );
    }
    let status = pool_status(&site.server, &server.url);
    assert_eq!(status["products"][0]["in_use"], 20);
    let held: BTreeSet<String> = status["products"][0]["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(held, granted);
}

#[cfg(unix)]
#[test]
fn sigkill_under_load_grants_no_seat_twice() {
    let site = pool_site(20, &[]);
    let first = PoolServer::start(&site.server, "");
    let url = Mutex::new(first.url.clone());
    let bodies = requests(300);
    let answers = std::thread::scope(|scope| {
        let loader = scope.spawn(|| load(&url, bodies));
        std::thread::sleep(Duration::from_millis(150));
        first.kill();
        let second = PoolServer::start(&site.server, "");
        *url.lock().unwrap() = second.url.clone();
        let answers = loader.join().unwrap();
        (answers, second)
    });
    let (answers, second) = answers;
    let granted = granted_ids(&answers);
    let status = pool_status(&site.server, &second.url);
    let held: BTreeSet<String> = status["products"][0]["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        held, granted,
        "leases clients hold and leases the server reports differ"
    );
    assert!(granted.len() <= 20);
    assert_eq!(granted.len(), 20, "every seat was eventually granted");
}

#[test]
fn a_seat_whose_client_stops_renewing_comes_back_after_the_lease() {
    let site = pool_site(1, &["--lease-minutes", "15"]);
    let server = PoolServer::start(&site.server, "2026-06-01T10:00:00Z");
    let a = Env::new().on("laptop.json").real_clock();
    let out = checkout(&a, &server.url);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lease_a = json(&out)["lease_id"].as_str().unwrap().to_owned();
    let b = Env::new().on("laptop-same-model.json").real_clock();
    assert_eq!(code(&checkout(&b, &server.url)), 23);
    // A crashed client renews no more; fourteen minutes on, the seat is still held …
    server.kill();
    let server = PoolServer::start(&site.server, "2026-06-01T10:14:00Z");
    assert_eq!(code(&checkout(&b, &server.url)), 23);
    // … and after the lease's fifteen minutes it is another client's.
    server.kill();
    let server = PoolServer::start(&site.server, "2026-06-01T10:15:01Z");
    let out = checkout(&b, &server.url);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = a.run_store(&["lease", "renew", &lease_a, "--server", &server.url]);
    assert_eq!(code(&out), 36, "{}", stderr(&out));
    assert!(stderr(&out).contains("lapsed"), "{}", stderr(&out));
}

#[test]
fn a_pool_server_whose_clock_went_back_grants_nothing_and_says_why() {
    let site = pool_site(2, &[]);
    let server = PoolServer::start(&site.server, "2026-06-01T10:00:00Z");
    let a = Env::new().on("laptop.json").real_clock();
    let take = |url: &str| {
        a.run_store(&[
            "lease",
            "checkout",
            "surveyor",
            "--server",
            url,
            "--pubkey",
            fixture(VENDOR_PUB).to_str().unwrap(),
        ])
    };
    assert_eq!(code(&take(&server.url)), 0);
    server.kill();
    let server = PoolServer::start(&site.server, "2026-06-01T09:00:00Z");
    let out = take(&server.url);
    assert_eq!(code(&out), 17, "{}", stderr(&out));
    assert!(stderr(&out).contains("clock"), "{}", stderr(&out));
}
