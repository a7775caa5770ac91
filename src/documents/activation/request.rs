//! The activation request (docs/FORMAT.md §8): the workstation's fingerprint
//! and a fresh install key, signed by that key, carrying the activation key.

use serde::{Deserialize, Serialize};

use super::{ActivationError, ActivationKey, NONCE_LEN, VERSION, client_name, decode, invalid, seal};
use crate::base::clock::Timestamp;
use crate::format::envelope::{self, DocumentKind};
use crate::format::{PrivateKey, PublicKey};
use crate::machine::fingerprint::{Component, ComponentClass, ComponentDigest, ComponentName, Fingerprint};

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
                // Requests bind; descriptive components never do.
                if name.class() == ComponentClass::Descriptive {
                    return Err(invalid(
                        kind,
                        format!("component {} does not belong in a request", name.as_str()),
                    ));
                }
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

/// An activation request whose install-key signature verified. Only
/// [`open_request`] makes one, so holding one means the checks ran: the
/// payload is what the install key signed, and the key and fingerprint in it
/// parsed.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    request: ActivationRequest,
    key: ActivationKey,
    fingerprint: Fingerprint,
    install_key: PublicKey,
    envelope: Vec<u8>,
}

impl VerifiedRequest {
    /// The signed payload.
    pub fn payload(&self) -> &ActivationRequest {
        &self.request
    }

    /// The activation key it presents (well-formed; whether an entitlement
    /// has it is the ledger's question).
    pub fn key(&self) -> &ActivationKey {
        &self.key
    }

    /// The workstation's fingerprint, as the license will bind it.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The install public key that signed it.
    pub fn install_key(&self) -> &PublicKey {
        &self.install_key
    }

    /// The request's nonce (16 bytes).
    pub fn nonce(&self) -> &[u8] {
        &self.request.nonce
    }

    /// The binary envelope exactly as received and verified.
    pub fn envelope(&self) -> &[u8] {
        &self.envelope
    }
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
