//! The store's half of offline activation: pending requests and their install
//! keys, install keys of activated licenses, deactivation, receipts and the
//! revocation list.
//!
//! Install keys are the only secrets a workstation holds; they are written
//! owner-only and never leave the store. A deactivation is committed the
//! moment the license file is removed; the install key is kept until the
//! signed request is safely in `outbox/`, so a crash in between is finished by
//! running `nodelock deactivate` again.

use std::path::PathBuf;

use serde::Serialize;

use super::{RetiredLicense, Store, StoreError, io_err};
use crate::base::clock::Timestamp;
use crate::base::fsio;
use crate::base::random::{self, OsRandom};
use crate::documents::activation::{self, ActivationKey, NONCE_LEN, VerifiedReceipt};
use crate::documents::license::{self, License};
use crate::format::KeyError;
use crate::format::envelope::{self, DocumentKind};
use crate::format::{Keyring, PrivateKey};
use crate::machine::fingerprint::Fingerprint;

/// A request made and waiting for its answer.
#[derive(Debug, Clone, Serialize)]
pub struct PendingRequest {
    /// The request, armored: what the user sends to the vendor.
    #[serde(skip)]
    pub armored: String,
    /// Hex nonce naming it.
    pub nonce: String,
    /// The workstation id it carries.
    pub workstation_id: String,
    /// Size of the binary document in bytes.
    pub size: usize,
}

/// A deactivation request made.
#[derive(Debug, Clone, Serialize)]
pub struct Deactivation {
    /// The license given up.
    pub license_id: String,
    /// Its product, when the license was still installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// True when an earlier deactivation's request was printed again.
    pub reprinted: bool,
    /// The request, armored.
    #[serde(skip)]
    pub armored: String,
}

impl Store {
    fn pending_path(&self, nonce_hex: &str, ext: &str) -> PathBuf {
        self.root.join("pending").join(format!("{nonce_hex}.{ext}"))
    }

    pub(super) fn install_key_path(&self, license_id: &str) -> PathBuf {
        self.root.join("keys").join(format!("{license_id}.key"))
    }

    fn outbox_path(&self, license_id: &str) -> PathBuf {
        self.root.join("outbox").join(format!("{license_id}.deact"))
    }

    /// Makes an install key pair and a signed activation request, and keeps
    /// both (the key owner-only) until the answer is imported.
    pub fn create_request(
        &self,
        key: &ActivationKey,
        fingerprint: &Fingerprint,
        now: Timestamp,
    ) -> Result<PendingRequest, StoreError> {
        let install = PrivateKey::generate()?;
        let nonce = random::bytes::<NONCE_LEN>(&OsRandom).map_err(KeyError::from)?;
        // Salted with the key's lookup id (FORMAT.md §3), so that the
        // reported workstation id is the one the vendor's ledger will show.
        let fingerprint = &fingerprint
            .salted(&key.lookup())
            .map_err(activation::ActivationError::from)?;
        let (_, armored) = activation::make_request(key, fingerprint, &install, nonce, now)?;
        let nonce_hex = base16ct::lower::encode_string(&nonce);
        let _lock = self.lock()?;
        let key_path = self.pending_path(&nonce_hex, "key");
        fsio::write_file(&key_path, install.to_pkcs8_pem()?.as_bytes(), true, true)
            .map_err(io_err(&key_path))?;
        let req_path = self.pending_path(&nonce_hex, "req");
        fsio::write_file(&req_path, armored.as_bytes(), false, false).map_err(io_err(&req_path))?;
        let size = crate::format::armor::find_block(armored.as_bytes())
            .ok()
            .flatten()
            .map_or(0, |b| b.bytes.len());
        Ok(PendingRequest {
            armored,
            nonce: nonce_hex,
            workstation_id: fingerprint.workstation_id().to_string(),
            size,
        })
    }

    /// Requests made here and not answered yet, newest last.
    pub fn pending_requests(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.root.join("pending"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()
                            .and_then(|n| n.strip_suffix(".req"))
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Checks that an answered license matches a pending request of this store
    /// and moves the request's install key to `keys/<license id>.key`.
    /// Called under the lock. Returns the nonce (hex) to drop afterwards.
    pub(super) fn take_pending_key(
        &self,
        nonce: &[u8],
        install_key: &[u8],
        license_id: &str,
    ) -> Result<String, StoreError> {
        let nonce_hex = base16ct::lower::encode_string(nonce);
        let key_path = self.pending_path(&nonce_hex, "key");
        let existing = self.install_key_path(license_id);
        let path = if key_path.exists() {
            key_path
        } else {
            existing.clone()
        };
        let key = PrivateKey::load(&path).map_err(|_| StoreError::NotRequested {
            reason: "no pending request here has its nonce".into(),
        })?;
        if key.public().to_sec1_compressed() != install_key {
            return Err(StoreError::NotRequested {
                reason: "its install key is not the one this store made".into(),
            });
        }
        if path != existing {
            fsio::write_file(&existing, key.to_pkcs8_pem()?.as_bytes(), true, false)
                .map_err(io_err(&existing))?;
        }
        Ok(nonce_hex)
    }

    /// Removes a pending request once answered (best effort: leftovers are harmless).
    pub(super) fn drop_pending(&self, nonce_hex: &str) {
        let _ = std::fs::remove_file(self.pending_path(nonce_hex, "key"));
        let _ = std::fs::remove_file(self.pending_path(nonce_hex, "req"));
    }

    /// Installed licenses: file path and payload (unverified; for housekeeping).
    pub(super) fn installed(&self) -> Vec<(PathBuf, License)> {
        let Ok(entries) = std::fs::read_dir(self.root.join("licenses")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "lic"))
            .filter_map(|p| {
                let bytes = envelope::read_file(&p, DocumentKind::License, fsio::Links::Refuse).ok()?;
                License::read_unverified(&bytes).map(|l| (p, l))
            })
            .collect()
    }

    /// Deletes installed licenses the vendor revoked. Called under the lock.
    /// The revoked license file is kept beside, renamed `….revoked`, so that
    /// a later check says "revoked" rather than "no license". Returns what it
    /// retired, for the import to report.
    pub(super) fn remove_revoked_licenses_locked(
        &self,
        _keyring: &Keyring,
    ) -> Result<Vec<RetiredLicense>, StoreError> {
        let revoked = self.revoked();
        let mut retired = Vec::new();
        for (path, lic) in self.installed() {
            if revoked.contains(&lic.id) {
                let kept = path.with_extension("revoked");
                std::fs::rename(&path, &kept).map_err(io_err(&path))?;
                let _ = std::fs::remove_file(self.install_key_path(&lic.id));
                retired.push(RetiredLicense {
                    license_id: lic.id,
                    product: lic.product,
                });
            }
        }
        Ok(retired)
    }

    /// The id of a revoked license of `product` kept in the store, if any.
    pub(super) fn revoked_license_of(&self, product: &str) -> Option<String> {
        let entries = std::fs::read_dir(self.root.join("licenses")).ok()?;
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "revoked"))
            .filter_map(|p| {
                let bytes = envelope::read_file(&p, DocumentKind::License, fsio::Links::Refuse).ok()?;
                License::read_unverified(&bytes)
            })
            .find(|l| l.product == product)
            .map(|l| l.id)
    }

    /// Gives a license up: signs a deactivation request with its install key,
    /// keeps it in `outbox/`, and removes the license and the key. Neither the
    /// fingerprint nor the clock is consulted: a drifted machine or a wrong
    /// clock never blocks giving a seat back. Running it again for the same
    /// license prints the same request again.
    pub fn deactivate(&self, license_id: &str, now: Timestamp) -> Result<Deactivation, StoreError> {
        let not_installed = || StoreError::NotInstalled {
            license_id: license_id.to_owned(),
            store: self.root.display().to_string(),
        };
        if !license::valid_id(license_id) {
            return Err(not_installed());
        }
        let _lock = self.lock()?;
        let outbox = self.outbox_path(license_id);
        if let Ok(Some(armored)) =
            self.read_record(&outbox, crate::format::envelope::MAX_DOCUMENT_BYTES as u64)
        {
            return Ok(Deactivation {
                license_id: license_id.to_owned(),
                product: None,
                reprinted: true,
                armored,
            });
        }
        let installed = self.installed().into_iter().find(|(_, l)| l.id == license_id);
        let key_path = self.install_key_path(license_id);
        let install = match (&installed, key_path.exists()) {
            (_, true) => PrivateKey::load(&key_path)?,
            (Some(_), false) => {
                return Err(StoreError::NoInstallKey {
                    license_id: license_id.to_owned(),
                });
            }
            (None, false) => return Err(not_installed()),
        };
        let nonce = random::bytes::<NONCE_LEN>(&OsRandom).map_err(KeyError::from)?;
        let (_, armored) = activation::make_deactivation(license_id, &install, nonce, now)?;
        let product = installed.as_ref().map(|(_, l)| l.product.clone());
        // The commit point: once the license file is gone the seat is given up here.
        if let Some((path, _)) = &installed {
            std::fs::remove_file(path).map_err(io_err(path))?;
        }
        fsio::write_file(&outbox, armored.as_bytes(), false, false).map_err(io_err(&outbox))?;
        std::fs::remove_file(&key_path).map_err(io_err(&key_path))?;
        Ok(Deactivation {
            license_id: license_id.to_owned(),
            product,
            reprinted: false,
            armored,
        })
    }

    /// A refresh request for the installed license of `product` that
    /// `keyring` trusts, signed by its install key; returns the license id
    /// and the armored request. Changes nothing in the store: the refreshed
    /// license replaces the old one when it is imported.
    pub fn refresh_request(
        &self,
        product: &str,
        keyring: &Keyring,
        current: &Fingerprint,
        now: Timestamp,
    ) -> Result<(String, String), StoreError> {
        let Some((_, verified)) = self.installed_license(product, keyring)? else {
            return Err(StoreError::NotFound {
                product: product.to_owned(),
                store: self.root.display().to_string(),
            });
        };
        let license_id = verified.license().id.clone();
        let key_path = self.install_key_path(&license_id);
        if !key_path.exists() {
            return Err(StoreError::NoInstallKey { license_id });
        }
        let install = PrivateKey::load(&key_path)?;
        let nonce = random::bytes::<NONCE_LEN>(&OsRandom).map_err(KeyError::from)?;
        let current = current.comparable_with(verified.binding());
        let (_, armored) = activation::make_refresh(&license_id, &current, &install, nonce, now)?;
        Ok((license_id, armored))
    }

    /// [`Store::refresh_request`] for the installed license with this id;
    /// returns its product and the armored request.
    pub fn refresh_request_by_id(
        &self,
        license_id: &str,
        keyring: &Keyring,
        current: &Fingerprint,
        now: Timestamp,
    ) -> Result<(String, String), StoreError> {
        let product = self
            .installed()
            .into_iter()
            .find(|(_, l)| l.id == license_id)
            .map(|(_, l)| l.product)
            .ok_or_else(|| StoreError::NotInstalled {
                license_id: license_id.to_owned(),
                store: self.root.display().to_string(),
            })?;
        let (_, armored) = self.refresh_request(&product, keyring, current, now)?;
        Ok((product, armored))
    }

    /// Products of the installed licenses that have an install key (those
    /// that can be refreshed), sorted.
    pub fn refreshable_products(&self) -> Vec<String> {
        let mut products: Vec<String> = self
            .installed()
            .into_iter()
            .filter(|(_, l)| self.install_key_path(&l.id).exists())
            .map(|(_, l)| l.product)
            .collect();
        products.sort();
        products.dedup();
        products
    }

    /// Verifies a vendor's deactivation receipt and clears the outbox entry.
    pub fn import_receipt(&self, input: &[u8], keyring: &Keyring) -> Result<VerifiedReceipt, StoreError> {
        if keyring.is_empty() {
            return Err(StoreError::NoTrustRoots);
        }
        let verified = activation::open_receipt(input, keyring)?;
        let license_id = &verified.receipt().license_id;
        if license::valid_id(license_id) {
            let _lock = self.lock()?;
            let _ = std::fs::remove_file(self.outbox_path(license_id));
        }
        Ok(verified)
    }
}

impl Store {
    /// The pending request this store made for `key`, if any: a retried
    /// online activation re-sends it rather than making a second request that
    /// would take a second seat.
    pub fn pending_for_key(&self, key: &ActivationKey) -> Option<PendingRequest> {
        self.pending_requests().into_iter().find_map(|nonce_hex| {
            let armored = self
                .read_record(
                    &self.pending_path(&nonce_hex, "req"),
                    crate::format::envelope::MAX_DOCUMENT_BYTES as u64,
                )
                .ok()??;
            let verified = activation::open_request(armored.as_bytes()).ok()?;
            (verified.presents(&key.ledger_hash()) && self.pending_path(&nonce_hex, "key").exists()).then(
                || PendingRequest {
                    size: verified.envelope().len(),
                    workstation_id: verified.fingerprint().workstation_id().to_string(),
                    nonce: nonce_hex,
                    armored,
                },
            )
        })
    }
}

impl Store {
    /// The newest vendor-signed time this store holds: the latest issue time
    /// among its licenses that verify under `keyring`.
    pub fn newest_vendor_time(&self, keyring: &Keyring) -> Option<crate::base::clock::Timestamp> {
        self.installed()
            .into_iter()
            .filter_map(|(path, _)| {
                let bytes = envelope::read_file(&path, DocumentKind::License, fsio::Links::Refuse).ok()?;
                license::verify(&bytes, keyring)
                    .ok()
                    .map(|v| v.license().issued_at)
            })
            .max()
    }
}
