//! `check`: a verified license, this machine, and a time → grant or one denial.
//!
//! The order of the checks decides which single reason a person sees: the
//! wrong product first (nothing else matters), then the machine, then the clock,
//! then the license's dates, then maintenance.

use serde::Serialize;

use crate::base::clock::{self, CLOCK_TOLERANCE, Timestamp};
use crate::base::codes::Exit;
use crate::documents::license::{LicenseKind, VerifiedLicense};
use crate::machine::fingerprint::{self, ComponentName, Fingerprint, MatchReport, NextStep, Verdict};

/// Everything a check depends on besides the license; nothing here is read
/// from the OS, so tests and callers pin all of it.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext<'a> {
    /// The product the application is; `None` accepts any.
    pub product: Option<&'a str>,
    /// This machine's fingerprint.
    pub current: &'a Fingerprint,
    /// The time now.
    pub now: Timestamp,
    /// The application build's release date, for maintenance; `None` skips it.
    pub build_date: Option<Timestamp>,
    /// The latest trusted time the store has seen.
    pub watermark: Option<Timestamp>,
    /// License ids the vendor has revoked (support resets), as the store knows them.
    pub revoked: &'a [String],
    /// Warn this many days before the license or its maintenance ends.
    pub warn_days: i64,
}

/// Days before an expiry or a maintenance end from which checks warn, unless
/// the caller says otherwise.
pub const DEFAULT_WARN_DAYS: i64 = 30;
/// Days before a revalidation date from which checks warn (revalidation
/// periods are short; a month's notice would be constant noise).
pub const REVALIDATION_WARN_DAYS: i64 = 7;

/// A successful check.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    /// The granting license's id, for support and for deactivation.
    pub license_id: String,
    /// The product it grants (the one asked for, when a product was asked for).
    pub product: String,
    /// Perpetual, subscription, …: whether `expires_at` applies.
    pub kind: LicenseKind,
    /// Feature names the application may enable.
    pub features: Vec<String>,
    /// Who the license was sold to, as the vendor wrote it (display only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// Expiry (RFC 3339), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Whole days left, if it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    /// Maintenance end (RFC 3339), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance_until: Option<String>,
    /// When it must be refreshed with the vendor (RFC 3339), if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revalidate_by: Option<String>,
    /// Something the user should know even though the license holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The one reason a license is refused, with what to do about it.
#[allow(
    missing_docs,
    reason = "variant fields are named for what they hold; the #[error] text says what they mean"
)]
#[derive(Debug, Clone, thiserror::Error)]
pub enum Denial {
    /// For another product.
    #[error("this license is for product '{found}', not '{wanted}'; install the license for '{wanted}'")]
    WrongProduct {
        /// The product asked for.
        wanted: String,
        found: String,
    },
    /// Revoked by the vendor (its activation was reset by support).
    #[error(
        "license {license_id} was revoked by the vendor (support reset its activation); activate this machine again with an activation key"
    )]
    Revoked { license_id: String },
    /// Bound to another machine.
    #[error("the license is bound to another machine: {} (changed: {}); {}", .report.reason, changed_list(&.report.changed()), .report.next_step.unwrap_or(NextStep::Transfer))]
    OtherMachine { report: Box<MatchReport> },
    /// The clock is earlier than a time already seen.
    #[error("the system clock ({}) is earlier than a time this machine has already seen ({}); set the clock to the correct time, or if it already is, take the vendor's time with `nodelock clock sync --server URL` (offline: `nodelock clock request -o clock.req`)", clock::format(*.now), clock::format(*.watermark))]
    ClockSetBack {
        /// Now, as the clock says.
        now: Timestamp,
        watermark: Timestamp,
    },
    /// Issued (by the vendor's clock) later than this machine's clock, by
    /// more than the tolerance: this clock is behind, or the document lies.
    /// Refused so that it cannot push the store's watermark ahead.
    #[error("the license was issued {}, more than a day after this machine's clock ({}); set the system clock to the correct time", clock::format(*.issued_at), clock::format(*.now))]
    IssuedInFuture { now: Timestamp, issued_at: Timestamp },
    /// Before its start.
    #[error("the license is valid from {}; check the system clock or wait until then", clock::format(*.not_before))]
    NotYetValid {
        /// When it starts to be valid.
        not_before: Timestamp,
    },
    /// After its end.
    #[error("the license expired ({}); renew it with the vendor", clock::format_end(*.expired_at))]
    Expired { expired_at: Timestamp },
    /// The vendor asks for a refresh by now, and this license is older.
    #[error("license {license_id} for {product} had to be revalidated with the vendor by {}; refresh it: `nodelock refresh {product} -o refresh.req` and send refresh.req to the vendor (or, online, `nodelock refresh {product} --server` and the activation server's URL)", clock::format(*.due))]
    RevalidationDue {
        license_id: String,
        product: String,
        /// The license's `revalidate_by`.
        due: Timestamp,
    },
    /// The build is newer than the maintenance period.
    #[error("maintenance ended ({}) and this build was released {}; use a build released before then or renew maintenance", clock::format_end(*.until), clock::format(*.build_date))]
    MaintenanceEnded { until: Timestamp, build_date: Timestamp },
}

fn changed_list(names: &[ComponentName]) -> String {
    if names.is_empty() {
        return "nothing readable".to_owned();
    }
    names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
}

impl Denial {
    /// Its entry in the registry of stable codes: exit status and `--json` code.
    pub fn exit(&self) -> Exit {
        match self {
            Denial::WrongProduct { .. } => Exit::WrongProduct,
            Denial::Revoked { .. } => Exit::Revoked,
            Denial::OtherMachine { .. } => Exit::OtherMachine,
            Denial::ClockSetBack { .. } | Denial::IssuedInFuture { .. } => Exit::ClockSetBack,
            Denial::NotYetValid { .. } => Exit::NotYetValid,
            Denial::Expired { .. } => Exit::Expired,
            Denial::RevalidationDue { .. } => Exit::RevalidationDue,
            Denial::MaintenanceEnded { .. } => Exit::MaintenanceEnded,
        }
    }

    /// A stable code for scripts.
    pub fn code(&self) -> &'static str {
        self.exit().code()
    }
}

/// The clock-set-back rule: `now` may not be more than the tolerance
/// earlier than the latest time the store has seen. Licenses that depend on
/// the date and borrowed seats both answer to it.
pub fn clock_not_set_back(watermark: Option<Timestamp>, now: Timestamp) -> Result<(), Denial> {
    match watermark {
        Some(watermark) if now < watermark.saturating_sub(CLOCK_TOLERANCE) => {
            Err(Denial::ClockSetBack { now, watermark })
        }
        _ => Ok(()),
    }
}

/// Checks a verified license against this machine and time.
pub fn check(verified: &VerifiedLicense, ctx: &CheckContext<'_>) -> Result<Grant, Denial> {
    let lic = verified.license();
    if let Some(wanted) = ctx.product
        && wanted != lic.product
    {
        return Err(Denial::WrongProduct {
            wanted: wanted.to_owned(),
            found: lic.product.clone(),
        });
    }
    if ctx.revoked.contains(&lic.id) {
        return Err(Denial::Revoked {
            license_id: lic.id.clone(),
        });
    }
    let current = ctx.current.comparable_with(verified.binding());
    let report = fingerprint::compare(
        verified.binding(),
        &current,
        lic.binding.match_policy,
        lic.binding.allow_clone_only,
    );
    if report.verdict == Verdict::Fails {
        return Err(Denial::OtherMachine {
            report: Box::new(report),
        });
    }
    // The clock-set-back rule guards licenses whose validity depends on the
    // date. A perpetual license does not: a clock once set a year ahead (a
    // wrong BIOS date) and then corrected must not lock it out.
    let depends_on_date =
        lic.kind != LicenseKind::Perpetual || lic.expires_at.is_some() || lic.revalidate_by.is_some();
    if depends_on_date {
        clock_not_set_back(ctx.watermark, ctx.now)?;
    }
    if lic.issued_at > ctx.now.saturating_add(CLOCK_TOLERANCE) {
        return Err(Denial::IssuedInFuture {
            now: ctx.now,
            issued_at: lic.issued_at,
        });
    }
    if ctx.now < lic.not_before {
        return Err(Denial::NotYetValid {
            not_before: lic.not_before,
        });
    }
    if let Some(expired_at) = lic.expires_at
        && ctx.now >= expired_at
    {
        return Err(Denial::Expired { expired_at });
    }
    if let Some(due) = lic.revalidate_by.filter(|due| ctx.now >= *due) {
        return Err(Denial::RevalidationDue {
            license_id: lic.id.clone(),
            product: lic.product.clone(),
            due,
        });
    }
    if let (Some(until), Some(build_date)) = (lic.maintenance_until, ctx.build_date)
        && build_date >= until
    {
        return Err(Denial::MaintenanceEnded { until, build_date });
    }
    let mut warnings: Vec<String> = report.warning.into_iter().collect();
    let refreshable = lic.install_key.is_some();
    let left = |end: Timestamp| clock::days_left(ctx.now, end);
    if let Some(end) = lic.expires_at.filter(|e| left(*e) <= ctx.warn_days) {
        let next = if refreshable {
            format!(
                "renew it with the vendor, then run `nodelock refresh {}`",
                lic.product
            )
        } else {
            "renew it with the vendor and install the license you get".to_owned()
        };
        warnings.push(format!(
            "license {} for {} ends {} ({} days left); {next}",
            lic.id,
            lic.product,
            clock::format_end(end),
            left(end)
        ));
    }
    if let Some(end) = lic
        .maintenance_until
        .filter(|e| (0..=ctx.warn_days).contains(&left(*e)))
    {
        warnings.push(format!(
            "maintenance of {} ends {} ({} days left): builds released after it are not covered; renew maintenance with the vendor",
            lic.product,
            clock::format_end(end),
            left(end)
        ));
    }
    if let Some(due) = lic.revalidate_by.filter(|d| left(*d) <= REVALIDATION_WARN_DAYS) {
        warnings.push(format!(
            "license {} must be refreshed by {}: run `nodelock refresh {}` while the vendor can be reached",
            lic.id,
            clock::format(due),
            lic.product
        ));
    }
    Ok(Grant {
        license_id: lic.id.clone(),
        product: lic.product.clone(),
        kind: lic.kind,
        features: lic.features.clone(),
        customer: lic.customer.clone(),
        expires_at: lic.expires_at.map(clock::format),
        days_left: lic.expires_at.map(|e| clock::days_left(ctx.now, e)),
        maintenance_until: lic.maintenance_until.map(clock::format),
        revalidate_by: lic.revalidate_by.map(clock::format),
        warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::clock::DAY;
    use crate::documents::license::{Terms, issue, verify};
    use crate::format::{Keyring, PrivateKey};
    use crate::machine::facts::{Facts, Interface};

    const NOW: Timestamp = 1_800_000_000;

    fn fp(mid: &str, mac: &str) -> Fingerprint {
        let mut f = Facts::empty();
        f.machine_id = Some(mid.into());
        f.network = Some(vec![Interface {
            name: Some("eth0".into()),
            mac: Some(mac.into()),
            physical: Some(true),
        }]);
        Fingerprint::from_facts(&f).unwrap()
    }

    fn terms() -> Terms {
        Terms {
            features: vec!["gnss".into()],
            customer: Some("ACME".into()),
            expires_at: Some(NOW + 10 * DAY),
            maintenance_until: Some(NOW + 5 * DAY),
            not_before: Some(NOW + DAY / 2),
            ..Terms::new("surveyor", LicenseKind::Subscription)
        }
    }

    fn issued(machine: &Fingerprint) -> VerifiedLicense {
        let key = PrivateKey::generate().unwrap();
        let (_, text) = issue(&terms(), machine, None, NOW, &key, &crate::base::random::OsRandom).unwrap();
        verify(text.as_bytes(), &[key.public()].into_iter().collect::<Keyring>()).unwrap()
    }

    fn ctx<'a>(current: &'a Fingerprint) -> CheckContext<'a> {
        CheckContext {
            product: Some("surveyor"),
            current,
            now: NOW + DAY,
            build_date: None,
            watermark: None,
            revoked: &[],
            warn_days: DEFAULT_WARN_DAYS,
        }
    }

    #[test]
    fn a_license_is_refused_from_its_revalidation_instant_on() {
        let here = fp("7f3a9c0e5b", "3c:52:82:aa:bb:cc");
        let key = PrivateKey::generate().unwrap();
        let install = PrivateKey::generate().unwrap().public();
        let terms = Terms {
            revalidate_days: Some(3),
            ..terms()
        };
        let requester = crate::documents::license::Requester {
            install_key: &install,
            nonce: &[7; 16],
        };
        let (_, text) = issue(
            &terms,
            &here,
            Some(requester),
            NOW,
            &key,
            &crate::base::random::OsRandom,
        )
        .unwrap();
        let lic = verify(text.as_bytes(), &[key.public()].into_iter().collect::<Keyring>()).unwrap();
        let due = NOW + 3 * DAY;
        let at = |now| check(&lic, &CheckContext { now, ..ctx(&here) });
        // A week before, the grant says so, with the command; the license was
        // activated by request, so renewing is a refresh too.
        let warning = at(due - 1).unwrap().warning.unwrap();
        assert!(warning.contains("must be refreshed by"), "{warning}");
        assert!(warning.contains("run `nodelock refresh surveyor`"), "{warning}");
        assert!(
            warning.contains("renew it with the vendor, then run `nodelock refresh surveyor`"),
            "{warning}"
        );
        assert_eq!(
            check(
                &lic,
                &CheckContext {
                    now: due - 1,
                    warn_days: 0,
                    ..ctx(&here)
                }
            )
            .unwrap()
            .warning
            .map(|w| w.contains("ends")),
            Some(false)
        );
        let denial = at(due).unwrap_err();
        assert_eq!(denial.code(), "revalidation-due");
        assert!(
            denial
                .to_string()
                .contains("`nodelock refresh surveyor -o refresh.req`")
        );
        // Expiry is the more fundamental reason and is reported first.
        assert_eq!(at(NOW + 10 * DAY).unwrap_err().code(), "expired");
    }

    #[test]
    fn grant_reports_days_left() {
        let here = fp("7f3a9c0e5b", "3c:52:82:aa:bb:cc");
        let grant = check(&issued(&here), &ctx(&here)).unwrap();
        assert_eq!(grant.days_left, Some(9));
        assert_eq!(grant.features, vec!["gnss"]);
    }

    #[test]
    fn each_denial_is_reported_alone() {
        let here = fp("7f3a9c0e5b", "3c:52:82:aa:bb:cc");
        let lic = issued(&here);
        let c = ctx(&here);
        let code = |c: CheckContext<'_>| check(&lic, &c).unwrap_err().code();
        assert_eq!(
            code(CheckContext {
                product: Some("other"),
                ..c
            }),
            "wrong-product"
        );
        let there = fp("81be44d2c9", "3c:52:82:aa:bb:dd");
        assert_eq!(code(CheckContext { current: &there, ..c }), "other-machine");
        let revoked = [lic.license().id.clone()];
        assert_eq!(
            code(CheckContext {
                revoked: &revoked,
                ..c
            }),
            "revoked"
        );
        assert_eq!(
            code(CheckContext {
                watermark: Some(NOW + 3 * DAY),
                ..c
            }),
            "clock-set-back"
        );
        assert_eq!(
            code(CheckContext {
                now: NOW + DAY / 4,
                ..c
            }),
            "not-yet-valid"
        );
        // A clock more than the tolerance behind the issue time: the clock's
        // fault, not the license's. The tolerance itself is still accepted.
        assert_eq!(
            code(CheckContext {
                now: NOW - CLOCK_TOLERANCE,
                ..c
            }),
            "not-yet-valid"
        );
        assert_eq!(
            code(CheckContext {
                now: NOW - CLOCK_TOLERANCE - 1,
                ..c
            }),
            "clock-set-back"
        );
        assert_eq!(
            code(CheckContext {
                now: NOW - 2 * DAY,
                ..c
            }),
            "clock-set-back"
        );
        assert_eq!(
            code(CheckContext {
                now: NOW + 10 * DAY,
                ..c
            }),
            "expired"
        );
        assert_eq!(
            code(CheckContext {
                build_date: Some(NOW + 6 * DAY),
                ..c
            }),
            "maintenance-ended"
        );
        assert!(
            check(
                &lic,
                &CheckContext {
                    build_date: Some(NOW + 4 * DAY),
                    ..c
                }
            )
            .is_ok()
        );
        assert!(
            check(
                &lic,
                &CheckContext {
                    watermark: Some(NOW + DAY + CLOCK_TOLERANCE - 1),
                    ..c
                }
            )
            .is_ok()
        );
    }

    /// Every date rule at its exact boundary: the last instant it holds and
    /// the first it does not.
    #[test]
    fn each_date_rule_holds_to_its_boundary_and_not_a_second_past() {
        let here = fp("7f3a9c0e5b", "3c:52:82:aa:bb:cc");
        let lic = issued(&here);
        let c = ctx(&here);
        let verdict = |c: CheckContext<'_>| check(&lic, &c).map(|_| "granted").unwrap_or_else(|d| d.code());
        let not_before = NOW + DAY / 2;
        let expires = NOW + 10 * DAY;
        let until = NOW + 5 * DAY;
        assert_eq!(verdict(CheckContext { now: not_before, ..c }), "granted");
        assert_eq!(
            verdict(CheckContext {
                now: not_before - 1,
                ..c
            }),
            "not-yet-valid"
        );
        assert_eq!(
            verdict(CheckContext {
                now: expires - 1,
                ..c
            }),
            "granted"
        );
        assert_eq!(verdict(CheckContext { now: expires, ..c }), "expired");
        assert_eq!(
            verdict(CheckContext {
                build_date: Some(until - 1),
                ..c
            }),
            "granted"
        );
        assert_eq!(
            verdict(CheckContext {
                build_date: Some(until),
                ..c
            }),
            "maintenance-ended"
        );
        let watermark = c.now + CLOCK_TOLERANCE;
        assert_eq!(
            verdict(CheckContext {
                watermark: Some(watermark),
                ..c
            }),
            "granted"
        );
        assert_eq!(
            verdict(CheckContext {
                watermark: Some(watermark + 1),
                ..c
            }),
            "clock-set-back"
        );
        // Issued-in-the-future: the issue time may be at most the tolerance ahead.
        assert_eq!(
            verdict(CheckContext {
                now: NOW - CLOCK_TOLERANCE,
                ..c
            }),
            "not-yet-valid"
        );
        assert_eq!(
            verdict(CheckContext {
                now: NOW - CLOCK_TOLERANCE - 1,
                ..c
            }),
            "clock-set-back"
        );
    }

    /// Each denial names its own reason: the sentences differ and say what to do.
    #[test]
    fn each_denial_says_its_own_sentence() {
        let here = fp("7f3a9c0e5b", "3c:52:82:aa:bb:cc");
        let lic = issued(&here);
        let c = ctx(&here);
        let sentence = |c: CheckContext<'_>| check(&lic, &c).unwrap_err().to_string();
        let revoked = [lic.license().id.clone()];
        let cases = [
            (
                sentence(CheckContext {
                    product: Some("designer"),
                    ..c
                }),
                "not 'designer'",
            ),
            (
                sentence(CheckContext {
                    revoked: &revoked,
                    ..c
                }),
                "revoked by the vendor",
            ),
            (
                sentence(CheckContext {
                    watermark: Some(NOW + 3 * DAY),
                    ..c
                }),
                "already seen",
            ),
            (
                sentence(CheckContext {
                    now: NOW - 2 * DAY,
                    ..c
                }),
                "more than a day after",
            ),
            (
                sentence(CheckContext {
                    now: NOW + DAY / 4,
                    ..c
                }),
                "valid from",
            ),
            (
                sentence(CheckContext {
                    now: NOW + 10 * DAY,
                    ..c
                }),
                "expired",
            ),
            (
                sentence(CheckContext {
                    build_date: Some(NOW + 6 * DAY),
                    ..c
                }),
                "maintenance ended",
            ),
        ];
        for (text, says) in cases {
            assert!(text.contains(says), "{text:?} should say {says:?}");
        }
    }

    #[test]
    fn other_machine_names_changed_components_without_values() {
        let here = fp("7f3a9c0e5b", "3c:52:82:aa:bb:cc");
        let there = fp("81be44d2c9", "3c:52:82:aa:bb:dd");
        let msg = check(
            &issued(&here),
            &CheckContext {
                current: &there,
                ..ctx(&here)
            },
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("machine_id, mac"), "{msg}");
        assert!(!msg.contains("3c:52"), "{msg}");
    }
}
