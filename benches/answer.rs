//! The vendor side: answering one activation request (verify the request,
//! one ledger transaction, sign the license) against raw P-256 sign + verify
//! measured in the same run. Prints the ratio after criterion's report.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group};
use nodelock::documents::activation::{self, ActivationKey};
use nodelock::format::PrivateKey;
use nodelock::machine::facts::Facts;
use nodelock::machine::fingerprint::Fingerprint;
use nodelock::vendor::ledger::{EntitlementSpec, Ledger, Method};

const NOW: i64 = 1_780_000_000;

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

fn benches(c: &mut Criterion) {
    let vendor = PrivateKey::load(&fixture("keys/TEST-ONLY-vendor.key")).unwrap();
    let public = vendor.public();
    let message = vec![0x5au8; 800];
    c.bench_function("raw_p256_sign_plus_verify", |b| {
        b.iter(|| {
            let sig = vendor.sign_raw(black_box(&message));
            public.verify_raw(&message, &sig).unwrap();
        })
    });

    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    let spec = EntitlementSpec {
        features: vec!["gnss".into()],
        customer: Some("ACME".into()),
        ..EntitlementSpec::new("surveyor", 10_000_000)
    };
    let (_, key) = ledger.create_entitlement(&spec, NOW, "bench").unwrap();
    let laptop = Facts::load(&fixture("machines/laptop.json")).unwrap();
    let install = PrivateKey::generate().unwrap();
    let mut n: u64 = 0;
    // Each request from another machine (one machine's second request is a
    // re-activation, which takes no seat); salted as the workstation's store
    // would, outside the measured part.
    let mut new_request = |key: &ActivationKey| {
        n += 1;
        let mut facts = laptop.clone();
        facts.machine_id = Some(format!("{n:032x}"));
        facts.product_uuid = Some(format!("4c4c4544-0000-0000-0000-{n:012x}"));
        facts.board_serial = Some(format!("BENCH{n}"));
        facts.disk_serials = Some(vec![format!("DISK{n}")]);
        facts.network = Some(Vec::new());
        let fp = Fingerprint::from_facts(&facts)
            .unwrap()
            .salted(&key.lookup())
            .unwrap();
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&n.to_be_bytes());
        activation::make_request(key, &fp, &install, nonce, NOW)
            .unwrap()
            .1
    };
    c.bench_function("vendor_answer_activation", |b| {
        b.iter_batched(
            || new_request(&key),
            |text| {
                let request = activation::open_request(text.as_bytes()).unwrap();
                let answered = ledger
                    .answer_activation(&request, &vendor, Method::Offline, NOW, "bench")
                    .unwrap();
                assert!(!answered.reactivated && !answered.replayed);
                answered
            },
            BatchSize::SmallInput,
        )
    });
}

fn estimate_ns(name: &str) -> Option<f64> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/criterion/{name}/new/estimates.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    if let (Some(base), Some(answer)) = (
        estimate_ns("raw_p256_sign_plus_verify"),
        estimate_ns("vendor_answer_activation"),
    ) {
        println!(
            "\nvendor answer: {:.1} µs per activation = {:.2}× raw sign + verify ({:.1} µs), this run",
            answer / 1000.0,
            answer / base,
            base / 1000.0
        );
    }
}
