//! Signed, typed documents as bytes: CBOR, keys and signatures, the envelope
//! that domain-separates every signature, and the PEM armor around it.
//!
//! This layer knows document kinds but not what any document means; the
//! documents themselves live one layer up, in `documents`.

pub mod armor;
pub mod codec;
pub mod envelope;
pub mod keys;
pub mod typeable;

pub use envelope::{DocumentKind, EnvelopeError, SignedDocument, VerifiedDocument};
pub use keys::{KeyError, KeyId, Keyring, PrivateKey, PublicKey};
