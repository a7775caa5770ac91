//! Activation is idempotent per machine: which requests find their seat again.

use crate::base::clock::DAY;
use crate::documents::activation::{
    ActivationKey, VerifiedRequest, make_deactivation, make_request, open_deactivation, open_request,
};
use crate::documents::license::License;
use crate::format::PrivateKey;
use crate::machine::facts::{Facts, Interface};
use crate::vendor::ledger::tests::{NOW, spec};
use crate::vendor::ledger::{AuditEvent, Ledger, LedgerError, Method};

/// A workstation with SMBIOS identity, a disk and a Wi-Fi card.
fn workstation(n: u8, wifi: &str) -> Facts {
    let mut facts = Facts::empty();
    facts.machine_id = Some(format!("3d1219c7c4c5404aaa1f6d2a48adf{n:03}"));
    facts.product_uuid = Some(format!("4c4c4544-0042-3510-8052-b3c04f4a3{n:03}"));
    facts.board_serial = Some(format!("BOARD{n:03}"));
    facts.disk_serials = Some(vec![format!("S4EWNX0R{n:03}")]);
    facts.network = Some(vec![Interface {
        name: Some("wlan0".into()),
        mac: Some(wifi.into()),
        physical: Some(true),
    }]);
    facts
}

fn clone_only(n: u8) -> Facts {
    let mut facts = Facts::empty();
    facts.machine_id = Some(format!("3d1219c7c4c5404aaa1f6d2a48adf{n:03}"));
    facts
}

fn request_from(key: &ActivationKey, facts: &Facts, install: &PrivateKey, nonce: u8) -> VerifiedRequest {
    let fp = crate::machine::fingerprint::Fingerprint::from_facts(facts).unwrap();
    let (_, text) = make_request(key, &fp, install, [nonce; 16], NOW).unwrap();
    open_request(text.as_bytes()).unwrap()
}

fn install_key_of(license: &str) -> Vec<u8> {
    License::read_unverified(license.as_bytes())
        .unwrap()
        .validate()
        .unwrap()
        .1
        .unwrap()
        .to_sec1_compressed()
}

struct Vendor {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    key: PrivateKey,
}

fn vendor() -> Vendor {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    Vendor {
        _dir: dir,
        ledger,
        key: PrivateKey::generate().unwrap(),
    }
}

impl Vendor {
    fn answer(&mut self, request: &VerifiedRequest) -> Result<crate::vendor::ledger::Answered, LedgerError> {
        self.ledger
            .answer_activation(request, &self.key, Method::Online, NOW, "t")
    }

    fn used(&self) -> u32 {
        self.ledger.report(NOW).unwrap()[0].used
    }
}

#[test]
fn a_machine_that_holds_the_only_seat_gets_it_again_from_any_of_its_stores() {
    let mut v = vendor();
    let (_, key) = v.ledger.create_entitlement(&spec(1), NOW, "t").unwrap();
    let machine = workstation(1, "a4:5e:60:d1:00:01");
    let (store_a, store_b) = (PrivateKey::generate().unwrap(), PrivateKey::generate().unwrap());

    let first = v.answer(&request_from(&key, &machine, &store_a, 1)).unwrap();
    assert!(!first.reactivated && !first.replayed);

    // The installer re-run on the same store: a new request, the same seat.
    let again = v.answer(&request_from(&key, &machine, &store_a, 2)).unwrap();
    assert!(again.reactivated && !again.replayed, "{again:?}");
    assert_eq!(again.license_id, first.license_id);
    assert_eq!(again.activation_id, first.activation_id);
    assert_eq!(v.used(), 1);

    // Another store on the same machine: the license moves to its install key.
    let other = v.answer(&request_from(&key, &machine, &store_b, 3)).unwrap();
    assert!(other.reactivated);
    assert_eq!(other.license_id, first.license_id);
    assert_eq!(
        install_key_of(&other.license),
        store_b.public().to_sec1_compressed()
    );
    assert_eq!(v.used(), 1);
    let before = License::read_unverified(first.license.as_bytes()).unwrap();
    let after = License::read_unverified(other.license.as_bytes()).unwrap();
    assert_eq!(after.binding, before.binding, "the binding is kept");

    // The activation moved: the old store can no longer give the seat back,
    // the new one can.
    let deactivate = |install: &PrivateKey| {
        let (_, text) = make_deactivation(&first.license_id, install, [7; 16], NOW).unwrap();
        open_deactivation(text.as_bytes()).unwrap()
    };
    let old = v
        .ledger
        .answer_deactivation(deactivate(&store_a), &v.key, NOW, "t");
    assert!(matches!(old, Err(LedgerError::WrongInstallKey(_))), "{old:?}");
    v.ledger
        .answer_deactivation(deactivate(&store_b), &v.key, NOW, "t")
        .unwrap();
    assert_eq!(v.used(), 0);
    assert!(v.ledger.counter_mismatches().unwrap().is_empty());

    let events: Vec<AuditEvent> = v
        .ledger
        .audit()
        .unwrap()
        .into_iter()
        .map(|row| row.event)
        .collect();
    assert_eq!(
        events.iter().filter(|e| **e == AuditEvent::Reactivated).count(),
        2
    );
}

#[test]
fn a_replaced_wifi_card_is_the_same_machine_and_another_machine_is_not() {
    let mut v = vendor();
    let (_, key) = v.ledger.create_entitlement(&spec(2), NOW, "t").unwrap();
    let install = PrivateKey::generate().unwrap();
    let first = v
        .answer(&request_from(
            &key,
            &workstation(1, "a4:5e:60:d1:00:01"),
            &install,
            1,
        ))
        .unwrap();
    let new_card = v
        .answer(&request_from(
            &key,
            &workstation(1, "a4:5e:60:d1:99:99"),
            &install,
            2,
        ))
        .unwrap();
    assert!(new_card.reactivated);
    assert_eq!(new_card.license_id, first.license_id);
    assert_eq!(v.used(), 1);

    // Another machine with the same store copied onto it takes its own seat.
    let other = v
        .answer(&request_from(
            &key,
            &workstation(2, "a4:5e:60:d1:00:02"),
            &install,
            3,
        ))
        .unwrap();
    assert!(!other.reactivated);
    assert_ne!(other.license_id, first.license_id);
    assert_eq!(v.used(), 2);
}

#[test]
fn the_request_that_moved_a_seat_and_the_one_that_took_it_are_both_replays() {
    let mut v = vendor();
    let (_, key) = v.ledger.create_entitlement(&spec(1), NOW, "t").unwrap();
    let machine = workstation(1, "a4:5e:60:d1:00:01");
    let (store_a, store_b) = (PrivateKey::generate().unwrap(), PrivateKey::generate().unwrap());
    let took = request_from(&key, &machine, &store_a, 1);
    let moved = request_from(&key, &machine, &store_b, 2);
    v.answer(&took).unwrap();
    let second = v.answer(&moved).unwrap();
    let replay = v.answer(&moved).unwrap();
    assert!(replay.replayed && !replay.reactivated);
    assert_eq!(replay.license, second.license);
    let replay = v.answer(&took).unwrap();
    assert!(replay.replayed);
    assert_eq!(v.used(), 1);
}

#[test]
fn a_clone_only_binding_is_the_same_machine_only_for_the_store_that_holds_it() {
    let mut v = vendor();
    let (_, key) = v.ledger.create_entitlement(&spec(1), NOW, "t").unwrap();
    let vm = clone_only(1);
    let store = PrivateKey::generate().unwrap();
    let first = v.answer(&request_from(&key, &vm, &store, 1)).unwrap();
    let rerun = v.answer(&request_from(&key, &vm, &store, 2)).unwrap();
    assert!(rerun.reactivated);
    assert_eq!(rerun.license_id, first.license_id);
    // A copied VM (same installation id) with a store of its own: no seat left.
    let copy = v.answer(&request_from(&key, &vm, &PrivateKey::generate().unwrap(), 3));
    assert!(
        matches!(copy, Err(LedgerError::NoFreeSeat { seats: 1 })),
        "{copy:?}"
    );
    assert_eq!(v.used(), 1);
}

#[test]
fn a_held_seat_is_not_reissued_once_the_entitlement_ends_or_is_suspended() {
    let mut v = vendor();
    let spec = crate::vendor::ledger::EntitlementSpec {
        expires_at: Some(NOW + DAY),
        ..spec(1)
    };
    let (ent, key) = v.ledger.create_entitlement(&spec, NOW, "t").unwrap();
    let machine = workstation(1, "a4:5e:60:d1:00:01");
    let store = PrivateKey::generate().unwrap();
    v.answer(&request_from(&key, &machine, &store, 1)).unwrap();
    let later = v.ledger.answer_activation(
        &request_from(&key, &machine, &store, 2),
        &v.key,
        Method::Online,
        NOW + 2 * DAY,
        "t",
    );
    assert!(
        matches!(later, Err(LedgerError::EntitlementExpired { .. })),
        "{later:?}"
    );
    v.ledger
        .update_entitlement(
            &ent,
            &crate::vendor::ledger::EntitlementUpdate {
                suspended: Some(true),
                ..Default::default()
            },
            NOW,
            "t",
        )
        .unwrap();
    let suspended = v.answer(&request_from(&key, &machine, &store, 3));
    assert!(
        matches!(suspended, Err(LedgerError::Suspended(_))),
        "{suspended:?}"
    );
}

#[test]
fn after_a_deactivation_the_machine_takes_a_seat_as_any_other() {
    let mut v = vendor();
    let (_, key) = v.ledger.create_entitlement(&spec(1), NOW, "t").unwrap();
    let machine = workstation(1, "a4:5e:60:d1:00:01");
    let store = PrivateKey::generate().unwrap();
    let first = v.answer(&request_from(&key, &machine, &store, 1)).unwrap();
    let (_, text) = make_deactivation(&first.license_id, &store, [7; 16], NOW).unwrap();
    v.ledger
        .answer_deactivation(open_deactivation(text.as_bytes()).unwrap(), &v.key, NOW, "t")
        .unwrap();
    let back = v.answer(&request_from(&key, &machine, &store, 2)).unwrap();
    assert!(!back.reactivated);
    assert_ne!(back.license_id, first.license_id);
    assert_eq!(v.used(), 1);
}

#[test]
fn seats_held_before_the_migration_are_found_again_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    let vendor_key = PrivateKey::generate().unwrap();
    let machine = workstation(1, "a4:5e:60:d1:00:01");
    let store = PrivateKey::generate().unwrap();
    let key = {
        let mut ledger = Ledger::open(&path).unwrap();
        let (_, key) = ledger.create_entitlement(&spec(1), NOW, "t").unwrap();
        ledger
            .answer_activation(
                &request_from(&key, &machine, &store, 1),
                &vendor_key,
                Method::Online,
                NOW,
                "t",
            )
            .unwrap();
        key
    };
    // Back to the schema before migration 8, the activation kept.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE reactivations; DROP TABLE seat_anchors; DROP INDEX activations_by_holder;
         ALTER TABLE activations DROP COLUMN holder_key;
         ALTER TABLE entitlements DROP COLUMN lease_minutes; ALTER TABLE entitlements DROP COLUMN borrow_days;
         ALTER TABLE entitlements DROP COLUMN borrow_seats; PRAGMA user_version = 7;",
    )
    .unwrap();
    drop(conn);
    let mut ledger = Ledger::open(&path).unwrap();
    let again = ledger
        .answer_activation(
            &request_from(&key, &machine, &store, 2),
            &vendor_key,
            Method::Online,
            NOW,
            "t",
        )
        .unwrap();
    assert!(again.reactivated, "{again:?}");
    assert_eq!(ledger.report(NOW).unwrap()[0].used, 1);
}
