//! Vendor ledger commands: entitlements, answering requests, resets, report, audit.

use std::path::PathBuf;

use serde_json::json;

use nodelock::base::clock;
use nodelock::base::fsio::Links;
use nodelock::documents::activation;
use nodelock::documents::license;
use nodelock::format::envelope::{self, DocumentKind};
use nodelock::vendor::ledger::{
    EntitlementReport, EntitlementSpec, EntitlementUpdate, Ledger, LedgerError, Method, Selection,
};

use super::exit::{CliError, Exit};
use super::output::{CsvStream, Outcome, Stream, clean, write_out};
use super::overrides;
use super::{
    AnswerArgs, AuditArgs, EntitlementArgs, EntitlementIdArgs, LedgerArg, ReportArgs, ResetArgs, SelectArgs,
    UpdateArgs,
};

impl LedgerArg {
    pub fn path(&self) -> Result<PathBuf, CliError> {
        self.ledger
            .clone()
            .or_else(Ledger::default_location)
            .ok_or_else(|| {
                CliError::new(
                    Exit::Io,
                    "no vendor data directory is known here; pass --ledger PATH",
                )
            })
    }

    /// The ledger, which must exist: only `vendor init` and `vendor
    /// entitlement create` make one, so that a mistyped path is an error
    /// rather than a new, empty ledger that reports nothing sold.
    pub fn open(&self) -> Result<Ledger, CliError> {
        let path = self.path()?;
        if !path.exists() {
            let quoted = super::output::shell_word(&path.display().to_string());
            return Err(CliError::new(
                Exit::NoLedger,
                format!(
                    "there is no vendor ledger at {}; pass the --ledger you use (or set NODELOCK_LEDGER), or create one with `nodelock vendor init --ledger {quoted}`",
                    path.display()
                ),
            ));
        }
        Ok(Ledger::open(&path)?)
    }

    /// The ledger, made (with its directories) when it does not exist yet.
    fn open_or_create(&self) -> Result<(Ledger, bool), CliError> {
        let path = self.path()?;
        let created = !path.exists();
        Ok((Ledger::open(&path)?, created))
    }

    fn actor(&self) -> String {
        self.operator
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("USERNAME").ok())
            .unwrap_or_else(|| "unknown".into())
    }
}

pub fn create(args: &EntitlementArgs) -> Result<Outcome, CliError> {
    let terms = args.sale.terms()?;
    if !license::valid_product(&terms.product) {
        return Err(CliError::new(
            Exit::Usage,
            format!("'{}' is not a valid product name", terms.product),
        ));
    }
    let spec = EntitlementSpec {
        product: terms.product,
        seats: args.seats,
        kind: terms.kind,
        expires_at: terms.expires_at,
        maintenance_until: terms.maintenance_until,
        features: terms.features,
        customer: terms.customer,
        max_transfers: args.max_transfers,
        max_resets_per_year: args.max_resets,
        require_hardware_id: !terms.allow_clone_only,
        match_policy: terms.match_policy,
        revalidate_days: args.revalidate_days,
        pool: (terms.kind == nodelock::documents::license::LicenseKind::FloatingPool).then_some(
            nodelock::documents::license::PoolTerms {
                lease_minutes: args.lease_minutes,
                borrow_days: args.borrow_max_days,
                borrow_seats: args.borrow_max_seats.unwrap_or(args.seats),
            },
        ),
    };
    let (mut ledger, _) = args.ledger.open_or_create()?;
    let (id, key) = ledger.create_entitlement(&spec, overrides::now()?, &args.ledger.actor())?;
    let human = format!(
        "entitlement {id}: {} seat(s) of {} ({})\nactivation key: {key}\n\
         Give the key to the customer; it is shown only this once (the ledger keeps a hash).",
        spec.seats,
        spec.product,
        spec.kind.as_str()
    );
    Ok(Outcome::new(
        human,
        json!({ "entitlement_id": id, "activation_key": key.to_string(), "product": spec.product, "seats": spec.seats }),
    ))
}

pub fn answer(args: &AnswerArgs) -> Result<Outcome, CliError> {
    let vendor = super::vendor::signing_key(&args.signing_key)?;
    let now = overrides::now()?;
    // A document that does not parse or verify is refused without a row in
    // the permanent audit: only a known entitlement or a verified signature
    // earns one (the same rule as the server's).
    let bytes = envelope::read_file(&args.request, DocumentKind::ActivationRequest, Links::Follow)?;
    let kind = envelope::peek_kind(&bytes);
    if kind == Some(DocumentKind::ClockRequest) {
        // The vendor's time needs no ledger.
        return answer_clock_request(args, &bytes, &vendor, now);
    }
    let mut ledger = args.ledger.open()?;
    let actor = args.ledger.actor();
    match kind {
        Some(DocumentKind::DeactivationRequest) => {
            let pending = activation::open_deactivation(&bytes)?;
            let done = ledger.answer_deactivation(pending, &vendor, now, &actor)?;
            write_out(&args.out, &done.receipt)?;
            let d = &done.details;
            let human = if done.replayed {
                format!(
                    "license {} was already deactivated; the same receipt was written to {} (nothing more freed)",
                    done.license_id,
                    args.out.display()
                )
            } else {
                format!(
                    "license {} deactivated: one seat of {} freed (transfer {} of {}); receipt written to {}",
                    done.license_id,
                    d.entitlement,
                    d.transfers_used,
                    d.max_transfers,
                    args.out.display()
                )
            };
            Ok(Outcome::new(
                human,
                json!({ "kind": "deactivation-receipt", "deactivation": done, "file": args.out.display().to_string() }),
            ))
        }
        Some(DocumentKind::RefreshRequest) => {
            let pending = activation::open_refresh(&bytes)?;
            let done = ledger.answer_refresh(pending, &vendor, now, &actor)?;
            write_out(&args.out, &done.license)?;
            let human = format!(
                "license {} refreshed with the terms of entitlement {} (revalidate by {}); written to {}; send it back to the customer",
                done.license_id,
                done.entitlement_id,
                done.revalidate_by.as_deref().unwrap_or("never"),
                args.out.display()
            );
            Ok(Outcome::new(
                human,
                json!({ "kind": "license", "refresh": done, "file": args.out.display().to_string() }),
            ))
        }
        _ => {
            let request = activation::open_request(&bytes)?;
            let answered = ledger.answer_activation(&request, &vendor, Method::Offline, now, &actor)?;
            write_out(&args.out, &answered.license)?;
            let human = if answered.replayed {
                format!(
                    "this request was answered before; the same license {} was written to {} (no new seat taken)",
                    answered.license_id,
                    args.out.display()
                )
            } else if answered.reactivated {
                format!(
                    "workstation {} already holds license {} of entitlement {}: issued again to this request and written to {} (no new seat taken); send it back to the customer",
                    answered.workstation_id,
                    answered.license_id,
                    answered.entitlement_id,
                    args.out.display()
                )
            } else {
                format!(
                    "activated workstation {} on entitlement {}: license {} written to {}; send it back to the customer",
                    answered.workstation_id,
                    answered.entitlement_id,
                    answered.license_id,
                    args.out.display()
                )
            };
            Ok(Outcome::new(
                human,
                json!({ "kind": "license", "activation": answered, "file": args.out.display().to_string() }),
            ))
        }
    }
}

pub fn reset(args: &ResetArgs) -> Result<Outcome, CliError> {
    if args.reason.trim().is_empty() {
        return Err(CliError::new(
            Exit::Usage,
            "--reason must say why the seat is reset",
        ));
    }
    let mut ledger = args.ledger.open()?;
    let license_id = ledger.reset(
        &args.activation_id,
        args.reason.trim(),
        args.force,
        overrides::now()?,
        &args.ledger.actor(),
    )?;
    let human = format!(
        "activation {} reset: its seat is free and license {license_id} is revoked in every license issued to this customer from now on",
        args.activation_id
    );
    Ok(Outcome::new(
        human,
        json!({ "activation_id": args.activation_id, "revoked_license_id": license_id }),
    ))
}

impl SelectArgs {
    fn selection(&self) -> Selection {
        Selection {
            product: self.product.clone(),
            customer: self.customer.clone(),
            entitlement: self.entitlement.clone(),
            ..Selection::default()
        }
    }
}

fn csv_or_json(csv: bool, json_mode: bool) -> Result<bool, CliError> {
    if csv && json_mode {
        return Err(CliError::new(Exit::Usage, "choose one of --csv and --json"));
    }
    Ok(csv)
}

const REPORT_CSV: &[&str] = &[
    "id",
    "product",
    "kind",
    "customer",
    "expires_at",
    "maintenance_until",
    "seats",
    "used",
    "available",
    "transfers_used",
    "max_transfers",
    "resets_last_year",
    "max_resets_per_year",
    "suspended",
    "features",
];

fn report_csv_row(e: &EntitlementReport) -> Vec<String> {
    let when = |t: Option<clock::Timestamp>| t.map(clock::format).unwrap_or_default();
    vec![
        e.id.clone(),
        e.product.clone(),
        e.kind.as_str().to_owned(),
        e.customer.clone().unwrap_or_default(),
        when(e.expires_at),
        when(e.maintenance_until),
        e.seats.to_string(),
        e.used.to_string(),
        e.available.to_string(),
        e.transfers_used.to_string(),
        e.max_transfers.to_string(),
        e.resets_last_year.to_string(),
        e.max_resets_per_year.to_string(),
        e.suspended.to_string(),
        e.features.join(","),
    ]
}

/// A clock request answered with the vendor's time, signed.
fn answer_clock_request(
    args: &AnswerArgs,
    bytes: &[u8],
    vendor: &nodelock::format::PrivateKey,
    now: clock::Timestamp,
) -> Result<Outcome, CliError> {
    let request = nodelock::documents::time::open_clock_request(bytes)?;
    let (statement, armored) = nodelock::documents::time::answer_clock_request(&request, vendor, now)?;
    write_out(&args.out, &armored)?;
    let human = format!(
        "time statement ({}) written to {}; send it back to the customer, who installs it with `nodelock import FILE`",
        clock::format(statement.time),
        args.out.display()
    );
    Ok(Outcome::new(
        human,
        json!({ "kind": "time-statement", "time": clock::format(statement.time), "file": args.out.display().to_string() }),
    ))
}

/// The compliance view, printed one entitlement at a time.
pub fn report(args: &ReportArgs, json_mode: bool) -> Result<Outcome, CliError> {
    let csv = csv_or_json(args.csv, json_mode)?;
    let ledger = args.ledger.open()?;
    let now = overrides::now()?;
    let horizon = args
        .ending_within
        .map(|days| now.saturating_add(days.saturating_mul(clock::DAY)));
    let wanted =
        |e: &EntitlementReport| horizon.is_none_or(|h| e.expires_at.is_some_and(|end| end > now && end <= h));
    let selection = args.select.selection();
    if csv {
        let mut out = CsvStream::start(REPORT_CSV)?;
        ledger.each_report(now, &selection, &mut |e| {
            if wanted(&e) {
                out.row(report_csv_row(&e))
                    .map_err(|e| LedgerError::Unavailable(e.message))?;
            }
            Ok(())
        })?;
        return out.finish();
    }
    let mut out = Stream::start(json_mode, "entitlements");
    ledger.each_report(now, &selection, &mut |e| {
        if wanted(&e) {
            out.row(&e, report_lines);
        }
        Ok(())
    })?;
    Ok(out.finish(match horizon {
        Some(_) => "no entitlement ends in that time",
        None => "no entitlements in the ledger",
    }))
}

/// `vendor entitlement list`: the report's summary lines, no activations.
pub fn list(args: &LedgerArg, json_mode: bool) -> Result<Outcome, CliError> {
    let ledger = args.open()?;
    let now = overrides::now()?;
    let mut out = Stream::start(json_mode, "entitlements");
    ledger.each_report(now, &Selection::default(), &mut |mut e| {
        e.activations.clear();
        out.row(&e, report_lines);
        Ok(())
    })?;
    Ok(out.finish("no entitlements in the ledger"))
}

/// `vendor entitlement show ID`: one entitlement's report row.
pub fn show(args: &EntitlementIdArgs) -> Result<Outcome, CliError> {
    let ledger = args.ledger.open()?;
    let now = overrides::now()?;
    let mut found = None;
    let one = Selection {
        entitlement: Some(args.id.clone()),
        ..Selection::default()
    };
    ledger.each_report(now, &one, &mut |e| {
        found = Some(e);
        Ok(())
    })?;
    let e = found.ok_or_else(|| LedgerError::UnknownEntitlement(args.id.clone()))?;
    Ok(Outcome::new(report_lines(&e), json!({ "entitlement": e })))
}

/// `vendor entitlement update ID …`: a renewal or change, audited.
pub fn update(args: &UpdateArgs) -> Result<Outcome, CliError> {
    let mut ledger = args.ledger.open()?;
    let change = EntitlementUpdate {
        expires_at: args.expires,
        maintenance_until: args.maintenance_until,
        seats: args.seats,
        features: args.features.as_deref().map(super::values::feature_list),
        suspended: match (args.suspend, args.resume) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
    };
    let ent = ledger.update_entitlement(&args.id, &change, overrides::now()?, &args.ledger.actor())?;
    let human = format!(
        "entitlement {} updated: {} seat(s) of {} ({}){}{}. Licenses already issued get the change at their next `nodelock refresh`.",
        ent.id,
        ent.spec.seats,
        clean(&ent.spec.product),
        ent.spec.kind.as_str(),
        ent.spec
            .expires_at
            .map(|e| format!(", term ends {}", clock::format_end(e)))
            .unwrap_or_default(),
        if ent.suspended { ", suspended" } else { "" }
    );
    Ok(Outcome::new(
        human,
        json!({
            "entitlement_id": ent.id,
            "seats": ent.spec.seats,
            "kind": ent.spec.kind.as_str(),
            "expires_at": ent.spec.expires_at.map(clock::format),
            "maintenance_until": ent.spec.maintenance_until.map(clock::format),
            "features": ent.spec.features,
            "suspended": ent.suspended,
        }),
    ))
}

fn report_lines(e: &EntitlementReport) -> String {
    let mut human = format!(
        "{}  {}  {}{}{}: {} of {} seat(s) used, {} free; transfers {}/{}; resets this year {}/{}\n",
        e.id,
        clean(&e.product),
        e.kind,
        e.customer
            .as_deref()
            .map(|c| format!(" for {}", clean(c)))
            .unwrap_or_default(),
        e.expires_at
            .map(|end| format!(", ends {}", clock::format_end(end)))
            .unwrap_or_default(),
        e.used,
        e.seats,
        e.available,
        e.transfers_used,
        e.max_transfers,
        e.resets_last_year,
        e.max_resets_per_year
    );
    for a in &e.activations {
        human.push_str(&format!(
            "  {}  workstation {}  license {}  {} {}  {}{}\n",
            a.id,
            a.workstation_id,
            a.license_id,
            a.method,
            clock::format(a.activated_at),
            a.state,
            a.ended_at
                .map(|t| format!(" {}", clock::format(t)))
                .unwrap_or_default()
        ));
    }
    human
}

/// The audit, printed one row at a time (its memory does not grow with it).
pub fn audit(args: &AuditArgs, json_mode: bool) -> Result<Outcome, CliError> {
    let csv = csv_or_json(args.csv, json_mode)?;
    let ledger = args.ledger.open()?;
    let selection = Selection {
        since: args.since,
        until: args.until,
        ..args.select.selection()
    };
    if csv {
        let mut out = CsvStream::start(&[
            "seq",
            "at",
            "event",
            "entitlement_id",
            "activation_id",
            "actor",
            "detail",
        ])?;
        ledger.each_audit_row(&selection, &mut |r| {
            out.row([
                r.seq.to_string(),
                clock::format(r.at),
                r.event.as_str().to_owned(),
                r.entitlement_id.unwrap_or_default(),
                r.activation_id.unwrap_or_default(),
                r.actor,
                r.detail,
            ])
            .map_err(|e| LedgerError::Unavailable(e.message))
        })?;
        return out.finish();
    }
    let mut out = Stream::start(json_mode, "audit");
    ledger.each_audit_row(&selection, &mut |r| {
        out.row(&r, |r| {
            format!(
                "{:>5} {} {:<22} {:<16} {:<16} {:<10} {}",
                r.seq,
                clock::format(r.at),
                r.event,
                r.entitlement_id.as_deref().unwrap_or("-"),
                r.activation_id.as_deref().unwrap_or("-"),
                clean(&r.actor),
                clean(&r.detail)
            )
        });
        Ok(())
    })?;
    Ok(out.finish(""))
}

/// The deep check the server's `/healthz` no longer runs for every caller:
/// the whole file's integrity and every entitlement's counters.
/// `vendor init`: makes the ledger (and its directories) if there is none,
/// brings an existing one's schema up to date; either way says which.
pub fn init(args: &LedgerArg) -> Result<Outcome, CliError> {
    let (ledger, created) = args.open_or_create()?;
    let path = args.path()?;
    let version = ledger.schema_version()?;
    let human = if created {
        format!(
            "created the vendor ledger {} (schema version {version})",
            path.display()
        )
    } else {
        format!(
            "the vendor ledger {} already exists (schema version {version}); nothing was changed but the schema's upgrades",
            path.display()
        )
    };
    Ok(Outcome::new(
        human,
        json!({ "ledger": path.display().to_string(), "created": created, "schema_version": version }),
    ))
}

pub fn check(args: &LedgerArg) -> Result<Outcome, CliError> {
    let ledger = args.open()?;
    let integrity = ledger.integrity_check()?;
    let mismatches = ledger.counter_mismatches()?;
    let sound = integrity == "ok" && mismatches.is_empty();
    let human = if sound {
        "the ledger is sound: integrity ok, every seat counter matches its activations".to_owned()
    } else {
        format!(
            "the ledger has problems: integrity {}; counters disagree for {}",
            clean(&integrity),
            if mismatches.is_empty() {
                "none".to_owned()
            } else {
                mismatches.join(", ")
            }
        )
    };
    let mut outcome = Outcome::new(
        human,
        json!({ "integrity": integrity, "counter_mismatches": mismatches, "sound": sound }),
    );
    if !sound {
        outcome.exit = Exit::DoctorProblems;
    }
    Ok(outcome)
}
