//! The application's entry point: "may this product run here, now?"
//!
//! An application compiles in the vendor's public key and calls
//! [`Checker::check`] at start-up. Everything the check depends on (where the
//! store is, where facts and time come from, the build's release date) can be
//! set, so that an application's own tests can pin them.

use std::path::PathBuf;

use crate::base::clock::{self, Clock, SystemClock, Timestamp};
use crate::format::{KeyError, Keyring, PublicKey};
use crate::machine::facts::{FactsError, RealSystem, SystemSource};
use crate::machine::fingerprint::{Fingerprint, FingerprintError};
use crate::workstation::check::Grant;
use crate::workstation::store::{Store, StoreError};

/// Why the check could not grant.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The compiled-in vendor key does not parse (a build mistake).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Machine facts could not be read.
    #[error(transparent)]
    Facts(#[from] FactsError),
    /// This machine cannot be fingerprinted.
    #[error(transparent)]
    Fingerprint(#[from] FingerprintError),
    /// Not found, refused or denied; see [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The build date given to [`Checker::build_date`] is not a date.
    #[error("the application's build date is not valid: {0}")]
    BuildDate(#[from] clock::TimeError),
    /// No per-user data directory exists and none was set.
    #[error("no license store location is known on this system; set one explicitly")]
    NoStore,
}

/// Checks installed licenses against a compiled-in vendor key.
///
/// ```
/// use nodelock::{CheckError, Checker};
/// use nodelock::workstation::store::StoreError;
///
/// let vendor_key = include_str!("../../fixtures/keys/TEST-ONLY-vendor.pub");
/// let empty_store = tempfile::tempdir()?;
/// let checker = Checker::new(vendor_key)?.store(empty_store.path()).build_date("2026-11-01")?;
/// match checker.check("surveyor") {
///     Ok(grant) => println!("licensed until {:?}", grant.expires_at),
///     Err(CheckError::Store(StoreError::NotFound { .. })) => println!("not activated yet"),
///     Err(other) => println!("refused: {other}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Checker {
    keyring: Keyring,
    store: Option<Store>,
    source: Box<dyn SystemSource + Send + Sync>,
    clock: Box<dyn Clock + Send + Sync>,
    build_date: Option<Timestamp>,
}

impl Checker {
    /// A checker trusting one vendor key (SPKI PEM), using the default store,
    /// this machine and the system clock.
    pub fn new(vendor_public_key_pem: &str) -> Result<Checker, CheckError> {
        let key = PublicKey::from_spki_pem(vendor_public_key_pem, "the compiled-in vendor key")?;
        Ok(Checker {
            keyring: [key].into_iter().collect(),
            store: Store::default_location().map(Store::open),
            source: Box::new(RealSystem),
            clock: Box::new(SystemClock),
            build_date: None,
        })
    }

    /// Also trusts another vendor key (key rotation).
    pub fn also_trust(mut self, vendor_public_key_pem: &str) -> Result<Checker, CheckError> {
        self.keyring.add(PublicKey::from_spki_pem(
            vendor_public_key_pem,
            "a compiled-in vendor key",
        )?);
        Ok(self)
    }

    /// Uses the store at `path`.
    pub fn store(mut self, path: impl Into<PathBuf>) -> Checker {
        self.store = Some(Store::open(path));
        self
    }

    /// Takes machine facts from `source`.
    pub fn facts_from(mut self, source: impl SystemSource + Send + Sync + 'static) -> Checker {
        self.source = Box::new(source);
        self
    }

    /// Takes the time from `clock`.
    pub fn clock(mut self, clock: impl Clock + Send + Sync + 'static) -> Checker {
        self.clock = Box::new(clock);
        self
    }

    /// The application build's release date (`YYYY-MM-DD`), for licenses with
    /// a maintenance end.
    pub fn build_date(mut self, date: &str) -> Result<Checker, CheckError> {
        self.build_date = Some(clock::parse_start(date)?);
        Ok(self)
    }

    /// Grants or refuses `product` on this machine now.
    pub fn check(&self, product: &str) -> Result<Grant, CheckError> {
        let store = self.store.as_ref().ok_or(CheckError::NoStore)?;
        let current = Fingerprint::from_facts(&self.source.facts()?)?;
        Ok(store.check(
            product,
            &self.keyring,
            &current,
            self.clock.now(),
            self.build_date,
        )?)
    }
}
