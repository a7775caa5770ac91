//! Activation is idempotent per machine and entitlement.
//!
//! An installer that runs twice, a second store on the same workstation, or
//! two request files from one machine must not take two seats. A request
//! whose fingerprint matches an activation of the same entitlement that
//! still holds its seat, by that license's own match policy (the rule every
//! check applies, so a replaced Wi-Fi card is still the same machine), is
//! answered with that activation's license issued again: same id, same
//! binding, today's terms, the new request's install key. The activation
//! moves to that key; no seat is taken.
//!
//! The binding is kept, as for a refresh: the request's fingerprint is only
//! the machine's claim, and rebinding to it would let a chain of requests
//! walk a seat to another machine.
//!
//! A binding with no hardware anchor (only the OS installation id, which
//! every copy of a VM shares) is the same machine only for a request signed
//! by the install key that holds the seat: a re-run on the same store. A
//! copied VM with a store of its own takes its own seat.

use sha2::{Digest, Sha256};

use super::error::{LedgerError, StorageError};
use super::model::{Activation, AuditEntry, AuditEvent, Entitlement, MovedActivation};
use super::refresh::current_terms;
use super::storage::WriteTx;
use crate::base::clock::Timestamp;
use crate::base::random::Random;
use crate::documents::activation::VerifiedRequest;
use crate::documents::license::{self, License, Requester};
use crate::format::PrivateKey;
use crate::machine::fingerprint::{self, ComponentClass, Evidence, Fingerprint, Identity, Verdict};

/// The hardware digests of a fingerprint: what finds a held seat again.
pub(super) fn anchors_of(fp: &Fingerprint) -> Vec<[u8; 32]> {
    fp.components()
        .filter(|c| c.name.class() == ComponentClass::Anchor)
        .map(|c| c.digest.0)
        .collect()
}

/// The hardware digests an issued license (armored, as the ledger keeps it)
/// is bound to; none when it does not read.
pub(crate) fn anchors_of_license(license: &[u8]) -> Vec<[u8; 32]> {
    License::read_unverified(license)
        .and_then(|lic| lic.validate().ok())
        .map(|(bound, _)| anchors_of(&bound))
        .unwrap_or_default()
}

/// The activation of `ent` that the requesting machine already holds, with
/// the binding its license carries.
fn held_by_this_machine(
    tx: &dyn WriteTx,
    ent: &Entitlement,
    request: &VerifiedRequest,
) -> Result<Option<(Activation, License, Fingerprint)>, LedgerError> {
    let install_key = request.install_key().to_sec1_compressed();
    let claimed = request
        .fingerprint()
        .clone()
        .with_evidence(Evidence::LEGACY_REPORT);
    let candidates = tx
        .reads()
        .seat_candidates(&ent.id, &install_key, &anchors_of(&claimed))?;
    for (act, text) in candidates {
        let Some(lic) = License::read_unverified(&text) else {
            continue;
        };
        let Ok((bound, _)) = lic.validate() else {
            continue;
        };
        let same_store = act.install_key == install_key;
        if bound.identity() == Identity::CloneOnly && !same_store {
            continue;
        }
        let policy = lic.binding.match_policy;
        let report = fingerprint::compare(&bound, &claimed, policy, lic.binding.allow_clone_only);
        if report.verdict == Verdict::Holds {
            return Ok(Some((act, lic, bound)));
        }
    }
    Ok(None)
}

/// What answering a request from a machine that holds a seat did.
pub(super) struct Reissued {
    pub activation: Activation,
    pub license: String,
}

/// When the requesting machine already holds a seat of `ent`: its license
/// issued again to the request's install key, the activation moved to that
/// key, audited as `reactivated`. `None` when the machine holds no seat.
pub(super) fn reissue_if_held(
    tx: &mut dyn WriteTx,
    ent: &Entitlement,
    request: &VerifiedRequest,
    vendor: &PrivateKey,
    now: Timestamp,
    actor: &str,
    random: &dyn Random,
) -> Result<Option<Reissued>, LedgerError> {
    let Some((act, previous, bound)) = held_by_this_machine(&*tx, ent, request)? else {
        return Ok(None);
    };
    let terms = current_terms(tx.reads(), ent, &previous.binding, &act.license_id)?;
    let requester = Requester {
        install_key: request.install_key(),
        nonce: request.nonce(),
    };
    let (_, text) = license::issue(&terms, &bound, Some(requester), now, vendor, random)?;
    let install_key = request.install_key().to_sec1_compressed();
    let moved_store = act.install_key != install_key;
    tx.move_activation(&MovedActivation {
        activation_id: &act.id,
        install_key: &install_key,
        request_nonce: request.nonce(),
        request_hash: &Sha256::digest(request.envelope()),
        license: text.as_bytes(),
        at: now,
    })?;
    let detail = format!(
        "workstation {} already holds license {} of this entitlement: issued again to {}, no seat taken",
        request.fingerprint().workstation_id(),
        act.license_id,
        if moved_store {
            "the request's install key (another store on that machine)"
        } else {
            "the same install key"
        }
    );
    tx.append_audit(&AuditEntry {
        at: now,
        event: AuditEvent::Reactivated,
        entitlement_id: Some(&ent.id),
        activation_id: Some(&act.id),
        actor,
        detail: &detail,
    })?;
    let activation = tx
        .reads()
        .activation(&act.id)?
        .ok_or_else(|| StorageError::Unreadable {
            what: "activation",
            value: act.id.clone(),
        })?;
    Ok(Some(Reissued {
        activation,
        license: text,
    }))
}

#[cfg(test)]
mod tests;
