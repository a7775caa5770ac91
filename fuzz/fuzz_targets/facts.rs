//! The facts snapshot reader. Oracles: a snapshot that reads writes back to
//! JSON that reads to the same facts; fingerprinting it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodelock::machine::facts::Facts;
use nodelock::machine::fingerprint::Fingerprint;

fuzz_target!(|data: &[u8]| {
    if let Ok(facts) = Facts::from_json(data, "fuzz.json") {
        let json = serde_json::to_vec(&facts).expect("facts serialise");
        let again = Facts::from_json(&json, "again.json").expect("our own JSON reads");
        assert_eq!(again, facts);
        if let Ok(fp) = Fingerprint::from_facts(&facts) {
            let _ = fp.report();
            let _ = fp.workstation_id();
        }
    }
});
