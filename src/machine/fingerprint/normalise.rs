//! Normalisation and the placeholder rules of facts-v1 ("Rules every reader
//! follows"): values that firmware or a hypervisor ships instead of real data
//! count as missing, and equal values compare equal however they are spelled.

/// Values shipped in place of a serial, in *key* form (see [`key`]): the
/// facts-v1 list, the variants firmware writes of them ("To be filled by
/// O.E.M" without its last dot, "Default_String"), entries of the filter lists
/// public inventory tools keep (GLPI, OCS Inventory, osquery, libvirt), and
/// the constant disk serials of cloud block devices (GCP's
/// `persistent-disk-N` and `nvme_card-pd`), which every instance shows.
/// docs/FORMAT.md §3 lists the same keys (a test compares them).
pub const TEMPLATE_KEYS: &[&str] = &[
    "tobefilledbyoem",
    "tobefilledbyoemtobefilledbyoem",
    "defaultstring",
    "default",
    "systemserialnumber",
    "systemserial",
    "chassisserialnumber",
    "baseboardserialnumber",
    "type2boardserialnumber",
    "notspecified",
    "notapplicable",
    "notavailable",
    "notdefined",
    "notset",
    "na",
    "none",
    "null",
    "nil",
    "unknown",
    "invalid",
    "empty",
    "oem",
    "serial",
    "serialnumber",
    "systemproductname",
    "a123456789",
    "sn12345",
    "bsn12345678901234567",
    "nvmecard",
    "nvmecardpd",
];

/// A value's key for the template list: lower case, letters and digits only,
/// so that case, punctuation, underscores and spacing do not matter.
pub fn key(value: &str) -> String {
    value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// UUIDs known to be shared by many machines, in canonical form (see
/// [`uuid`]): the AMI counting UUID, Phoenix's, and Dell's blank service tag.
const PLACEHOLDER_UUIDS: &[&str] = &[
    "03000200-0400-0500-0006-000700080009",
    "00000000-0000-0000-0807-060504030201",
    "4c4c4544-0020-2010-8020-a0c04f202020",
];

/// A serial-like value: trimmed, inner whitespace collapsed, upper-cased;
/// `None` for placeholders.
pub fn serial(raw: &str) -> Option<String> {
    let value = raw
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    (!is_placeholder(&value)).then_some(value)
}

/// The facts-v1 placeholder rules for free-text identifiers.
pub fn is_placeholder(value: &str) -> bool {
    let lower = value.trim().to_lowercase();
    let key = key(&lower);
    let alnum: Vec<char> = key.chars().collect();
    if alnum.is_empty() || TEMPLATE_KEYS.contains(&key.as_str()) || is_cloud_disk_name(&key) {
        return true;
    }
    if alnum.iter().all(|c| *c == alnum[0]) || is_qemu_default_serial(&lower) {
        return true;
    }
    is_counting_run(&alnum)
}

/// GCP names a persistent disk's serial after its device: `persistent-disk-0`,
/// `persistent-disk-1`, … on every instance.
fn is_cloud_disk_name(key: &str) -> bool {
    key.strip_prefix("persistentdisk")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// QEMU gives every emulated IDE/SATA disk `QM00001`, `QM00002`, … on every VM.
fn is_qemu_default_serial(lower: &str) -> bool {
    lower.len() == 7 && lower.starts_with("qm") && lower[2..].chars().all(|c| c.is_ascii_digit())
}

/// `0123456789`, `123456789`, `1234567890` and the like: at least four digits,
/// each one more (or each one less) than the last, wrapping 9 to 0.
fn is_counting_run(chars: &[char]) -> bool {
    if chars.len() < 4 || !chars.iter().all(char::is_ascii_digit) {
        return false;
    }
    let digits: Vec<u32> = chars.iter().filter_map(|c| c.to_digit(10)).collect();
    let step = |d: i32| {
        digits
            .windows(2)
            .all(|w| (w[0] as i32 + d).rem_euclid(10) == w[1] as i32)
    };
    step(1) || step(-1)
}

/// A machine id: trimmed and lower-cased; `None` when empty or a placeholder.
pub fn machine_id(raw: &str) -> Option<String> {
    let value = raw.trim().to_lowercase();
    if value == "uninitialized" || is_placeholder(&value) {
        return None;
    }
    Some(value)
}

/// Parses a UUID from any common spelling (case, braces, dashes) into 16 bytes.
fn uuid_bytes(raw: &str) -> Option<[u8; 16]> {
    let hex: String = raw
        .chars()
        .filter(|c| !matches!(c, '-' | '{' | '}' | ' '))
        .collect();
    let mut out = [0u8; 16];
    let decoded = base16ct::mixed::decode(&hex, &mut out).ok()?;
    (decoded.len() == 16).then_some(out)
}

/// SMBIOS 2.6 changed the byte order of the first three fields; this swaps them.
fn swap_fields(b: [u8; 16]) -> [u8; 16] {
    let mut s = b;
    s[..4].reverse();
    s[4..6].reverse();
    s[6..8].reverse();
    s
}

fn format_uuid(b: &[u8; 16]) -> String {
    let h = base16ct::lower::encode_string(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A system UUID in canonical form: lower case, and of its two byte orders the
/// one that sorts first, so that both spellings of one UUID are one value.
/// `None` for placeholders: all bytes equal, mostly zero, or a known shared UUID.
/// A value that is not a UUID at all is treated as a serial.
pub fn uuid(raw: &str) -> Option<String> {
    let Some(bytes) = uuid_bytes(raw) else {
        return serial(raw);
    };
    if bytes.iter().all(|b| *b == bytes[0]) || bytes.iter().filter(|b| **b == 0).count() >= 8 {
        return None;
    }
    let canonical = format_uuid(&bytes.min(swap_fields(bytes)));
    let is_known = PLACEHOLDER_UUIDS
        .iter()
        .any(|p| uuid_bytes(p).is_some_and(|pb| format_uuid(&pb.min(swap_fields(pb))) == canonical));
    (!is_known).then_some(canonical)
}

/// A MAC as 12 lower-case hex digits, accepting `aa:bb:..`, `AA-BB-..`,
/// `aabb.ccdd.eeff` and `aabb..`. `None` for zero, broadcast and multicast
/// addresses, and for locally administered ones: those are assigned by
/// software (VM and container links, Wi-Fi MAC randomisation), not burnt in.
/// One locally administered prefix is kept: QEMU/KVM's `52:54:00`, which
/// libvirt assigns once per guest NIC (random within the prefix) and
/// `virt-clone` replaces, so it identifies a KVM guest the way a burnt-in MAC
/// identifies hardware; without it, a KVM guest checked by an ordinary user
/// would show no readable identifier at all.
pub fn mac(raw: &str) -> Option<String> {
    let hex: String = raw
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_lowercase();
    if hex.len() != 12
        || raw
            .chars()
            .any(|c| !c.is_ascii_hexdigit() && !matches!(c, ':' | '-' | '.' | ' '))
    {
        return None;
    }
    let first = u8::from_str_radix(&hex[..2], 16).ok()?;
    let administered_locally = first & 0x02 != 0 && !hex.starts_with(QEMU_MAC_PREFIX);
    if hex.chars().all(|c| c == '0') || first & 0x01 != 0 || administered_locally {
        return None;
    }
    Some(hex)
}

/// QEMU/KVM's MAC prefix (locally administered, kept as an anchor).
const QEMU_MAC_PREFIX: &str = "525400";

/// OUIs that hypervisors give their guests' NICs: QEMU/KVM, VMware (four),
/// VirtualBox, Hyper-V, Xen, Parallels. A machine showing one is a VM, whose
/// disks and firmware ids a hypervisor may copy into clones; the standard
/// match policy then breaks no ties in its favour. docs/FORMAT.md §3 lists
/// the same (a test compares them).
pub const HYPERVISOR_MAC_PREFIXES: &[&str] = &[
    "525400", "000c29", "005056", "000569", "001c14", "080027", "00155d", "00163e", "001c42",
];

/// Whether a normalised MAC (from [`mac`]) belongs to a hypervisor's guest NIC.
pub fn is_hypervisor_mac(normalised: &str) -> bool {
    HYPERVISOR_MAC_PREFIXES.iter().any(|p| normalised.starts_with(p))
}

/// Interface name prefixes of software links, ignored even if a snapshot
/// marks them physical (a case-sensitive prefix match on the name as given).
/// docs/FORMAT.md §3 lists the same (a test compares them).
pub const VIRTUAL_INTERFACE_PREFIXES: &[&str] = &[
    "lo",
    "docker",
    "veth",
    "br-",
    "virbr",
    "vnet",
    "tun",
    "tap",
    "wg",
    "zt",
    "tailscale",
    "ifb",
    "dummy",
    "vmnet",
    "vboxnet",
    "utun",
    "awdl",
    "llw",
    "bond",
    "team",
    "cni",
    "flannel",
    "cali",
    "kube",
    "podman",
    "lxc",
    "lxd",
];

/// Interface names that are software links even if a snapshot claims otherwise.
pub fn is_virtual_interface_name(name: &str) -> bool {
    VIRTUAL_INTERFACE_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// A free-text descriptive value: whitespace collapsed, lower-cased.
pub fn text(raw: &str) -> Option<String> {
    let value = raw
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_missing() {
        for p in [
            "",
            "   ",
            ".........",
            "0",
            "00000000",
            "XXXXXXXXXX",
            "0123456789",
            "123456789",
            "1234567890",
            "To Be Filled By O.E.M.",
            "Default string",
            "SYSTEM SERIAL NUMBER",
            "Not Specified",
            "N/A",
            "QM00001",
            "qm00003",
            "None",
            "INVALID",
            "$(DEFAULT_STRING)",
            "#A123456789",
            "Type2 - Board Serial Number",
            // Spellings firmware and tools really ship (punctuation, case,
            // underscores and spacing do not matter).
            "To be filled by O.E.M",
            "TO BE FILLED BY O.E.M",
            "To Be Filled By OEM",
            "Default",
            "Default_String",
            "DEFAULT-STRING",
            "Not Defined",
            "not  specified",
            "System Serial#",
            "n.a.",
            // Constant serials of cloud block devices.
            "persistent-disk-0",
            "persistent-disk-12",
            "nvme_card-pd",
            "nvme_card",
        ] {
            assert_eq!(serial(p), None, "{p:?} should be a placeholder");
        }
        for real in [
            "/7Q1XL13/CN1296373K0123/",
            "S3Z9NB0K123456A",
            "PF2ABCDE",
            "1357",
            "persistent-disk-data",
            "Default-7Q1XL13",
            "vol0abc1234def567890",
        ] {
            assert!(serial(real).is_some(), "{real}");
        }
    }

    /// The backquoted items of the FORMAT.md paragraph that starts with `lead`, sorted.
    fn format_md_list(lead: &str) -> Vec<&'static str> {
        let spec = include_str!("../../../docs/FORMAT.md");
        let start = spec.find(lead).unwrap();
        let end = spec[start..].find("\n\n").map_or(spec.len(), |e| start + e);
        let mut listed: Vec<&str> = spec[start..end].split('`').skip(1).step_by(2).collect();
        listed.sort_unstable();
        listed
    }

    #[test]
    fn format_md_lists_exactly_the_code_s_lists() {
        let sorted = |list: &[&'static str]| {
            let mut v = list.to_vec();
            v.sort_unstable();
            v
        };
        assert_eq!(format_md_list("Template keys:"), sorted(TEMPLATE_KEYS));
        assert_eq!(
            format_md_list("Software link prefixes:"),
            sorted(VIRTUAL_INTERFACE_PREFIXES)
        );
        assert_eq!(
            format_md_list("Hypervisor MAC prefixes:"),
            sorted(HYPERVISOR_MAC_PREFIXES)
        );
    }

    #[test]
    fn placeholder_uuids_in_both_byte_orders() {
        for p in [
            "03000200-0400-0500-0006-000700080009",
            "00020003-0004-0005-0006-000700080009",
            "00000000-0000-0000-0807-060504030201",
            "4C4C4544-0020-2010-8020-A0C04F202020",
            "44454C4C-2000-1020-8020-A0C04F202020",
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "FEFEFEFE-FEFE-FEFE-FEFE-FEFEFEFEFEFE",
            "11111111-1111-1111-1111-111111111111",
            "00000000-0000-0000-0000-000000000001",
        ] {
            assert_eq!(uuid(p), None, "{p}");
        }
    }

    #[test]
    fn one_uuid_whatever_its_case_and_byte_order() {
        let a = uuid("4C4C4544-0042-3510-8058-B4C04F4E4D32").unwrap();
        assert_eq!(uuid("4c4c4544-0042-3510-8058-b4c04f4e4d32").unwrap(), a);
        assert_eq!(uuid("44454C4C-4200-1035-8058-B4C04F4E4D32").unwrap(), a);
        assert_eq!(uuid("{4C4C4544004235108058B4C04F4E4D32}").unwrap(), a);
        assert_ne!(uuid("4C4C4544-0042-3510-8058-B4C04F4E4D33").unwrap(), a);
    }

    #[test]
    fn mac_spellings_agree_and_soft_macs_are_dropped() {
        let m = mac("3c:52:82:aa:bb:cc").unwrap();
        for s in ["3C-52-82-AA-BB-CC", "3c5282aabbcc", "3c52.82aa.bbcc"] {
            assert_eq!(mac(s).as_deref(), Some(m.as_str()), "{s}");
        }
        for soft in [
            "00:00:00:00:00:00",
            "ff:ff:ff:ff:ff:ff",
            "01:00:5e:00:00:01",
            "02:42:ac:11:00:02",
            "02:fc:00:00:00:01",
            "52:54:01:00:00:01",
            "zz:zz",
        ] {
            assert_eq!(mac(soft), None, "{soft}");
        }
        // QEMU's per-guest prefix is kept although locally administered.
        let kvm = mac("52:54:00:12:34:56").unwrap();
        assert!(is_hypervisor_mac(&kvm));
        assert!(!is_hypervisor_mac(&m));
        assert!(is_hypervisor_mac(&mac("08:00:27:aa:bb:cc").unwrap()));
    }
}
