//! The ledger's schema, as numbered migrations applied in order.
//!
//! `PRAGMA user_version` records how many have run. A migration is never
//! edited once released; a change is a new migration appended to [`MIGRATIONS`].

use rusqlite::Connection;

use crate::documents::activation::key::lookup_of;

/// Migration 1: entitlements, activations, and the append-only audit.
const V1: &str = r#"
CREATE TABLE entitlements (
    id                  TEXT PRIMARY KEY,
    key_hash            BLOB NOT NULL UNIQUE,
    product             TEXT NOT NULL,
    kind                TEXT NOT NULL,
    seats               INTEGER NOT NULL CHECK (seats > 0),
    features            TEXT NOT NULL,
    customer            TEXT,
    expires_at          INTEGER,
    maintenance_until   INTEGER,
    max_transfers       INTEGER NOT NULL,
    max_resets_per_year INTEGER NOT NULL,
    transfers_used      INTEGER NOT NULL DEFAULT 0,
    -- Counters kept in step with `activations` inside every transaction, so
    -- that answering a request costs the same with ten activations or a million.
    seats_used          INTEGER NOT NULL DEFAULT 0,
    activations_total   INTEGER NOT NULL DEFAULT 0,
    resets_total        INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL
);

CREATE TABLE activations (
    id              TEXT PRIMARY KEY,
    entitlement_id  TEXT NOT NULL REFERENCES entitlements(id),
    license_id      TEXT NOT NULL UNIQUE,
    workstation_id  TEXT NOT NULL,
    install_key     BLOB NOT NULL,
    request_nonce   BLOB NOT NULL,
    request_hash    BLOB NOT NULL,
    license         BLOB NOT NULL,
    method          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    ended_at        INTEGER,
    ended_how       TEXT CHECK (ended_how IN ('deactivated', 'reset')),
    ended_reason    TEXT,
    receipt         BLOB,
    UNIQUE (install_key, request_nonce)
);
CREATE INDEX activations_by_entitlement ON activations(entitlement_id, ended_at);
CREATE INDEX activations_reset ON activations(entitlement_id, ended_at) WHERE ended_how = 'reset';
CREATE INDEX entitlements_by_customer ON entitlements(customer);

CREATE TABLE audit (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    event           TEXT NOT NULL,
    entitlement_id  TEXT,
    activation_id   TEXT,
    actor           TEXT NOT NULL,
    detail          TEXT NOT NULL
);
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit is append-only'); END;
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit is append-only'); END;
"#;

/// Migration 2: an entitlement can require hardware identity (ledgers made
/// before it keep allowing clone-only machines, as they did).
const V2: &str = r#"
ALTER TABLE entitlements ADD COLUMN require_hardware_id INTEGER NOT NULL DEFAULT 0;
"#;

/// Migration 3: the match policy an entitlement's licenses carry (ledgers
/// made before it sold standard-policy licenses).
const V3: &str = r#"
ALTER TABLE entitlements ADD COLUMN match_policy TEXT NOT NULL DEFAULT 'standard';
"#;

/// Migration 4: the lookup id of each activation key, which version 2
/// requests carry instead of the key ([`fill_key_lookups`] computes it for
/// the rows already there, from the key hash they store).
const V4: &str = r#"
ALTER TABLE entitlements ADD COLUMN key_lookup BLOB;
CREATE UNIQUE INDEX entitlements_key_lookup ON entitlements (key_lookup);
"#;

/// Migration 5: how often an entitlement's licenses must be refreshed
/// (NULL: never, as before).
const V5: &str = r#"
ALTER TABLE entitlements ADD COLUMN revalidate_days INTEGER;
"#;

/// Migration 6: the public half of the key pair derived from each new
/// activation key, which verifies version 2 requests' key signatures (NULL
/// for entitlements created before: their requests are checked by the HMAC
/// proof keyed by the stored hash).
const V6: &str = r#"
ALTER TABLE entitlements ADD COLUMN key_public BLOB;
"#;

/// Migration 7: an entitlement can be suspended (none was before).
const V7: &str = r#"
ALTER TABLE entitlements ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
"#;

/// Migration 8: activation is idempotent per machine and entitlement.
///
/// A request from a machine that already holds a seat is answered with that
/// activation's license, re-issued to the request's install key: the
/// activation's `holder_key` moves (it starts as the key it was activated
/// with), and the request is kept in `reactivations` so that the same file
/// answered again is a replay. The machine is found through `seat_anchors`,
/// the hardware digests each held seat is bound to, so that finding it costs
/// the same with ten activations or a million ([`fill_seat_anchors`] fills
/// them for the seats already held).
const V8: &str = r#"
ALTER TABLE activations ADD COLUMN holder_key BLOB;
UPDATE activations SET holder_key = install_key;
CREATE INDEX activations_by_holder ON activations(entitlement_id, holder_key) WHERE ended_at IS NULL;
CREATE TABLE seat_anchors (
    entitlement_id  TEXT NOT NULL,
    digest          BLOB NOT NULL,
    activation_id   TEXT NOT NULL REFERENCES activations(id)
);
CREATE INDEX seat_anchors_by_digest ON seat_anchors(entitlement_id, digest);
CREATE INDEX seat_anchors_by_activation ON seat_anchors(activation_id);
CREATE TABLE reactivations (
    install_key     BLOB NOT NULL,
    request_nonce   BLOB NOT NULL,
    request_hash    BLOB NOT NULL,
    activation_id   TEXT NOT NULL REFERENCES activations(id),
    at              INTEGER NOT NULL,
    PRIMARY KEY (install_key, request_nonce)
);
"#;

/// Migration 9: floating entitlements' lease and borrow policy (NULL for
/// node-locked ones).
const V9: &str = r#"
ALTER TABLE entitlements ADD COLUMN lease_minutes INTEGER;
ALTER TABLE entitlements ADD COLUMN borrow_days INTEGER;
ALTER TABLE entitlements ADD COLUMN borrow_seats INTEGER;
"#;

/// Every migration, in order.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9];

/// After migration 4: the lookup id of every entitlement that has none.
fn fill_key_lookups(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let rows: Vec<(String, Vec<u8>)> = tx
        .prepare("SELECT id, key_hash FROM entitlements WHERE key_lookup IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = tx.prepare("UPDATE entitlements SET key_lookup = ?1 WHERE id = ?2")?;
    for (id, hash) in rows {
        if let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) {
            update.execute(rusqlite::params![lookup_of(&hash).as_slice(), id])?;
        }
    }
    Ok(())
}

/// After migration 8: the anchor digests of every seat held, read from the
/// license each activation issued (a license that does not read is left
/// out: its machine then takes a new seat when it activates again, as before).
fn fill_seat_anchors(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let rows: Vec<(String, String, Vec<u8>)> = tx
        .prepare("SELECT id, entitlement_id, license FROM activations WHERE ended_at IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut insert =
        tx.prepare("INSERT INTO seat_anchors (entitlement_id, digest, activation_id) VALUES (?1, ?2, ?3)")?;
    for (id, entitlement, license) in rows {
        for digest in crate::vendor::ledger::same_machine::anchors_of_license(&license) {
            insert.execute(rusqlite::params![entitlement, digest.as_slice(), id])?;
        }
    }
    Ok(())
}

/// The schema as the first release wrote it, for tests that open a ledger
/// made by that release.
#[cfg(test)]
pub const FIRST_RELEASE: &str = V1;

/// Brings the schema up to date in one transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: usize = tx
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?
        .try_into()
        .unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(sql)?;
        if *sql == V4 {
            fill_key_lookups(&tx)?;
        }
        if *sql == V8 {
            fill_seat_anchors(&tx)?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()
}
