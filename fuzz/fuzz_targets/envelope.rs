//! The envelope decoder, for every kind. Oracles: a binary envelope that
//! parses is exactly the input (nothing ignored, nothing re-encoded); its
//! armored form parses to the same envelope; verifying it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodelock::format::envelope::{self, DocumentKind};
use nodelock::format::{Keyring, PublicKey};

const VENDOR: &str = include_str!("../../fixtures/keys/TEST-ONLY-vendor.pub");

fuzz_target!(|data: &[u8]| {
    let ring: Keyring = PublicKey::from_spki_pem(VENDOR, "vendor").into_iter().collect();
    for kind in DocumentKind::ALL {
        let Ok(doc) = envelope::parse(data, kind) else { continue };
        assert_eq!(doc.kind(), kind);
        // Binary envelopes start with the CBOR array header; anything else was armor.
        if data.first() != Some(&0x85) {
            continue;
        }
        assert_eq!(doc.envelope(), data, "a parsed binary envelope is the input");
        let armored = envelope::armor(kind, data);
        let again = envelope::parse(armored.as_bytes(), kind).expect("its armor parses");
        assert_eq!(again.envelope(), data);
        let _ = doc.verify(&ring);
    }
});
