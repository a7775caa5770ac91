//! Vendor commands: key generation and license issuing.

use std::path::Path;

use serde_json::json;

use nodelock::base::clock;
use nodelock::base::fsio;
use nodelock::base::random::OsRandom;
use nodelock::documents::license::{self, Terms};
use nodelock::format::PrivateKey;
use nodelock::format::keys::write_key_pair;
use nodelock::machine::fingerprint::Identity;

use super::IssueArgs;
use super::exit::{CliError, Exit};
use super::output::{Outcome, warn, write_out};
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

/// Loads the vendor's signing key, warning loudly (as ssh does) when others
/// can read it.
pub fn signing_key(path: &std::path::Path) -> Result<PrivateKey, CliError> {
    let key = PrivateKey::load(path)?;
    if fsio::readable_by_others(path).unwrap_or(false) {
        warn(&format!(
            "the signing key {} is readable by others: anyone who can read it can issue licenses; run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(key)
}

pub fn issue(args: &IssueArgs) -> Result<Outcome, CliError> {
    let key = signing_key(&args.signing_key)?;
    let origin = args.fingerprint.display().to_string();
    let bytes = match fsio::read_capped(&args.fingerprint, 1024 * 1024, fsio::Links::Follow) {
        Ok(bytes) => bytes,
        Err(fsio::ReadError::Io(e)) => {
            return Err(CliError::new(Exit::Io, format!("cannot read {origin}: {e}")));
        }
        Err(e) => {
            return Err(CliError::new(
                Exit::BadInput,
                format!(
                    "{origin} is not a fingerprint report ({e}); pass the file `nodelock fingerprint --json` wrote"
                ),
            ));
        }
    };
    let report = nodelock::machine::fingerprint::Report::from_json(&bytes, &origin)?;
    let fingerprint = report.fingerprint(&origin)?;
    let terms = Terms {
        not_before: args.not_before,
        ..args.sale.terms()?
    };
    if terms.kind == nodelock::documents::license::LicenseKind::FloatingPool {
        // A pool server signs leases with the install key its activation
        // made; a license issued from a report has none.
        return Err(CliError::new(
            Exit::Usage,
            "a floating pool is sold as an entitlement (`nodelock vendor entitlement create --kind floating --seats N`) and activated on the pool server",
        ));
    }
    // Bound under a salt of its own (fingerprint algorithm 2): the license
    // file then carries no digest a guess can be checked against cheaply.
    let salt = nodelock::base::random::bytes::<{ nodelock::machine::fingerprint::SALT_LEN }>(&OsRandom)
        .map_err(|e| CliError::new(Exit::Io, e.to_string()))?;
    let salted = fingerprint.salted(&salt)?;
    let (lic, text) = license::issue(&terms, &salted, None, overrides::now()?, &key, &OsRandom)
        .map_err(|e| CliError::new(Exit::BadInput, e.to_string()))?;
    write_out(&args.out, &text)?;
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
