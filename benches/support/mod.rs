//! What the load benchmarks share: the raw P-256 capacity of the cores they
//! run on, this process's CPU time, and a lean keep-alive HTTP/1.1 client
//! (like `wrk`'s) so the load generator takes as little of the machine as
//! it can.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use nodelock::format::PrivateKey;

/// Sign + verify pairs per second on `threads` threads for `secs` seconds.
pub fn raw_throughput(key: &PrivateKey, threads: usize, secs: f64) -> f64 {
    let public = key.public();
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let message = [0x5au8; 800];
                while started.elapsed().as_secs_f64() < secs {
                    let sig = key.sign_raw(&message);
                    public.verify_raw(&message, &sig).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// This process's CPU time (user + system) in seconds, where Linux tells it.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// This process's resident memory in bytes, where Linux tells it.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One keep-alive HTTP/1.1 connection, driven from an async task.
pub struct Conn {
    reader: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    line: String,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (read, writer) = stream.into_split();
        Conn {
            reader: tokio::io::BufReader::new(read),
            writer,
            line: String::new(),
        }
    }

    /// Posts `body` to `path`; returns the status and the answer's body.
    pub async fn post(&mut self, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-nodelock-document\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.writer.write_all(&request).await.unwrap();
        self.line.clear();
        self.reader.read_line(&mut self.line).await.unwrap();
        let status: u16 = self.line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut length = 0usize;
        loop {
            self.line.clear();
            self.reader.read_line(&mut self.line).await.unwrap();
            if self.line == "\r\n" {
                break;
            }
            if let Some(v) = self.line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut answer = vec![0u8; length];
        self.reader.read_exact(&mut answer).await.unwrap();
        (status, answer)
    }
}

/// Polls every future to completion on the current task (all connections on
/// one thread, like `wrk`, so the load generator costs few context switches).
pub async fn join_all<F: std::future::Future>(futures: Vec<F>) {
    let mut set: Vec<_> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// The value at quantile `q` (0..=1) of `samples`, sorted in place.
pub fn quantile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i]
}

/// CPU seconds (user + system) this process's threads have used, summed by
/// thread name (`tokio-runtime-w`, `pool-writer`, …), where Linux tells it.
pub fn cpu_by_thread() -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let name = stat
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map_or("?", |(name, _)| name)
            .to_owned();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        *by_name.entry(name).or_insert(0.0) += (ticks(11) + ticks(12)) / 100.0;
    }
    by_name
}

/// CPU seconds used between two [`cpu_by_thread`] readings, by thread name.
pub fn cpu_between(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
) -> std::collections::BTreeMap<String, f64> {
    after
        .iter()
        .map(|(name, t)| (name.clone(), t - before.get(name).copied().unwrap_or(0.0)))
        .filter(|(_, t)| *t > 0.0)
        .collect()
}

/// A fixture file of this repository.
pub fn fixture(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// A pool license for `surveyor` of ten million seats (so measured
/// checkouts never fill it), 15-minute leases and borrows of up to 7 days
/// (`borrow_seats` at once), issued at `issued_at` by `vendor` to the
/// vmware-guest fixture machine, served with a fresh install key.
pub fn served_pool(vendor: &PrivateKey, borrow_seats: u32, issued_at: i64) -> nodelock::pool::Served {
    use nodelock::documents::license::{self, LicenseKind, PoolTerms, Requester, Terms};
    use nodelock::machine::{facts::Facts, fingerprint::Fingerprint};
    let ring: nodelock::format::Keyring = [vendor.public()].into_iter().collect();
    let install = PrivateKey::generate().unwrap();
    let server =
        Fingerprint::from_facts(&Facts::load(&fixture("machines/vmware-guest.json")).unwrap()).unwrap();
    let terms = Terms {
        pool: Some((
            10_000_000,
            PoolTerms {
                lease_minutes: 15,
                borrow_days: 7,
                borrow_seats,
            },
        )),
        ..Terms::new("surveyor", LicenseKind::FloatingPool)
    };
    let requester = Requester {
        install_key: &install.public(),
        nonce: &[1; 16],
    };
    let (_, text) = license::issue(
        &terms,
        &server,
        Some(requester),
        issued_at,
        vendor,
        &nodelock::base::random::OsRandom,
    )
    .unwrap();
    nodelock::pool::Served {
        license: license::verify(text.as_bytes(), &ring).unwrap(),
        install,
        armored: text,
    }
}
