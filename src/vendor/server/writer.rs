//! The ledger's single writer: one thread that owns the write connection and
//! commits answers in batches.
//!
//! Handlers verify and sign in parallel (with read connections), then queue
//! the prepared answer here. The writer takes whatever has queued up (up to
//! [`MAX_BATCH`]) and commits it in one transaction, in the order it arrived,
//! so many answers share one flush to disk, and each handler gets its answer
//! only after that commit: a client never holds a license the ledger could lose.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use crate::base::clock::Clock;
use crate::documents::activation::{UnverifiedDeactivation, UnverifiedRefresh};
use crate::format::PrivateKey;
use crate::vendor::ledger::{
    Answered, Change, Deactivated, Ledger, LedgerError, Outcome, Prepared, Refreshed,
};

/// The most answers committed in one transaction.
pub const MAX_BATCH: usize = 64;
/// How long the writer waits for more answers to join a batch.
pub const GATHER: std::time::Duration = std::time::Duration::from_micros(1000);

/// Where a change's outcome goes.
enum Reply {
    Activated(oneshot::Sender<Result<Answered, LedgerError>>),
    Deactivated(oneshot::Sender<Result<Deactivated, LedgerError>>),
    Refreshed(oneshot::Sender<Result<Refreshed, LedgerError>>),
}

impl Reply {
    fn send(self, outcome: Outcome) {
        // A handler that stopped waiting (its client hung up) is no error here.
        match (self, outcome) {
            (Reply::Activated(tx), Outcome::Activated(r)) => drop(tx.send(r)),
            (Reply::Deactivated(tx), Outcome::Deactivated(r)) => drop(tx.send(r)),
            (Reply::Refreshed(tx), Outcome::Refreshed(r)) => drop(tx.send(r)),
            (reply, _) => reply.fail("the ledger answered a change with the wrong kind of outcome"),
        }
    }

    fn fail(self, message: &str) {
        let err = || LedgerError::Unavailable(message.to_owned());
        match self {
            Reply::Activated(tx) => drop(tx.send(Err(err()))),
            Reply::Deactivated(tx) => drop(tx.send(Err(err()))),
            Reply::Refreshed(tx) => drop(tx.send(Err(err()))),
        }
    }
}

/// A handle to the writer thread; cloning it is cheap.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<(Change, Reply)>,
}

impl Writer {
    /// Starts the writer thread on `ledger`; the batch's time comes from `clock`.
    pub fn start(
        mut ledger: Ledger,
        vendor: Arc<PrivateKey>,
        clock: Arc<dyn Clock + Send + Sync>,
    ) -> Result<Writer, LedgerError> {
        let (jobs, rx) = mpsc::channel::<(Change, Reply)>();
        thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // Gather what arrives within GATHER of the first job: a
                    // moment's wait makes batches (and so flushes) fewer.
                    let mut batch = vec![first];
                    let deadline = std::time::Instant::now() + GATHER;
                    while batch.len() < MAX_BATCH {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let (changes, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    match ledger.commit_batch(changes, &vendor, clock.now()) {
                        Ok(outcomes) => {
                            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                                reply.send(outcome);
                            }
                        }
                        Err(e) => {
                            let message = e.to_string();
                            for reply in replies {
                                reply.fail(&message);
                            }
                        }
                    }
                }
            })
            .map_err(|e| LedgerError::Unavailable(format!("cannot start the ledger writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Queues a prepared activation and waits for its commit.
    pub async fn activate(&self, prepared: Prepared) -> Result<Answered, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((Change::Activate(Box::new(prepared)), Reply::Activated(tx)))
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Queues a deactivation and waits for its commit.
    pub async fn deactivate(
        &self,
        request: UnverifiedDeactivation,
        actor: String,
    ) -> Result<Deactivated, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((Change::Deactivate(request, actor), Reply::Deactivated(tx)))
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Queues a refresh and waits for its commit.
    pub async fn refresh(&self, request: UnverifiedRefresh, actor: String) -> Result<Refreshed, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((Change::Refresh(request, actor), Reply::Refreshed(tx)))
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

fn closed() -> LedgerError {
    LedgerError::Unavailable("the ledger writer stopped".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::clock::FixedClock;
    use crate::vendor::ledger::Method;
    use crate::vendor::ledger::tests::{NOW, deactivation, request, request_and_install_key, spec};

    #[test]
    fn a_deactivation_queued_before_an_activation_frees_the_seat_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
        let vendor = Arc::new(PrivateKey::generate().unwrap());
        let (_, key) = ledger.create_entitlement(&spec(1), NOW, "t").unwrap();
        let (first, install) = request_and_install_key(&key, 1);
        let held = ledger
            .answer_activation(&first, &vendor, Method::Offline, NOW, "t")
            .unwrap();
        let next = ledger
            .prepare_activation(request(&key, 2), &vendor, Method::Online, "t", NOW)
            .unwrap();
        let writer = Writer::start(ledger, vendor, Arc::new(FixedClock(NOW))).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        // join! polls in order, so the deactivation is queued first and both
        // land in one batch (well inside GATHER).
        let (freed, taken) = runtime.block_on(async {
            tokio::join!(
                writer.deactivate(deactivation(&held.license_id, &install), "t".into()),
                writer.activate(next)
            )
        });
        assert!(freed.is_ok(), "{freed:?}");
        assert!(taken.is_ok(), "{taken:?}");
    }
}
