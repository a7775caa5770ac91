//! The fingerprint report reader (`vendor issue --fingerprint`, `fingerprint
//! compare`). Oracle: a report that yields a fingerprint yields the same one
//! from that fingerprint's own report.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodelock::machine::fingerprint::Report;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = Report::from_json(data, "fuzz.json") else { return };
    let Ok(fp) = report.fingerprint("fuzz.json") else { return };
    let json = serde_json::to_vec(&fp.report()).expect("reports serialise");
    let again = Report::from_json(&json, "again.json")
        .and_then(|r| r.fingerprint("again.json"))
        .expect("our own report reads");
    assert_eq!(again, fp);
});
