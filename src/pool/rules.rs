//! Who gets a seat of a floating pool: checkout, renewal, check-in, return
//! and removal, and the status view.
//!
//! Each change runs in two steps so a server can use every core. `prepare`
//! does the costly part (verify the client's signature, sign the lease)
//! with no lock held and no write; `commit` judges the seat in the
//! database's writer transaction and throws the signed lease away when the
//! seat is refused. Everything `prepare` read is read again in `commit`, so
//! a change prepared against a state that has moved on cannot grant more
//! than the pool holds.

use std::collections::BTreeMap;

use serde::Serialize;

use super::PoolError;
use super::db::{LeaseRow, Timed, Tx};
use super::policy::{Asker, Policy};
use crate::base::clock::{self, DAY, Timestamp};
use crate::base::random::{self, Random};
use crate::documents::lease::{self, Lease, LeaseMode, LeaseOp, UnverifiedLeaseUpdate, VerifiedLeaseRequest};
use crate::documents::license::{PoolTerms, VerifiedLicense};
use crate::format::{PrivateKey, PublicKey, typeable};

/// How far the pool server's clock may fall behind the latest time it
/// granted at before it stops granting: leases last minutes, so a clock set
/// back further would hand out seats whose leases are still running.
pub const POOL_CLOCK_TOLERANCE: i64 = 600;

/// How many holders an "all seats in use" sentence names.
const MAX_NAMED: usize = 10;

/// A pool license the server serves, with the install key that signs its leases.
pub struct Served {
    /// The pool license, verified.
    pub license: VerifiedLicense,
    /// Its install key (from the store's `keys/`).
    pub install: PrivateKey,
    /// The license as installed, armored: clients verify leases against it.
    pub armored: String,
}

impl Served {
    fn seats(&self) -> u32 {
        self.license.license().seats.unwrap_or(0)
    }

    fn terms(&self) -> PoolTerms {
        self.license.license().pool.unwrap_or(PoolTerms {
            lease_minutes: 15,
            borrow_days: 0,
            borrow_seats: 0,
        })
    }
}

/// A seat granted, renewed or looked up.
#[derive(Debug, Clone, Serialize)]
pub struct Granted {
    /// Lease id.
    pub lease_id: String,
    /// When it ends unless renewed, RFC 3339 (server time).
    #[serde(serialize_with = "clock::serialize_rfc3339")]
    pub expires_at: Timestamp,
    /// `online` or `borrowed`.
    pub mode: &'static str,
    /// The signed lease, armored.
    pub lease: String,
    /// The pool license it was granted under, armored.
    pub pool_license: String,
    /// A borrow the pool's policy wants given back the first time the
    /// laptop reaches the pool again after being away (`return_on_reconnect`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub return_on_reconnect: bool,
}

/// What a lease update did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Updated {
    /// Extended.
    Renewed(Granted),
    /// Given back (online check-in or borrow return).
    Ended {
        /// The lease.
        lease_id: String,
        /// True when it had already ended (a replayed return changes nothing).
        already: bool,
    },
}

/// The pool as the admin sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The server's time (clients compare their clocks with it).
    #[serde(serialize_with = "clock::serialize_rfc3339")]
    pub now: Timestamp,
    /// Per product served.
    pub products: Vec<ProductStatus>,
}

/// One product's seats.
#[derive(Debug, Clone, Serialize)]
pub struct ProductStatus {
    /// The product.
    pub product: String,
    /// The pool license.
    pub pool_license: String,
    /// Seats in the pool.
    pub seats: u32,
    /// Held now (online and borrowed).
    pub in_use: u32,
    /// `seats - in_use`.
    pub available: u32,
    /// Out on borrow now.
    pub borrowed: u32,
    /// The pool license's end, RFC 3339.
    pub expires_at: Option<String>,
    /// Each lease held.
    pub leases: Vec<LeaseRow>,
}

/// The pool licenses served, with what signs their leases: shared read-only
/// by every request a server handles.
pub struct Lender {
    served: BTreeMap<String, Served>,
    random: std::sync::Arc<dyn Random>,
}

/// A checkout whose lease is signed, waiting for its seat.
pub struct PreparedCheckout {
    lease: Lease,
    text: String,
    row: LeaseRow,
    address: Option<std::net::IpAddr>,
    /// The days a borrow asked for (the policy judges what was asked).
    borrow_days: Option<u32>,
}

/// A verified lease update (renewals with their new lease signed), waiting
/// for its commit.
pub struct PreparedUpdate {
    id: String,
    product: String,
    op: LeaseOp,
    nonce: Vec<u8>,
    now: Timestamp,
    /// For a renewal of a lease that was running when prepared: the new
    /// lease and its end.
    renewed: Option<(String, Timestamp)>,
}

/// A change to the pool, judged in the writer's transaction.
pub enum Change {
    /// Take a seat.
    Checkout(Box<PreparedCheckout>),
    /// Renew, check in or return a lease.
    Update(Box<PreparedUpdate>),
    /// The admin frees a seat.
    Remove {
        /// The lease.
        id: String,
        /// When.
        now: Timestamp,
    },
}

impl Timed for Change {
    /// When the change was asked for (the time it is judged at).
    fn at(&self) -> Timestamp {
        match self {
            Change::Checkout(p) => p.lease.issued_at,
            Change::Update(p) => p.now,
            Change::Remove { now, .. } => *now,
        }
    }
}

/// What a committed change did.
#[derive(Debug)]
pub enum Outcome {
    /// A seat granted (or granted before, for a retried request).
    Granted(Granted),
    /// A lease renewed or ended.
    Updated(Updated),
    /// Whether the admin's removal freed a seat.
    Removed(bool),
}

fn new_lease_id(random: &dyn Random) -> Result<String, PoolError> {
    let bytes = random::bytes::<10>(random).map_err(crate::format::KeyError::from)?;
    Ok(format!("S-{}", typeable::base32(&bytes, 16)))
}

/// Refuses to grant when this server's clock is behind a time it already
/// granted at; otherwise remembers `now`.
fn clock_ok(tx: &Tx<'_>, now: Timestamp) -> Result<(), PoolError> {
    let watermark = tx.watermark()?;
    if let Some(w) = watermark
        && now < w.saturating_sub(POOL_CLOCK_TOLERANCE)
    {
        return Err(PoolError::ClockBehind { now, watermark: w });
    }
    tx.observe(now)
}

impl Lender {
    /// Lends the seats of `served` (one pool license per product).
    pub fn new(served: Vec<Served>, random: std::sync::Arc<dyn Random>) -> Lender {
        let served = served
            .into_iter()
            .map(|s| (s.license.license().product.clone(), s))
            .collect();
        Lender { served, random }
    }

    /// The products served.
    pub fn products(&self) -> impl Iterator<Item = &Served> {
        self.served.values()
    }

    fn served(&self, product: &str) -> Result<&Served, PoolError> {
        self.served
            .get(product)
            .ok_or_else(|| PoolError::NotServed(product.to_owned()))
    }

    /// Signs the lease a verified request would get, refusing at once what
    /// no state of the pool could grant (a product not served, an expired
    /// pool, a borrow beyond the pool license's terms).
    pub fn prepare_checkout(
        &self,
        request: &VerifiedLeaseRequest,
        address: Option<std::net::IpAddr>,
        now: Timestamp,
    ) -> Result<PreparedCheckout, PoolError> {
        let req = request.request();
        let served = self.served(&req.product)?;
        let pool = served.license.license();
        if pool.expires_at.is_some_and(|end| now >= end) {
            return Err(PoolError::PoolExpired(req.product.clone()));
        }
        let terms = served.terms();
        let until = match req.mode {
            LeaseMode::Online => now.saturating_add(i64::from(terms.lease_minutes) * 60),
            LeaseMode::Borrowed => {
                if terms.borrow_days == 0 {
                    return Err(PoolError::BorrowRefused(
                        "this pool does not lend seats for offline use".into(),
                    ));
                }
                if req.days > terms.borrow_days {
                    return Err(PoolError::BorrowRefused(format!(
                        "a borrow may last at most {} day(s); ask for fewer",
                        terms.borrow_days
                    )));
                }
                now.saturating_add(i64::from(req.days).saturating_mul(DAY))
            }
        };
        let until = pool.expires_at.map_or(until, |end| until.min(end));
        let lease = Lease {
            v: crate::documents::activation::VERSION,
            id: new_lease_id(&*self.random)?,
            pool_license: pool.id.clone(),
            product: req.product.clone(),
            features: pool.features.clone(),
            mode: req.mode,
            holder_key: req.holder_key.clone(),
            fp: req.fp.clone(),
            request_nonce: req.nonce.clone(),
            issued_at: now,
            expires_at: until,
            user: req.user.clone(),
            host: req.host.clone(),
        };
        let text = lease::sign_lease(&lease, &served.install)?;
        let row = LeaseRow {
            id: lease.id.clone(),
            pool_license: pool.id.clone(),
            product: req.product.clone(),
            mode: req.mode.as_str().to_owned(),
            workstation_id: request.fingerprint().workstation_id().to_string(),
            user: req.user.clone(),
            host: req.host.clone(),
            since: now,
            until,
            holder_key: req.holder_key.clone(),
            seat: None,
        };
        Ok(PreparedCheckout {
            borrow_days: (req.mode == LeaseMode::Borrowed).then_some(req.days),
            lease,
            text,
            row,
            address,
        })
    }

    /// Verifies an update against the holder key recorded for its lease
    /// (read through `reader`), and signs the renewed lease for a renewal.
    pub fn prepare_update(
        &self,
        reader: &Tx<'_>,
        update: UnverifiedLeaseUpdate,
        now: Timestamp,
    ) -> Result<PreparedUpdate, PoolError> {
        let id = update.claimed_lease_id().to_owned();
        let (row, ended) = reader
            .lease(&id)?
            .ok_or_else(|| PoolError::UnknownLease(id.clone()))?;
        let holder =
            PublicKey::from_sec1(&row.holder_key).map_err(|_| PoolError::UnknownLease(id.clone()))?;
        let update = update.verify(&holder).map_err(|e| match e {
            crate::documents::activation::ActivationError::Envelope(_) => PoolError::WrongHolder(id.clone()),
            other => PoolError::Document(other),
        })?;
        let served = self.served(&row.product)?;
        let mut renewed = None;
        if update.op == LeaseOp::Renew && ended.is_none() && row.mode == "online" && row.until > now {
            let until = now.saturating_add(i64::from(served.terms().lease_minutes) * 60);
            let until = served
                .license
                .license()
                .expires_at
                .map_or(until, |end| until.min(end));
            let previous = reader
                .lease_document(&id)?
                .ok_or_else(|| PoolError::UnknownLease(id.clone()))?;
            let mut lease = lease_payload(&previous)?;
            lease.issued_at = now;
            lease.expires_at = until;
            lease.request_nonce = update.nonce.clone();
            renewed = Some((lease::sign_lease(&lease, &served.install)?, until));
        }
        Ok(PreparedUpdate {
            id,
            product: row.product,
            op: update.op,
            nonce: update.nonce,
            now,
            renewed,
        })
    }

    /// Judges a prepared change in the writer's transaction `tx`, under the
    /// admin's `policy`. On `Err` the caller rolls back what it wrote.
    pub fn commit(&self, tx: &Tx<'_>, change: Change, policy: Option<&Policy>) -> Result<Outcome, PoolError> {
        match change {
            Change::Checkout(p) => self.commit_checkout(tx, *p, policy).map(Outcome::Granted),
            Change::Update(p) => self.commit_update(tx, *p).map(Outcome::Updated),
            Change::Remove { id, now } => commit_remove(tx, &id, now).map(Outcome::Removed),
        }
    }

    /// What a refused change still leaves in the usage log, written after
    /// its own writes were rolled back: a denial for every seat in use.
    pub fn refused(&self, tx: &Tx<'_>, error: &PoolError, now: Timestamp) -> Result<(), PoolError> {
        if let PoolError::AllSeatsInUse { product, seats, .. } = error {
            tx.log(now, product, "denied", None, *seats as usize, "all seats in use")?;
        }
        Ok(())
    }

    fn commit_checkout(
        &self,
        tx: &Tx<'_>,
        p: PreparedCheckout,
        policy: Option<&Policy>,
    ) -> Result<Granted, PoolError> {
        let now = p.lease.issued_at;
        let product = p.row.product.clone();
        let served = self.served(&product)?;
        let seats = served.seats();
        let terms = served.terms();
        clock_ok(tx, now)?;
        let return_on_reconnect =
            p.lease.mode == LeaseMode::Borrowed && policy.is_some_and(Policy::returns_on_reconnect);
        // The same request again (a retry after a lost answer): the same lease.
        if let Some(id) = tx.lease_for_request(&p.lease.request_nonce)? {
            return granted_again(tx, served, &id, return_on_reconnect);
        }
        let (in_use, borrowed) = tx.count_held(&product, now)?;
        // Grouped by the policy (online checkouts only): a group that
        // already holds a seat shares it, and takes no other.
        let mut row = p.row;
        if p.lease.mode == LeaseMode::Online {
            row.seat = policy.and_then(|policy| {
                policy.seat_key(row.user.as_deref(), row.host.as_deref(), &row.workstation_id)
            });
        }
        let shares = match &row.seat {
            Some(seat) => tx.group_holds(&product, seat)?,
            None => false,
        };
        if !shares && in_use >= seats as usize {
            // Who holds them, for the sentence (read only when full).
            let held = tx.held(&product, now)?;
            let mut holders: Vec<String> = Vec::new();
            if policy.is_none_or(Policy::shows_holders) {
                holders = held.iter().take(MAX_NAMED).map(holder_label).collect();
                if held.len() > MAX_NAMED {
                    holders.push(format!("and {} more", held.len() - MAX_NAMED));
                }
            }
            return Err(PoolError::AllSeatsInUse {
                product,
                seats,
                holders,
                next_free: held
                    .iter()
                    .filter(|l| l.mode == "borrowed")
                    .map(|l| l.until)
                    .min(),
            });
        }
        if let Some(policy) = policy {
            // A checkout that shares its group's seat takes none, so the
            // rules that count seats (max_per_user, reserved) do not apply.
            let held_by_user = match &row.user {
                Some(user) if policy.limits_per_user() && !shares => tx.count_held_by(&product, user, now)?,
                _ => 0,
            };
            let asker = Asker {
                user: row.user.as_deref(),
                host: row.host.as_deref(),
                address: p.address,
            };
            let counted = if shares { 0 } else { in_use };
            policy
                .admits(&asker, counted, held_by_user, seats, p.borrow_days)
                .map_err(PoolError::PolicyDenied)?;
        }
        if p.lease.mode == LeaseMode::Borrowed && borrowed >= terms.borrow_seats as usize {
            return Err(PoolError::BorrowRefused(format!(
                "at most {} seat(s) may be out on borrow at once, and all are",
                terms.borrow_seats
            )));
        }
        tx.insert(&row, &p.lease.request_nonce, now, &p.text)?;
        let event = match p.lease.mode {
            LeaseMode::Online => "granted",
            LeaseMode::Borrowed => "borrowed",
        };
        tx.log(
            now,
            &product,
            event,
            Some(&p.lease.id),
            if shares { in_use } else { in_use + 1 },
            &holder_label(&row),
        )?;
        Ok(Granted {
            lease_id: p.lease.id,
            expires_at: p.lease.expires_at,
            mode: p.lease.mode.as_str(),
            lease: p.text,
            pool_license: served.armored.clone(),
            return_on_reconnect,
        })
    }

    fn commit_update(&self, tx: &Tx<'_>, p: PreparedUpdate) -> Result<Updated, PoolError> {
        let id = p.id;
        let now = p.now;
        if !tx.first_time(&p.nonce, &id, now)? {
            return Err(PoolError::Replayed(id));
        }
        // Read again: the lease may have ended since the update was prepared.
        let (row, ended) = tx
            .lease(&id)?
            .ok_or_else(|| PoolError::UnknownLease(id.clone()))?;
        match p.op {
            LeaseOp::Renew => {
                clock_ok(tx, now)?;
                if let Some(how) = ended {
                    return Err(PoolError::LeaseEnded { id, how });
                }
                if row.mode != "online" {
                    return Err(PoolError::BorrowRefused(
                        "a borrow runs to its end and is not renewed".into(),
                    ));
                }
                let Some((text, until)) = p.renewed.filter(|_| row.until > now) else {
                    tx.lapse(&row.product, now)?;
                    return Err(PoolError::LeaseEnded {
                        id,
                        how: "lapsed".into(),
                    });
                };
                // Not in the usage log: a renewal changes no seat, and
                // logging each would grow the log by every client's every
                // renewal.
                tx.renew(&id, now, until, &text)?;
                Ok(Updated::Renewed(Granted {
                    lease_id: id,
                    expires_at: until,
                    mode: "online",
                    lease: text,
                    pool_license: self.served(&p.product)?.armored.clone(),
                    return_on_reconnect: false,
                }))
            }
            LeaseOp::Checkin | LeaseOp::Return => {
                let how = if p.op == LeaseOp::Return {
                    "returned"
                } else {
                    "checked-in"
                };
                let freed = tx.end(&id, how, now)?;
                if freed {
                    let (in_use, _) = tx.count_held(&row.product, now)?;
                    tx.log(now, &row.product, how, Some(&id), in_use, "")?;
                }
                Ok(Updated::Ended {
                    lease_id: id,
                    already: !freed,
                })
            }
        }
    }

    /// Seats, holders and borrows of every product served, read through `reader`.
    pub fn status(&self, reader: &Tx<'_>, now: Timestamp) -> Result<Status, PoolError> {
        let mut products = Vec::new();
        for served in self.served.values() {
            let lic = served.license.license();
            let leases = reader.held(&lic.product, now)?;
            // Seats, not leases: the leases of one group share a seat.
            let groups: std::collections::BTreeSet<&str> =
                leases.iter().filter_map(|l| l.seat.as_deref()).collect();
            let alone = leases.iter().filter(|l| l.seat.is_none()).count();
            let in_use = u32::try_from(alone + groups.len()).unwrap_or(u32::MAX);
            let seats = served.seats();
            products.push(ProductStatus {
                product: lic.product.clone(),
                pool_license: lic.id.clone(),
                seats,
                in_use,
                available: seats.saturating_sub(in_use),
                borrowed: u32::try_from(leases.iter().filter(|l| l.mode == "borrowed").count()).unwrap_or(0),
                expires_at: lic.expires_at.map(clock::format),
                leases,
            });
        }
        Ok(Status { now, products })
    }
}

fn commit_remove(tx: &Tx<'_>, id: &str, now: Timestamp) -> Result<bool, PoolError> {
    let (row, _) = tx
        .lease(id)?
        .ok_or_else(|| PoolError::UnknownLease(id.to_owned()))?;
    let freed = tx.end(id, "removed", now)?;
    if freed {
        let (in_use, _) = tx.count_held(&row.product, now)?;
        tx.log(now, &row.product, "removed", Some(id), in_use, "by the admin")?;
    }
    Ok(freed)
}

fn holder_label(row: &LeaseRow) -> String {
    match (&row.user, &row.host) {
        (Some(u), Some(h)) => format!("{u}@{h}"),
        (Some(u), None) => u.clone(),
        (None, Some(h)) => h.clone(),
        (None, None) => format!("workstation {}", row.workstation_id),
    }
}

fn lease_payload(armored: &str) -> Result<Lease, PoolError> {
    let doc = crate::format::envelope::parse(armored.as_bytes(), crate::format::DocumentKind::Lease)
        .map_err(|e| PoolError::Document(e.into()))?;
    crate::format::codec::decode(doc.untrusted_payload())
        .map_err(|e| PoolError::Damaged(format!("a stored lease does not read: {e}")))
}

fn granted_again(
    tx: &Tx<'_>,
    served: &Served,
    id: &str,
    return_on_reconnect: bool,
) -> Result<Granted, PoolError> {
    let (row, ended) = tx
        .lease(id)?
        .ok_or_else(|| PoolError::UnknownLease(id.to_owned()))?;
    if let Some(how) = ended {
        return Err(PoolError::LeaseEnded {
            id: id.to_owned(),
            how,
        });
    }
    let lease = tx
        .lease_document(id)?
        .ok_or_else(|| PoolError::UnknownLease(id.to_owned()))?;
    Ok(Granted {
        lease_id: id.to_owned(),
        expires_at: row.until,
        mode: if row.mode == "borrowed" {
            "borrowed"
        } else {
            "online"
        },
        lease,
        pool_license: served.armored.clone(),
        return_on_reconnect: return_on_reconnect && row.mode == "borrowed",
    })
}

/// An outcome of another kind than the change asked for (a bug, said as such).
pub fn unexpected(outcome: &Outcome) -> PoolError {
    PoolError::Unavailable(format!(
        "the pool answered with the wrong kind of outcome: {outcome:?}"
    ))
}

#[cfg(test)]
mod tests;
