//! Workstation commands: fingerprint, facts, verify, import, status, check, trust.

use std::path::Path;

use serde_json::json;

use nodelock::base::clock;
use nodelock::base::fsio::{self, Links};
use nodelock::documents::license;
use nodelock::format::envelope::{self, DocumentKind};
use nodelock::format::{Keyring, PublicKey};
use nodelock::machine::facts::Facts;
use nodelock::machine::fingerprint::{self, ComponentOutcome, Fingerprint, MatchPolicy, Report, Verdict};
use nodelock::workstation::check::{self, CheckContext, Grant};
use nodelock::workstation::store::{ImportOutcome, Store};

use super::exit::{CliError, Exit};
use super::output::{Outcome, clean};
use super::overrides;
use super::{CheckArgs, ImportArgs, KeysArg, StatusArgs, StoreArg, VerifyArgs};

fn current_fingerprint() -> Result<Fingerprint, CliError> {
    Ok(Fingerprint::from_facts(&overrides::current_facts()?)?)
}

pub fn fingerprint(facts: Option<&Path>) -> Result<Outcome, CliError> {
    let facts = match facts {
        Some(path) => Facts::load(path)?,
        None => overrides::current_facts()?,
    };
    let report = Fingerprint::from_facts(&facts)?.report();
    let json = serde_json::to_value(&report).unwrap_or_default();
    let mut outcome = Outcome::new(report.workstation_id.clone(), json);
    if let Some(warning) = &report.warning {
        outcome = outcome.note(format!("warning: {warning}"));
    }
    Ok(outcome)
}

/// A file support may hold, read whole (at most 1 MiB).
fn read_small(path: &Path, what: &str) -> Result<Vec<u8>, CliError> {
    let origin = path.display().to_string();
    match fsio::read_capped(path, 1024 * 1024, Links::Follow) {
        Ok(bytes) => Ok(bytes),
        Err(fsio::ReadError::Io(e)) => Err(CliError::new(Exit::Io, format!("cannot read {origin}: {e}"))),
        Err(e) => Err(CliError::new(
            Exit::BadInput,
            format!("{origin} is not {what} ({e})"),
        )),
    }
}

/// What a binding is compared under: the fingerprint, and the license's own
/// policy and clone rule when the binding comes from a license.
struct Bound {
    fingerprint: Fingerprint,
    policy: Option<MatchPolicy>,
    allow_clone_only: bool,
}

/// The binding in a fingerprint report, a license (its signature is not
/// checked: this is a diagnosis, not a grant) or an activation request.
fn load_binding(path: &Path) -> Result<Bound, CliError> {
    let origin = path.display().to_string();
    let what = "a fingerprint report, a license or an activation request";
    let bytes = read_small(path, what)?;
    let report = |fingerprint| Bound {
        fingerprint,
        policy: None,
        allow_clone_only: true,
    };
    if bytes.trim_ascii_start().starts_with(b"{") {
        return Ok(report(Report::from_json(&bytes, &origin)?.fingerprint(&origin)?));
    }
    match envelope::peek_kind(&bytes) {
        Some(DocumentKind::License) => {
            let lic = license::License::read_unverified(&bytes).ok_or_else(|| {
                CliError::new(
                    Exit::BadInput,
                    format!("{origin} is a damaged license; ask for the file again"),
                )
            })?;
            let (fingerprint, _) = lic.validate()?;
            Ok(Bound {
                fingerprint,
                policy: Some(lic.binding.match_policy),
                allow_clone_only: lic.binding.allow_clone_only,
            })
        }
        Some(DocumentKind::ActivationRequest) => {
            let request = nodelock::documents::activation::open_request(&bytes)?;
            Ok(report(request.fingerprint().clone()))
        }
        _ => Err(CliError::new(Exit::BadInput, format!("{origin} is not {what}"))),
    }
}

/// The machine to compare with: a fingerprint report, a facts snapshot
/// (`nodelock facts`), or this machine.
fn load_current(path: Option<&Path>) -> Result<Fingerprint, CliError> {
    let Some(path) = path else {
        return current_fingerprint();
    };
    let origin = path.display().to_string();
    let bytes = read_small(path, "a fingerprint report or a facts snapshot")?;
    let format = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["format"].as_str().map(str::to_owned));
    if format.as_deref() == Some(nodelock::machine::facts::FORMAT) {
        return Ok(Fingerprint::from_facts(&Facts::from_json(&bytes, &origin)?)?);
    }
    Ok(Report::from_json(&bytes, &origin)?.fingerprint(&origin)?)
}

pub fn compare(
    bound: &Path,
    current: Option<&Path>,
    policy: Option<MatchPolicy>,
) -> Result<Outcome, CliError> {
    let bound = load_binding(bound)?;
    let current = load_current(current)?;
    let current = current.comparable_with(&bound.fingerprint);
    let policy = policy.or(bound.policy).unwrap_or_default();
    let report = fingerprint::compare(&bound.fingerprint, &current, policy, bound.allow_clone_only);
    let mut human = String::new();
    for c in &report.components {
        let what = match c.outcome {
            ComponentOutcome::Matched => "matched",
            ComponentOutcome::Changed => "changed",
            ComponentOutcome::Absent => "absent",
            ComponentOutcome::Unknown => "unknown",
        };
        let counts = if c.bound > 1 || c.current > 1 {
            format!(" ({} of {} bound present; {} now)", c.matched, c.bound, c.current)
        } else {
            String::new()
        };
        let class = serde_json::to_value(c.class)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        human.push_str(&format!("{:<13} {:<13} {what}{counts}\n", c.name.as_str(), class));
    }
    let holds = report.verdict == Verdict::Holds;
    human.push_str(&format!(
        "{}: {}{}\n",
        if holds { "holds" } else { "does not hold" },
        report.reason,
        report
            .next_step
            .map(|step| format!("; {step}"))
            .unwrap_or_default()
    ));
    let mut outcome = Outcome::new(human, serde_json::to_value(&report).unwrap_or_default());
    if let Some(w) = &report.warning {
        outcome = outcome.note(format!("warning: {w}"));
    }
    outcome.exit = if holds { Exit::Ok } else { Exit::NoMatch };
    Ok(outcome)
}

pub fn facts() -> Result<Outcome, CliError> {
    let facts = overrides::current_facts()?;
    let json = serde_json::to_value(&facts).unwrap_or_default();
    Ok(Outcome::new(facts.to_json(), json).note(
        "note: this snapshot contains this machine's raw hardware serials; send it only to your vendor's support",
    ))
}

pub fn keyring(keys: &KeysArg, store: Option<&Store>) -> Result<Keyring, CliError> {
    let mut ring = Keyring::new();
    for path in &keys.pubkeys {
        ring.add(PublicKey::load(path)?);
    }
    if ring.is_empty()
        && let Some(store) = store
    {
        ring = store.trust_roots()?;
    }
    if ring.is_empty() {
        return Err(nodelock::workstation::store::StoreError::NoTrustRoots.into());
    }
    Ok(ring)
}

fn grant_human(grant: &Grant) -> String {
    let mut s = format!(
        "license {} grants {} ({})",
        clean(&grant.license_id),
        clean(&grant.product),
        grant.kind.as_str()
    );
    if let Some(c) = &grant.customer {
        s.push_str(&format!(" to {}", clean(c)));
    }
    match (end_for_people(grant.expires_at.as_deref()), grant.days_left) {
        (Some(at), Some(days)) => s.push_str(&format!("; valid through {at} ({days} days left)")),
        _ => s.push_str("; does not expire"),
    }
    if let Some(m) = end_for_people(grant.maintenance_until.as_deref()) {
        s.push_str(&format!("; maintenance through {m}"));
    }
    if let Some(r) = &grant.revalidate_by {
        s.push_str(&format!(
            "; refresh by {} (nodelock refresh {})",
            clean(r),
            clean(&grant.product)
        ));
    }
    if !grant.features.is_empty() {
        s.push_str(&format!("; features: {}", clean(&grant.features.join(", "))));
    }
    s
}

fn end_for_people(rfc3339: Option<&str>) -> Option<String> {
    let text = rfc3339?;
    Some(
        clock::parse_start(text)
            .map(clock::format_end)
            .unwrap_or_else(|_| text.to_owned()),
    )
}

fn grant_outcome(grant: Grant, json: serde_json::Value) -> Outcome {
    let warning = grant.warning.clone();
    let outcome = Outcome::new(grant_human(&grant), json);
    match warning {
        Some(w) => outcome.note(format!("warning: {w}")),
        None => outcome,
    }
}

pub fn verify(args: &VerifyArgs) -> Result<Outcome, CliError> {
    let store = args.store.open().ok();
    let ring = keyring(&args.keys, store.as_ref())?;
    let bytes = envelope::read_file(&args.license, DocumentKind::License, Links::Follow)?;
    let verified = license::verify(&bytes, &ring)?;
    let current = current_fingerprint()?;
    let state = store.as_ref().map(Store::state).transpose()?.unwrap_or_default();
    let ctx = CheckContext {
        product: args.product.as_deref(),
        build_date: args.build_date,
        ..state.context(&current, overrides::now()?)
    };
    let grant = check::check(&verified, &ctx)?;
    let json = json!({ "grant": grant, "signer": verified.signer().to_string() });
    Ok(grant_outcome(grant, json))
}

pub fn import(args: &ImportArgs) -> Result<Outcome, CliError> {
    let store = args.store.open()?;
    let ring = keyring(&args.keys, Some(&store))?;
    let bytes = envelope::read_file(&args.license, DocumentKind::License, Links::Follow)?;
    let kind = envelope::peek_kind(&bytes);
    if kind == Some(DocumentKind::DeactivationReceipt) {
        let receipt = store.import_receipt(&bytes, &ring)?.into_receipt();
        let human = format!(
            "receipt: the vendor freed the seat of license {} ({}, transfer {} of {})",
            clean(&receipt.license_id),
            clock::format(receipt.deactivated_at),
            receipt.transfers_used,
            receipt.max_transfers
        );
        return Ok(Outcome::new(
            human,
            json!({ "outcome": "receipt", "receipt": receipt }),
        ));
    }
    if kind == Some(DocumentKind::TimeStatement) {
        let synced = store.import_time_statement(&bytes, &ring, overrides::now()?)?;
        return Ok(super::clock::synced_outcome(&store, &synced));
    }
    let current = current_fingerprint()?;
    let outcome = store.import(&bytes, &ring, &current, overrides::now()?)?;
    let trusted = keep_trust_root(&store, &ring, &bytes)?;
    let json = serde_json::to_value(&outcome).unwrap_or_default();
    let (grant, what) = match outcome {
        ImportOutcome::Installed {
            grant,
            replaced,
            revoked,
        } => {
            let mut what = match replaced {
                Some(old) if old == grant.license_id => format!(
                    "imported into {}: a newer issue of the same license",
                    store.root().display()
                ),
                Some(old) => format!(
                    "imported into {}, replacing license {}",
                    store.root().display(),
                    clean(&old)
                ),
                None => format!("imported into {}", store.root().display()),
            };
            for r in &revoked {
                what.push_str(&format!(
                    "\nlicense {} for {} was revoked by the vendor (support reset its activation) and is removed from this store",
                    clean(&r.license_id),
                    clean(&r.product)
                ));
            }
            (grant, what)
        }
        ImportOutcome::AlreadyInstalled { grant } => (grant, "already installed; nothing changed".to_owned()),
    };
    let mut out = grant_outcome(grant, json);
    out.human = format!("{}\n{what}", out.human);
    Ok(match trusted {
        Some(note) => out.note(note),
        None => out,
    })
}

/// Trusts every `--pubkey` given to a command that starts an activation
/// (`request`, `activate`): the person gave it for the license that will come
/// back, so the `nodelock import` the command prints works as printed.
/// Returns a note for each key the store did not trust yet.
pub fn keep_given_keys(store: &Store, keys: &KeysArg) -> Result<Vec<String>, CliError> {
    let mut notes = Vec::new();
    for path in &keys.pubkeys {
        let key = PublicKey::load(path)?;
        if store.add_trust_root(&key)? {
            notes.push(format!(
                "note: this store now trusts vendor key {}, given with --pubkey (`nodelock trust list`)",
                key.id()
            ));
        }
    }
    Ok(notes)
}

/// The command that installs what comes back for a request made in `store`,
/// as it will be pasted: `what` names the file (`LICENSE-FILE`), and
/// `--pubkey` is asked for only while the store trusts no vendor key.
pub fn import_step(what: &str, store: &Store, store_arg: &StoreArg) -> Result<String, CliError> {
    let pubkey = if store.trust_roots()?.is_empty() {
        " --pubkey VENDOR-KEY-FILE"
    } else {
        ""
    };
    Ok(format!("nodelock import {what}{pubkey}{}", store_arg.flag()))
}

/// After a license verified and was installed: keeps the key that signed it
/// (only that one, and only if it came from `--pubkey`) as a trust root of
/// the store, so later commands need no `--pubkey`, and says so with its id.
pub fn keep_trust_root(store: &Store, ring: &Keyring, license: &[u8]) -> Result<Option<String>, CliError> {
    let Ok(doc) = envelope::parse(license, DocumentKind::License) else {
        return Ok(None);
    };
    let signer = doc.key_id();
    let Some(key) = ring.get(&signer) else {
        return Ok(None);
    };
    Ok(store.add_trust_root(key)?.then(|| {
        format!("note: this store now trusts vendor key {signer}, which verified the license (`nodelock trust list`)")
    }))
}

pub fn status(args: &StatusArgs) -> Result<Outcome, CliError> {
    let store = args.store.open()?.warn_days(args.warn.warn_days);
    let ring = store.trust_roots()?;
    let current = current_fingerprint()?;
    let entries = store.status(&ring, &current, overrides::now()?)?;
    let mut human = String::new();
    if entries.is_empty() {
        human.push_str(&format!("no licenses installed in {}", store.root().display()));
    }
    for e in &entries {
        let days = e
            .days_left
            .map(|d| format!(", {d} days left"))
            .unwrap_or_default();
        human.push_str(&format!(
            "{}  {}  {}{days}: {}\n",
            clean(e.license_id.as_deref().unwrap_or("-")),
            clean(&e.product),
            e.state,
            clean(&e.message)
        ));
        if let Some(w) = &e.warning {
            human.push_str(&format!("  warning: {}\n", clean(w)));
        }
    }
    let json = json!({ "store": store.root().display().to_string(), "licenses": entries });
    Ok(Outcome::new(human, json))
}

pub fn check(args: &CheckArgs) -> Result<Outcome, CliError> {
    let store = args.store.open_existing()?.warn_days(args.warn.warn_days);
    let ring = keyring(&args.keys, Some(&store))?;
    // A borrow set to return on reconnect goes back first when this laptop
    // is back on the pool's network; the check then says so.
    if let Some((returned, server)) = super::borrow::reconnect_before(&store, &args.product)? {
        return Err(CliError::new(
            Exit::NotFound,
            format!(
                "{returned}; take a seat online instead: nodelock lease checkout {} --server {}{}",
                super::output::shell_word(&args.product),
                super::output::shell_word(&server),
                args.store.flag()
            ),
        ));
    }
    let current = current_fingerprint()?;
    let grant = store.check(&args.product, &ring, &current, overrides::now()?, args.build_date)?;
    let json = json!({ "grant": grant });
    Ok(grant_outcome(grant, json))
}

pub fn trust_add(key: &Path, store: &StoreArg) -> Result<Outcome, CliError> {
    let store = store.open()?;
    let key = PublicKey::load(key)?;
    let added = store.add_trust_root(&key)?;
    let human = if added {
        format!("now trusting vendor key {}", key.id())
    } else {
        format!("vendor key {} was already trusted", key.id())
    };
    Ok(Outcome::new(
        human,
        json!({ "key_id": key.id().to_string(), "added": added }),
    ))
}

pub fn trust_list(store: &StoreArg) -> Result<Outcome, CliError> {
    let store = store.open()?;
    let ring = store.trust_roots()?;
    let ids: Vec<String> = ring.keys().iter().map(|k| k.id().to_string()).collect();
    let ignored: Vec<String> = store
        .ignored_trust_files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut human = if ids.is_empty() {
        "no vendor keys trusted".to_owned()
    } else {
        ids.join("\n")
    };
    for path in &ignored {
        human.push_str(&format!(
            "\nignored: {} is not a trust root (trusting a key is explicit: nodelock trust add {})",
            clean(path),
            clean(path)
        ));
    }
    Ok(Outcome::new(human, json!({ "key_ids": ids, "ignored": ignored })))
}
