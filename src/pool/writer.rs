//! The pool's single writer: one thread that owns the database's write
//! connection and commits changes in batches.
//!
//! Handlers verify the client's document and sign its lease in parallel,
//! then queue the prepared change here. The writer takes whatever has
//! queued up (up to [`MAX_BATCH`]), judges each change in order in one
//! transaction (each in a savepoint of its own, so a refusal undoes only
//! itself), and commits once: many leases share one flush to disk, and each
//! handler gets its answer only after that commit, so a client never holds a
//! lease the pool could lose in a crash. The admin's policy file is read
//! again, if it changed, before each batch.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use super::PoolError;
use super::db::PoolDb;
use super::policy::PolicyFile;
use super::rules::{Change, Lender, Outcome};

/// The most changes committed in one transaction.
pub const MAX_BATCH: usize = 64;
/// How long the writer waits for more changes to join a batch.
pub const GATHER: std::time::Duration = std::time::Duration::from_micros(1000);

type Job = (Change, oneshot::Sender<Result<Outcome, PoolError>>);

/// A handle to the writer thread; cloning it is cheap.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `db`, judging with `lender` under `policy`.
    pub fn start(
        lender: Arc<Lender>,
        mut db: PoolDb,
        mut policy: Option<PolicyFile>,
    ) -> Result<Writer, PoolError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("pool-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // Gather what arrives within GATHER of the first change:
                    // a moment's wait makes commits (and so flushes) fewer.
                    let mut batch = vec![first];
                    let deadline = std::time::Instant::now() + GATHER;
                    while batch.len() < MAX_BATCH {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    if let Some(file) = policy.as_mut() {
                        file.refresh_logged();
                    }
                    let rules = policy.as_ref().map(PolicyFile::policy);
                    let (changes, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    let committed = db.write_batch(
                        changes,
                        |tx, change| lender.commit(tx, change, rules),
                        |tx, error, now| lender.refused(tx, error, now),
                    );
                    match committed {
                        Ok(outcomes) => {
                            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                                // A handler that stopped waiting (its client
                                // hung up) is no error here: the lease stands,
                                // and a retry of the same request gets it.
                                let _ = reply.send(outcome);
                            }
                        }
                        Err(e) => {
                            tracing::error!(target: "nodelock::pool", error = %e, "a batch was not recorded");
                            let message = e.to_string();
                            for reply in replies {
                                let _ = reply.send(Err(PoolError::Unavailable(message.clone())));
                            }
                        }
                    }
                }
            })
            .map_err(|e| PoolError::Unavailable(format!("cannot start the pool's writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Queues a prepared change and waits for its commit.
    pub async fn commit(&self, change: Change) -> Result<Outcome, PoolError> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send((change, tx)).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> PoolError {
    PoolError::Unavailable("the pool's writer stopped".into())
}
