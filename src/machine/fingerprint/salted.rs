//! Salted bindings (fingerprint algorithm 2).
//!
//! Licenses and activation requests carry each component's digest under a
//! 16-byte salt the binding names: activation requests use the entitlement's
//! lookup id (docs/FORMAT.md §7), so the vendor can match a machine's later
//! requests for that entitlement, and never sees an unsalted digest; `vendor
//! issue` uses random bytes. One table of MAC digests then no longer reverses
//! every license: each salt needs its own search.
//!
//! Why the salted hash is fast. A deliberately slow hash (Argon2id, 8 MiB, 3
//! passes: 12 ms per component on this project's CI VM) was built and
//! measured: with the slow values cached in the store, a check cost 1.24× one
//! raw verify, within budget. But reversing a digest costs, per guess, exactly
//! what a check costs per component, so a slow digest needs that cache, and a
//! cache in a store the user can write lets the user map this machine's
//! digests to another machine's values and pass as it. Without the cache a
//! check cost about 50 ms. So the hash stays fast, and the README's threat
//! model says what salting does and does not buy.

use std::borrow::Cow;

use sha2::{Digest as _, Sha256};

use super::{Component, ComponentDigest, ComponentName, Fingerprint, FingerprintError};

/// The salted algorithm's number.
pub const ALGORITHM_SALTED: u32 = 2;
/// Salt length in bytes.
pub const SALT_LEN: usize = 16;
const DOMAIN: &[u8] = b"nodelock/v2/fingerprint";

/// The algorithm-2 digest of one component, from its algorithm-1 digest:
/// `SHA-256(DOMAIN || 00 || salt || name || 00 || digest)`.
pub fn salted_digest(
    salt: &[u8; SALT_LEN],
    name: ComponentName,
    digest: &ComponentDigest,
) -> ComponentDigest {
    ComponentDigest(
        Sha256::new()
            .chain_update(DOMAIN)
            .chain_update([0])
            .chain_update(salt)
            .chain_update(name.as_str().as_bytes())
            .chain_update([0])
            .chain_update(digest.0)
            .finalize()
            .into(),
    )
}

impl Fingerprint {
    /// This (algorithm-1) fingerprint under `salt`: the form a salted
    /// binding is compared with. Evidence is kept.
    pub fn salted(&self, salt: &[u8; SALT_LEN]) -> Result<Fingerprint, FingerprintError> {
        if self.salt.is_some() {
            return Err(FingerprintError::UnknownAlgorithm(self.algorithm));
        }
        let components = self.components.iter().map(|c| Component {
            name: c.name,
            digest: salted_digest(salt, c.name, &c.digest),
        });
        Ok(Fingerprint::from_salted_components(*salt, components)?.with_evidence(self.evidence))
    }

    /// This machine's fingerprint in the form `bound` was made in: under its
    /// salt when `bound` is salted and this is not, as it is otherwise (a
    /// fingerprint under another salt then simply fails to match).
    pub fn comparable_with(&self, bound: &Fingerprint) -> Cow<'_, Fingerprint> {
        match (bound.salt(), self.salt()) {
            (Some(salt), None) => self.salted(salt).map_or(Cow::Borrowed(self), Cow::Owned),
            _ => Cow::Borrowed(self),
        }
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
        let fp = laptop();
        let a = fp.salted(&[1; SALT_LEN]).unwrap();
        let b = fp.salted(&[2; SALT_LEN]).unwrap();
        assert_eq!(a.algorithm(), ALGORITHM_SALTED);
        assert_eq!(a.salt(), Some(&[1; SALT_LEN]));
        let digests = |f: &Fingerprint| f.components().map(|c| c.digest).collect::<Vec<_>>();
        assert_ne!(digests(&a), digests(&b));
        for d in digests(&a) {
            assert!(!digests(&fp).contains(&d));
        }
        assert_eq!(digests(&fp.salted(&[1; SALT_LEN]).unwrap()), digests(&a));
        assert_eq!(a.identity(), fp.identity());
        // Salting twice is refused.
        assert!(a.salted(&[1; SALT_LEN]).is_err());
    }
}
