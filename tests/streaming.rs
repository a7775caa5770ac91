//! `vendor audit` and `vendor report` stream: they print a row at a time, so
//! a ledger of any size fits in the same memory. Run under an address-space
//! limit that a collecting implementation (which built the whole list, then
//! its JSON) exceeds many times over with this ledger.
#![cfg(unix)]

mod common;

use common::*;

/// 100 MiB of address space: the debug binary needs well under half of it.
const LIMIT_KIB: u64 = 100 * 1024;

fn run_limited(env: &Env, args: &[&str]) -> std::process::Output {
    let mut script = format!("ulimit -v {LIMIT_KIB}; exec \"$0\"");
    for i in 1..=args.len() {
        script.push_str(&format!(" \"${i}\""));
    }
    std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_nodelock"))
        .args(args)
        .env("NODELOCK_TEST_NOW", "2026-06-01")
        .current_dir(env.dir.path())
        .output()
        .unwrap()
}

#[test]
fn a_large_ledger_is_reported_and_audited_in_bounded_memory() {
    let env = Env::new();
    let ledger = env.path("ledger.sqlite");
    entitlement(&env, &ledger, 1);
    // 100,000 audit rows with 300-byte details and 20,000 entitlements,
    // written straight into the file (the audit forbids only updates and deletes).
    let mut conn = rusqlite::Connection::open(&ledger).unwrap();
    let tx = conn.transaction().unwrap();
    let detail = "x".repeat(300);
    for i in 0..100_000i64 {
        tx.execute(
            "INSERT INTO audit (at, event, entitlement_id, actor, detail) VALUES (?1, 'refused', 'E-X', 'online 10.0.0.1', ?2)",
            rusqlite::params![1_780_000_000 + i, detail],
        )
        .unwrap();
    }
    for i in 0..20_000i64 {
        tx.execute(
            "INSERT INTO entitlements (id, key_hash, product, kind, seats, features, customer, max_transfers, max_resets_per_year, created_at)
             VALUES (?1, ?2, 'surveyor', 'perpetual', 5, '[]', ?3, 3, 2, ?4)",
            rusqlite::params![format!("E-{i:012}"), i.to_be_bytes().to_vec(), detail, 1_780_000_000 + i],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    drop(conn);

    let out = run_limited(
        &env,
        &["vendor", "audit", "--ledger", ledger.to_str().unwrap(), "--json"],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let audit: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(audit["ok"], true);
    assert_eq!(audit["audit"].as_array().unwrap().len(), 100_001);

    let out = run_limited(
        &env,
        &["vendor", "report", "--ledger", ledger.to_str().unwrap(), "--json"],
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["entitlements"].as_array().unwrap().len(), 20_001);

    // Human output streams the same way.
    let out = run_limited(&env, &["vendor", "audit", "--ledger", ledger.to_str().unwrap()]);
    assert_eq!(code(&out), 0);
    assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), 100_001);
}
