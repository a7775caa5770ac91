//! The store's clock watermark against someone who moves the clock or edits
//! the store: every check observes the clock, a license issued in the future
//! cannot push the watermark, and a damaged clock record is its own state.

mod common;

use common::desk::import;
use common::*;

/// The same store and machine at another time.
fn at(env: Env, now: &str) -> Env {
    Env {
        dir: env.dir,
        facts: env.facts.clone(),
        now: now.into(),
    }
}

#[test]
fn a_refused_check_still_observes_the_clock() {
    let vendor = Env::new().on("laptop.json").at("2026-05-01");
    let lic = vendor.issue("laptop.json", "surveyor", &["--expires", "2026-06-30"]);
    let ws = Env::new().on("laptop.json").at("2026-06-20");
    assert_eq!(code(&import(&ws, &lic)), 0);
    // Checked only once it has expired (no granted check in between)…
    let late = at(ws, "2026-07-05");
    assert_eq!(code(&late.run_store(&["check", "--product", "surveyor"])), 14);
    // …then the clock goes back to before the end: the refusal was seen.
    let back = at(late, "2026-06-29");
    let out = back.run_store(&["check", "--product", "surveyor", "--json"]);
    assert_eq!(code(&out), 17, "{}", stderr(&out));
    assert_eq!(json(&out)["error"]["code"], "clock-set-back");
}

#[test]
fn a_license_issued_in_the_future_is_refused_and_moves_no_watermark() {
    // The vendor's clock (or a forged issue time under a trusted key) is a
    // month ahead of this machine.
    let vendor = Env::new().on("laptop.json").at("2026-07-15");
    let future = vendor.issue("laptop.json", "surveyor", &["--not-before", "2026-01-01"]);
    let fine = Env::new().on("laptop.json").at("2026-06-01");
    let other = fine.issue("laptop.json", "designer", &[]);
    let ws = Env::new().on("laptop.json").at("2026-06-15");
    let out = import(&ws, &future);
    assert_eq!(code(&out), 17, "{}", stderr(&out));
    assert_one_sentence(&out);
    assert!(stderr(&out).contains("issued"), "{}", stderr(&out));
    assert!(
        !ws.store().join("clock").exists(),
        "the refused license moved the watermark"
    );
    // Other licenses of the store are unaffected.
    assert_eq!(code(&import(&ws, &other)), 0);
    assert_eq!(code(&ws.run_store(&["check", "--product", "designer"])), 0);
}

#[test]
fn a_damaged_or_extreme_clock_record_is_a_clear_state_not_a_panic() {
    let vendor = Env::new().on("laptop.json").at("2026-05-01");
    // A subscription: the clock rule applies to licenses that depend on the date.
    let lic = vendor.issue("laptop.json", "surveyor", &["--expires", "2027-12-31"]);
    let ws = Env::new().on("laptop.json").at("2026-06-20");
    assert_eq!(code(&import(&ws, &lic)), 0);
    let clock = ws.store().join("clock");

    // Extremes of the number range: checked arithmetic, no wrap, no panic.
    std::fs::write(&clock, "-9223372036854775808\n").unwrap();
    let out = ws.run_store(&["check", "--product", "surveyor"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::write(&clock, "9223372036854775807\n").unwrap();
    let out = ws.run_store(&["check", "--product", "surveyor"]);
    assert_eq!(code(&out), 17, "{}", stderr(&out));
    assert_one_sentence(&out);

    // Not a number: said as such, with the file named.
    std::fs::write(&clock, "yesterday\n").unwrap();
    let out = ws.run_store(&["check", "--product", "surveyor", "--json"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        json(&out)["error"]["message"].as_str().unwrap().contains("clock"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&clock).unwrap(),
        "yesterday\n",
        "nothing was rewritten"
    );
}

#[test]
fn a_clock_once_a_year_ahead_locks_out_no_perpetual_license() {
    let vendor = Env::new().on("laptop.json").at("2026-06-01");
    let perpetual = vendor.issue("laptop.json", "surveyor", &[]);
    let subscription = vendor.issue("laptop.json", "designer", &["--expires", "2027-12-31"]);
    let ws = Env::new().on("laptop.json").at("2026-06-01");
    assert_eq!(code(&import(&ws, &perpetual)), 0);
    assert_eq!(code(&import(&ws, &subscription)), 0);
    // A wrong BIOS date: one check a year ahead …
    let ahead = at(ws, "2027-06-01");
    assert_eq!(code(&ahead.run_store(&["check", "--product", "surveyor"])), 0);
    // … then the clock set right. The perpetual license does not depend on
    // the date and keeps working; the subscription's clock rule still holds.
    let right = at(ahead, "2026-06-02");
    let out = right.run_store(&["check", "--product", "surveyor"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&right.run_store(&["check", "--product", "designer"])), 17);
    // And a perpetual license issued now imports.
    let vendor = at(vendor, "2026-06-02");
    let fresh = vendor.issue("laptop.json", "viewer", &[]);
    let out = import(&right, &fresh);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}
