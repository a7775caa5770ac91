//! Floating licenses in a store: the pool licenses a pool server serves
//! (with the install keys that sign their leases), and the borrows a field
//! laptop carries (`borrows/<product>.lease`, its pool license beside it as
//! `.pool`, and the holder key that returns it as `.key`, owner-only).
//!
//! A borrow is checked like a node-locked license: the chain (vendor key →
//! pool license → its install key → the lease), this machine against the
//! lease's binding, and the lease's end, counted from the server's signed
//! time: the lease runs `expires_at - issued_at` from when this store
//! received it, so a laptop whose clock differs from the pool server's gets
//! the whole borrow, no more and no less (module docs of `documents::lease`).
//!
//! A borrow set to return on reconnect also keeps `.reconnect`: the pool
//! server to give it back to, and whether this laptop has been away from it
//! (see `online::pool::return_on_reconnect`).

use std::path::PathBuf;

use super::{Store, StoreError, io_err};
use crate::base::clock::{self, Timestamp};
use crate::base::fsio;
use crate::documents::lease::{self, VerifiedLease};
use crate::documents::license::{self, LicenseKind, VerifiedLicense};
use crate::format::envelope::{self, DocumentKind};
use crate::format::{Keyring, PrivateKey};
use crate::machine::fingerprint::{self, Fingerprint, MatchPolicy, Verdict};
use crate::workstation::check::{self, Denial, Grant};

/// A pool license this store can serve.
pub struct PoolLicense {
    /// The license, verified and checked on this machine now.
    pub license: VerifiedLicense,
    /// Its install key, which signs leases.
    pub install: PrivateKey,
    /// The license file's text.
    pub armored: String,
}

/// A borrow kept in this store.
pub struct Borrow {
    /// The lease, verified against its pool license.
    pub lease: VerifiedLease,
    /// When this store received it (local clock).
    pub received_at: Timestamp,
}

impl Borrow {
    /// The end of the borrow on this machine's clock.
    pub fn local_end(&self) -> Timestamp {
        let lease = self.lease.lease();
        self.received_at
            .saturating_add(lease.expires_at.saturating_sub(lease.issued_at))
    }
}

/// The most a borrow's JSON record may hold (a return carries a signed
/// update of well under 2 KiB).
const RECORD_LIMIT: u64 = 16 * 1024;

/// What a borrow set to return on reconnect remembers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reconnect {
    /// The pool server it was borrowed from (and goes back to).
    pub server: String,
    /// The borrow's lease: a record left from an earlier borrow is ignored.
    pub lease_id: String,
    /// Whether the laptop has been away: the pool could not be reached for
    /// a while, so reaching it again means it is back.
    pub away: bool,
    /// The first failed try since the last one that reached the pool.
    pub first_failure: Option<Timestamp>,
    /// When this store last tried to reach it (its own clock).
    pub probed_at: Option<Timestamp>,
}

/// A borrow's return, signed and sent but not yet acknowledged: the borrow
/// is already gone from the store, and the return is sent again until the
/// pool answers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PendingReturn {
    /// The pool server.
    pub server: String,
    /// The borrow's lease.
    pub lease_id: String,
    /// The signed lease update (`return`), armored.
    pub update: String,
}

impl Store {
    /// Every pool license installed here, verified, checked on this machine
    /// now (binding, dates, clock), with its install key. The first one that
    /// fails is the error: a pool server must not start half-right.
    pub fn pool_licenses(
        &self,
        keyring: &Keyring,
        current: &Fingerprint,
        now: Timestamp,
    ) -> Result<Vec<PoolLicense>, StoreError> {
        let state = self.state()?;
        let mut found = Vec::new();
        for (path, unverified) in self.installed() {
            if unverified.kind != LicenseKind::FloatingPool {
                continue;
            }
            let bytes = envelope::read_file(&path, DocumentKind::License, fsio::Links::Refuse)
                .map_err(license::LicenseError::from)?;
            let verified = license::verify(&bytes, keyring)?;
            check::check(&verified, &state.context(current, now))?;
            let id = &verified.license().id;
            let key_path = self.install_key_path(id);
            if !key_path.exists() {
                return Err(StoreError::NoInstallKey {
                    license_id: id.clone(),
                });
            }
            let install = PrivateKey::load(&key_path)?;
            if Some(&install.public()) != verified.install_key() {
                return Err(StoreError::NoInstallKey {
                    license_id: id.clone(),
                });
            }
            found.push(PoolLicense {
                license: verified,
                install,
                armored: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(found)
    }

    fn borrow_path(&self, product: &str, ext: &str) -> PathBuf {
        self.root.join("borrows").join(format!("{product}.{ext}"))
    }

    /// Keeps a borrow granted by a pool server: verified first (chain, this
    /// machine), then written with its holder key. Replaces an earlier
    /// borrow of the product.
    pub fn keep_borrow(
        &self,
        lease_text: &str,
        pool_text: &str,
        holder: PrivateKey,
        keyring: &Keyring,
        current: &Fingerprint,
        now: Timestamp,
    ) -> Result<Borrow, StoreError> {
        let verified = lease::verify_lease(lease_text.as_bytes(), pool_text.as_bytes(), keyring)?;
        let pem = holder.to_pkcs8_pem()?;
        let borrow = Borrow {
            lease: verified,
            received_at: now,
        };
        self.check_borrow(&borrow, current, now, None, self.watermark()?)?;
        let _lock = self.lock()?;
        let dir = self.root.join("borrows");
        fsio::create_private_dir(&dir).map_err(io_err(&dir))?;
        let product = &borrow.lease.lease().product;
        let key = self.borrow_path(product, "key");
        fsio::write_file(&key, pem.as_bytes(), true, false).map_err(io_err(&key))?;
        let pool = self.borrow_path(product, "pool");
        fsio::write_file(&pool, pool_text.as_bytes(), false, false).map_err(io_err(&pool))?;
        super::time::write_time(&self.borrow_path(product, "received"), now)?;
        let path = self.borrow_path(product, "lease");
        fsio::write_file(&path, lease_text.as_bytes(), false, false).map_err(io_err(&path))?;
        // A new borrow starts with no return on reconnect until it is set.
        remove_if_there(&self.borrow_path(product, "reconnect"))?;
        Ok(borrow)
    }

    /// Keeps a return to send again until the pool acknowledges it.
    pub fn keep_pending_return(&self, product: &str, pending: &PendingReturn) -> Result<(), StoreError> {
        self.write_borrow_record(product, "return", pending)
    }

    /// The return of `product` not yet acknowledged, if any.
    pub fn pending_return(&self, product: &str) -> Option<PendingReturn> {
        self.read_borrow_record(product, "return")
    }

    /// Forgets the pending return of `product` (the pool answered it).
    pub fn drop_pending_return(&self, product: &str) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        remove_if_there(&self.borrow_path(product, "return"))
    }

    /// Sets (or updates) the return on reconnect of the borrow of `product`.
    pub fn set_reconnect(&self, product: &str, reconnect: &Reconnect) -> Result<(), StoreError> {
        self.write_borrow_record(product, "reconnect", reconnect)
    }

    /// The return on reconnect of the borrow of `product`, if one is set
    /// (a file that does not read is treated as none: the borrow then runs
    /// to its end, as without the option).
    pub fn reconnect(&self, product: &str) -> Option<Reconnect> {
        self.read_borrow_record(product, "reconnect")
    }

    /// Writes a small JSON record beside the borrow of `product`.
    fn write_borrow_record(
        &self,
        product: &str,
        ext: &str,
        record: &impl serde::Serialize,
    ) -> Result<(), StoreError> {
        let path = self.borrow_path(product, ext);
        let text = serde_json::to_vec(record).map_err(|e| io_err(&path)(std::io::Error::other(e)))?;
        let _lock = self.lock()?;
        fsio::write_file(&path, &text, false, false).map_err(io_err(&path))
    }

    /// Reads a record [`write_borrow_record`](Self::write_borrow_record)
    /// wrote (as the store reads its records: capped, no links); none when
    /// absent or unreadable.
    fn read_borrow_record<T: serde::de::DeserializeOwned>(&self, product: &str, ext: &str) -> Option<T> {
        if !license::valid_product(product) {
            return None;
        }
        let text = self
            .read_record(&self.borrow_path(product, ext), RECORD_LIMIT)
            .ok()??;
        serde_json::from_str(&text).ok()
    }

    /// The borrow of `product` kept here, verified (not yet checked).
    pub fn borrow(&self, product: &str, keyring: &Keyring) -> Result<Option<Borrow>, StoreError> {
        if !license::valid_product(product) {
            return Ok(None);
        }
        let path = self.borrow_path(product, "lease");
        let lease_bytes = match envelope::read_file(&path, DocumentKind::Lease, fsio::Links::Refuse) {
            Ok(b) => b,
            Err(envelope::EnvelopeError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(e) => return Err(StoreError::License(e.into())),
        };
        let pool_bytes = envelope::read_file(
            &self.borrow_path(product, "pool"),
            DocumentKind::License,
            fsio::Links::Refuse,
        )
        .map_err(license::LicenseError::from)?;
        let lease = lease::verify_lease(&lease_bytes, &pool_bytes, keyring)?;
        let at_path = self.borrow_path(product, "received");
        let received_at = super::time::read_time(&at_path)?.ok_or_else(|| StoreError::ClockDamaged {
            path: at_path.display().to_string(),
        })?;
        Ok(Some(Borrow { lease, received_at }))
    }

    /// The holder key of the borrow of `product` (what signs its return);
    /// read only to give it back, never at a check.
    pub fn borrow_holder(&self, product: &str) -> Result<PrivateKey, StoreError> {
        Ok(PrivateKey::load(&self.borrow_path(product, "key"))?)
    }

    /// Checks a borrow on this machine now: the pool license's dates, the
    /// lease's binding, its end (from the server's signed duration), and the
    /// store's clock `watermark` (the caller's read of it).
    pub fn check_borrow(
        &self,
        borrow: &Borrow,
        current: &Fingerprint,
        now: Timestamp,
        wanted: Option<&str>,
        watermark: Option<Timestamp>,
    ) -> Result<Grant, StoreError> {
        let lease = borrow.lease.lease();
        let pool = borrow.lease.pool().license();
        if let Some(w) = wanted
            && w != lease.product
        {
            return Err(Denial::WrongProduct {
                wanted: w.to_owned(),
                found: lease.product.clone(),
            }
            .into());
        }
        let report = fingerprint::compare(borrow.lease.fingerprint(), current, MatchPolicy::Standard, true);
        if report.verdict != Verdict::Holds {
            return Err(Denial::OtherMachine {
                report: Box::new(report),
            }
            .into());
        }
        check::clock_not_set_back(watermark, now)?;
        let end = borrow.local_end();
        let end = pool.expires_at.map_or(end, |e| end.min(e));
        if now >= end {
            return Err(Denial::Expired { expired_at: end }.into());
        }
        Ok(Grant {
            license_id: lease.id.clone(),
            product: lease.product.clone(),
            kind: LicenseKind::Borrowed,
            features: lease.features.clone(),
            customer: pool.customer.clone(),
            expires_at: Some(clock::format(end)),
            days_left: Some((end - now) / clock::DAY),
            maintenance_until: pool.maintenance_until.map(clock::format),
            revalidate_by: None,
            warning: Some(format!(
                "borrowed from the pool until {}; `nodelock return {}` gives it back early",
                clock::format(end),
                lease.product
            )),
        })
    }

    /// Forgets the borrow of `product` (after a return): its lease and
    /// holder key go, so the borrow stops working here at once.
    pub fn drop_borrow(&self, product: &str) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        self.drop_borrow_locked(product)
    }

    /// [`drop_borrow`](Self::drop_borrow), only if the borrow kept is still
    /// the one with lease `lease_id` (not one taken since); true if dropped.
    pub fn drop_borrow_of(&self, product: &str, lease_id: &str) -> Result<bool, StoreError> {
        let _lock = self.lock()?;
        if self.borrow_lease_id(product).as_deref() != Some(lease_id) {
            return Ok(false);
        }
        self.drop_borrow_locked(product)?;
        Ok(true)
    }

    /// The lease id of the borrow of `product` kept here, read without
    /// verifying anything: enough to tell one borrow from another (to name
    /// the lease a return gives back), never to grant.
    pub fn borrow_lease_id(&self, product: &str) -> Option<String> {
        if !license::valid_product(product) {
            return None;
        }
        let path = self.borrow_path(product, "lease");
        let bytes = envelope::read_file(&path, DocumentKind::Lease, fsio::Links::Refuse).ok()?;
        let doc = envelope::parse(&bytes, DocumentKind::Lease).ok()?;
        crate::format::codec::decode::<lease::Lease>(doc.untrusted_payload())
            .ok()
            .map(|l| l.id)
    }

    fn drop_borrow_locked(&self, product: &str) -> Result<(), StoreError> {
        for ext in ["lease", "pool", "received", "key", "reconnect"] {
            remove_if_there(&self.borrow_path(product, ext))?;
        }
        Ok(())
    }
}

fn remove_if_there(path: &std::path::Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}
