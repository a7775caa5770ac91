//! The rules that end an activation: a deactivation proved by the install
//! key (a transfer), and a support reset without proof (limited per year).

use super::Ledger;
use super::error::{LedgerError, StorageError};
use super::model::{Activation, ActivationState, AuditEntry, AuditEvent, Ending};
use super::proved::{answer_or_audit, by_install_key};
use super::storage::WriteTx;
use crate::base::clock::{DAY, Timestamp};
use crate::documents::activation::{self, DeactivationReceipt, UnverifiedDeactivation, VerifiedDeactivation};
use crate::format::PrivateKey;

/// A deactivation answered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deactivated {
    /// Ledger activation id.
    pub activation_id: String,
    /// License id.
    pub license_id: String,
    /// True when this deactivation had been answered before.
    pub replayed: bool,
    /// The receipt, armored.
    #[serde(skip)]
    pub receipt: String,
    /// The receipt's content.
    pub details: DeactivationReceipt,
}

/// Ends a verified deactivation's activation inside `tx`.
fn deactivate(
    tx: &mut dyn WriteTx,
    act: &Activation,
    request: VerifiedDeactivation,
    vendor: &PrivateKey,
    now: Timestamp,
    actor: &str,
) -> Result<Deactivated, LedgerError> {
    let license_id = act.license_id.clone();
    match act.state {
        ActivationState::Active => {}
        ActivationState::Deactivated => {
            let receipt = tx
                .reads()
                .receipt(&act.id)?
                .ok_or_else(|| StorageError::Unreadable {
                    what: "receipt of deactivated activation",
                    value: act.id.clone(),
                })?;
            let text = String::from_utf8_lossy(&receipt).into_owned();
            let ring = [vendor.public()].into_iter().collect();
            let details = activation::open_receipt(text.as_bytes(), &ring)?.into_receipt();
            tx.append_audit(&AuditEntry {
                at: now,
                event: AuditEvent::DeactivationReplayed,
                entitlement_id: Some(&act.entitlement_id),
                activation_id: Some(&act.id),
                actor,
                detail: "nothing more freed",
            })?;
            return Ok(Deactivated {
                activation_id: act.id.clone(),
                license_id,
                replayed: true,
                receipt: text,
                details,
            });
        }
        how @ ActivationState::Reset => {
            return Err(LedgerError::AlreadyEnded {
                id: act.id.clone(),
                how,
            });
        }
    }
    let ent = tx
        .reads()
        .entitlement(&act.entitlement_id)?
        .ok_or_else(|| StorageError::Unreadable {
            what: "entitlement of activation",
            value: act.entitlement_id.clone(),
        })?;
    let transfers_used = ent.transfers_used.saturating_add(1);
    let max_transfers = ent.spec.max_transfers;
    let details = DeactivationReceipt {
        v: activation::VERSION,
        license_id: license_id.clone(),
        activation_id: act.id.clone(),
        entitlement: act.entitlement_id.clone(),
        deactivated_at: now,
        request_nonce: request.payload().nonce.clone(),
        transfers_used,
        max_transfers,
    };
    let text = activation::make_receipt(&details, vendor)?;
    tx.end_activation(
        act,
        &Ending::Deactivated {
            receipt: text.as_bytes(),
        },
        now,
    )?;
    let detail = format!("license {license_id}; seat freed; transfer {transfers_used} of {max_transfers}");
    tx.append_audit(&AuditEntry {
        at: now,
        event: AuditEvent::Deactivated,
        entitlement_id: Some(&act.entitlement_id),
        activation_id: Some(&act.id),
        actor,
        detail: &detail,
    })?;
    Ok(Deactivated {
        activation_id: act.id.clone(),
        license_id,
        replayed: false,
        receipt: text,
        details,
    })
}

/// Answers one deactivation in `tx`, or audits its refusal there; `Err` only
/// when the storage failed.
pub(super) fn deactivate_or_refuse(
    tx: &mut dyn WriteTx,
    pending: UnverifiedDeactivation,
    vendor: &PrivateKey,
    now: Timestamp,
    actor: &str,
) -> Result<Result<Deactivated, LedgerError>, LedgerError> {
    // An unknown license or a signature that does not verify is anyone's
    // request: refused without a row in the permanent audit (the server
    // counts it; its request log names it).
    let license_id = pending.claimed_license_id().to_owned();
    let (act, request) = match by_install_key(tx.reads(), &license_id, |key| pending.verify(key)) {
        Ok(found) => found,
        Err(LedgerError::Database(e)) => return Err(LedgerError::Database(e)),
        Err(refusal) => return Ok(Err(refusal)),
    };
    answer_or_audit(tx, &act, "deactivation request", now, actor, |tx| {
        deactivate(tx, &act, request, vendor, now, actor)
    })
}

impl Ledger {
    /// Answers a deactivation request: verifies it against the install key
    /// recorded at activation, frees the seat, counts a transfer, and signs a
    /// receipt. Answering it again returns the same receipt and frees nothing.
    /// A refusal is audited and changes nothing else.
    pub fn answer_deactivation(
        &mut self,
        pending: UnverifiedDeactivation,
        vendor: &PrivateKey,
        now: Timestamp,
        actor: &str,
    ) -> Result<Deactivated, LedgerError> {
        let mut tx = self.backend.begin()?;
        let outcome = deactivate_or_refuse(tx.as_mut(), pending, vendor, now, actor)?;
        tx.commit()?;
        outcome
    }

    /// Frees a seat without proof (the machine died). At most the entitlement's
    /// resets per rolling year unless `force`; always audited with its reason.
    /// Returns the id of the license it revokes.
    pub fn reset(
        &mut self,
        activation_id: &str,
        reason: &str,
        force: bool,
        now: Timestamp,
        actor: &str,
    ) -> Result<String, LedgerError> {
        let mut tx = self.backend.begin()?;
        let act = tx
            .reads()
            .activation(activation_id)?
            .ok_or_else(|| LedgerError::UnknownActivation(activation_id.to_owned()))?;
        if act.state != ActivationState::Active {
            return Err(LedgerError::AlreadyEnded {
                id: act.id,
                how: act.state,
            });
        }
        let ent = tx
            .reads()
            .entitlement(&act.entitlement_id)?
            .ok_or_else(|| StorageError::Unreadable {
                what: "entitlement of activation",
                value: act.entitlement_id.clone(),
            })?;
        let used = tx.reads().resets_since(&ent.id, now.saturating_sub(365 * DAY))?;
        let max = ent.spec.max_resets_per_year;
        if used >= max && !force {
            let detail =
                format!("reset of {activation_id}: reset limit {max} reached; reason given: {reason}");
            tx.append_audit(&AuditEntry {
                at: now,
                event: AuditEvent::Refused,
                entitlement_id: Some(&ent.id),
                activation_id: None,
                actor,
                detail: &detail,
            })?;
            tx.commit()?;
            return Err(LedgerError::ResetLimit { used, max });
        }
        tx.end_activation(&act, &Ending::Reset { reason }, now)?;
        let forced = if force {
            " (forced past the reset limit)"
        } else {
            ""
        };
        let detail = format!("license {} revoked; reason: {reason}{forced}", act.license_id);
        tx.append_audit(&AuditEntry {
            at: now,
            event: AuditEvent::Reset,
            entitlement_id: Some(&ent.id),
            activation_id: Some(&act.id),
            actor,
            detail: &detail,
        })?;
        tx.commit()?;
        Ok(act.license_id)
    }
}
