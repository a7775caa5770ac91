//! The seat rules judged in process, one change at a time (`Pool`), at the
//! boundaries where a verdict turns: the last seat, a lease's last second,
//! the clock tolerance, the borrow limits, replays and the holder key.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::base::random::OsRandom;
use crate::documents::lease::{
    Checkout, make_lease_request, make_lease_update, open_lease_request, open_lease_update,
};
use crate::documents::license::{self, LicenseKind, Requester, Terms};
use crate::format::Keyring;
use crate::machine::facts::Facts;
use crate::machine::fingerprint::Fingerprint;
use crate::pool::Pool;
use crate::pool::db::PoolDb;
use crate::pool::policy::PolicyFile;

const NOW: Timestamp = 1_780_000_000;
const MINUTE: i64 = 60;

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

struct Site {
    pool: Pool,
    _dir: tempfile::TempDir,
    n: u64,
}

fn terms(lease_minutes: u32, borrow_days: u32, borrow_seats: u32) -> PoolTerms {
    PoolTerms {
        lease_minutes,
        borrow_days,
        borrow_seats,
    }
}

fn site(seats: u32, pool_terms: PoolTerms, expires_at: Option<Timestamp>, policy: &str) -> Site {
    let vendor = PrivateKey::load(&fixture("keys/TEST-ONLY-vendor.key")).unwrap();
    let ring: Keyring = [vendor.public()].into_iter().collect();
    let install = PrivateKey::generate().unwrap();
    let server =
        Fingerprint::from_facts(&Facts::load(&fixture("machines/vmware-guest.json")).unwrap()).unwrap();
    let terms = Terms {
        pool: Some((seats, pool_terms)),
        expires_at,
        ..Terms::new("surveyor", LicenseKind::FloatingPool)
    };
    let requester = Requester {
        install_key: &install.public(),
        nonce: &[1; 16],
    };
    let (_, text) =
        license::issue(&terms, &server, Some(requester), NOW - MINUTE, &vendor, &OsRandom).unwrap();
    let served = Served {
        license: license::verify(text.as_bytes(), &ring).unwrap(),
        install,
        armored: text,
    };
    let dir = tempfile::tempdir().unwrap();
    let db = PoolDb::open(&dir.path().join("pool.sqlite")).unwrap();
    let path = dir.path().join("pool-policy.toml");
    std::fs::write(&path, policy).unwrap();
    let pool = Pool::new(vec![served], db, Arc::new(OsRandom)).with_policy(PolicyFile::load(path).unwrap());
    Site {
        pool,
        _dir: dir,
        n: 0,
    }
}

/// Who asks: a holder key, a user and host label, a machine.
struct Client {
    holder: PrivateKey,
    user: Option<&'static str>,
    host: Option<&'static str>,
    machine: &'static str,
}

fn client(user: &'static str) -> Client {
    Client {
        holder: PrivateKey::generate().unwrap(),
        user: Some(user),
        host: Some("h"),
        machine: "laptop.json",
    }
}

impl Site {
    fn nonce(&mut self) -> [u8; 16] {
        self.n += 1;
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&self.n.to_be_bytes());
        nonce
    }

    fn request(&mut self, c: &Client, mode: LeaseMode, days: u32) -> VerifiedLeaseRequest {
        let fp = Fingerprint::from_facts(&Facts::load(&fixture(&format!("machines/{}", c.machine))).unwrap())
            .unwrap();
        let checkout = Checkout {
            product: "surveyor",
            mode,
            days,
            fingerprint: &fp,
            user: c.user.map(str::to_owned),
            host: c.host.map(str::to_owned),
        };
        let nonce = self.nonce();
        open_lease_request(
            make_lease_request(&checkout, &c.holder, nonce, NOW)
                .unwrap()
                .1
                .as_bytes(),
        )
        .unwrap()
    }

    fn take(&mut self, c: &Client, now: Timestamp) -> Result<Granted, PoolError> {
        let request = self.request(c, LeaseMode::Online, 0);
        self.pool.checkout(&request, None, now)
    }

    fn borrow(&mut self, c: &Client, days: u32, now: Timestamp) -> Result<Granted, PoolError> {
        let request = self.request(c, LeaseMode::Borrowed, days);
        self.pool.checkout(&request, None, now)
    }

    fn update(&mut self, c: &Client, id: &str, op: LeaseOp, now: Timestamp) -> Result<Updated, PoolError> {
        let nonce = self.nonce();
        let (_, text) = make_lease_update(id, op, &c.holder, nonce, now).unwrap();
        self.pool.update(open_lease_update(text.as_bytes()).unwrap(), now)
    }

    fn in_use(&self, now: Timestamp) -> (u32, u32, u32) {
        let status = self.pool.status(now).unwrap();
        let p = &status.products[0];
        (p.in_use, p.available, p.borrowed)
    }

    fn events(&self, event: &str) -> usize {
        let mut n = 0;
        self.pool
            .db()
            .read()
            .each_usage(None, &mut |row| {
                n += usize::from(row.event == event);
                Ok(())
            })
            .unwrap();
        n
    }
}

#[test]
fn the_last_seat_goes_once_and_a_full_pool_names_its_holders_and_the_next_borrow_end() {
    let mut s = site(2, terms(15, 7, 2), None, "");
    s.take(&client("anna"), NOW).unwrap();
    s.borrow(&client("bob"), 2, NOW).unwrap();
    assert_eq!(s.in_use(NOW), (2, 0, 1));
    match s.take(&client("carl"), NOW) {
        Err(PoolError::AllSeatsInUse {
            seats,
            holders,
            next_free,
            ..
        }) => {
            assert_eq!(seats, 2);
            assert_eq!(holders, vec!["anna@h".to_owned(), "bob@h".to_owned()]);
            assert_eq!(next_free, Some(NOW + 2 * DAY));
        }
        other => unreachable!("{other:?}"),
    }
    assert_eq!(s.events("denied"), 1);
    assert_eq!(s.events("granted"), 1);
    assert_eq!(s.events("borrowed"), 1);
}

#[test]
fn a_lease_holds_its_seat_to_its_last_second_and_not_after() {
    let mut s = site(1, terms(15, 0, 0), None, "");
    let g = s.take(&client("anna"), NOW).unwrap();
    assert_eq!(g.expires_at, NOW + 15 * MINUTE);
    assert!(matches!(
        s.take(&client("bob"), NOW + 15 * MINUTE - 1),
        Err(PoolError::AllSeatsInUse { .. })
    ));
    s.take(&client("bob"), NOW + 15 * MINUTE).unwrap();
    assert_eq!(s.events("lapsed"), 1);
}

#[test]
fn a_clock_set_back_beyond_the_tolerance_grants_nothing() {
    let mut s = site(10, terms(15, 0, 0), None, "");
    s.take(&client("anna"), NOW).unwrap();
    s.take(&client("bob"), NOW - POOL_CLOCK_TOLERANCE).unwrap();
    match s.take(&client("carl"), NOW - POOL_CLOCK_TOLERANCE - 1) {
        Err(PoolError::ClockBehind { now, watermark }) => {
            assert_eq!((now, watermark), (NOW - POOL_CLOCK_TOLERANCE - 1, NOW));
        }
        other => unreachable!("{other:?}"),
    }
    // The watermark only moves forward: a later grant raises it.
    s.take(&client("dora"), NOW + 1000).unwrap();
    assert!(matches!(
        s.take(&client("emil"), NOW + 1000 - POOL_CLOCK_TOLERANCE - 1),
        Err(PoolError::ClockBehind { .. })
    ));
}

#[test]
fn leases_lapsed_by_a_clock_ahead_are_not_granted_again_once_it_is_set_back() {
    let mut s = site(2, terms(15, 0, 0), None, "");
    let anna = client("anna");
    let a = s.take(&anna, NOW).unwrap();
    s.take(&client("bob"), NOW).unwrap();
    // The clock jumps a day ahead; only a check-in is handled then, and it
    // writes Bob's lease down as lapsed.
    s.update(&anna, &a.lease_id, LeaseOp::Checkin, NOW + DAY).unwrap();
    // Set right again: Bob's lease still runs, so no seat is granted twice.
    assert!(matches!(
        s.take(&client("carl"), NOW + MINUTE),
        Err(PoolError::ClockBehind { watermark, .. }) if watermark == NOW + DAY
    ));
}

#[test]
fn borrows_keep_to_the_pool_s_days_and_seats_and_end_with_the_pool() {
    let mut none = site(5, terms(15, 0, 0), None, "");
    assert!(
        matches!(none.borrow(&client("a"), 1, NOW), Err(PoolError::BorrowRefused(m)) if m.contains("does not lend"))
    );
    let mut s = site(5, terms(15, 3, 1), Some(NOW + 2 * DAY), "");
    assert!(
        matches!(s.borrow(&client("a"), 4, NOW), Err(PoolError::BorrowRefused(m)) if m.contains("at most 3 day"))
    );
    // Three days asked, the pool ends in two: the borrow ends with it.
    let g = s.borrow(&client("a"), 3, NOW).unwrap();
    assert_eq!(g.expires_at, NOW + 2 * DAY);
    assert_eq!(g.mode, "borrowed");
    assert!(
        matches!(s.borrow(&client("b"), 1, NOW), Err(PoolError::BorrowRefused(m)) if m.contains("at most 1 seat"))
    );
    // An online seat is still there, and the pool's end ends every grant.
    s.take(&client("c"), NOW).unwrap();
    assert!(matches!(
        s.take(&client("d"), NOW + 2 * DAY),
        Err(PoolError::PoolExpired(_))
    ));
    s.take(&client("d"), NOW + 2 * DAY - 1).unwrap();
}

#[test]
fn a_retried_request_gets_the_same_lease_and_no_second_seat() {
    let mut s = site(2, terms(15, 0, 0), None, "");
    let anna = client("anna");
    let request = s.request(&anna, LeaseMode::Online, 0);
    let first = s.pool.checkout(&request, None, NOW).unwrap();
    let again = s.pool.checkout(&request, None, NOW + 5).unwrap();
    assert_eq!(first.lease_id, again.lease_id);
    assert_eq!(first.lease, again.lease);
    assert_eq!(s.in_use(NOW + 5).0, 1);
}

#[test]
fn only_the_holder_renews_each_update_counts_once_and_an_ended_lease_stays_ended() {
    let mut s = site(2, terms(15, 7, 1), None, "");
    let anna = client("anna");
    let g = s.take(&anna, NOW).unwrap();
    // Renewed ten minutes on: fifteen minutes from then.
    match s
        .update(&anna, &g.lease_id, LeaseOp::Renew, NOW + 10 * MINUTE)
        .unwrap()
    {
        Updated::Renewed(r) => assert_eq!(r.expires_at, NOW + 25 * MINUTE),
        other => unreachable!("{other:?}"),
    }
    let mallory = client("anna");
    assert!(matches!(
        s.update(&mallory, &g.lease_id, LeaseOp::Checkin, NOW + 11 * MINUTE),
        Err(PoolError::WrongHolder(_))
    ));
    // The same update document twice: the second is a replay.
    let (_, text) = make_lease_update(&g.lease_id, LeaseOp::Renew, &anna.holder, [9; 16], NOW).unwrap();
    s.pool
        .update(open_lease_update(text.as_bytes()).unwrap(), NOW + 12 * MINUTE)
        .unwrap();
    assert!(matches!(
        s.pool
            .update(open_lease_update(text.as_bytes()).unwrap(), NOW + 12 * MINUTE),
        Err(PoolError::Replayed(_))
    ));
    // Let it lapse (last renewed at +12: until +27): renewing then is too late.
    assert!(matches!(
        s.update(&anna, &g.lease_id, LeaseOp::Renew, NOW + 27 * MINUTE),
        Err(PoolError::LeaseEnded { how, .. }) if how == "lapsed"
    ));
    assert!(matches!(
        s.update(&anna, &g.lease_id, LeaseOp::Renew, NOW + 28 * MINUTE),
        Err(PoolError::LeaseEnded { how, .. }) if how == "lapsed"
    ));
    // A borrow is not renewed; its return frees the seat once.
    let bob = client("bob");
    let b = s.borrow(&bob, 2, NOW + 30 * MINUTE).unwrap();
    assert!(matches!(
        s.update(&bob, &b.lease_id, LeaseOp::Renew, NOW + 31 * MINUTE),
        Err(PoolError::BorrowRefused(_))
    ));
    assert!(matches!(
        s.update(&bob, &b.lease_id, LeaseOp::Return, NOW + 32 * MINUTE)
            .unwrap(),
        Updated::Ended { already: false, .. }
    ));
    assert!(matches!(
        s.update(&bob, &b.lease_id, LeaseOp::Return, NOW + 33 * MINUTE)
            .unwrap(),
        Updated::Ended { already: true, .. }
    ));
    assert_eq!(s.in_use(NOW + 33 * MINUTE), (0, 2, 0));
    assert!(matches!(
        s.update(&bob, "S-AAAAAAAAAAAAAAAA", LeaseOp::Checkin, NOW),
        Err(PoolError::UnknownLease(_))
    ));
}

#[test]
fn the_admin_frees_a_seat_once() {
    let mut s = site(1, terms(15, 0, 0), None, "");
    let anna = client("anna");
    let g = s.take(&anna, NOW).unwrap();
    assert!(s.pool.remove(&g.lease_id, NOW + 1).unwrap());
    assert!(!s.pool.remove(&g.lease_id, NOW + 2).unwrap());
    assert_eq!(s.events("removed"), 1);
    assert!(matches!(
        s.update(&anna, &g.lease_id, LeaseOp::Renew, NOW + 3),
        Err(PoolError::LeaseEnded { how, .. }) if how == "removed"
    ));
    s.take(&client("bob"), NOW + 3).unwrap();
}

#[test]
fn a_group_shares_one_seat_and_a_client_without_the_label_takes_its_own() {
    let mut s = site(2, terms(15, 7, 2), None, "group = \"host\"\nmax_per_user = 1\n");
    let on = |user, host| Client { host, ..client(user) };
    s.take(&on("anna", Some("ws-1")), NOW).unwrap();
    // Same host, another user: the same seat, and no seat rule applies.
    s.take(&on("anna", Some("ws-1")), NOW).unwrap();
    s.take(&on("bob", Some("ws-1")), NOW).unwrap();
    assert_eq!(s.in_use(NOW).0, 1);
    // No host label: a seat of its own; then the pool is full for others.
    s.take(&on("carl", None), NOW).unwrap();
    assert_eq!(s.in_use(NOW), (2, 0, 0));
    assert!(matches!(
        s.take(&on("dora", Some("ws-2")), NOW),
        Err(PoolError::AllSeatsInUse { .. })
    ));
    s.take(&on("dora", Some("ws-1")), NOW).unwrap();
    // A borrow is never grouped: with every seat held, there is none.
    assert!(matches!(
        s.borrow(&on("erik", Some("ws-1")), 1, NOW),
        Err(PoolError::AllSeatsInUse { .. })
    ));
}

#[test]
fn the_policy_s_rules_refuse_with_their_name() {
    let mut s = site(
        3,
        terms(15, 7, 3),
        None,
        "deny_users = [\"mallory\"]\nmax_per_user = 1\nborrow_max_days = 2\n[reserved]\nseats = 1\nusers = [\"boss\"]\n",
    );
    assert!(
        matches!(s.take(&client("mallory"), NOW), Err(PoolError::PolicyDenied(m)) if m.contains("deny_users"))
    );
    s.take(&client("anna"), NOW).unwrap();
    assert!(
        matches!(s.take(&client("anna"), NOW), Err(PoolError::PolicyDenied(m)) if m.contains("max_per_user"))
    );
    assert!(
        matches!(s.borrow(&client("bob"), 3, NOW), Err(PoolError::PolicyDenied(m)) if m.contains("borrow_max_days"))
    );
    s.take(&client("bob"), NOW).unwrap();
    assert!(
        matches!(s.take(&client("carl"), NOW), Err(PoolError::PolicyDenied(m)) if m.contains("reserved"))
    );
    s.take(&client("boss"), NOW).unwrap();
    assert_eq!(s.events("denied"), 0, "a policy refusal is not a full pool");
}

#[test]
fn the_admin_may_keep_the_holders_names_out_of_a_refusal() {
    let mut s = site(1, terms(15, 0, 0), None, "show_holders = false\n");
    s.take(&client("anna"), NOW).unwrap();
    let refused = s.take(&client("bob"), NOW).unwrap_err();
    assert!(matches!(&refused, PoolError::AllSeatsInUse { holders, .. } if holders.is_empty()));
    let sentence = refused.to_string();
    assert!(!sentence.contains("anna"), "{sentence}");
    assert!(sentence.contains("does not show by whom"), "{sentence}");
}
