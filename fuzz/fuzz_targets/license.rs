//! The license reader (verify and validate) under the TEST-ONLY vendor key.
//! Oracle: a license that verifies verifies again from its own armor, to the
//! same terms, binding and signer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodelock::documents::license;
use nodelock::format::{Keyring, PublicKey};

const VENDOR: &str = include_str!("../../fixtures/keys/TEST-ONLY-vendor.pub");

fuzz_target!(|data: &[u8]| {
    let ring: Keyring = PublicKey::from_spki_pem(VENDOR, "vendor").into_iter().collect();
    let _ = license::License::read_unverified(data);
    if let Ok(verified) = license::verify(data, &ring) {
        let again = license::verify(verified.armored().as_bytes(), &ring).expect("its armor verifies");
        assert_eq!(again.license(), verified.license());
        assert_eq!(again.binding(), verified.binding());
        assert_eq!(again.signer(), verified.signer());
    }
});
