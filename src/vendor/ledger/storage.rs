//! The narrow interface between the activation rules and a database.
//!
//! The rules (`activate.rs`, `end.rs`) decide; a backend only reads and
//! writes rows. Everything a rule reads while deciding happens inside the
//! write transaction it then writes in, so a backend must give each
//! [`WriteTx`] serialisable isolation against other writers (SQLite's
//! `BEGIN IMMEDIATE`; `SERIALIZABLE` or a row lock on the entitlement in
//! PostgreSQL). The seat counters are the backend's to keep in step with
//! the activations it records: [`WriteTx::insert_activation`] takes a seat and
//! [`WriteTx::end_activation`] frees one, in the same transaction.

use super::error::{LedgerError, StorageError};
use super::model::{Activation, AuditEntry, AuditRow, EarlierAnswer, Ending, Entitlement, EntitlementSpec};
use crate::base::clock::Timestamp;

/// What the ledger keeps of an activation key: never the key.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// `SHA-256("nodelock/v1/activation-key-ledger" || key)`.
    pub hash: [u8; 32],
    /// The SEC1 public key derived from the key (`ActivationKey::signing_key`).
    pub public: Option<Vec<u8>>,
}

/// How many activations one install key or one hardware digest may bring up
/// as the machine of a new request. A machine has one; more means clones or
/// shared placeholder serials, where the cap keeps the cost bounded and a
/// missed match only takes a seat, as every activation did before.
pub const SEAT_CANDIDATES: usize = 8;

/// Reads the rules need.
pub trait Reads {
    /// The entitlement whose activation key hashes to `key_hash`.
    fn entitlement_by_key(&self, key_hash: &[u8; 32]) -> Result<Option<Entitlement>, StorageError>;

    /// The ledger hash of the activation key whose lookup id is `lookup`
    /// (requests since version 2 carry the lookup id, not the key), and the
    /// public half of its derived key pair when the entitlement has one
    /// (those created before it was kept have none).
    fn key_by_lookup(&self, lookup: &[u8; 16]) -> Result<Option<KeyRecord>, StorageError>;

    /// The entitlement with this id.
    fn entitlement(&self, id: &str) -> Result<Option<Entitlement>, StorageError>;

    /// The answer already given to the request with this install key and nonce.
    fn answer_for_request(
        &self,
        install_key: &[u8],
        nonce: &[u8],
    ) -> Result<Option<EarlierAnswer>, StorageError>;

    /// The activation that issued `license_id`.
    fn activation_by_license(&self, license_id: &str) -> Result<Option<Activation>, StorageError>;

    /// The activation with this id.
    fn activation(&self, id: &str) -> Result<Option<Activation>, StorageError>;

    /// The license (armored) most recently issued for this activation.
    fn issued_license(&self, activation_id: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// The receipt kept for a deactivated activation.
    fn receipt(&self, activation_id: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Ids of licenses support reset on any entitlement of `customer` (or, without
    /// a customer, on `entitlement_id` alone), sorted.
    fn reset_licenses(
        &self,
        entitlement_id: &str,
        customer: Option<&str>,
    ) -> Result<Vec<String>, StorageError>;

    /// Resets on this entitlement that ended after `since`.
    fn resets_since(&self, entitlement_id: &str, since: Timestamp) -> Result<u32, StorageError>;

    /// The entitlement's active activations that could be the machine of a
    /// new request, each with its current license (armored): those held by
    /// `holder_key`, and those bound to any of `anchors` (hardware digests).
    /// At most [`SEAT_CANDIDATES`] per key or digest, so that a request costs
    /// the same however many seats the entitlement has.
    fn seat_candidates(
        &self,
        entitlement_id: &str,
        holder_key: &[u8],
        anchors: &[[u8; 32]],
    ) -> Result<Vec<(Activation, Vec<u8>)>, StorageError>;
}

/// One write transaction. Dropping it without [`commit`](WriteTx::commit)
/// rolls everything back.
pub trait WriteTx {
    /// Reads inside this transaction, seeing its own writes.
    fn reads(&self) -> &dyn Reads;

    /// Records a new entitlement whose activation key hashes to `key_hash`.
    fn insert_entitlement(
        &mut self,
        id: &str,
        key: &KeyRecord,
        spec: &EntitlementSpec,
        now: Timestamp,
    ) -> Result<(), StorageError>;

    /// Records an activation and takes a seat of its entitlement.
    fn insert_activation(&mut self, activation: &super::model::NewActivation<'_>)
    -> Result<(), StorageError>;

    /// Ends an active activation and frees its seat (counting a transfer or a reset).
    fn end_activation(
        &mut self,
        activation: &Activation,
        ending: &Ending<'_>,
        now: Timestamp,
    ) -> Result<(), StorageError>;

    /// Appends one row to the append-only audit.
    fn append_audit(&mut self, entry: &AuditEntry<'_>) -> Result<(), StorageError>;

    /// Stores what an entitlement now grants (kind, seats, dates, features)
    /// and whether it is suspended; counters and the key are untouched.
    fn update_entitlement(
        &mut self,
        id: &str,
        spec: &EntitlementSpec,
        suspended: bool,
    ) -> Result<(), StorageError>;

    /// Keeps `license` as the activation's issued license (a refresh): what
    /// a replay of its request, and the next refresh, start from.
    fn replace_license(&mut self, activation_id: &str, license: &[u8]) -> Result<(), StorageError>;

    /// Moves an active activation to the install key of a later request from
    /// the same machine, with the license re-issued to it; takes no seat.
    fn move_activation(&mut self, moved: &super::model::MovedActivation<'_>) -> Result<(), StorageError>;

    /// Makes every write of this transaction durable at once.
    fn commit(self: Box<Self>) -> Result<(), StorageError>;
}

/// A ledger database.
pub trait Backend: Send {
    /// Reads outside any write transaction (each sees committed data).
    fn reads(&self) -> &dyn Reads;

    /// Starts a write transaction, waiting for other writers.
    fn begin(&mut self) -> Result<Box<dyn WriteTx + '_>, StorageError>;

    /// Whether the database answers at all: cheap, for liveness probes.
    fn ping(&self) -> Result<(), StorageError>;

    /// How many schema migrations the database has had.
    fn schema_version(&self) -> Result<u32, StorageError>;

    /// The backend's own consistency check: "ok" when sound. Reads the whole
    /// database: for an operator, never for every anonymous caller.
    fn integrity_check(&self) -> Result<String, StorageError>;

    /// Ids of entitlements whose counters disagree with their activations.
    fn counter_mismatches(&self) -> Result<Vec<String>, StorageError>;

    /// Every entitlement `selection` covers, oldest first, handed over one
    /// at a time. The walks stop at the first error, the reader's own or the
    /// storage's.
    fn each_entitlement(
        &self,
        selection: &super::model::Selection,
        each: &mut dyn FnMut(Entitlement) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError>;

    /// The activations of one entitlement, oldest first.
    fn each_activation(
        &self,
        entitlement_id: &str,
        each: &mut dyn FnMut(Activation) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError>;

    /// The audit rows `selection` covers, oldest first.
    fn each_audit_row(
        &self,
        selection: &super::model::Selection,
        each: &mut dyn FnMut(AuditRow) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError>;
}
