//! Unit tests of the rules on a real SQLite ledger in a temporary directory.

use super::*;
use crate::documents::activation::{
    ActivationKey, UnverifiedDeactivation, VerifiedRequest, make_deactivation, make_request,
    open_deactivation, open_request,
};
use crate::format::PrivateKey;
use crate::machine::facts::Facts;
use crate::machine::fingerprint::{Fingerprint, MatchPolicy};

pub(crate) const NOW: Timestamp = 1_780_000_000;

pub(crate) fn spec(seats: u32) -> EntitlementSpec {
    EntitlementSpec {
        customer: Some("ACME".into()),
        ..EntitlementSpec::new("surveyor", seats)
    }
}

pub(crate) fn request(key: &ActivationKey, n: u8) -> VerifiedRequest {
    request_and_install_key(key, n).0
}

/// A verified request from machine `n`, and the install key that can later
/// deactivate what it gets.
pub(crate) fn request_and_install_key(key: &ActivationKey, n: u8) -> (VerifiedRequest, PrivateKey) {
    let mut facts = Facts::empty();
    facts.machine_id = Some(format!("3d1219c7c4c5404aaa1f6d2a48adf{n:03}"));
    let fp = Fingerprint::from_facts(&facts).unwrap();
    let install = PrivateKey::generate().unwrap();
    let (_, text) = make_request(key, &fp, &install, [n; 16], NOW).unwrap();
    (open_request(text.as_bytes()).unwrap(), install)
}

/// The deactivation request `install` signs for `license_id`.
pub(crate) fn deactivation(license_id: &str, install: &PrivateKey) -> UnverifiedDeactivation {
    let (_, text) = make_deactivation(license_id, install, [9; 16], NOW).unwrap();
    open_deactivation(text.as_bytes()).unwrap()
}

#[test]
fn a_seat_given_back_in_a_batch_is_free_for_the_activation_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let vendor = PrivateKey::generate().unwrap();
    let (_, key) = ledger.create_entitlement(&spec(1), NOW, "t").unwrap();
    let (first, install) = request_and_install_key(&key, 1);
    let held = ledger
        .answer_activation(&first, &vendor, Method::Offline, NOW, "t")
        .unwrap();
    let next = ledger
        .prepare_activation(request(&key, 2), &vendor, Method::Online, "t", NOW)
        .unwrap();
    let outcomes = ledger
        .commit_batch(
            vec![
                Change::Deactivate(deactivation(&held.license_id, &install), "t".into()),
                Change::Activate(Box::new(next)),
            ],
            &vendor,
            NOW,
        )
        .unwrap();
    assert!(matches!(&outcomes[0], Outcome::Deactivated(Ok(d)) if !d.replayed));
    assert!(matches!(&outcomes[1], Outcome::Activated(Ok(a)) if !a.replayed));
    assert!(ledger.counter_mismatches().unwrap().is_empty());

    // The other order: the activation comes first and finds the seat taken.
    let (_, key) = ledger.create_entitlement(&spec(1), NOW, "t").unwrap();
    let (first, install) = request_and_install_key(&key, 3);
    let held = ledger
        .answer_activation(&first, &vendor, Method::Offline, NOW, "t")
        .unwrap();
    let next = ledger
        .prepare_activation(request(&key, 4), &vendor, Method::Online, "t", NOW)
        .unwrap();
    let outcomes = ledger
        .commit_batch(
            vec![
                Change::Activate(Box::new(next)),
                Change::Deactivate(deactivation(&held.license_id, &install), "t".into()),
            ],
            &vendor,
            NOW,
        )
        .unwrap();
    assert!(matches!(
        &outcomes[0],
        Outcome::Activated(Err(LedgerError::NoFreeSeat { seats: 1 }))
    ));
    assert!(matches!(&outcomes[1], Outcome::Deactivated(Ok(_))));
}

#[test]
fn unknown_stored_kinds_and_features_are_errors_not_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    let mut ledger = Ledger::open(&path).unwrap();
    let vendor = PrivateKey::generate().unwrap();
    let (id, key) = ledger.create_entitlement(&spec(2), NOW, "t").unwrap();
    drop(ledger);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE entitlements SET kind = 'floating' WHERE id = ?1", [&id])
        .unwrap();
    let mut ledger = Ledger::open(&path).unwrap();
    let err = ledger
        .answer_activation(&request(&key, 1), &vendor, Method::Offline, NOW, "t")
        .unwrap_err();
    assert!(
        matches!(
            &err,
            LedgerError::Database(StorageError::Unreadable {
                what: "license kind",
                ..
            })
        ),
        "{err}"
    );
    conn.execute(
        "UPDATE entitlements SET kind = 'perpetual', features = 'gnss' WHERE id = ?1",
        [&id],
    )
    .unwrap();
    let err = ledger.report(NOW).unwrap_err();
    assert!(
        matches!(
            &err,
            LedgerError::Database(StorageError::Unreadable {
                what: "feature list",
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn a_batch_is_judged_in_order_and_refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let vendor = PrivateKey::generate().unwrap();
    let (_, key) = ledger.create_entitlement(&spec(2), NOW, "t").unwrap();
    let batch: Vec<Prepared> = (0..3)
        .map(|n| {
            ledger
                .prepare_activation(request(&key, n), &vendor, Method::Online, "t", NOW)
                .unwrap()
        })
        .collect();
    let results = ledger.commit_activations(batch, &vendor, NOW).unwrap();
    assert!(results[0].is_ok() && results[1].is_ok());
    assert!(matches!(results[2], Err(LedgerError::NoFreeSeat { seats: 2 })));
    assert!(ledger.counter_mismatches().unwrap().is_empty());
    let events: Vec<String> = ledger
        .audit()
        .unwrap()
        .into_iter()
        .map(|r| r.event.as_str().to_owned())
        .collect();
    assert_eq!(
        events,
        ["entitlement-created", "activated", "activated", "refused"]
    );
}

#[test]
fn a_license_prepared_before_a_reset_is_re_signed_with_the_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let vendor = PrivateKey::generate().unwrap();
    let (_, key) = ledger.create_entitlement(&spec(2), NOW, "t").unwrap();
    let first = ledger
        .answer_activation(&request(&key, 1), &vendor, Method::Offline, NOW, "t")
        .unwrap();
    let prepared = ledger
        .prepare_activation(request(&key, 2), &vendor, Method::Online, "t", NOW)
        .unwrap();
    ledger
        .reset(&first.activation_id, "died", false, NOW, "t")
        .unwrap();
    let answered = ledger
        .commit_activations(vec![prepared], &vendor, NOW)
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    let lic = crate::documents::license::License::read_unverified(answered.license.as_bytes()).unwrap();
    assert_eq!(lic.revoked, vec![first.license_id]);
}

#[test]
fn a_request_replayed_after_its_activation_ended_gets_no_license() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let vendor = PrivateKey::generate().unwrap();
    let (_, key) = ledger.create_entitlement(&spec(2), NOW, "t").unwrap();

    // Deactivated: the seat went back, so the old request must not win it again.
    let (first, install) = request_and_install_key(&key, 1);
    let held = ledger
        .answer_activation(&first, &vendor, Method::Offline, NOW, "t")
        .unwrap();
    let replay = ledger.answer_activation(&first, &vendor, Method::Offline, NOW, "t");
    assert!(
        replay.unwrap().replayed,
        "while active, a replay returns the same license"
    );
    ledger
        .answer_deactivation(deactivation(&held.license_id, &install), &vendor, NOW, "t")
        .unwrap();
    let replay = ledger.answer_activation(&first, &vendor, Method::Online, NOW, "t");
    assert!(
        matches!(
            &replay,
            Err(LedgerError::RequestSpent {
                how: ActivationState::Deactivated,
                ..
            })
        ),
        "{replay:?}"
    );

    // Reset by support: the same.
    let second = request(&key, 2);
    let held = ledger
        .answer_activation(&second, &vendor, Method::Offline, NOW, "t")
        .unwrap();
    ledger
        .reset(&held.activation_id, "died", false, NOW, "t")
        .unwrap();
    let replay = ledger.answer_activation(&second, &vendor, Method::Offline, NOW, "t");
    assert!(
        matches!(
            &replay,
            Err(LedgerError::RequestSpent {
                how: ActivationState::Reset,
                ..
            })
        ),
        "{replay:?}"
    );
    assert_eq!(ledger.report(NOW).unwrap()[0].used, 0);
    assert!(ledger.counter_mismatches().unwrap().is_empty());
}

#[test]
fn counts_are_bounded_and_the_largest_allowed_do_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let vendor = PrivateKey::generate().unwrap();
    for bad in [
        EntitlementSpec::new("surveyor", u32::MAX),
        EntitlementSpec::new("surveyor", 0),
        EntitlementSpec {
            max_transfers: u32::MAX,
            ..spec(1)
        },
        EntitlementSpec {
            max_resets_per_year: MAX_COUNT + 1,
            ..spec(1)
        },
    ] {
        assert!(matches!(
            ledger.create_entitlement(&bad, NOW, "t"),
            Err(LedgerError::BadSpec(_))
        ));
    }
    assert!(
        ledger.audit().unwrap().is_empty(),
        "a refused spec leaves no trace"
    );
    let biggest = EntitlementSpec {
        max_transfers: MAX_COUNT,
        max_resets_per_year: MAX_COUNT,
        ..EntitlementSpec::new("surveyor", MAX_COUNT)
    };
    let (_, key) = ledger.create_entitlement(&biggest, NOW, "t").unwrap();
    for n in 0..3 {
        ledger
            .answer_activation(&request(&key, n), &vendor, Method::Offline, NOW, "t")
            .unwrap();
    }
    assert_eq!(ledger.report(NOW).unwrap()[0].used, 3);
}

#[test]
fn a_ledger_made_by_the_first_release_migrates_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(super::sqlite::schema::FIRST_RELEASE).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO entitlements (id, key_hash, product, kind, seats, features, customer, max_transfers,
                max_resets_per_year, created_at) VALUES ('E-OLD', x'00', 'surveyor', 'perpetual', 2, '[\"gnss\"]', 'ACME', 3, 2, 1)",
            [],
        )
        .unwrap();
    }
    let ledger = Ledger::open(&path).unwrap();
    let report = ledger.report(NOW).unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].id, "E-OLD");
    assert_eq!(report[0].seats, 2);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (version, require, policy): (i64, bool, String) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version), require_hardware_id, match_policy FROM entitlements",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(version, super::sqlite::schema::MIGRATIONS.len() as i64);
    assert!(!require, "old entitlements keep allowing clone-only machines");
    assert_eq!(
        policy, "standard",
        "old entitlements sold standard-policy licenses"
    );
}

#[test]
fn an_entitlement_can_require_hardware_identity() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let vendor = PrivateKey::generate().unwrap();
    let strict = EntitlementSpec {
        require_hardware_id: true,
        ..spec(2)
    };
    let (_, key) = ledger.create_entitlement(&strict, NOW, "t").unwrap();
    // request() makes machines with a machine id only: clone-only.
    let refused = ledger.answer_activation(&request(&key, 1), &vendor, Method::Offline, NOW, "t");
    assert!(
        matches!(refused, Err(LedgerError::HardwareIdRequired)),
        "{refused:?}"
    );
    assert_eq!(ledger.report(NOW).unwrap()[0].used, 0);
    let events: Vec<AuditEvent> = ledger.audit().unwrap().into_iter().map(|r| r.event).collect();
    assert_eq!(
        events.last(),
        Some(&AuditEvent::Refused),
        "a known entitlement's refusal is audited"
    );
}

#[test]
fn an_entitlement_s_match_policy_reaches_its_licenses() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let vendor = PrivateKey::generate().unwrap();
    let tolerant = EntitlementSpec {
        match_policy: MatchPolicy::Tolerant,
        ..spec(2)
    };
    let (_, key) = ledger.create_entitlement(&tolerant, NOW, "t").unwrap();
    let answered = ledger
        .answer_activation(&request(&key, 1), &vendor, Method::Offline, NOW, "t")
        .unwrap();
    let lic = crate::documents::license::License::read_unverified(answered.license.as_bytes()).unwrap();
    assert_eq!(lic.binding.match_policy, MatchPolicy::Tolerant);
    // Strict implies hardware identity: a clone-only machine gets no seat.
    let strict = EntitlementSpec {
        match_policy: MatchPolicy::Strict,
        ..spec(2)
    };
    let (_, key) = ledger.create_entitlement(&strict, NOW, "t").unwrap();
    let refused = ledger.answer_activation(&request(&key, 2), &vendor, Method::Offline, NOW, "t");
    assert!(
        matches!(refused, Err(LedgerError::HardwareIdRequired)),
        "{refused:?}"
    );
}

#[test]
fn an_entitlement_from_before_lookup_ids_answers_a_version_2_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    let key = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
    {
        // A ledger at schema 3, as the release before request version 2 left it.
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in &super::sqlite::schema::MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute(
            "INSERT INTO entitlements (id, key_hash, product, kind, seats, features, customer, max_transfers,
                max_resets_per_year, created_at) VALUES ('E-OLD', ?1, 'surveyor', 'perpetual', 2, '[]', 'ACME', 3, 2, 1)",
            [key.ledger_hash().as_slice()],
        )
        .unwrap();
    }
    let mut ledger = Ledger::open(&path).unwrap();
    let vendor = PrivateKey::generate().unwrap();
    let answered = ledger
        .answer_activation(&request(&key, 1), &vendor, Method::Offline, NOW, "t")
        .unwrap();
    assert_eq!(answered.entitlement_id, "E-OLD");
}

#[test]
fn a_version_1_request_is_answered_and_a_stolen_proof_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let vendor = PrivateKey::generate().unwrap();
    let (_, key) = ledger.create_entitlement(&spec(3), NOW, "t").unwrap();
    let mut facts = Facts::empty();
    facts.machine_id = Some("3d1219c7c4c5404aaa1f6d2a48adf777".into());
    let fp = Fingerprint::from_facts(&facts).unwrap();
    // An old client's request, key in clear: still answered.
    let install = PrivateKey::generate().unwrap();
    let (_, v1) = crate::documents::activation::make_request_v1(&key, &fp, &install, [5; 16], NOW).unwrap();
    let v1 = open_request(v1.as_bytes()).unwrap();
    ledger
        .answer_activation(&v1, &vendor, Method::Offline, NOW, "t")
        .unwrap();
    // Someone who read a version 2 request copies its lookup id and proof
    // into a request of their own (their install key, their nonce).
    let (seen, _) = make_request(&key, &fp, &install, [6; 16], NOW).unwrap();
    // The thief has no key of this entitlement: their request is made with
    // another, and carries everything it can copy from the one it read.
    let thief = PrivateKey::generate().unwrap();
    let own_key = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
    let (mut forged, _) = make_request(&own_key, &fp, &thief, [7; 16], NOW).unwrap();
    forged.lookup = seen.lookup.clone();
    forged.proof = seen.proof.clone();
    forged.key_signature = seen.key_signature.clone();
    forged.fp = seen.fp.clone();
    let payload = crate::format::codec::encode(&forged).unwrap();
    let sealed = crate::format::envelope::seal(
        crate::format::envelope::DocumentKind::ActivationRequest,
        &payload,
        &thief,
    )
    .unwrap();
    let text =
        crate::format::envelope::armor(crate::format::envelope::DocumentKind::ActivationRequest, &sealed);
    let forged = open_request(text.as_bytes()).unwrap();
    let refused = ledger.answer_activation(&forged, &vendor, Method::Offline, NOW, "t");
    assert!(matches!(refused, Err(LedgerError::UnknownKey)), "{refused:?}");
    assert_eq!(ledger.report(NOW).unwrap()[0].used, 1);
}

#[test]
fn a_refresh_keeps_the_binding_and_is_refused_from_another_machine() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let vendor = PrivateKey::generate().unwrap();
    let spec = EntitlementSpec {
        revalidate_days: Some(30),
        ..spec(1)
    };
    let (_, key) = ledger.create_entitlement(&spec, NOW, "t").unwrap();
    let (request, install) = request_and_install_key(&key, 1);
    let answered = ledger
        .answer_activation(&request, &vendor, Method::Offline, NOW, "t")
        .unwrap();
    let before = crate::documents::license::License::read_unverified(answered.license.as_bytes()).unwrap();
    let refresh_from = |machine_id: &str, n: u8| {
        let mut facts = Facts::empty();
        facts.machine_id = Some(machine_id.into());
        let fp = Fingerprint::from_facts(&facts).unwrap();
        let salt: [u8; 16] = before
            .binding
            .salt
            .as_ref()
            .unwrap()
            .as_slice()
            .try_into()
            .unwrap();
        let fp = fp.salted(&salt).unwrap();
        let (_, text) =
            crate::documents::activation::make_refresh(&answered.license_id, &fp, &install, [n; 16], NOW)
                .unwrap();
        crate::documents::activation::open_refresh(text.as_bytes()).unwrap()
    };
    // The same machine: a new license, same id and binding, later revalidation.
    let later = NOW + 10 * crate::base::clock::DAY;
    let done = ledger
        .answer_refresh(
            refresh_from("3d1219c7c4c5404aaa1f6d2a48adf001", 1),
            &vendor,
            later,
            "t",
        )
        .unwrap();
    let after = crate::documents::license::License::read_unverified(done.license.as_bytes()).unwrap();
    assert_eq!(after.id, before.id);
    assert_eq!(after.binding, before.binding);
    assert!(after.revalidate_by > before.revalidate_by);
    // Another machine holding the install key (a copied store): refused, nothing changed.
    let refused = ledger.answer_refresh(
        refresh_from("3d1219c7c4c5404aaa1f6d2a48adf002", 2),
        &vendor,
        later,
        "t",
    );
    assert!(
        matches!(refused, Err(LedgerError::NotThisMachine(_))),
        "{refused:?}"
    );
    assert_eq!(ledger.report(later).unwrap()[0].used, 1);
}

#[test]
fn a_copy_of_the_ledger_cannot_make_a_request_the_ledger_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    let mut ledger = Ledger::open(&path).unwrap();
    let vendor = PrivateKey::generate().unwrap();
    let (_, key) = ledger.create_entitlement(&spec(2), NOW, "t").unwrap();
    // What a thief reads from the ledger file: the lookup id and the hash.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (stolen_hash, stolen_lookup): (Vec<u8>, Vec<u8>) = conn
        .query_row("SELECT key_hash, key_lookup FROM entitlements", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let stolen_hash: [u8; 32] = stolen_hash.try_into().unwrap();
    // A request with a valid HMAC (the hash keys it) and a made-up key signature.
    let thief = PrivateKey::generate().unwrap();
    let mut facts = Facts::empty();
    facts.machine_id = Some("3d1219c7c4c5404aaa1f6d2a48adf999".into());
    let fp = Fingerprint::from_facts(&facts)
        .unwrap()
        .salted(&stolen_lookup.clone().try_into().unwrap())
        .unwrap();
    let other_key = ActivationKey::generate(&crate::base::random::OsRandom).unwrap();
    let (mut forged, _) = make_request(&other_key, &fp, &thief, [3; 16], NOW).unwrap();
    let install = thief.public().to_sec1_uncompressed();
    forged.lookup = Some(serde_bytes::ByteBuf::from(stolen_lookup));
    forged.proof = Some(serde_bytes::ByteBuf::from(
        crate::documents::activation::key::proof_of(&stolen_hash, &[3; 16], &install).to_vec(),
    ));
    let payload = crate::format::codec::encode(&forged).unwrap();
    let kind = crate::format::envelope::DocumentKind::ActivationRequest;
    let text = crate::format::envelope::armor(
        kind,
        &crate::format::envelope::seal(kind, &payload, &thief).unwrap(),
    );
    let forged = open_request(text.as_bytes()).unwrap();
    assert!(forged.presents(&stolen_hash), "the HMAC alone would have passed");
    let refused = ledger.answer_activation(&forged, &vendor, Method::Offline, NOW, "t");
    assert!(matches!(refused, Err(LedgerError::UnknownKey)), "{refused:?}");
    // The real key's request passes.
    ledger
        .answer_activation(&request(&key, 1), &vendor, Method::Offline, NOW, "t")
        .unwrap();
}
