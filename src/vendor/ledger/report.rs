//! The vendor's views of the ledger: the compliance report (who holds which
//! seat) and the audit. Both are handed over a row at a time, so a caller
//! that streams them holds one entitlement (or one audit row) in memory.

use serde::Serialize;

use super::Ledger;
use super::error::LedgerError;
use super::model::{Activation, ActivationState, AuditRow, Entitlement, Method, Selection};
use crate::base::clock::{self, DAY, Timestamp};
use crate::documents::license::LicenseKind;

/// One activation as the compliance report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ActivationRow {
    /// Activation id.
    pub id: String,
    /// License id.
    pub license_id: String,
    /// Workstation id.
    pub workstation_id: String,
    /// How it arrived.
    pub method: Method,
    /// When (RFC 3339 in JSON).
    #[serde(serialize_with = "clock::serialize_rfc3339")]
    pub activated_at: Timestamp,
    /// Where it stands.
    pub state: ActivationState,
    /// When it ended.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "clock::serialize_rfc3339_opt"
    )]
    pub ended_at: Option<Timestamp>,
    /// Why support reset it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<Activation> for ActivationRow {
    fn from(a: Activation) -> ActivationRow {
        ActivationRow {
            id: a.id,
            license_id: a.license_id,
            workstation_id: a.workstation_id,
            method: a.method,
            activated_at: a.created_at,
            state: a.state,
            ended_at: a.ended_at,
            reason: a.reason,
        }
    }
}

/// One entitlement's compliance view.
#[derive(Debug, Clone, Serialize)]
pub struct EntitlementReport {
    /// Entitlement id.
    pub id: String,
    /// The product its licenses name.
    pub product: String,
    /// License kind its activations get.
    pub kind: LicenseKind,
    /// The customer it was sold to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// End of term (RFC 3339 in JSON).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "clock::serialize_rfc3339_opt"
    )]
    pub expires_at: Option<Timestamp>,
    /// Seats sold.
    pub seats: u32,
    /// Seats held by active activations.
    pub used: u32,
    /// Seats free.
    pub available: u32,
    /// Transfers used.
    pub transfers_used: u32,
    /// Transfers allowed.
    pub max_transfers: u32,
    /// Resets in the last 365 days.
    pub resets_last_year: u32,
    /// Resets allowed per rolling year.
    pub max_resets_per_year: u32,
    /// Features its licenses carry.
    pub features: Vec<String>,
    /// End of maintenance.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "clock::serialize_rfc3339_opt"
    )]
    pub maintenance_until: Option<Timestamp>,
    /// Suspended by the vendor.
    pub suspended: bool,
    /// Every activation, oldest first.
    pub activations: Vec<ActivationRow>,
}

impl Ledger {
    /// The compliance view, one entitlement at a time, oldest first.
    pub fn each_report(
        &self,
        now: Timestamp,
        selection: &Selection,
        each: &mut dyn FnMut(EntitlementReport) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.backend.each_entitlement(selection, &mut |e: Entitlement| {
            let mut activations = Vec::new();
            self.backend.each_activation(&e.id, &mut |a| {
                activations.push(ActivationRow::from(a));
                Ok(())
            })?;
            let count = |f: &dyn Fn(&ActivationRow) -> bool| {
                u32::try_from(activations.iter().filter(|a| f(a)).count()).unwrap_or(u32::MAX)
            };
            let used = count(&|a| a.state == ActivationState::Active);
            let year_ago = now.saturating_sub(365 * DAY);
            let resets_last_year =
                count(&|a| a.state == ActivationState::Reset && a.ended_at.is_some_and(|t| t > year_ago));
            let report = EntitlementReport {
                id: e.id,
                product: e.spec.product,
                kind: e.spec.kind,
                customer: e.spec.customer,
                expires_at: e.spec.expires_at,
                seats: e.spec.seats,
                used,
                available: e.spec.seats.saturating_sub(used),
                transfers_used: e.transfers_used,
                max_transfers: e.spec.max_transfers,
                resets_last_year,
                max_resets_per_year: e.spec.max_resets_per_year,
                features: e.spec.features,
                maintenance_until: e.spec.maintenance_until,
                suspended: e.suspended,
                activations,
            };
            each(report)
        })
    }

    /// The compliance view of every entitlement, collected.
    pub fn report(&self, now: Timestamp) -> Result<Vec<EntitlementReport>, LedgerError> {
        let mut out = Vec::new();
        self.each_report(now, &Selection::default(), &mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// The audit, oldest first, one row at a time.
    pub fn each_audit_row(
        &self,
        selection: &Selection,
        each: &mut dyn FnMut(AuditRow) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.backend.each_audit_row(selection, each)
    }

    /// The audit, oldest first, collected.
    pub fn audit(&self) -> Result<Vec<AuditRow>, LedgerError> {
        let mut out = Vec::new();
        self.each_audit_row(&Selection::default(), &mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }
}
