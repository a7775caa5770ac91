//! Machine facts: the raw, unhashed description of one workstation.
//!
//! This is the only module that reads the operating system. [`SystemSource`]
//! abstracts where facts come from: [`RealSystem`] probes this machine with
//! targeted reads (never a full `sysinfo` refresh), [`Snapshot`] replays a
//! `nodelock-facts/1` file (`../shared/spec/facts-v1.md`, copied into
//! docs/FORMAT.md §1). Facts hold raw serials: they are hashed by
//! `fingerprint` and must never be logged.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[cfg(target_os = "linux")]
mod linux;
// Compiled everywhere (it uses only portable crate APIs) so that Linux CI
// type-checks and runs the probe Windows and macOS use.
#[cfg_attr(target_os = "linux", allow(dead_code))]
mod other;

/// The `format` value of a facts snapshot.
pub const FORMAT: &str = "nodelock-facts/1";
/// Largest snapshot file read; real ones are under 4 KiB.
const MAX_SNAPSHOT_BYTES: u64 = 1024 * 1024;

/// Why facts could not be had.
#[allow(
    missing_docs,
    reason = "variant fields are named for what they hold; the #[error] text says what they mean"
)]
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    /// The snapshot file could not be read.
    #[error("cannot read facts file {path}: {source}")]
    Io {
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The snapshot is not JSON of the expected shape.
    #[error("{path} is not a nodelock facts snapshot: {reason}")]
    Malformed {
        path: String,
        /// What the JSON parser said.
        reason: String,
    },
    /// A snapshot in another format version.
    #[error("{path} has format '{found}'; this nodelock reads '{FORMAT}'")]
    WrongFormat {
        path: String,
        /// The format it declares.
        found: String,
    },
    /// Absurdly large snapshot.
    #[error("{path} is not a facts snapshot (larger than {MAX_SNAPSHOT_BYTES} bytes, or not a regular file)")]
    TooLarge { path: String },
}

/// One workstation's facts, in the `nodelock-facts/1` shape. Every field but
/// `format` may be absent, which means "not known here", never "different".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// Always [`FORMAT`].
    pub format: String,
    /// OS installation id.
    #[serde(default)]
    pub machine_id: Option<String>,
    /// SMBIOS system UUID.
    #[serde(default)]
    pub product_uuid: Option<String>,
    /// SMBIOS baseboard serial.
    #[serde(default)]
    pub board_serial: Option<String>,
    /// Serials of fixed, non-removable disks.
    #[serde(default)]
    pub disk_serials: Option<Vec<String>>,
    /// Every interface with a MAC.
    #[serde(default)]
    pub network: Option<Vec<Interface>>,
    /// The processor's brand string and core count (descriptive only).
    #[serde(default)]
    pub cpu: Option<Cpu>,
    /// Total RAM in bytes.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Host name (a label, never an anchor).
    #[serde(default)]
    pub hostname: Option<String>,
    /// Operating system.
    #[serde(default)]
    pub os: Option<Os>,
    /// Whether this process runs in the initial user namespace (Linux):
    /// inside any other one (a rootless container, Flatpak, `unshare -r`) an
    /// ordinary user can mount a fake `/sys` and `/etc`, so nothing above is
    /// evidence. Absent where the question does not apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_namespace: Option<UserNamespace>,
}

/// Where the facts were read from, as far as user namespaces go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UserNamespace {
    /// The host's own: what the process reads is the machine's.
    Initial,
    /// Another one, or one nodelock could not prove to be the initial one.
    Nested,
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Interface name (`enp0s31f6`).
    #[serde(default)]
    pub name: Option<String>,
    /// MAC in any common spelling.
    #[serde(default)]
    pub mac: Option<String>,
    /// True when it sits on a bus device (not a software interface).
    #[serde(default)]
    pub physical: Option<bool>,
}

/// Processor description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    /// Brand string.
    #[serde(default)]
    pub brand: Option<String>,
    /// Logical cores.
    #[serde(default)]
    pub cores: Option<u32>,
}

/// Operating system description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Os {
    /// Name (`Ubuntu`).
    #[serde(default)]
    pub name: Option<String>,
    /// Version (`22.04`).
    #[serde(default)]
    pub version: Option<String>,
}

impl Facts {
    /// Facts with nothing known.
    pub fn empty() -> Facts {
        Facts {
            format: FORMAT.to_owned(),
            machine_id: None,
            product_uuid: None,
            board_serial: None,
            disk_serials: None,
            network: None,
            cpu: None,
            memory_bytes: None,
            hostname: None,
            os: None,
            user_namespace: None,
        }
    }

    /// Parses a snapshot from JSON text; `origin` names it in errors.
    pub fn from_json(text: &[u8], origin: &str) -> Result<Facts, FactsError> {
        #[derive(Deserialize)]
        struct Head {
            format: Option<String>,
        }
        // serde_json's own message quotes the offending value, which in a
        // facts file may be a hardware serial: say only what and where.
        let malformed = |e: serde_json::Error| FactsError::Malformed {
            path: origin.to_owned(),
            reason: match e.classify() {
                serde_json::error::Category::Io => "it could not be read".to_owned(),
                serde_json::error::Category::Syntax => {
                    format!("invalid JSON at line {}, column {}", e.line(), e.column())
                }
                serde_json::error::Category::Data => {
                    format!(
                        "a value of the wrong type or shape at line {}, column {}",
                        e.line(),
                        e.column()
                    )
                }
                serde_json::error::Category::Eof => "the JSON ends too early".to_owned(),
            },
        };
        let head: Head = serde_json::from_slice(text).map_err(malformed)?;
        match head.format.as_deref() {
            Some(FORMAT) => {}
            found => {
                return Err(FactsError::WrongFormat {
                    path: origin.to_owned(),
                    found: crate::base::text::printable_prefix(found.unwrap_or("(none)"), 40),
                });
            }
        }
        serde_json::from_slice(text).map_err(malformed)
    }

    /// Reads a snapshot file.
    pub fn load(path: &Path) -> Result<Facts, FactsError> {
        let display = path.display().to_string();
        let io = |source| FactsError::Io {
            path: display.clone(),
            source,
        };
        match crate::base::fsio::read_capped(path, MAX_SNAPSHOT_BYTES, crate::base::fsio::Links::Follow) {
            Ok(bytes) => Facts::from_json(&bytes, &display),
            Err(crate::base::fsio::ReadError::Io(source)) => Err(io(source)),
            Err(_) => Err(FactsError::TooLarge { path: display }),
        }
    }

    /// Pretty JSON in the snapshot format.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Somewhere facts come from.
pub trait SystemSource {
    /// The facts as of now.
    fn facts(&self) -> Result<Facts, FactsError>;
}

/// This machine, probed directly.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealSystem;

impl SystemSource for RealSystem {
    fn facts(&self) -> Result<Facts, FactsError> {
        #[cfg(target_os = "linux")]
        let facts = linux::probe();
        #[cfg(not(target_os = "linux"))]
        let facts = other::probe();
        Ok(facts)
    }
}

/// Facts fixed in advance (a snapshot file, a test, a support case).
#[derive(Debug, Clone)]
pub struct Snapshot(pub Facts);

impl SystemSource for Snapshot {
    fn facts(&self) -> Result<Facts, FactsError> {
        Ok(self.0.clone())
    }
}

/// CPU, memory, host name and OS from `sysinfo`, refreshing only CPU brands and
/// RAM (a full refresh costs about 14 ms; this costs well under one).
fn descriptive_facts(facts: &mut Facts) {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, System};
    if let Ok(mut sys) = System::new() {
        sys.refresh_cpu_list(CpuRefreshKind::nothing());
        sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let cpus = sys.cpus();
        if !cpus.is_empty() {
            facts.cpu = Some(Cpu {
                brand: Some(cpus[0].brand().trim().to_owned()).filter(|b| !b.is_empty()),
                cores: u32::try_from(cpus.len()).ok(),
            });
        }
        facts.memory_bytes = Some(sys.total_memory()).filter(|m| *m > 0);
    }
    facts.hostname = System::host_name().ok();
    let name = System::name().ok();
    let version = System::os_version().ok();
    if name.is_some() || version.is_some() {
        facts.os = Some(Os { name, version });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_parses_and_unknown_fields_are_ignored() {
        let text = br#"{"format":"nodelock-facts/1","machine_id":"abc","future_field":42,
            "network":[{"name":"eth0","mac":"3c:52:82:aa:bb:cc","physical":true}],"cpu":null}"#;
        let facts = Facts::from_json(text, "t").unwrap();
        assert_eq!(facts.machine_id.as_deref(), Some("abc"));
        assert_eq!(facts.network.unwrap().len(), 1);
        assert!(facts.cpu.is_none());
    }

    #[test]
    fn other_format_is_a_clear_error() {
        let err = Facts::from_json(br#"{"format":"nodelock-facts/2"}"#, "f.json").unwrap_err();
        assert!(err.to_string().contains("nodelock-facts/2"), "{err}");
        assert!(matches!(
            Facts::from_json(b"[1,2", "f"),
            Err(FactsError::Malformed { .. })
        ));
        assert!(matches!(
            Facts::from_json(b"{}", "f"),
            Err(FactsError::WrongFormat { .. })
        ));
    }

    #[test]
    fn parse_errors_name_the_place_not_the_value() {
        let text = br#"{"format":"nodelock-facts/1","board_serial":"OK","memory_bytes":"SN-7Q1XL13-SECRET"}"#;
        let err = Facts::from_json(text, "f.json").unwrap_err().to_string();
        assert!(!err.contains("SECRET"), "{err}");
        assert!(err.contains("line 1, column"), "{err}");
        let text = br#"{"format":"nodelock-facts/1","disk_serials":["SN-SECRET-1",]}"#;
        let err = Facts::from_json(text, "f.json").unwrap_err().to_string();
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn portable_probe_runs_and_finds_the_machine_id() {
        let facts = other::probe();
        assert_eq!(facts.format, FORMAT);
        assert_eq!(facts.machine_id.is_some(), linux::probe().machine_id.is_some());
    }

    #[test]
    fn real_system_probe_does_not_fail() {
        let facts = RealSystem.facts().unwrap();
        assert_eq!(facts.format, FORMAT);
    }
}
