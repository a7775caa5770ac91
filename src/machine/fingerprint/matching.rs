//! Does a binding hold on this machine? The match policies.
//!
//! Components are compared by name. For names that can occur several times
//! (disks, MACs) the component matches when any bound digest is still present,
//! so an added dongle or a removed Wi-Fi card changes nothing. What the
//! current machine shows for a bound anchor is one of four things: the same
//! value (*matched*), another value (*changed*), a list that was read and no
//! longer holds any such hardware (*absent*), or nothing readable (*unknown*).
//!
//! Unknown is for what an ordinary user cannot read (SMBIOS data without
//! root): it is neither for nor against. Disk and interface lists are readable
//! by every user, so under the standard policy a bound one that is now
//! unreadable is *hidden* evidence and refuses, and an emptied one counts
//! against the machine like a changed one. Anchors weigh what they say about
//! the machine: the SMBIOS UUID 2 (it names the mainboard, and outweighs a
//! surviving MAC), the board serial, each disk and MAC name 1. The machine id
//! never counts for a strong binding (images and clones copy it); it only
//! breaks a tie, and only where copying is not the likely story. Descriptive
//! components (CPU, memory, host name, OS) are reported but never decide.
//!
//! In a user namespace other than the host's, an ordinary user can mount any
//! `/sys` and `/etc` they like, so nothing the machine shows is evidence: the
//! standard and strict policies refuse there (docs/FORMAT.md §3 "Matching").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{CLONE_ONLY_WARNING, ComponentClass, ComponentName, Fingerprint, Identity};

/// How much evidence a license asks of the machine it runs on; the vendor's
/// choice per entitlement. docs/FORMAT.md §3 gives each rule and README the
/// measured error rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchPolicy {
    /// Every bound anchor must be readable now, ties refuse, clone-only
    /// bindings and user namespaces refuse.
    Strict,
    /// Weighted anchors; an emptied or hidden disk or interface list counts
    /// against; a tie holds only for the same OS installation on hardware
    /// that is not a VM and whose firmware ids did not change.
    #[default]
    Standard,
    /// The rule before policies existed: unknown and emptied lists are
    /// neutral, a tie holds on the same OS installation, user namespaces are
    /// allowed with a warning.
    Tolerant,
}

impl MatchPolicy {
    /// Every policy, strictest first.
    pub const ALL: [MatchPolicy; 3] = [MatchPolicy::Strict, MatchPolicy::Standard, MatchPolicy::Tolerant];

    /// The name in documents, flags and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchPolicy::Strict => "strict",
            MatchPolicy::Standard => "standard",
            MatchPolicy::Tolerant => "tolerant",
        }
    }

    /// For `skip_serializing_if`: documents leave the default out.
    pub fn is_standard(&self) -> bool {
        *self == MatchPolicy::Standard
    }
}

impl fmt::Display for MatchPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy name that is none of the three.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a match policy (use strict, standard or tolerant)")]
pub struct UnknownPolicy(String);

impl FromStr for MatchPolicy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<MatchPolicy, UnknownPolicy> {
        MatchPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPolicy(s.to_owned()))
    }
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The binding holds on this machine.
    Holds,
    /// It does not.
    Fails,
}

/// What happened to one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentOutcome {
    /// Still present (for disks and MACs: at least one bound value is).
    Matched,
    /// Known on both sides and different.
    Changed,
    /// Bound, and the list it lives in was read now and holds no such value.
    Absent,
    /// Not known on one side.
    Unknown,
}

/// One component's comparison; counts, never values.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentMatch {
    /// Component name.
    pub name: ComponentName,
    /// Its class.
    pub class: ComponentClass,
    /// The outcome.
    pub outcome: ComponentOutcome,
    /// Values bound.
    pub bound: usize,
    /// Values present now.
    pub current: usize,
    /// Bound values still present.
    pub matched: usize,
}

/// The one thing to do when a binding fails, chosen from the report: a
/// person gets one cause and one step, never two steps that contradict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NextStep {
    /// Evidence that could still make it hold cannot be read by this user.
    ReadAsRequester,
    /// A list any user can read on the licensed machine is hidden here.
    ShowHardware,
    /// The check runs inside a user namespace.
    RunOnHost,
    /// The hardware was replaced, or this is another machine.
    Transfer,
    /// The license needs hardware identifiers this machine does not have.
    HardwareLicense,
    /// The fingerprint was not salted as the license (a caller's error).
    Recompute,
}

impl NextStep {
    /// The step, as a person reads it.
    pub fn sentence(self) -> &'static str {
        match self {
            NextStep::ReadAsRequester => {
                "run the check as the same user (or as root) as when the license was requested, so that the hardware it names can be read"
            }
            NextStep::ShowHardware => {
                "run the application where the machine's disks and network interfaces can be seen (not in a sandbox that hides them)"
            }
            NextStep::RunOnHost => {
                "run the application on the host, or ask the vendor for a floating or tolerant-policy license"
            }
            NextStep::Transfer => "ask the vendor to transfer the license to this machine",
            NextStep::HardwareLicense => "ask the vendor for a license for this machine",
            NextStep::Recompute => {
                "compare against this machine's fingerprint salted with the license's salt"
            }
        }
    }
}

impl std::fmt::Display for NextStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.sentence())
    }
}

/// The full comparison, for people and for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct MatchReport {
    /// Holds or fails.
    pub verdict: Verdict,
    /// The policy applied.
    pub policy: MatchPolicy,
    /// The binding's identity strength.
    pub identity: Identity,
    /// Anchors that still match.
    pub anchors_matched: usize,
    /// Anchors known on both sides that differ (absent ones included).
    pub anchors_changed: usize,
    /// One sentence: why it holds or fails (the cause, without the remedy).
    pub reason: String,
    /// When it fails: the one step to take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<NextStep>,
    /// The clone warning, for clone-only bindings; the namespace warning for
    /// a tolerant check made inside one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Per component.
    pub components: Vec<ComponentMatch>,
}

impl MatchReport {
    /// Names of the components that changed or vanished, for a one-line denial.
    pub fn changed(&self) -> Vec<ComponentName> {
        self.components
            .iter()
            .filter(|c| matches!(c.outcome, ComponentOutcome::Changed | ComponentOutcome::Absent))
            .map(|c| c.name)
            .collect()
    }
}

/// What an anchor says about the machine (module docs).
fn weight(name: ComponentName) -> u32 {
    match name {
        ComponentName::ProductUuid => 2,
        _ => 1,
    }
}

/// Anchors every user can read on the platforms that report them; a bound one
/// that cannot be read now is hidden, not unknown.
fn readable_by_anyone(name: ComponentName, current: &Fingerprint) -> Option<bool> {
    match name {
        ComponentName::Disk => Some(current.evidence().disks_read),
        ComponentName::Mac => Some(current.evidence().network_read),
        _ => None,
    }
}

const NAMESPACE_REASON: &str = "this check runs inside a user namespace (a rootless container, Flatpak, `unshare`), where any user can show another machine's hardware";
const NAMESPACE_WARNING: &str = "this check runs inside a user namespace, where the machine's hardware cannot be trusted; the tolerant policy lets it pass";

/// Compares a bound fingerprint with the current one under `policy`.
pub fn compare(
    bound: &Fingerprint,
    current: &Fingerprint,
    policy: MatchPolicy,
    allow_clone_only: bool,
) -> MatchReport {
    let mut components = Vec::new();
    let mut hidden = Vec::new();
    for name in ComponentName::ALL {
        let b = bound.digests(name);
        let c = current.digests(name);
        if b.is_empty() && c.is_empty() {
            continue;
        }
        let matched = b.intersection(&c).count();
        let outcome = if b.is_empty() {
            ComponentOutcome::Unknown
        } else if c.is_empty() {
            match readable_by_anyone(name, current) {
                Some(true) => ComponentOutcome::Absent,
                Some(false) => {
                    hidden.push(name);
                    ComponentOutcome::Unknown
                }
                None => ComponentOutcome::Unknown,
            }
        } else if matched > 0 {
            ComponentOutcome::Matched
        } else {
            ComponentOutcome::Changed
        };
        components.push(ComponentMatch {
            name,
            class: name.class(),
            outcome,
            bound: b.len(),
            current: c.len(),
            matched,
        });
    }
    let anchors = |outcome| {
        components
            .iter()
            .filter(move |c| c.class == ComponentClass::Anchor && c.outcome == outcome)
    };
    // Weights count the binding's anchors only: a name the binding lacks is
    // neither for nor against (nor unknown, for the strict policy).
    let sum = |outcome| {
        anchors(outcome)
            .filter(|c| c.bound > 0)
            .map(|c| weight(c.name))
            .sum::<u32>()
    };
    let anchors_matched = anchors(ComponentOutcome::Matched).count();
    let absent = sum(ComponentOutcome::Absent);
    let disk_absent = anchors(ComponentOutcome::Absent).any(|c| c.name == ComponentName::Disk);
    let anchors_changed =
        anchors(ComponentOutcome::Changed).count() + anchors(ComponentOutcome::Absent).count();
    let identity = bound.identity();
    let same_installation = components
        .iter()
        .any(|c| c.name == ComponentName::MachineId && c.outcome == ComponentOutcome::Matched);
    let evidence = current.evidence();
    let mut warning = (identity == Identity::CloneOnly).then(|| CLONE_ONLY_WARNING.to_owned());
    if evidence.nested_namespace && policy == MatchPolicy::Tolerant {
        warning.get_or_insert_with(|| NAMESPACE_WARNING.to_owned());
    }
    let fails = |reason: String, step: NextStep| (Verdict::Fails, reason, Some(step));
    let (verdict, reason, next_step) = if bound.salt() != current.salt() {
        // Digests under different salts (or algorithms) say nothing about
        // each other; callers salt the current machine first.
        fails(
            "the machine's fingerprint was not computed with the license's salt, so they cannot be compared"
                .to_owned(),
            NextStep::Recompute,
        )
    } else if evidence.nested_namespace && policy != MatchPolicy::Tolerant {
        fails(NAMESPACE_REASON.to_owned(), NextStep::RunOnHost)
    } else {
        match identity {
            Identity::Strong => {
                let weights = Weights {
                    matched: sum(ComponentOutcome::Matched),
                    changed: sum(ComponentOutcome::Changed),
                    absent,
                    unknown: sum(ComponentOutcome::Unknown),
                };
                let firmware_changed = anchors(ComponentOutcome::Changed)
                    .any(|c| matches!(c.name, ComponentName::ProductUuid | ComponentName::BoardSerial));
                strong(
                    policy,
                    weights,
                    &hidden,
                    anchors_matched,
                    TieBreak {
                        disk_absent,
                        same_installation,
                        hypervisor: evidence.hypervisor,
                        firmware_changed,
                    },
                )
            }
            Identity::CloneOnly if policy == MatchPolicy::Strict || !allow_clone_only => fails(
                "the license requires a hardware identifier, and it was bound to a machine without one"
                    .to_owned(),
                NextStep::HardwareLicense,
            ),
            Identity::CloneOnly if same_installation => {
                (Verdict::Holds, "the OS installation id matches".to_owned(), None)
            }
            Identity::CloneOnly => fails(
                "the OS installation id differs: this is another machine or a reinstalled one".to_owned(),
                NextStep::Transfer,
            ),
        }
    };
    MatchReport {
        verdict,
        policy,
        identity,
        anchors_matched,
        anchors_changed,
        reason,
        next_step,
        warning,
        components,
    }
}

/// Anchor weight by outcome, bound anchors only (unknown: bound, unreadable now).
#[derive(Debug, Clone, Copy)]
struct Weights {
    matched: u32,
    changed: u32,
    absent: u32,
    unknown: u32,
}

/// What may break a tie between matched and changed weight. A vanished
/// interface may (cards are pulled and drivers go missing on real machines);
/// a vanished disk may not: a running installation has a disk to run from,
/// and an emptied disk list is what a spoof shows.
#[derive(Debug, Clone, Copy)]
struct TieBreak {
    disk_absent: bool,
    same_installation: bool,
    hypervisor: bool,
    firmware_changed: bool,
}

fn strong(
    policy: MatchPolicy,
    w: Weights,
    hidden: &[ComponentName],
    matched: usize,
    tie: TieBreak,
) -> (Verdict, String, Option<NextStep>) {
    let fails = |reason: String, step: NextStep| (Verdict::Fails, reason, Some(step));
    if policy != MatchPolicy::Tolerant
        && let Some(name) = hidden.first()
    {
        let list = if *name == ComponentName::Disk {
            "disk"
        } else {
            "network interface"
        };
        return fails(
            format!(
                "this machine's {list} list cannot be read, which any user can read on the licensed machine; nodelock does not check a license with part of the machine hidden"
            ),
            NextStep::ShowHardware,
        );
    }
    if policy == MatchPolicy::Strict && w.unknown > 0 {
        return fails(
            "the license's strict match policy needs every hardware identifier it was bound to, and some cannot be read here".to_owned(),
            NextStep::ReadAsRequester,
        );
    }
    // Whether what cannot be read here could still make the binding hold:
    // then the cause is access (a check as another user than the one who
    // requested), not hardware, and reading it is the one step.
    let unreadable_could_hold = w.unknown > 0 && w.matched + w.unknown > w.changed + w.absent;
    if w.matched == 0 {
        return if w.changed == 0 && w.absent == 0 {
            fails(
                "none of the licensed machine's hardware identifiers can be read here".to_owned(),
                NextStep::ReadAsRequester,
            )
        } else if unreadable_could_hold {
            fails(
                "the hardware identifiers this user can read do not match, and those that could decide it (such as the mainboard's) cannot be read here".to_owned(),
                NextStep::ReadAsRequester,
            )
        } else {
            fails(
                "none of the licensed machine's hardware identifiers is present: this is another machine"
                    .to_owned(),
                NextStep::Transfer,
            )
        };
    }
    let against = w.changed
        + if policy == MatchPolicy::Tolerant {
            0
        } else {
            w.absent
        };
    let holds = |reason: String| (Verdict::Holds, reason, None);
    if w.matched > against {
        return holds(format!(
            "{matched} hardware identifier(s) of the licensed machine still match"
        ));
    }
    let breaks_tie = match policy {
        MatchPolicy::Strict => false,
        MatchPolicy::Standard => {
            w.matched == against
                && !tie.disk_absent
                && tie.same_installation
                && !tie.hypervisor
                && !tie.firmware_changed
        }
        MatchPolicy::Tolerant => w.matched == against && tie.same_installation,
    };
    if breaks_tie {
        return holds(format!(
            "{matched} hardware identifier(s) still match as many as changed, on the same OS installation: a replaced part"
        ));
    }
    if unreadable_could_hold {
        return fails(
            "too few of the licensed machine's hardware identifiers match among those this user can read; the others cannot be read here".to_owned(),
            NextStep::ReadAsRequester,
        );
    }
    if w.absent > 0 && policy != MatchPolicy::Tolerant {
        return fails(
            "hardware the license was bound to is gone from this machine (its disk or network list is empty or missing it) and too little still matches".to_owned(),
            NextStep::Transfer,
        );
    }
    if tie.firmware_changed {
        return fails(
            "the mainboard was replaced (its serial number or system UUID changed) and too little else still matches".to_owned(),
            NextStep::Transfer,
        );
    }
    fails(
        "more of the licensed machine's hardware identifiers changed than still match: this is another machine".to_owned(),
        NextStep::Transfer,
    )
}

#[cfg(test)]
mod tests;
