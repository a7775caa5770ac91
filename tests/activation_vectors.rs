//! Test vectors for the activation documents (docs/FORMAT.md §7-9): each is
//! reproduced byte for byte from its documented fields and decoded back.
//! `NODELOCK_WRITE_VECTORS=1` rewrites them after a deliberate format change.

mod common;

use common::*;
use nodelock::base::random::Scripted;
use nodelock::documents::activation::{self, ActivationKey, DeactivationReceipt};
use nodelock::format::{Keyring, PrivateKey, PublicKey};
use nodelock::machine::facts::Facts;
use nodelock::machine::fingerprint::{Fingerprint, salted};

const AT: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const NONCE: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

fn install() -> PrivateKey {
    PrivateKey::load(&fixture("keys/TEST-ONLY-install.key")).unwrap()
}

#[test]
fn activation_request_vector() {
    // The vector's key, drawn from scripted bytes as the ledger draws keys.
    let random = Scripted::new(base32_bytes("TESTVECT0RKEY00001", 12));
    let key = ActivationKey::generate(&random).unwrap();
    assert!(key.to_string().starts_with("TESTV-ECT0R-KEY00-001"), "{key}");
    let fp = Fingerprint::from_facts(&Facts::load(&machine("laptop.json")).unwrap()).unwrap();
    // Version 1 carried the key in clear; vendors still answer it.
    let (request, text) = activation::make_request_v1(&key, &fp, &install(), NONCE, AT).unwrap();
    check_vector("activation-request.req", &text);
    assert_eq!(request.key.as_deref(), Some(key.as_str()));
    assert!(request.lookup.is_none() && request.proof.is_none());
    let verified = activation::open_request(text.as_bytes()).unwrap();
    assert_eq!(verified.payload(), &request);
    assert_eq!(
        verified.payload().client,
        format!("nodelock {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(verified.install_key(), &install().public());
    assert_eq!(
        verified.fingerprint().workstation_id().to_string(),
        "KSTC-00TN-J0JG-Y"
    );
    assert!(verified.envelope().len() < 520);
}

#[test]
fn activation_request_v2_vector() {
    let random = Scripted::new(base32_bytes("TESTVECT0RKEY00001", 12));
    let key = ActivationKey::generate(&random).unwrap();
    let fp = Fingerprint::from_facts(&Facts::load(&machine("laptop.json")).unwrap()).unwrap();
    let (request, text) = activation::make_request(&key, &fp, &install(), NONCE, AT).unwrap();
    check_vector("activation-request-v2.req", &text);
    assert_eq!(request.v, 2);
    assert_eq!(request.key, None, "version 2 never carries the key");
    // FORMAT.md §8 works these out from the key: lookup and proof.
    let hash = key.ledger_hash();
    assert_eq!(
        request.lookup.as_ref().map(|b| b.as_slice()),
        Some(activation::key::lookup_of(&hash).as_slice())
    );
    let install_key = install().public().to_sec1_uncompressed();
    assert_eq!(
        request.proof.as_ref().map(|b| b.as_slice()),
        Some(activation::key::proof_of(&hash, &NONCE, &install_key).as_slice())
    );
    let verified = activation::open_request(text.as_bytes()).unwrap();
    assert!(verified.presents(&hash));
    assert!(verified.signed_by(&key.signing_key().public().to_sec1_compressed()));
    let text_of = |bytes: &[u8]| base16ct::lower::encode_string(bytes);
    // Algorithm 2 (FORMAT.md §3 "Salted digests"), worked out per component:
    // the algorithm-1 digest and the salted one.
    let salt = activation::key::lookup_of(&hash);
    let components: Vec<serde_json::Value> = fp
        .components()
        .filter(|c| c.name.class() != nodelock::machine::fingerprint::ComponentClass::Descriptive)
        .map(|c| {
            serde_json::json!({
                "name": c.name.as_str(),
                "algorithm_1": text_of(&c.digest.0),
                "algorithm_2": text_of(&salted::salted_digest(&salt, c.name, &c.digest).0),
            })
        })
        .collect();
    let carried: Vec<String> = verified
        .fingerprint()
        .components()
        .map(|c| text_of(&c.digest.0))
        .collect();
    for c in &components {
        assert!(carried.contains(&c["algorithm_2"].as_str().unwrap().to_owned()));
    }
    let fields = serde_json::json!({
        "ledger_hash": text_of(&hash),
        "lookup": text_of(&activation::key::lookup_of(&hash)),
        "proof": text_of(&activation::key::proof_of(&hash, &NONCE, &install_key)),
        "key_public": text_of(&key.signing_key().public().to_sec1_uncompressed()),
        "key_signature": text_of(request.key_signature.as_ref().unwrap()),
        "salt": text_of(&salt),
        "components": components,
    });
    check_vector(
        "activation-request-v2.fields.json",
        &(serde_json::to_string_pretty(&fields).unwrap() + "\n"),
    );
}

#[test]
fn deactivation_request_vector() {
    let (request, text) = activation::make_deactivation("L-VECT0R0000000001", &install(), NONCE, AT).unwrap();
    check_vector("deactivation-request.deact", &text);
    let pending = activation::open_deactivation(text.as_bytes()).unwrap();
    assert_eq!(pending.claimed_license_id(), "L-VECT0R0000000001");
    assert_eq!(pending.verify(&install().public()).unwrap().payload(), &request);
}

#[test]
fn refresh_request_vector() {
    let fp = Fingerprint::from_facts(&Facts::load(&machine("laptop.json")).unwrap()).unwrap();
    let (request, text) = activation::make_refresh("L-VECT0R0000000001", &fp, &install(), NONCE, AT).unwrap();
    check_vector("refresh-request.req", &text);
    let pending = activation::open_refresh(text.as_bytes()).unwrap();
    assert_eq!(pending.claimed_license_id(), "L-VECT0R0000000001");
    let other = PrivateKey::load(&fixture(VENDOR_KEY)).unwrap().public();
    assert!(pending.clone().verify(&other).is_err());
    let verified = pending.verify(&install().public()).unwrap();
    assert_eq!(verified.payload(), &request);
    assert_eq!(
        verified.fingerprint().workstation_id().to_string(),
        "KSTC-00TN-J0JG-Y"
    );
}

#[test]
fn deactivation_receipt_vector() {
    let receipt = DeactivationReceipt {
        v: 1,
        license_id: "L-VECT0R0000000001".into(),
        activation_id: "A-VECT0R000001".into(),
        entitlement: "E-VECT0R000001".into(),
        deactivated_at: AT,
        request_nonce: NONCE.to_vec(),
        transfers_used: 1,
        max_transfers: 3,
    };
    let vendor = PrivateKey::load(&fixture(VENDOR_KEY)).unwrap();
    let text = activation::make_receipt(&receipt, &vendor).unwrap();
    check_vector("deactivation-receipt.rcpt", &text);
    let ring: Keyring = [PublicKey::load(&fixture(VENDOR_PUB)).unwrap()]
        .into_iter()
        .collect();
    assert_eq!(
        activation::open_receipt(text.as_bytes(), &ring)
            .unwrap()
            .receipt(),
        &receipt
    );
}

#[test]
fn clock_request_and_time_statement_vectors() {
    use nodelock::documents::time;
    // The request is sealed with the vector's install key (any one-time key
    // does; nobody verifies it), the statement signed by the test vendor.
    let (request, text) = time::make_clock_request(NONCE, AT, &install()).unwrap();
    check_vector("clock-request.req", &text);
    assert_eq!(time::open_clock_request(text.as_bytes()).unwrap(), request);
    let vendor = PrivateKey::load(&fixture(VENDOR_KEY)).unwrap();
    let (statement, text) = time::answer_clock_request(&request, &vendor, AT + 3600).unwrap();
    check_vector("time-statement.time", &text);
    let ring: Keyring = [PublicKey::load(&fixture(VENDOR_PUB)).unwrap()]
        .into_iter()
        .collect();
    let verified = time::verify_time_statement(text.as_bytes(), &ring).unwrap();
    assert_eq!(verified.statement(), &statement);
    assert_eq!(statement.nonce, NONCE.to_vec());
    assert_eq!(statement.time, AT + 3600);
    assert_eq!(statement.request_at, AT);
}
