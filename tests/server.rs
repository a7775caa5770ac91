//! The activation server for real: the `nodelock vendor serve` binary on a
//! free loopback port, driven by `nodelock activate`/`deactivate` and by raw
//! HTTP clients.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::http::*;
use common::*;
use nodelock::vendor::ledger::Ledger;

fn vendor_env() -> (Env, PathBuf) {
    let env = Env::new();
    let ledger = env.path("ledger.sqlite");
    (env, ledger)
}

fn activate(ws: &Env, key: &str, url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "activate",
        key,
        "--server",
        url,
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap().to_owned().leak(),
    ];
    args.extend(extra);
    ws.run_store(&args)
}

#[test]
fn activate_check_deactivate_and_move_online() {
    let (vendor, ledger) = vendor_env();
    let key = entitlement(&vendor, &ledger, 1);
    let server = Server::start(&ledger);
    let a = Env::new().on("laptop.json").real_clock();
    let out = activate(&a, &key, &server.url, &["--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["outcome"], "installed");
    assert_eq!(code(&a.run_store(&["check", "--product", "surveyor"])), 0);

    let b = Env::new().on("laptop-same-model.json").real_clock();
    let refused = activate(&b, &key, &server.url, &["--json"]);
    assert_eq!(code(&refused), 23);
    assert_eq!(json(&refused)["error"]["code"], "no-free-seat");

    let id = json(&a.run_store(&["status", "--json"]))["licenses"][0]["license_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = a.run_store(&["deactivate", &id, "--server", &server.url, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["receipt"]["transfers_used"], 1);
    assert_eq!(code(&a.run_store(&["check", "--product", "surveyor"])), 18);

    // B's retry re-sends its pending request and now gets the seat.
    let out = activate(&b, &key, &server.url, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&b.run_store(&["check", "--product", "surveyor"])), 0);
    let report = Ledger::open(&ledger).unwrap().report(0).unwrap();
    assert_eq!(report[0].used, 1);
    assert_eq!(report[0].activations.len(), 2, "B's retry took no second seat");
    assert!(
        report[0]
            .activations
            .iter()
            .all(|a| a.method == nodelock::vendor::ledger::Method::Online)
    );
}

#[test]
fn bad_bodies_get_a_4xx_json_error_and_leave_the_ledger_untouched() {
    let (vendor, ledger) = vendor_env();
    let key = entitlement(&vendor, &ledger, 5);
    let server = Server::start(&ledger);
    let agent = agent();
    let good = requests(&key, 1).remove(0);
    let license = std::fs::read(fixture("documents/license.lic")).unwrap();
    let deact = std::fs::read(fixture("documents/deactivation-request.deact")).unwrap();
    let before = audit_len(&ledger);
    let activations = format!("{}/v1/activations", server.url);
    let deactivations = format!("{}/v1/deactivations", server.url);
    let time = format!("{}/v1/time", server.url);
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("empty clock request", &time, vec![], 400),
        (
            "garbage clock request",
            &time,
            b"\x00 not a document".to_vec(),
            400,
        ),
        ("a license as clock request", &time, license.clone(), 415),
        (
            "a clock request as activation",
            &activations,
            {
                let key = nodelock::format::PrivateKey::generate().unwrap();
                nodelock::documents::time::make_clock_request([1; 16], 0, &key)
                    .unwrap()
                    .1
                    .into_bytes()
            },
            415,
        ),
        ("empty", &activations, vec![], 400),
        (
            "garbage",
            &activations,
            b"\x00\x01\x02 not a document".to_vec(),
            400,
        ),
        ("truncated", &activations, good[..good.len() / 2].to_vec(), 400),
        ("a license", &activations, license.clone(), 415),
        ("a deactivation", &activations, deact.clone(), 415),
        ("an activation as deactivation", &deactivations, good.clone(), 415),
        (
            "tampered",
            &activations,
            {
                let text = String::from_utf8(good.clone()).unwrap();
                let block = nodelock::format::armor::find_block(text.as_bytes())
                    .unwrap()
                    .unwrap();
                let mut bytes = block.bytes;
                let mid = bytes.len() / 2;
                bytes[mid] ^= 1;
                bytes
            },
            400,
        ),
    ];
    for (what, url, body, status) in cases {
        let (got, text) = post(&agent, url, &body).unwrap();
        assert_eq!(got, status, "{what}: {text}");
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert!(
            v["error"]["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{what}: {text}"
        );
        assert!(
            v["error"]["message"].as_str().is_some_and(|m| m.len() > 10),
            "{what}: {text}"
        );
    }
    // Oversized: refused from its Content-Length, before the body is sent at all.
    {
        use std::io::{Read, Write};
        let addr = server.url.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        write!(
            conn,
            "POST /v1/activations HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 52428800\r\n\r\n"
        )
        .unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answer = vec![0u8; 4096];
        let n = conn.read(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("\"too-large\""), "{answer}");
    }
    let (got, _) = post(&agent, &format!("{}/v1/nothing", server.url), b"x").unwrap();
    assert_eq!(got, 404);
    assert_eq!(audit_len(&ledger), before, "bad bodies wrote to the ledger");
    assert_eq!(Ledger::open(&ledger).unwrap().report(0).unwrap()[0].used, 0);
    // A good one still works afterwards.
    let (got, text) = post(&agent, &activations, &good).unwrap();
    assert_eq!(got, 200, "{text}");
    assert!(text.contains("BEGIN NODELOCK LICENSE"));
}

/// Counts answers received and requests that had to be retried.
#[derive(Default)]
struct LoadStats {
    answered: std::sync::atomic::AtomicUsize,
    retried: std::sync::atomic::AtomicUsize,
}

fn run_load(urls: &std::sync::Mutex<String>, bodies: Vec<Vec<u8>>) -> Vec<(u16, String)> {
    run_load_counted(urls, bodies, &LoadStats::default())
}

fn run_load_counted(
    urls: &std::sync::Mutex<String>,
    bodies: Vec<Vec<u8>>,
    stats: &LoadStats,
) -> Vec<(u16, String)> {
    use std::sync::atomic::Ordering;
    let agent = agent();
    std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let agent = agent.clone();
                scope.spawn(move || {
                    // Retry (same body: the same request) until a server answers.
                    for _ in 0..200 {
                        let url = format!("{}/v1/activations", urls.lock().unwrap());
                        match post(&agent, &url, &body) {
                            Ok(answer) => {
                                stats.answered.fetch_add(1, Ordering::SeqCst);
                                return answer;
                            }
                            Err(_) => {
                                stats.retried.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                    panic!("no server answered");
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn two_hundred_concurrent_activations_for_ten_seats() {
    let (vendor, ledger) = vendor_env();
    let key = entitlement(&vendor, &ledger, 10);
    let server = Server::start(&ledger);
    let url = std::sync::Mutex::new(server.url.clone());
    let answers = run_load(&url, requests(&key, 200));
    let licenses = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(licenses, 10);
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 409, "{body}");
        assert!(
            body.contains("\"no-free-seat\"") && body.contains("all 10 seat(s)"),
            "{body}"
        );
    }
    let l = Ledger::open(&ledger).unwrap();
    assert_eq!(l.integrity_check().unwrap(), "ok");
    assert!(l.counter_mismatches().unwrap().is_empty());
    assert_eq!(l.report(0).unwrap()[0].used, 10);
}

#[cfg(unix)]
#[test]
fn sigkill_under_load_loses_no_license_a_client_got_and_keeps_none_it_did_not() {
    let (vendor, ledger) = vendor_env();
    let key = entitlement(&vendor, &ledger, 10);
    let first = Server::start(&ledger);
    let url = Arc::new(std::sync::Mutex::new(first.url.clone()));
    let bodies = requests(&key, 200);
    let stats = Arc::new(LoadStats::default());
    let killer = {
        let url = url.clone();
        let ledger = ledger.clone();
        let stats = stats.clone();
        std::thread::spawn(move || {
            // Kill once the load is under way: a few answers out, most in flight.
            while stats.answered.load(std::sync::atomic::Ordering::SeqCst) < 5 {
                std::thread::sleep(Duration::from_micros(200));
            }
            first.kill();
            // Restart on the same ledger; clients retry their same request there.
            let second = Server::start(&ledger);
            *url.lock().unwrap() = second.url.clone();
            second
        })
    };
    let answers = run_load_counted(&url, bodies.clone(), &stats);
    let second = killer.join().unwrap();
    let retried = stats.retried.load(std::sync::atomic::Ordering::SeqCst);
    assert!(retried > 0, "the kill came after the load; nothing was in flight");
    println!("{retried} requests were cut off by the kill and retried");
    let held: std::collections::BTreeSet<String> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, body)| {
            nodelock::documents::license::License::read_unverified(body.as_bytes())
                .unwrap()
                .id
        })
        .collect();
    // Clients whose answer was lost with the first server retried the same
    // request; whatever the ledger recorded for them came back as a replay.
    let l = Ledger::open(&ledger).unwrap();
    assert_eq!(l.integrity_check().unwrap(), "ok");
    assert!(l.counter_mismatches().unwrap().is_empty());
    let report = l.report(0).unwrap();
    let recorded: std::collections::BTreeSet<String> = report[0]
        .activations
        .iter()
        .map(|a| a.license_id.clone())
        .collect();
    assert_eq!(
        held, recorded,
        "licenses held by clients and activations in the ledger differ"
    );
    assert_eq!(recorded.len(), 10);
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 409, "{body}");
    }
    drop(second);
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_server_gracefully() {
    let (vendor, ledger) = vendor_env();
    let out = vendor.run(&["vendor", "init", "--ledger", ledger.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut server = Server::start(&ledger);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn network_failures_are_named_and_leave_the_offline_files() {
    let (vendor, ledger) = vendor_env();
    let key = entitlement(&vendor, &ledger, 1);
    let ws = Env::new().on("laptop.json").real_clock();
    let req_file = ws.path("left.req");
    let rf = req_file.to_str().unwrap().to_owned();

    // Nothing listening.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = activate(&ws, &key, &format!("http://{dead}"), &["--request-out", &rf]);
    assert_eq!(code(&out), 41, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("connection refused") && err.contains("upload") && err.contains("nodelock import"),
        "{err}"
    );
    assert!(req_file.exists());

    // A server that never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let out = activate(
        &ws,
        &key,
        &format!("http://{silent_addr}"),
        &["--request-out", &rf, "--timeout", "1"],
    );
    assert_eq!(code(&out), 42, "{}", stderr(&out));
    drop(silent);

    // Something that is not a nodelock server.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in proxy.incoming().flatten().take(1) {
            // Read the whole request first: answering while the client still
            // sends its body would reset the connection instead of answering.
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let body = "<html>Bad Gateway</html>";
            let _ = write!(
                conn,
                "HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let out = activate(
        &ws,
        &key,
        &format!("http://{proxy_addr}"),
        &["--request-out", &rf],
    );
    assert_eq!(code(&out), 44, "{}", stderr(&out));
    assert!(stderr(&out).contains("502"), "{}", stderr(&out));

    // TLS to a plain HTTP server.
    let server = Server::start(&ledger);
    let https = server.url.replace("http://", "https://");
    let out = activate(&ws, &key, &https, &["--request-out", &rf]);
    assert_eq!(code(&out), 43, "{}", stderr(&out));

    // A name that does not resolve.
    let out = activate(
        &ws,
        &key,
        "http://nodelock-test.invalid",
        &["--request-out", &rf, "--timeout", "5"],
    );
    assert_eq!(code(&out), 40, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be resolved (DNS)"),
        "{}",
        stderr(&out)
    );

    // Finishing offline with the file that was left: every attempt re-used one
    // pending request, and the portal/vendor answer takes one seat.
    let lic = ws.path("l.lic");
    let out = vendor.run(&[
        "vendor",
        "answer",
        "--ledger",
        ledger.to_str().unwrap(),
        "--signing-key",
        fixture(VENDOR_KEY).to_str().unwrap(),
        &rf,
        "-o",
        lic.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = ws.run_store(&[
        "import",
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        lic.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&ws.run_store(&["check", "--product", "surveyor"])), 0);
    // Deactivating with the server unreachable leaves the file to send.
    let id = json(&ws.run_store(&["status", "--json"]))["licenses"][0]["license_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deact = ws.path("left.deact");
    let out = ws.run_store(&[
        "deactivate",
        &id,
        "--server",
        &format!("http://{dead}"),
        "--request-out",
        deact.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 41, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already removed from this machine"),
        "{}",
        stderr(&out)
    );
    assert_eq!(code(&ws.run_store(&["check", "--product", "surveyor"])), 18);
    let out = vendor.run(&[
        "vendor",
        "answer",
        "--ledger",
        ledger.to_str().unwrap(),
        "--signing-key",
        fixture(VENDOR_KEY).to_str().unwrap(),
        deact.to_str().unwrap(),
        "-o",
        ws.path("r.rcpt").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // All those attempts were one request; its seat is free again.
    let report = Ledger::open(&ledger).unwrap().report(0).unwrap();
    assert_eq!(report[0].activations.len(), 1);
    assert_eq!(report[0].used, 0);
}

#[test]
fn server_url_comes_from_flag_then_environment_then_config_file() {
    let (vendor, ledger) = vendor_env();
    let key = entitlement(&vendor, &ledger, 3);
    let server = Server::start(&ledger);
    let pubkey = fixture(VENDOR_PUB);
    let ws = Env::new().on("laptop.json").real_clock();
    let config = ws.path("config.toml");
    std::fs::write(&config, format!("server = \"{}\"\n", server.url)).unwrap();
    let store = ws.store();
    let run = |envs: &[(&str, &str)]| {
        let mut cmd = ws.std_cmd();
        cmd.args([
            "activate",
            &key,
            "--pubkey",
            pubkey.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ]);
        cmd.env_remove("NODELOCK_SERVER")
            .env("NODELOCK_CONFIG", ws.path("none.toml"));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&[]);
    assert_eq!(code(&out), 2, "no server anywhere: {}", stderr(&out));
    assert!(stderr(&out).contains("--server"));
    let out = run(&[("NODELOCK_CONFIG", config.to_str().unwrap())]);
    assert_eq!(code(&out), 0, "config file: {}", stderr(&out));
    let out = run(&[
        ("NODELOCK_CONFIG", config.to_str().unwrap()),
        ("NODELOCK_SERVER", "http://127.0.0.1:1"),
    ]);
    assert_eq!(
        code(&out),
        41,
        "the environment wins over the file: {}",
        stderr(&out)
    );
    let doctor = ws.run_store(&["doctor", "--server", &server.url, "--json"]);
    let d = json(&doctor);
    assert_eq!(d["server"]["healthy"], true, "{d}");
    assert_eq!(d["server"]["source"], "--server");
}

/// Uploads `content` to the portal as the form's `request` file.
fn post_portal(
    agent: &ureq::Agent,
    server: &str,
    filename: &str,
    content: &[u8],
) -> ureq::http::Response<ureq::Body> {
    let (ctype, body) = multipart("request", filename, content);
    agent
        .post(format!("{server}/portal"))
        .header("content-type", &ctype)
        .send(&body[..])
        .unwrap()
}

/// A multipart form body with one file field.
fn multipart(field: &str, filename: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "nodelock-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn the_portal_page_works_without_javascript() {
    let (vendor, ledger) = vendor_env();
    let key = entitlement(&vendor, &ledger, 1);
    let server = Server::start(&ledger);
    let agent = agent();
    let page = agent
        .get(&server.url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(page.contains("<form method=\"post\" action=\"/portal\" enctype=\"multipart/form-data\">"));
    assert!(page.contains("<label for=\"request\">") && page.contains("lang=\"en\""));
    assert!(!page.to_lowercase().contains("<script"));

    let ws = Env::new().on("laptop.json").real_clock();
    let req = ws.path("r.req");
    assert_eq!(
        code(&ws.run_store(&["request", &key, "-o", req.to_str().unwrap()])),
        0
    );
    let mut response = post_portal(&agent, &server.url, "r.req", &std::fs::read(&req).unwrap());
    assert_eq!(response.status().as_u16(), 200);
    let disposition = response
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"L-"),
        "{disposition}"
    );
    let license = response.body_mut().read_to_string().unwrap();
    let lic = ws.path("portal.lic");
    std::fs::write(&lic, license).unwrap();
    let out = ws.run_store(&[
        "import",
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        lic.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A clock request carried to the portal comes back as a time statement
    // the store imports.
    let clock_req = ws.path("clock.req");
    let out = ws.run_store(&["clock", "request", "-o", clock_req.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut response = post_portal(
        &agent,
        &server.url,
        "clock.req",
        &std::fs::read(&clock_req).unwrap(),
    );
    assert_eq!(response.status().as_u16(), 200);
    let statement = ws.path("portal.time");
    std::fs::write(&statement, response.body_mut().read_to_string().unwrap()).unwrap();
    let out = ws.run_store(&["import", statement.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["outcome"], "clock-synced");

    // A refusal is a readable page, not a download.
    let other = Env::new().on("laptop-same-model.json").real_clock();
    let req2 = other.path("r2.req");
    assert_eq!(
        code(&other.run_store(&["request", &key, "-o", req2.to_str().unwrap()])),
        0
    );
    let mut response = post_portal(&agent, &server.url, "r2.req", &std::fs::read(&req2).unwrap());
    assert_eq!(response.status().as_u16(), 409);
    // The refusal's code rides in the header the request log records.
    assert_eq!(response.headers().get("x-nodelock-code").unwrap(), "no-free-seat");
    let page = response.body_mut().read_to_string().unwrap();
    assert!(
        page.contains("role=\"alert\"") && page.contains("seat(s) of this entitlement are in use"),
        "{page}"
    );
    let response = post_portal(&agent, &server.url, "junk.txt", b"hello");
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(response.headers().get("x-nodelock-code").unwrap(), "bad-document");
}
