//! Refreshing a license: an active activation's license issued again, under
//! the same id, install key and binding, with the entitlement's terms as they
//! are now and a new issue time (and so a new `revalidate_by`). Proved like a
//! deactivation, by the install key recorded at activation; answered only
//! while the activation holds its seat, which is what makes revalidation end
//! a deactivated or reset license everywhere.

use super::Ledger;
use super::activate::{reset_licenses, still_granted};
use super::error::{LedgerError, StorageError};
use super::model::{Activation, ActivationState, AuditEntry, AuditEvent, Entitlement};
use super::proved::{answer_or_audit, by_install_key};
use super::storage::{Reads, WriteTx};
use crate::base::clock::{self, Timestamp};
use crate::base::random::Random;
use crate::documents::activation::{UnverifiedRefresh, VerifiedRefresh};
use crate::documents::license::{self, Binding, License, Requester, Terms};
use crate::format::{PrivateKey, PublicKey};
use crate::machine::fingerprint::{self, Evidence, Verdict};

/// A refresh answered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refreshed {
    /// Ledger activation id.
    pub activation_id: String,
    /// License id (unchanged by a refresh).
    pub license_id: String,
    /// The entitlement whose seat it holds.
    pub entitlement_id: String,
    /// When the refreshed license must be refreshed again, RFC 3339.
    pub revalidate_by: Option<String>,
    /// The license, armored.
    #[serde(skip)]
    pub license: String,
}

/// The terms an activation's license is issued again with (a refresh, or a
/// re-activation from the machine that holds it): the entitlement's as they
/// are now, under the license's own id and binding rules, never a new seat's.
pub(super) fn current_terms(
    reads: &dyn Reads,
    ent: &Entitlement,
    binding: &Binding,
    license_id: &str,
) -> Result<Terms, LedgerError> {
    Ok(Terms {
        features: ent.spec.features.clone(),
        customer: ent.spec.customer.clone(),
        entitlement: Some(ent.id.clone()),
        expires_at: ent.spec.expires_at,
        maintenance_until: ent.spec.maintenance_until,
        allow_clone_only: binding.allow_clone_only,
        match_policy: binding.match_policy,
        revalidate_days: ent.spec.revalidate_days,
        id: Some(license_id.to_owned()),
        revoked: reset_licenses(reads, ent)?,
        pool: ent.spec.pool.map(|pool| (ent.spec.seats, pool)),
        ..Terms::new(ent.spec.product.clone(), ent.spec.kind)
    })
}

fn refresh(
    tx: &mut dyn WriteTx,
    act: &Activation,
    request: &VerifiedRefresh,
    vendor: &PrivateKey,
    now: Timestamp,
    actor: &str,
    random: &dyn Random,
) -> Result<Refreshed, LedgerError> {
    if act.state != ActivationState::Active {
        return Err(LedgerError::AlreadyEnded {
            id: act.id.clone(),
            how: act.state,
        });
    }
    let unreadable = |what: &'static str| StorageError::Unreadable {
        what,
        value: act.id.clone(),
    };
    let ent = tx
        .reads()
        .entitlement(&act.entitlement_id)?
        .ok_or_else(|| unreadable("entitlement of activation"))?;
    still_granted(&ent, now)?;
    let issued = tx
        .reads()
        .issued_license(&act.id)?
        .ok_or_else(|| unreadable("license of activation"))?;
    // The vendor's own record of what it issued: read, not verified, so that
    // a refresh still works after the vendor rotated its signing key.
    let previous = License::read_unverified(&issued).ok_or_else(|| unreadable("license of activation"))?;
    let (bound, _) = previous
        .validate()
        .map_err(|_| unreadable("license of activation"))?;
    let binding = &previous.binding;
    // The binding is kept as it was. The request's fingerprint is only the
    // machine's claim: rebinding to it would let whoever holds the install
    // key move the license to another machine, or widen it to two, without a
    // transfer. A refresh from a machine that no longer matches is refused.
    let now_fp = request
        .fingerprint()
        .clone()
        .with_evidence(Evidence::LEGACY_REPORT);
    let report = fingerprint::compare(&bound, &now_fp, binding.match_policy, binding.allow_clone_only);
    if report.verdict != Verdict::Holds {
        return Err(LedgerError::NotThisMachine(report.reason));
    }
    let terms = current_terms(tx.reads(), &ent, binding, &act.license_id)?;
    let install_key = PublicKey::from_sec1(&act.install_key)?;
    let requester = Requester {
        install_key: &install_key,
        nonce: &request.payload().nonce,
    };
    let (lic, text) = license::issue(&terms, &bound, Some(requester), now, vendor, random)?;
    tx.replace_license(&act.id, text.as_bytes())?;
    let revalidate_by = lic.revalidate_by.map(clock::format);
    let detail = format!(
        "license {} refreshed; revalidate by {}",
        act.license_id,
        revalidate_by.as_deref().unwrap_or("never")
    );
    tx.append_audit(&AuditEntry {
        at: now,
        event: AuditEvent::Refreshed,
        entitlement_id: Some(&act.entitlement_id),
        activation_id: Some(&act.id),
        actor,
        detail: &detail,
    })?;
    Ok(Refreshed {
        activation_id: act.id.clone(),
        license_id: act.license_id.clone(),
        entitlement_id: act.entitlement_id.clone(),
        revalidate_by,
        license: text,
    })
}

/// Answers one refresh in `tx`, or audits its refusal there; `Err` only when
/// the storage failed. An unknown license or a signature that does not verify
/// is anyone's request and leaves no audit row.
pub(super) fn refresh_or_refuse(
    tx: &mut dyn WriteTx,
    pending: UnverifiedRefresh,
    vendor: &PrivateKey,
    now: Timestamp,
    actor: &str,
    random: &dyn Random,
) -> Result<Result<Refreshed, LedgerError>, LedgerError> {
    let license_id = pending.claimed_license_id().to_owned();
    let (act, request) = match by_install_key(tx.reads(), &license_id, |key| pending.verify(key)) {
        Ok(found) => found,
        Err(LedgerError::Database(e)) => return Err(LedgerError::Database(e)),
        Err(refusal) => return Ok(Err(refusal)),
    };
    answer_or_audit(tx, &act, "refresh request", now, actor, |tx| {
        refresh(tx, &act, &request, vendor, now, actor, random)
    })
}

impl Ledger {
    /// Answers a refresh request: verifies it against the install key recorded
    /// at activation and, while the activation holds its seat and the
    /// entitlement runs, issues the license again with today's terms. Takes
    /// no seat. A refusal of a verified request is audited.
    pub fn answer_refresh(
        &mut self,
        pending: UnverifiedRefresh,
        vendor: &PrivateKey,
        now: Timestamp,
        actor: &str,
    ) -> Result<Refreshed, LedgerError> {
        let random = self.random.clone();
        let mut tx = self.backend.begin()?;
        let outcome = refresh_or_refuse(tx.as_mut(), pending, vendor, now, actor, &*random)?;
        tx.commit()?;
        outcome
    }
}
