//! The ledger under concurrent vendor processes and under processes killed
//! mid-answer: seats are never oversubscribed and every answer is whole or absent.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::desk::*;
use common::*;

#[test]
fn twenty_concurrent_answers_for_five_seats_give_exactly_five_licenses() {
    let vendor = Vendor::new();
    let key = vendor.entitlement(5, &[]);
    let ws = workstation("laptop.json");
    // Twenty machines (one machine asking twice would hold one seat).
    let fleet: Vec<Env> = (0..20)
        .map(|i| workstation("laptop.json").nth_machine(i))
        .collect();
    let requests: Vec<PathBuf> = fleet
        .iter()
        .enumerate()
        .map(|(i, m)| request(m, &key, &format!("r{i}.req")))
        .collect();
    let children: Vec<_> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vendor
                .answer_cmd(r, &ws.path(&format!("l{i}.lic")))
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let granted = outs.iter().filter(|o| code(o) == 0).count();
    let refused: Vec<_> = outs.iter().filter(|o| code(o) != 0).collect();
    assert_eq!(granted, 5);
    assert_eq!(refused.len(), 15);
    for o in refused {
        assert_eq!(code(o), 23, "{}", stderr(o));
        assert!(
            stderr(o).contains("all 5 seat(s) of this entitlement are in use"),
            "{}",
            stderr(o)
        );
    }
    assert_eq!(
        (0..20).filter(|i| ws.path(&format!("l{i}.lic")).exists()).count(),
        5
    );
    assert_eq!(vendor.used(), 5);
    let ledger = nodelock::vendor::ledger::Ledger::open(&vendor.ledger()).unwrap();
    assert_eq!(ledger.integrity_check().unwrap(), "ok");
    assert!(ledger.counter_mismatches().unwrap().is_empty());
}

#[cfg(unix)]
#[test]
fn killing_the_vendor_mid_answer_leaves_every_answer_whole_or_absent() {
    use std::time::Duration;
    let vendor = Vendor::new();
    let key = vendor.entitlement(1000, &[]);
    let ws = workstation("laptop.json");
    let ledger_path = vendor.ledger();
    let rounds = 40u64;
    let fleet: Vec<Env> = (0..rounds as usize)
        .map(|i| workstation("laptop.json").nth_machine(i))
        .collect();
    let requests: Vec<PathBuf> = fleet
        .iter()
        .enumerate()
        .map(|(i, m)| request(m, &key, &format!("r{i}.req")))
        .collect();
    for (i, req) in requests.iter().enumerate() {
        let mut child = vendor
            .answer_cmd(req, &ws.path(&format!("l{i}.lic")))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill points spread over process start, ledger open, transaction and file write.
        std::thread::sleep(Duration::from_micros((i as u64 * 1_777) % 14_000));
        let _ = child.kill();
        let _ = child.wait();
    }
    // Consistency: integrity, and each activation is complete (license stored,
    // audited once); none exists without its audit row or vice versa.
    let ledger = nodelock::vendor::ledger::Ledger::open(&ledger_path).unwrap();
    assert_eq!(ledger.integrity_check().unwrap(), "ok");
    assert!(ledger.counter_mismatches().unwrap().is_empty());
    let report = vendor.report();
    let activations = report[0]["activations"].as_array().unwrap().clone();
    let events = vendor.audit_events();
    assert_eq!(
        events.iter().filter(|e| *e == "activated").count(),
        activations.len()
    );
    assert_eq!(report[0]["used"].as_u64().unwrap() as usize, activations.len());
    // Answering every request again: recorded ones replay the same license,
    // the others are answered now; either way exactly one seat per request.
    let mut replays = 0;
    for (i, req) in requests.iter().enumerate() {
        let out = vendor.answer(req, &ws.path(&format!("again{i}.lic")));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        if json(&out)["activation"]["replayed"] == true {
            replays += 1;
            let first = ws.path(&format!("l{i}.lic"));
            if first.exists() {
                assert_eq!(
                    std::fs::read(first).unwrap(),
                    std::fs::read(ws.path(&format!("again{i}.lic"))).unwrap()
                );
            }
        }
    }
    assert_eq!(replays, activations.len());
    assert_eq!(vendor.used(), rounds);
    println!("{} of {rounds} killed answers had committed", activations.len());
}
