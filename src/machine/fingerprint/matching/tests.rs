use super::*;
use crate::machine::facts::{Facts, Interface, UserNamespace};

const UUID_A: &str = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const UUID_B: &str = "2c5f39cb-2fa1-11d2-883f-0016d3cca428";

/// A machine's facts, built up field by field.
#[derive(Clone)]
struct M(Facts);

impl M {
    fn new(machine_id: &str) -> M {
        let mut f = Facts::empty();
        f.machine_id = Some(machine_id.into());
        f.disk_serials = Some(vec![]);
        f.network = Some(vec![]);
        f.user_namespace = Some(UserNamespace::Initial);
        M(f)
    }
    fn uuid(mut self, u: &str) -> M {
        self.0.product_uuid = Some(u.into());
        self
    }
    fn board(mut self, b: &str) -> M {
        self.0.board_serial = Some(b.into());
        self
    }
    fn disk(mut self, d: &str) -> M {
        self.0.disk_serials.get_or_insert_with(Vec::new).push(d.into());
        self
    }
    fn mac(mut self, m: &str) -> M {
        self.0.network.get_or_insert_with(Vec::new).push(Interface {
            name: Some(format!("if{m}")),
            mac: Some(m.into()),
            physical: Some(true),
        });
        self
    }
    /// What an ordinary user reads: no SMBIOS data.
    fn seen_by_user(mut self) -> M {
        self.0.product_uuid = None;
        self.0.board_serial = None;
        self
    }
    fn disks_unreadable(mut self) -> M {
        self.0.disk_serials = None;
        self
    }
    fn nested(mut self) -> M {
        self.0.user_namespace = Some(UserNamespace::Nested);
        self
    }
    fn fp(&self) -> Fingerprint {
        Fingerprint::from_facts(&self.0).unwrap()
    }
}

/// The four-anchor laptop, as bound by root.
fn laptop() -> M {
    M::new("m1")
        .uuid(UUID_A)
        .board("/7Q1XL13/CN1296373K0123/")
        .disk("S3Z9NB0K123456A")
        .mac("3c:52:82:aa:bb:cc")
}

fn verdict(bound: &M, now: &M, policy: MatchPolicy) -> Verdict {
    compare(&bound.fp(), &now.fp(), policy, true).verdict
}

#[test]
fn unknown_firmware_is_not_a_mismatch() {
    let r = compare(
        &laptop().fp(),
        &laptop().seen_by_user().fp(),
        MatchPolicy::Standard,
        true,
    );
    assert_eq!(r.verdict, Verdict::Holds, "{}", r.reason);
    assert_eq!((r.anchors_matched, r.anchors_changed), (2, 0));
}

#[test]
fn one_spoofed_mac_with_the_rest_emptied_or_hidden_fails() {
    let bound = laptop();
    let spoof = M::new("fake").mac("3c:52:82:aa:bb:cc");
    // Emptied disk list: absent weighs against.
    for policy in [MatchPolicy::Strict, MatchPolicy::Standard] {
        assert_eq!(verdict(&bound, &spoof, policy), Verdict::Fails, "{policy}");
        assert_eq!(
            verdict(&bound, &spoof.clone().disks_unreadable(), policy),
            Verdict::Fails,
            "{policy}"
        );
    }
    let r = compare(
        &bound.fp(),
        &spoof.clone().disks_unreadable().fp(),
        MatchPolicy::Standard,
        true,
    );
    assert!(r.reason.contains("disk list cannot be read"), "{}", r.reason);
    // The old rule let it pass; the tolerant policy still does, by design.
    assert_eq!(verdict(&bound, &spoof, MatchPolicy::Tolerant), Verdict::Holds);
}

#[test]
fn a_user_namespace_is_refused_unless_tolerant() {
    let inside = laptop().seen_by_user().nested();
    for policy in [MatchPolicy::Strict, MatchPolicy::Standard] {
        let r = compare(&laptop().fp(), &inside.fp(), policy, true);
        assert_eq!(r.verdict, Verdict::Fails);
        assert!(r.reason.contains("user namespace"), "{}", r.reason);
    }
    let r = compare(&laptop().fp(), &inside.fp(), MatchPolicy::Tolerant, true);
    assert_eq!(r.verdict, Verdict::Holds);
    assert!(r.warning.unwrap().contains("user namespace"));
    // Clone-only bindings too.
    let vm = M::new("m1");
    assert_eq!(
        verdict(&vm, &vm.clone().nested(), MatchPolicy::Standard),
        Verdict::Fails
    );
}

#[test]
fn copied_machine_id_alone_never_passes_a_strong_binding() {
    let bound = M::new("m1").uuid(UUID_A).mac("3c:52:82:aa:bb:cc");
    let clone = M::new("m1").uuid(UUID_B).mac("3c:52:82:aa:bb:dd");
    for policy in MatchPolicy::ALL {
        let r = compare(&bound.fp(), &clone.fp(), policy, true);
        assert_eq!(r.verdict, Verdict::Fails, "{policy}");
        assert_eq!(r.changed(), vec![ComponentName::ProductUuid, ComponentName::Mac]);
    }
}

#[test]
fn a_changed_smbios_uuid_outweighs_a_surviving_mac() {
    let bound = M::new("m1").uuid(UUID_A).mac("3c:52:82:aa:bb:cc");
    let other_board = M::new("m1").uuid(UUID_B).mac("3c:52:82:aa:bb:cc");
    for policy in MatchPolicy::ALL {
        assert_eq!(verdict(&bound, &other_board, policy), Verdict::Fails, "{policy}");
    }
}

#[test]
fn a_tie_as_user_holds_on_the_same_installation_of_real_hardware_only() {
    // Laptop checked by a user after its disk was replaced (cloned onto the new one).
    let new_disk = laptop().seen_by_user();
    let mut new_disk = new_disk;
    new_disk.0.disk_serials = Some(vec!["WD-NEW0001".into()]);
    assert_eq!(
        verdict(&laptop(), &new_disk, MatchPolicy::Standard),
        Verdict::Holds
    );
    assert_eq!(
        verdict(&laptop(), &new_disk, MatchPolicy::Tolerant),
        Verdict::Holds
    );
    assert_eq!(verdict(&laptop(), &new_disk, MatchPolicy::Strict), Verdict::Fails);
    // Another installation: refused.
    let mut reinstalled = new_disk.clone();
    reinstalled.0.machine_id = Some("m2".into());
    assert_eq!(
        verdict(&laptop(), &reinstalled, MatchPolicy::Standard),
        Verdict::Fails
    );
    // A VM whose hypervisor copied the disk serial into a clone: refused.
    let vm = M::new("m1").disk("VMDISK-7731").mac("00:50:56:01:02:03");
    let clone = M::new("m1").disk("VMDISK-7731").mac("00:50:56:01:02:04");
    assert_eq!(verdict(&vm, &clone, MatchPolicy::Standard), Verdict::Fails);
    assert_eq!(verdict(&vm, &clone, MatchPolicy::Tolerant), Verdict::Holds);
}

#[test]
fn firmware_outweighs_new_disk_and_wifi_as_root() {
    let bound = M::new("m1")
        .uuid(UUID_A)
        .board("BSN-1")
        .disk("S3Z9NB0K123456A")
        .mac("f8:63:3f:11:22:33");
    let repaired = M::new("m1")
        .uuid(UUID_A)
        .board("BSN-1")
        .disk("WD-NEW0001")
        .mac("f8:63:3f:44:55:66");
    assert_eq!(verdict(&bound, &repaired, MatchPolicy::Standard), Verdict::Holds);
    assert_eq!(verdict(&bound, &repaired, MatchPolicy::Strict), Verdict::Holds);
}

#[test]
fn a_kvm_guest_bound_as_root_holds_for_its_users() {
    let bound = M::new("m1").uuid(UUID_A).mac("52:54:00:12:34:56");
    let user = bound.clone().seen_by_user();
    assert_eq!(verdict(&bound, &user, MatchPolicy::Standard), Verdict::Holds);
    // virt-clone gives the copy a new MAC.
    let clone = M::new("m1").mac("52:54:00:65:43:21");
    assert_eq!(verdict(&bound, &clone, MatchPolicy::Standard), Verdict::Fails);
}

#[test]
fn strict_ignores_anchors_the_binding_never_had() {
    // Bound by a user (no SMBIOS data), checked by root: more is readable, not less.
    let user_bound = laptop().seen_by_user();
    assert_eq!(
        verdict(&user_bound, &laptop(), MatchPolicy::Strict),
        Verdict::Holds
    );
}

#[test]
fn strict_needs_every_bound_anchor_readable() {
    assert_eq!(
        verdict(&laptop(), &laptop().seen_by_user(), MatchPolicy::Strict),
        Verdict::Fails
    );
    let user_bound = laptop().seen_by_user();
    assert_eq!(
        verdict(&user_bound, &user_bound, MatchPolicy::Strict),
        Verdict::Holds
    );
}

#[test]
fn clone_only_binding_follows_policy() {
    let bound = M::new("m1");
    let same = M::new("m1");
    let r = compare(&bound.fp(), &same.fp(), MatchPolicy::Standard, true);
    assert_eq!(r.verdict, Verdict::Holds);
    assert!(r.warning.is_some());
    assert_eq!(
        compare(&bound.fp(), &same.fp(), MatchPolicy::Standard, false).verdict,
        Verdict::Fails
    );
    assert_eq!(verdict(&bound, &same, MatchPolicy::Strict), Verdict::Fails);
    assert_eq!(
        verdict(&bound, &M::new("m2"), MatchPolicy::Tolerant),
        Verdict::Fails
    );
}

#[test]
fn policy_names_round_trip_and_unknown_ones_fail() {
    for p in MatchPolicy::ALL {
        assert_eq!(p.as_str().parse::<MatchPolicy>().unwrap(), p);
    }
    assert!("lenient".parse::<MatchPolicy>().is_err());
    assert_eq!(MatchPolicy::default(), MatchPolicy::Standard);
}

#[test]
fn a_vanished_interface_may_tie_a_vanished_disk_may_not() {
    // A Wi-Fi-only laptop bound by a user; later its Wi-Fi driver is missing.
    let bound = M::new("m1").disk("S3Z9NB0K123456A").mac("f8:63:3f:11:22:33");
    let no_wifi = M::new("m1").disk("S3Z9NB0K123456A");
    assert_eq!(verdict(&bound, &no_wifi, MatchPolicy::Standard), Verdict::Holds);
    assert_eq!(verdict(&bound, &no_wifi, MatchPolicy::Strict), Verdict::Fails);
    // The mirror image, the shape of the spoof: the MAC shown, the disks emptied.
    let no_disk = M::new("m1").mac("f8:63:3f:11:22:33");
    assert_eq!(verdict(&bound, &no_disk, MatchPolicy::Standard), Verdict::Fails);
}

#[test]
fn policies_print_their_names() {
    assert_eq!(MatchPolicy::Tolerant.to_string(), "tolerant");
    assert_eq!(MatchPolicy::Strict.to_string(), "strict");
}

#[test]
fn a_hidden_interface_list_refuses_like_a_hidden_disk_list() {
    let bound = M::new("m1").mac("3c:52:82:aa:bb:cc").mac("f8:63:3f:11:22:33");
    let mut hidden = bound.clone();
    hidden.0.network = None;
    let r = compare(&bound.fp(), &hidden.fp(), MatchPolicy::Standard, true);
    assert_eq!(r.verdict, Verdict::Fails);
    assert!(
        r.reason.contains("network interface list cannot be read"),
        "{}",
        r.reason
    );
    assert_eq!(verdict(&bound, &hidden, MatchPolicy::Tolerant), Verdict::Fails);
}

#[test]
fn emptied_lists_count_as_changed_in_the_report() {
    // Bound: UUID, disk, MAC. Now: same UUID, another disk, no interface at all.
    let bound = M::new("m1")
        .uuid(UUID_A)
        .disk("S3Z9NB0K123456A")
        .mac("3c:52:82:aa:bb:cc");
    let now = M::new("m1").uuid(UUID_A).disk("WD-OTHER0001");
    let r = compare(&bound.fp(), &now.fp(), MatchPolicy::Standard, true);
    assert_eq!((r.anchors_matched, r.anchors_changed), (1, 2));
    assert_eq!(r.changed(), vec![ComponentName::Disk, ComponentName::Mac]);
    // UUID (2) against disk and MAC (1 + 1): a tie with a vanished MAC, same
    // installation, firmware unchanged: holds.
    assert_eq!(r.verdict, Verdict::Holds, "{}", r.reason);
}

#[test]
fn the_namespace_warning_is_only_for_checks_inside_one() {
    let r = compare(
        &laptop().fp(),
        &laptop().seen_by_user().fp(),
        MatchPolicy::Tolerant,
        true,
    );
    assert_eq!(r.verdict, Verdict::Holds);
    assert_eq!(r.warning, None);
}

#[test]
fn nothing_readable_and_nothing_present_are_told_apart() {
    // Bound as root with SMBIOS only; a user reads none of it.
    let bound = M::new("m1").uuid(UUID_A).board("BSN-1");
    let r = compare(
        &bound.fp(),
        &bound.clone().seen_by_user().fp(),
        MatchPolicy::Standard,
        true,
    );
    assert_eq!(r.verdict, Verdict::Fails);
    assert!(r.reason.contains("can be read here"), "{}", r.reason);
    // Every identifier there, and none of them the licensed machine's.
    let other = M::new("m1").uuid(UUID_B).board("BSN-2");
    let r = compare(&bound.fp(), &other.fp(), MatchPolicy::Standard, true);
    assert!(r.reason.contains("this is another machine"), "{}", r.reason);
}

#[test]
fn a_vanished_disk_is_named_as_the_reason() {
    let bound = M::new("m1").disk("S3Z9NB0K123456A").mac("3c:52:82:aa:bb:cc");
    let emptied = M::new("m1").mac("3c:52:82:aa:bb:cc");
    let r = compare(&bound.fp(), &emptied.fp(), MatchPolicy::Standard, true);
    assert_eq!(r.verdict, Verdict::Fails);
    assert!(r.reason.contains("is gone from this machine"), "{}", r.reason);
    // Replaced rather than vanished, on another installation: the other reason.
    let replaced = M::new("m2").disk("WD-OTHER0001").mac("3c:52:82:aa:bb:cc");
    let r = compare(&bound.fp(), &replaced.fp(), MatchPolicy::Standard, true);
    assert_eq!(r.verdict, Verdict::Fails);
    assert!(
        r.reason.contains("more of the licensed machine's"),
        "{}",
        r.reason
    );
    let r = compare(&bound.fp(), &replaced.fp(), MatchPolicy::Strict, true);
    assert!(
        r.reason.contains("more of the licensed machine's"),
        "{}",
        r.reason
    );
}
