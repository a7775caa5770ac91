//! The offline challenge/response documents: activation request, deactivation
//! request, deactivation receipt (docs/FORMAT.md §7-9).
//!
//! Requests are signed by the workstation's *install key*, a P-256 key pair
//! made for one activation. Its public half travels in the activation request
//! and is bound into the license, so that only the machine holding the private
//! half can later prove a deactivation. Receipts are signed by the vendor.
//! Pure format code: no files, no clock, no database.

pub mod key;

use serde::{Deserialize, Serialize};

use crate::base::clock::Timestamp;
use crate::format::codec;
use crate::format::envelope::{self, DocumentKind, EnvelopeError, SignedDocument};
use crate::format::{KeyId, Keyring, PrivateKey, PublicKey};
use crate::machine::fingerprint::{
    Component, ComponentClass, ComponentDigest, ComponentName, Fingerprint, FingerprintError,
};

pub use key::{ActivationKey, KeyFormatError};

/// Payload version of every activation document.
pub const VERSION: u32 = 1;
/// Length of request nonces.
pub const NONCE_LEN: usize = 16;

/// What this client calls itself in requests.
pub fn client_name() -> String {
    format!("nodelock {}", env!("CARGO_PKG_VERSION"))
}

/// Why an activation document was refused.
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
    Invalid {
        /// The document kind.
        kind: DocumentKind,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(kind: DocumentKind, reason: impl Into<String>) -> ActivationError {
    ActivationError::Invalid {
        kind,
        reason: reason.into(),
    }
}

/// A fingerprint in the compact form requests carry: `[[code, digest], …]`,
/// anchors and the machine id only (descriptive components do not bind).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactFingerprint {
    /// Fingerprint algorithm.
    pub alg: u32,
    /// `(component code, 32-byte digest)` pairs.
    pub c: Vec<(u8, serde_bytes::ByteBuf)>,
}

impl CompactFingerprint {
    fn from_fingerprint(fp: &Fingerprint) -> CompactFingerprint {
        CompactFingerprint {
            alg: fp.algorithm(),
            c: fp
                .components()
                .filter(|c| c.name.class() != ComponentClass::Descriptive)
                .map(|c| (c.name.code(), serde_bytes::ByteBuf::from(c.digest.0.to_vec())))
                .collect(),
        }
    }

    fn to_fingerprint(&self) -> Result<Fingerprint, ActivationError> {
        let kind = DocumentKind::ActivationRequest;
        let components = self
            .c
            .iter()
            .map(|(code, digest)| {
                let name = ComponentName::from_code(*code)
                    .ok_or_else(|| invalid(kind, format!("unknown component code {code}")))?;
                let digest = <[u8; 32]>::try_from(digest.as_slice())
                    .map_err(|_| invalid(kind, "a digest is not 32 bytes"))?;
                Ok(Component {
                    name,
                    digest: ComponentDigest(digest),
                })
            })
            .collect::<Result<Vec<_>, ActivationError>>()?;
        Ok(Fingerprint::from_components(self.alg, components)?)
    }
}

/// The activation request payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationRequest {
    /// Payload version.
    pub v: u32,
    /// The activation key, canonical characters.
    pub key: String,
    /// Random, 16 bytes; names this request.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// When the workstation made it (informative; workstation clocks lie).
    pub at: Timestamp,
    /// Client software and version.
    pub client: String,
    /// The workstation's fingerprint.
    pub fp: CompactFingerprint,
    /// The install public key, SEC1: uncompressed (65 bytes, what nodelock
    /// writes) or compressed (33).
    #[serde(with = "serde_bytes")]
    pub install_key: Vec<u8>,
}

/// An activation request whose install-key signature verified.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    /// The payload.
    pub request: ActivationRequest,
    /// The parsed activation key.
    pub key: ActivationKey,
    /// The workstation's fingerprint.
    pub fingerprint: Fingerprint,
    /// The install public key.
    pub install_key: PublicKey,
    /// The binary envelope as received.
    pub envelope: Vec<u8>,
}

/// Makes and signs an activation request; returns it armored.
pub fn make_request(
    key: &ActivationKey,
    fingerprint: &Fingerprint,
    install: &PrivateKey,
    nonce: [u8; NONCE_LEN],
    now: Timestamp,
) -> Result<(ActivationRequest, String), ActivationError> {
    let request = ActivationRequest {
        v: VERSION,
        key: key.as_str().to_owned(),
        nonce: nonce.to_vec(),
        at: now,
        client: client_name(),
        fp: CompactFingerprint::from_fingerprint(fingerprint),
        // Uncompressed (65 bytes): the vendor then needs no square root to use it.
        install_key: install.public().to_sec1_uncompressed(),
    };
    let armored = seal(DocumentKind::ActivationRequest, &request, install)?;
    Ok((request, armored))
}

fn seal<T: Serialize>(kind: DocumentKind, payload: &T, key: &PrivateKey) -> Result<String, ActivationError> {
    let bytes = codec::encode(payload).map_err(|e| invalid(kind, e.to_string()))?;
    Ok(envelope::armor(kind, &envelope::seal(kind, &bytes, key)?))
}

fn decode<T: serde::de::DeserializeOwned>(kind: DocumentKind, bytes: &[u8]) -> Result<T, ActivationError> {
    codec::decode(bytes).map_err(|e| invalid(kind, e.to_string()))
}

/// Parses an activation request and verifies it with the install key it carries.
///
/// The signature proves the request was not edited after signing and that
/// its sender holds the install key's private half; it does not prove who the
/// sender is (the activation key does that).
pub fn open_request(input: &[u8]) -> Result<VerifiedRequest, ActivationError> {
    let kind = DocumentKind::ActivationRequest;
    let signed = envelope::parse(input, kind)?;
    // Decoded once: the verified payload is these same bytes.
    let request: ActivationRequest = decode(kind, signed.untrusted_payload())?;
    let install_key = PublicKey::from_sec1(&request.install_key)
        .map_err(|_| invalid(kind, "install_key is not a P-256 public key"))?;
    let verified = signed.verify_with(&install_key)?;
    if request.v != VERSION {
        return Err(invalid(
            kind,
            format!("version {} (this nodelock reads {VERSION})", request.v),
        ));
    }
    if request.nonce.len() != NONCE_LEN {
        return Err(invalid(kind, "the nonce is not 16 bytes"));
    }
    let key = ActivationKey::parse(&request.key)?;
    let fingerprint = request.fp.to_fingerprint()?;
    Ok(VerifiedRequest {
        request,
        key,
        fingerprint,
        install_key,
        envelope: verified.envelope().to_vec(),
    })
}

/// The deactivation request payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeactivationRequest {
    /// Payload version.
    pub v: u32,
    /// The license given up.
    pub license_id: String,
    /// Random, 16 bytes.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// When (informative).
    pub at: Timestamp,
    /// Client software and version.
    pub client: String,
}

/// Makes a deactivation request signed by the license's install key.
pub fn make_deactivation(
    license_id: &str,
    install: &PrivateKey,
    nonce: [u8; NONCE_LEN],
    now: Timestamp,
) -> Result<(DeactivationRequest, String), ActivationError> {
    let request = DeactivationRequest {
        v: VERSION,
        license_id: license_id.to_owned(),
        nonce: nonce.to_vec(),
        at: now,
        client: client_name(),
    };
    let armored = seal(DocumentKind::DeactivationRequest, &request, install)?;
    Ok((request, armored))
}

/// A deactivation request read but not verified yet: the vendor must look up
/// the install key recorded for `license_id` and call [`PendingDeactivation::verify`].
#[derive(Debug, Clone)]
pub struct PendingDeactivation {
    signed: SignedDocument,
    untrusted: DeactivationRequest,
}

impl PendingDeactivation {
    /// The license id the request names (untrusted until verified).
    pub fn untrusted_license_id(&self) -> &str {
        &self.untrusted.license_id
    }

    /// The key id that signed it (untrusted).
    pub fn signer(&self) -> KeyId {
        self.signed.key_id()
    }

    /// Verifies with the install key recorded at activation.
    pub fn verify(self, install_key: &PublicKey) -> Result<(DeactivationRequest, Vec<u8>), ActivationError> {
        let kind = DocumentKind::DeactivationRequest;
        let verified = self.signed.verify_with(install_key)?;
        let request: DeactivationRequest = decode(kind, verified.payload())?;
        if request.v != VERSION || request.nonce.len() != NONCE_LEN {
            return Err(invalid(kind, "unsupported version or bad nonce"));
        }
        Ok((request, verified.envelope().to_vec()))
    }
}

/// Parses a deactivation request (signature checked later, see [`PendingDeactivation`]).
pub fn open_deactivation(input: &[u8]) -> Result<PendingDeactivation, ActivationError> {
    let kind = DocumentKind::DeactivationRequest;
    let signed = envelope::parse(input, kind)?;
    let untrusted: DeactivationRequest = decode(kind, signed.untrusted_payload())?;
    Ok(PendingDeactivation { signed, untrusted })
}

/// The vendor's deactivation receipt payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeactivationReceipt {
    /// Payload version.
    pub v: u32,
    /// The license given up.
    pub license_id: String,
    /// The ledger's activation id.
    pub activation_id: String,
    /// The entitlement whose seat was freed.
    pub entitlement: String,
    /// When the vendor recorded it.
    pub deactivated_at: Timestamp,
    /// The nonce of the deactivation request it answers.
    #[serde(with = "serde_bytes")]
    pub request_nonce: Vec<u8>,
    /// Transfers used on the entitlement, this one included.
    pub transfers_used: u32,
    /// Transfers the entitlement allows.
    pub max_transfers: u32,
}

/// Signs a receipt; returns it armored.
pub fn make_receipt(receipt: &DeactivationReceipt, vendor: &PrivateKey) -> Result<String, ActivationError> {
    seal(DocumentKind::DeactivationReceipt, receipt, vendor)
}

/// Verifies a vendor receipt.
pub fn open_receipt(input: &[u8], keyring: &Keyring) -> Result<DeactivationReceipt, ActivationError> {
    let kind = DocumentKind::DeactivationReceipt;
    let verified = envelope::parse(input, kind)?.verify(keyring)?;
    decode(kind, verified.payload())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::facts::{Facts, Interface};

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
        let key = ActivationKey::generate().unwrap();
        let (req, text) = make_request(&key, &fp(), &install, [7; 16], 1_800_000_000).unwrap();
        let verified = open_request(text.as_bytes()).unwrap();
        assert_eq!(verified.request, req);
        assert_eq!(verified.key, key);
        assert_eq!(verified.install_key, install.public());
        let payload = codec::encode(&req).unwrap();
        assert!(payload.len() < 400, "payload is {} bytes", payload.len());
        assert!(
            verified.envelope.len() < 520,
            "envelope is {} bytes",
            verified.envelope.len()
        );
    }

    #[test]
    fn request_edited_after_signing_is_refused() {
        let install = PrivateKey::generate().unwrap();
        let key = ActivationKey::generate().unwrap();
        let (mut req, _) = make_request(&key, &fp(), &install, [7; 16], 1_800_000_000).unwrap();
        let original = seal(DocumentKind::ActivationRequest, &req, &install).unwrap();
        let signed = envelope::parse(original.as_bytes(), DocumentKind::ActivationRequest).unwrap();
        // Swap the payload for an edited one, keeping the signature.
        req.fp.c.pop();
        let edited_payload = codec::encode(&req).unwrap();
        let sig_bytes = crate::format::armor::find_block(original.as_bytes())
            .unwrap()
            .unwrap()
            .bytes;
        let signature = &sig_bytes[sig_bytes.len() - 64..];
        let mut forged = Vec::new();
        let key_id = signed.key_id().0;
        let wire = (
            "nodelock/v1",
            "activation-request",
            serde_bytes::Bytes::new(&key_id),
            serde_bytes::Bytes::new(&edited_payload),
            serde_bytes::Bytes::new(signature),
        );
        forged.extend(codec::encode(&wire).unwrap());
        assert!(matches!(
            open_request(&forged),
            Err(ActivationError::Envelope(EnvelopeError::BadSignature))
        ));
    }

    #[test]
    fn deactivation_verifies_only_with_the_install_key() {
        let install = PrivateKey::generate().unwrap();
        let (_, text) = make_deactivation("L-ABC", &install, [1; 16], 0).unwrap();
        let pending = open_deactivation(text.as_bytes()).unwrap();
        assert_eq!(pending.untrusted_license_id(), "L-ABC");
        let other = PrivateKey::generate().unwrap().public();
        assert!(pending.clone().verify(&other).is_err());
        assert_eq!(pending.verify(&install.public()).unwrap().0.license_id, "L-ABC");
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
