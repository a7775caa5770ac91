//! The signed, typed envelope every nodelock document travels in.
//!
//! docs/FORMAT.md §2 specifies it: a CBOR array
//! `["nodelock/v1", kind, key_id, payload, signature]` where the signature is
//! ECDSA P-256 / SHA-256 over `"nodelock/v1/" || kind || 0x00 || payload`, so a
//! signature made for one kind of document never verifies as another. The
//! payload bytes are verified exactly as received and never re-encoded. The
//! envelope itself must be canonical (re-encoding it gives the input back), which
//! rules out trailing data and alternative encodings of the same fields.
//!
//! [`VerifiedDocument`] can only be made by [`SignedDocument::verify`] and
//! [`SignedDocument::verify_with`]; code that acts on a document takes that type.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::armor;
use super::keys::{KEY_ID_LEN, KeyError, KeyId, Keyring, PrivateKey, PublicKey, SIGNATURE_LEN};
use crate::base::fsio;
use crate::format::codec;

/// The magic first element of every envelope, and the signing-domain prefix.
pub const MAGIC: &str = "nodelock/v1";
/// Largest document (armored or binary) nodelock reads. Real documents are a few
/// KiB; the cap is checked before anything is decoded.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// What a document is. The tag takes part in the signed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// A vendor-signed license.
    License,
    /// A workstation's request for a license (signed by its install key).
    ActivationRequest,
    /// A workstation's proof that it gave a license up (signed by its install key).
    DeactivationRequest,
    /// The vendor's acknowledgement that a seat was freed.
    DeactivationReceipt,
    /// A workstation's request for its license again, refreshed (signed by
    /// the license's install key).
    RefreshRequest,
    /// A workstation asking the vendor what time it is (sealed with a
    /// one-time key nobody verifies).
    ClockRequest,
    /// The vendor's time, signed, bound to a clock request's nonce.
    TimeStatement,
    /// A floating license client's request for a seat (signed by its holder key).
    LeaseRequest,
    /// A seat of a floating pool, signed by the pool server's install key.
    Lease,
    /// A lease holder's renew, check-in or return (signed by its holder key).
    LeaseUpdate,
}

impl DocumentKind {
    /// Every kind, for label look-up.
    pub const ALL: [DocumentKind; 10] = [
        DocumentKind::License,
        DocumentKind::ActivationRequest,
        DocumentKind::DeactivationRequest,
        DocumentKind::DeactivationReceipt,
        DocumentKind::RefreshRequest,
        DocumentKind::ClockRequest,
        DocumentKind::TimeStatement,
        DocumentKind::LeaseRequest,
        DocumentKind::Lease,
        DocumentKind::LeaseUpdate,
    ];

    /// The tag inside the envelope and the signed message.
    pub fn tag(self) -> &'static str {
        match self {
            DocumentKind::License => "license",
            DocumentKind::ActivationRequest => "activation-request",
            DocumentKind::DeactivationRequest => "deactivation-request",
            DocumentKind::DeactivationReceipt => "deactivation-receipt",
            DocumentKind::RefreshRequest => "refresh-request",
            DocumentKind::ClockRequest => "clock-request",
            DocumentKind::TimeStatement => "time-statement",
            DocumentKind::LeaseRequest => "lease-request",
            DocumentKind::Lease => "lease",
            DocumentKind::LeaseUpdate => "lease-update",
        }
    }

    /// The PEM armor label.
    pub fn label(self) -> &'static str {
        match self {
            DocumentKind::License => "NODELOCK LICENSE",
            DocumentKind::ActivationRequest => "NODELOCK ACTIVATION REQUEST",
            DocumentKind::DeactivationRequest => "NODELOCK DEACTIVATION REQUEST",
            DocumentKind::DeactivationReceipt => "NODELOCK DEACTIVATION RECEIPT",
            DocumentKind::RefreshRequest => "NODELOCK REFRESH REQUEST",
            DocumentKind::ClockRequest => "NODELOCK CLOCK REQUEST",
            DocumentKind::TimeStatement => "NODELOCK TIME STATEMENT",
            DocumentKind::LeaseRequest => "NODELOCK LEASE REQUEST",
            DocumentKind::Lease => "NODELOCK LEASE",
            DocumentKind::LeaseUpdate => "NODELOCK LEASE UPDATE",
        }
    }

    /// The kind with this envelope tag.
    pub fn from_tag(tag: &str) -> Option<DocumentKind> {
        DocumentKind::ALL.into_iter().find(|k| k.tag() == tag)
    }

    /// The kind with this armor label.
    pub fn from_label(label: &str) -> Option<DocumentKind> {
        DocumentKind::ALL.into_iter().find(|k| k.label() == label)
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DocumentKind::License => "license",
            DocumentKind::ActivationRequest => "activation request",
            DocumentKind::DeactivationRequest => "deactivation request",
            DocumentKind::DeactivationReceipt => "deactivation receipt",
            DocumentKind::RefreshRequest => "refresh request",
            DocumentKind::ClockRequest => "clock request",
            DocumentKind::TimeStatement => "time statement",
            DocumentKind::LeaseRequest => "lease request",
            DocumentKind::Lease => "lease",
            DocumentKind::LeaseUpdate => "lease update",
        })
    }
}

/// Why a document was not accepted.
#[allow(
    missing_docs,
    reason = "variant fields are named for what they hold; the #[error] text says what they mean"
)]
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Reading the file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A FIFO, device or directory where a document file belongs.
    #[error("{path} is not a regular file; name the document file itself")]
    NotAFile { path: String },
    /// The input is empty.
    #[error("the file is empty; it should hold a nodelock {expected}")]
    Empty { expected: DocumentKind },
    /// Larger than any real document; nothing was decoded.
    #[error(
        "the input is larger than {limit} bytes, far more than any nodelock document; it is not a nodelock {expected}"
    )]
    TooLarge { limit: usize, expected: DocumentKind },
    /// No armored block and no binary envelope.
    #[error("this is not a nodelock document (no 'BEGIN NODELOCK …' block); expected a nodelock {expected}")]
    NotADocument { expected: DocumentKind },
    /// An armored block with a label nodelock does not know.
    #[error("the block is labelled '{label}', which is not a nodelock document; expected '{}'", .expected.label())]
    UnknownLabel { label: String, expected: DocumentKind },
    /// A valid document of another kind.
    #[error("this is a nodelock {found}, not a nodelock {expected}")]
    WrongKind {
        expected: DocumentKind,
        found: DocumentKind,
    },
    /// The armor is damaged beyond what transport damage explains.
    #[error("the armored block is damaged: {0}; ask for the file again, sent as an attachment")]
    Armor(#[from] armor::ArmorError),
    /// The envelope bytes are not a well-formed envelope.
    #[error("the document is damaged or truncated ({0}); ask for the file again")]
    Malformed(String),
    /// Signed by a key that is not in the keyring.
    #[error(
        "the document is signed by key {0}, which is not a trusted vendor key; install the vendor's public key"
    )]
    UnknownSigner(KeyId),
    /// The signature does not verify: the document was altered or forged.
    #[error("the signature does not match: the document was altered after signing or is forged")]
    BadSignature,
}

#[derive(Serialize, Deserialize)]
struct Wire(
    String,
    String,
    #[serde(with = "serde_bytes")] Vec<u8>,
    #[serde(with = "serde_bytes")] Vec<u8>,
    #[serde(with = "serde_bytes")] Vec<u8>,
);

/// A parsed envelope whose signature has not been checked yet.
#[derive(Debug, Clone)]
pub struct SignedDocument {
    kind: DocumentKind,
    key_id: KeyId,
    payload: Vec<u8>,
    signature: Vec<u8>,
    envelope: Vec<u8>,
}

/// A document whose signature verified under a known key. Only `verify` makes one.
#[derive(Debug, Clone)]
pub struct VerifiedDocument {
    kind: DocumentKind,
    signer: KeyId,
    payload: Vec<u8>,
    envelope: Vec<u8>,
}

impl VerifiedDocument {
    /// The document kind (already checked against what the caller expected).
    pub fn kind(&self) -> DocumentKind {
        self.kind
    }
    /// The key that signed it.
    pub fn signer(&self) -> KeyId {
        self.signer
    }
    /// The signed payload bytes exactly as received.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// The binary envelope exactly as received.
    pub fn envelope(&self) -> &[u8] {
        &self.envelope
    }
}

/// The exact message a signature of `kind` over `payload` covers.
pub fn signing_message(kind: DocumentKind, payload: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(MAGIC.len() + 1 + kind.tag().len() + 1 + payload.len());
    msg.extend_from_slice(MAGIC.as_bytes());
    msg.push(b'/');
    msg.extend_from_slice(kind.tag().as_bytes());
    msg.push(0);
    msg.extend_from_slice(payload);
    msg
}

/// Armors an envelope of `kind` as PEM under that kind's label.
pub fn armor(kind: DocumentKind, envelope: &[u8]) -> String {
    armor::encode(kind.label(), envelope)
}

/// Signs `payload` as a document of `kind` and returns the binary envelope.
pub fn seal(kind: DocumentKind, payload: &[u8], key: &PrivateKey) -> Result<Vec<u8>, EnvelopeError> {
    let signature = key.sign_raw(&signing_message(kind, payload));
    let wire = Wire(
        MAGIC.to_owned(),
        kind.tag().to_owned(),
        key.public().id().0.to_vec(),
        payload.to_vec(),
        signature.to_vec(),
    );
    codec::encode(&wire).map_err(|e| EnvelopeError::Malformed(e.to_string()))
}

/// The kind a well-formed document declares, parsed once, without verifying
/// anything: for commands that accept several kinds and dispatch on it.
pub fn peek_kind(input: &[u8]) -> Option<DocumentKind> {
    if input.len() > MAX_DOCUMENT_BYTES {
        return None;
    }
    if input.first() == Some(&0x85) {
        return open(input.to_vec()).ok().map(|d| d.kind);
    }
    let block = armor::find_block(input).ok()??;
    let kind = DocumentKind::from_label(&block.label)?;
    open(block.bytes).ok().filter(|d| d.kind == kind).map(|d| d.kind)
}

/// Reads a document of `expected` kind from armored text or a binary envelope.
///
/// Tolerant of what transport does to text (BOM, CRLF, re-wrapped lines,
/// indentation, quoting, text before and after the block); strict about the
/// envelope bytes themselves.
pub fn parse(input: &[u8], expected: DocumentKind) -> Result<SignedDocument, EnvelopeError> {
    if input.len() > MAX_DOCUMENT_BYTES {
        return Err(EnvelopeError::TooLarge {
            limit: MAX_DOCUMENT_BYTES,
            expected,
        });
    }
    if input.iter().all(u8::is_ascii_whitespace) {
        return Err(EnvelopeError::Empty { expected });
    }
    let (label_kind, envelope) = if input.first() == Some(&0x85) {
        (None, input.to_vec())
    } else {
        let block = armor::find_block(input)?.ok_or(EnvelopeError::NotADocument { expected })?;
        let kind = DocumentKind::from_label(&block.label).ok_or_else(|| EnvelopeError::UnknownLabel {
            label: block.label.clone(),
            expected,
        })?;
        if kind != expected {
            return Err(EnvelopeError::WrongKind {
                expected,
                found: kind,
            });
        }
        (Some(kind), block.bytes)
    };
    let doc = open(envelope)?;
    if label_kind.is_some_and(|k| k != doc.kind) {
        return Err(EnvelopeError::Malformed(
            "the armor label and the content disagree".into(),
        ));
    }
    if doc.kind != expected {
        return Err(EnvelopeError::WrongKind {
            expected,
            found: doc.kind,
        });
    }
    Ok(doc)
}

fn open(envelope: Vec<u8>) -> Result<SignedDocument, EnvelopeError> {
    let wire: Wire = codec::decode(&envelope).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    let Wire(magic, tag, key_id, payload, signature) = wire;
    if magic != MAGIC {
        return Err(EnvelopeError::Malformed(format!("unknown format '{magic}'")));
    }
    let kind = DocumentKind::from_tag(&tag)
        .ok_or_else(|| EnvelopeError::Malformed(format!("unknown document kind '{tag}'")))?;
    let key_id = KeyId::from_slice(&key_id)
        .ok_or_else(|| EnvelopeError::Malformed(format!("key id is not {KEY_ID_LEN} bytes")))?;
    if signature.len() != SIGNATURE_LEN {
        return Err(EnvelopeError::Malformed(format!(
            "signature is not {SIGNATURE_LEN} bytes"
        )));
    }
    let canonical = codec::encode(&Wire(
        magic,
        tag,
        key_id.0.to_vec(),
        payload.clone(),
        signature.clone(),
    ))
    .map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    if canonical != envelope {
        return Err(EnvelopeError::Malformed(
            "the envelope is not in canonical form".into(),
        ));
    }
    Ok(SignedDocument {
        kind,
        key_id,
        payload,
        signature,
        envelope,
    })
}

impl SignedDocument {
    /// The kind the envelope declares.
    pub fn kind(&self) -> DocumentKind {
        self.kind
    }

    /// The key id the envelope names (untrusted until verified).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The payload bytes (untrusted until verified).
    pub fn untrusted_payload(&self) -> &[u8] {
        &self.payload
    }

    /// The binary envelope exactly as received (after any armor).
    pub fn envelope(&self) -> &[u8] {
        &self.envelope
    }

    /// Verifies against the keyring key the envelope names.
    pub fn verify(self, keyring: &Keyring) -> Result<VerifiedDocument, EnvelopeError> {
        let key = keyring
            .get(&self.key_id)
            .ok_or(EnvelopeError::UnknownSigner(self.key_id))?
            .clone();
        self.verify_with(&key)
    }

    /// Verifies against one given key (an install key taken from a ledger).
    pub fn verify_with(self, key: &PublicKey) -> Result<VerifiedDocument, EnvelopeError> {
        if key.id() != self.key_id {
            return Err(EnvelopeError::UnknownSigner(self.key_id));
        }
        key.verify_strict(&signing_message(self.kind, &self.payload), &self.signature)
            .map_err(|e| match e {
                KeyError::HighS | KeyError::BadSignature => EnvelopeError::BadSignature,
                _ => EnvelopeError::BadSignature,
            })?;
        Ok(VerifiedDocument {
            kind: self.kind,
            signer: self.key_id,
            payload: self.payload,
            envelope: self.envelope,
        })
    }
}

/// Reads a document file, refusing files over [`MAX_DOCUMENT_BYTES`] without
/// reading more than one byte past the cap.
pub fn read_file(path: &Path, expected: DocumentKind, links: fsio::Links) -> Result<Vec<u8>, EnvelopeError> {
    match fsio::read_capped(path, MAX_DOCUMENT_BYTES as u64, links) {
        Ok(bytes) => Ok(bytes),
        Err(fsio::ReadError::Io(source)) => Err(EnvelopeError::Io {
            path: path.display().to_string(),
            source,
        }),
        Err(fsio::ReadError::TooLarge { .. }) => Err(EnvelopeError::TooLarge {
            limit: MAX_DOCUMENT_BYTES,
            expected,
        }),
        Err(fsio::ReadError::NotAFile) => Err(EnvelopeError::NotAFile {
            path: path.display().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(kind: DocumentKind) -> (PrivateKey, Vec<u8>) {
        let key = PrivateKey::generate().unwrap();
        let env = seal(kind, b"\xa1avb1", &key).unwrap();
        (key, env)
    }

    #[test]
    fn armored_and_binary_forms_both_verify() {
        let (key, env) = sealed(DocumentKind::License);
        let ring: Keyring = [key.public()].into_iter().collect();
        let text = armor(DocumentKind::License, &env);
        for input in [env.clone(), text.into_bytes()] {
            let doc = parse(&input, DocumentKind::License)
                .unwrap()
                .verify(&ring)
                .unwrap();
            assert_eq!(doc.payload(), b"\xa1avb1");
            assert_eq!(doc.envelope(), &env[..]);
        }
    }

    #[test]
    fn signature_of_one_kind_never_verifies_as_another() {
        let (key, env) = sealed(DocumentKind::ActivationRequest);
        let mut wire: Wire = codec::decode(&env).unwrap();
        wire.1 = DocumentKind::License.tag().to_owned();
        let forged = codec::encode(&wire).unwrap();
        let doc = parse(&forged, DocumentKind::License).unwrap();
        assert!(matches!(
            doc.verify_with(&key.public()),
            Err(EnvelopeError::BadSignature)
        ));
    }

    #[test]
    fn wrong_kind_is_named() {
        let (_, env) = sealed(DocumentKind::DeactivationReceipt);
        let text = armor(DocumentKind::DeactivationReceipt, &env);
        for input in [env, text.into_bytes()] {
            assert!(matches!(
                parse(&input, DocumentKind::License),
                Err(EnvelopeError::WrongKind {
                    found: DocumentKind::DeactivationReceipt,
                    ..
                })
            ));
        }
    }

    #[test]
    fn unknown_signer_is_not_bad_signature() {
        let (_, env) = sealed(DocumentKind::License);
        let other: Keyring = [PrivateKey::generate().unwrap().public()].into_iter().collect();
        let doc = parse(&env, DocumentKind::License).unwrap();
        assert!(matches!(doc.verify(&other), Err(EnvelopeError::UnknownSigner(_))));
    }

    #[test]
    fn trailing_and_non_canonical_bytes_are_refused() {
        let (_, mut env) = sealed(DocumentKind::License);
        env.push(0x00);
        assert!(matches!(
            parse(&env, DocumentKind::License),
            Err(EnvelopeError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_and_empty_inputs_are_refused_before_decoding() {
        let big = vec![b'A'; MAX_DOCUMENT_BYTES + 1];
        assert!(matches!(
            parse(&big, DocumentKind::License),
            Err(EnvelopeError::TooLarge { .. })
        ));
        assert!(matches!(
            parse(b" \n", DocumentKind::License),
            Err(EnvelopeError::Empty { .. })
        ));
        assert!(matches!(
            parse(b"hello", DocumentKind::License),
            Err(EnvelopeError::NotADocument { .. })
        ));
    }
}
