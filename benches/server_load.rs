//! Load benchmark for the activation server: activations per second with N
//! concurrent HTTP clients on this machine, next to the raw P-256 sign +
//! verify throughput of the same cores measured in the same run (each
//! activation costs one verify of the request and one signature of the
//! license). Target: at least 60 % of the raw figure.
//!
//! The clients run in this process, on the same cores as the server. Like
//! `wrk`, the load generator is a lean keep-alive HTTP/1.1 client so that it
//! takes as little of the machine as it can; `LOAD_CLIENT=ureq` uses the
//! `ureq` client that `nodelock activate` uses instead, for comparison.
//!
//! `cargo bench --bench server_load` (env `LOAD_CLIENTS`, `LOAD_REQUESTS` to vary).
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nodelock::documents::activation::{self, ActivationKey};
use nodelock::format::PrivateKey;
use nodelock::machine::facts::Facts;
use nodelock::machine::fingerprint::Fingerprint;
use nodelock::vendor::ledger::{EntitlementSpec, Ledger};
use nodelock::vendor::server::{self, Service};

#[path = "support/mod.rs"]
mod support;

// The same allocator as the `nodelock` binary, whose server this measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A keep-alive HTTP/1.1 connection that posts bodies and reads answers.
struct Lean {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Lean {
    fn connect(addr: SocketAddr) -> Lean {
        let writer = TcpStream::connect(addr).unwrap();
        writer.set_nodelay(true).unwrap();
        let reader = BufReader::new(writer.try_clone().unwrap());
        Lean { writer, reader }
    }

    /// Posts `body` to `path`; returns the status.
    fn post(&mut self, path: &str, body: &[u8]) -> u16 {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-nodelock-document\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.writer.write_all(head.as_bytes()).unwrap();
        self.writer.write_all(body).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut answer = vec![0u8; length];
        self.reader.read_exact(&mut answer).unwrap();
        status
    }
}

/// The async client's loop: posts bodies until none are left.
async fn lean_async(addr: SocketAddr, bodies: &[Vec<u8>], next: &AtomicUsize, garbage: bool) {
    let mut conn = support::Conn::connect(addr).await;
    let expect = if garbage { 400 } else { 200 };
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(body) = bodies.get(i) else { break };
        let body: &[u8] = if garbage { b"garbage" } else { &body[..] };
        let (status, _) = conn.post("/v1/activations", body).await;
        assert_eq!(status, expect);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench --no-run` and test discovery
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let clients = env_or("LOAD_CLIENTS", 48);
    let total = env_or("LOAD_REQUESTS", 4000);
    let warmup = total / 10;
    let vendor = PrivateKey::load(&fixture("keys/TEST-ONLY-vendor.key")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ledger_path = dir.path().join("ledger.sqlite");
    let mut ledger = Ledger::open(&ledger_path).unwrap();
    let spec = EntitlementSpec {
        features: vec!["gnss".into()],
        customer: Some("ACME".into()),
        ..EntitlementSpec::new("surveyor", 10_000_000)
    };
    let (_, key): (String, ActivationKey) = ledger.create_entitlement(&spec, 1_780_000_000, "bench").unwrap();
    drop(ledger);

    eprintln!("preparing {total} activation requests …");
    let fp = Fingerprint::from_facts(&Facts::load(&fixture("machines/laptop.json")).unwrap()).unwrap();
    let install = PrivateKey::generate().unwrap();
    let bodies: Vec<Vec<u8>> = (0..total)
        .map(|i| {
            let mut nonce = [0u8; 16];
            nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
            activation::make_request(&key, &fp, &install, nonce, 1_780_000_000)
                .unwrap()
                .1
                .into_bytes()
        })
        .collect();

    // Log as `vendor serve` does (one line per request), into a sink.
    tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_ansi(false)
        .init();
    let service = Service::new(
        ledger_path,
        PrivateKey::load(&fixture("keys/TEST-ONLY-vendor.key")).unwrap(),
    )
    .unwrap();
    // The bench is one address making thousands of requests a second: the
    // per-address rate limit would measure itself, so it is off here.
    let limits = server::Limits {
        rate: None,
        ..server::Limits::default()
    };
    let running = server::start("127.0.0.1:0".parse().unwrap(), service, cores, limits).unwrap();
    let url = format!("http://{}/v1/activations", running.addr);

    let next = AtomicUsize::new(0);
    let measured_from = AtomicUsize::new(0);
    let mut measured_start = None;
    let started = Instant::now();
    let mode = std::env::var("LOAD_CLIENT").unwrap_or_default();
    let garbage = std::env::var_os("LOAD_GARBAGE").is_some();
    std::thread::scope(|s| {
        if mode == "ureq" || mode == "threads" {
            for _ in 0..clients {
                s.spawn(|| {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(60)))
                        .build()
                        .into();
                    let mut lean = (mode == "threads").then(|| Lean::connect(running.addr));
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { break };
                        let body: &[u8] = if garbage { b"garbage" } else { &body[..] };
                        let status = match lean.as_mut() {
                            Some(conn) => conn.post("/v1/activations", body),
                            None => {
                                let mut response = agent.post(&url).send(body).unwrap();
                                let _ = response.body_mut().read_to_string().unwrap();
                                response.status().as_u16()
                            }
                        };
                        assert_eq!(status, if garbage { 400 } else { 200 });
                    }
                });
            }
        } else {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(support::join_all(
                    (0..clients)
                        .map(|_| lean_async(running.addr, &bodies, &next, garbage))
                        .collect(),
                ));
            });
        }
        // Start the clock once the warm-up requests have been handed out.
        while next.load(Ordering::Relaxed) < warmup && started.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(1));
        }
        measured_from.store(next.load(Ordering::Relaxed), Ordering::Relaxed);
        measured_start = Some((Instant::now(), support::cpu_seconds()));
    });
    let elapsed = measured_start.map_or(started.elapsed(), |(t, _)| t.elapsed());
    let cpu_busy = match (measured_start.and_then(|(_, c)| c), support::cpu_seconds()) {
        (Some(a), Some(b)) => format!(
            "{:.0} %",
            100.0 * (b - a) / (elapsed.as_secs_f64() * cores as f64)
        ),
        _ => "unknown".into(),
    };
    let measured = total - measured_from.load(Ordering::Relaxed);
    let activations_per_sec = measured as f64 / elapsed.as_secs_f64();
    running.stop();

    let raw = support::raw_throughput(&vendor, cores, 3.0);
    let client = match mode.as_str() {
        "ureq" => "ureq (a thread each)",
        "threads" => "lean keep-alive (a thread each)",
        _ => "lean keep-alive (all on one async thread)",
    };
    println!(
        "server_load: {clients} concurrent {client} clients, {measured} activations measured (after {warmup} warm-up), {cores} cores"
    );
    println!(
        "  activations/s through the server:        {activations_per_sec:>8.0}  (CPU busy {cpu_busy} of {cores} cores)"
    );
    println!("  raw P-256 sign+verify pairs/s, {cores} threads: {raw:>8.0}");
    println!(
        "  ratio: {:.0} % (target ≥ 60 %)",
        100.0 * activations_per_sec / raw
    );
}
