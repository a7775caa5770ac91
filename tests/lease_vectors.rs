//! The floating documents (docs/FORMAT.md §4 `pool`, §15-17): a pool
//! license, a lease request, a lease and a lease update, each reproduced
//! byte for byte from documented fields and decoded back; and every way a
//! lease can be wrong refused: single-bit flips, truncations, another
//! kind's document, and a lease from another pool.
//! `NODELOCK_WRITE_VECTORS=1` rewrites the vectors after a deliberate change.

mod common;

use common::*;
use nodelock::base::random::OsRandom;
use nodelock::documents::lease::{self, Checkout, Lease, LeaseMode, LeaseOp};
use nodelock::documents::license::{self, LicenseKind, PoolTerms, Requester, Terms};
use nodelock::format::envelope::{self, DocumentKind};
use nodelock::format::{Keyring, PrivateKey, PublicKey};
use nodelock::machine::facts::Facts;
use nodelock::machine::fingerprint::Fingerprint;

const AT: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const NONCE: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

fn install() -> PrivateKey {
    PrivateKey::load(&fixture("keys/TEST-ONLY-install.key")).unwrap()
}

fn ring() -> Keyring {
    [PublicKey::load(&fixture(VENDOR_PUB)).unwrap()]
        .into_iter()
        .collect()
}

fn fp(machine_file: &str) -> Fingerprint {
    Fingerprint::from_facts(&Facts::load(&machine(machine_file)).unwrap()).unwrap()
}

/// The pool license of the vectors: 20 seats of surveyor, bound to the
/// server machine, carrying the vector install key.
fn pool_license(install: &PrivateKey, id: &str) -> String {
    let terms = Terms {
        id: Some(id.into()),
        features: vec!["gnss".into()],
        pool: Some((
            20,
            PoolTerms {
                lease_minutes: 15,
                borrow_days: 7,
                borrow_seats: 5,
            },
        )),
        ..Terms::new("surveyor", LicenseKind::FloatingPool)
    };
    let vendor = PrivateKey::load(&fixture(VENDOR_KEY)).unwrap();
    let requester = Requester {
        install_key: &install.public(),
        nonce: &NONCE,
    };
    license::issue(
        &terms,
        &fp("vmware-guest.json"),
        Some(requester),
        AT,
        &vendor,
        &OsRandom,
    )
    .unwrap()
    .1
}

fn vector_lease() -> (Lease, String) {
    let client = fp("laptop.json");
    let holder = install();
    let checkout = Checkout {
        product: "surveyor",
        mode: LeaseMode::Online,
        days: 0,
        fingerprint: &client,
        user: Some("anna".into()),
        host: Some("survey-laptop-07".into()),
    };
    let (request, _) = lease::make_lease_request(&checkout, &holder, NONCE, AT).unwrap();
    let lease = Lease {
        v: 1,
        id: "S-VECT0R0000000001".into(),
        pool_license: "L-VECT0RP00L000001".into(),
        product: "surveyor".into(),
        features: vec!["gnss".into()],
        mode: LeaseMode::Online,
        holder_key: request.holder_key.clone(),
        fp: request.fp.clone(),
        request_nonce: NONCE.to_vec(),
        issued_at: AT,
        expires_at: AT + 900,
        user: request.user.clone(),
        host: request.host.clone(),
    };
    let text = lease::sign_lease(&lease, &install()).unwrap();
    (lease, text)
}

#[test]
fn floating_vectors_reproduce_and_read_back() {
    let pool = pool_license(&install(), "L-VECT0RP00L000001");
    check_vector("pool-license.lic", &pool);
    let verified = license::verify(pool.as_bytes(), &ring()).unwrap();
    assert_eq!(verified.license().seats, Some(20));
    assert_eq!(verified.license().pool.unwrap().borrow_seats, 5);

    let client = fp("laptop.json");
    let checkout = Checkout {
        product: "surveyor",
        mode: LeaseMode::Online,
        days: 0,
        fingerprint: &client,
        user: Some("anna".into()),
        host: Some("survey-laptop-07".into()),
    };
    let (request, text) = lease::make_lease_request(&checkout, &install(), NONCE, AT).unwrap();
    check_vector("lease-request.req", &text);
    assert_eq!(
        lease::open_lease_request(text.as_bytes()).unwrap().request(),
        &request
    );

    let (lease_payload, text) = vector_lease();
    check_vector("lease.lease", &text);
    let verified = lease::verify_lease(text.as_bytes(), pool.as_bytes(), &ring()).unwrap();
    assert_eq!(verified.lease(), &lease_payload);

    let (update, text) =
        lease::make_lease_update("S-VECT0R0000000001", LeaseOp::Return, &install(), NONCE, AT).unwrap();
    check_vector("lease-update.upd", &text);
    let pending = lease::open_lease_update(text.as_bytes()).unwrap();
    assert_eq!(pending.claimed_lease_id(), "S-VECT0R0000000001");
    assert_eq!(pending.verify(&install().public()).unwrap(), update);
}

#[test]
fn every_wrong_lease_is_refused() {
    let pool = pool_license(&install(), "L-VECT0RP00L000001");
    let (_, text) = vector_lease();
    let envelope_bytes = pem::parse(text.trim()).unwrap().into_contents();
    let armor = |bytes: Vec<u8>| pem::encode(&pem::Pem::new("NODELOCK LEASE", bytes));
    // Every single-bit flip of the envelope.
    for i in 0..envelope_bytes.len() {
        for bit in 0..8 {
            let mut b = envelope_bytes.clone();
            b[i] ^= 1 << bit;
            assert!(
                lease::verify_lease(armor(b).as_bytes(), pool.as_bytes(), &ring()).is_err(),
                "flip of bit {bit} of byte {i} accepted"
            );
        }
    }
    // Every truncation.
    for n in 0..envelope_bytes.len() {
        assert!(
            lease::verify_lease(
                armor(envelope_bytes[..n].to_vec()).as_bytes(),
                pool.as_bytes(),
                &ring()
            )
            .is_err()
        );
    }
    // A lease from another pool: another pool server's install key signed
    // it, or it is checked against another pool's license.
    let other_install = PrivateKey::generate().unwrap();
    let (lease_payload, _) = vector_lease();
    let forged = lease::sign_lease(&lease_payload, &other_install).unwrap();
    assert!(lease::verify_lease(forged.as_bytes(), pool.as_bytes(), &ring()).is_err());
    let other_pool = pool_license(&other_install, "L-OTHERP00L0000001");
    assert!(lease::verify_lease(text.as_bytes(), other_pool.as_bytes(), &ring()).is_err());
    let renamed = Lease {
        pool_license: "L-OTHERP00L0000001".into(),
        ..lease_payload
    };
    let own_key_other_name = lease::sign_lease(&renamed, &install()).unwrap();
    assert!(lease::verify_lease(own_key_other_name.as_bytes(), pool.as_bytes(), &ring()).is_err());
    // A pool license that is not the vendor's.
    let mut strangers = Keyring::new();
    strangers.add(PrivateKey::generate().unwrap().public());
    assert!(lease::verify_lease(text.as_bytes(), pool.as_bytes(), &strangers).is_err());
}

#[test]
fn no_document_passes_as_another_kind() {
    let pool = pool_license(&install(), "L-VECT0RP00L000001");
    let (_, lease_text) = vector_lease();
    let documents: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixture("documents"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.extension().is_some_and(|e| e == "json" || e == "hex"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .chain([("lease (fresh)".to_owned(), lease_text.into_bytes())])
        .collect();
    for (name, bytes) in &documents {
        let kind = envelope::peek_kind(bytes);
        for expected in DocumentKind::ALL {
            if Some(expected) == kind {
                continue;
            }
            assert!(
                envelope::parse(bytes, expected).is_err(),
                "{name} ({kind:?}) parses as {expected:?}"
            );
        }
        if kind != Some(DocumentKind::Lease) {
            assert!(
                lease::verify_lease(bytes, pool.as_bytes(), &ring()).is_err(),
                "{name} verifies as a lease"
            );
        }
        if kind != Some(DocumentKind::LeaseRequest) {
            assert!(
                lease::open_lease_request(bytes).is_err(),
                "{name} opens as a lease request"
            );
        }
        if kind != Some(DocumentKind::LeaseUpdate) {
            assert!(
                lease::open_lease_update(bytes).is_err(),
                "{name} opens as a lease update"
            );
        }
    }
}
