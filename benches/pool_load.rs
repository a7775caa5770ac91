//! Load benchmark for the pool server: checkouts and renewals per second
//! with 500 clients on loopback, next to the raw P-256 sign + verify
//! throughput of the same cores in the same run (a checkout or a renewal
//! costs one verify of the client's document and one signature of the
//! lease). Target: at least 60 % of the raw figure. Then the 500 clients
//! renew every few seconds, as applications do, while one more client
//! checks out seats: its p50/p99 latency. Last, memory and disk per live
//! lease.
//!
//! The clients run in this process, on the same cores as the server, all on
//! one async thread with lean keep-alive connections (`support::Conn`).
//!
//! `cargo bench --bench pool_load` (env `LOAD_CLIENTS`, `LOAD_ROUNDS`,
//! `LOAD_EVERY_MS` to vary).
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nodelock::base::random::OsRandom;
use nodelock::documents::lease::{self, Checkout, LeaseMode, LeaseOp};
use nodelock::format::PrivateKey;
use nodelock::machine::facts::Facts;
use nodelock::machine::fingerprint::Fingerprint;
use nodelock::pool::http::{self, PoolService, Views};
use nodelock::pool::{Pool, PoolDb};

#[path = "support/mod.rs"]
mod support;

// The same allocator as the `nodelock` binary, whose server this measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use support::fixture;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn nonce(n: u64) -> [u8; 16] {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&n.to_be_bytes());
    nonce[8..].copy_from_slice(&std::process::id().to_be_bytes().repeat(2));
    nonce
}

/// One simulated application: its holder key and what it sends.
struct Client {
    holder: PrivateKey,
    checkouts: Vec<Vec<u8>>,
}

fn lease_id(answer: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(answer).unwrap();
    v["lease_id"].as_str().unwrap().to_owned()
}

/// Runs `each` for every client on one async thread; returns the wall time.
fn drive<'a, F, Fut>(clients: &'a [Client], each: F) -> Duration
where
    F: Fn(usize, &'a Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    rt.block_on(support::join_all(
        clients.iter().enumerate().map(|(i, c)| each(i, c)).collect(),
    ));
    started.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench --no-run` and test discovery
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let n_clients = env_or("LOAD_CLIENTS", 500);
    let rounds = env_or("LOAD_ROUNDS", 8);
    let every = Duration::from_millis(env_or("LOAD_EVERY_MS", 3000) as u64);
    let vendor = PrivateKey::load(&fixture("keys/TEST-ONLY-vendor.key")).unwrap();

    let served = support::served_pool(&vendor, 10, now() - 60);

    eprintln!("preparing {n_clients} clients × {rounds} checkouts …");
    let client_fp = Fingerprint::from_facts(&Facts::load(&fixture("machines/laptop.json")).unwrap()).unwrap();
    let mut n: u64 = 0;
    let mut next_nonce = || {
        n += 1;
        nonce(n)
    };
    // An online checkout by `holder` with these labels, as the client sends it.
    let mut online_request = |holder: &PrivateKey, user: String, host: Option<String>| {
        let checkout = Checkout {
            product: "surveyor",
            mode: LeaseMode::Online,
            days: 0,
            fingerprint: &client_fp,
            user: Some(user),
            host,
        };
        lease::make_lease_request(&checkout, holder, next_nonce(), now())
            .unwrap()
            .1
            .into_bytes()
    };
    let clients: Vec<Client> = (0..n_clients)
        .map(|i| {
            let holder = PrivateKey::generate().unwrap();
            let checkouts = (0..rounds)
                .map(|_| online_request(&holder, format!("user{i}"), Some(format!("host{i}"))))
                .collect();
            Client { holder, checkouts }
        })
        .collect();
    let probe_holder = PrivateKey::generate().unwrap();
    let probes: Vec<Vec<u8>> = (0..4000)
        .map(|_| online_request(&probe_holder, "probe".into(), None))
        .collect();

    // Log as `pool serve` does, into a sink.
    tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_ansi(false)
        .init();
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("pool.sqlite");
    let pool = Pool::new(vec![served], PoolDb::open(&db_path).unwrap(), Arc::new(OsRandom));
    let service = PoolService::new(
        pool,
        Arc::new(nodelock::base::clock::SystemClock),
        "bench-token".into(),
        Views::Open,
    )
    .unwrap();
    // One address making thousands of requests a second: the per-address
    // rate limit would measure itself, so it is off here.
    let limits = nodelock::vendor::server::Limits {
        rate: None,
        ..Default::default()
    };
    let running = http::start("127.0.0.1:0".parse().unwrap(), Arc::new(service), cores, limits).unwrap();
    let addr: SocketAddr = running.addr;
    let rss_before = support::rss_bytes();

    // 1. Checkouts, every client back to back.
    let latencies = std::sync::Mutex::new(Vec::new());
    let last_lease: Vec<std::sync::Mutex<String>> = (0..n_clients).map(|_| Default::default()).collect();
    let cpu0 = support::cpu_seconds();
    let threads0 = support::cpu_by_thread();
    let checkout_time = drive(&clients, |i, c| {
        let (latencies, last_lease) = (&latencies, &last_lease);
        async move {
            let mut conn = support::Conn::connect(addr).await;
            for body in &c.checkouts {
                let t = Instant::now();
                let (status, answer) = conn.post("/v1/leases", body).await;
                latencies.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
                *last_lease[i].lock().unwrap() = lease_id(&answer);
            }
        }
    });
    let checkout_cpu = support::cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let checkout_threads = support::cpu_between(&threads0, &support::cpu_by_thread());
    let checkouts = n_clients * rounds;
    let checkouts_per_sec = checkouts as f64 / checkout_time.as_secs_f64();
    let mut saturated = latencies.into_inner().unwrap();

    // 2. Renewals, every client back to back on its last lease (the
    // documents signed beforehand, outside the measured time).
    let renewals: Vec<Vec<Vec<u8>>> = clients
        .iter()
        .zip(&last_lease)
        .map(|(c, id)| {
            let id = id.lock().unwrap().clone();
            (0..rounds + 3)
                .map(|_| {
                    lease::make_lease_update(&id, LeaseOp::Renew, &c.holder, next_nonce(), now())
                        .unwrap()
                        .1
                        .into_bytes()
                })
                .collect()
        })
        .collect();
    let cpu0 = support::cpu_seconds();
    let threads0 = support::cpu_by_thread();
    let renew_time = drive(&clients, |i, _| {
        let renewals = &renewals;
        async move {
            let mut conn = support::Conn::connect(addr).await;
            for body in &renewals[i][..rounds] {
                let (status, answer) = conn.post("/v1/leases/update", body).await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
            }
        }
    });
    let renew_cpu = support::cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let renew_threads = support::cpu_between(&threads0, &support::cpu_by_thread());
    let renewals_per_sec = (n_clients * rounds) as f64 / renew_time.as_secs_f64();

    // 3. Steady state: each client renews every `every` (spread evenly),
    // three times, while one more client checks out seats back to back.
    let probe_latencies = std::sync::Mutex::new(Vec::new());
    let steady_started = Instant::now();
    let steady_end = steady_started + every * 3;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let renewers = support::join_all(
            (0..n_clients)
                .map(|i| {
                    let renewals = &renewals;
                    async move {
                        let offset = every.mul_f64(i as f64 / n_clients as f64);
                        tokio::time::sleep(offset).await;
                        let mut conn = support::Conn::connect(addr).await;
                        for (k, body) in renewals[i][rounds..].iter().enumerate() {
                            let due = steady_started + offset + every * k as u32;
                            tokio::time::sleep_until(due.into()).await;
                            let (status, _) = conn.post("/v1/leases/update", body).await;
                            assert_eq!(status, 200);
                        }
                    }
                })
                .collect(),
        );
        let probe = async {
            let mut conn = support::Conn::connect(addr).await;
            for body in &probes {
                if Instant::now() >= steady_end {
                    break;
                }
                let t = Instant::now();
                let (status, _) = conn.post("/v1/leases", body).await;
                probe_latencies
                    .lock()
                    .unwrap()
                    .push(t.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(status, 200);
            }
        };
        tokio::join!(renewers, probe);
    });
    let mut probe = probe_latencies.into_inner().unwrap();
    let live = checkouts + probe.len();
    let rss_after = support::rss_bytes();
    running.stop();
    let db_bytes: u64 = ["pool.sqlite", "pool.sqlite-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum();

    let raw = support::raw_throughput(&vendor, cores, 3.0);
    let busy = |cpu: Option<f64>, t: Duration| {
        cpu.map_or("unknown".into(), |c| {
            format!("{:.0} %", 100.0 * c / (t.as_secs_f64() * cores as f64))
        })
    };
    println!(
        "pool_load: {n_clients} keep-alive clients on one async thread, {cores} cores, server and clients in one process"
    );
    println!("  raw P-256 sign+verify pairs/s, {cores} threads: {raw:>8.0}");
    println!(
        "  checkouts/s ({checkouts}):  {checkouts_per_sec:>8.0}  {:>3.0} % of raw  (CPU busy {})  latency under saturation p50 {:.1} ms, p99 {:.1} ms",
        100.0 * checkouts_per_sec / raw,
        busy(checkout_cpu, checkout_time),
        support::quantile(&mut saturated, 0.5),
        support::quantile(&mut saturated, 0.99),
    );
    println!(
        "  renewals/s ({}):  {renewals_per_sec:>8.0}  {:>3.0} % of raw  (CPU busy {})",
        n_clients * rounds,
        100.0 * renewals_per_sec / raw,
        busy(renew_cpu, renew_time),
    );
    println!(
        "  steady state: {n_clients} clients renewing every {:.1} s; one more client's checkouts ({}): p50 {:.2} ms, p99 {:.2} ms",
        every.as_secs_f64(),
        probe.len(),
        support::quantile(&mut probe, 0.5),
        support::quantile(&mut probe, 0.99),
    );
    // Where the CPU went: the server's threads (runtime workers, the
    // writer) against the load generator on the same cores.
    let raw_pair_us = 1e6 * cores as f64 / raw;
    for (what, threads, ops) in [
        ("checkout", &checkout_threads, checkouts),
        ("renewal", &renew_threads, n_clients * rounds),
    ] {
        let server: f64 = threads
            .iter()
            .filter(|(name, _)| name.starts_with("tokio-r") || name.starts_with("pool-writer"))
            .map(|(_, t)| t)
            .sum();
        let writer = threads.get("pool-writer").copied().unwrap_or(0.0);
        let total: f64 = threads.values().sum();
        let per_op = 1e6 * server / ops as f64;
        println!(
            "  CPU per {what}: server {per_op:.0} µs ({:.2}× a raw pair of {raw_pair_us:.0} µs; writer thread {:.0} µs), load generator {:.0} µs",
            per_op / raw_pair_us,
            1e6 * writer / ops as f64,
            1e6 * (total - server) / ops as f64,
        );
    }
    if let (Some(a), Some(b)) = (rss_before, rss_after) {
        println!(
            "  memory: resident set {:.1} MiB → {:.1} MiB with {live} live leases ({:.0} bytes per lease, clients' buffers included)",
            a as f64 / 1048576.0,
            b as f64 / 1048576.0,
            b.saturating_sub(a) as f64 / live as f64
        );
    }
    println!(
        "  disk: {:.1} MiB of database and WAL, {:.0} bytes per lease (usage log included)",
        db_bytes as f64 / 1048576.0,
        db_bytes as f64 / live as f64
    );
}
