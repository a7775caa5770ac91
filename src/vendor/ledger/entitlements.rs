//! Changing what an entitlement grants after the sale: renewals (a new end of
//! term or maintenance), seats added or removed, features, suspension. Every
//! change is audited; licenses already issued change at their next refresh,
//! never by themselves.

use super::Ledger;
use super::error::LedgerError;
use super::model::{AuditEntry, AuditEvent, Entitlement};
use crate::base::clock::{self, Timestamp};
use crate::documents::license::LicenseKind;

/// What to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EntitlementUpdate {
    /// A new end of term (a perpetual entitlement given one becomes a subscription).
    pub expires_at: Option<Timestamp>,
    /// A new end of maintenance.
    pub maintenance_until: Option<Timestamp>,
    /// A new seat count; never below the seats in use.
    pub seats: Option<u32>,
    /// A new feature list.
    pub features: Option<Vec<String>>,
    /// Suspend (`true`) or resume (`false`).
    pub suspended: Option<bool>,
}

impl Ledger {
    /// Applies `update` to entitlement `id` in one transaction, audited with
    /// what changed; returns the entitlement as it now is.
    pub fn update_entitlement(
        &mut self,
        id: &str,
        update: &EntitlementUpdate,
        now: Timestamp,
        actor: &str,
    ) -> Result<Entitlement, LedgerError> {
        let mut tx = self.backend.begin()?;
        let mut ent = tx
            .reads()
            .entitlement(id)?
            .ok_or_else(|| LedgerError::UnknownEntitlement(id.to_owned()))?;
        let mut changes = Vec::new();
        let day = |t: Option<Timestamp>| t.map_or_else(|| "none".to_owned(), clock::format_end);
        if let Some(end) = update.expires_at {
            changes.push(format!(
                "term end {} -> {}",
                day(ent.spec.expires_at),
                day(Some(end))
            ));
            ent.spec.expires_at = Some(end);
            if ent.spec.kind == LicenseKind::Perpetual {
                ent.spec.kind = LicenseKind::Subscription;
            }
        }
        if let Some(end) = update.maintenance_until {
            changes.push(format!(
                "maintenance end {} -> {}",
                day(ent.spec.maintenance_until),
                day(Some(end))
            ));
            ent.spec.maintenance_until = Some(end);
        }
        if let Some(seats) = update.seats {
            if seats < ent.seats_used {
                return Err(LedgerError::BadSpec(format!(
                    "{seats} seat(s) is fewer than the {} in use; deactivate or reset activations first",
                    ent.seats_used
                )));
            }
            changes.push(format!("seats {} -> {seats}", ent.spec.seats));
            ent.spec.seats = seats;
        }
        if let Some(features) = &update.features {
            changes.push(format!(
                "features [{}] -> [{}]",
                ent.spec.features.join(", "),
                features.join(", ")
            ));
            ent.spec.features = features.clone();
        }
        if let Some(suspended) = update.suspended {
            changes.push(if suspended { "suspended" } else { "resumed" }.to_owned());
            ent.suspended = suspended;
        }
        if changes.is_empty() {
            return Err(LedgerError::BadSpec(
                "nothing to change: give --expires, --maintenance-until, --seats, --features, --suspend or --resume"
                    .into(),
            ));
        }
        ent.spec.check()?;
        tx.update_entitlement(id, &ent.spec, ent.suspended)?;
        tx.append_audit(&AuditEntry {
            at: now,
            event: AuditEvent::EntitlementUpdated,
            entitlement_id: Some(id),
            activation_id: None,
            actor,
            detail: &changes.join("; "),
        })?;
        tx.commit()?;
        Ok(ent)
    }
}
