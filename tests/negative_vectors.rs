//! Negative test vectors: one defect per file under
//! `fixtures/documents/negative/`, each with the refusal the library and the
//! CLI must give, in one table. A second implementation can run the same
//! files against its own reader (docs/FORMAT.md, "Negative vectors").
//!
//! The files are made from the positive vectors by [`make`]; after a
//! deliberate format change, rewrite them with
//! `NODELOCK_WRITE_VECTORS=1 cargo test --test negative_vectors`.

mod common;

use common::*;
use nodelock::documents::{activation, license};
use nodelock::format::envelope::{self, DocumentKind, EnvelopeError};
use nodelock::format::{Keyring, PrivateKey, PublicKey, armor, codec};

/// How a vector must be refused.
struct Case {
    /// File name under `fixtures/documents/negative/`.
    file: &'static str,
    /// What the file pretends to be.
    kind: DocumentKind,
    /// The one thing wrong with it.
    defect: &'static str,
    /// The envelope error the library gives (its variant name).
    error: &'static str,
    /// The CLI's exit code (`verify` for licenses; `vendor answer`, which
    /// reads activation and deactivation requests, for requests).
    exit: i32,
}

const CASES: &[Case] = &[
    Case {
        file: "empty.lic",
        kind: DocumentKind::License,
        defect: "no bytes at all",
        error: "Empty",
        exit: 3,
    },
    Case {
        file: "public-key.lic",
        kind: DocumentKind::License,
        defect: "a PEM public key, not a nodelock document",
        error: "NotADocument",
        exit: 3,
    },
    Case {
        file: "garbage.lic",
        kind: DocumentKind::License,
        defect: "bytes that are neither armor nor an envelope",
        error: "NotADocument",
        exit: 3,
    },
    Case {
        file: "truncated-armor.lic",
        kind: DocumentKind::License,
        defect: "the armored license cut after 300 bytes (no END line)",
        error: "Armor",
        exit: 3,
    },
    Case {
        file: "mismatched-end.lic",
        kind: DocumentKind::License,
        defect: "BEGIN NODELOCK LICENSE closed by END NODELOCK RECEIPT",
        error: "Armor",
        exit: 3,
    },
    Case {
        file: "truncated.bin",
        kind: DocumentKind::License,
        defect: "the binary envelope cut in half",
        error: "Malformed",
        exit: 3,
    },
    Case {
        file: "trailing-byte.bin",
        kind: DocumentKind::License,
        defect: "one zero byte after a complete envelope",
        error: "Malformed",
        exit: 3,
    },
    Case {
        file: "signature-bit.bin",
        kind: DocumentKind::License,
        defect: "one bit of the signature's r flipped",
        error: "BadSignature",
        exit: 10,
    },
    Case {
        file: "payload-bit.bin",
        kind: DocumentKind::License,
        defect: "one bit of the product name flipped (surveyor → survexor)",
        error: "BadSignature",
        exit: 10,
    },
    Case {
        file: "high-s.bin",
        kind: DocumentKind::License,
        defect: "the signature's s replaced by n − s (valid in plain ECDSA, refused as malleable)",
        error: "BadSignature",
        exit: 10,
    },
    Case {
        file: "key-id-bit.bin",
        kind: DocumentKind::License,
        defect: "one bit of the signer's key id flipped",
        error: "UnknownSigner",
        exit: 11,
    },
    Case {
        file: "other-vendor.lic",
        kind: DocumentKind::License,
        defect: "the license payload signed by another vendor's key",
        error: "UnknownSigner",
        exit: 11,
    },
    Case {
        file: "noncanonical-payload.bin",
        kind: DocumentKind::License,
        defect: "the license payload with its version as a long-form integer, signed by the vendor",
        error: "Invalid",
        exit: 3,
    },
    Case {
        file: "request-label.lic",
        kind: DocumentKind::License,
        defect: "the license armored under the activation request's label",
        error: "WrongKind",
        exit: 3,
    },
    Case {
        file: "unknown-label.lic",
        kind: DocumentKind::License,
        defect: "the license armored under the label NODELOCK FROBNICATOR",
        error: "UnknownLabel",
        exit: 3,
    },
    Case {
        file: "receipt-kind.bin",
        kind: DocumentKind::License,
        defect: "the license payload signed by the vendor as a deactivation receipt",
        error: "WrongKind",
        exit: 3,
    },
    Case {
        file: "edited-request.req",
        kind: DocumentKind::ActivationRequest,
        defect: "the request vector with its client string changed, signature kept",
        error: "BadSignature",
        exit: 10,
    },
    Case {
        file: "deactivation-as-request.req",
        kind: DocumentKind::ActivationRequest,
        defect: "a deactivation request where an activation request belongs",
        error: "WrongKind",
        // `vendor answer` reads both request kinds: it takes this for the
        // deactivation it is, of a license its ledger never issued.
        exit: 29,
    },
];

fn dir() -> std::path::PathBuf {
    fixture("documents/negative")
}

fn positive(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("documents/{name}"))).unwrap()
}

fn key(name: &str) -> PrivateKey {
    PrivateKey::load(&fixture(&format!("keys/{name}"))).unwrap()
}

/// The envelope's five fields, to rebuild it with one of them changed.
fn fields(env: &[u8]) -> (String, String, Vec<u8>, Vec<u8>, Vec<u8>) {
    let (m, k, id, p, s): (
        String,
        String,
        serde_bytes::ByteBuf,
        serde_bytes::ByteBuf,
        serde_bytes::ByteBuf,
    ) = codec::decode(env).unwrap();
    (m, k, id.into_vec(), p.into_vec(), s.into_vec())
}

fn rebuild(magic: &str, kind: &str, id: &[u8], payload: &[u8], sig: &[u8]) -> Vec<u8> {
    let wire = (
        magic,
        kind,
        serde_bytes::Bytes::new(id),
        serde_bytes::Bytes::new(payload),
        serde_bytes::Bytes::new(sig),
    );
    codec::encode(&wire).unwrap()
}

/// Makes the vector `file` from the positive vectors.
fn make(file: &str) -> Vec<u8> {
    let lic_text = String::from_utf8(positive("license.lic")).unwrap();
    let lic_bin = positive("license.bin");
    let (magic, kind, id, payload, sig) = fields(&lic_bin);
    match file {
        "empty.lic" => Vec::new(),
        "public-key.lic" => std::fs::read(fixture(VENDOR_PUB)).unwrap(),
        "garbage.lic" => b"\x00\x01not a license at all".to_vec(),
        "truncated-armor.lic" => lic_text.as_bytes()[..300].to_vec(),
        "mismatched-end.lic" => lic_text
            .replace("END NODELOCK LICENSE", "END NODELOCK RECEIPT")
            .into_bytes(),
        "truncated.bin" => lic_bin[..lic_bin.len() / 2].to_vec(),
        "trailing-byte.bin" => [lic_bin.as_slice(), &[0]].concat(),
        "signature-bit.bin" => {
            let mut s = sig.clone();
            s[5] ^= 0x01;
            rebuild(&magic, &kind, &id, &payload, &s)
        }
        "payload-bit.bin" => {
            let at = payload.windows(8).position(|w| w == b"surveyor").unwrap() + 4;
            let mut p = payload.clone();
            p[at] ^= b'v' ^ b'x';
            rebuild(&magic, &kind, &id, &p, &sig)
        }
        "high-s.bin" => {
            let s = p256_high_s(&sig);
            rebuild(&magic, &kind, &id, &payload, &s)
        }
        "key-id-bit.bin" => {
            let mut k = id.clone();
            k[0] ^= 0x80;
            rebuild(&magic, &kind, &k, &payload, &sig)
        }
        "noncanonical-payload.bin" => {
            // {"v": 1, …} → {"v": 0x18 0x01, …}: the same value, another encoding.
            assert_eq!(&payload[..4], &[0xac, 0x61, b'v', 0x01]);
            let long_form = [&[0xac, 0x61, b'v', 0x18, 0x01][..], &payload[4..]].concat();
            envelope::seal(DocumentKind::License, &long_form, &key("TEST-ONLY-vendor.key")).unwrap()
        }
        "other-vendor.lic" => {
            let env = envelope::seal(
                DocumentKind::License,
                &payload,
                &key("TEST-ONLY-other-vendor.key"),
            )
            .unwrap();
            envelope::armor(DocumentKind::License, &env).into_bytes()
        }
        "request-label.lic" => lic_text
            .replace("NODELOCK LICENSE", "NODELOCK ACTIVATION REQUEST")
            .into_bytes(),
        "unknown-label.lic" => lic_text
            .replace("NODELOCK LICENSE", "NODELOCK FROBNICATOR")
            .into_bytes(),
        "receipt-kind.bin" => envelope::seal(
            DocumentKind::DeactivationReceipt,
            &payload,
            &key("TEST-ONLY-vendor.key"),
        )
        .unwrap(),
        "edited-request.req" => {
            let block = armor::find_block(&positive("activation-request.req"))
                .unwrap()
                .unwrap();
            let (m, k, i, p, s) = fields(&block.bytes);
            let mut request: activation::ActivationRequest = codec::decode(&p).unwrap();
            request.client = "nodelock 9.9.9".into();
            let edited = rebuild(&m, &k, &i, &codec::encode(&request).unwrap(), &s);
            envelope::armor(DocumentKind::ActivationRequest, &edited).into_bytes()
        }
        "deactivation-as-request.req" => positive("deactivation-request.deact"),
        other => panic!("no recipe for {other}"),
    }
}

/// `n − s` for a P-256 signature `r || s`: the other valid signature of the
/// same message, which nodelock refuses so that a signature has one form.
fn p256_high_s(sig: &[u8]) -> Vec<u8> {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc,
        0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    ];
    let s = &sig[32..];
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(N[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        out[i] = (d + 256 * borrow) as u8;
    }
    [&sig[..32], &out].concat()
}

fn vendor_ring() -> Keyring {
    [PublicKey::load(&fixture(VENDOR_PUB)).unwrap()]
        .into_iter()
        .collect()
}

/// The library's verdict on `bytes` read as `kind`: the envelope error's variant name.
fn library_error(kind: DocumentKind, bytes: &[u8]) -> String {
    let err = match kind {
        DocumentKind::License => match license::verify(bytes, &vendor_ring()) {
            Err(license::LicenseError::Envelope(e)) => e,
            Err(license::LicenseError::Invalid(_)) => return "Invalid".to_owned(),
            other => panic!("not an envelope refusal: {other:?}"),
        },
        DocumentKind::ActivationRequest => match activation::open_request(bytes) {
            Err(activation::ActivationError::Envelope(e)) => e,
            other => panic!("not an envelope refusal: {other:?}"),
        },
        other => panic!("no reader for {other}"),
    };
    variant(&err)
}

fn variant(e: &EnvelopeError) -> String {
    format!("{e:?}")
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn every_negative_vector_is_refused_for_its_reason() {
    let write = std::env::var_os("NODELOCK_WRITE_VECTORS").is_some();
    if write {
        std::fs::create_dir_all(dir()).unwrap();
    }
    let mut wrong = Vec::new();
    for case in CASES {
        let path = dir().join(case.file);
        if write {
            std::fs::write(&path, make(case.file)).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            bytes,
            make(case.file),
            "{} is no longer what its recipe makes",
            case.file
        );
        let got = library_error(case.kind, &bytes);
        if got != case.error {
            wrong.push(format!(
                "{}: {got}, expected {} ({})",
                case.file, case.error, case.defect
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_table_names_every_file_and_every_file_is_in_the_table() {
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "README.md")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| c.file.to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    for case in CASES {
        assert!(
            readme.contains(&format!("`{}`", case.file)),
            "README.md does not describe {}",
            case.file
        );
    }
}

#[test]
fn the_cli_refuses_each_with_its_exit_code_and_one_sentence() {
    let env = Env::new().on("laptop.json");
    let vendor_pub = fixture(VENDOR_PUB);
    let vendor_key = fixture(VENDOR_KEY);
    let ledger = env.path("ledger.sqlite");
    let out = env.run(&["vendor", "init", "--ledger", ledger.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for case in CASES {
        let path = dir().join(case.file);
        let out = match case.kind {
            DocumentKind::License => env.run(&[
                "verify",
                "--pubkey",
                vendor_pub.to_str().unwrap(),
                path.to_str().unwrap(),
            ]),
            _ => env.run(&[
                "vendor",
                "answer",
                "--ledger",
                ledger.to_str().unwrap(),
                "--signing-key",
                vendor_key.to_str().unwrap(),
                path.to_str().unwrap(),
                "-o",
                env.path("answer.out").to_str().unwrap(),
            ]),
        };
        assert_eq!(code(&out), case.exit, "{}: {}", case.file, stderr(&out));
        assert_one_sentence(&out);
        assert!(
            !env.path("answer.out").exists(),
            "{}: an answer was written",
            case.file
        );
    }
}
