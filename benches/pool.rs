//! Floating licenses: one checkout through `Pool::checkout` (read and verify
//! the request, sign the lease, one commit with its flush: the latency of a
//! lone checkout; `pool_load` measures a server's throughput) against raw
//! P-256 sign + verify,
//! and an offline check of a borrowed seat (pool license, then lease: two
//! verifications) against one raw verify, measured in the same run. Prints
//! the ratios after criterion's report.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group};
use nodelock::base::random::OsRandom;
use nodelock::documents::lease::{self, Checkout, LeaseMode};
use nodelock::format::{Keyring, PrivateKey};
use nodelock::machine::facts::Facts;
use nodelock::machine::fingerprint::Fingerprint;
use nodelock::pool::{Pool, PoolDb};
use nodelock::workstation::store::Store;

const NOW: i64 = 1_780_000_000;

#[path = "support/mod.rs"]
mod support;
use support::fixture;

fn benches(c: &mut Criterion) {
    let vendor = PrivateKey::load(&fixture("keys/TEST-ONLY-vendor.key")).unwrap();
    let public = vendor.public();
    let message = vec![0x5au8; 800];
    let signature = vendor.sign_raw(&message);
    c.bench_function("raw_p256_verify", |b| {
        b.iter(|| public.verify_raw(black_box(&message), &signature).unwrap())
    });
    c.bench_function("raw_p256_sign_plus_verify", |b| {
        b.iter(|| {
            let sig = vendor.sign_raw(black_box(&message));
            public.verify_raw(&message, &sig).unwrap()
        })
    });

    let ring: Keyring = [public.clone()].into_iter().collect();
    let served = support::served_pool(&vendor, 10_000_000, NOW - 60);
    let dir = tempfile::tempdir().unwrap();
    let db = PoolDb::open(&dir.path().join("pool.sqlite")).unwrap();
    let mut pool = Pool::new(vec![served], db, Arc::new(OsRandom));
    let client_fp = Fingerprint::from_facts(&Facts::load(&fixture("machines/laptop.json")).unwrap()).unwrap();
    let holder = PrivateKey::generate().unwrap();
    let mut n: u64 = 0;
    let mut request = |mode: LeaseMode, days: u32| {
        n += 1;
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&n.to_be_bytes());
        let checkout = Checkout {
            product: "surveyor",
            mode,
            days,
            fingerprint: &client_fp,
            user: Some("anna".into()),
            host: None,
        };
        lease::make_lease_request(&checkout, &holder, nonce, NOW)
            .unwrap()
            .1
    };
    // What a server's worker does per checkout before the writer: verify
    // the request, sign the lease (one verify, one sign: the raw pair).
    let lender = nodelock::pool::Lender::new(
        vec![support::served_pool(&vendor, 10, NOW - 60)],
        Arc::new(OsRandom),
    );
    c.bench_function("pool_prepare_checkout", |b| {
        b.iter_batched(
            || request(LeaseMode::Online, 0),
            |text| {
                let verified = lease::open_lease_request(text.as_bytes()).unwrap();
                lender.prepare_checkout(&verified, None, NOW).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("pool_checkout", |b| {
        b.iter_batched(
            || request(LeaseMode::Online, 0),
            |text| {
                let verified = lease::open_lease_request(text.as_bytes()).unwrap();
                pool.checkout(&verified, None, NOW).unwrap()
            },
            BatchSize::SmallInput,
        )
    });

    // A borrow kept in a laptop's store, checked offline.
    let verified = lease::open_lease_request(request(LeaseMode::Borrowed, 5).as_bytes()).unwrap();
    let granted = pool.checkout(&verified, None, NOW).unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path());
    store.add_trust_root(&public).unwrap();
    store
        .keep_borrow(
            &granted.lease,
            &granted.pool_license,
            holder,
            &ring,
            &client_fp,
            NOW,
        )
        .unwrap();
    c.bench_function("check_borrowed_license", |b| {
        b.iter(|| {
            store
                .check(black_box("surveyor"), &ring, &client_fp, NOW + 60, None)
                .unwrap()
        })
    });
}

fn estimate_ns(name: &str) -> Option<f64> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/criterion/{name}/new/estimates.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn ratios() {
    if let (Some(verify), Some(sign_verify)) = (
        estimate_ns("raw_p256_verify"),
        estimate_ns("raw_p256_sign_plus_verify"),
    ) {
        println!("\nthis run:");
        if let Some(ns) = estimate_ns("pool_checkout") {
            println!(
                "  pool_checkout           {:>9.1} µs  {:.2}× raw sign+verify ({:.1} µs): {:.0} % of its capacity",
                ns / 1000.0,
                ns / sign_verify,
                sign_verify / 1000.0,
                100.0 * sign_verify / ns
            );
        }
        if let Some(ns) = estimate_ns("pool_prepare_checkout") {
            println!(
                "  pool_prepare_checkout   {:>9.1} µs  {:.2}× raw sign+verify (a worker's share of a checkout)",
                ns / 1000.0,
                ns / sign_verify,
            );
        }
        if let Some(ns) = estimate_ns("check_borrowed_license") {
            println!(
                "  check_borrowed_license  {:>9.1} µs  {:.2}× raw verify ({:.1} µs)",
                ns / 1000.0,
                ns / verify,
                verify / 1000.0
            );
        }
    }
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    ratios();
}
