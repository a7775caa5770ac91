//! Keys and the signed document envelope: the only code that signs or verifies.
//!
//! Pure format and arithmetic: no clock, no machine facts, no printing. File
//! access is limited to reading and writing key and document files.

pub mod armor;
pub mod envelope;
pub mod keys;

pub use envelope::{DocumentKind, EnvelopeError, SignedDocument, VerifiedDocument};
pub use keys::{KeyError, KeyId, Keyring, PrivateKey, PublicKey};
