//! The pool's state: one SQLite file (WAL, `synchronous=FULL`, as the vendor
//! ledger). A lease is written before it is answered, so a restarted server
//! serves the same leases; every seat decision is one immediate transaction,
//! so concurrent checkouts never grant more than the pool's seats.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::PoolError;
use crate::base::clock::Timestamp;
use crate::base::fsio;

/// Migrations, in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE leases (
    id              TEXT PRIMARY KEY,
    pool_license    TEXT NOT NULL,
    product         TEXT NOT NULL,
    mode            TEXT NOT NULL CHECK (mode IN ('online', 'borrowed')),
    holder_key      BLOB NOT NULL,
    workstation_id  TEXT NOT NULL,
    user            TEXT,
    host            TEXT,
    request_nonce   BLOB NOT NULL UNIQUE,
    granted_at      INTEGER NOT NULL,
    issued_at       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    ended_at        INTEGER,
    ended_how       TEXT CHECK (ended_how IN ('checked-in', 'returned', 'lapsed', 'removed')),
    lease           BLOB NOT NULL
);
CREATE INDEX leases_held ON leases(product, ended_at, expires_at);
-- Each lease update (renew, check-in, return) is answered once.
CREATE TABLE updates (
    nonce           BLOB PRIMARY KEY,
    lease_id        TEXT NOT NULL REFERENCES leases(id),
    at              INTEGER NOT NULL
);
-- What the usage report reads: append-only.
CREATE TABLE usage (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    product         TEXT NOT NULL,
    event           TEXT NOT NULL,
    lease_id        TEXT,
    in_use          INTEGER NOT NULL,
    detail          TEXT NOT NULL
);
CREATE INDEX usage_by_time ON usage(at);
CREATE TRIGGER usage_is_append_only_update BEFORE UPDATE ON usage
    BEGIN SELECT RAISE(ABORT, 'the usage log is append-only'); END;
CREATE TRIGGER usage_is_append_only_delete BEFORE DELETE ON usage
    BEGIN SELECT RAISE(ABORT, 'the usage log is append-only'); END;
-- The latest time this pool server has granted at, so that a clock set back
-- beyond the tolerance stops it granting.
CREATE TABLE clock (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    watermark       INTEGER NOT NULL
);
"#,
    r#"
-- The seats each product's leases hold, kept by triggers so that counting
-- them costs the same with ten leases or a million. A lease holds its seat
-- from its insert until ended_at is set (a lapse is written down before a
-- count is read, see Tx::count_held).
CREATE TABLE held (
    product         TEXT PRIMARY KEY,
    leases          INTEGER NOT NULL CHECK (leases >= 0),
    borrowed        INTEGER NOT NULL CHECK (borrowed >= 0)
);
INSERT INTO held (product, leases, borrowed)
    SELECT product, COUNT(*), COALESCE(SUM(mode = 'borrowed'), 0) FROM leases
    WHERE ended_at IS NULL GROUP BY product;
CREATE TRIGGER held_on_grant AFTER INSERT ON leases WHEN new.ended_at IS NULL
BEGIN
    INSERT INTO held (product, leases, borrowed) VALUES (new.product, 1, new.mode = 'borrowed')
    ON CONFLICT(product) DO UPDATE SET leases = leases + 1, borrowed = borrowed + (new.mode = 'borrowed');
END;
CREATE TRIGGER held_on_end AFTER UPDATE OF ended_at ON leases
    WHEN old.ended_at IS NULL AND new.ended_at IS NOT NULL
BEGIN
    UPDATE held SET leases = leases - 1, borrowed = borrowed - (old.mode = 'borrowed')
    WHERE product = old.product;
END;
"#,
    r#"
-- Checkouts the policy groups into one seat (FlexNet's DUP_GROUP): leases
-- with the same seat key share a seat, counted in held once while any of
-- them runs. A lease with no seat key takes a seat of its own.
ALTER TABLE leases ADD COLUMN seat TEXT;
CREATE TABLE seat_groups (
    product         TEXT NOT NULL,
    seat            TEXT NOT NULL,
    leases          INTEGER NOT NULL CHECK (leases >= 0),
    PRIMARY KEY (product, seat)
);
DROP TRIGGER held_on_grant;
DROP TRIGGER held_on_end;
CREATE TRIGGER held_on_grant AFTER INSERT ON leases
    WHEN new.ended_at IS NULL AND new.seat IS NULL
BEGIN
    INSERT INTO held (product, leases, borrowed) VALUES (new.product, 1, new.mode = 'borrowed')
    ON CONFLICT(product) DO UPDATE SET leases = leases + 1, borrowed = borrowed + (new.mode = 'borrowed');
END;
CREATE TRIGGER held_on_end AFTER UPDATE OF ended_at ON leases
    WHEN old.ended_at IS NULL AND new.ended_at IS NOT NULL AND old.seat IS NULL
BEGIN
    UPDATE held SET leases = leases - 1, borrowed = borrowed - (old.mode = 'borrowed')
    WHERE product = old.product;
END;
CREATE TRIGGER held_on_grouped_grant AFTER INSERT ON leases
    WHEN new.ended_at IS NULL AND new.seat IS NOT NULL
BEGIN
    INSERT INTO held (product, leases, borrowed)
        SELECT new.product, 1, 0 WHERE NOT EXISTS
            (SELECT 1 FROM seat_groups WHERE product = new.product AND seat = new.seat AND leases > 0)
    ON CONFLICT(product) DO UPDATE SET leases = leases + 1;
    INSERT INTO seat_groups (product, seat, leases) VALUES (new.product, new.seat, 1)
    ON CONFLICT(product, seat) DO UPDATE SET leases = leases + 1;
END;
CREATE TRIGGER held_on_grouped_end AFTER UPDATE OF ended_at ON leases
    WHEN old.ended_at IS NULL AND new.ended_at IS NOT NULL AND old.seat IS NOT NULL
BEGIN
    UPDATE seat_groups SET leases = leases - 1 WHERE product = old.product AND seat = old.seat;
    UPDATE held SET leases = leases - 1 WHERE product = old.product
        AND (SELECT leases FROM seat_groups WHERE product = old.product AND seat = old.seat) = 0;
END;
"#,
];

/// Statements kept compiled per connection (more than the writer uses).
const STATEMENT_CACHE: usize = 32;

/// How long a writer waits for another before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A lease as the pool stores it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeaseRow {
    /// Lease id.
    pub id: String,
    /// The pool license.
    pub pool_license: String,
    /// The product.
    pub product: String,
    /// `online` or `borrowed`.
    pub mode: String,
    /// The client's workstation id.
    pub workstation_id: String,
    /// User label, as the client sent it.
    pub user: Option<String>,
    /// Host label, as the client sent it.
    pub host: Option<String>,
    /// When first granted.
    #[serde(serialize_with = "crate::base::clock::serialize_rfc3339")]
    pub since: Timestamp,
    /// When it ends unless renewed.
    #[serde(serialize_with = "crate::base::clock::serialize_rfc3339")]
    pub until: Timestamp,
    /// The holder key (compressed SEC1), not shown.
    #[serde(skip)]
    pub holder_key: Vec<u8>,
    /// The seat it shares with others of its group (the policy's `group`),
    /// or none: a seat of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
}

/// The pool database.
pub struct PoolDb {
    conn: Connection,
    path: std::path::PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PoolError + '_ {
    move |source| PoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl PoolDb {
    /// Opens (creating owner-only if needed) and migrates the database.
    pub fn open(path: &Path) -> Result<PoolDb, PoolError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fsio::create_private_dir(dir).map_err(io_err(dir))?;
        }
        fsio::create_private_file(path).map_err(io_err(path))?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Every statement the writer runs stays compiled.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > MIGRATIONS.len() as i64 {
            return Err(PoolError::NewerSchema);
        }
        for (i, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(PoolDb {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The file it is in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection to the database at `path` (opened and migrated before)
    /// for reads only: a server's handlers read while its writer writes,
    /// which WAL allows.
    pub fn open_reader(path: &Path) -> Result<PoolDb, PoolError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(PoolDb {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Runs each job in one immediate transaction, each in a savepoint of
    /// its own: a refused job (`Err`) rolls back only its own writes, and
    /// then `refused` may write what a refusal leaves (a denial in the usage
    /// log). One commit, so one flush, for the whole batch; `Err` when the
    /// commit fails, and then nothing of the batch was recorded.
    pub fn write_batch<J: Timed, T>(
        &mut self,
        jobs: Vec<J>,
        mut each: impl FnMut(&Tx<'_>, J) -> Result<T, PoolError>,
        mut refused: impl FnMut(&Tx<'_>, &PoolError, Timestamp) -> Result<(), PoolError>,
    ) -> Result<Vec<Result<T, PoolError>>, PoolError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let now = job.at();
            tx.prepare_cached("SAVEPOINT job")?.execute([])?;
            let outcome = each(&Tx(&tx), job);
            if let Err(e) = &outcome {
                tx.prepare_cached("ROLLBACK TO job")?.execute([])?;
                refused(&Tx(&tx), e, now)?;
            }
            tx.prepare_cached("RELEASE job")?.execute([])?;
            outcomes.push(outcome);
        }
        tx.commit()?;
        Ok(outcomes)
    }

    /// Runs `f` in one immediate (writer) transaction, committed when `f`
    /// returns `Ok`; a refusal rolls back everything `f` wrote.
    pub fn write<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T, PoolError>) -> Result<T, PoolError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&Tx(&tx))?;
        tx.commit()?;
        Ok(out)
    }

    /// Reads outside a write transaction.
    pub fn read(&self) -> Tx<'_> {
        Tx(&self.conn)
    }
}

/// A job of a batch, judged at its own time.
pub trait Timed {
    /// When it was asked for.
    fn at(&self) -> Timestamp;
}

/// Statements on a connection or inside a transaction.
pub struct Tx<'a>(&'a Connection);

fn lease_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LeaseRow> {
    Ok(LeaseRow {
        id: r.get(0)?,
        pool_license: r.get(1)?,
        product: r.get(2)?,
        mode: r.get(3)?,
        workstation_id: r.get(4)?,
        user: r.get(5)?,
        host: r.get(6)?,
        since: r.get(7)?,
        until: r.get(8)?,
        holder_key: r.get(9)?,
        seat: r.get(10)?,
    })
}

const LEASE_COLUMNS: &str =
    "id, pool_license, product, mode, workstation_id, user, host, granted_at, expires_at, holder_key, seat";

impl Tx<'_> {
    /// The latest time the pool granted at.
    pub fn watermark(&self) -> Result<Option<Timestamp>, PoolError> {
        Ok(self
            .0
            .prepare_cached("SELECT watermark FROM clock WHERE id = 1")?
            .query_row([], |r| r.get(0))
            .optional()?)
    }

    /// Moves the watermark forward to `now` (written only when it moves:
    /// most changes of a batch share its second).
    pub fn observe(&self, now: Timestamp) -> Result<(), PoolError> {
        if self.watermark()?.is_some_and(|w| now <= w) {
            return Ok(());
        }
        self.0
            .prepare_cached(
                "INSERT INTO clock (id, watermark) VALUES (1, ?1)
             ON CONFLICT(id) DO UPDATE SET watermark = max(watermark, excluded.watermark)",
            )?
            .execute([now])?;
        Ok(())
    }

    /// Ends the product's leases whose time is up (they lapse by themselves;
    /// this only writes it down), each logged. Bounded by the pool's seats.
    /// The watermark moves to `now` first: leases lapsed by a clock that ran
    /// ahead must not be granted again once the clock is set back, whatever
    /// change (a check-in, a removal) wrote the lapse down.
    pub fn lapse(&self, product: &str, now: Timestamp) -> Result<(), PoolError> {
        self.observe(now)?;
        let lapsed: Vec<(String, Timestamp)> = self
            .0
            .prepare_cached(
                "SELECT id, expires_at FROM leases WHERE product = ?1 AND ended_at IS NULL AND expires_at <= ?2
                 ORDER BY expires_at",
            )?
            .query_map(params![product, now], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (id, at) in lapsed {
            self.0
                .prepare_cached("UPDATE leases SET ended_at = ?1, ended_how = 'lapsed' WHERE id = ?2")?
                .execute(params![at, id])?;
            // Seats still held when this one ran out: the others lapsing
            // now ran out later (in order), and a grant since would have
            // written this lapse down first.
            let (in_use, _) = self.counted(product)?;
            self.log(at, product, "lapsed", Some(&id), in_use, "the lease ran out")?;
        }
        Ok(())
    }

    /// How many of the product's leases hold a seat at `now`, and how many
    /// of those are borrows: the leases whose time is up are written down as
    /// lapsed first, then the count the triggers keep is read, so the cost
    /// does not grow with the pool.
    pub fn count_held(&self, product: &str, now: Timestamp) -> Result<(usize, usize), PoolError> {
        self.lapse(product, now)?;
        self.counted(product)
    }

    /// The seats the triggers count as held (lapses not written down included).
    fn counted(&self, product: &str) -> Result<(usize, usize), PoolError> {
        let counted: Option<(i64, i64)> = self
            .0
            .prepare_cached("SELECT leases, borrowed FROM held WHERE product = ?1")?
            .query_row([product], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (held, borrowed) = counted.unwrap_or((0, 0));
        Ok((
            usize::try_from(held).unwrap_or(0),
            usize::try_from(borrowed).unwrap_or(0),
        ))
    }

    /// Whether the seat group `seat` of the product holds a seat (a lease of
    /// it is running): a checkout grouped into it takes no other.
    pub fn group_holds(&self, product: &str, seat: &str) -> Result<bool, PoolError> {
        let n: Option<i64> = self
            .0
            .prepare_cached("SELECT leases FROM seat_groups WHERE product = ?1 AND seat = ?2")?
            .query_row([product, seat], |r| r.get(0))
            .optional()?;
        Ok(n.unwrap_or(0) > 0)
    }

    /// How many seats of the product `user` holds at `now`.
    pub fn count_held_by(&self, product: &str, user: &str, now: Timestamp) -> Result<usize, PoolError> {
        let n: i64 = self
            .0
            .prepare_cached(
                "SELECT COUNT(*) FROM leases WHERE product = ?1 AND ended_at IS NULL AND expires_at > ?2 AND user = ?3",
            )?
            .query_row(params![product, now, user], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// The product's leases that hold a seat at `now`, oldest first.
    pub fn held(&self, product: &str, now: Timestamp) -> Result<Vec<LeaseRow>, PoolError> {
        let sql = format!(
            "SELECT {LEASE_COLUMNS} FROM leases WHERE product = ?1 AND ended_at IS NULL AND expires_at > ?2 ORDER BY granted_at, rowid"
        );
        Ok(self
            .0
            .prepare_cached(&sql)?
            .query_map(params![product, now], lease_from_row)?
            .collect::<Result<_, _>>()?)
    }

    /// Borrows of the pool license `pool_license` still out at `now`.
    pub fn borrowed_out(&self, pool_license: &str, now: Timestamp) -> Result<Vec<LeaseRow>, PoolError> {
        let sql = format!(
            "SELECT {LEASE_COLUMNS} FROM leases WHERE pool_license = ?1 AND mode = 'borrowed' AND ended_at IS NULL AND expires_at > ?2 ORDER BY expires_at"
        );
        Ok(self
            .0
            .prepare(&sql)?
            .query_map(params![pool_license, now], lease_from_row)?
            .collect::<Result<_, _>>()?)
    }

    /// A lease by id, with whether it has ended.
    pub fn lease(&self, id: &str) -> Result<Option<(LeaseRow, Option<String>)>, PoolError> {
        let sql = format!("SELECT {LEASE_COLUMNS}, ended_how FROM leases WHERE id = ?1");
        Ok(self
            .0
            .prepare_cached(&sql)?
            .query_row([id], |r| Ok((lease_from_row(r)?, r.get(11)?)))
            .optional()?)
    }

    /// The signed lease last answered for `id`.
    pub fn lease_document(&self, id: &str) -> Result<Option<String>, PoolError> {
        let bytes: Option<Vec<u8>> = self
            .0
            .prepare_cached("SELECT lease FROM leases WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// The lease answering the request with this nonce, if one was granted.
    pub fn lease_for_request(&self, nonce: &[u8]) -> Result<Option<String>, PoolError> {
        Ok(self
            .0
            .prepare_cached("SELECT id FROM leases WHERE request_nonce = ?1")?
            .query_row([nonce], |r| r.get(0))
            .optional()?)
    }

    /// Records a granted lease.
    pub fn insert(
        &self,
        row: &LeaseRow,
        nonce: &[u8],
        issued_at: Timestamp,
        lease: &str,
    ) -> Result<(), PoolError> {
        self.0
            .prepare_cached(
                "INSERT INTO leases (id, pool_license, product, mode, holder_key, workstation_id, user, host,
                    request_nonce, granted_at, issued_at, expires_at, lease, seat)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                row.id,
                row.pool_license,
                row.product,
                row.mode,
                row.holder_key,
                row.workstation_id,
                row.user,
                row.host,
                nonce,
                row.since,
                issued_at,
                row.until,
                lease.as_bytes(),
                row.seat
            ])?;
        Ok(())
    }

    /// Extends a lease and keeps its newly signed document.
    pub fn renew(
        &self,
        id: &str,
        issued_at: Timestamp,
        until: Timestamp,
        lease: &str,
    ) -> Result<(), PoolError> {
        self.0
            .prepare_cached("UPDATE leases SET issued_at = ?1, expires_at = ?2, lease = ?3 WHERE id = ?4")?
            .execute(params![issued_at, until, lease.as_bytes(), id])?;
        Ok(())
    }

    /// Ends a lease; false if it had already ended.
    pub fn end(&self, id: &str, how: &str, now: Timestamp) -> Result<bool, PoolError> {
        Ok(self
            .0
            .prepare_cached(
                "UPDATE leases SET ended_at = ?1, ended_how = ?2 WHERE id = ?3 AND ended_at IS NULL",
            )?
            .execute(params![now, how, id])?
            == 1)
    }

    /// Records an update's nonce; false if it was seen before.
    pub fn first_time(&self, nonce: &[u8], lease_id: &str, now: Timestamp) -> Result<bool, PoolError> {
        Ok(self
            .0
            .prepare_cached("INSERT OR IGNORE INTO updates (nonce, lease_id, at) VALUES (?1, ?2, ?3)")?
            .execute(params![nonce, lease_id, now])?
            == 1)
    }

    /// Appends to the usage log.
    pub fn log(
        &self,
        at: Timestamp,
        product: &str,
        event: &str,
        lease_id: Option<&str>,
        in_use: usize,
        detail: &str,
    ) -> Result<(), PoolError> {
        self.0
            .prepare_cached(
                "INSERT INTO usage (at, product, event, lease_id, in_use, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![at, product, event, lease_id, in_use as i64, detail])?;
        Ok(())
    }

    /// The usage log from `since`, oldest first, one row at a time.
    pub fn each_usage(
        &self,
        since: Option<Timestamp>,
        each: &mut dyn FnMut(UsageRow) -> Result<(), PoolError>,
    ) -> Result<(), PoolError> {
        let mut stmt = self.0.prepare(
            "SELECT at, product, event, lease_id, in_use FROM usage WHERE (?1 IS NULL OR at >= ?1) ORDER BY at, seq",
        )?;
        let mut rows = stmt.query([since])?;
        while let Some(r) = rows.next()? {
            each(UsageRow {
                at: r.get(0)?,
                product: r.get(1)?,
                event: r.get(2)?,
                lease_id: r.get(3)?,
                in_use: r.get(4)?,
            })?;
        }
        Ok(())
    }

    /// Leases ended or running in `[from, to)`: their start and end, for
    /// the hours used.
    pub fn each_lease_span(
        &self,
        since: Option<Timestamp>,
        each: &mut dyn FnMut(String, Timestamp, Timestamp) -> Result<(), PoolError>,
    ) -> Result<(), PoolError> {
        let mut stmt = self.0.prepare(
            "SELECT product, granted_at, coalesce(ended_at, expires_at) FROM leases
             WHERE (?1 IS NULL OR coalesce(ended_at, expires_at) > ?1) ORDER BY granted_at",
        )?;
        let mut rows = stmt.query([since])?;
        while let Some(r) = rows.next()? {
            each(r.get(0)?, r.get(1)?, r.get(2)?)?;
        }
        Ok(())
    }
}

/// One usage log row.
#[derive(Debug, Clone)]
pub struct UsageRow {
    /// When.
    pub at: Timestamp,
    /// The product.
    pub product: String,
    /// `granted`, `borrowed`, `renewed`, `checked-in`, `returned`, `lapsed`, `removed`, `denied`.
    pub event: String,
    /// The lease, when there is one.
    pub lease_id: Option<String>,
    /// Seats in use right after.
    pub in_use: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(id: usize, mode: &str, seat: Option<&str>) -> LeaseRow {
        LeaseRow {
            id: format!("S-{id:016}"),
            pool_license: "L".into(),
            product: "p".into(),
            mode: mode.into(),
            workstation_id: "w".into(),
            user: None,
            host: None,
            since: 0,
            until: 1_000,
            holder_key: vec![2; 33],
            seat: seat.map(str::to_owned),
        }
    }

    /// Seats and borrows held, counted from the leases themselves.
    fn recount(db: &PoolDb) -> (usize, usize) {
        let held = db.read().held("p", 0).unwrap();
        let groups: std::collections::BTreeSet<_> = held.iter().filter_map(|l| l.seat.clone()).collect();
        let alone = held.iter().filter(|l| l.seat.is_none()).count();
        let borrowed = held.iter().filter(|l| l.mode == "borrowed").count();
        (alone + groups.len(), borrowed)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The counts the triggers keep agree with a recount after any mix
        /// of grants (alone, grouped, borrowed) and ends.
        #[test]
        fn the_kept_counts_agree_with_a_recount(steps in proptest::collection::vec((0u8..4, 0usize..6), 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let mut db = PoolDb::open(&dir.path().join("p.sqlite")).unwrap();
            let mut granted: Vec<String> = Vec::new();
            for (i, (what, pick)) in steps.into_iter().enumerate() {
                db.write(|tx| {
                    match what {
                        0 => tx.insert(&row(i, "online", None), &i.to_be_bytes(), 0, "lease")?,
                        1 => tx.insert(&row(i, "borrowed", None), &i.to_be_bytes(), 0, "lease")?,
                        2 => {
                            let seat = format!("user:{}", pick % 2);
                            tx.insert(&row(i, "online", Some(&seat)), &i.to_be_bytes(), 0, "lease")?
                        }
                        _ => {
                            if let Some(id) = granted.get(pick % granted.len().max(1)).cloned() {
                                tx.end(&id, "checked-in", 0)?;
                            }
                            return Ok(());
                        }
                    }
                    granted.push(format!("S-{i:016}"));
                    Ok(())
                })
                .unwrap();
                let kept = db.read().counted("p").unwrap();
                prop_assert_eq!(kept, recount(&db));
            }
        }
    }
}
