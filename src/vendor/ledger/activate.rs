//! The activation rules: which request gets a seat and a license.
//!
//! A request is answered in two halves. [`Ledger::prepare_activation`] reads
//! (without the write lock) and signs the license the request would get;
//! [`Ledger::commit_activations`] judges a batch in one write transaction, each
//! request on the ledger as it stands after the ones before it. A refusal is
//! audited and changes nothing else, because every check runs before the
//! first write.

use sha2::{Digest, Sha256};

use super::error::{LedgerError, StorageError};
use super::model::{ActivationState, AuditEntry, AuditEvent, Entitlement, Method, NewActivation};
use super::storage::{Reads, WriteTx};
use super::{Change, Ledger, Outcome, PREPARE_CACHE, PreparedTerms, new_id, same_machine};
use crate::base::clock::Timestamp;
use crate::base::random::Random;
use crate::documents::activation::{KeyClaim, VerifiedRequest};
use crate::documents::license::{self, Requester, Terms};
use crate::format::PrivateKey;
use crate::machine::fingerprint::{Identity, MatchPolicy};

/// A license answered for a request.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Answered {
    /// Ledger activation id.
    pub activation_id: String,
    /// License id.
    pub license_id: String,
    /// The entitlement whose seat it holds.
    pub entitlement_id: String,
    /// Workstation id from the request.
    pub workstation_id: String,
    /// True when this request had been answered before (same license, no new seat).
    pub replayed: bool,
    /// True when the requesting machine already held a seat of this
    /// entitlement: its license issued again to this request, no new seat.
    pub reactivated: bool,
    /// The license, armored.
    #[serde(skip)]
    pub license: String,
}

/// An activation request prepared outside the write lock (see
/// [`Ledger::prepare_activation`]).
pub struct Prepared {
    request: VerifiedRequest,
    /// The ledger hash of the key the request proved, found while preparing
    /// (the proof costs a signature verification; the commit need not repeat it).
    key_hash: Option<[u8; 32]>,
    signed: Option<SignedLicense>,
    method: Method,
    actor: String,
}

/// A license signed in preparation, and what it was signed against.
struct SignedLicense {
    entitlement_id: String,
    revoked: Vec<String>,
    license_id: String,
    text: String,
}

/// The ledger hash of the activation key `request` proves, when the ledger
/// knows the key: version 1 requests carry the key, version 2 requests its
/// lookup id and a proof that must hold for the hash stored under that id.
fn claimed_key_hash(reads: &dyn Reads, request: &VerifiedRequest) -> Result<Option<[u8; 32]>, StorageError> {
    match request.claim() {
        KeyClaim::Key(key) => {
            let hash = key.ledger_hash();
            Ok(request.presents(&hash).then_some(hash))
        }
        KeyClaim::Proof { lookup, .. } => {
            let Some(record) = reads.key_by_lookup(lookup)? else {
                return Ok(None);
            };
            // The signature where the ledger keeps the public key (a copy of
            // the ledger cannot make one); the HMAC keyed by the stored hash
            // only for entitlements from before it was kept.
            let proved = match &record.public {
                Some(public) => request.signed_by(public),
                None => request.presents(&record.hash),
            };
            Ok(proved.then_some(record.hash))
        }
    }
}

/// Whether the entitlement still grants anything: not expired, not suspended.
/// (A machine that holds a seat is answered only while this holds, too.)
pub(super) fn still_granted(ent: &Entitlement, now: Timestamp) -> Result<(), LedgerError> {
    if let Some(expired_at) = ent.spec.expires_at.filter(|e| now >= *e) {
        return Err(LedgerError::EntitlementExpired { expired_at });
    }
    if ent.suspended {
        return Err(LedgerError::Suspended(ent.id.clone()));
    }
    Ok(())
}

/// Whether the entitlement could grant a new seat now to this request.
fn open_for_activation(
    ent: &Entitlement,
    request: &VerifiedRequest,
    now: Timestamp,
) -> Result<(), LedgerError> {
    let needs_hardware = ent.spec.require_hardware_id || ent.spec.match_policy == MatchPolicy::Strict;
    if needs_hardware && request.fingerprint().identity() == Identity::CloneOnly {
        return Err(LedgerError::HardwareIdRequired);
    }
    still_granted(ent, now)?;
    let machines = ent.spec.machines();
    if ent.seats_used >= machines {
        return Err(LedgerError::NoFreeSeat { seats: machines });
    }
    // Seats freed by deactivation may be re-used up to the transfer limit;
    // seats freed by support resets are limited by the reset policy instead.
    let allowed = u64::from(machines)
        + u64::from(ent.transfers_used.min(ent.spec.max_transfers))
        + u64::from(ent.resets_total);
    if u64::from(ent.activations_total) >= allowed {
        return Err(LedgerError::TransferLimit {
            max: ent.spec.max_transfers,
        });
    }
    Ok(())
}

fn sign_license(
    ent: &Entitlement,
    revoked: Vec<String>,
    request: &VerifiedRequest,
    vendor: &PrivateKey,
    now: Timestamp,
    random: &dyn Random,
) -> Result<SignedLicense, LedgerError> {
    let terms = Terms {
        product: ent.spec.product.clone(),
        kind: ent.spec.kind,
        features: ent.spec.features.clone(),
        customer: ent.spec.customer.clone(),
        entitlement: Some(ent.id.clone()),
        not_before: None,
        expires_at: ent.spec.expires_at,
        maintenance_until: ent.spec.maintenance_until,
        allow_clone_only: !ent.spec.require_hardware_id,
        match_policy: ent.spec.match_policy,
        revalidate_days: ent.spec.revalidate_days,
        id: None,
        revoked: revoked.clone(),
        pool: ent.spec.pool.map(|pool| (ent.spec.seats, pool)),
    };
    let requester = Requester {
        install_key: request.install_key(),
        nonce: request.nonce(),
    };
    let (lic, text) = license::issue(
        &terms,
        request.fingerprint(),
        Some(requester),
        now,
        vendor,
        random,
    )?;
    Ok(SignedLicense {
        entitlement_id: ent.id.clone(),
        revoked,
        license_id: lic.id,
        text,
    })
}

pub(super) fn reset_licenses(reads: &dyn Reads, ent: &Entitlement) -> Result<Vec<String>, LedgerError> {
    Ok(reads.reset_licenses(&ent.id, ent.spec.customer.as_deref())?)
}

/// Judges and records one prepared request inside the batch transaction.
fn commit_one(
    tx: &mut dyn WriteTx,
    prepared: &Prepared,
    vendor: &PrivateKey,
    now: Timestamp,
    random: &dyn Random,
) -> Result<Answered, LedgerError> {
    let request = &prepared.request;
    let install_key = request.install_key().to_sec1_compressed();
    let request_hash = Sha256::digest(request.envelope()).to_vec();
    let workstation_id = request.fingerprint().workstation_id().to_string();
    let actor = prepared.actor.as_str();

    if let Some(earlier) = tx.reads().answer_for_request(&install_key, request.nonce())? {
        if earlier.request_hash != request_hash {
            return Err(LedgerError::NonceReuse);
        }
        let a = earlier.activation;
        // The license is handed out again only while its seat is held: a
        // request kept from before a deactivation or reset must not win the
        // freed seat back (one seat, two working machines).
        if a.state != ActivationState::Active {
            return Err(LedgerError::RequestSpent {
                id: a.id,
                how: a.state,
            });
        }
        tx.append_audit(&AuditEntry {
            at: now,
            event: AuditEvent::ActivationReplayed,
            entitlement_id: Some(&a.entitlement_id),
            activation_id: Some(&a.id),
            actor,
            detail: "the same request answered again; no seat taken",
        })?;
        return Ok(Answered {
            activation_id: a.id,
            license_id: a.license_id,
            entitlement_id: a.entitlement_id,
            workstation_id,
            replayed: true,
            reactivated: false,
            license: String::from_utf8_lossy(&earlier.license).into_owned(),
        });
    }

    let hash = match prepared.key_hash {
        Some(hash) => hash,
        None => claimed_key_hash(tx.reads(), request)?.ok_or(LedgerError::UnknownKey)?,
    };
    let ent = tx
        .reads()
        .entitlement_by_key(&hash)?
        .ok_or(LedgerError::UnknownKey)?;
    // A machine that already holds a seat gets it again, even when every
    // seat is taken: re-running an installer must not need a free seat.
    still_granted(&ent, now)?;
    if let Some(again) = same_machine::reissue_if_held(tx, &ent, request, vendor, now, actor, random)? {
        return Ok(Answered {
            activation_id: again.activation.id,
            license_id: again.activation.license_id,
            entitlement_id: ent.id,
            workstation_id,
            replayed: false,
            reactivated: true,
            license: again.license,
        });
    }
    open_for_activation(&ent, request, now)?;
    let revoked = reset_licenses(tx.reads(), &ent)?;
    let fresh;
    let signed = match &prepared.signed {
        Some(s) if s.entitlement_id == ent.id && s.revoked == revoked => s,
        _ => {
            fresh = sign_license(&ent, revoked, request, vendor, now, random)?;
            &fresh
        }
    };
    let activation_id = new_id("A", random)?;
    tx.insert_activation(&NewActivation {
        id: &activation_id,
        entitlement_id: &ent.id,
        license_id: &signed.license_id,
        workstation_id: &workstation_id,
        install_key: &install_key,
        request_nonce: request.nonce(),
        request_hash: &request_hash,
        license: signed.text.as_bytes(),
        method: prepared.method,
        created_at: now,
        anchors: &same_machine::anchors_of(request.fingerprint()),
    })?;
    let detail = format!(
        "workstation {workstation_id}, license {}, seat {} of {}",
        signed.license_id,
        u64::from(ent.seats_used) + 1,
        ent.spec.seats
    );
    tx.append_audit(&AuditEntry {
        at: now,
        event: AuditEvent::Activated,
        entitlement_id: Some(&ent.id),
        activation_id: Some(&activation_id),
        actor,
        detail: &detail,
    })?;
    Ok(Answered {
        activation_id,
        license_id: signed.license_id.clone(),
        entitlement_id: ent.id,
        workstation_id,
        replayed: false,
        reactivated: false,
        license: signed.text.clone(),
    })
}

impl Ledger {
    /// Answers a verified activation request: checks the key, the term, free
    /// seats and the transfer limit, records the activation and issues the
    /// license. The same request answered again returns the same license.
    /// A refusal is audited and changes nothing else.
    ///
    /// This is [`Ledger::prepare_activation`] and [`Ledger::commit_activations`]
    /// for a batch of one; a server runs the two halves apart so that signing
    /// happens in parallel and many answers share one commit.
    pub fn answer_activation(
        &mut self,
        request: &VerifiedRequest,
        vendor: &PrivateKey,
        method: Method,
        now: Timestamp,
        actor: &str,
    ) -> Result<Answered, LedgerError> {
        let prepared = self.prepare_activation(request.clone(), vendor, method, actor, now)?;
        let mut results = self.commit_activations(vec![prepared], vendor, now)?;
        results
            .pop()
            .unwrap_or_else(|| Err(LedgerError::Unavailable("a batch of one came back empty".into())))
    }

    /// The read-only half of answering: looks up the entitlement the key names
    /// and signs the license it would grant, without taking the write lock.
    /// Whether a seat is free is decided by [`Ledger::commit_activations`].
    pub fn prepare_activation(
        &self,
        request: VerifiedRequest,
        vendor: &PrivateKey,
        method: Method,
        actor: &str,
        now: Timestamp,
    ) -> Result<Prepared, LedgerError> {
        let reads = self.backend.reads();
        let Some(hash) = claimed_key_hash(reads, &request)? else {
            return Ok(Prepared {
                request,
                key_hash: None,
                signed: None,
                method,
                actor: actor.to_owned(),
            });
        };
        let fresh = self
            .prepared_terms
            .borrow()
            .get(&hash)
            .filter(|(at, _)| at.elapsed() < PREPARE_CACHE)
            .map(|(_, terms)| terms.clone());
        let terms: PreparedTerms = match fresh {
            Some(terms) => terms,
            None => {
                let terms = match reads.entitlement_by_key(&hash)? {
                    Some(ent) => {
                        let revoked = reset_licenses(reads, &ent)?;
                        Some((ent, revoked))
                    }
                    None => None,
                };
                let mut cache = self.prepared_terms.borrow_mut();
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(hash, (std::time::Instant::now(), terms.clone()));
                terms
            }
        };
        let signed = match terms {
            Some((ent, revoked)) if open_for_activation(&ent, &request, now).is_ok() => {
                Some(sign_license(&ent, revoked, &request, vendor, now, &*self.random)?)
            }
            _ => None,
        };
        Ok(Prepared {
            request,
            key_hash: Some(hash),
            signed,
            method,
            actor: actor.to_owned(),
        })
    }

    /// The writing half: one write transaction for the whole batch (one disk
    /// flush), each request judged on the ledger as it stands after the ones
    /// before it. Refusals are audited in the same transaction and change
    /// nothing else. A license signed in preparation is re-signed here if the
    /// revocation list changed meanwhile.
    pub fn commit_activations(
        &mut self,
        batch: Vec<Prepared>,
        vendor: &PrivateKey,
        now: Timestamp,
    ) -> Result<Vec<Result<Answered, LedgerError>>, LedgerError> {
        let changes = batch.into_iter().map(|p| Change::Activate(Box::new(p))).collect();
        Ok(self
            .commit_batch(changes, vendor, now)?
            .into_iter()
            .map(|outcome| match outcome {
                Outcome::Activated(answer) => answer,
                Outcome::Deactivated(_) | Outcome::Refreshed(_) => Err(LedgerError::Unavailable(
                    "a batch of activations answered another kind of request".into(),
                )),
            })
            .collect())
    }
}

/// Commits one request, or audits its refusal; `Err` only when the storage
/// failed, which aborts the whole batch.
pub(super) fn commit_or_refuse(
    tx: &mut dyn WriteTx,
    prepared: &Prepared,
    vendor: &PrivateKey,
    now: Timestamp,
    random: &dyn Random,
) -> Result<Result<Answered, LedgerError>, LedgerError> {
    match commit_one(tx, prepared, vendor, now, random) {
        Ok(answered) => Ok(Ok(answered)),
        Err(LedgerError::Database(e)) => Err(LedgerError::Database(e)),
        Err(refusal) => {
            // The audit is append-only and permanent: it records a refusal
            // only when a known entitlement stands behind the request. A
            // request with an unknown key is anyone's (the install key that
            // signs it is made up on the spot), so it leaves no row; the
            // server counts it and its request log names it.
            if matches!(refusal, LedgerError::UnknownKey) {
                // commit_one found no entitlement: no second look-up (a flood
                // of unknown keys costs one read each, not two).
                return Ok(Err(refusal));
            }
            let request = &prepared.request;
            let hash = match prepared.key_hash {
                Some(hash) => Some(hash),
                None => claimed_key_hash(tx.reads(), request)?,
            };
            let Some(hash) = hash else {
                return Ok(Err(refusal));
            };
            let Some(entitlement) = tx.reads().entitlement_by_key(&hash)? else {
                return Ok(Err(refusal));
            };
            let detail = format!(
                "activation request from workstation {}: {refusal}",
                request.fingerprint().workstation_id()
            );
            tx.append_audit(&AuditEntry {
                at: now,
                event: AuditEvent::Refused,
                entitlement_id: Some(&entitlement.id),
                activation_id: None,
                actor: &prepared.actor,
                detail: &detail,
            })?;
            Ok(Err(refusal))
        }
    }
}
