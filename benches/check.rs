//! The start-up path against its baseline, measured in the same run:
//! raw P-256 verify, fingerprinting (real system and from facts), and `check`
//! of an installed license. After criterion's own report, prints each figure as
//! a ratio to raw verify (targets: check ≤ 1.3×, salted bindings included;
//! real-system fingerprint < 1 ms).
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group};
use nodelock::Checker;
use nodelock::base::clock::FixedClock;
use nodelock::documents::license::{self, LicenseKind, Terms};
use nodelock::format::{Keyring, PrivateKey, PublicKey};
use nodelock::machine::facts::{Facts, RealSystem, Snapshot, SystemSource};
use nodelock::machine::fingerprint::Fingerprint;
use nodelock::workstation::store::Store;

const NOW: i64 = 1_780_000_000;

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

fn benches(c: &mut Criterion) {
    let key = PrivateKey::load(&fixture("keys/TEST-ONLY-vendor.key")).unwrap();
    let public = key.public();
    let message = vec![0x5au8; 700];
    let signature = key.sign_raw(&message);
    c.bench_function("raw_p256_verify", |b| {
        b.iter(|| {
            public
                .verify_raw(black_box(&message), black_box(&signature))
                .unwrap()
        })
    });

    let facts = Facts::load(&fixture("machines/laptop.json")).unwrap();
    c.bench_function("fingerprint_from_facts", |b| {
        b.iter(|| Fingerprint::from_facts(black_box(&facts)).unwrap())
    });
    c.bench_function("fingerprint_real_system", |b| {
        b.iter(|| Fingerprint::from_facts(&RealSystem.facts().unwrap()).unwrap())
    });

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path());
    let fp = Fingerprint::from_facts(&facts).unwrap();
    let terms = Terms {
        features: vec!["gnss".into()],
        customer: Some("ACME".into()),
        expires_at: Some(NOW + 86_400 * 365),
        ..Terms::new("surveyor", LicenseKind::Subscription)
    };
    let (_, text) = license::issue(
        &terms,
        &fp,
        None,
        NOW - 86_400,
        &key,
        &nodelock::base::random::OsRandom,
    )
    .unwrap();
    let ring: Keyring = [public.clone()].into_iter().collect();
    store.import(text.as_bytes(), &ring, &fp, NOW).unwrap();
    c.bench_function("verify_license_document", |b| {
        b.iter(|| license::verify(black_box(text.as_bytes()), &ring).unwrap())
    });
    let checker = Checker::new(&public.to_spki_pem())
        .unwrap()
        .store(dir.path())
        .facts_from(Snapshot(facts.clone()))
        .clock(FixedClock(NOW));
    c.bench_function("check_installed_license", |b| {
        b.iter(|| checker.check(black_box("surveyor")).unwrap())
    });

    // The same with a salted binding (algorithm 2).
    let salt = [9u8; 16];
    let salted = fp.salted(&salt).unwrap();
    let (_, salted_text) = license::issue(
        &terms,
        &salted,
        None,
        NOW - 86_400,
        &key,
        &nodelock::base::random::OsRandom,
    )
    .unwrap();
    let salted_dir = tempfile::tempdir().unwrap();
    Store::open(salted_dir.path())
        .import(salted_text.as_bytes(), &ring, &fp, NOW)
        .unwrap();
    let salted_checker = Checker::new(&public.to_spki_pem())
        .unwrap()
        .store(salted_dir.path())
        .facts_from(Snapshot(facts.clone()))
        .clock(FixedClock(NOW));
    c.bench_function("check_installed_salted_license", |b| {
        b.iter(|| salted_checker.check(black_box("surveyor")).unwrap())
    });
}

fn estimate_ns(name: &str) -> Option<f64> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/criterion/{name}/new/estimates.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn ratios() {
    let Some(base) = estimate_ns("raw_p256_verify") else {
        return;
    };
    println!("\nratios to raw_p256_verify ({:.1} µs), this run:", base / 1000.0);
    for name in [
        "fingerprint_from_facts",
        "fingerprint_real_system",
        "verify_license_document",
        "check_installed_license",
        "check_installed_salted_license",
    ] {
        if let Some(ns) = estimate_ns(name) {
            println!("  {name:<26} {:>9.1} µs  {:>6.3}×", ns / 1000.0, ns / base);
        }
    }
    let _ = PublicKey::from_sec1; // the baseline primitive is nodelock's own verify_raw
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    ratios();
}
