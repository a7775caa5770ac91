//! The ledger's single writer: one thread that owns the write connection and
//! commits activations in batches.
//!
//! Handlers verify and sign in parallel (on tokio's blocking pool, with read
//! connections), then queue the prepared answer here. The writer takes
//! whatever has queued up (up to [`MAX_BATCH`]) and commits it in one
//! transaction, so many answers share one flush to disk, and each handler
//! gets its answer only after that commit: a client never holds a license the
//! ledger could lose.

use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use crate::base::clock::{Clock, SystemClock};
use crate::documents::activation::PendingDeactivation;
use crate::format::PrivateKey;
use crate::vendor::ledger::{Answered, Deactivated, Ledger, LedgerError, Prepared};

/// The most answers committed in one transaction.
pub const MAX_BATCH: usize = 64;
/// How long the writer waits for more answers to join a batch.
pub const GATHER: std::time::Duration = std::time::Duration::from_micros(GATHER_MICROS);
const GATHER_MICROS: u64 = 1000;

enum Job {
    Activate(Box<Prepared>, oneshot::Sender<Result<Answered, LedgerError>>),
    Deactivate(
        PendingDeactivation,
        String,
        oneshot::Sender<Result<Deactivated, LedgerError>>,
    ),
}

/// A handle to the writer thread; cloning it is cheap.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `ledger`.
    pub fn start(mut ledger: Ledger, vendor: std::sync::Arc<PrivateKey>) -> Writer {
        let (jobs, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // Gather what arrives within GATHER of the first job: a
                    // moment's wait makes batches (and so flushes) fewer.
                    let mut jobs = vec![first];
                    let deadline = std::time::Instant::now() + GATHER;
                    while jobs.len() < MAX_BATCH {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(job) => jobs.push(job),
                            Err(_) => break,
                        }
                    }
                    let mut activations = Vec::new();
                    let mut others = Vec::new();
                    for job in jobs {
                        match job {
                            Job::Activate(p, reply) => activations.push((*p, reply)),
                            other => others.push(other),
                        }
                    }
                    let now = SystemClock.now();
                    if !activations.is_empty() {
                        let (prepared, replies): (Vec<_>, Vec<_>) = activations.into_iter().unzip();
                        match ledger.commit_activations(prepared, &vendor, now) {
                            Ok(results) => {
                                for (reply, result) in replies.into_iter().zip(results) {
                                    let _ = reply.send(result);
                                }
                            }
                            Err(e) => {
                                let message = e.to_string();
                                for reply in replies {
                                    let _ = reply.send(Err(LedgerError::Unavailable(message.clone())));
                                }
                            }
                        }
                    }
                    for job in others {
                        if let Job::Deactivate(pending, actor, reply) = job {
                            let _ = reply.send(ledger.answer_deactivation(pending, &vendor, now, &actor));
                        }
                    }
                }
            })
            .ok();
        Writer { jobs }
    }

    /// Queues a prepared activation and waits for its commit.
    pub async fn activate(&self, prepared: Prepared) -> Result<Answered, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Activate(Box::new(prepared), tx))
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Queues a deactivation and waits for its commit.
    pub async fn deactivate(
        &self,
        pending: PendingDeactivation,
        actor: String,
    ) -> Result<Deactivated, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Deactivate(pending, actor, tx))
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

fn closed() -> LedgerError {
    LedgerError::Unavailable("the ledger writer stopped".into())
}
