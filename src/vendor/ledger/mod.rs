//! The vendor's ledger: entitlements, activations, transfers, resets and the
//! audit.
//!
//! The rules live here, the rows in a [`storage::Backend`] (SQLite today, in
//! [`sqlite`]): `activate.rs` decides who gets a seat
//! (`same_machine.rs`: a machine that holds one gets it again), `end.rs` how a seat is
//! given back or reset, `report.rs` what the vendor sees. Every state change
//! is one write transaction in which the rule reads what it decides on, so
//! concurrent vendor processes never oversubscribe a seat. A refusal is
//! audited and changes nothing else. Activation keys are stored only as hashes.

mod activate;
mod batch;
mod end;
mod entitlements;
mod error;
pub mod model;
mod proved;
mod refresh;
mod report;
mod same_machine;
pub mod sqlite;
pub mod storage;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use activate::{Answered, Prepared};
pub use batch::{Change, Outcome};
pub use end::Deactivated;
pub use entitlements::EntitlementUpdate;
pub use error::{LedgerError, StorageError};
pub use model::{ActivationState, AuditEvent, AuditRow, EntitlementSpec, Method, Selection};
pub use refresh::Refreshed;
pub use report::{ActivationRow, EntitlementReport};

use crate::base::clock::Timestamp;
use crate::base::random::{self, OsRandom, Random};
use crate::documents::activation::ActivationKey;
use crate::format::typeable;
use model::{AuditEntry, Entitlement};
use storage::Backend;

/// Transfers an entitlement allows unless it says otherwise.
pub const DEFAULT_MAX_TRANSFERS: u32 = 3;
/// Support resets per entitlement per rolling year unless it says otherwise.
pub const DEFAULT_MAX_RESETS_PER_YEAR: u32 = 2;
/// The largest seat count, transfer limit or reset limit an entitlement may
/// have: far beyond any sale, and small enough that sums of counts never
/// come near overflowing.
pub const MAX_COUNT: u32 = 100_000_000;

/// An entitlement and its customer's reset licenses, as prepare last read
/// them (`None`: no entitlement has the key).
type PreparedTerms = Option<(Entitlement, Vec<String>)>;

/// How long `prepare_activation` trusts what it read.
const PREPARE_CACHE: std::time::Duration = std::time::Duration::from_secs(1);

/// An open ledger.
pub struct Ledger {
    backend: Box<dyn Backend>,
    /// What `prepare_activation` last read per key hash, and when. Staleness
    /// is harmless: the commit judges seats, limits and the revocation list
    /// on the ledger as it stands (and re-signs if the list changed); a stale
    /// entry only costs a signature made in vain or made later.
    prepared_terms: RefCell<HashMap<[u8; 32], (std::time::Instant, PreparedTerms)>>,
    /// Where ids, activation keys and license ids come from.
    random: Arc<dyn Random>,
}

fn new_id(prefix: &str, random: &dyn Random) -> Result<String, LedgerError> {
    let bytes = random::bytes::<8>(random).map_err(crate::format::KeyError::from)?;
    Ok(format!("{prefix}-{}", typeable::base32(&bytes, 12)))
}

impl Ledger {
    /// The default ledger file in the vendor's data directory.
    pub fn default_location() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("nodelock-vendor").join("ledger.sqlite"))
    }

    /// Opens (creating if needed) and migrates the SQLite ledger at `path`.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Ok(Ledger::with_backend(Box::new(sqlite::Sqlite::open(path)?)))
    }

    /// A ledger over another storage backend.
    pub fn with_backend(backend: Box<dyn Backend>) -> Ledger {
        Ledger {
            backend,
            prepared_terms: RefCell::default(),
            random: Arc::new(OsRandom),
        }
    }

    /// This ledger drawing its ids, keys and license ids from `random`
    /// (the OS source unless told otherwise).
    pub fn with_random(mut self, random: Arc<dyn Random>) -> Ledger {
        self.random = random;
        self
    }

    /// How many schema migrations the ledger has had.
    pub fn schema_version(&self) -> Result<u32, LedgerError> {
        Ok(self.backend.schema_version()?)
    }

    /// Whether the ledger answers (cheap).
    pub fn ping(&self) -> Result<(), LedgerError> {
        Ok(self.backend.ping()?)
    }

    /// The backend's own consistency check: "ok" when the file is sound.
    pub fn integrity_check(&self) -> Result<String, LedgerError> {
        Ok(self.backend.integrity_check()?)
    }

    /// Entitlements whose kept counters disagree with their activations
    /// (empty when the ledger is consistent; tests and `vendor report` check it).
    pub fn counter_mismatches(&self) -> Result<Vec<String>, LedgerError> {
        Ok(self.backend.counter_mismatches()?)
    }

    /// Creates an entitlement and returns its id and its activation key (shown
    /// once: only its hash is stored).
    pub fn create_entitlement(
        &mut self,
        spec: &EntitlementSpec,
        now: Timestamp,
        actor: &str,
    ) -> Result<(String, ActivationKey), LedgerError> {
        spec.check()?;
        let id = new_id("E", &*self.random)?;
        let key = ActivationKey::generate(&*self.random)?;
        let mut tx = self.backend.begin()?;
        let record = storage::KeyRecord {
            hash: key.ledger_hash(),
            // Uncompressed: verifying each request then needs no square root.
            public: Some(key.signing_key().public().to_sec1_uncompressed()),
        };
        tx.insert_entitlement(&id, &record, spec, now)?;
        let detail = format!(
            "{} seat(s) of {} ({})",
            spec.seats,
            spec.product,
            spec.kind.as_str()
        );
        tx.append_audit(&AuditEntry {
            at: now,
            event: AuditEvent::EntitlementCreated,
            entitlement_id: Some(&id),
            activation_id: None,
            actor,
            detail: &detail,
        })?;
        tx.commit()?;
        Ok((id, key))
    }
}

#[cfg(test)]
pub(crate) mod tests;
