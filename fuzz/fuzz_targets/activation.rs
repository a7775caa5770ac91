//! The activation documents: requests (self-verifying), deactivation and
//! refresh requests (claims until verified), receipts and time statements
//! (under the TEST-ONLY vendor key), clock requests, and the floating
//! documents: lease requests (self-verifying), leases (against the vector
//! pool license) and lease updates.
//! Oracle: a request that opens opens again from its own envelope, armored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodelock::documents::activation;
use nodelock::format::envelope::{self, DocumentKind};
use nodelock::format::{Keyring, PublicKey};

const VENDOR: &str = include_str!("../../fixtures/keys/TEST-ONLY-vendor.pub");
const POOL: &str = include_str!("../../fixtures/documents/pool-license.lic");

fuzz_target!(|data: &[u8]| {
    let ring: Keyring = PublicKey::from_spki_pem(VENDOR, "vendor").into_iter().collect();
    if let Ok(request) = activation::open_request(data) {
        let armored = envelope::armor(DocumentKind::ActivationRequest, request.envelope());
        let again = activation::open_request(armored.as_bytes()).expect("its armor opens");
        assert_eq!(again.payload(), request.payload());
        assert_eq!(again.fingerprint(), request.fingerprint());
    }
    if let Ok(pending) = activation::open_deactivation(data) {
        let _ = pending.claimed_license_id();
        if let Some(key) = ring.keys().first() {
            let _ = pending.verify(key);
        }
    }
    if let Ok(pending) = activation::open_refresh(data) {
        let _ = pending.claimed_license_id();
        if let Some(key) = ring.keys().first() {
            let _ = pending.verify(key);
        }
    }
    let _ = activation::open_receipt(data, &ring);
    if let Ok(request) = nodelock::documents::time::open_clock_request(data) {
        assert_eq!(request.nonce.len(), 16);
    }
    let _ = nodelock::documents::time::verify_time_statement(data, &ring);
    if let Ok(request) = nodelock::documents::lease::open_lease_request(data) {
        assert_eq!(request.request().nonce.len(), 16);
    }
    let _ = nodelock::documents::lease::verify_lease(data, POOL.as_bytes(), &ring);
    if let Ok(update) = nodelock::documents::lease::open_lease_update(data) {
        let _ = update.claimed_lease_id();
    }
    let _ = envelope::peek_kind(data);
});
