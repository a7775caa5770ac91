//! The vendor's ledger: entitlements, activations, transfers, resets and the
//! audit, in one SQLite file.
//!
//! Every state change is one `BEGIN IMMEDIATE` transaction, so concurrent
//! vendor processes (several `vendor answer` runs, a server) serialise on the
//! database's write lock and never oversubscribe a seat; a process killed
//! mid-answer leaves the transaction either committed or not at all. A refusal
//! is recorded in the audit in a transaction of its own and changes nothing
//! else. Activation keys are stored only as hashes.

mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::base::clock::{self, DAY, Timestamp};
use crate::documents::activation::{
    self, ActivationError, ActivationKey, DeactivationReceipt, PendingDeactivation, VerifiedRequest,
};
use crate::documents::license::{self, LicenseError, LicenseKind, Requester, Terms};
use crate::format::keys::random_bytes;
use crate::format::typeable;
use crate::format::{KeyError, PrivateKey, PublicKey};

/// Transfers an entitlement allows unless it says otherwise.
pub const DEFAULT_MAX_TRANSFERS: u32 = 3;
/// Support resets per entitlement per rolling year unless it says otherwise.
pub const DEFAULT_MAX_RESETS_PER_YEAR: u32 = 2;
/// How long a writer waits for another's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a ledger operation failed or was refused.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database failed.
    #[error("ledger database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// Creating the ledger's directory failed.
    #[error("cannot create the ledger directory {path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Written by a newer nodelock.
    #[error(
        "the ledger has schema version {found}, newer than this nodelock knows ({known}); update nodelock"
    )]
    NewerSchema {
        /// Its version.
        found: i64,
        /// Ours.
        known: usize,
    },
    /// The document was refused before the ledger was consulted.
    #[error(transparent)]
    Document(#[from] ActivationError),
    /// No entitlement has this key.
    #[error("no entitlement has this activation key; check the key, or ask the vendor whether it was issued")]
    UnknownKey,
    /// The entitlement's term is over.
    #[error("the entitlement for this key expired ({}); renew it before activating", clock::format_end(*.expired_at))]
    EntitlementExpired {
        /// When it ended.
        expired_at: Timestamp,
    },
    /// All seats are taken.
    #[error(
        "all {seats} seat(s) of this entitlement are in use; deactivate a machine first (nodelock deactivate) or buy more seats"
    )]
    NoFreeSeat {
        /// Seats.
        seats: u32,
    },
    /// The transfer limit is used up.
    #[error("this entitlement has used its {max} transfer(s); contact the vendor to allow more")]
    TransferLimit {
        /// The limit.
        max: u32,
    },
    /// The reset limit is used up.
    #[error(
        "this entitlement has had {used} support reset(s) in the last 365 days (limit {max}); pass --force to override, with a reason"
    )]
    ResetLimit {
        /// Resets in the window.
        used: u32,
        /// The limit.
        max: u32,
    },
    /// The same install key and nonce with different content.
    #[error(
        "this request reuses the nonce of an earlier, different request; make a new request with `nodelock request`"
    )]
    NonceReuse,
    /// No activation with this id.
    #[error("no activation '{0}' in the ledger (see `nodelock vendor report`)")]
    UnknownActivation(String),
    /// No activation issued this license.
    #[error("no activation in this ledger issued license '{0}'")]
    UnknownLicense(String),
    /// The deactivation is signed by a key other than the license's install key.
    #[error(
        "the deactivation request is not signed by the install key license '{0}' was activated with; refused"
    )]
    WrongInstallKey(String),
    /// Already ended by a reset.
    #[error("activation {id} was already ended ({how}); nothing to free")]
    AlreadyEnded {
        /// Activation id.
        id: String,
        /// How it ended.
        how: String,
    },
    /// Issuing the license failed.
    #[error(transparent)]
    License(#[from] LicenseError),
    /// Randomness failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The ledger cannot be reached (a server's writer stopped, a batch failed).
    #[error("the ledger is unavailable: {0}")]
    Unavailable(String),
}

impl LedgerError {
    /// A stable code for scripts and the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::Database(_) | LedgerError::Io { .. } | LedgerError::Key(_) => "ledger",
            LedgerError::Unavailable(_) => "unavailable",
            LedgerError::NewerSchema { .. } => "ledger-version",
            LedgerError::Document(_) | LedgerError::License(_) => "bad-document",
            LedgerError::UnknownKey => "unknown-key",
            LedgerError::EntitlementExpired { .. } => "entitlement-expired",
            LedgerError::NoFreeSeat { .. } => "no-free-seat",
            LedgerError::TransferLimit { .. } => "transfer-limit",
            LedgerError::ResetLimit { .. } => "reset-limit",
            LedgerError::NonceReuse => "nonce-reuse",
            LedgerError::UnknownActivation(_) => "unknown-activation",
            LedgerError::UnknownLicense(_) => "unknown-license",
            LedgerError::WrongInstallKey(_) => "wrong-install-key",
            LedgerError::AlreadyEnded { .. } => "already-ended",
        }
    }
}

/// What the vendor sets when selling an entitlement.
#[derive(Debug, Clone)]
pub struct EntitlementSpec {
    /// Product.
    pub product: String,
    /// Seats.
    pub seats: u32,
    /// Perpetual or subscription.
    pub kind: LicenseKind,
    /// End of the subscription.
    pub expires_at: Option<Timestamp>,
    /// End of maintenance.
    pub maintenance_until: Option<Timestamp>,
    /// Features.
    pub features: Vec<String>,
    /// Customer.
    pub customer: Option<String>,
    /// Transfers allowed over the entitlement's life.
    pub max_transfers: u32,
    /// Support resets allowed per rolling year.
    pub max_resets_per_year: u32,
}

/// A license answered for a request.
#[derive(Debug, Clone, Serialize)]
pub struct Answered {
    /// Ledger activation id.
    pub activation_id: String,
    /// License id.
    pub license_id: String,
    /// Entitlement.
    pub entitlement_id: String,
    /// Workstation id from the request.
    pub workstation_id: String,
    /// True when this request had been answered before (same license, no new seat).
    pub replayed: bool,
    /// The license, armored.
    #[serde(skip)]
    pub license: String,
}

/// A deactivation answered.
#[derive(Debug, Clone, Serialize)]
pub struct Deactivated {
    /// Ledger activation id.
    pub activation_id: String,
    /// License id.
    pub license_id: String,
    /// True when this deactivation had been answered before.
    pub replayed: bool,
    /// The receipt, armored.
    #[serde(skip)]
    pub receipt: String,
    /// The receipt's content.
    pub details: DeactivationReceipt,
}

/// One activation as the compliance report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ActivationRow {
    /// Activation id.
    pub id: String,
    /// License id.
    pub license_id: String,
    /// Workstation id.
    pub workstation_id: String,
    /// How: `offline` or `online`.
    pub method: String,
    /// When (RFC 3339).
    pub activated_at: String,
    /// `active`, `deactivated` or `reset`.
    pub state: String,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Why (resets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One entitlement's compliance view.
#[derive(Debug, Clone, Serialize)]
pub struct EntitlementReport {
    /// Entitlement id.
    pub id: String,
    /// Product.
    pub product: String,
    /// Kind.
    pub kind: String,
    /// Customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// End of term.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Seats.
    pub seats: u32,
    /// Seats in use.
    pub used: u32,
    /// Seats free.
    pub available: u32,
    /// Transfers used.
    pub transfers_used: u32,
    /// Transfers allowed.
    pub max_transfers: u32,
    /// Resets in the last 365 days.
    pub resets_last_year: u32,
    /// Resets allowed per rolling year.
    pub max_resets_per_year: u32,
    /// Every activation.
    pub activations: Vec<ActivationRow>,
}

/// One audit row.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    /// Sequence number.
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// `entitlement-created`, `activated`, `activation-replayed`, `deactivated`,
    /// `deactivation-replayed`, `reset`, `refused`.
    pub event: String,
    /// Entitlement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entitlement_id: Option<String>,
    /// Activation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_id: Option<String>,
    /// Who.
    pub actor: String,
    /// Why / what.
    pub detail: String,
}

/// An open ledger.
pub struct Ledger {
    conn: Connection,
    /// What `prepare_activation` last read per key hash, and when. Staleness
    /// is harmless: the commit judges seats, limits and the revocation list
    /// on the ledger as it stands (and re-signs if the list changed); a stale
    /// entry only costs a signature made in vain or made later.
    prepared_terms: std::cell::RefCell<HashMap<[u8; 32], (std::time::Instant, PreparedTerms)>>,
}

/// An entitlement and its customer's revocation list, as prepare last read
/// them (`None`: no entitlement has the key).
type PreparedTerms = Option<(EntitlementRow, Vec<String>)>;

/// How long `prepare_activation` trusts what it read.
const PREPARE_CACHE: std::time::Duration = std::time::Duration::from_secs(1);

fn new_id(prefix: &str) -> Result<String, LedgerError> {
    Ok(format!(
        "{prefix}-{}",
        typeable::base32(&random_bytes::<8>()?, 12)
    ))
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

fn kind_from_str(s: &str) -> LicenseKind {
    match s {
        "subscription" => LicenseKind::Subscription,
        "trial" => LicenseKind::Trial,
        _ => LicenseKind::Perpetual,
    }
}

fn audit(
    conn: &Connection,
    now: Timestamp,
    event: &str,
    entitlement: Option<&str>,
    activation: Option<&str>,
    actor: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (at, event, entitlement_id, activation_id, actor, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![now, event, entitlement, activation, actor, detail])?;
    Ok(())
}

/// An activation request prepared outside the write lock (see
/// [`Ledger::prepare_activation`]).
pub struct Prepared {
    request: VerifiedRequest,
    signed: Option<SignedLicense>,
    method: String,
    actor: String,
}

/// A license signed in preparation, and what it was signed against.
struct SignedLicense {
    entitlement_id: String,
    revoked: Vec<String>,
    license_id: String,
    text: String,
}

fn sign_license(
    ent: &EntitlementRow,
    revoked: Vec<String>,
    request: &VerifiedRequest,
    vendor: &PrivateKey,
    now: Timestamp,
) -> Result<SignedLicense, LedgerError> {
    let terms = Terms {
        product: ent.product.clone(),
        kind: kind_from_str(&ent.kind),
        features: serde_json::from_str(&ent.features).unwrap_or_default(),
        customer: ent.customer.clone(),
        entitlement: Some(ent.id.clone()),
        not_before: None,
        expires_at: ent.expires_at,
        maintenance_until: ent.maintenance_until,
        allow_clone_only: true,
        revoked: revoked.clone(),
    };
    let requester = Requester {
        install_key: &request.install_key,
        nonce: &request.request.nonce,
    };
    let (lic, text) = license::issue(&terms, &request.fingerprint, Some(requester), now, vendor)?;
    Ok(SignedLicense {
        entitlement_id: ent.id.clone(),
        revoked,
        license_id: lic.id,
        text,
    })
}

/// Judges and records one prepared request inside the batch transaction.
fn commit_one(
    tx: &Connection,
    prepared: &Prepared,
    vendor: &PrivateKey,
    now: Timestamp,
) -> Result<Answered, LedgerError> {
    let request = &prepared.request;
    let install_key = request.install_key.to_sec1_compressed();
    let request_hash = sha256(&request.envelope);
    let workstation_id = request.fingerprint.workstation_id().to_string();
    let actor = prepared.actor.as_str();

    let earlier = tx
        .prepare_cached(
            "SELECT id, license_id, entitlement_id, request_hash, license FROM activations
             WHERE install_key = ?1 AND request_nonce = ?2",
        )?
        .query_row(params![install_key, request.request.nonce], |r| {
            Ok(Earlier {
                activation_id: r.get(0)?,
                license_id: r.get(1)?,
                entitlement_id: r.get(2)?,
                request_hash: r.get(3)?,
                license: r.get(4)?,
            })
        })
        .optional()?;
    if let Some(e) = earlier {
        if e.request_hash != request_hash {
            return Err(LedgerError::NonceReuse);
        }
        let detail = "the same request answered again; no seat taken";
        audit(
            tx,
            now,
            "activation-replayed",
            Some(&e.entitlement_id),
            Some(&e.activation_id),
            actor,
            detail,
        )?;
        return Ok(Answered {
            activation_id: e.activation_id,
            license_id: e.license_id,
            entitlement_id: e.entitlement_id,
            workstation_id,
            replayed: true,
            license: String::from_utf8_lossy(&e.license).into_owned(),
        });
    }

    let ent = entitlement_by_key(tx, &request.key)?.ok_or(LedgerError::UnknownKey)?;
    if let Some(expired_at) = ent.expires_at.filter(|e| now >= *e) {
        return Err(LedgerError::EntitlementExpired { expired_at });
    }
    if ent.seats_used >= ent.seats {
        return Err(LedgerError::NoFreeSeat { seats: ent.seats });
    }
    // Seats freed by deactivation may be re-used up to the transfer limit;
    // seats freed by support resets are limited by the reset policy instead.
    if ent.activations_total >= ent.seats + ent.transfers_used.min(ent.max_transfers) + ent.resets_total {
        return Err(LedgerError::TransferLimit {
            max: ent.max_transfers,
        });
    }
    let revoked = revoked_for(tx, &ent)?;
    let signed = match &prepared.signed {
        Some(s) if s.entitlement_id == ent.id && s.revoked == revoked => None,
        _ => Some(sign_license(&ent, revoked, request, vendor, now)?),
    };
    let SignedLicense { license_id, text, .. } = signed
        .as_ref()
        .or(prepared.signed.as_ref())
        .ok_or(LedgerError::UnknownKey)?;
    let activation_id = new_id("A")?;
    tx.prepare_cached(
        "INSERT INTO activations (id, entitlement_id, license_id, workstation_id, install_key, request_nonce,
            request_hash, license, method, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        activation_id,
        ent.id,
        license_id,
        workstation_id,
        install_key,
        request.request.nonce,
        request_hash,
        text.as_bytes(),
        prepared.method,
        now
    ])?;
    tx.prepare_cached(
        "UPDATE entitlements SET seats_used = seats_used + 1, activations_total = activations_total + 1 WHERE id = ?1",
    )?
    .execute([&ent.id])?;
    let detail = format!(
        "workstation {workstation_id}, license {license_id}, seat {} of {}",
        ent.seats_used + 1,
        ent.seats
    );
    audit(
        tx,
        now,
        "activated",
        Some(&ent.id),
        Some(&activation_id),
        actor,
        &detail,
    )?;
    Ok(Answered {
        activation_id,
        license_id: license_id.clone(),
        entitlement_id: ent.id,
        workstation_id,
        replayed: false,
        license: text.clone(),
    })
}

/// An earlier answer to the same install key and nonce.
struct Earlier {
    activation_id: String,
    license_id: String,
    entitlement_id: String,
    request_hash: Vec<u8>,
    license: Vec<u8>,
}

/// What the ledger recorded for a license, as a deactivation needs it.
struct Recorded {
    activation_id: String,
    entitlement_id: String,
    install_key: Vec<u8>,
    ended_how: Option<String>,
    receipt: Option<Vec<u8>>,
}

#[derive(Clone)]
struct EntitlementRow {
    id: String,
    product: String,
    kind: String,
    seats: u32,
    features: String,
    customer: Option<String>,
    expires_at: Option<Timestamp>,
    maintenance_until: Option<Timestamp>,
    max_transfers: u32,
    max_resets: u32,
    transfers_used: u32,
    seats_used: u32,
    activations_total: u32,
    resets_total: u32,
}

/// The columns `entitlement_from_row` reads, in its order.
macro_rules! entitlement_columns {
    () => {
        "id, product, kind, seats, features, customer, expires_at, maintenance_until, max_transfers, \
         max_resets_per_year, transfers_used, seats_used, activations_total, resets_total"
    };
}

const ENTITLEMENT_COLUMNS: &str = entitlement_columns!();
const ENTITLEMENT_BY_KEY: &str = concat!(
    "SELECT ",
    entitlement_columns!(),
    " FROM entitlements WHERE key_hash = ?1"
);

fn entitlement_by_key(conn: &Connection, key: &ActivationKey) -> rusqlite::Result<Option<EntitlementRow>> {
    conn.prepare_cached(ENTITLEMENT_BY_KEY)?
        .query_row([key.ledger_hash().to_vec()], entitlement_from_row)
        .optional()
}

fn entitlement_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EntitlementRow> {
    Ok(EntitlementRow {
        id: r.get(0)?,
        product: r.get(1)?,
        kind: r.get(2)?,
        seats: r.get(3)?,
        features: r.get(4)?,
        customer: r.get(5)?,
        expires_at: r.get(6)?,
        maintenance_until: r.get(7)?,
        max_transfers: r.get(8)?,
        max_resets: r.get(9)?,
        transfers_used: r.get(10)?,
        seats_used: r.get(11)?,
        activations_total: r.get(12)?,
        resets_total: r.get(13)?,
    })
}

impl Ledger {
    /// The default ledger file in the vendor's data directory.
    pub fn default_location() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("nodelock-vendor").join("ledger.sqlite"))
    }

    /// Opens (creating if needed) and migrates the ledger at `path`.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| LedgerError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > schema::MIGRATIONS.len() as i64 {
            return Err(LedgerError::NewerSchema {
                found: version,
                known: schema::MIGRATIONS.len(),
            });
        }
        schema::migrate(&mut conn)?;
        Ok(Ledger {
            conn,
            prepared_terms: Default::default(),
        })
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    pub fn integrity_check(&self) -> Result<String, LedgerError> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }

    /// Entitlements whose kept counters disagree with their activations
    /// (empty when the ledger is consistent; tests and `vendor report` check it).
    pub fn counter_mismatches(&self) -> Result<Vec<String>, LedgerError> {
        let mut stmt = self.conn.prepare(
            "SELECT e.id FROM entitlements e WHERE
               e.seats_used != (SELECT COUNT(*) FROM activations a WHERE a.entitlement_id = e.id AND a.ended_at IS NULL)
            OR e.activations_total != (SELECT COUNT(*) FROM activations a WHERE a.entitlement_id = e.id)
            OR e.resets_total != (SELECT COUNT(*) FROM activations a WHERE a.entitlement_id = e.id AND a.ended_how = 'reset')
            OR e.transfers_used != (SELECT COUNT(*) FROM activations a WHERE a.entitlement_id = e.id AND a.ended_how = 'deactivated')",
        )?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    /// Creates an entitlement and returns its id and its activation key (shown
    /// once: only its hash is stored).
    pub fn create_entitlement(
        &mut self,
        spec: &EntitlementSpec,
        now: Timestamp,
        actor: &str,
    ) -> Result<(String, ActivationKey), LedgerError> {
        let id = new_id("E")?;
        let key = ActivationKey::generate()?;
        let features = serde_json::to_string(&spec.features).unwrap_or_else(|_| "[]".into());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO entitlements (id, key_hash, product, kind, seats, features, customer, expires_at,
                maintenance_until, max_transfers, max_resets_per_year, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                id,
                key.ledger_hash().to_vec(),
                spec.product,
                spec.kind.as_str(),
                spec.seats,
                features,
                spec.customer,
                spec.expires_at,
                spec.maintenance_until,
                spec.max_transfers,
                spec.max_resets_per_year,
                now
            ],
        )?;
        let detail = format!(
            "{} seat(s) of {} ({})",
            spec.seats,
            spec.product,
            spec.kind.as_str()
        );
        audit(&tx, now, "entitlement-created", Some(&id), None, actor, &detail)?;
        tx.commit()?;
        Ok((id, key))
    }

    /// Records a refusal (a document that failed a check) in the audit.
    pub fn record_refusal(
        &mut self,
        what: &str,
        reason: &str,
        entitlement: Option<&str>,
        now: Timestamp,
        actor: &str,
    ) -> Result<(), LedgerError> {
        audit(
            &self.conn,
            now,
            "refused",
            entitlement,
            None,
            actor,
            &format!("{what}: {reason}"),
        )?;
        Ok(())
    }

    /// Answers a verified activation request: checks the key, the term, free
    /// seats and the transfer limit, records the activation and issues the
    /// license. The same request answered again returns the same license.
    /// A refusal is audited and changes nothing else.
    ///
    /// This is [`Ledger::prepare_activation`] and [`Ledger::commit_activations`]
    /// for a batch of one; a server runs the two halves apart so that signing
    /// happens in parallel and many answers share one commit.
    pub fn answer_activation(
        &mut self,
        request: &VerifiedRequest,
        vendor: &PrivateKey,
        method: &str,
        now: Timestamp,
        actor: &str,
    ) -> Result<Answered, LedgerError> {
        let prepared = self.prepare_activation(request.clone(), vendor, method, actor, now)?;
        let mut results = self.commit_activations(vec![prepared], vendor, now)?;
        results.pop().unwrap_or(Err(LedgerError::UnknownKey))
    }

    /// The read-only half of answering: looks up the entitlement the key names
    /// and signs the license it would grant, without taking the write lock.
    /// Whether a seat is free is decided by [`Ledger::commit_activations`].
    pub fn prepare_activation(
        &self,
        request: VerifiedRequest,
        vendor: &PrivateKey,
        method: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<Prepared, LedgerError> {
        let hash = request.key.ledger_hash();
        let fresh = self
            .prepared_terms
            .borrow()
            .get(&hash)
            .filter(|(at, _)| at.elapsed() < PREPARE_CACHE)
            .map(|(_, terms)| terms.clone());
        let terms = match fresh {
            Some(terms) => terms,
            None => {
                let terms = match entitlement_by_key(&self.conn, &request.key)? {
                    Some(ent) => {
                        let revoked = revoked_for(&self.conn, &ent)?;
                        Some((ent, revoked))
                    }
                    None => None,
                };
                let mut cache = self.prepared_terms.borrow_mut();
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(hash, (std::time::Instant::now(), terms.clone()));
                terms
            }
        };
        let signed = match terms {
            Some((ent, revoked)) if ent.expires_at.is_none_or(|e| now < e) && ent.seats_used < ent.seats => {
                Some(sign_license(&ent, revoked, &request, vendor, now)?)
            }
            _ => None,
        };
        Ok(Prepared {
            request,
            signed,
            method: method.to_owned(),
            actor: actor.to_owned(),
        })
    }

    /// The writing half: one `BEGIN IMMEDIATE` transaction for the whole batch
    /// (one disk flush), each request judged on the ledger as it stands after
    /// the ones before it. Refusals are audited in the same transaction and
    /// change nothing else. A license signed in preparation is re-signed here
    /// if the revocation list changed meanwhile.
    pub fn commit_activations(
        &mut self,
        batch: Vec<Prepared>,
        vendor: &PrivateKey,
        now: Timestamp,
    ) -> Result<Vec<Result<Answered, LedgerError>>, LedgerError> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(batch.len());
        for prepared in batch {
            let outcome = {
                let sp = tx.savepoint()?;
                let outcome = commit_one(&sp, &prepared, vendor, now);
                if outcome.is_ok() {
                    sp.commit()?;
                }
                // Dropping an uncommitted savepoint rolls it back.
                outcome
            };
            match outcome {
                Ok(answered) => results.push(Ok(answered)),
                Err(LedgerError::Database(e)) => return Err(LedgerError::Database(e)),
                Err(refusal) => {
                    let entitlement: Option<String> = tx
                        .query_row(
                            "SELECT id FROM entitlements WHERE key_hash = ?1",
                            [prepared.request.key.ledger_hash().to_vec()],
                            |r| r.get(0),
                        )
                        .optional()?;
                    let what = format!(
                        "activation request from workstation {}",
                        prepared.request.fingerprint.workstation_id()
                    );
                    let detail = format!("{what}: {refusal}");
                    audit(
                        &tx,
                        now,
                        "refused",
                        entitlement.as_deref(),
                        None,
                        &prepared.actor,
                        &detail,
                    )?;
                    results.push(Err(refusal));
                }
            }
        }
        tx.commit()?;
        Ok(results)
    }

    /// Answers a deactivation request: verifies it against the install key
    /// recorded at activation, frees the seat, counts a transfer, and signs a
    /// receipt. Answering it again returns the same receipt and frees nothing.
    pub fn answer_deactivation(
        &mut self,
        pending: PendingDeactivation,
        vendor: &PrivateKey,
        now: Timestamp,
        actor: &str,
    ) -> Result<Deactivated, LedgerError> {
        let license_id = pending.untrusted_license_id().to_owned();
        match self.try_answer_deactivation(pending, vendor, now, actor) {
            Ok(d) => Ok(d),
            Err(e) => {
                let what = format!("deactivation request for license {license_id}");
                self.record_refusal(&what, &e.to_string(), None, now, actor)?;
                Err(e)
            }
        }
    }

    fn try_answer_deactivation(
        &mut self,
        pending: PendingDeactivation,
        vendor: &PrivateKey,
        now: Timestamp,
        actor: &str,
    ) -> Result<Deactivated, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let license_id = pending.untrusted_license_id().to_owned();
        let row = tx
            .query_row(
                "SELECT id, entitlement_id, install_key, ended_how, receipt FROM activations WHERE license_id = ?1",
                [&license_id],
                |r| {
                    Ok(Recorded {
                        activation_id: r.get(0)?,
                        entitlement_id: r.get(1)?,
                        install_key: r.get(2)?,
                        ended_how: r.get(3)?,
                        receipt: r.get(4)?,
                    })
                },
            )
            .optional()?;
        let Recorded {
            activation_id,
            entitlement_id,
            install_key,
            ended_how,
            receipt,
        } = row.ok_or_else(|| LedgerError::UnknownLicense(license_id.clone()))?;
        let install_key = PublicKey::from_sec1(&install_key)?;
        let (request, _) = pending.verify(&install_key).map_err(|e| match e {
            ActivationError::Envelope(_) => LedgerError::WrongInstallKey(license_id.clone()),
            other => LedgerError::Document(other),
        })?;
        match (ended_how.as_deref(), receipt) {
            (Some("deactivated"), Some(receipt)) => {
                audit(
                    &tx,
                    now,
                    "deactivation-replayed",
                    Some(&entitlement_id),
                    Some(&activation_id),
                    actor,
                    "nothing more freed",
                )?;
                tx.commit()?;
                let text = String::from_utf8_lossy(&receipt).into_owned();
                let details =
                    activation::open_receipt(text.as_bytes(), &[vendor.public()].into_iter().collect())?;
                return Ok(Deactivated {
                    activation_id,
                    license_id,
                    replayed: true,
                    receipt: text,
                    details,
                });
            }
            (Some(how), _) => {
                return Err(LedgerError::AlreadyEnded {
                    id: activation_id,
                    how: how.to_owned(),
                });
            }
            (None, _) => {}
        }
        tx.execute(
            "UPDATE entitlements SET transfers_used = transfers_used + 1, seats_used = seats_used - 1 WHERE id = ?1",
            [&entitlement_id],
        )?;
        let (transfers_used, max_transfers): (u32, u32) = tx.query_row(
            "SELECT transfers_used, max_transfers FROM entitlements WHERE id = ?1",
            [&entitlement_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let details = DeactivationReceipt {
            v: activation::VERSION,
            license_id: license_id.clone(),
            activation_id: activation_id.clone(),
            entitlement: entitlement_id.clone(),
            deactivated_at: now,
            request_nonce: request.nonce.clone(),
            transfers_used,
            max_transfers,
        };
        let text = activation::make_receipt(&details, vendor)?;
        tx.execute(
            "UPDATE activations SET ended_at = ?1, ended_how = 'deactivated', receipt = ?2 WHERE id = ?3",
            params![now, text.as_bytes(), activation_id],
        )?;
        let detail =
            format!("license {license_id}; seat freed; transfer {transfers_used} of {max_transfers}");
        audit(
            &tx,
            now,
            "deactivated",
            Some(&entitlement_id),
            Some(&activation_id),
            actor,
            &detail,
        )?;
        tx.commit()?;
        Ok(Deactivated {
            activation_id,
            license_id,
            replayed: false,
            receipt: text,
            details,
        })
    }

    /// Frees a seat without proof (the machine died). At most the entitlement's
    /// resets per rolling year unless `force`; always audited with its reason.
    pub fn reset(
        &mut self,
        activation_id: &str,
        reason: &str,
        force: bool,
        now: Timestamp,
        actor: &str,
    ) -> Result<String, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, String, Option<String>)> = tx
            .query_row(
                "SELECT entitlement_id, license_id, ended_how FROM activations WHERE id = ?1",
                [activation_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (entitlement_id, license_id, ended) =
            row.ok_or_else(|| LedgerError::UnknownActivation(activation_id.to_owned()))?;
        if let Some(how) = ended {
            return Err(LedgerError::AlreadyEnded {
                id: activation_id.to_owned(),
                how,
            });
        }
        let (used, max): (u32, u32) = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM activations WHERE entitlement_id = ?1 AND ended_how = 'reset' AND ended_at > ?2),
                    max_resets_per_year FROM entitlements WHERE id = ?1",
            params![entitlement_id, now - 365 * DAY],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if used >= max && !force {
            drop(tx);
            self.record_refusal(
                &format!("reset of {activation_id}"),
                &format!("reset limit {max} reached; reason given: {reason}"),
                Some(&entitlement_id),
                now,
                actor,
            )?;
            return Err(LedgerError::ResetLimit { used, max });
        }
        tx.execute(
            "UPDATE activations SET ended_at = ?1, ended_how = 'reset', ended_reason = ?2 WHERE id = ?3",
            params![now, reason, activation_id],
        )?;
        tx.execute(
            "UPDATE entitlements SET seats_used = seats_used - 1, resets_total = resets_total + 1 WHERE id = ?1",
            [&entitlement_id],
        )?;
        let detail = format!(
            "license {license_id} revoked; reason: {reason}{}",
            if force {
                " (forced past the reset limit)"
            } else {
                ""
            }
        );
        audit(
            &tx,
            now,
            "reset",
            Some(&entitlement_id),
            Some(activation_id),
            actor,
            &detail,
        )?;
        tx.commit()?;
        Ok(license_id)
    }

    /// The compliance view of every entitlement.
    pub fn report(&self, now: Timestamp) -> Result<Vec<EntitlementReport>, LedgerError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ENTITLEMENT_COLUMNS} FROM entitlements ORDER BY created_at, rowid"
        ))?;
        let ents = stmt
            .query_map([], entitlement_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let mut acts = self.conn.prepare(
            "SELECT id, license_id, workstation_id, method, created_at, ended_at, ended_how, ended_reason
             FROM activations WHERE entitlement_id = ?1 ORDER BY created_at, rowid",
        )?;
        let mut out = Vec::new();
        for e in ents {
            let activations = acts
                .query_map([&e.id], |r| {
                    let ended_at: Option<Timestamp> = r.get(5)?;
                    let how: Option<String> = r.get(6)?;
                    Ok((
                        ActivationRow {
                            id: r.get(0)?,
                            license_id: r.get(1)?,
                            workstation_id: r.get(2)?,
                            method: r.get(3)?,
                            activated_at: clock::format(r.get(4)?),
                            state: how.clone().unwrap_or_else(|| "active".into()),
                            ended_at: ended_at.map(clock::format),
                            reason: r.get(7)?,
                        },
                        ended_at,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let used = activations.iter().filter(|(a, _)| a.state == "active").count() as u32;
            let resets_last_year = activations
                .iter()
                .filter(|(a, ended)| a.state == "reset" && ended.is_some_and(|t| t > now - 365 * DAY))
                .count() as u32;
            out.push(EntitlementReport {
                id: e.id,
                product: e.product,
                kind: e.kind,
                customer: e.customer,
                expires_at: e.expires_at.map(clock::format),
                seats: e.seats,
                used,
                available: e.seats.saturating_sub(used),
                transfers_used: e.transfers_used,
                max_transfers: e.max_transfers,
                resets_last_year,
                max_resets_per_year: e.max_resets,
                activations: activations.into_iter().map(|(a, _)| a).collect(),
            });
        }
        Ok(out)
    }

    /// The audit, oldest first.
    pub fn audit(&self) -> Result<Vec<AuditRow>, LedgerError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at, event, entitlement_id, activation_id, actor, detail FROM audit ORDER BY seq",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AuditRow {
                    seq: r.get(0)?,
                    at: clock::format(r.get(1)?),
                    event: r.get(2)?,
                    entitlement_id: r.get(3)?,
                    activation_id: r.get(4)?,
                    actor: r.get(5)?,
                    detail: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

/// License ids reset by support for this entitlement's customer (or, without
/// a customer, this entitlement): later licenses carry them as revoked.
fn revoked_for(conn: &Connection, ent: &EntitlementRow) -> rusqlite::Result<Vec<String>> {
    // Two indexed steps rather than one join with an OR, which SQLite answers
    // with a scan of every activation.
    let mut entitlements: Vec<String> = match &ent.customer {
        Some(customer) => conn
            .prepare_cached("SELECT id FROM entitlements WHERE customer = ?1")?
            .query_map([customer], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    if !entitlements.contains(&ent.id) {
        entitlements.push(ent.id.clone());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT license_id FROM activations WHERE entitlement_id = ?1 AND ended_how = 'reset' AND ended_at IS NOT NULL",
    )?;
    let mut ids = Vec::new();
    for id in &entitlements {
        for license in stmt.query_map([id], |r| r.get::<_, String>(0))? {
            ids.push(license?);
        }
    }
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::activation::{make_request, open_request};
    use crate::machine::facts::Facts;
    use crate::machine::fingerprint::Fingerprint;

    const NOW: Timestamp = 1_780_000_000;

    fn spec(seats: u32) -> EntitlementSpec {
        EntitlementSpec {
            product: "surveyor".into(),
            seats,
            kind: LicenseKind::Perpetual,
            expires_at: None,
            maintenance_until: None,
            features: vec![],
            customer: Some("ACME".into()),
            max_transfers: 3,
            max_resets_per_year: 2,
        }
    }

    fn request(key: &ActivationKey, n: u8) -> VerifiedRequest {
        let mut facts = Facts::empty();
        facts.machine_id = Some(format!("3d1219c7c4c5404aaa1f6d2a48adf{n:03}"));
        let fp = Fingerprint::from_facts(&facts).unwrap();
        let install = PrivateKey::generate().unwrap();
        let (_, text) = make_request(key, &fp, &install, [n; 16], NOW).unwrap();
        open_request(text.as_bytes()).unwrap()
    }

    #[test]
    fn a_batch_is_judged_in_order_and_refusals_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let vendor = PrivateKey::generate().unwrap();
        let (_, key) = ledger.create_entitlement(&spec(2), NOW, "t").unwrap();
        let batch: Vec<Prepared> = (0..3)
            .map(|n| {
                ledger
                    .prepare_activation(request(&key, n), &vendor, "online", "t", NOW)
                    .unwrap()
            })
            .collect();
        let results = ledger.commit_activations(batch, &vendor, NOW).unwrap();
        assert!(results[0].is_ok() && results[1].is_ok());
        assert!(matches!(results[2], Err(LedgerError::NoFreeSeat { seats: 2 })));
        assert!(ledger.counter_mismatches().unwrap().is_empty());
        let events: Vec<String> = ledger.audit().unwrap().into_iter().map(|r| r.event).collect();
        assert_eq!(
            events,
            ["entitlement-created", "activated", "activated", "refused"]
        );
    }

    #[test]
    fn a_license_prepared_before_a_reset_is_re_signed_with_the_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let vendor = PrivateKey::generate().unwrap();
        let (_, key) = ledger.create_entitlement(&spec(2), NOW, "t").unwrap();
        let first = ledger
            .answer_activation(&request(&key, 1), &vendor, "offline", NOW, "t")
            .unwrap();
        let prepared = ledger
            .prepare_activation(request(&key, 2), &vendor, "online", "t", NOW)
            .unwrap();
        ledger
            .reset(&first.activation_id, "died", false, NOW, "t")
            .unwrap();
        let answered = ledger
            .commit_activations(vec![prepared], &vendor, NOW)
            .unwrap()
            .pop()
            .unwrap()
            .unwrap();
        let lic = crate::documents::license::License::read_unverified(answered.license.as_bytes()).unwrap();
        assert_eq!(lic.revoked, vec![first.license_id]);
    }
}
