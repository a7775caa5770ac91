//! Vendor keys: openssl reads ours and we read openssl's; private keys are
//! owner-only and never silently replaced; signatures we make are low-S.

mod common;

use std::process::Command as Std;

use common::*;
use nodelock::format::{PrivateKey, PublicKey};

fn openssl(args: &[&str]) -> std::process::Output {
    Std::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command is needed for these tests (.ci/run installs it)")
}

#[test]
fn keys_we_make_load_in_openssl_and_sign_for_it() {
    let env = Env::new();
    let dir = env.path("keys");
    let out = env.run(&["vendor", "keygen", "--out", dir.to_str().unwrap(), "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let key_id = json(&out)["key_id"].as_str().unwrap().to_owned();
    let private = dir.join("vendor.key");
    let public = dir.join("vendor.pub");
    let check = openssl(&["pkey", "-in", private.to_str().unwrap(), "-noout", "-check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let derived = openssl(&["pkey", "-in", private.to_str().unwrap(), "-pubout"]);
    assert_eq!(
        String::from_utf8_lossy(&derived.stdout),
        std::fs::read_to_string(&public).unwrap()
    );
    // openssl verifies a signature made with our key (DER form for openssl).
    let key = PrivateKey::load(&private).unwrap();
    assert_eq!(key.public().id().to_string(), key_id);
    let message = env.path("msg");
    std::fs::write(&message, b"nodelock interop").unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&key.sign_raw(b"nodelock interop")).unwrap();
    let sig_path = env.path("sig.der");
    std::fs::write(&sig_path, sig.to_der().as_bytes()).unwrap();
    let verify = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        public.to_str().unwrap(),
        "-signature",
        sig_path.to_str().unwrap(),
        message.to_str().unwrap(),
    ]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn keys_made_by_openssl_load_and_work() {
    let env = Env::new();
    let private = env.path("ossl.key");
    let public = env.path("ossl.pub");
    let made = openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        private.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let pubout = openssl(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    assert!(pubout.status.success());
    let key = PrivateKey::load(&private).unwrap();
    let pubkey = PublicKey::load(&public).unwrap();
    assert_eq!(key.public(), pubkey);
    let sig = key.sign_raw(b"message");
    pubkey.verify_strict(b"message", &sig).unwrap();
    // And the CLI issues with it.
    let env = env.on("laptop.json");
    let fp = env.report("laptop.json");
    let out = env.run(&[
        "vendor",
        "issue",
        "--signing-key",
        private.to_str().unwrap(),
        "--fingerprint",
        fp.to_str().unwrap(),
        "--product",
        "surveyor",
        "-o",
        env.path("l.lic").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.run(&[
        "verify",
        "--pubkey",
        public.to_str().unwrap(),
        env.path("l.lic").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn sec1_private_key_gets_a_conversion_hint() {
    let env = Env::new();
    let private = env.path("sec1.key");
    let made = openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        private.to_str().unwrap(),
    ]);
    assert!(made.status.success());
    let err = PrivateKey::load(&private).unwrap_err().to_string();
    assert!(err.contains("openssl pkcs8 -topk8"), "{err}");
}

#[cfg(unix)]
#[test]
fn private_key_is_owner_only_and_never_overwritten_without_force() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let dir = env.path("k");
    assert_eq!(
        code(&env.run(&["vendor", "keygen", "--out", dir.to_str().unwrap()])),
        0
    );
    let mode = std::fs::metadata(dir.join("vendor.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let before = std::fs::read(dir.join("vendor.key")).unwrap();
    let again = env.run(&["vendor", "keygen", "--out", dir.to_str().unwrap()]);
    assert_eq!(code(&again), 20);
    assert_one_sentence(&again);
    assert_eq!(std::fs::read(dir.join("vendor.key")).unwrap(), before);
    let forced = env.run(&["vendor", "keygen", "--out", dir.to_str().unwrap(), "--force"]);
    assert_eq!(code(&forced), 0);
    assert_ne!(std::fs::read(dir.join("vendor.key")).unwrap(), before);
    let mode = std::fs::metadata(dir.join("vendor.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn keygen_never_prints_the_private_key() {
    let env = Env::new();
    let dir = env.path("k");
    let out = env.run(&["vendor", "keygen", "--out", dir.to_str().unwrap(), "--json"]);
    let pem = std::fs::read_to_string(dir.join("vendor.key")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains(&body[..40]));
    assert!(!all.contains("PRIVATE KEY-----"));
}
