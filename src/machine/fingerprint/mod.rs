//! Facts → normalised components → per-component digests → workstation id.
//!
//! No raw value leaves this module: each component is normalised
//! ([`normalise`]) and hashed as
//! `SHA-256("nodelock/v1/fingerprint" || 0x00 || algorithm (u32 BE) || name || 0x00 || value)`,
//! so a fingerprint report or a license shows digests only. A binding keeps the
//! digests per component so that [`matching`] can be tolerant of the changes
//! real machines go through.

pub mod matching;
pub mod normalise;
pub mod salted;

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::format::typeable;
use crate::machine::facts::{Facts, UserNamespace};

pub use matching::{ComponentOutcome, MatchPolicy, MatchReport, NextStep, Verdict, compare};
pub use salted::{ALGORITHM_SALTED, SALT_LEN};

/// The fingerprint algorithm this build computes. Bindings name the algorithm
/// they were made with; a future algorithm must still be able to check old ones.
pub const ALGORITHM: u32 = 1;
/// The `format` value of a fingerprint report.
pub const REPORT_FORMAT: &str = "nodelock-fingerprint/1";
const DIGEST_DOMAIN: &[u8] = b"nodelock/v1/fingerprint";
const ID_DOMAIN: &[u8] = b"nodelock/v1/workstation-id";

/// Why a fingerprint could not be made or read.
#[allow(
    missing_docs,
    reason = "variant fields are named for what they hold; the #[error] text says what they mean"
)]
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    /// Nothing on this machine tells it apart from any other.
    #[error(
        "this machine has no identifier nodelock can use (no machine id, no SMBIOS UUID or board serial, no disk serial, no hardware network address), so a license cannot be bound to it; send the output of `nodelock facts` to your vendor's support"
    )]
    NoIdentifier,
    /// A report file is not a fingerprint report.
    #[error("{origin} is not a nodelock fingerprint report (`nodelock fingerprint --json`): {reason}")]
    BadReport {
        /// Where it came from.
        origin: String,
        reason: String,
    },
    /// A report or binding made by an algorithm this build does not know.
    #[error(
        "fingerprint algorithm {0} is not supported by this nodelock (it knows {ALGORITHM}); update nodelock"
    )]
    UnknownAlgorithm(u32),
}

/// A component's name, which also fixes its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentName {
    /// OS installation id.
    MachineId,
    /// SMBIOS system UUID.
    ProductUuid,
    /// SMBIOS baseboard serial.
    BoardSerial,
    /// A fixed disk's serial (one component per disk).
    Disk,
    /// A hardware network address (one component per interface).
    Mac,
    /// Processor brand and core count.
    Cpu,
    /// Installed RAM.
    Memory,
    /// Host name.
    Hostname,
    /// Operating system name and version.
    Os,
}

/// How much a component says about which machine this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentClass {
    /// Identifies one piece of hardware.
    Anchor,
    /// Identifies an installation, which images and clones copy.
    CloneShared,
    /// Describes a class of machine; shown, never decisive.
    Descriptive,
}

impl ComponentName {
    /// The class this component belongs to.
    pub fn class(self) -> ComponentClass {
        match self {
            ComponentName::ProductUuid
            | ComponentName::BoardSerial
            | ComponentName::Disk
            | ComponentName::Mac => ComponentClass::Anchor,
            ComponentName::MachineId => ComponentClass::CloneShared,
            ComponentName::Cpu | ComponentName::Memory | ComponentName::Hostname | ComponentName::Os => {
                ComponentClass::Descriptive
            }
        }
    }

    /// The name as written in reports and licenses.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentName::MachineId => "machine_id",
            ComponentName::ProductUuid => "product_uuid",
            ComponentName::BoardSerial => "board_serial",
            ComponentName::Disk => "disk",
            ComponentName::Mac => "mac",
            ComponentName::Cpu => "cpu",
            ComponentName::Memory => "memory",
            ComponentName::Hostname => "hostname",
            ComponentName::Os => "os",
        }
    }

    /// The compact code activation requests use (the index in [`ComponentName::ALL`]).
    pub fn code(self) -> u8 {
        ComponentName::ALL
            .iter()
            .position(|n| *n == self)
            .map_or(u8::MAX, |i| i as u8)
    }

    /// The name with this compact code.
    pub fn from_code(code: u8) -> Option<ComponentName> {
        ComponentName::ALL.get(usize::from(code)).copied()
    }

    /// Every name, in report order.
    pub const ALL: [ComponentName; 9] = [
        ComponentName::MachineId,
        ComponentName::ProductUuid,
        ComponentName::BoardSerial,
        ComponentName::Disk,
        ComponentName::Mac,
        ComponentName::Cpu,
        ComponentName::Memory,
        ComponentName::Hostname,
        ComponentName::Os,
    ];
}

impl fmt::Display for ComponentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A component digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentDigest(pub [u8; 32]);

impl fmt::Debug for ComponentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base16ct::lower::encode_string(&self.0[..8]))
    }
}

/// One hashed component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Component {
    /// What it is.
    pub name: ComponentName,
    /// Its digest.
    pub digest: ComponentDigest,
}

/// How well a fingerprint tells this machine from its copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Identity {
    /// At least one hardware anchor.
    Strong,
    /// Only identifiers that clones of this machine would share.
    CloneOnly,
}

/// The warning shown wherever a clone-only identity is bound or checked.
pub const CLONE_ONLY_WARNING: &str = "this machine's only identifier is its OS installation id (no SMBIOS data, disk serial or hardware network address was found), which copies of this machine share: a clone of it would pass as this machine";

/// A set of component digests made by one algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    algorithm: u32,
    components: BTreeSet<Component>,
    evidence: Evidence,
    /// Algorithm 2's salt ([`salted`]); `None` for algorithm 1.
    salt: Option<[u8; SALT_LEN]>,
}

/// What a machine showed besides its digests. Only the *current* side of a
/// match has it (a binding is digests alone); the match policy needs it to tell
/// a list that was read and is empty (evidence the hardware is gone) from one
/// that could not be read (unknown), and a check made on the host from one made
/// in a user namespace, where any user can show any hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The disk list was read (it may be empty).
    pub disks_read: bool,
    /// The network interface list was read (it may be empty).
    pub network_read: bool,
    /// A NIC with a hypervisor's OUI was seen: this is a virtual machine.
    pub hypervisor: bool,
    /// The facts were read in a user namespace other than the host's.
    pub nested_namespace: bool,
}

impl Evidence {
    /// Nothing known beyond the digests (a binding).
    pub const NONE: Evidence = Evidence {
        disks_read: false,
        network_read: false,
        hypervisor: false,
        nested_namespace: false,
    };
    /// What a report without an `evidence` field stood for: nodelock's Linux
    /// probe always read both lists, and knew nothing of namespaces.
    pub const LEGACY_REPORT: Evidence = Evidence {
        disks_read: true,
        network_read: true,
        hypervisor: false,
        nested_namespace: false,
    };

    /// `hypervisor`: whether a physical interface showed a hypervisor's
    /// prefix (found where the MACs are normalised, in `from_facts`).
    fn of(facts: &Facts, hypervisor: bool) -> Evidence {
        Evidence {
            disks_read: facts.disk_serials.is_some(),
            network_read: facts.network.is_some(),
            hypervisor,
            nested_namespace: facts.user_namespace == Some(UserNamespace::Nested),
        }
    }
}

fn digest(name: ComponentName, value: &str) -> ComponentDigest {
    let mut h = Sha256::new();
    h.update(DIGEST_DOMAIN);
    h.update([0]);
    h.update(ALGORITHM.to_be_bytes());
    h.update(name.as_str().as_bytes());
    h.update([0]);
    h.update(value.as_bytes());
    ComponentDigest(h.finalize().into())
}

impl Fingerprint {
    /// Computes the fingerprint of a set of facts.
    ///
    /// Fails with [`FingerprintError::NoIdentifier`] when neither an anchor nor a
    /// machine id survives normalisation: such a machine would share its id with
    /// every other one like it.
    pub fn from_facts(facts: &Facts) -> Result<Fingerprint, FingerprintError> {
        let mut components = BTreeSet::new();
        let mut add = |name: ComponentName, value: Option<String>| {
            if let Some(v) = value {
                components.insert(Component {
                    name,
                    digest: digest(name, &v),
                });
            }
        };
        add(
            ComponentName::MachineId,
            facts.machine_id.as_deref().and_then(normalise::machine_id),
        );
        add(
            ComponentName::ProductUuid,
            facts.product_uuid.as_deref().and_then(normalise::uuid),
        );
        add(
            ComponentName::BoardSerial,
            facts.board_serial.as_deref().and_then(normalise::serial),
        );
        for disk in facts.disk_serials.iter().flatten() {
            add(ComponentName::Disk, normalise::serial(disk));
        }
        let mut hypervisor = false;
        for iface in facts
            .network
            .iter()
            .flatten()
            .filter(|i| i.physical == Some(true))
        {
            let mac = iface.mac.as_deref().and_then(normalise::mac);
            hypervisor |= mac.as_deref().is_some_and(normalise::is_hypervisor_mac);
            let named_virtual = iface
                .name
                .as_deref()
                .is_some_and(normalise::is_virtual_interface_name);
            if !named_virtual {
                add(ComponentName::Mac, mac);
            }
        }
        if let Some(cpu) = &facts.cpu {
            let brand = cpu.brand.as_deref().and_then(normalise::text);
            if brand.is_some() || cpu.cores.is_some() {
                let cores = cpu.cores.map(|c| c.to_string()).unwrap_or_default();
                add(
                    ComponentName::Cpu,
                    Some(format!("{}/{cores}", brand.unwrap_or_default())),
                );
            }
        }
        add(ComponentName::Memory, facts.memory_bytes.map(|m| m.to_string()));
        add(
            ComponentName::Hostname,
            facts.hostname.as_deref().and_then(normalise::text),
        );
        if let Some(os) = &facts.os {
            let name = os.name.as_deref().and_then(normalise::text);
            let version = os.version.as_deref().and_then(normalise::text);
            if name.is_some() || version.is_some() {
                add(
                    ComponentName::Os,
                    Some(format!(
                        "{}/{}",
                        name.unwrap_or_default(),
                        version.unwrap_or_default()
                    )),
                );
            }
        }
        let mut fp = Fingerprint::from_components(ALGORITHM, components)?;
        fp.evidence = Evidence::of(facts, hypervisor);
        Ok(fp)
    }

    /// Rebuilds a fingerprint from stored digests (a report or a binding).
    pub fn from_components(
        algorithm: u32,
        components: impl IntoIterator<Item = Component>,
    ) -> Result<Fingerprint, FingerprintError> {
        if algorithm != ALGORITHM {
            return Err(FingerprintError::UnknownAlgorithm(algorithm));
        }
        Fingerprint::build(algorithm, components)
    }

    fn build(
        algorithm: u32,
        components: impl IntoIterator<Item = Component>,
    ) -> Result<Fingerprint, FingerprintError> {
        let fp = Fingerprint {
            algorithm,
            components: components.into_iter().collect(),
            evidence: Evidence::NONE,
            salt: None,
        };
        let identifies = fp
            .components
            .iter()
            .any(|c| c.name.class() != ComponentClass::Descriptive);
        if !identifies {
            return Err(FingerprintError::NoIdentifier);
        }
        Ok(fp)
    }

    /// The algorithm these digests were made with.
    pub fn algorithm(&self) -> u32 {
        self.algorithm
    }

    /// What the machine showed besides its digests ([`Evidence::NONE`] for a binding).
    pub fn evidence(&self) -> Evidence {
        self.evidence
    }

    /// The same fingerprint, with `evidence` (a report's, when it is read back).
    pub fn with_evidence(mut self, evidence: Evidence) -> Fingerprint {
        self.evidence = evidence;
        self
    }

    /// All components, sorted.
    pub fn components(&self) -> impl Iterator<Item = &Component> {
        self.components.iter()
    }

    /// The digests of one component name.
    pub fn digests(&self, name: ComponentName) -> BTreeSet<ComponentDigest> {
        self.components
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.digest)
            .collect()
    }

    /// Whether any hardware anchor is present.
    pub fn identity(&self) -> Identity {
        if self
            .components
            .iter()
            .any(|c| c.name.class() == ComponentClass::Anchor)
        {
            Identity::Strong
        } else {
            Identity::CloneOnly
        }
    }

    /// The short id people read out to support.
    ///
    /// It hashes the machine id with one hardware anchor chosen in an order that
    /// favours what an ordinary user can read (disk, then MAC, then the SMBIOS
    /// values that need root), so the id is the same for root and for users on
    /// most machines. It is a label: matching never uses it.
    pub fn workstation_id(&self) -> WorkstationId {
        let first = |name| self.digests(name).into_iter().next();
        let anchor = [
            ComponentName::Disk,
            ComponentName::Mac,
            ComponentName::ProductUuid,
            ComponentName::BoardSerial,
        ]
        .into_iter()
        .find_map(first);
        let mut h = Sha256::new();
        h.update(ID_DOMAIN);
        h.update([0]);
        h.update(self.algorithm.to_be_bytes());
        h.update(first(ComponentName::MachineId).map(|d| d.0).unwrap_or([0; 32]));
        h.update(anchor.map(|d| d.0).unwrap_or([0; 32]));
        let body = typeable::base32(&h.finalize(), 12);
        let check = typeable::check_char(&body);
        WorkstationId(format!("{body}{check}"))
    }

    /// The report `nodelock fingerprint --json` prints.
    pub fn report(&self) -> Report {
        let identity = self.identity();
        Report {
            format: REPORT_FORMAT.to_owned(),
            algorithm: self.algorithm,
            workstation_id: self.workstation_id().to_string(),
            identity,
            warning: (identity == Identity::CloneOnly).then(|| CLONE_ONLY_WARNING.to_owned()),
            evidence: Some(self.evidence),
            components: self
                .components
                .iter()
                .map(|c| ReportComponent {
                    name: c.name,
                    class: c.name.class(),
                    digest: base16ct::lower::encode_string(&c.digest.0),
                })
                .collect(),
        }
    }
}

/// A workstation id: 12 base32 characters and a check character, shown in
/// groups of four (`7KQ2-M9TX-4HPA-R`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkstationId(String);

impl fmt::Display for WorkstationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&typeable::group(&self.0))
    }
}

/// The JSON fingerprint report (docs/FORMAT.md §3).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Always [`REPORT_FORMAT`].
    pub format: String,
    /// Fingerprint algorithm.
    pub algorithm: u32,
    /// The workstation id.
    pub workstation_id: String,
    /// `strong` or `clone-only`.
    pub identity: Identity,
    /// Present for clone-only identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// What the machine showed besides digests; a report written before this
    /// field existed stands for [`Evidence::LEGACY_REPORT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// The hashed components.
    pub components: Vec<ReportComponent>,
}

/// One component of a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportComponent {
    /// Component name.
    pub name: ComponentName,
    /// Its class (informative; readers derive it from the name).
    pub class: ComponentClass,
    /// SHA-256 digest, lower-case hex.
    pub digest: String,
}

/// Parses 64 hex digits.
pub fn parse_digest(text: &str) -> Option<ComponentDigest> {
    let mut out = [0u8; 32];
    let decoded = base16ct::mixed::decode(text, &mut out).ok()?;
    (decoded.len() == 32).then_some(ComponentDigest(out))
}

impl Report {
    /// Reads a report from JSON; `origin` names it in errors.
    pub fn from_json(text: &[u8], origin: &str) -> Result<Report, FingerprintError> {
        let bad = |reason: String| FingerprintError::BadReport {
            origin: origin.to_owned(),
            reason,
        };
        let report: Report = serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
        if report.format != REPORT_FORMAT {
            return Err(bad(format!(
                "format is '{}', expected '{REPORT_FORMAT}'",
                report.format
            )));
        }
        Ok(report)
    }

    /// The fingerprint the report describes (classes recomputed from names; the
    /// workstation id and identity fields are recomputed, not trusted).
    pub fn fingerprint(&self, origin: &str) -> Result<Fingerprint, FingerprintError> {
        let components = self
            .components
            .iter()
            .map(|c| {
                parse_digest(&c.digest)
                    .map(|digest| Component { name: c.name, digest })
                    .ok_or_else(|| FingerprintError::BadReport {
                        origin: origin.to_owned(),
                        reason: format!("the {} digest is not 64 hex digits", c.name),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Fingerprint::from_components(self.algorithm, components)?
            .with_evidence(self.evidence.unwrap_or(Evidence::LEGACY_REPORT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::facts::Interface;

    fn laptop() -> Facts {
        let mut f = Facts::empty();
        f.machine_id = Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into());
        f.product_uuid = Some("4C4C4544-0042-3510-8058-B4C04F4E4D32".into());
        f.disk_serials = Some(vec!["S3Z9NB0K123456A".into()]);
        f.network = Some(vec![Interface {
            name: Some("enp0s31f6".into()),
            mac: Some("3c:52:82:aa:bb:cc".into()),
            physical: Some(true),
        }]);
        f
    }

    #[test]
    fn report_never_contains_raw_values() {
        let json = serde_json::to_string(&Fingerprint::from_facts(&laptop()).unwrap().report()).unwrap();
        for raw in [
            "3d1219c7", "4C4C4544", "4c4c4544", "S3Z9NB0K", "3c:52:82", "3c5282",
        ] {
            assert!(!json.contains(raw), "{raw} leaked: {json}");
        }
    }

    #[test]
    fn report_round_trips_to_the_same_fingerprint() {
        let fp = Fingerprint::from_facts(&laptop()).unwrap();
        let json = serde_json::to_vec(&fp.report()).unwrap();
        let back = Report::from_json(&json, "t").unwrap().fingerprint("t").unwrap();
        assert_eq!(back, fp);
        assert_eq!(back.workstation_id(), fp.workstation_id());
    }

    #[test]
    fn workstation_id_has_a_valid_check_character() {
        let id = Fingerprint::from_facts(&laptop())
            .unwrap()
            .workstation_id()
            .to_string();
        assert_eq!(id.len(), 16);
        assert!(typeable::is_valid(&typeable::canonical(&id).unwrap()));
    }

    #[test]
    fn nothing_identifying_is_an_error_not_a_shared_id() {
        let mut f = Facts::empty();
        f.hostname = Some("box".into());
        f.product_uuid = Some("03000200-0400-0500-0006-000700080009".into());
        f.machine_id = Some("uninitialized".into());
        assert!(matches!(
            Fingerprint::from_facts(&f),
            Err(FingerprintError::NoIdentifier)
        ));
    }

    #[test]
    fn machine_id_alone_is_clone_only() {
        let mut f = Facts::empty();
        f.machine_id = Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into());
        let fp = Fingerprint::from_facts(&f).unwrap();
        assert_eq!(fp.identity(), Identity::CloneOnly);
        assert!(fp.report().warning.is_some());
    }
}
