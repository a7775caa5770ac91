//! Who gets a seat of a floating pool: checkout, renewal, check-in, return
//! and removal, each judged in one transaction on the pool database, and the
//! status view.

use std::collections::BTreeMap;

use serde::Serialize;

use super::PoolError;
use super::db::{LeaseRow, PoolDb, Tx};
use super::policy::{Asker, PolicyFile};
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

/// The pool: the licenses served and their database.
pub struct Pool {
    served: BTreeMap<String, Served>,
    db: PoolDb,
    random: std::sync::Arc<dyn Random>,
    policy: Option<PolicyFile>,
}

fn new_lease_id(random: &dyn Random) -> Result<String, PoolError> {
    let bytes = random::bytes::<10>(random).map_err(crate::format::KeyError::from)?;
    Ok(format!("S-{}", typeable::base32(&bytes, 16)))
}

impl Pool {
    /// A pool serving `served` (one pool license per product) from `db`.
    pub fn new(served: Vec<Served>, db: PoolDb, random: std::sync::Arc<dyn Random>) -> Pool {
        let served = served
            .into_iter()
            .map(|s| (s.license.license().product.clone(), s))
            .collect();
        Pool {
            served,
            db,
            random,
            policy: None,
        }
    }

    /// This pool with the admin's policy file in force.
    pub fn with_policy(mut self, policy: PolicyFile) -> Pool {
        self.policy = Some(policy);
        self
    }

    /// The products served.
    pub fn products(&self) -> impl Iterator<Item = &Served> {
        self.served.values()
    }

    /// Refuses to grant when this server's clock is behind a time it
    /// already granted at; otherwise remembers `now`.
    fn clock_ok(tx: &Tx<'_>, now: Timestamp) -> Result<(), PoolError> {
        if let Some(w) = tx.watermark()?
            && now < w.saturating_sub(POOL_CLOCK_TOLERANCE)
        {
            return Err(PoolError::ClockBehind { now, watermark: w });
        }
        tx.observe(now)
    }

    /// Grants a seat to a verified lease request, or says why not (every
    /// seat held: by whom, and when the next borrow comes back).
    pub fn checkout(
        &mut self,
        request: &VerifiedLeaseRequest,
        address: Option<std::net::IpAddr>,
        now: Timestamp,
    ) -> Result<Granted, PoolError> {
        let req = request.request();
        // The admin's edits apply at the next checkout, without a restart.
        if let Some(file) = &mut self.policy
            && let Some(e) = file.refresh()
        {
            tracing::warn!(target: "nodelock::pool", error = %e, "policy file");
        }
        let policy = self.policy.as_ref().map(|f| f.policy().clone());
        let served = self
            .served
            .get(&req.product)
            .ok_or_else(|| PoolError::NotServed(req.product.clone()))?;
        let pool = served.license.license();
        if pool.expires_at.is_some_and(|end| now >= end) {
            return Err(PoolError::PoolExpired(req.product.clone()));
        }
        let terms = served.terms();
        let seats = served.seats();
        let random = self.random.clone();
        let product = req.product.clone();
        let outcome = self.db.write(|tx| {
            Self::clock_ok(tx, now)?;
            // The same request again (a retry after a lost answer): the same lease.
            if let Some(id) = tx.lease_for_request(&req.nonce)? {
                return granted_again(tx, served, &id);
            }
            tx.lapse(&product, now)?;
            let (in_use, borrowed) = tx.count_held(&product, now)?;
            if in_use >= seats as usize {
                // Who holds them, for the sentence (read only when full).
                let held = tx.held(&product, now)?;
                let mut holders: Vec<String> = held.iter().take(MAX_NAMED).map(holder_label).collect();
                if held.len() > MAX_NAMED {
                    holders.push(format!("and {} more", held.len() - MAX_NAMED));
                }
                // Logged after the rollback, below.
                return Err(PoolError::AllSeatsInUse {
                    product: product.clone(),
                    seats,
                    holders,
                    next_free: held
                        .iter()
                        .filter(|l| l.mode == "borrowed")
                        .map(|l| l.until)
                        .min(),
                });
            }
            if let Some(policy) = &policy {
                let held_by_user = match &req.user {
                    Some(user) => tx.count_held_by(&product, user, now)?,
                    None => 0,
                };
                let asker = Asker {
                    user: req.user.as_deref(),
                    host: req.host.as_deref(),
                    address,
                };
                let days = (req.mode == LeaseMode::Borrowed).then_some(req.days);
                policy
                    .admits(&asker, in_use, held_by_user, seats, days)
                    .map_err(PoolError::PolicyDenied)?;
            }
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
                    if borrowed >= terms.borrow_seats as usize {
                        return Err(PoolError::BorrowRefused(format!(
                            "at most {} seat(s) may be out on borrow at once, and all are",
                            terms.borrow_seats
                        )));
                    }
                    now.saturating_add(i64::from(req.days).saturating_mul(DAY))
                }
            };
            let until = pool.expires_at.map_or(until, |end| until.min(end));
            let lease = Lease {
                v: crate::documents::activation::VERSION,
                id: new_lease_id(&*random)?,
                pool_license: pool.id.clone(),
                product: product.clone(),
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
                product: product.clone(),
                mode: req.mode.as_str().to_owned(),
                workstation_id: request.fingerprint().workstation_id().to_string(),
                user: req.user.clone(),
                host: req.host.clone(),
                since: now,
                until,
                holder_key: req.holder_key.clone(),
            };
            tx.insert(&row, &req.nonce, now, &text)?;
            let event = match req.mode {
                LeaseMode::Online => "granted",
                LeaseMode::Borrowed => "borrowed",
            };
            tx.log(
                now,
                &product,
                event,
                Some(&lease.id),
                in_use + 1,
                &holder_label(&row),
            )?;
            Ok(Granted {
                lease_id: lease.id,
                expires_at: until,
                mode: req.mode.as_str(),
                lease: text,
                pool_license: served.armored.clone(),
            })
        });
        // A refusal that was logged must still be kept: log denials apart.
        if let Err(PoolError::AllSeatsInUse { .. }) = &outcome {
            let in_use = seats as usize;
            self.db
                .write(|tx| tx.log(now, &product, "denied", None, in_use, "all seats in use"))?;
        }
        outcome
    }

    /// Renews, checks in or returns a lease, for its holder only.
    pub fn update(&mut self, update: UnverifiedLeaseUpdate, now: Timestamp) -> Result<Updated, PoolError> {
        let id = update.claimed_lease_id().to_owned();
        let (row, ended) = self
            .db
            .read()
            .lease(&id)?
            .ok_or_else(|| PoolError::UnknownLease(id.clone()))?;
        let holder =
            PublicKey::from_sec1(&row.holder_key).map_err(|_| PoolError::UnknownLease(id.clone()))?;
        let update = update.verify(&holder).map_err(|e| match e {
            crate::documents::activation::ActivationError::Envelope(_) => PoolError::WrongHolder(id.clone()),
            other => PoolError::Document(other),
        })?;
        let served = self
            .served
            .get(&row.product)
            .ok_or_else(|| PoolError::NotServed(row.product.clone()))?;
        let terms = served.terms();
        let pool_end = served.license.license().expires_at;
        self.db.write(|tx| {
            if !tx.first_time(&update.nonce, &id, now)? {
                return Err(PoolError::Replayed(id.clone()));
            }
            match update.op {
                LeaseOp::Renew => {
                    Self::clock_ok(tx, now)?;
                    if let Some(how) = ended {
                        return Err(PoolError::LeaseEnded { id: id.clone(), how });
                    }
                    if row.mode != "online" {
                        return Err(PoolError::BorrowRefused(
                            "a borrow runs to its end and is not renewed".into(),
                        ));
                    }
                    if row.until <= now {
                        tx.lapse(&row.product, now)?;
                        return Err(PoolError::LeaseEnded {
                            id: id.clone(),
                            how: "lapsed".into(),
                        });
                    }
                    let until = now.saturating_add(i64::from(terms.lease_minutes) * 60);
                    let until = pool_end.map_or(until, |end| until.min(end));
                    let previous = tx
                        .lease_document(&id)?
                        .ok_or_else(|| PoolError::UnknownLease(id.clone()))?;
                    let mut lease = lease_payload(&previous)?;
                    lease.issued_at = now;
                    lease.expires_at = until;
                    lease.request_nonce = update.nonce.clone();
                    let text = lease::sign_lease(&lease, &served.install)?;
                    tx.renew(&id, now, until, &text)?;
                    let (in_use, _) = tx.count_held(&row.product, now)?;
                    tx.log(now, &row.product, "renewed", Some(&id), in_use, "")?;
                    Ok(Updated::Renewed(Granted {
                        lease_id: id.clone(),
                        expires_at: until,
                        mode: "online",
                        lease: text,
                        pool_license: served.armored.clone(),
                    }))
                }
                LeaseOp::Checkin | LeaseOp::Return => {
                    let how = if update.op == LeaseOp::Return {
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
                        lease_id: id.clone(),
                        already: !freed,
                    })
                }
            }
        })
    }

    /// Frees a stuck seat (the admin's `pool remove`), logged.
    pub fn remove(&mut self, id: &str, now: Timestamp) -> Result<bool, PoolError> {
        let (row, _) = self
            .db
            .read()
            .lease(id)?
            .ok_or_else(|| PoolError::UnknownLease(id.to_owned()))?;
        self.db.write(|tx| {
            let freed = tx.end(id, "removed", now)?;
            if freed {
                let (in_use, _) = tx.count_held(&row.product, now)?;
                tx.log(now, &row.product, "removed", Some(id), in_use, "by the admin")?;
            }
            Ok(freed)
        })
    }

    /// Seats, holders and borrows of every product served.
    pub fn status(&self, now: Timestamp) -> Result<Status, PoolError> {
        let mut products = Vec::new();
        for served in self.served.values() {
            let lic = served.license.license();
            let leases = self.db.read().held(&lic.product, now)?;
            let in_use = u32::try_from(leases.len()).unwrap_or(u32::MAX);
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

    /// The database, for reports.
    pub fn db(&self) -> &PoolDb {
        &self.db
    }
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

fn granted_again(tx: &Tx<'_>, served: &Served, id: &str) -> Result<Granted, PoolError> {
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
    })
}
