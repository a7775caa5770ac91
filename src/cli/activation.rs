//! Workstation side of offline activation: `request` and `deactivate`.

use serde_json::json;

use nodelock::documents::activation::ActivationKey;
use nodelock::machine::fingerprint::{CLONE_ONLY_WARNING, Fingerprint, Identity};

use super::exit::{CliError, Exit};
use super::output::{Outcome, clean, write_out};
use super::{DeactivateArgs, RequestArgs};
use super::{overrides, workstation};

pub fn request(args: &RequestArgs) -> Result<Outcome, CliError> {
    if let Some(license_id) = &args.refresh {
        return refresh_request(args, license_id);
    }
    let key = ActivationKey::parse(args.key.as_deref().unwrap_or_default())
        .map_err(|e| CliError::new(Exit::BadActivationKey, e.to_string()))?;
    let store = args.store.open()?;
    let fingerprint = Fingerprint::from_facts(&overrides::current_facts()?)?;
    let pending = store.create_request(&key, &fingerprint, overrides::now()?)?;
    write_out(&args.out, &pending.armored)?;
    let kept = workstation::keep_given_keys(&store, &args.keys)?;
    let human = format!(
        "wrote the activation request for workstation {} to {} ({} bytes).\n\
         Next: send that file to your vendor (e-mail, USB stick, or the activation portal).\n\
         You will get a license file back; install it on this machine with:\n  {}",
        pending.workstation_id,
        args.out.display(),
        pending.armored.len(),
        workstation::import_step("LICENSE-FILE", &store, &args.store)?,
    );
    let clone_only = fingerprint.identity() == Identity::CloneOnly;
    let mut out = Outcome::new(
        human,
        json!({
            "request": args.out.display().to_string(),
            "workstation_id": pending.workstation_id,
            "nonce": pending.nonce,
            "size": pending.armored.len(),
            "warning": clone_only.then_some(CLONE_ONLY_WARNING),
        }),
    );
    if clone_only {
        out = out.note(format!("warning: {CLONE_ONLY_WARNING}"));
    }
    for note in kept {
        out = out.note(note);
    }
    Ok(out)
}

/// Offline deactivation: the request goes to `out`.
/// `request --refresh LICENSE-ID -o FILE`: the offline refresh request.
fn refresh_request(args: &RequestArgs, license_id: &str) -> Result<Outcome, CliError> {
    let store = args.store.open_existing()?;
    let ring = store.trust_roots()?;
    let fingerprint = Fingerprint::from_facts(&overrides::current_facts()?)?;
    let (product, armored) =
        store.refresh_request_by_id(license_id, &ring, &fingerprint, overrides::now()?)?;
    write_out(&args.out, &armored)?;
    Ok(Outcome::new(
        format!(
            "wrote the refresh request for license {} ({}) to {}.\nNext: send that file to your vendor (e-mail, USB stick, or the activation portal), then install the license you get back with:\n  {}",
            clean(license_id),
            clean(&product),
            args.out.display(),
            workstation::import_step("LICENSE-FILE", &store, &args.store)?
        ),
        json!({ "request": args.out.display().to_string(), "license_id": license_id, "product": product }),
    ))
}

pub fn deactivate_to_file(args: &DeactivateArgs, out: &std::path::Path) -> Result<Outcome, CliError> {
    let store = args.store.open_existing()?;
    super::pool::refuse_if_borrowed(&store, &args.license_id, overrides::now()?)?;
    let done = store.deactivate(&args.license_id, overrides::now()?)?;
    write_out(out, &done.armored)?;
    let what = match (&done.product, done.reprinted) {
        (_, true) => format!(
            "license {} was already deactivated here; its request was written again",
            done.license_id
        ),
        (Some(p), false) => format!("license {} for {p} is removed from this machine", done.license_id),
        (None, false) => format!("license {} is deactivated", done.license_id),
    };
    let human = format!(
        "{what}.\nNext: send {} to your vendor; the seat is freed when they answer it, and you get a receipt,\n\
         which this command records:\n  {}\nThe license can then be activated on another machine.",
        out.display(),
        workstation::import_step("RECEIPT-FILE", &store, &args.store)?
    );
    Ok(Outcome::new(
        human,
        json!({ "deactivation": done, "request": out.display().to_string() }),
    ))
}
