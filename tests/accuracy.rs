//! Matching accuracy on a population: false rejects and false accepts of
//! each match policy, per machine class, event and bind/check mode.
//!
//! The population is generated, deterministically (fixed seed), from a model:
//! class shares and the rates of placeholder firmware data, readable disk
//! serials, NICs and copy-prone virtual disks are the project's assumptions,
//! chosen to resemble public hardware-probe data (linux-hardware.org's
//! placeholder and device statistics). The figures therefore measure the
//! policies against this model, not the world; README "Match policies"
//! quotes them. `cargo test --test accuracy -- --nocapture` prints the tables.
//!
//! Labels: *benign* events are the same machine after a change its owner
//! makes (the license should hold), *impostors* are other machines, clones
//! and spoofs (it should fail), and *moves* (a physical disk, with the
//! installation on it, put into another machine) are reported apart: the
//! installation leaves the old machine, so no seat is doubled, and no policy
//! is judged on them.

use nodelock::machine::facts::{Facts, Interface, UserNamespace};
use nodelock::machine::fingerprint::{Fingerprint, MatchPolicy, Verdict, compare};

const MACHINES: usize = 3000;
const SEED: u64 = 0x6e6f_6465_6c6f_636b;

/// splitmix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn hex(&mut self, digits: usize) -> String {
        (0..digits).map(|_| format!("{:x}", self.next() % 16)).collect()
    }
    fn serial(&mut self, prefix: &str) -> String {
        const ALNUM: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
        let body: String = (0..10).map(|_| ALNUM[self.below(ALNUM.len())] as char).collect();
        format!("{prefix}{body}")
    }
    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
    fn mac(&mut self, oui: &str) -> String {
        let h = format!("{oui}{}", self.hex(12 - oui.len()));
        (0..6).map(|i| &h[2 * i..2 * i + 2]).collect::<Vec<_>>().join(":")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Laptop,
    OemDesktop,
    SelfBuilt,
    LabImaged,
    Kvm,
    Vmware,
    HyperV,
    VirtualBox,
    Cloud,
    Container,
}

impl Class {
    fn physical(self) -> bool {
        matches!(
            self,
            Class::Laptop | Class::OemDesktop | Class::SelfBuilt | Class::LabImaged
        )
    }
    /// The table's column: 0 physical, 1 VMs and cloud instances, 2 rootless containers.
    fn column(self) -> usize {
        match self {
            Class::Container => 2,
            c if c.physical() => 0,
            _ => 1,
        }
    }
    /// Shares in percent; they add up to 100.
    const SHARES: [(Class, usize); 10] = [
        (Class::Laptop, 35),
        (Class::OemDesktop, 22),
        (Class::SelfBuilt, 10),
        (Class::LabImaged, 6),
        (Class::Kvm, 8),
        (Class::Vmware, 5),
        (Class::HyperV, 3),
        (Class::VirtualBox, 2),
        (Class::Cloud, 6),
        (Class::Container, 3),
    ];
}

/// A generated machine: its class and what root would read on it.
#[derive(Clone)]
struct Machine {
    class: Class,
    facts: Facts,
}

fn nic(name: &str, mac: String) -> Interface {
    Interface {
        name: Some(name.into()),
        mac: Some(mac),
        physical: Some(true),
    }
}

/// OUIs of real NIC vendors (Intel, Realtek, Dell, Lenovo, Apple-made USB...).
const VENDOR_OUIS: [&str; 6] = ["3c5282", "f8633f", "00e04c", "a0369f", "98fa9b", "d89ef3"];
/// The master image every lab PC of one room was installed from.
const LAB_MACHINE_ID: &str = "1ab0000000000000000000000000cafe";

fn generate(rng: &mut Rng, class: Class) -> Machine {
    let mut f = Facts::empty();
    f.user_namespace = Some(UserNamespace::Initial);
    f.machine_id = Some(rng.hex(32));
    f.disk_serials = Some(vec![]);
    f.network = Some(vec![]);
    let oui = |rng: &mut Rng| VENDOR_OUIS[rng.below(VENDOR_OUIS.len())];
    let placeholder_uuid = "03000200-0400-0500-0006-000700080009";
    match class {
        Class::Laptop | Class::OemDesktop | Class::SelfBuilt | Class::LabImaged => {
            let (uuid_placeholder, board_placeholder) = match class {
                Class::SelfBuilt => (0.30, 0.60),
                Class::Laptop => (0.03, 0.20),
                _ => (0.02, 0.10),
            };
            f.product_uuid = Some(if rng.chance(uuid_placeholder) {
                placeholder_uuid.to_owned()
            } else {
                rng.uuid()
            });
            f.board_serial = Some(if rng.chance(board_placeholder) {
                "Default string".to_owned()
            } else {
                rng.serial("/BSN")
            });
            let disks = if class == Class::SelfBuilt {
                1 + rng.below(3)
            } else {
                1
            };
            for _ in 0..disks {
                // 5 % of disks show no readable serial (odd controllers, RAID).
                if !rng.chance(0.05) {
                    f.disk_serials.as_mut().unwrap().push(rng.serial("S"));
                }
            }
            let net = f.network.as_mut().unwrap();
            if class != Class::Laptop || rng.chance(0.5) {
                let vendor = oui(rng);
                net.push(nic("eth0", rng.mac(vendor)));
            }
            if class == Class::Laptop || rng.chance(0.3) {
                let vendor = oui(rng);
                net.push(nic("wlan0", rng.mac(vendor)));
            }
            if class == Class::LabImaged {
                f.machine_id = Some(LAB_MACHINE_ID.to_owned());
            }
        }
        Class::Kvm => {
            f.product_uuid = Some(rng.uuid());
            f.network.as_mut().unwrap().push(nic("enp1s0", rng.mac("525400")));
        }
        Class::Vmware => {
            f.product_uuid = Some(rng.uuid());
            f.disk_serials
                .as_mut()
                .unwrap()
                .push(format!("6000c29{}", rng.hex(25)));
            f.network.as_mut().unwrap().push(nic("ens160", rng.mac("005056")));
        }
        Class::HyperV => {
            f.product_uuid = Some(rng.uuid());
            f.board_serial = Some(rng.serial("0000-"));
            f.network.as_mut().unwrap().push(nic("eth0", rng.mac("00155d")));
        }
        Class::VirtualBox => {
            f.product_uuid = Some(rng.uuid());
            f.disk_serials
                .as_mut()
                .unwrap()
                .push(format!("VB{}-{}", rng.hex(8), rng.hex(8)));
            f.network.as_mut().unwrap().push(nic("enp0s3", rng.mac("080027")));
        }
        Class::Cloud => {
            // EC2-like: locally administered MACs (not anchors), an EBS volume id.
            f.product_uuid = Some(format!("ec2{}", &rng.uuid()[3..]));
            f.disk_serials
                .as_mut()
                .unwrap()
                .push(format!("vol{}", rng.hex(17)));
            f.network.as_mut().unwrap().push(nic("ens5", rng.mac("0a")));
        }
        Class::Container => {
            // A rootless container on a laptop: the host's disk and NICs, its own machine id.
            let host = generate(rng, Class::Laptop).facts;
            f.disk_serials = host.disk_serials;
            f.network = host.network;
            f.user_namespace = Some(UserNamespace::Nested);
        }
    }
    Machine { class, facts: f }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Benign,
    Impostor,
    Move,
}

/// One event: what happened to (or instead of) the licensed machine.
type Event = (&'static str, Label, Facts);

fn benign(rng: &mut Rng, m: &Machine) -> Event {
    let mut f = m.facts.clone();
    let physical = m.class.physical();
    let which = if physical { rng.below(9) } else { rng.below(5) };
    let name = match (physical, which) {
        (_, 0) => {
            f.memory_bytes = Some(32 << 30);
            f.hostname = Some("renamed".into());
            "RAM, host name or OS changed"
        }
        (_, 1) => {
            f.network.as_mut().unwrap().push(nic("usb0", rng.mac("00e04c")));
            "USB network adapter plugged in"
        }
        (_, 2) => {
            // BIOS update across SMBIOS 2.6: the UUID's byte order and case change.
            if let Some(u) = f.product_uuid.clone().filter(|u| u.len() == 36) {
                let b = u.replace('-', "");
                let swap = |s: &str| {
                    s.as_bytes()
                        .chunks(2)
                        .rev()
                        .map(|c| std::str::from_utf8(c).unwrap())
                        .collect::<String>()
                };
                f.product_uuid = Some(
                    format!(
                        "{}-{}-{}-{}",
                        swap(&b[..8]),
                        swap(&b[8..12]),
                        swap(&b[12..16]),
                        &u[19..]
                    )
                    .to_uppercase(),
                );
            }
            "firmware update (UUID byte order)"
        }
        (false, 3) => {
            f.disk_serials
                .as_mut()
                .unwrap()
                .push(format!("vol{}", rng.hex(17)));
            "virtual disk added"
        }
        (false, _) => {
            // The VM's NIC deleted and added again: a new MAC of the same hypervisor.
            if let Some(nic) = f.network.as_mut().unwrap().first_mut() {
                let oui: String = nic.mac.as_deref().unwrap_or("525400").replace(':', "")[..6].to_owned();
                nic.mac = Some(rng.mac(&oui));
            }
            "virtual NIC re-created (new MAC)"
        }
        (true, 3) => {
            let net = f.network.as_mut().unwrap();
            if let Some(w) = net.iter_mut().find(|i| i.name.as_deref() == Some("wlan0")) {
                w.mac = Some(rng.mac("f8633f"));
            } else if let Some(e) = net.first_mut() {
                e.mac = Some(rng.mac("a0369f"));
            }
            "network card replaced"
        }
        (true, 4) => {
            let disks = f.disk_serials.as_mut().unwrap();
            disks.clear();
            disks.push(rng.serial("WD-"));
            "disk replaced, installation copied"
        }
        (true, 5) => {
            f.disk_serials.as_mut().unwrap().push(rng.serial("Z"));
            "disk added"
        }
        (true, 6) => {
            f.network
                .as_mut()
                .unwrap()
                .retain(|i| i.name.as_deref() != Some("wlan0"));
            "Wi-Fi card removed or its driver missing"
        }
        (true, 7) => {
            f.network.as_mut().unwrap().push(nic("eth1", rng.mac("98fa9b")));
            "docking station"
        }
        _ => "nothing changed (reboot)",
    };
    (name, Label::Benign, f)
}

fn impostor(rng: &mut Rng, m: &Machine, population: &[Machine]) -> Event {
    let mut f;
    let which = rng.below(5);
    let name = match which {
        0 => {
            // Another machine of the same class.
            let pick = loop {
                let other = &population[rng.below(population.len())];
                if other.class == m.class && !std::ptr::eq(other, m) {
                    break other;
                }
            };
            f = pick.facts.clone();
            "another machine of the same class"
        }
        1 => {
            // A clone: VM copy, or a disk image written onto another PC.
            f = generate(rng, m.class).facts;
            f.machine_id = m.facts.machine_id.clone();
            match m.class {
                Class::Vmware | Class::VirtualBox => f.disk_serials = m.facts.disk_serials.clone(),
                Class::Container => f.disk_serials = m.facts.disk_serials.clone(),
                _ => {}
            }
            "clone or image of it"
        }
        2 => {
            // Same model: same placeholder firmware values, other hardware.
            f = generate(rng, m.class).facts;
            f.board_serial = m.facts.board_serial.clone().filter(|b| b == "Default string");
            "same model, other unit"
        }
        3 => {
            // The namespace spoof: one known MAC, everything else emptied.
            f = Facts::empty();
            f.machine_id = m.facts.machine_id.clone();
            f.disk_serials = Some(vec![]);
            f.network = Some(
                m.facts
                    .network
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .take(1)
                    .collect(),
            );
            f.user_namespace = Some(UserNamespace::Nested);
            "user-namespace spoof"
        }
        _ => {
            f = generate(rng, m.class).facts;
            if m.class.physical() && !m.facts.disk_serials.as_ref().unwrap().is_empty() {
                // The disk, with the installation on it, in another machine.
                f.disk_serials = m.facts.disk_serials.clone();
                f.machine_id = m.facts.machine_id.clone();
                return ("disk moved to another machine", Label::Move, f);
            }
            "another machine of the same class"
        }
    };
    (name, Label::Impostor, f)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    RootRoot,
    RootUser,
    UserUser,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::RootRoot, Mode::RootUser, Mode::UserUser];
    fn name(self) -> &'static str {
        match self {
            Mode::RootRoot => "bound root, checked root",
            Mode::RootUser => "bound root, checked user",
            Mode::UserUser => "bound user, checked user",
        }
    }
}

/// What an ordinary user reads: no SMBIOS data.
fn as_seen_by_user(f: &Facts) -> Facts {
    let mut u = f.clone();
    u.product_uuid = None;
    u.board_serial = None;
    u
}

#[derive(Default, Clone, Copy)]
struct Tally {
    pairs: u32,
    wrong: u32,
}

impl Tally {
    fn add(&mut self, wrong: bool) {
        self.pairs += 1;
        self.wrong += u32::from(wrong);
    }
    fn rate(self) -> f64 {
        if self.pairs == 0 {
            0.0
        } else {
            100.0 * f64::from(self.wrong) / f64::from(self.pairs)
        }
    }
}

/// The events of the whole population, in a fixed order.
fn events() -> Vec<(Class, Facts, Event)> {
    let mut rng = Rng(SEED);
    let mut population = Vec::with_capacity(MACHINES);
    for (class, share) in Class::SHARES {
        for _ in 0..MACHINES * share / 100 {
            population.push(generate(&mut rng, class));
        }
    }
    let mut out = Vec::with_capacity(2 * MACHINES);
    for m in &population {
        out.push((m.class, m.facts.clone(), benign(&mut rng, m)));
        out.push((m.class, m.facts.clone(), impostor(&mut rng, m, &population)));
    }
    out
}

fn verdict(bound: &Facts, now: &Facts, policy: MatchPolicy) -> Option<Verdict> {
    // A machine with nothing to bind to cannot get a license: not a pair.
    let bound = Fingerprint::from_facts(bound).ok()?;
    let now = Fingerprint::from_facts(now).ok()?;
    Some(compare(&bound, &now, policy, true).verdict)
}

const COLUMNS: [&str; 3] = ["physical", "VM/cloud", "container"];

#[test]
fn the_policies_meet_their_targets_on_the_population() {
    let events = events();
    assert_eq!(events.len(), 2 * MACHINES);
    let mut failures = Vec::new();
    for policy in MatchPolicy::ALL {
        println!(
            "\n{policy:<8} policy               FRR / FAR physical   FRR / FAR VM+cloud   FRR / FAR container   moves accepted"
        );
        for mode in Mode::ALL {
            // [column][label] tallies.
            let mut t = [[Tally::default(); 3]; 3];
            let mut by_event: std::collections::BTreeMap<(&str, usize), Tally> = Default::default();
            for (class, facts, (event, label, after)) in &events {
                let (bound, now) = match mode {
                    Mode::RootRoot => (facts.clone(), after.clone()),
                    Mode::RootUser => (facts.clone(), as_seen_by_user(after)),
                    Mode::UserUser => (as_seen_by_user(facts), as_seen_by_user(after)),
                };
                let Some(v) = verdict(&bound, &now, policy) else {
                    continue;
                };
                let holds = v == Verdict::Holds;
                let wrong = match label {
                    Label::Benign => !holds,
                    Label::Impostor | Label::Move => holds,
                };
                t[class.column()][*label as usize].add(wrong);
                by_event.entry((event, class.column())).or_default().add(wrong);
                if *label == Label::Impostor
                    && holds
                    && mode == Mode::RootRoot
                    && policy != MatchPolicy::Tolerant
                {
                    failures.push(format!("{policy}: {event} ({class:?}) passed a root check"));
                }
            }
            let rate = |c: usize, l: Label| t[c][l as usize].rate();
            println!(
                "  {:<26} {:>6.2} % / {:>5.2} %   {:>6.2} % / {:>5.2} %   {:>6.2} % / {:>5.2} %    {:>5.1} %",
                mode.name(),
                rate(0, Label::Benign),
                rate(0, Label::Impostor),
                rate(1, Label::Benign),
                rate(1, Label::Impostor),
                rate(2, Label::Benign),
                rate(2, Label::Impostor),
                rate(0, Label::Move),
            );
            if policy == MatchPolicy::Standard {
                for ((event, column), tally) in &by_event {
                    if tally.wrong > 0 {
                        println!(
                            "      {:<40} {:<9} wrong {:>3} of {:>4}",
                            event, COLUMNS[*column], tally.wrong, tally.pairs
                        );
                    }
                }
                let (frr, far) = (rate(0, Label::Benign), rate(0, Label::Impostor));
                if frr > 1.0 {
                    failures.push(format!(
                        "standard, {}: physical FRR {frr:.2} % > 1 %",
                        mode.name()
                    ));
                }
                if far > 0.1 {
                    failures.push(format!(
                        "standard, {}: physical FAR {far:.2} % > 0.1 %",
                        mode.name()
                    ));
                }
                // No impostor of any kind, VM or container included, passes.
                for (c, column) in COLUMNS.iter().enumerate().skip(1) {
                    if rate(c, Label::Impostor) > 0.1 {
                        failures.push(format!("standard, {}: {column} FAR above 0.1 %", mode.name()));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
