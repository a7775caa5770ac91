//! Activation keys: what a customer types to claim a seat.
//!
//! 18 random Crockford base32 characters (90 bits) and two check characters,
//! shown in four groups of five (`K7Q2M-9TX4H-PAR3V-WJ8NB`). The first check
//! character is Luhn mod 32, which catches every single typo and every swap of
//! neighbours; the second is the first character of a SHA-256 over the rest,
//! which catches 31 of 32 other mistakes. Both are checked on the workstation
//! before anything is sent. The vendor's ledger stores only a hash of the key.
//!
//! Requests since version 2 do not carry the key: they carry a *lookup id*
//! and a *proof*, both derived from the ledger hash, so the vendor checks
//! possession with what it already stores, and a request file someone reads
//! on the way cannot be turned into a claim on another seat (the proof is an
//! HMAC over that request's nonce and install key, which the thief's own
//! request would not have).

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::base::random::{self, Random};
use crate::format::typeable;
use crate::format::{KeyError, PrivateKey};

const BODY_CHARS: usize = 18;
const KEY_CHARS: usize = BODY_CHARS + 2;
const HASH_DOMAIN: &[u8] = b"nodelock/v1/activation-key";
const LEDGER_DOMAIN: &[u8] = b"nodelock/v1/activation-key-ledger";
const LOOKUP_DOMAIN: &[u8] = b"nodelock/v2/activation-key-lookup";
const PROOF_DOMAIN: &[u8] = b"nodelock/v2/activation-proof";
const SIGNING_DOMAIN: &[u8] = b"nodelock/v2/activation-key-signing";
const SIGNATURE_DOMAIN: &[u8] = b"nodelock/v2/activation-proof-signature";

/// What a version 2 request's key signature signs:
/// `SIGNATURE_DOMAIN || 00 || nonce || install_key`.
pub fn signed_proof_message(nonce: &[u8], install_key: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 1 + nonce.len() + install_key.len());
    message.extend_from_slice(SIGNATURE_DOMAIN);
    message.push(0);
    message.extend_from_slice(nonce);
    message.extend_from_slice(install_key);
    message
}
/// Length of a request's lookup id.
pub const LOOKUP_LEN: usize = 16;
/// Length of a request's proof of possession.
pub const PROOF_LEN: usize = 32;

/// The lookup id of the key whose ledger hash is `ledger_hash`:
/// `SHA-256(LOOKUP_DOMAIN || 00 || ledger_hash)`, first 16 bytes. It names the
/// entitlement and reveals nothing that helps to claim it.
pub fn lookup_of(ledger_hash: &[u8; 32]) -> [u8; LOOKUP_LEN] {
    let digest = Sha256::new()
        .chain_update(LOOKUP_DOMAIN)
        .chain_update([0])
        .chain_update(ledger_hash)
        .finalize();
    let mut out = [0u8; LOOKUP_LEN];
    out.copy_from_slice(&digest[..LOOKUP_LEN]);
    out
}

fn proof_mac(ledger_hash: &[u8; 32], nonce: &[u8], install_key: &[u8]) -> Hmac<Sha256> {
    // HMAC pads a key shorter than the hash's 64-byte block with zeros, so
    // this is HMAC keyed by the 32-byte hash itself (RFC 2104), with no
    // fallible length check.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(ledger_hash);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    mac.update(PROOF_DOMAIN);
    mac.update(&[0]);
    mac.update(nonce);
    mac.update(install_key);
    mac
}

/// The proof that a request with `nonce` and `install_key` (SEC1, as the
/// request carries it) was made by someone holding the key:
/// `HMAC-SHA256(ledger_hash, PROOF_DOMAIN || 00 || nonce || install_key)`.
pub fn proof_of(ledger_hash: &[u8; 32], nonce: &[u8], install_key: &[u8]) -> [u8; PROOF_LEN] {
    proof_mac(ledger_hash, nonce, install_key)
        .finalize()
        .into_bytes()
        .into()
}

/// Whether `proof` is that proof (compared in constant time).
pub fn proof_holds(ledger_hash: &[u8; 32], nonce: &[u8], install_key: &[u8], proof: &[u8]) -> bool {
    proof_mac(ledger_hash, nonce, install_key)
        .verify_slice(proof)
        .is_ok()
}

/// Why a typed activation key was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyFormatError {
    /// A character outside the key alphabet.
    #[error(
        "the activation key contains a character that is not in activation keys (letters and digits only, no U); check what you typed"
    )]
    BadCharacter,
    /// Too short or too long.
    #[error("the activation key has {0} characters instead of {KEY_CHARS}; check what you typed")]
    BadLength(usize),
    /// A check character does not match: a typo.
    #[error(
        "the activation key has a typo (its check characters do not match); check what you typed against the key you received"
    )]
    Typo,
}

/// A well-formed activation key (check characters verified).
#[derive(Clone, PartialEq, Eq)]
pub struct ActivationKey(String);

impl fmt::Debug for ActivationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActivationKey({}…)", &self.0[..5])
    }
}

fn second_check(body_and_first: &str) -> char {
    let digest = Sha256::new()
        .chain_update(HASH_DOMAIN)
        .chain_update(body_and_first.as_bytes())
        .finalize();
    typeable::base32(&digest, 1).chars().next().unwrap_or('0')
}

impl ActivationKey {
    /// A new key from `random` (the OS source in production; reproducible
    /// bytes for test vectors).
    pub fn generate(random: &dyn Random) -> Result<ActivationKey, KeyError> {
        let body = typeable::base32(&random::bytes::<12>(random)?, BODY_CHARS);
        let first = format!("{body}{}", typeable::check_char(&body));
        let second = second_check(&first);
        Ok(ActivationKey(format!("{first}{second}")))
    }

    /// Reads a typed key: case, dashes, spaces and the read-alikes I/L/O do
    /// not matter; length and both check characters do.
    pub fn parse(typed: &str) -> Result<ActivationKey, KeyFormatError> {
        let canonical = typeable::canonical(typed.trim()).ok_or(KeyFormatError::BadCharacter)?;
        if canonical.len() != KEY_CHARS {
            return Err(KeyFormatError::BadLength(canonical.len()));
        }
        let (first, second) = canonical.split_at(KEY_CHARS - 1);
        if !typeable::is_valid(first) || !second.starts_with(second_check(first)) {
            return Err(KeyFormatError::Typo);
        }
        Ok(ActivationKey(canonical))
    }

    /// The canonical characters (what documents carry).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hash the vendor's ledger stores instead of the key.
    pub fn ledger_hash(&self) -> [u8; 32] {
        Sha256::new()
            .chain_update(LEDGER_DOMAIN)
            .chain_update(self.0.as_bytes())
            .finalize()
            .into()
    }

    /// The lookup id requests carry instead of the key ([`lookup_of`]).
    pub fn lookup(&self) -> [u8; LOOKUP_LEN] {
        lookup_of(&self.ledger_hash())
    }

    /// The P-256 key this activation key stands for (derived from it, see
    /// [`PrivateKey::derive`]): requests sign their proof with it, and the
    /// vendor's ledger keeps only its public half, so a copy of the ledger
    /// cannot make the proof.
    pub fn signing_key(&self) -> PrivateKey {
        PrivateKey::derive(SIGNING_DOMAIN, self.0.as_bytes())
    }
}

impl fmt::Display for ActivationKey {
    /// Grouped for people: `K7Q2M-9TX4H-PAR3V-WJ8NB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars: Vec<char> = self.0.chars().collect();
        let groups: Vec<String> = chars.chunks(5).map(|c| c.iter().collect()).collect();
        f.write_str(&groups.join("-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_in_any_spelling() {
        let key = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
        let shown = key.to_string();
        assert_eq!(shown.len(), 23);
        assert_eq!(ActivationKey::parse(&shown).unwrap(), key);
        assert_eq!(
            ActivationKey::parse(&shown.to_lowercase().replace('-', " ")).unwrap(),
            key
        );
    }

    #[test]
    fn every_single_typo_is_caught() {
        let key = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
        let chars: Vec<char> = key.as_str().chars().collect();
        for i in 0..chars.len() {
            for c in "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
                .chars()
                .filter(|c| *c != chars[i])
            {
                let mut typo = chars.clone();
                typo[i] = c;
                let typed: String = typo.into_iter().collect();
                assert!(ActivationKey::parse(&typed).is_err(), "{typed}");
            }
        }
        assert!(matches!(
            ActivationKey::parse("ABCDE"),
            Err(KeyFormatError::BadLength(5))
        ));
        assert!(matches!(
            ActivationKey::parse("ABCDE-FGHJK-MNPQR-STVWU"),
            Err(KeyFormatError::BadCharacter)
        ));
    }

    #[test]
    fn a_proof_holds_only_for_its_key_nonce_and_install_key() {
        let key = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
        let other = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
        let h = key.ledger_hash();
        let proof = proof_of(&h, &[1; 16], b"install");
        assert!(proof_holds(&h, &[1; 16], b"install", &proof));
        assert!(!proof_holds(&other.ledger_hash(), &[1; 16], b"install", &proof));
        assert!(!proof_holds(&h, &[2; 16], b"install", &proof));
        assert!(!proof_holds(&h, &[1; 16], b"thief's", &proof));
        assert!(!proof_holds(&h, &[1; 16], b"install", &proof[..31]));
        assert_ne!(key.lookup(), other.lookup());
        assert_eq!(key.lookup(), lookup_of(&h));
    }

    #[test]
    fn ledger_hash_does_not_contain_the_key() {
        let key = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
        let hex = base16ct::lower::encode_string(&key.ledger_hash());
        assert!(!hex.to_uppercase().contains(&key.as_str()[..6]));
    }
}
