//! Salted bindings (fingerprint algorithm 2): digests that cost real work to
//! reverse.
//!
//! An algorithm-1 digest of a MAC can be reversed by trying the 2^24 addresses
//! of each vendor prefix, in seconds. Algorithm 2 derives each component's
//! digest from its algorithm-1 digest, a 16-byte salt the binding carries, and
//! for the guessable components (MACs, disk and board serials) a deliberately
//! slow, memory-hard hash (Argon2id, 8 MiB, 3 passes): reversing one MAC then
//! costs 2^24 such hashes for that one salt. Activation requests salt with the
//! entitlement's lookup id (docs/FORMAT.md §7), so the vendor can match a
//! machine's later requests for that entitlement against its binding without
//! ever seeing an unsalted digest; `vendor issue` salts with random bytes.
//!
//! A check computes the current machine's salted digests from its algorithm-1
//! digests; the slow part is computed once per (salt, value) and cached in the
//! store ([`StretchCache`]), so a check still costs one signature verification
//! (benches/answer.rs measures it).

use std::sync::Mutex;

use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest as _, Sha256};

use super::{Component, ComponentDigest, ComponentName, Fingerprint, FingerprintError};

/// The salted algorithm's number.
pub const ALGORITHM_SALTED: u32 = 2;
/// Salt length in bytes.
pub const SALT_LEN: usize = 16;
/// Argon2id memory in KiB, passes and lanes: 12 ms on the 2-core VM this
/// project's CI uses (`cargo bench --bench check`).
pub const STRETCH_COST: (u32, u32, u32) = (8192, 3, 1);
const DOMAIN: &[u8] = b"nodelock/v2/fingerprint";

/// Components whose values are few enough to be tried one by one.
pub fn is_guessable(name: ComponentName) -> bool {
    matches!(
        name,
        ComponentName::Mac | ComponentName::Disk | ComponentName::BoardSerial
    )
}

/// Remembers slow hashes, so that each (salt, algorithm-1 digest) is stretched
/// once per store rather than at every check.
pub trait StretchCache: std::fmt::Debug {
    /// The stretched value of `digest` under `salt`, if known.
    fn get(&self, salt: &[u8; SALT_LEN], digest: &ComponentDigest) -> Option<[u8; 32]>;
    /// Records one.
    fn put(&self, salt: &[u8; SALT_LEN], digest: &ComponentDigest, stretched: [u8; 32]);
}

/// No cache: every salted check stretches again (correct, slow).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCache;

impl StretchCache for NoCache {
    fn get(&self, _: &[u8; SALT_LEN], _: &ComponentDigest) -> Option<[u8; 32]> {
        None
    }

    fn put(&self, _: &[u8; SALT_LEN], _: &ComponentDigest, _: [u8; 32]) {}
}

/// A cache that lives as long as the value: enough for one process.
#[derive(Debug, Default)]
pub struct MemoryCache(Mutex<Vec<Stretched>>);

/// One remembered slow hash: salt, algorithm-1 digest, stretched value.
type Stretched = ([u8; SALT_LEN], ComponentDigest, [u8; 32]);

impl StretchCache for MemoryCache {
    fn get(&self, salt: &[u8; SALT_LEN], digest: &ComponentDigest) -> Option<[u8; 32]> {
        let entries = self.0.lock().ok()?;
        entries
            .iter()
            .find(|(s, d, _)| s == salt && d == digest)
            .map(|(_, _, v)| *v)
    }

    fn put(&self, salt: &[u8; SALT_LEN], digest: &ComponentDigest, stretched: [u8; 32]) {
        if let Ok(mut entries) = self.0.lock() {
            entries.push((*salt, *digest, stretched));
        }
    }
}

/// Argon2id of an algorithm-1 digest under `salt`. Fails closed: should the
/// hash be impossible (memory), the value is random and so matches nothing.
pub fn stretch(salt: &[u8; SALT_LEN], digest: &ComponentDigest) -> [u8; 32] {
    let (m, t, p) = STRETCH_COST;
    let mut out = [0u8; 32];
    let done = Params::new(m, t, p, Some(32))
        .map(|params| Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
        .and_then(|argon| argon.hash_password_into(&digest.0, salt, &mut out));
    if done.is_err() {
        let mut noise = [0u8; 32];
        // Without randomness either, a constant that no digest equals.
        let _ = getrandom::fill(&mut noise);
        out = Sha256::new()
            .chain_update(b"nodelock/v2/stretch-failed")
            .chain_update(noise)
            .finalize()
            .into();
    }
    out
}

/// The algorithm-2 digest of one component, from its algorithm-1 digest:
/// `SHA-256(DOMAIN || 00 || salt || name || 00 || inner)` where `inner` is the
/// stretched digest for guessable components and the digest itself otherwise.
pub fn salted_digest(
    salt: &[u8; SALT_LEN],
    name: ComponentName,
    digest: &ComponentDigest,
    cache: &dyn StretchCache,
) -> ComponentDigest {
    let inner = if is_guessable(name) {
        cache.get(salt, digest).unwrap_or_else(|| {
            let stretched = stretch(salt, digest);
            cache.put(salt, digest, stretched);
            stretched
        })
    } else {
        digest.0
    };
    ComponentDigest(
        Sha256::new()
            .chain_update(DOMAIN)
            .chain_update([0])
            .chain_update(salt)
            .chain_update(name.as_str().as_bytes())
            .chain_update([0])
            .chain_update(inner)
            .finalize()
            .into(),
    )
}

impl Fingerprint {
    /// This (algorithm-1) fingerprint under `salt`: the form a salted
    /// binding is compared with. Evidence is kept.
    pub fn salted(
        &self,
        salt: &[u8; SALT_LEN],
        cache: &dyn StretchCache,
    ) -> Result<Fingerprint, FingerprintError> {
        if self.salt.is_some() {
            return Err(FingerprintError::UnknownAlgorithm(self.algorithm));
        }
        let components = self.components.iter().map(|c| Component {
            name: c.name,
            digest: salted_digest(salt, c.name, &c.digest, cache),
        });
        Ok(Fingerprint::from_salted_components(*salt, components)?.with_evidence(self.evidence))
    }

    /// An algorithm-2 fingerprint from its digests and salt (a binding, a request).
    pub fn from_salted_components(
        salt: [u8; SALT_LEN],
        components: impl IntoIterator<Item = Component>,
    ) -> Result<Fingerprint, FingerprintError> {
        let mut fp = Fingerprint::build(ALGORITHM_SALTED, components)?;
        fp.salt = Some(salt);
        Ok(fp)
    }

    /// The binding's salt (algorithm 2), if any.
    pub fn salt(&self) -> Option<&[u8; SALT_LEN]> {
        self.salt.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::facts::{Facts, Interface};

    fn laptop() -> Fingerprint {
        let mut f = Facts::empty();
        f.machine_id = Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into());
        f.disk_serials = Some(vec!["S3Z9NB0K123456A".into()]);
        f.network = Some(vec![Interface {
            name: Some("en0".into()),
            mac: Some("3c:52:82:aa:bb:cc".into()),
            physical: Some(true),
        }]);
        Fingerprint::from_facts(&f).unwrap()
    }

    #[test]
    fn salted_digests_depend_on_the_salt_and_hide_the_unsalted_ones() {
        let cache = MemoryCache::default();
        let fp = laptop();
        let a = fp.salted(&[1; SALT_LEN], &cache).unwrap();
        let b = fp.salted(&[2; SALT_LEN], &cache).unwrap();
        assert_eq!(a.algorithm(), ALGORITHM_SALTED);
        assert_eq!(a.salt(), Some(&[1; SALT_LEN]));
        let digests = |f: &Fingerprint| f.components().map(|c| c.digest).collect::<Vec<_>>();
        assert_ne!(digests(&a), digests(&b));
        for d in digests(&a) {
            assert!(!digests(&fp).contains(&d));
        }
        // The same machine under the same salt: the same digests (cached or not).
        assert_eq!(
            digests(&fp.salted(&[1; SALT_LEN], &MemoryCache::default()).unwrap()),
            digests(&a)
        );
        // Only the guessable components were stretched (the disk and the MAC).
        assert_eq!(cache.0.lock().unwrap().len(), 4);
        // Salting twice is refused.
        assert!(a.salted(&[1; SALT_LEN], &cache).is_err());
    }
}
