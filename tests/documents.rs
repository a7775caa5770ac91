//! The license document against damage and forgery, and the test vectors that
//! docs/FORMAT.md describes. Set `NODELOCK_WRITE_VECTORS=1` to rewrite the
//! vectors after a deliberate format change (then update FORMAT.md).

mod common;

use std::io::Write;

use common::*;
use nodelock::base::random::Scripted;
use nodelock::documents::license::{self, Binding, BoundComponent, License, LicenseError, Terms};
use nodelock::format::envelope::{self, DocumentKind, EnvelopeError, MAX_DOCUMENT_BYTES};
use nodelock::format::{Keyring, PrivateKey, PublicKey, armor};
use nodelock::machine::facts::Facts;
use nodelock::machine::fingerprint::{Fingerprint, MatchPolicy};

fn vendor_key() -> PrivateKey {
    PrivateKey::load(&fixture(VENDOR_KEY)).unwrap()
}

fn ring() -> Keyring {
    [PublicKey::load(&fixture(VENDOR_PUB)).unwrap()]
        .into_iter()
        .collect()
}

/// The license test vector's payload, as `fixtures/documents/license.fields.json`
/// spells it out (so that FORMAT.md and the fixtures alone describe the
/// vector): every field set, bound to laptop.json.
fn vector_license() -> License {
    let f: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vector_path("license.fields.json")).unwrap()).unwrap();
    let text = |k: &str| f[k].as_str().unwrap().to_owned();
    let int = |k: &str| f[k].as_i64().unwrap();
    let components = f["binding"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| BoundComponent {
            name: serde_json::from_value(c["name"].clone()).unwrap(),
            digest: base16ct::lower::decode_vec(c["digest"].as_str().unwrap()).unwrap(),
        })
        .collect();
    License {
        v: u32::try_from(int("v")).unwrap(),
        id: text("id"),
        product: text("product"),
        features: serde_json::from_value(f["features"].clone()).unwrap(),
        kind: text("kind").parse().unwrap(),
        customer: Some(text("customer")),
        entitlement: Some(text("entitlement")),
        issued_at: int("issued_at"),
        not_before: int("not_before"),
        expires_at: Some(int("expires_at")),
        maintenance_until: Some(int("maintenance_until")),
        seats: None,
        pool: None,
        binding: Binding {
            algorithm: u32::try_from(f["binding"]["algorithm"].as_i64().unwrap()).unwrap(),
            allow_clone_only: f["binding"]["allow_clone_only"].as_bool().unwrap(),
            components,
            match_policy: MatchPolicy::Standard,
            salt: None,
        },
        install_key: None,
        request_nonce: None,
        revoked: Vec::new(),
        revalidate_by: None,
    }
}

#[test]
fn the_vector_fields_are_laptop_json_bound_as_issue_binds_it() {
    let fp = Fingerprint::from_facts(&Facts::load(&machine("laptop.json")).unwrap()).unwrap();
    assert_eq!(
        vector_license().binding,
        Binding::of(&fp, true, MatchPolicy::Standard)
    );
}

fn vector_path(name: &str) -> std::path::PathBuf {
    fixture(&format!("documents/{name}"))
}

fn vector_bytes() -> Vec<u8> {
    std::fs::read(vector_path("license.bin")).unwrap()
}

/// Issues the vector as the vendor would: its terms, its machine, its issue
/// time, and scripted bytes that make its id.
fn issue_vector() -> String {
    let expected = vector_license();
    // not_before stays unset: issued_at less the clock tolerance.
    let terms = Terms {
        features: expected.features.clone(),
        customer: expected.customer.clone(),
        entitlement: expected.entitlement.clone(),
        expires_at: expected.expires_at,
        maintenance_until: expected.maintenance_until,
        ..Terms::new(expected.product.clone(), expected.kind)
    };
    let fp = Fingerprint::from_facts(&Facts::load(&machine("laptop.json")).unwrap()).unwrap();
    let id = Scripted::new(base32_bytes(expected.id.trim_start_matches("L-"), 10));
    let (issued, armored) =
        license::issue(&terms, &fp, None, expected.issued_at, &vendor_key(), &id).unwrap();
    assert_eq!(issued, expected);
    armored
}

#[test]
fn license_test_vector_reproduces_byte_for_byte() {
    let armored = issue_vector();
    let binary = armor::find_block(armored.as_bytes()).unwrap().unwrap().bytes;
    let payload = nodelock::format::codec::encode(&vector_license()).unwrap();
    if std::env::var_os("NODELOCK_WRITE_VECTORS").is_some() {
        std::fs::write(vector_path("license.lic"), &armored).unwrap();
        std::fs::write(vector_path("license.bin"), &binary).unwrap();
        std::fs::write(
            vector_path("license.payload.hex"),
            format!("{}\n", base16ct::lower::encode_string(&payload)),
        )
        .unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(vector_path("license.lic")).unwrap(),
        armored
    );
    assert_eq!(vector_bytes(), binary);
    assert_eq!(
        std::fs::read_to_string(vector_path("license.payload.hex"))
            .unwrap()
            .trim(),
        base16ct::lower::encode_string(&payload)
    );
}

#[test]
fn license_test_vector_decodes_to_the_documented_fields() {
    let verified = license::verify(&vector_bytes(), &ring()).unwrap();
    assert_eq!(verified.license(), &vector_license());
    assert_eq!(verified.signer().to_string(), ring().keys()[0].id().to_string());
    // The envelope layout of FORMAT.md §2: array(5), magic, kind, key id, payload, signature.
    let bytes = vector_bytes();
    assert_eq!(bytes[0], 0x85);
    assert_eq!(&bytes[1..13], b"\x6bnodelock/v1");
    assert_eq!(&bytes[13..21], b"\x67license");
    assert_eq!(bytes[21], 0x48);
    assert_eq!(&bytes[22..30], &verified.signer().0);
    assert_eq!(&bytes[bytes.len() - 66..bytes.len() - 64], b"\x58\x40");
}

#[test]
fn license_test_vector_checks_on_its_machine() {
    let env = Env::new().on("laptop.json");
    let out = env.run(&[
        "verify",
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        "--product",
        "surveyor",
        vector_path("license.lic").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["grant"]["license_id"], "L-VECT0R0000000001");
}

#[test]
fn every_single_bit_flip_is_refused() {
    let bytes = vector_bytes();
    let ring = ring();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[i / 8] ^= 0x80 >> (i % 8);
        let err = license::verify(&flipped, &ring).expect_err(&format!("bit {i} flip accepted"));
        let kind = format!("{err:?}");
        *outcomes
            .entry(kind.split(['(', ' ', '{']).take(2).collect::<Vec<_>>().join(" "))
            .or_default() += 1;
    }
    // Flips land in the signature, the payload, the key id and the structure,
    // and each is refused for its own reason.
    assert!(outcomes.len() >= 3, "{outcomes:?}");
}

#[test]
fn every_truncation_is_refused_without_panic() {
    let bytes = vector_bytes();
    let text = std::fs::read(vector_path("license.lic")).unwrap();
    for n in 0..bytes.len() {
        assert!(
            license::verify(&bytes[..n], &ring()).is_err(),
            "binary cut at {n}"
        );
    }
    // Cutting only trailing dashes or the newline after the END label removes
    // transport decoration, not content; every cut before that must fail.
    let end = text
        .windows(20)
        .position(|w| w == b"END NODELOCK LICENSE")
        .unwrap()
        + 20;
    for n in 0..end {
        assert!(license::verify(&text[..n], &ring()).is_err(), "armor cut at {n}");
    }
}

#[test]
fn transport_damage_around_the_block_is_tolerated() {
    let text = std::fs::read_to_string(vector_path("license.lic")).unwrap();
    let damaged = format!(
        "\u{feff}Dear customer,\r\n\r\n{}\r\n-- \r\nSupport\r\n",
        text.replace('\n', "\r\n    ")
    );
    let verified = license::verify(damaged.as_bytes(), &ring()).unwrap();
    assert_eq!(verified.license().id, "L-VECT0R0000000001");
}

#[test]
fn unknown_signer_and_key_rotation() {
    let other = PublicKey::load(&fixture(OTHER_PUB)).unwrap();
    let only_other: Keyring = [other.clone()].into_iter().collect();
    assert!(matches!(
        license::verify(&vector_bytes(), &only_other),
        Err(LicenseError::Envelope(EnvelopeError::UnknownSigner(_)))
    ));
    let mut both = ring();
    both.add(other);
    assert!(license::verify(&vector_bytes(), &both).is_ok());
}

// Damaged, forged and misdirected files, one defect each, are the table in
// tests/negative_vectors.rs (fixtures/documents/negative/).

#[test]
fn cli_names_a_missing_file_and_an_untrusted_signer() {
    let env = Env::new().on("laptop.json");
    let out = env.run(&[
        "verify",
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        env.path("missing.lic").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_one_sentence(&out);
    let out = env.run(&[
        "verify",
        "--pubkey",
        fixture(OTHER_PUB).to_str().unwrap(),
        vector_path("license.lic").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 11, "{}", stderr(&out));
    assert_one_sentence(&out);
}

#[test]
fn fifty_megabyte_garbage_is_refused_without_reading_it_all() {
    let env = Env::new().on("laptop.json");
    let path = env.path("huge.lic");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 1024 * 1024];
    for _ in 0..50 {
        f.write_all(&chunk).unwrap();
    }
    drop(f);
    // The library reads at most one byte past the cap.
    let err =
        envelope::read_file(&path, DocumentKind::License, nodelock::base::fsio::Links::Follow).unwrap_err();
    assert!(matches!(
        err,
        EnvelopeError::TooLarge {
            limit: MAX_DOCUMENT_BYTES,
            ..
        }
    ));
    let store = env.store();
    for args in [
        vec![
            "verify",
            "--pubkey",
            fixture(VENDOR_PUB).to_str().unwrap(),
            path.to_str().unwrap(),
        ],
        vec![
            "import",
            "--pubkey",
            fixture(VENDOR_PUB).to_str().unwrap(),
            path.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ],
    ] {
        let out = env.run(&args);
        assert_eq!(code(&out), 3);
        assert_one_sentence(&out);
        assert!(stderr(&out).contains("larger than"), "{}", stderr(&out));
    }
    assert!(
        !store.join("licenses").exists() || std::fs::read_dir(store.join("licenses")).unwrap().count() == 0
    );
}

#[test]
fn fingerprint_test_vector_matches_the_documented_digests() {
    let facts = Facts::load(&machine("laptop.json")).unwrap();
    let report = Fingerprint::from_facts(&facts).unwrap().report();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vector_path("laptop.fingerprint.json")).unwrap()).unwrap();
    // The vector predates the report's `evidence` field, which readers
    // default (FORMAT.md §3 "Report"); everything else is byte-for-byte.
    let mut written = serde_json::to_value(&report).unwrap();
    let evidence = written.as_object_mut().unwrap().remove("evidence").unwrap();
    assert_eq!(written, expected);
    assert_eq!(
        evidence,
        serde_json::json!({"disks_read": true, "network_read": true, "hypervisor": false, "nested_namespace": false})
    );
    // FORMAT.md §3 works this digest out by hand: SHA-256 over
    // "nodelock/v1/fingerprint" 00 00000001 "machine_id" 00 "3d1219c7c4c5404aaa1f6d2a48adfda4".
    assert_eq!(
        expected["components"][0]["digest"],
        "085a0d58bb0bf41a4bf6cf8af566246d3b092dc5dd1be31c5820408f1389fba4"
    );
}

/// The 32-byte digests of a `fingerprint --json` report.
fn report_digests(report: &std::path::Path) -> Vec<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    value["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| base16ct::lower::decode_vec(c["digest"].as_str().unwrap()).unwrap())
        .collect()
}

#[test]
fn an_issued_license_carries_only_salted_digests() {
    let env = Env::new().on("laptop.json");
    let report = env.report("laptop.json");
    let lic = env.issue("laptop.json", "surveyor", &[]);
    let text = std::fs::read_to_string(&lic).unwrap();
    let bytes = pem::parse(text.trim()).unwrap().into_contents();
    for digest in report_digests(&report) {
        assert!(
            !bytes.windows(32).any(|w| w == digest.as_slice()),
            "the license carries an unsalted digest"
        );
    }
    let out = env.run_store(&[
        "import",
        "--pubkey",
        fixture(VENDOR_PUB).to_str().unwrap(),
        lic.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&env.run_store(&["check", "--product", "surveyor"])), 0);
    // The store keeps nothing that decides a match besides the license.
    assert!(!env.store().join("cache").exists());
    // And another machine still fails against the salted binding.
    let other = Env {
        facts: Some(machine("laptop-same-model.json")),
        ..env
    };
    assert_eq!(code(&other.run_store(&["check", "--product", "surveyor"])), 16);
}
