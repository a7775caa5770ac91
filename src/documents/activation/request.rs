//! The activation request (docs/FORMAT.md §8): the workstation's fingerprint
//! and a fresh install key, signed by that key, carrying proof of the
//! activation key (version 2) or, in requests made before, the key itself.

use serde::{Deserialize, Serialize};

use super::key::{LOOKUP_LEN, PROOF_LEN, proof_holds, proof_of, signed_proof_message};
use super::{ActivationError, ActivationKey, NONCE_LEN, client_name, decode, invalid, seal};
use crate::base::clock::Timestamp;
use crate::format::envelope::{self, DocumentKind};
use crate::format::{PrivateKey, PublicKey};
use crate::machine::fingerprint::{
    ALGORITHM_SALTED, Component, ComponentClass, ComponentDigest, ComponentName, Fingerprint, SALT_LEN,
};

/// A fingerprint in the compact form requests carry: `[[code, digest], …]`,
/// anchors and the machine id only (descriptive components do not bind).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactFingerprint {
    /// Fingerprint algorithm.
    pub alg: u32,
    /// `(component code, 32-byte digest)` pairs.
    pub c: Vec<(u8, serde_bytes::ByteBuf)>,
    /// The salt of algorithm 2 digests (16 bytes); absent for algorithm 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<serde_bytes::ByteBuf>,
}

impl CompactFingerprint {
    pub(crate) fn from_fingerprint(fp: &Fingerprint) -> CompactFingerprint {
        CompactFingerprint {
            alg: fp.algorithm(),
            c: fp
                .components()
                .filter(|c| c.name.class() != ComponentClass::Descriptive)
                .map(|c| (c.name.code(), serde_bytes::ByteBuf::from(c.digest.0.to_vec())))
                .collect(),
            s: fp.salt().map(|s| serde_bytes::ByteBuf::from(s.to_vec())),
        }
    }

    /// The fingerprint it stands for, refusing what no real machine reports:
    /// more than one machine id, SMBIOS UUID or board serial, or more than
    /// [`MAX_PER_LIST`] disks or MACs (a union of several machines' hardware,
    /// which a crafted request could ask a license to be bound to).
    pub(crate) fn to_fingerprint(&self, kind: DocumentKind) -> Result<Fingerprint, ActivationError> {
        for name in [
            ComponentName::MachineId,
            ComponentName::ProductUuid,
            ComponentName::BoardSerial,
        ] {
            if self.c.iter().filter(|(code, _)| *code == name.code()).count() > 1 {
                return Err(invalid(kind, format!("it names more than one {}", name.as_str())));
            }
        }
        for name in [ComponentName::Disk, ComponentName::Mac] {
            if self.c.iter().filter(|(code, _)| *code == name.code()).count() > MAX_PER_LIST {
                return Err(invalid(
                    kind,
                    format!("it names more than {MAX_PER_LIST} of component {}", name.as_str()),
                ));
            }
        }
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
        match (self.alg, &self.s) {
            (ALGORITHM_SALTED, Some(salt)) => {
                let salt = <[u8; SALT_LEN]>::try_from(salt.as_slice())
                    .map_err(|_| invalid(kind, "the fingerprint's salt is not 16 bytes"))?;
                Ok(Fingerprint::from_salted_components(salt, components)?)
            }
            (ALGORITHM_SALTED, None) => Err(invalid(kind, "a salted fingerprint has no salt")),
            (_, Some(_)) => Err(invalid(
                kind,
                "only a salted fingerprint (algorithm 2) has a salt",
            )),
            (alg, None) => Ok(Fingerprint::from_components(alg, components)?),
        }
    }
}

/// The most disks, and the most MACs, a request may name.
pub const MAX_PER_LIST: usize = 16;

/// The request version nodelock writes: the key proved, not carried.
pub const REQUEST_VERSION: u32 = 2;
/// The first version, which carried the activation key in clear; still read.
pub const REQUEST_VERSION_1: u32 = 1;

/// The activation request payload. Version 1 carries `key`; version 2
/// carries `lookup` and `proof` instead (exactly one of the two forms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationRequest {
    /// Payload version.
    pub v: u32,
    /// Version 1: the activation key, canonical characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Version 2: the key's lookup id (16 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<serde_bytes::ByteBuf>,
    /// Version 2: the key's proof over this request (32 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<serde_bytes::ByteBuf>,
    /// Version 2: the key's signature over this request (64 bytes), by the
    /// key pair derived from the activation key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_signature: Option<serde_bytes::ByteBuf>,
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
    claim: KeyClaim,
    fingerprint: Fingerprint,
    install_key: PublicKey,
    envelope: Vec<u8>,
}

impl VerifiedRequest {
    /// The signed payload.
    pub fn payload(&self) -> &ActivationRequest {
        &self.request
    }

    /// Whether its key signature verifies with `key_public` (SEC1), the
    /// public half of the activation key's derived key pair that the ledger
    /// keeps; false for version 1 requests, which have none.
    pub fn signed_by(&self, key_public: &[u8]) -> bool {
        let KeyClaim::Proof { signature, .. } = &self.claim else {
            return false;
        };
        let message = signed_proof_message(&self.request.nonce, &self.request.install_key);
        PublicKey::from_sec1(key_public).is_ok_and(|k| k.verify_strict(&message, signature).is_ok())
    }

    /// How it claims an activation key (well-formed; whether an entitlement
    /// has it is the ledger's question).
    pub fn claim(&self) -> &KeyClaim {
        &self.claim
    }

    /// Whether it proves the key whose ledger hash is `ledger_hash`: carries
    /// that key (version 1), or that key's lookup id and a proof over this
    /// request's nonce and install key (version 2).
    pub fn presents(&self, ledger_hash: &[u8; 32]) -> bool {
        match &self.claim {
            KeyClaim::Key(key) => &key.ledger_hash() == ledger_hash,
            KeyClaim::Proof { lookup, proof, .. } => {
                *lookup == super::key::lookup_of(ledger_hash)
                    && proof_holds(ledger_hash, &self.request.nonce, &self.request.install_key, proof)
            }
        }
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

/// How a request claims its activation key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// Version 1: the key itself.
    Key(ActivationKey),
    /// Version 2: the key's lookup id and a proof over the request.
    Proof {
        /// Names the entitlement ([`ActivationKey::lookup`]).
        lookup: [u8; LOOKUP_LEN],
        /// HMAC over the request's nonce and install key, keyed by the
        /// key's ledger hash ([`super::key::proof_of`]).
        proof: [u8; PROOF_LEN],
        /// The signature over the same, by [`ActivationKey::signing_key`].
        signature: Vec<u8>,
    },
}

/// Makes and signs an activation request (version 2: the key is proved, not
/// carried); returns it armored.
pub fn make_request(
    key: &ActivationKey,
    fingerprint: &Fingerprint,
    install: &PrivateKey,
    nonce: [u8; NONCE_LEN],
    now: Timestamp,
) -> Result<(ActivationRequest, String), ActivationError> {
    build_request(REQUEST_VERSION, key, fingerprint, install, nonce, now)
}

/// Makes a version 1 request, which carries the key in clear. nodelock no
/// longer writes these; tests and the format's vectors do, to show that
/// vendors still answer them.
#[doc(hidden)]
pub fn make_request_v1(
    key: &ActivationKey,
    fingerprint: &Fingerprint,
    install: &PrivateKey,
    nonce: [u8; NONCE_LEN],
    now: Timestamp,
) -> Result<(ActivationRequest, String), ActivationError> {
    build_request(REQUEST_VERSION_1, key, fingerprint, install, nonce, now)
}

fn build_request(
    version: u32,
    key: &ActivationKey,
    fingerprint: &Fingerprint,
    install: &PrivateKey,
    nonce: [u8; NONCE_LEN],
    now: Timestamp,
) -> Result<(ActivationRequest, String), ActivationError> {
    // Uncompressed (65 bytes): the vendor then needs no square root to use it.
    let install_key = install.public().to_sec1_uncompressed();
    let proved = version >= REQUEST_VERSION;
    let hash = key.ledger_hash();
    // Version 2 requests carry digests salted with the key's lookup id, so
    // that a request file read on its way gives away no reversible digest.
    let salted;
    let fingerprint = match (proved, fingerprint.salt()) {
        (true, None) => {
            salted = fingerprint.salted(&key.lookup())?;
            &salted
        }
        _ => fingerprint,
    };
    let request = ActivationRequest {
        v: version,
        key: (!proved).then(|| key.as_str().to_owned()),
        lookup: proved.then(|| serde_bytes::ByteBuf::from(key.lookup().to_vec())),
        proof: proved.then(|| serde_bytes::ByteBuf::from(proof_of(&hash, &nonce, &install_key).to_vec())),
        key_signature: proved.then(|| {
            let message = signed_proof_message(&nonce, &install_key);
            serde_bytes::ByteBuf::from(key.signing_key().sign_raw(&message).to_vec())
        }),
        nonce: nonce.to_vec(),
        at: now,
        client: client_name(),
        fp: CompactFingerprint::from_fingerprint(fingerprint),
        install_key,
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
    if request.nonce.len() != NONCE_LEN {
        return Err(invalid(kind, "the nonce is not 16 bytes"));
    }
    let forms = (
        &request.key,
        &request.lookup,
        &request.proof,
        &request.key_signature,
    );
    let claim = match (request.v, forms) {
        (REQUEST_VERSION_1, (Some(key), None, None, None)) => KeyClaim::Key(ActivationKey::parse(key)?),
        (REQUEST_VERSION, (None, Some(lookup), Some(proof), Some(signature))) => KeyClaim::Proof {
            lookup: <[u8; LOOKUP_LEN]>::try_from(lookup.as_slice())
                .map_err(|_| invalid(kind, "the lookup id is not 16 bytes"))?,
            proof: <[u8; PROOF_LEN]>::try_from(proof.as_slice())
                .map_err(|_| invalid(kind, "the proof is not 32 bytes"))?,
            signature: (signature.len() == 64)
                .then(|| signature.to_vec())
                .ok_or_else(|| invalid(kind, "the key signature is not 64 bytes"))?,
        },
        (REQUEST_VERSION_1 | REQUEST_VERSION, ..) => {
            return Err(invalid(
                kind,
                format!(
                    "a version {} request carries {}",
                    request.v,
                    if request.v == REQUEST_VERSION_1 {
                        "`key` and no `lookup`, `proof` or `key_signature`"
                    } else {
                        "`lookup`, `proof` and `key_signature` and no `key`"
                    }
                ),
            ));
        }
        (v, ..) => {
            return Err(invalid(
                kind,
                format!("version {v} (this nodelock reads {REQUEST_VERSION_1} and {REQUEST_VERSION})"),
            ));
        }
    };
    let fingerprint = request.fp.to_fingerprint(kind)?;
    let salt_ok = match &claim {
        KeyClaim::Key(_) => fingerprint.salt().is_none(),
        KeyClaim::Proof { lookup, .. } => fingerprint.salt() == Some(lookup),
    };
    if !salt_ok {
        return Err(invalid(
            kind,
            "a version 1 request carries algorithm 1 digests, a version 2 request digests salted with its lookup id",
        ));
    }
    Ok(VerifiedRequest {
        request,
        claim,
        fingerprint,
        install_key,
        envelope: verified.envelope().to_vec(),
    })
}
