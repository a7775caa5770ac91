//! Vendor commands: key generation and license issuing.

use std::path::Path;

use serde_json::json;

use nodelock::base::clock;
use nodelock::base::fsio;
use nodelock::documents::license::{self, LicenseKind, Terms};
use nodelock::format::PrivateKey;
use nodelock::format::keys::write_key_pair;
use nodelock::machine::fingerprint::Identity;

use super::IssueArgs;
use super::exit::{CliError, Exit};
use super::output::Outcome;
use super::overrides;

pub fn keygen(dir: &Path, force: bool) -> Result<Outcome, CliError> {
    let key = PrivateKey::generate()?;
    write_key_pair(dir, &key, force)?;
    let id = key.public().id().to_string();
    let human = format!(
        "wrote {0}/vendor.key (private, owner-only: keep it secret and backed up) and {0}/vendor.pub (give this to applications); key id {id}",
        dir.display()
    );
    Ok(Outcome::new(
        human,
        json!({
            "key_id": id,
            "private_key": dir.join("vendor.key").display().to_string(),
            "public_key": dir.join("vendor.pub").display().to_string(),
        }),
    ))
}

fn date(text: Option<&str>, end: bool) -> Result<Option<clock::Timestamp>, CliError> {
    text.map(|t| {
        if end {
            clock::parse_end(t)
        } else {
            clock::parse_start(t)
        }
        .map_err(|e| CliError::new(Exit::Usage, e.to_string()))
    })
    .transpose()
}

pub fn issue(args: &IssueArgs) -> Result<Outcome, CliError> {
    let key = PrivateKey::load(&args.signing_key)?;
    let origin = args.fingerprint.display().to_string();
    let bytes = std::fs::read(&args.fingerprint)
        .map_err(|e| CliError::new(Exit::Io, format!("cannot read {origin}: {e}")))?;
    let report = nodelock::machine::fingerprint::Report::from_json(&bytes, &origin)?;
    let fingerprint = report.fingerprint(&origin)?;
    let expires_at = date(args.expires.as_deref(), true)?;
    let kind = match args.kind.as_deref() {
        Some("perpetual") => LicenseKind::Perpetual,
        Some("trial") => LicenseKind::Trial,
        Some(_) => LicenseKind::Subscription,
        None if expires_at.is_some() => LicenseKind::Subscription,
        None => LicenseKind::Perpetual,
    };
    let terms = Terms {
        product: args.product.clone(),
        kind,
        features: super::feature_list(&args.features),
        customer: args.customer.clone(),
        entitlement: None,
        not_before: date(args.not_before.as_deref(), false)?,
        expires_at,
        maintenance_until: date(args.maintenance_until.as_deref(), true)?,
        allow_clone_only: !args.require_hardware_id,
        revoked: Vec::new(),
    };
    let (lic, text) = license::issue(&terms, &fingerprint, None, overrides::now()?, &key)
        .map_err(|e| CliError::new(Exit::BadInput, e.to_string()))?;
    fsio::write_file(&args.out, text.as_bytes(), false, false)
        .map_err(|e| CliError::new(Exit::Io, format!("cannot write {}: {e}", args.out.display())))?;
    let workstation = fingerprint.workstation_id().to_string();
    let mut outcome = Outcome::new(
        format!(
            "wrote {} license {} for {} to {} (workstation {workstation})",
            lic.kind.as_str(),
            lic.id,
            lic.product,
            args.out.display()
        ),
        json!({
            "license_id": lic.id,
            "product": lic.product,
            "kind": lic.kind,
            "workstation_id": workstation,
            "file": args.out.display().to_string(),
            "expires_at": lic.expires_at.map(clock::format),
            "warning": (fingerprint.identity() == Identity::CloneOnly).then_some(nodelock::machine::fingerprint::CLONE_ONLY_WARNING),
        }),
    );
    if fingerprint.identity() == Identity::CloneOnly {
        outcome = outcome.note(format!(
            "warning: {}",
            nodelock::machine::fingerprint::CLONE_ONLY_WARNING
        ));
    }
    Ok(outcome)
}
