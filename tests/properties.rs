//! Properties over generated input: parsers never panic, armor survives
//! transport damage, normalisation ignores spelling.

use nodelock::documents::license;
use nodelock::format::envelope::{self, DocumentKind};
use nodelock::format::{Keyring, PrivateKey};
use nodelock::machine::facts::{Facts, Interface};
use nodelock::machine::fingerprint::Fingerprint;
use proptest::prelude::*;

fn key() -> &'static PrivateKey {
    static KEY: std::sync::OnceLock<PrivateKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_the_license_reader(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let ring: Keyring = [key().public()].into_iter().collect();
        prop_assert!(license::verify(&bytes, &ring).is_err());
    }

    #[test]
    fn arbitrary_text_around_armor_never_panics(prefix in ".{0,200}", body in "[A-Za-z0-9+/=\\s-]{0,400}") {
        let text = format!("{prefix}\n-----BEGIN NODELOCK LICENSE-----\n{body}\n-----END NODELOCK LICENSE-----\n");
        let _ = envelope::parse(text.as_bytes(), DocumentKind::License);
    }

    #[test]
    fn armor_survives_rewrapping_indentation_and_crlf(
        payload in proptest::collection::vec(any::<u8>(), 1..600),
        width in 1usize..100,
        indent in 0usize..8,
        crlf in any::<bool>(),
    ) {
        let env = envelope::seal(DocumentKind::License, &payload, key()).unwrap();
        let text = envelope::armor(DocumentKind::License, &env);
        let mut lines = text.lines();
        let begin = lines.next().unwrap();
        let rest: Vec<&str> = lines.collect();
        let (end, body) = rest.split_last().unwrap();
        let joined: String = body.concat();
        let nl = if crlf { "\r\n" } else { "\n" };
        let pad = " ".repeat(indent);
        let mut damaged = format!("Hello{nl}{pad}{begin}{nl}");
        for chunk in joined.as_bytes().chunks(width) {
            damaged.push_str(&format!("{pad}{}{nl}", String::from_utf8_lossy(chunk)));
        }
        damaged.push_str(&format!("{pad}{end}{nl}bye{nl}"));
        let doc = envelope::parse(damaged.as_bytes(), DocumentKind::License).unwrap();
        prop_assert_eq!(doc.untrusted_payload(), &payload[..]);
    }

    #[test]
    fn mac_spelling_and_interface_order_do_not_change_the_fingerprint(
        macs in proptest::collection::btree_set(any::<[u8; 6]>().prop_map(|mut m| { m[0] &= 0xfc; m }), 1..5),
        upper in any::<bool>(),
        dashes in any::<bool>(),
    ) {
        let spell = |m: &[u8; 6], upper: bool, sep: &str| {
            let s: Vec<String> = m.iter().map(|b| if upper { format!("{b:02X}") } else { format!("{b:02x}") }).collect();
            s.join(sep)
        };
        let facts = |list: Vec<String>| {
            let mut f = Facts::empty();
            f.machine_id = Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into());
            f.network = Some(list.into_iter().enumerate().map(|(i, mac)| Interface {
                name: Some(format!("en{i}")), mac: Some(mac), physical: Some(true),
            }).collect());
            Fingerprint::from_facts(&f).unwrap()
        };
        let a = facts(macs.iter().map(|m| spell(m, false, ":")).collect());
        let b = facts(macs.iter().rev().map(|m| spell(m, upper, if dashes { "-" } else { "" })).collect());
        prop_assert_eq!(a, b);
    }
}
