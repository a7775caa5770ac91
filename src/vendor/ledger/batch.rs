//! Several changes committed in one write transaction, in the order they
//! arrived: what a server's single writer commits, one disk flush for many
//! answers.

use super::activate::{Answered, Prepared, commit_or_refuse};
use super::end::{Deactivated, deactivate_or_refuse};
use super::refresh::{Refreshed, refresh_or_refuse};
use super::{Ledger, LedgerError};
use crate::base::clock::Timestamp;
use crate::documents::activation::{UnverifiedDeactivation, UnverifiedRefresh};
use crate::format::PrivateKey;

/// One change of a batch.
pub enum Change {
    /// An activation prepared with [`Ledger::prepare_activation`].
    Activate(Box<Prepared>),
    /// A deactivation request, with who sent it.
    Deactivate(UnverifiedDeactivation, String),
    /// A refresh request, with who sent it.
    Refresh(UnverifiedRefresh, String),
}

/// What became of one change.
#[derive(Debug)]
pub enum Outcome {
    /// The activation's answer or refusal.
    Activated(Result<Answered, LedgerError>),
    /// The deactivation's receipt or refusal.
    Deactivated(Result<Deactivated, LedgerError>),
    /// The refreshed license or the refusal.
    Refreshed(Result<Refreshed, LedgerError>),
}

impl Ledger {
    /// Judges each change on the ledger as the changes before it left it, in
    /// arrival order (a seat given back can be taken by the activation that
    /// came after it in the same batch), and commits them all at once.
    /// `Err` when the storage failed: then nothing of the batch is kept.
    pub fn commit_batch(
        &mut self,
        batch: Vec<Change>,
        vendor: &PrivateKey,
        now: Timestamp,
    ) -> Result<Vec<Outcome>, LedgerError> {
        let random = self.random.clone();
        let mut tx = self.backend.begin()?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for change in batch {
            outcomes.push(match change {
                Change::Activate(prepared) => {
                    Outcome::Activated(commit_or_refuse(tx.as_mut(), &prepared, vendor, now, &*random)?)
                }
                Change::Deactivate(request, actor) => {
                    Outcome::Deactivated(deactivate_or_refuse(tx.as_mut(), request, vendor, now, &actor)?)
                }
                Change::Refresh(request, actor) => Outcome::Refreshed(refresh_or_refuse(
                    tx.as_mut(),
                    request,
                    vendor,
                    now,
                    &actor,
                    &*random,
                )?),
            });
        }
        tx.commit()?;
        Ok(outcomes)
    }
}
