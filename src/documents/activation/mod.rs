//! The offline challenge/response documents: activation request, deactivation
//! request, deactivation receipt (docs/FORMAT.md §7-9).
//!
//! Requests are signed by the workstation's *install key*, a P-256 key pair
//! made for one activation. Its public half travels in the activation request
//! and is bound into the license, so that only the machine holding the private
//! half can later prove a deactivation. Receipts are signed by the vendor.
//! Pure format code: no files, no clock, no database.

mod deactivation;
pub mod key;
mod refresh;
mod request;

use serde::Serialize;

use crate::format::PrivateKey;
use crate::format::codec;
use crate::format::envelope::{self, DocumentKind, EnvelopeError};
use crate::machine::fingerprint::FingerprintError;

pub use deactivation::{
    DeactivationReceipt, DeactivationRequest, UnverifiedDeactivation, VerifiedDeactivation, VerifiedReceipt,
    make_deactivation, make_receipt, open_deactivation, open_receipt,
};
pub use key::{ActivationKey, KeyFormatError};
pub use refresh::{RefreshRequest, UnverifiedRefresh, VerifiedRefresh, make_refresh, open_refresh};
pub use request::{
    ActivationRequest, CompactFingerprint, KeyClaim, REQUEST_VERSION, REQUEST_VERSION_1, VerifiedRequest,
    make_request, make_request_v1, open_request,
};

/// Payload version of every activation document.
pub const VERSION: u32 = 1;
/// Length of request nonces.
pub const NONCE_LEN: usize = 16;

/// What this client calls itself in requests.
pub fn client_name() -> String {
    format!("nodelock {}", env!("CARGO_PKG_VERSION"))
}

/// Why an activation document was refused.
#[allow(
    missing_docs,
    reason = "variant fields are named for what they hold; the #[error] text says what they mean"
)]
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// The envelope was refused.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The activation key inside is malformed.
    #[error(transparent)]
    Key(#[from] KeyFormatError),
    /// The fingerprint inside cannot be used.
    #[error(transparent)]
    Fingerprint(#[from] FingerprintError),
    /// The payload is not a valid document of its kind.
    #[error("the {kind} is not valid: {reason}")]
    Invalid { kind: DocumentKind, reason: String },
}

pub(crate) fn invalid(kind: DocumentKind, reason: impl Into<String>) -> ActivationError {
    ActivationError::Invalid {
        kind,
        reason: reason.into(),
    }
}

pub(crate) fn seal<T: Serialize>(
    kind: DocumentKind,
    payload: &T,
    key: &PrivateKey,
) -> Result<String, ActivationError> {
    let bytes = codec::encode(payload).map_err(|e| invalid(kind, e.to_string()))?;
    Ok(envelope::armor(kind, &envelope::seal(kind, &bytes, key)?))
}

pub(crate) fn decode<T: serde::de::DeserializeOwned + Serialize>(
    kind: DocumentKind,
    bytes: &[u8],
) -> Result<T, ActivationError> {
    codec::decode_canonical(bytes).map_err(|e| invalid(kind, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::facts::{Facts, Interface};
    use crate::machine::fingerprint::Fingerprint;

    fn fp() -> Fingerprint {
        let mut f = Facts::empty();
        f.machine_id = Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into());
        f.product_uuid = Some("1b4e28ba-2fa1-11d2-883f-0016d3cca427".into());
        f.board_serial = Some("/7Q1XL13/CN1296373K0123/".into());
        f.disk_serials = Some(vec!["S3Z9NB0K123456A".into()]);
        f.network = Some(vec![
            Interface {
                name: Some("en0".into()),
                mac: Some("3c:52:82:aa:bb:cc".into()),
                physical: Some(true),
            },
            Interface {
                name: Some("wl0".into()),
                mac: Some("f8:63:3f:11:22:33".into()),
                physical: Some(true),
            },
        ]);
        f.hostname = Some("survey-laptop-07".into());
        f.cpu = Some(crate::machine::facts::Cpu {
            brand: Some("Intel".into()),
            cores: Some(8),
        });
        Fingerprint::from_facts(&f).unwrap()
    }

    #[test]
    fn request_round_trips_and_is_a_few_hundred_bytes() {
        let install = PrivateKey::generate().unwrap();
        let key = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
        let (req, text) = make_request(&key, &fp(), &install, [7; 16], 1_800_000_000).unwrap();
        let verified = open_request(text.as_bytes()).unwrap();
        assert_eq!(verified.payload(), &req);
        assert!(verified.presents(&key.ledger_hash()));
        assert!(req.key.is_none(), "a request must not carry the key");
        let other = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
        assert!(!verified.presents(&other.ledger_hash()));
        assert_eq!(verified.install_key(), &install.public());
        let payload = codec::encode(&req).unwrap();
        assert!(payload.len() < 540, "payload is {} bytes", payload.len());
        assert!(
            verified.envelope().len() < 660,
            "envelope is {} bytes",
            verified.envelope().len()
        );
    }

    #[test]
    fn a_request_takes_one_form_of_the_key_and_version_1_still_reads() {
        let install = PrivateKey::generate().unwrap();
        let key = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
        let (_, v1) = make_request_v1(&key, &fp(), &install, [7; 16], 1_800_000_000).unwrap();
        let old = open_request(v1.as_bytes()).unwrap();
        assert_eq!(old.claim(), &KeyClaim::Key(key.clone()));
        assert!(old.presents(&key.ledger_hash()));
        // Both forms at once, or a version 2 request carrying the key: refused.
        let (mut both, _) = make_request(&key, &fp(), &install, [7; 16], 1_800_000_000).unwrap();
        both.key = Some(key.as_str().to_owned());
        let text = seal(DocumentKind::ActivationRequest, &both, &install).unwrap();
        assert!(
            open_request(text.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("version 2 request carries")
        );
        let (mut v3, _) = make_request(&key, &fp(), &install, [7; 16], 1_800_000_000).unwrap();
        v3.v = 3;
        let text = seal(DocumentKind::ActivationRequest, &v3, &install).unwrap();
        assert!(
            open_request(text.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("version 3")
        );
    }

    #[test]
    fn a_request_naming_two_machines_hardware_is_refused() {
        let install = PrivateKey::generate().unwrap();
        let key = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
        let (mut req, _) = make_request_v1(&key, &fp(), &install, [7; 16], 1_800_000_000).unwrap();
        let uuid = crate::machine::fingerprint::ComponentName::ProductUuid.code();
        req.fp.c.push((uuid, serde_bytes::ByteBuf::from(vec![3u8; 32])));
        let text = seal(DocumentKind::ActivationRequest, &req, &install).unwrap();
        let err = open_request(text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("more than one product_uuid"), "{err}");
        let mac = crate::machine::fingerprint::ComponentName::Mac.code();
        let (mut req, _) = make_request_v1(&key, &fp(), &install, [7; 16], 1_800_000_000).unwrap();
        for i in 0..17u8 {
            req.fp.c.push((mac, serde_bytes::ByteBuf::from(vec![i; 32])));
        }
        let text = seal(DocumentKind::ActivationRequest, &req, &install).unwrap();
        assert!(
            open_request(text.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("more than 16")
        );
    }

    #[test]
    fn a_request_carrying_a_descriptive_component_is_refused() {
        let install = PrivateKey::generate().unwrap();
        let key = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
        let (mut req, _) = make_request(&key, &fp(), &install, [7; 16], 1_800_000_000).unwrap();
        let hostname = crate::machine::fingerprint::ComponentName::Hostname.code();
        req.fp
            .c
            .push((hostname, serde_bytes::ByteBuf::from(vec![0u8; 32])));
        let text = seal(DocumentKind::ActivationRequest, &req, &install).unwrap();
        let err = open_request(text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("hostname does not belong"), "{err}");
    }

    #[test]
    fn deactivation_verifies_only_with_the_install_key() {
        let install = PrivateKey::generate().unwrap();
        let (_, text) = make_deactivation("L-ABC", &install, [1; 16], 0).unwrap();
        let pending = open_deactivation(text.as_bytes()).unwrap();
        assert_eq!(pending.claimed_license_id(), "L-ABC");
        let other = PrivateKey::generate().unwrap().public();
        assert!(pending.clone().verify(&other).is_err());
        assert_eq!(
            pending.verify(&install.public()).unwrap().payload().license_id,
            "L-ABC"
        );
    }

    #[test]
    fn kinds_are_told_apart() {
        let install = PrivateKey::generate().unwrap();
        let (_, text) = make_deactivation("L-ABC", &install, [1; 16], 0).unwrap();
        assert_eq!(
            envelope::peek_kind(text.as_bytes()),
            Some(DocumentKind::DeactivationRequest)
        );
        assert!(matches!(
            open_request(text.as_bytes()),
            Err(ActivationError::Envelope(EnvelopeError::WrongKind { .. }))
        ));
        assert_eq!(envelope::peek_kind(b"nothing"), None);
    }
}
