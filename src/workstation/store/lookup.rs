//! Where a product's license is found in a store: under a trusted key's
//! name, under the legacy name, or (to say whose key it needs) under
//! another vendor key's name.

use std::path::PathBuf;

use super::{Store, StoreError};
use crate::documents::license::{LicenseError, VerifiedLicense};
use crate::format::{Keyring, envelope};

impl Store {
    /// The installed license for `product` that `keyring` trusts, the newest
    /// if several keys each have one; with its path. `Ok(None)` when no file
    /// exists; an error when files exist and none verifies (the first error).
    pub(super) fn installed_license(
        &self,
        product: &str,
        keyring: &Keyring,
    ) -> Result<Option<(PathBuf, VerifiedLicense)>, StoreError> {
        match self.license_in_place(product, keyring)? {
            Some(found) => Ok(Some(found)),
            None => self.other_vendors_license(product, keyring),
        }
    }

    /// The newest license of `product` under a trusted key's name (or the
    /// legacy name); a damaged one is the error when no other verifies.
    pub(super) fn license_in_place(
        &self,
        product: &str,
        keyring: &Keyring,
    ) -> Result<Option<(PathBuf, VerifiedLicense)>, StoreError> {
        let candidates = keyring
            .keys()
            .iter()
            .map(|k| self.license_path(product, k.id()))
            .chain([self.legacy_license_path(product)]);
        let mut newest: Option<(PathBuf, VerifiedLicense)> = None;
        let mut first_error = None;
        for path in candidates {
            match self.read_license(&path, keyring) {
                Ok(v) => {
                    if newest
                        .as_ref()
                        .is_none_or(|(_, n)| n.license().issued_at < v.license().issued_at)
                    {
                        newest = Some((path, v));
                    }
                }
                Err(StoreError::License(LicenseError::Envelope(envelope::EnvelopeError::Io {
                    source,
                    ..
                }))) if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (newest, first_error) {
            (Some(found), _) => Ok(Some(found)),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }

    /// Only other vendor keys' licenses for this product: say so (whose
    /// key), rather than that there is none.
    pub(super) fn other_vendors_license(
        &self,
        product: &str,
        keyring: &Keyring,
    ) -> Result<Option<(PathBuf, VerifiedLicense)>, StoreError> {
        let prefix = format!("{product}@");
        let other = std::fs::read_dir(self.root.join("licenses"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
            });
        match other {
            Some(path) => self.read_license(&path, keyring).map(|v| Some((path, v))),
            None => Ok(None),
        }
    }
}
