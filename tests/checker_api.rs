//! The library API an application calls at start-up, with facts, clock and
//! store pinned the way an application's own tests would pin them.

mod common;

use common::desk::import;
use common::*;
use nodelock::base::clock::{FixedClock, parse_start};
use nodelock::machine::facts::{Facts, Snapshot};
use nodelock::workstation::store::StoreError;
use nodelock::{CheckError, Checker};

const VENDOR_PUBLIC_KEY: &str = include_str!("../fixtures/keys/TEST-ONLY-vendor.pub");

fn installed_store() -> Env {
    let env = Env::new().on("laptop.json").at("2026-06-01");
    let lic = env.issue(
        "laptop.json",
        "surveyor",
        &["--expires", "2026-12-31", "--maintenance-until", "2026-10-31"],
    );
    let out = import(&env, &lic);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env
}

fn checker(env: &Env, machine_file: &str, now: &str) -> Checker {
    Checker::new(VENDOR_PUBLIC_KEY)
        .unwrap()
        .store(env.store())
        .facts_from(Snapshot(Facts::load(&machine(machine_file)).unwrap()))
        .clock(FixedClock(parse_start(now).unwrap()))
}

#[test]
fn application_start_grants_on_the_bound_machine() {
    let env = installed_store();
    let grant = checker(&env, "laptop-as-user.json", "2026-07-01")
        .check("surveyor")
        .unwrap();
    assert_eq!(grant.product, "surveyor");
    assert_eq!(grant.days_left, Some(184), "July 1 to the end of December 31");
}

#[test]
fn application_start_refuses_with_a_typed_reason() {
    let env = installed_store();
    let denied = |c: Checker, product: &str| match c.check(product) {
        Err(CheckError::Store(StoreError::Denied(d))) => d.code(),
        Err(CheckError::Store(StoreError::NotFound { .. })) => "not-found",
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        denied(checker(&env, "laptop-same-model.json", "2026-07-01"), "surveyor"),
        "other-machine"
    );
    assert_eq!(
        denied(checker(&env, "laptop.json", "2026-07-01"), "cad-suite"),
        "not-found"
    );
    let newer_build = checker(&env, "laptop.json", "2026-07-01")
        .build_date("2026-11-15")
        .unwrap();
    assert_eq!(denied(newer_build, "surveyor"), "maintenance-ended");
    assert!(matches!(
        checker(&env, "laptop.json", "2026-07-01").build_date("someday"),
        Err(CheckError::BuildDate(_))
    ));
    // Last: a refused check observes the clock too, so after this one an
    // earlier time would be refused as clock-set-back (tests/clock.rs).
    assert_eq!(
        denied(checker(&env, "laptop.json", "2027-01-01"), "surveyor"),
        "expired"
    );
}

#[test]
fn a_rotated_vendor_key_is_trusted_alongside_the_old_one() {
    let env = installed_store();
    let other = std::fs::read_to_string(fixture(OTHER_PUB)).unwrap();
    let c = Checker::new(&other)
        .unwrap()
        .also_trust(VENDOR_PUBLIC_KEY)
        .unwrap()
        .store(env.store())
        .facts_from(Snapshot(Facts::load(&machine("laptop.json")).unwrap()))
        .clock(FixedClock(parse_start("2026-07-01").unwrap()));
    assert!(c.check("surveyor").is_ok());
    let only_other = Checker::new(&other)
        .unwrap()
        .store(env.store())
        .facts_from(Snapshot(Facts::load(&machine("laptop.json")).unwrap()));
    assert!(
        only_other
            .check("surveyor")
            .unwrap_err()
            .to_string()
            .contains("not a trusted vendor key")
    );
}
