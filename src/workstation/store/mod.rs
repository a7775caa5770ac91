//! The workstation's local store: installed licenses, trusted vendor keys, and
//! the clock watermark.
//!
//! Layout of a store directory (docs/FORMAT.md §5):
//!
//! ```text
//! licenses/<product>@<key id>.lic  the armored license as received, one per
//!                          product and vendor key (a product name is only
//!                          unique within a vendor's key); `<product>.lic`, the
//!                          name before licenses were scoped, is still read
//! keys/<license id>.key    the install key of a license activated by request (owner-only)
//! pending/<nonce>.key      the install key of a request not answered yet (owner-only)
//! pending/<nonce>.req      that request, as sent
//! outbox/<license id>.deact  a deactivation request made, until its receipt is imported
//! trust/<key id>.pub       vendor public keys (SPKI PEM) added by `trust add` or a
//!                          `--pubkey` that verified an import; a file under any
//!                          other name, or whose key has another id, is ignored
//! revoked                  license ids the vendor revoked, one per line
//! clock                    the watermark: latest time seen (local or signed), decimal
//! trusted-clock            the latest vendor-signed time seen, decimal (store/time.rs)
//! pending/<nonce>.clock    a clock request waiting for its time statement
//! borrows/<product>.*      a seat borrowed from a floating pool (store/pools.rs)
//! .lock                    taken exclusively by every writer
//! ```
//!
//! Every write is atomic ([`fsio::write_file`]) and happens under the lock,
//! so two processes importing at once, or a crash mid-import, never lose or
//! mix a license. Readers do not lock: renames make every file they see whole.

mod lookup;
mod pools;
mod requests;
mod time;

pub use pools::{Borrow, PendingReturn, PoolLicense, Reconnect};
pub use time::{ClockRequestMade, ClockSynced, StaleTime};

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::base::clock::{self, Timestamp};
use crate::base::fsio;
use crate::documents::license::{self, LicenseError, LicenseKind, VerifiedLicense};
use crate::format::envelope::{self, DocumentKind};
use crate::format::{KeyId, Keyring, PublicKey};
use crate::machine::fingerprint::Fingerprint;
use crate::workstation::check::{self, CheckContext, Denial, Grant};

/// How far the watermark must fall behind before a successful check moves it,
/// so that an application start does not write to disk every time.
const WATERMARK_STEP: i64 = 3600;

/// Why a store operation failed.
#[allow(
    missing_docs,
    reason = "variant fields are named for what they hold; the #[error] text says what they mean"
)]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File system trouble.
    #[error("{path}: {source}")]
    Io {
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The license document was refused.
    #[error(transparent)]
    License(#[from] LicenseError),
    /// The clock record is not a number nodelock wrote.
    #[error(
        "the store's clock record {path} is damaged (it should hold one whole number); restore it from a backup, or delete it to start the record afresh"
    )]
    ClockDamaged { path: String },
    /// The license is valid but not usable here and now.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// No license for the product is installed.
    #[error("no license for '{product}' is installed in {store}; import one with `nodelock import LICENSE`")]
    NotFound { product: String, store: String },
    /// Would replace a newer license with an older one.
    #[error(
        "a newer license for '{product}' (issued {installed}) is already installed; this one was issued {offered} and is not imported"
    )]
    Older {
        /// The product both licenses are for.
        product: String,
        /// Issue time of the installed one.
        installed: String,
        /// Issue time of the offered one.
        offered: String,
    },
    /// An answered license for a request this store did not make.
    #[error(
        "this license answers an activation request this store did not make ({reason}); import it on the machine that made the request"
    )]
    NotRequested {
        /// What did not match.
        reason: String,
    },
    /// No installed license has this id.
    #[error("no license '{license_id}' is installed in {store} (see `nodelock status`)")]
    NotInstalled {
        /// The id asked for.
        license_id: String,
        store: String,
    },
    /// The license was not activated by request, so there is no key to prove a deactivation.
    #[error(
        "license '{license_id}' was not activated with an activation key on this machine (there is no install key for it here), so it cannot be deactivated or refreshed from here; ask the vendor to reset it or to issue it again"
    )]
    NoInstallKey { license_id: String },
    /// An activation document was refused.
    #[error(transparent)]
    Activation(#[from] crate::documents::activation::ActivationError),
    /// A time statement that is not for this store now.
    #[error(transparent)]
    StaleTime(#[from] StaleTime),
    /// An install key could not be made or read.
    #[error(transparent)]
    Key(#[from] crate::format::KeyError),
    /// Nothing to verify against.
    #[error(
        "no vendor public key is known; pass --pubkey vendor.pub or install one with `nodelock trust add vendor.pub`"
    )]
    NoTrustRoots,
    /// A floating pool's license, which only a pool server serves.
    #[error(
        "the license installed for '{product}' is a floating pool's: `nodelock pool serve` leases its seats, and an application takes one from the pool (`nodelock lease checkout`), not from this file"
    )]
    PoolLicense { product: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum ImportOutcome {
    /// Stored (possibly replacing an older license for the product).
    Installed {
        /// The grant the new license gives here and now.
        grant: Grant,
        /// The id of the license it replaced.
        #[serde(skip_serializing_if = "Option::is_none")]
        replaced: Option<String>,
        /// Licenses of this store that the new one revoked (support reset
        /// them), now removed.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        revoked: Vec<RetiredLicense>,
    },
    /// This exact license was already installed.
    AlreadyInstalled {
        /// The grant it gives.
        grant: Grant,
    },
}

/// A license an import revoked (its id was in the new license's list).
#[derive(Debug, Clone, Serialize)]
pub struct RetiredLicense {
    /// Its id.
    pub license_id: String,
    /// Its product.
    pub product: String,
}

/// One installed license as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StatusEntry {
    /// License id (`null` when the file cannot be read as a license).
    pub license_id: Option<String>,
    /// The product, from the file name when the file cannot be read.
    pub product: String,
    /// The license's kind, when it can be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<LicenseKind>,
    /// `valid`, a denial code, or `damaged`/`untrusted`.
    pub state: String,
    /// Expiry, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Whole days left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    /// One sentence for a person.
    pub message: String,
    /// The clone warning, when it applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What a store knows that a check depends on besides the license, the
/// machine and the time: the latest trusted time it has seen and the license
/// ids its vendors revoked. An empty state (no store) checks the license alone.
#[derive(Debug, Clone)]
pub struct StoreState {
    /// The clock watermark.
    pub watermark: Option<Timestamp>,
    /// Revoked license ids.
    pub revoked: Vec<String>,
    /// Days of notice before an end ([`check::DEFAULT_WARN_DAYS`] unless the store says otherwise).
    pub warn_days: i64,
}

impl Default for StoreState {
    fn default() -> StoreState {
        StoreState {
            watermark: None,
            revoked: Vec::new(),
            warn_days: check::DEFAULT_WARN_DAYS,
        }
    }
}

impl StoreState {
    /// The context of a check on `current` at `now` against this state, for
    /// any product and without a build date (set those with struct update).
    pub fn context<'a>(&'a self, current: &'a Fingerprint, now: Timestamp) -> CheckContext<'a> {
        CheckContext {
            product: None,
            current,
            now,
            build_date: None,
            watermark: self.watermark,
            revoked: &self.revoked,
            warn_days: self.warn_days,
        }
    }
}

/// A store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    warn_days: i64,
}

/// Held while writing; dropping it releases the lock.
struct StoreLock(#[allow(dead_code)] File);

impl Store {
    /// The store at `root` (created on first write).
    pub fn open(root: impl Into<PathBuf>) -> Store {
        Store {
            root: root.into(),
            warn_days: check::DEFAULT_WARN_DAYS,
        }
    }

    /// The same store, warning `days` before a license or its maintenance ends.
    pub fn warn_days(mut self, days: i64) -> Store {
        self.warn_days = days;
        self
    }

    /// The platform's per-user data directory plus `nodelock`
    /// (`~/.local/share/nodelock`, `~/Library/Application Support/nodelock`,
    /// `%APPDATA%\nodelock`).
    pub fn default_location() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("nodelock"))
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the license for `product` signed by `signer` lives.
    fn license_path(&self, product: &str, signer: KeyId) -> PathBuf {
        self.root.join("licenses").join(format!("{product}@{signer}.lic"))
    }

    /// Where stores written before licenses were scoped by key kept it.
    fn legacy_license_path(&self, product: &str) -> PathBuf {
        self.root.join("licenses").join(format!("{product}.lic"))
    }

    fn lock(&self) -> Result<StoreLock, StoreError> {
        for dir in ["", "licenses", "trust", "keys", "pending", "outbox"].map(|d| self.root.join(d)) {
            fsio::create_private_dir(&dir).map_err(io_err(&dir))?;
        }
        let path = self.root.join(".lock");
        let file = fsio::open_lock_file(&path).map_err(io_err(&path))?;
        file.lock().map_err(io_err(&path))?;
        Ok(StoreLock(file))
    }

    /// Vendor keys installed in the store.
    pub fn trust_roots(&self) -> Result<Keyring, StoreError> {
        let dir = self.root.join("trust");
        let mut ring = Keyring::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ring),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Some(key) = self.trust_file(&path) {
                ring.add(key);
            }
        }
        Ok(ring)
    }

    /// The key in `trust/<key id>.pub` when the name is that key's id.
    fn trust_file(&self, path: &Path) -> Option<PublicKey> {
        if path.extension().is_none_or(|e| e != "pub") {
            return None;
        }
        let text = self.read_record(path, 16 * 1024).ok()??;
        let key = PublicKey::from_spki_pem(&text, &path.display().to_string()).ok()?;
        let named = path
            .file_stem()
            .is_some_and(|s| s.to_string_lossy() == key.id().to_string());
        named.then_some(key)
    }

    /// Files in `trust/` that are not trust roots (dropped in by hand under
    /// another name, or not a key): trusting a key is an explicit act.
    pub fn ignored_trust_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.root.join("trust")) else {
            return Vec::new();
        };
        let mut ignored: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| self.trust_file(p).is_none())
            .collect();
        ignored.sort();
        ignored
    }

    /// A small record the store keeps (clock, revocations, trust roots,
    /// pending documents): a regular file reached without following a link,
    /// read up to `limit` bytes. `None` when it does not exist.
    pub(super) fn read_record(&self, path: &Path, limit: u64) -> Result<Option<String>, StoreError> {
        match fsio::read_capped(path, limit, fsio::Links::Refuse) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(fsio::ReadError::Io(source)) => Err(io_err(path)(source)),
            Err(e) => Err(io_err(path)(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.to_string(),
            ))),
        }
    }

    /// Installs a vendor key; false if it was already there.
    pub fn add_trust_root(&self, key: &PublicKey) -> Result<bool, StoreError> {
        let _lock = self.lock()?;
        let path = self.root.join("trust").join(format!("{}.pub", key.id()));
        if path.exists() {
            return Ok(false);
        }
        fsio::write_file(&path, key.to_spki_pem().as_bytes(), false, false).map_err(io_err(&path))?;
        Ok(true)
    }

    /// What a check on this store depends on (see [`StoreState`]).
    pub fn state(&self) -> Result<StoreState, StoreError> {
        Ok(StoreState {
            watermark: self.watermark()?,
            revoked: self.revoked(),
            warn_days: self.warn_days,
        })
    }

    /// License ids the vendor has revoked, as this store has learned them.
    pub fn revoked(&self) -> Vec<String> {
        self.read_record(&self.root.join("revoked"), 16 * 1024 * 1024)
            .ok()
            .flatten()
            .map(|t| {
                t.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn add_revoked_locked(&self, ids: &[String]) -> Result<(), StoreError> {
        let mut all = self.revoked();
        let before = all.len();
        all.extend(ids.iter().cloned());
        all.sort();
        all.dedup();
        if all.len() == before {
            return Ok(());
        }
        let path = self.root.join("revoked");
        let text: String = all.iter().map(|id| format!("{id}\n")).collect();
        fsio::write_file(&path, text.as_bytes(), false, false).map_err(io_err(&path))
    }

    /// The latest time this store has seen. A missing clock file counts as
    /// none (see the threat model in the README); one that holds anything but
    /// a whole number is [`StoreError::ClockDamaged`], never a guess.
    pub fn watermark(&self) -> Result<Option<Timestamp>, StoreError> {
        time::read_time(&self.root.join("clock"))
    }

    fn advance_watermark_locked(&self, to: Timestamp) -> Result<(), StoreError> {
        if self.watermark()?.is_some_and(|w| w >= to) {
            return Ok(());
        }
        time::write_time(&self.root.join("clock"), to)
    }

    /// Verifies a license, checks it against this machine and time, and stores
    /// it. Refuses, changing nothing, if any of that fails or if a newer license
    /// for the product is installed.
    pub fn import(
        &self,
        input: &[u8],
        keyring: &Keyring,
        current: &Fingerprint,
        now: Timestamp,
    ) -> Result<ImportOutcome, StoreError> {
        if keyring.is_empty() {
            return Err(StoreError::NoTrustRoots);
        }
        let verified = license::verify(input, keyring)?;
        let _lock = self.lock()?;
        let lic = verified.license();
        let state = self.state()?;
        let grant = check::check(&verified, &state.context(current, now))?;
        let path = self.license_path(&lic.product, verified.signer());
        // What this vendor key installed for the product before, under either name.
        let legacy = self.legacy_license_path(&lic.product);
        let from_legacy = !path.exists()
            && self
                .read_license(&legacy, keyring)
                .is_ok_and(|v| v.signer() == verified.signer());
        let existing_path = if from_legacy { &legacy } else { &path };
        let mut replaced = None;
        if let Ok(existing) = self.read_license(existing_path, keyring) {
            let old = existing.license();
            if existing.envelope() == verified.envelope() {
                return Ok(ImportOutcome::AlreadyInstalled { grant });
            }
            if old.issued_at > lic.issued_at && !lic.revoked.contains(&old.id) {
                return Err(StoreError::Older {
                    product: lic.product.clone(),
                    installed: clock::format(old.issued_at),
                    offered: clock::format(lic.issued_at),
                });
            }
            replaced = Some(old.id.clone());
        }
        // A license answering a request must match a request this store made;
        // its install key then moves from pending/ to keys/.
        let pending = match (&lic.request_nonce, &lic.install_key) {
            (Some(nonce), Some(install)) => Some(self.take_pending_key(nonce, install, &lic.id)?),
            _ => None,
        };
        fsio::write_file(&path, verified.armored().as_bytes(), false, false).map_err(io_err(&path))?;
        if from_legacy {
            std::fs::remove_file(&legacy).map_err(io_err(&legacy))?;
        }
        if let Some(nonce_hex) = pending {
            self.drop_pending(&nonce_hex);
        }
        self.add_revoked_locked(&lic.revoked)?;
        let retired = self.remove_revoked_licenses_locked(keyring)?;
        self.advance_watermark_locked(now.max(lic.issued_at))?;
        self.raise_trusted_locked(lic.issued_at)?;
        Ok(ImportOutcome::Installed {
            grant,
            replaced,
            revoked: retired,
        })
    }

    fn read_license(&self, path: &Path, keyring: &Keyring) -> Result<VerifiedLicense, StoreError> {
        let bytes = envelope::read_file(path, DocumentKind::License, fsio::Links::Refuse)
            .map_err(LicenseError::from)?;
        Ok(license::verify(&bytes, keyring)?)
    }

    /// The application-start check: the installed license for `product`,
    /// verified and checked; moves the watermark forward on success.
    pub fn check(
        &self,
        product: &str,
        keyring: &Keyring,
        current: &Fingerprint,
        now: Timestamp,
        build_date: Option<Timestamp>,
    ) -> Result<Grant, StoreError> {
        if !license::valid_product(product) {
            return Err(self.not_found(product));
        }
        let found = match self.license_in_place(product, keyring)? {
            Some(found) => Some(found),
            None => {
                // No node-locked license: a seat borrowed from a pool holds the same way.
                if let Some(borrow) = self.borrow(product, keyring)? {
                    let watermark = self.watermark()?;
                    let verdict = self.check_borrow(&borrow, current, now, Some(product), watermark);
                    self.observe(now, watermark)?;
                    return verdict;
                }
                // Looked for only now: a borrowed check lists no directory.
                self.other_vendors_license(product, keyring)?
            }
        };
        let Some((_, verified)) = found else {
            // A license revoked and removed by a later import is still named.
            if let Some(license_id) = self.revoked_license_of(product) {
                return Err(check::Denial::Revoked { license_id }.into());
            }
            return Err(self.not_found(product));
        };
        if verified.license().kind == LicenseKind::FloatingPool {
            return Err(StoreError::PoolLicense {
                product: product.to_owned(),
            });
        }
        let state = self.state()?;
        let ctx = CheckContext {
            product: Some(product),
            build_date,
            ..state.context(current, now)
        };
        let verdict = check::check(&verified, &ctx);
        // Every check observes the clock, granted or not: otherwise a license
        // refused as expired would pass again once the clock is set back.
        self.observe(now, state.watermark)?;
        Ok(verdict?)
    }

    /// Moves the watermark to `now` when `seen` (the watermark the check
    /// read) lags by more than a step: no second read of the clock file.
    fn observe(&self, now: Timestamp, seen: Option<Timestamp>) -> Result<(), StoreError> {
        if seen.is_none_or(|w| now > w.saturating_add(WATERMARK_STEP)) {
            let _lock = self.lock()?;
            self.advance_watermark_locked(now)?;
        }
        Ok(())
    }

    fn not_found(&self, product: &str) -> StoreError {
        StoreError::NotFound {
            product: product.to_owned(),
            store: self.root.display().to_string(),
        }
    }

    /// Every installed license with its state now. Read-only.
    pub fn status(
        &self,
        keyring: &Keyring,
        current: &Fingerprint,
        now: Timestamp,
    ) -> Result<Vec<StatusEntry>, StoreError> {
        let dir = self.root.join("licenses");
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "lic"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        paths.sort();
        let store_state = self.state()?;
        Ok(paths
            .into_iter()
            .map(|path| {
                let product = path
                    .file_stem()
                    .map(|s| {
                        s.to_string_lossy()
                            .split('@')
                            .next()
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .unwrap_or_default();
                match self.read_license(&path, keyring) {
                    Err(e) => StatusEntry {
                        license_id: None,
                        product,
                        kind: None,
                        state: match e {
                            StoreError::License(LicenseError::Envelope(
                                envelope::EnvelopeError::UnknownSigner(_),
                            )) => "untrusted",
                            _ => "damaged",
                        }
                        .to_owned(),
                        expires_at: None,
                        days_left: None,
                        message: e.to_string(),
                        warning: None,
                    },
                    Ok(v) => {
                        let lic = v.license();
                        let (state, message, warning) =
                            match check::check(&v, &store_state.context(current, now)) {
                                Ok(g) => (
                                    "valid".to_owned(),
                                    "the license is valid on this machine".to_owned(),
                                    g.warning,
                                ),
                                Err(d) => (d.code().to_owned(), d.to_string(), None),
                            };
                        StatusEntry {
                            license_id: Some(lic.id.clone()),
                            product: lic.product.clone(),
                            kind: Some(lic.kind),
                            state,
                            expires_at: lic.expires_at.map(clock::format),
                            days_left: lic.expires_at.map(|e| clock::days_left(now, e)),
                            message,
                            warning,
                        }
                    }
                }
            })
            .collect())
    }
}
