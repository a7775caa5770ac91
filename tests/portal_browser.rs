//! The offline portal in a real headless browser: Debian's chromium, driven
//! through chromedriver's WebDriver API. Upload a request file, let the
//! browser download the license, and import it with `nodelock import`.
//!
//! Ignored by a plain `cargo test` (a fresh machine has no browser); `.ci/run`
//! installs chromium and chromium-driver and runs it with
//! `cargo test --test portal_browser -- --ignored`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn tool(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

struct Driver {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(tool("CHROMEDRIVER", "/usr/bin/chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is needed (apt-get install chromium chromium-driver)");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while agent.get(format!("{base}/status")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { child, base, agent }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let mut response = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(&serde_json::to_vec(&body).unwrap()[..]),
        }
        .unwrap();
        let value: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        assert!(value["value"]["error"].is_null(), "{method} {path}: {value}");
        value["value"].clone()
    }
}

fn element_id(found: &Value) -> String {
    found
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

fn wait_for_download(dir: &Path) -> PathBuf {
    let started = Instant::now();
    loop {
        let done = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "lic"));
        if let Some(path) = done {
            return path;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no license was downloaded"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs chromium and chromedriver; .ci/run installs them and runs it with --ignored"]
fn portal_upload_and_download_in_headless_chromium() {
    let vendor = Env::new();
    let ledger = vendor.path("ledger.sqlite");
    let key = entitlement(&vendor, &ledger, 1);
    let server = Server::start(&ledger);

    let ws = Env::new().on("laptop.json").real_clock();
    let request = ws.path("activation.req");
    assert_eq!(
        code(&ws.run_store(&["request", &key, "-o", request.to_str().unwrap()])),
        0
    );

    let downloads = ws.path("downloads");
    let profile = ws.path("profile");
    std::fs::create_dir_all(&downloads).unwrap();
    let driver = Driver::start();
    let session = driver.call(
        "POST",
        "/session",
        json!({ "capabilities": { "alwaysMatch": { "goog:chromeOptions": {
            "binary": tool("CHROMIUM", "/usr/bin/chromium"),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            },
        }}}}),
    );
    let sid = session["sessionId"].as_str().unwrap().to_owned();
    let s = |path: &str| format!("/session/{sid}{path}");

    driver.call("POST", &s("/url"), json!({ "url": server.url }));
    let title = driver.call("GET", &s("/title"), Value::Null);
    assert_eq!(title, "nodelock activation portal");
    let input = element_id(&driver.call(
        "POST",
        &s("/element"),
        json!({ "using": "css selector", "value": "#request" }),
    ));
    driver.call(
        "POST",
        &s(&format!("/element/{input}/value")),
        json!({ "text": request.to_str().unwrap() }),
    );
    let button = element_id(&driver.call(
        "POST",
        &s("/element"),
        json!({ "using": "css selector", "value": "button[type=submit]" }),
    ));
    driver.call("POST", &s(&format!("/element/{button}/click")), json!({}));

    let license = wait_for_download(&downloads);
    let out = ws.run_store(&[
        "import",
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        license.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&ws.run_store(&["check", "--product", "surveyor"])), 0);
    driver.call("DELETE", &s(""), Value::Null);
}

/// The pool server's status page as a browser shows it: the same figures
/// and leases as `pool status --json`.
#[test]
#[ignore = "needs chromium and chromedriver; .ci/run installs them and runs it with --ignored"]
fn pool_status_page_in_headless_chromium() {
    let site = common::pool::pool_site(3, &[]);
    let server = common::pool::PoolServer::start(&site.server, "");
    for machine in ["laptop.json", "laptop-same-model.json"] {
        let ws = Env::new().on(machine).real_clock();
        let out = ws.run_store(&[
            "lease",
            "checkout",
            "surveyor",
            "--server",
            &server.url,
            "--pubkey",
            fixture(VENDOR_PUB).to_str().unwrap(),
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let status = common::pool::pool_status(&site.server, &server.url);
    let product = &status["products"][0];

    let profile = site.server.path("profile");
    let driver = Driver::start();
    let session = driver.call(
        "POST",
        "/session",
        json!({ "capabilities": { "alwaysMatch": { "goog:chromeOptions": {
            "binary": tool("CHROMIUM", "/usr/bin/chromium"),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        }}}}),
    );
    let sid = session["sessionId"].as_str().unwrap().to_owned();
    let s = |path: &str| format!("/session/{sid}{path}");
    driver.call("POST", &s("/url"), json!({ "url": server.url }));
    assert_eq!(
        driver.call("GET", &s("/title"), Value::Null),
        "nodelock license server"
    );
    let text = |css: &str| {
        let id = element_id(&driver.call(
            "POST",
            &s("/element"),
            json!({ "using": "css selector", "value": css }),
        ));
        driver.call("GET", &s(&format!("/element/{id}/text")), Value::Null)
    };
    assert_eq!(text(".seats"), product["seats"].to_string());
    assert_eq!(text(".in-use"), product["in_use"].to_string());
    assert_eq!(text(".available"), product["available"].to_string());
    let rows = driver.call(
        "POST",
        &s("/elements"),
        json!({ "using": "css selector", "value": "tr.lease" }),
    );
    assert_eq!(
        rows.as_array().unwrap().len(),
        product["leases"].as_array().unwrap().len()
    );
    driver.call("DELETE", &s(""), Value::Null);
}
