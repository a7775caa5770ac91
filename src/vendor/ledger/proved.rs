//! Requests proved by an activation's install key (deactivations, refreshes):
//! the activation is found by the license id the request claims, the request
//! is verified with the key recorded for it, and only then does a refusal
//! earn a row in the audit.

use super::error::LedgerError;
use super::model::{Activation, AuditEntry, AuditEvent};
use super::storage::{Reads, WriteTx};
use crate::base::clock::Timestamp;
use crate::documents::activation::ActivationError;
use crate::format::PublicKey;

/// The activation that issued `license_id`, and what `verify` makes of the
/// request with that activation's install key. A signature by another key
/// is [`LedgerError::WrongInstallKey`].
pub(super) fn by_install_key<T>(
    reads: &dyn Reads,
    license_id: &str,
    verify: impl FnOnce(&PublicKey) -> Result<T, ActivationError>,
) -> Result<(Activation, T), LedgerError> {
    let act = reads
        .activation_by_license(license_id)?
        .ok_or_else(|| LedgerError::UnknownLicense(license_id.to_owned()))?;
    let install_key = PublicKey::from_sec1(&act.install_key)?;
    let verified = verify(&install_key).map_err(|e| match e {
        ActivationError::Envelope(_) => LedgerError::WrongInstallKey(license_id.to_owned()),
        other => LedgerError::Document(other),
    })?;
    Ok((act, verified))
}

/// Answers a request proved by `act`'s install key inside `tx`, auditing a
/// refusal against that activation as "`what`: reason". The outer `Err` is
/// a storage failure only; an unproved request never gets here, so it leaves
/// no row (the server counts it).
pub(super) fn answer_or_audit<T>(
    tx: &mut dyn WriteTx,
    act: &Activation,
    what: &str,
    now: Timestamp,
    actor: &str,
    answer: impl FnOnce(&mut dyn WriteTx) -> Result<T, LedgerError>,
) -> Result<Result<T, LedgerError>, LedgerError> {
    match answer(tx) {
        Ok(done) => Ok(Ok(done)),
        Err(LedgerError::Database(e)) => Err(LedgerError::Database(e)),
        Err(refusal) => {
            tx.append_audit(&AuditEntry {
                at: now,
                event: AuditEvent::Refused,
                entitlement_id: Some(&act.entitlement_id),
                activation_id: Some(&act.id),
                actor,
                detail: &format!("{what}: {refusal}"),
            })?;
            Ok(Err(refusal))
        }
    }
}
