//! Vendor and install keys: generation, standard PEM forms, key ids, keyrings,
//! and the raw ECDSA P-256 / SHA-256 primitive every signature goes through.
//!
//! Keys are PKCS#8 (private) and SPKI (public) PEM so that `openssl` and a
//! vendor's key store read them. Signatures are the 64-byte P1363 form `r || s`
//! and always low-S: we normalise when signing and refuse high-S when a
//! document is verified ([`PublicKey::verify_strict`]). Private keys live in
//! zeroize-on-drop types whose `Debug` never shows the secret.

use std::fmt;
use std::path::Path;

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::base::fsio;
use crate::base::random::{self, OsRandom, RandomError};

/// Length of a key id in bytes.
pub const KEY_ID_LEN: usize = 8;
/// Length of a P1363 signature (`r || s`) in bytes.
pub const SIGNATURE_LEN: usize = 64;
/// Largest key file we read; real PEM keys are a few hundred bytes.
const MAX_KEY_FILE: u64 = 16 * 1024;

/// Why a key could not be made, read, written or used.
#[allow(
    missing_docs,
    reason = "variant fields are named for what they hold; the #[error] text says what they mean"
)]
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The file holds an `EC PRIVATE KEY` (SEC1), not PKCS#8.
    #[error(
        "{path} is a SEC1 'EC PRIVATE KEY'; convert it with `openssl pkcs8 -topk8 -nocrypt -in {path} -out vendor.key`"
    )]
    Sec1PrivateKey {
        /// The file that was read.
        path: String,
    },
    /// Not a P-256 PKCS#8 private key.
    #[error("{path} is not an unencrypted P-256 PKCS#8 private key (PEM 'PRIVATE KEY')")]
    BadPrivateKey {
        /// The file that was read.
        path: String,
    },
    /// Not a P-256 SPKI public key.
    #[error("{path} is not a P-256 public key (PEM 'PUBLIC KEY')")]
    BadPublicKey {
        /// The file (or field) that was read.
        path: String,
    },
    /// A key file is far larger than any key.
    #[error("{path} is not a key file (larger than any key, or not a regular file)")]
    TooLarge {
        /// The file that was read.
        path: String,
    },
    /// A private key file would be overwritten.
    #[error("{path} already exists; pass --force to overwrite it")]
    Exists {
        /// The file that exists.
        path: String,
    },
    /// Reading or writing a key file failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The signature does not verify under this key.
    #[error("the signature does not match")]
    BadSignature,
    /// The signature has a high S value, which nodelock never produces.
    #[error("the signature is not in low-S form")]
    HighS,
}

/// The first [`KEY_ID_LEN`] bytes of SHA-256 over the uncompressed SEC1 public key.
///
/// A key id selects a key from a keyring; it never decides trust by itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// Reads a key id from exactly [`KEY_ID_LEN`] bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<KeyId> {
        bytes.try_into().ok().map(KeyId)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base16ct::lower::encode_string(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A P-256 private key (the vendor's signing key or a workstation's install key).
pub struct PrivateKey {
    inner: SigningKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(<redacted>, id {})", self.public().id())
    }
}

impl PrivateKey {
    /// Makes a new key from the operating system's random source.
    pub fn generate() -> Result<PrivateKey, KeyError> {
        loop {
            // A 32-byte string is a valid scalar unless it is zero or >= n
            // (probability about 2^-32); draw again in that case.
            let seed = Zeroizing::new(random::bytes::<32>(&OsRandom)?);
            if let Ok(inner) = SigningKey::from_slice(seed.as_slice()) {
                return Ok(PrivateKey { inner });
            }
        }
    }

    /// The key a secret deterministically stands for: the scalar is
    /// `SHA-256(domain || 00 || counter || secret)` for the first counter
    /// (a byte from 0) that gives a valid scalar (all but about 2^-32 of
    /// hashes do). Both sides that know the secret get the same key.
    pub fn derive(domain: &[u8], secret: &[u8]) -> PrivateKey {
        use sha2::{Digest as _, Sha256};
        let mut counter: u8 = 0;
        loop {
            let seed = Zeroizing::new(<[u8; 32]>::from(
                Sha256::new()
                    .chain_update(domain)
                    .chain_update([0, counter])
                    .chain_update(secret)
                    .finalize(),
            ));
            if let Ok(inner) = SigningKey::from_slice(seed.as_slice()) {
                return PrivateKey { inner };
            }
            counter = counter.wrapping_add(1);
        }
    }

    /// Reads a PKCS#8 PEM private key, tolerating a BOM and CRLF line ends.
    pub fn from_pkcs8_pem(text: &str, origin: &str) -> Result<PrivateKey, KeyError> {
        let text = clean_pem_text(text);
        if text.contains("BEGIN EC PRIVATE KEY") {
            return Err(KeyError::Sec1PrivateKey {
                path: origin.to_owned(),
            });
        }
        SigningKey::from_pkcs8_pem(&text)
            .map(|inner| PrivateKey { inner })
            .map_err(|_| KeyError::BadPrivateKey {
                path: origin.to_owned(),
            })
    }

    /// Reads a private key file (PKCS#8 PEM).
    pub fn load(path: &Path) -> Result<PrivateKey, KeyError> {
        let text = Zeroizing::new(read_key_file(path)?);
        PrivateKey::from_pkcs8_pem(&text, &path.display().to_string())
    }

    /// The PKCS#8 PEM text, in a buffer wiped on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.inner
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| KeyError::BadPrivateKey {
                path: "<generated key>".into(),
            })
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey::from_verifying(*self.inner.verifying_key())
    }

    /// Signs `message` (ECDSA P-256 / SHA-256, RFC 6979 nonces) and returns the
    /// low-S P1363 signature. Callers build a domain-separated message first.
    pub fn sign_raw(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let signature: Signature = self.inner.sign(message);
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(&signature.normalize_s().to_bytes());
        out
    }
}

/// A P-256 public key and its key id.
#[derive(Clone)]
pub struct PublicKey {
    inner: VerifyingKey,
    id: KeyId,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl PublicKey {
    fn from_verifying(inner: VerifyingKey) -> PublicKey {
        let sec1 = inner.to_sec1_point(false);
        let digest = Sha256::digest(sec1.as_bytes());
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        PublicKey { inner, id: KeyId(id) }
    }

    /// Reads an SPKI PEM public key, tolerating a BOM and CRLF line ends.
    pub fn from_spki_pem(text: &str, origin: &str) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_public_key_pem(&clean_pem_text(text))
            .map(PublicKey::from_verifying)
            .map_err(|_| KeyError::BadPublicKey {
                path: origin.to_owned(),
            })
    }

    /// Reads a public key file (SPKI PEM).
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let text = read_key_file(path)?;
        PublicKey::from_spki_pem(&text, &path.display().to_string())
    }

    /// Reads a SEC1 point (compressed or uncompressed).
    /// Only the two standard forms: `02`/`03` and x (33 bytes) or `04`, x
    /// and y (65 bytes); the "compact" and "identity" encodings some
    /// libraries also take are refused, so every reader agrees.
    pub fn from_sec1(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let standard = matches!((bytes.first(), bytes.len()), (Some(2 | 3), 33) | (Some(4), 65));
        if !standard {
            return Err(KeyError::BadPublicKey {
                path: "SEC1 public key".into(),
            });
        }
        VerifyingKey::from_sec1_bytes(bytes)
            .map(PublicKey::from_verifying)
            .map_err(|_| KeyError::BadPublicKey {
                path: "SEC1 public key".into(),
            })
    }

    /// The compressed SEC1 point (33 bytes), the form documents carry.
    pub fn to_sec1_compressed(&self) -> Vec<u8> {
        self.inner.to_sec1_point(true).as_bytes().to_vec()
    }

    /// The uncompressed SEC1 point (65 bytes): longer, but reading it back
    /// needs no square root.
    pub fn to_sec1_uncompressed(&self) -> Vec<u8> {
        self.inner.to_sec1_point(false).as_bytes().to_vec()
    }

    /// The SPKI PEM text.
    pub fn to_spki_pem(&self) -> String {
        // Encoding a valid point cannot fail; fall back to an empty string rather than panic.
        self.inner.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// This key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Plain ECDSA P-256 / SHA-256 verification of a P1363 signature, accepting
    /// either S. This is the primitive checked against Wycheproof; documents use
    /// [`PublicKey::verify_strict`].
    pub fn verify_raw(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        let signature = Signature::from_slice(signature).map_err(|_| KeyError::BadSignature)?;
        self.inner
            .verify(message, &signature)
            .map_err(|_| KeyError::BadSignature)
    }

    /// Verification as nodelock documents require it: exactly 64 bytes, low S.
    pub fn verify_strict(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        if signature.len() != SIGNATURE_LEN {
            return Err(KeyError::BadSignature);
        }
        let parsed = Signature::from_slice(signature).map_err(|_| KeyError::BadSignature)?;
        if parsed.normalize_s() != parsed {
            return Err(KeyError::HighS);
        }
        self.inner
            .verify(message, &parsed)
            .map_err(|_| KeyError::BadSignature)
    }
}

/// The vendor public keys a workstation trusts, selected by key id so that a
/// vendor can rotate keys: licenses signed by the old and the new key both verify
/// while both are in the ring.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<PublicKey>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Adds a key (a duplicate is ignored).
    pub fn add(&mut self, key: PublicKey) {
        if self.get(&key.id()).is_none() {
            self.keys.push(key);
        }
    }

    /// The key with this id, if trusted.
    pub fn get(&self, id: &KeyId) -> Option<&PublicKey> {
        self.keys.iter().find(|k| &k.id() == id)
    }

    /// Every trusted key.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// True when no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl FromIterator<PublicKey> for Keyring {
    fn from_iter<I: IntoIterator<Item = PublicKey>>(iter: I) -> Keyring {
        let mut ring = Keyring::new();
        iter.into_iter().for_each(|k| ring.add(k));
        ring
    }
}

/// Strips what editors and mail clients add around PEM text (BOM, CR).
/// The PEM text without a BOM or CRs, in a buffer wiped on drop (it may
/// hold a private key).
fn clean_pem_text(text: &str) -> Zeroizing<String> {
    Zeroizing::new(text.trim_start_matches('\u{feff}').replace('\r', ""))
}

fn read_key_file(path: &Path) -> Result<String, KeyError> {
    let display = path.display().to_string();
    let io = |source| KeyError::Io {
        path: display.clone(),
        source,
    };
    let bytes = match fsio::read_capped(path, MAX_KEY_FILE, fsio::Links::Follow) {
        Ok(bytes) => bytes,
        Err(fsio::ReadError::Io(source)) => return Err(io(source)),
        Err(fsio::ReadError::TooLarge { .. } | fsio::ReadError::NotAFile) => {
            return Err(KeyError::TooLarge { path: display });
        }
    };
    String::from_utf8(bytes).map_err(|_| KeyError::BadPublicKey { path: display })
}

/// Writes a new key pair into `dir` as `vendor.key` (PKCS#8, owner-only) and
/// `vendor.pub` (SPKI). Refuses to replace an existing private key unless `force`.
pub fn write_key_pair(dir: &Path, key: &PrivateKey, force: bool) -> Result<(), KeyError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| KeyError::Io { path, source }
    };
    fsio::create_private_dir(dir).map_err(io(dir))?;
    let private_path = dir.join("vendor.key");
    let public_path = dir.join("vendor.pub");
    if !force && private_path.exists() {
        return Err(KeyError::Exists {
            path: private_path.display().to_string(),
        });
    }
    let pem = key.to_pkcs8_pem()?;
    fsio::write_file(&private_path, pem.as_bytes(), true, !force).map_err(io(&private_path))?;
    fsio::write_file(&public_path, key.public().to_spki_pem().as_bytes(), false, false)
        .map_err(io(&public_path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_standard_sec1_forms_are_read() {
        let key = PrivateKey::generate().unwrap().public();
        let compressed = key.to_sec1_compressed();
        let uncompressed = key.to_sec1_uncompressed();
        assert_eq!(PublicKey::from_sec1(&compressed).unwrap(), key);
        assert_eq!(PublicKey::from_sec1(&uncompressed).unwrap(), key);
        // The "compact" form (05 || x) and an uncompressed tag on 33 bytes.
        let mut compact = compressed.clone();
        compact[0] = 0x05;
        let mut mislabelled = compressed.clone();
        mislabelled[0] = 0x04;
        for bad in [
            compact,
            mislabelled,
            vec![0x00],
            Vec::new(),
            uncompressed[..64].to_vec(),
        ] {
            assert!(PublicKey::from_sec1(&bad).is_err(), "{bad:x?}");
        }
    }

    #[test]
    fn signatures_are_low_s_and_verify() {
        let key = PrivateKey::generate().unwrap();
        for i in 0..64u8 {
            let msg = [i; 3];
            let sig = key.sign_raw(&msg);
            let parsed = Signature::from_slice(&sig).unwrap();
            assert_eq!(parsed.normalize_s(), parsed, "high S produced");
            key.public().verify_strict(&msg, &sig).unwrap();
        }
    }

    #[test]
    fn high_s_is_refused_by_strict_verify_but_valid_ecdsa() {
        let key = PrivateKey::generate().unwrap();
        let msg = b"nodelock";
        let sig = Signature::from_slice(&key.sign_raw(msg)).unwrap();
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        let high = high.to_bytes();
        key.public().verify_raw(msg, &high).unwrap();
        assert!(matches!(
            key.public().verify_strict(msg, &high),
            Err(KeyError::HighS)
        ));
    }

    #[test]
    fn pem_round_trip_keeps_the_key_id() {
        let key = PrivateKey::generate().unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        let again = PrivateKey::from_pkcs8_pem(&pem.replace('\n', "\r\n"), "t").unwrap();
        assert_eq!(again.public().id(), key.public().id());
        let public =
            PublicKey::from_spki_pem(&format!("\u{feff}{}", key.public().to_spki_pem()), "t").unwrap();
        assert_eq!(public, key.public());
        let sec1 = PublicKey::from_sec1(&key.public().to_sec1_compressed()).unwrap();
        assert_eq!(sec1.id(), key.public().id());
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key = PrivateKey::generate().unwrap();
        let secret_hex = base16ct::lower::encode_string(&key.inner.to_bytes());
        let shown = format!("{key:?}");
        assert!(!shown.contains(&secret_hex));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn keyring_selects_by_id() {
        let a = PrivateKey::generate().unwrap().public();
        let b = PrivateKey::generate().unwrap().public();
        let ring: Keyring = [a.clone(), b.clone(), a.clone()].into_iter().collect();
        assert_eq!(ring.keys().len(), 2);
        assert_eq!(ring.get(&b.id()), Some(&b));
        assert!(ring.get(&KeyId([0; 8])).is_none());
    }
}
