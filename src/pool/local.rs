//! A pool judged one change at a time on the caller's thread: the CLI's own
//! commands (`pool import-return`), tests and benchmarks. A server splits
//! it into its parts instead (lender, database, policy; see `http.rs`).

use super::PoolError;
use super::db::PoolDb;
use super::policy::PolicyFile;
use super::rules::{Change, Granted, Lender, Outcome, Served, Status, Updated, unexpected};
use crate::base::clock::Timestamp;
use crate::base::random::Random;
use crate::documents::lease::{UnverifiedLeaseUpdate, VerifiedLeaseRequest};

/// A pool with its database and policy.
pub struct Pool {
    lender: Lender,
    db: PoolDb,
    policy: Option<PolicyFile>,
}

impl Pool {
    /// A pool serving `served` (one pool license per product) from `db`.
    pub fn new(served: Vec<Served>, db: PoolDb, random: std::sync::Arc<dyn Random>) -> Pool {
        Pool {
            lender: Lender::new(served, random),
            db,
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
        self.lender.products()
    }

    /// Its parts: the lender, the database, the policy file.
    pub fn into_parts(self) -> (Lender, PoolDb, Option<PolicyFile>) {
        (self.lender, self.db, self.policy)
    }

    fn apply(&mut self, change: Change) -> Result<Outcome, PoolError> {
        let policy = self.policy.as_mut().map(|file| {
            file.refresh_logged();
            &*file
        });
        let lender = &self.lender;
        let mut outcomes = self.db.write_batch(
            vec![change],
            |tx, change| lender.commit(tx, change, policy.map(PolicyFile::policy)),
            |tx, error, now| lender.refused(tx, error, now),
        )?;
        outcomes
            .pop()
            .unwrap_or_else(|| Err(PoolError::Unavailable("no outcome".into())))
    }

    /// Grants a seat to a verified lease request, or says why not (every
    /// seat held: by whom, and when the next borrow comes back).
    pub fn checkout(
        &mut self,
        request: &VerifiedLeaseRequest,
        address: Option<std::net::IpAddr>,
        now: Timestamp,
    ) -> Result<Granted, PoolError> {
        let prepared = self.lender.prepare_checkout(request, address, now)?;
        match self.apply(Change::Checkout(Box::new(prepared)))? {
            Outcome::Granted(g) => Ok(g),
            other => Err(unexpected(&other)),
        }
    }

    /// Renews, checks in or returns a lease, for its holder only.
    pub fn update(&mut self, update: UnverifiedLeaseUpdate, now: Timestamp) -> Result<Updated, PoolError> {
        let prepared = self.lender.prepare_update(&self.db.read(), update, now)?;
        match self.apply(Change::Update(Box::new(prepared)))? {
            Outcome::Updated(u) => Ok(u),
            other => Err(unexpected(&other)),
        }
    }

    /// Frees a stuck seat (the admin's `pool remove`), logged.
    pub fn remove(&mut self, id: &str, now: Timestamp) -> Result<bool, PoolError> {
        match self.apply(Change::Remove {
            id: id.to_owned(),
            now,
        })? {
            Outcome::Removed(freed) => Ok(freed),
            other => Err(unexpected(&other)),
        }
    }

    /// Seats, holders and borrows of every product served.
    pub fn status(&self, now: Timestamp) -> Result<Status, PoolError> {
        self.lender.status(&self.db.read(), now)
    }

    /// The database, for reports.
    pub fn db(&self) -> &PoolDb {
        &self.db
    }
}
