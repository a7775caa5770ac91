//! The SQLite backend: one file, WAL, `synchronous=FULL`, every write one
//! `BEGIN IMMEDIATE` transaction (so concurrent vendor processes serialise on
//! the database's write lock and a killed process leaves a transaction
//! committed or absent), versioned migrations in [`schema`].

pub(super) mod schema;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::error::{LedgerError, StorageError};
use super::model::{
    Activation, ActivationState, AuditEntry, AuditRow, EarlierAnswer, Ending, Entitlement, EntitlementSpec,
    MovedActivation, NewActivation, Selection,
};
use super::storage::{Backend, KeyRecord, Reads, WriteTx};
use crate::base::clock::Timestamp;
use crate::base::fsio;
use crate::documents::activation::key::lookup_of;

/// How long a writer waits for another's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> StorageError {
        StorageError::Backend(Box::new(e))
    }
}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> LedgerError {
        LedgerError::Database(e.into())
    }
}

/// An open SQLite ledger file.
pub struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    /// Opens (creating if needed) and migrates the ledger at `path`.
    pub fn open(path: &Path) -> Result<Sqlite, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fsio::create_private_dir(dir).map_err(|source| LedgerError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // The ledger holds who holds which seat and every license issued:
        // owner-only from its first byte (SQLite gives its -wal and -shm
        // files the database file's mode).
        fsio::create_private_file(path).map_err(|source| LedgerError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut conn = Connection::open(path).map_err(StorageError::from)?;
        let setup = |conn: &mut Connection| -> rusqlite::Result<i64> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        };
        let version = setup(&mut conn).map_err(StorageError::from)?;
        if version > schema::MIGRATIONS.len() as i64 {
            return Err(LedgerError::NewerSchema {
                found: version,
                known: schema::MIGRATIONS.len(),
            });
        }
        schema::migrate(&mut conn).map_err(StorageError::from)?;
        Ok(Sqlite { conn })
    }
}

/// The columns `entitlement_from_row` reads, in its order.
macro_rules! entitlement_columns {
    () => {
        "id, product, kind, seats, features, customer, expires_at, maintenance_until, max_transfers, \
         max_resets_per_year, transfers_used, seats_used, activations_total, resets_total, created_at, \
         require_hardware_id, match_policy, revalidate_days, suspended, lease_minutes, borrow_days, borrow_seats"
    };
}

/// The columns `activation_from_row` reads, in its order.
macro_rules! activation_columns {
    () => {
        "id, entitlement_id, license_id, workstation_id, COALESCE(holder_key, install_key), method, \
         created_at, ended_at, ended_how, ended_reason"
    };
}

// After the column macros, which it uses.
mod seats;

/// A row's values, and those that did not parse as what they should be.
fn entitlement_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Entitlement, StorageError>> {
    let kind: String = r.get(2)?;
    let features: String = r.get(4)?;
    let policy: String = r.get(16)?;
    let parsed = (|| {
        let kind = kind.parse().map_err(|_| StorageError::Unreadable {
            what: "license kind",
            value: kind.clone(),
        })?;
        let features = serde_json::from_str(&features).map_err(|_| StorageError::Unreadable {
            what: "feature list",
            value: features.clone(),
        })?;
        let policy = policy.parse().map_err(|_| StorageError::Unreadable {
            what: "match policy",
            value: policy.clone(),
        })?;
        Ok((kind, features, policy))
    })();
    Ok(match parsed {
        Ok((kind, features, match_policy)) => Ok(Entitlement {
            id: r.get(0)?,
            spec: EntitlementSpec {
                product: r.get(1)?,
                seats: r.get(3)?,
                kind,
                expires_at: r.get(6)?,
                maintenance_until: r.get(7)?,
                features,
                customer: r.get(5)?,
                max_transfers: r.get(8)?,
                max_resets_per_year: r.get(9)?,
                require_hardware_id: r.get(15)?,
                match_policy,
                revalidate_days: r.get(17)?,
                pool: match (r.get::<_, Option<u32>>(19)?, r.get(20)?, r.get(21)?) {
                    (Some(lease_minutes), Some(borrow_days), Some(borrow_seats)) => {
                        Some(crate::documents::license::PoolTerms {
                            lease_minutes,
                            borrow_days,
                            borrow_seats,
                        })
                    }
                    _ => None,
                },
            },
            transfers_used: r.get(10)?,
            seats_used: r.get(11)?,
            activations_total: r.get(12)?,
            resets_total: r.get(13)?,
            created_at: r.get(14)?,
            suspended: r.get(18)?,
        }),
        Err(e) => Err(e),
    })
}

fn activation_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Activation, StorageError>> {
    let method: String = r.get(5)?;
    let how: Option<String> = r.get(8)?;
    let parsed = (|| {
        let method = method.parse()?;
        let state = match how.as_deref() {
            None => ActivationState::Active,
            Some(how) => match how.parse()? {
                ActivationState::Active => {
                    return Err(StorageError::Unreadable {
                        what: "activation end",
                        value: how.to_owned(),
                    });
                }
                ended => ended,
            },
        };
        Ok((method, state))
    })();
    Ok(match parsed {
        Ok((method, state)) => Ok(Activation {
            id: r.get(0)?,
            entitlement_id: r.get(1)?,
            license_id: r.get(2)?,
            workstation_id: r.get(3)?,
            install_key: r.get(4)?,
            method,
            created_at: r.get(6)?,
            state,
            ended_at: r.get(7)?,
            reason: r.get(9)?,
        }),
        Err(e) => Err(e),
    })
}

/// Runs a single-row query whose mapper can find unreadable values.
fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<Result<T, StorageError>>,
) -> Result<Option<T>, StorageError> {
    conn.prepare_cached(sql)?
        .query_row(params, map)
        .optional()?
        .transpose()
}

/// The reads, on a connection or on a transaction (which derefs to one).
impl Reads for Connection {
    fn entitlement_by_key(&self, key_hash: &[u8; 32]) -> Result<Option<Entitlement>, StorageError> {
        let sql = concat!(
            "SELECT ",
            entitlement_columns!(),
            " FROM entitlements WHERE key_hash = ?1"
        );
        one(self, sql, [key_hash.as_slice()], entitlement_from_row)
    }

    fn key_by_lookup(&self, lookup: &[u8; 16]) -> Result<Option<KeyRecord>, StorageError> {
        let row: Option<(Vec<u8>, Option<Vec<u8>>)> = self
            .prepare_cached("SELECT key_hash, key_public FROM entitlements WHERE key_lookup = ?1")?
            .query_row([lookup.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row.and_then(|(hash, public)| {
            let hash = <[u8; 32]>::try_from(hash.as_slice()).ok()?;
            Some(KeyRecord { hash, public })
        }))
    }

    fn entitlement(&self, id: &str) -> Result<Option<Entitlement>, StorageError> {
        let sql = concat!(
            "SELECT ",
            entitlement_columns!(),
            " FROM entitlements WHERE id = ?1"
        );
        one(self, sql, [id], entitlement_from_row)
    }

    fn answer_for_request(
        &self,
        install_key: &[u8],
        nonce: &[u8],
    ) -> Result<Option<EarlierAnswer>, StorageError> {
        // The request that took the seat is in `activations`; a later one
        // from the same machine, answered by moving that seat, in
        // `reactivations` (both keyed by the key the request was signed with).
        let first = concat!(
            "SELECT ",
            activation_columns!(),
            ", request_hash, license FROM activations WHERE install_key = ?1 AND request_nonce = ?2"
        );
        let moved = concat!(
            "SELECT ",
            activation_columns!(),
            ", (SELECT request_hash FROM reactivations WHERE install_key = ?1 AND request_nonce = ?2), license \
             FROM activations WHERE id = \
             (SELECT activation_id FROM reactivations WHERE install_key = ?1 AND request_nonce = ?2)"
        );
        match seats::earlier_answer(self, first, install_key, nonce)? {
            Some(answer) => Ok(Some(answer)),
            None => seats::earlier_answer(self, moved, install_key, nonce),
        }
    }

    fn seat_candidates(
        &self,
        entitlement_id: &str,
        holder_key: &[u8],
        anchors: &[[u8; 32]],
    ) -> Result<Vec<(Activation, Vec<u8>)>, StorageError> {
        seats::candidates(self, entitlement_id, holder_key, anchors)
    }

    fn issued_license(&self, activation_id: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .prepare_cached("SELECT license FROM activations WHERE id = ?1")?
            .query_row([activation_id], |r| r.get(0))
            .optional()?)
    }

    fn activation_by_license(&self, license_id: &str) -> Result<Option<Activation>, StorageError> {
        let sql = concat!(
            "SELECT ",
            activation_columns!(),
            " FROM activations WHERE license_id = ?1"
        );
        one(self, sql, [license_id], activation_from_row)
    }

    fn activation(&self, id: &str) -> Result<Option<Activation>, StorageError> {
        let sql = concat!(
            "SELECT ",
            activation_columns!(),
            " FROM activations WHERE id = ?1"
        );
        one(self, sql, [id], activation_from_row)
    }

    fn receipt(&self, activation_id: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .prepare_cached("SELECT receipt FROM activations WHERE id = ?1")?
            .query_row([activation_id], |r| r.get(0))
            .optional()?
            .flatten())
    }

    fn reset_licenses(
        &self,
        entitlement_id: &str,
        customer: Option<&str>,
    ) -> Result<Vec<String>, StorageError> {
        // Two indexed steps rather than one join with an OR, which SQLite
        // answers with a scan of every activation.
        let mut entitlements: Vec<String> = match customer {
            Some(customer) => self
                .prepare_cached("SELECT id FROM entitlements WHERE customer = ?1")?
                .query_map([customer], |r| r.get(0))?
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        if !entitlements.iter().any(|e| e == entitlement_id) {
            entitlements.push(entitlement_id.to_owned());
        }
        let mut stmt = self.prepare_cached(
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

    fn resets_since(&self, entitlement_id: &str, since: Timestamp) -> Result<u32, StorageError> {
        Ok(self
            .prepare_cached(
                "SELECT COUNT(*) FROM activations WHERE entitlement_id = ?1 AND ended_how = 'reset' AND ended_at > ?2",
            )?
            .query_row(params![entitlement_id, since], |r| r.get(0))?)
    }
}

/// A `BEGIN IMMEDIATE` transaction.
struct Tx<'c>(rusqlite::Transaction<'c>);

impl WriteTx for Tx<'_> {
    fn reads(&self) -> &dyn Reads {
        &*self.0
    }

    fn insert_entitlement(
        &mut self,
        id: &str,
        key: &KeyRecord,
        spec: &EntitlementSpec,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        let features =
            serde_json::to_string(&spec.features).map_err(|e| StorageError::Backend(Box::new(e)))?;
        self.0.execute(
            "INSERT INTO entitlements (id, key_hash, product, kind, seats, features, customer, expires_at,
                maintenance_until, max_transfers, max_resets_per_year, created_at, require_hardware_id, match_policy,
                key_lookup, revalidate_days, key_public, lease_minutes, borrow_days, borrow_seats)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
            params![
                id,
                key.hash.as_slice(),
                spec.product,
                spec.kind.as_str(),
                spec.seats,
                features,
                spec.customer,
                spec.expires_at,
                spec.maintenance_until,
                spec.max_transfers,
                spec.max_resets_per_year,
                now,
                spec.require_hardware_id,
                spec.match_policy.as_str(),
                lookup_of(&key.hash).as_slice(),
                spec.revalidate_days,
                key.public,
                spec.pool.map(|p| p.lease_minutes),
                spec.pool.map(|p| p.borrow_days),
                spec.pool.map(|p| p.borrow_seats)
            ],
        )?;
        Ok(())
    }

    fn insert_activation(&mut self, a: &NewActivation<'_>) -> Result<(), StorageError> {
        self.0
            .prepare_cached(
                "INSERT INTO activations (id, entitlement_id, license_id, workstation_id, install_key, request_nonce,
                    request_hash, license, method, created_at, holder_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?5)",
            )?
            .execute(params![
                a.id,
                a.entitlement_id,
                a.license_id,
                a.workstation_id,
                a.install_key,
                a.request_nonce,
                a.request_hash,
                a.license,
                a.method.as_str(),
                a.created_at
            ])?;
        self.0
            .prepare_cached(
                "UPDATE entitlements SET seats_used = seats_used + 1, activations_total = activations_total + 1
                 WHERE id = ?1",
            )?
            .execute([a.entitlement_id])?;
        let mut anchor = self.0.prepare_cached(
            "INSERT INTO seat_anchors (entitlement_id, digest, activation_id) VALUES (?1, ?2, ?3)",
        )?;
        for digest in a.anchors {
            anchor.execute(params![a.entitlement_id, digest.as_slice(), a.id])?;
        }
        Ok(())
    }

    fn update_entitlement(
        &mut self,
        id: &str,
        spec: &EntitlementSpec,
        suspended: bool,
    ) -> Result<(), StorageError> {
        let features =
            serde_json::to_string(&spec.features).map_err(|e| StorageError::Backend(Box::new(e)))?;
        self.0.execute(
            "UPDATE entitlements SET kind = ?1, seats = ?2, expires_at = ?3, maintenance_until = ?4,
                features = ?5, suspended = ?6 WHERE id = ?7",
            params![
                spec.kind.as_str(),
                spec.seats,
                spec.expires_at,
                spec.maintenance_until,
                features,
                suspended,
                id
            ],
        )?;
        Ok(())
    }

    fn move_activation(&mut self, m: &MovedActivation<'_>) -> Result<(), StorageError> {
        self.0.execute(
            "UPDATE activations SET holder_key = ?1, license = ?2 WHERE id = ?3",
            params![m.install_key, m.license, m.activation_id],
        )?;
        self.0.execute(
            "INSERT INTO reactivations (install_key, request_nonce, request_hash, activation_id, at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                m.install_key,
                m.request_nonce,
                m.request_hash,
                m.activation_id,
                m.at
            ],
        )?;
        Ok(())
    }

    fn replace_license(&mut self, activation_id: &str, license: &[u8]) -> Result<(), StorageError> {
        self.0.execute(
            "UPDATE activations SET license = ?1 WHERE id = ?2",
            params![license, activation_id],
        )?;
        Ok(())
    }

    fn end_activation(
        &mut self,
        a: &Activation,
        ending: &Ending<'_>,
        now: Timestamp,
    ) -> Result<(), StorageError> {
        // A seat no longer held is no machine's to find again.
        self.0
            .prepare_cached("DELETE FROM seat_anchors WHERE activation_id = ?1")?
            .execute([&a.id])?;
        match ending {
            Ending::Deactivated { receipt } => {
                self.0.execute(
                    "UPDATE activations SET ended_at = ?1, ended_how = 'deactivated', receipt = ?2 WHERE id = ?3",
                    params![now, receipt, a.id],
                )?;
                self.0.execute(
                    "UPDATE entitlements SET transfers_used = transfers_used + 1, seats_used = seats_used - 1
                     WHERE id = ?1",
                    [&a.entitlement_id],
                )?;
            }
            Ending::Reset { reason } => {
                self.0.execute(
                    "UPDATE activations SET ended_at = ?1, ended_how = 'reset', ended_reason = ?2 WHERE id = ?3",
                    params![now, reason, a.id],
                )?;
                self.0.execute(
                    "UPDATE entitlements SET seats_used = seats_used - 1, resets_total = resets_total + 1
                     WHERE id = ?1",
                    [&a.entitlement_id],
                )?;
            }
        }
        Ok(())
    }

    fn append_audit(&mut self, e: &AuditEntry<'_>) -> Result<(), StorageError> {
        self.0
            .prepare_cached(
                "INSERT INTO audit (at, event, entitlement_id, activation_id, actor, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                e.at,
                e.event.as_str(),
                e.entitlement_id,
                e.activation_id,
                e.actor,
                e.detail
            ])?;
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        Ok(self.0.commit()?)
    }
}

impl Backend for Sqlite {
    fn reads(&self) -> &dyn Reads {
        &self.conn
    }

    fn begin(&mut self) -> Result<Box<dyn WriteTx + '_>, StorageError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Ok(Box::new(Tx(tx)))
    }

    fn ping(&self) -> Result<(), StorageError> {
        Ok(self.conn.query_row("SELECT 1", [], |_| Ok(()))?)
    }

    fn schema_version(&self) -> Result<u32, StorageError> {
        Ok(self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn integrity_check(&self) -> Result<String, StorageError> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }

    fn counter_mismatches(&self) -> Result<Vec<String>, StorageError> {
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

    fn each_entitlement(
        &self,
        selection: &Selection,
        each: &mut dyn FnMut(Entitlement) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let sql = concat!(
            "SELECT ",
            entitlement_columns!(),
            " FROM entitlements WHERE (?1 IS NULL OR id = ?1) AND (?2 IS NULL OR product = ?2) \
             AND (?3 IS NULL OR customer = ?3) ORDER BY created_at, rowid"
        );
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query(params![
            selection.entitlement,
            selection.product,
            selection.customer
        ])?;
        while let Some(row) = rows.next()? {
            each(entitlement_from_row(row)??)?;
        }
        Ok(())
    }

    fn each_activation(
        &self,
        entitlement_id: &str,
        each: &mut dyn FnMut(Activation) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let sql = concat!(
            "SELECT ",
            activation_columns!(),
            " FROM activations WHERE entitlement_id = ?1 ORDER BY created_at, rowid"
        );
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query([entitlement_id])?;
        while let Some(row) = rows.next()? {
            each(activation_from_row(row)??)?;
        }
        Ok(())
    }

    fn each_audit_row(
        &self,
        selection: &Selection,
        each: &mut dyn FnMut(AuditRow) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        // Product and customer select through the entitlements they name;
        // rows about no entitlement (anonymous refusals) match neither.
        let mut stmt = self.conn.prepare(
            "SELECT seq, at, event, entitlement_id, activation_id, actor, detail FROM audit
             WHERE (?1 IS NULL OR entitlement_id = ?1)
               AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at < ?3)
               AND (?4 IS NULL OR entitlement_id IN (SELECT id FROM entitlements WHERE product = ?4))
               AND (?5 IS NULL OR entitlement_id IN (SELECT id FROM entitlements WHERE customer = ?5))
             ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![
            selection.entitlement,
            selection.since,
            selection.until,
            selection.product,
            selection.customer
        ])?;
        while let Some(r) = rows.next()? {
            let event: String = r.get(2)?;
            each(AuditRow {
                seq: r.get(0)?,
                at: r.get(1)?,
                event: event.parse()?,
                entitlement_id: r.get(3)?,
                activation_id: r.get(4)?,
                actor: r.get(5)?,
                detail: r.get(6)?,
            })?;
        }
        Ok(())
    }
}
