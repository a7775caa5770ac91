//! What the ledger records, as types: entitlements, activations and their
//! states, audit events. Stored values are read back through `FromStr`
//! impls that refuse what they do not know, so an unknown kind or state is an
//! error and never quietly becomes a default.

use serde::Serialize;

use super::error::StorageError;
use crate::base::clock::{self, Timestamp};
use crate::documents::license::LicenseKind;
use crate::machine::fingerprint::MatchPolicy;

/// An enum stored and printed as a fixed set of kebab-case names.
macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The name as stored and printed.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = StorageError;

            fn from_str(s: &str) -> Result<$name, StorageError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StorageError::Unreadable { what: $what, value: other.to_owned() }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// How an activation reached the ledger.
    Method, "activation method" {
        /// A request file carried to `vendor answer` (or mailed to support).
        Offline => "offline",
        /// A request posted to the activation server or its portal.
        Online => "online",
    }
);

named_enum!(
    /// Where an activation stands.
    ActivationState, "activation state" {
        /// Holds a seat.
        Active => "active",
        /// Given back with a signed deactivation request; counted as a transfer.
        Deactivated => "deactivated",
        /// Freed by support without proof (the machine died).
        Reset => "reset",
    }
);

named_enum!(
    /// What an audit row records.
    AuditEvent, "audit event" {
        /// An entitlement was sold.
        EntitlementCreated => "entitlement-created",
        /// A seat was taken and a license issued.
        Activated => "activated",
        /// An answered request came again; the same license, no seat.
        ActivationReplayed => "activation-replayed",
        /// A new request from a machine that already held a seat: its license
        /// re-issued to the request's install key, no second seat.
        Reactivated => "reactivated",
        /// A seat was given back.
        Deactivated => "deactivated",
        /// An answered deactivation came again; nothing freed.
        DeactivationReplayed => "deactivation-replayed",
        /// Support freed a seat.
        Reset => "reset",
        /// The vendor changed what an entitlement grants (renewal, seats, suspension).
        EntitlementUpdated => "entitlement-updated",
        /// An active activation's license was issued again with the current terms.
        Refreshed => "refreshed",
        /// A request was refused; nothing else changed.
        Refused => "refused",
    }
);

/// What the vendor sets when selling an entitlement.
#[derive(Debug, Clone)]
pub struct EntitlementSpec {
    /// The product the licenses name.
    pub product: String,
    /// Machines that may hold it at once.
    pub seats: u32,
    /// Perpetual, subscription or trial.
    pub kind: LicenseKind,
    /// End of the subscription or trial.
    pub expires_at: Option<Timestamp>,
    /// End of maintenance: builds released after it are not covered.
    pub maintenance_until: Option<Timestamp>,
    /// Feature names the licenses carry.
    pub features: Vec<String>,
    /// The customer; reset licenses are revoked across all of its entitlements.
    pub customer: Option<String>,
    /// Transfers allowed over the entitlement's life.
    pub max_transfers: u32,
    /// Support resets allowed per rolling year.
    pub max_resets_per_year: u32,
    /// Refuse machines whose only identifier is one clones share (a VM
    /// without SMBIOS data): their licenses would hold on every clone.
    pub require_hardware_id: bool,
    /// The match policy its licenses carry.
    pub match_policy: MatchPolicy,
    /// Its licenses must be refreshed this many days after issue (`None`:
    /// never), so that one whose seat ended stops working everywhere.
    pub revalidate_days: Option<u32>,
    /// A floating pool's lease and borrow policy (kind `floating-pool`):
    /// then `seats` is the pool's size, and one pool server holds it.
    pub pool: Option<crate::documents::license::PoolTerms>,
}

impl EntitlementSpec {
    /// Refuses counts outside `1..=MAX_COUNT` seats and `0..=MAX_COUNT` limits.
    pub fn check(&self) -> Result<(), super::LedgerError> {
        let bad = |what: &str, n: u32| {
            super::LedgerError::BadSpec(format!(
                "{what} {n} is out of range (at most {})",
                super::MAX_COUNT
            ))
        };
        if self.seats == 0 || self.seats > super::MAX_COUNT {
            return Err(super::LedgerError::BadSpec(format!(
                "{} seat(s) is out of range (1 to {})",
                self.seats,
                super::MAX_COUNT
            )));
        }
        if self.max_transfers > super::MAX_COUNT {
            return Err(bad("a transfer limit of", self.max_transfers));
        }
        if self.max_resets_per_year > super::MAX_COUNT {
            return Err(bad("a reset limit of", self.max_resets_per_year));
        }
        if (self.kind == LicenseKind::FloatingPool) != self.pool.is_some() {
            return Err(super::LedgerError::BadSpec(
                "a floating entitlement, and only one, has a lease and borrow policy".into(),
            ));
        }
        if let Some(pool) = self.pool
            && (pool.lease_minutes == 0
                || pool.lease_minutes > 10_080
                || pool.borrow_days > 365
                || pool.borrow_seats > self.seats)
        {
            return Err(super::LedgerError::BadSpec(format!(
                "the pool policy is out of range: a lease of 1 to 10080 minutes, borrows of at most 365 days and at most {} seat(s)",
                self.seats
            )));
        }
        if let Some(days) = self.revalidate_days
            && !(1..=36_500).contains(&days)
        {
            return Err(super::LedgerError::BadSpec(format!(
                "a revalidation period of {days} day(s) is out of range (1 to 36500)"
            )));
        }
        Ok(())
    }

    /// `seats` perpetual seats of `product` with the default transfer and
    /// reset limits and nothing else; set the rest with struct update.
    pub fn new(product: impl Into<String>, seats: u32) -> EntitlementSpec {
        EntitlementSpec {
            product: product.into(),
            seats,
            kind: LicenseKind::Perpetual,
            expires_at: None,
            maintenance_until: None,
            features: Vec::new(),
            customer: None,
            max_transfers: super::DEFAULT_MAX_TRANSFERS,
            max_resets_per_year: super::DEFAULT_MAX_RESETS_PER_YEAR,
            require_hardware_id: false,
            match_policy: MatchPolicy::Standard,
            revalidate_days: None,
            pool: None,
        }
    }

    /// How many machines may hold it at once: its seats, or the one pool
    /// server of a floating entitlement (whose seats it leases out itself).
    pub fn machines(&self) -> u32 {
        if self.kind == LicenseKind::FloatingPool {
            1
        } else {
            self.seats
        }
    }
}

/// An entitlement as stored: what was sold, and the counters kept in step
/// with its activations so that a request costs the same with ten
/// activations or a million.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // the spec's fields, and counters named for what they count
pub struct Entitlement {
    pub id: String,
    pub spec: EntitlementSpec,
    pub created_at: Timestamp,
    pub seats_used: u32,
    pub activations_total: u32,
    pub transfers_used: u32,
    pub resets_total: u32,
    /// Suspended by the vendor: no activation, no refresh until resumed.
    pub suspended: bool,
}

/// An activation as stored (without its license and receipt, which only a
/// replay needs).
#[derive(Debug, Clone)]
#[allow(missing_docs)] // plain columns
pub struct Activation {
    pub id: String,
    pub entitlement_id: String,
    pub license_id: String,
    pub workstation_id: String,
    /// The install key, SEC1 compressed: what a deactivation must be signed by.
    pub install_key: Vec<u8>,
    pub method: Method,
    pub created_at: Timestamp,
    pub state: ActivationState,
    pub ended_at: Option<Timestamp>,
    /// Why support reset it.
    pub reason: Option<String>,
}

/// A request answered before: what the ledger keeps to answer it again.
#[derive(Debug, Clone)]
pub struct EarlierAnswer {
    /// The activation it made.
    pub activation: Activation,
    /// SHA-256 of the request envelope it answered.
    pub request_hash: Vec<u8>,
    /// The license it issued, armored.
    pub license: Vec<u8>,
}

/// A new activation to record; recording it takes a seat.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // plain columns
pub struct NewActivation<'a> {
    pub id: &'a str,
    pub entitlement_id: &'a str,
    pub license_id: &'a str,
    pub workstation_id: &'a str,
    pub install_key: &'a [u8],
    pub request_nonce: &'a [u8],
    pub request_hash: &'a [u8],
    pub license: &'a [u8],
    pub method: Method,
    pub created_at: Timestamp,
    /// The hardware digests the license is bound to (how a later request
    /// from the same machine finds this seat).
    pub anchors: &'a [[u8; 32]],
}

/// Which entitlements a report covers and which audit rows an audit shows:
/// every field left `None` selects everything. The backend filters, so a
/// narrow view of a large ledger reads only what it shows.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only this product's entitlements (and their audit rows).
    pub product: Option<String>,
    /// Only this customer's.
    pub customer: Option<String>,
    /// Only this entitlement.
    pub entitlement: Option<String>,
    /// Audit rows at or after this instant.
    pub since: Option<Timestamp>,
    /// Audit rows before this instant.
    pub until: Option<Timestamp>,
}

/// An active activation moved to a later request from the machine that
/// holds it (activation is idempotent per machine and entitlement).
#[derive(Debug, Clone)]
#[allow(missing_docs)] // plain columns
pub struct MovedActivation<'a> {
    pub activation_id: &'a str,
    pub install_key: &'a [u8],
    pub request_nonce: &'a [u8],
    pub request_hash: &'a [u8],
    pub license: &'a [u8],
    pub at: Timestamp,
}

/// How an active activation ends; ending it frees its seat.
#[derive(Debug, Clone)]
pub enum Ending<'a> {
    /// With a signed deactivation request; counts a transfer.
    Deactivated {
        /// The receipt issued, armored; a replay returns it.
        receipt: &'a [u8],
    },
    /// By support; counts a reset.
    Reset {
        /// Why, as support gave it.
        reason: &'a str,
    },
}

/// One audit row to append.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // the audit's columns
pub struct AuditEntry<'a> {
    pub at: Timestamp,
    pub event: AuditEvent,
    pub entitlement_id: Option<&'a str>,
    pub activation_id: Option<&'a str>,
    pub actor: &'a str,
    pub detail: &'a str,
}

/// One audit row as read back.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    /// Sequence number: the order rows were written in.
    pub seq: i64,
    /// When (RFC 3339 in JSON).
    #[serde(serialize_with = "clock::serialize_rfc3339")]
    pub at: Timestamp,
    /// What happened.
    pub event: AuditEvent,
    /// The entitlement concerned, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entitlement_id: Option<String>,
    /// The activation concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_id: Option<String>,
    /// Who: the operator of a CLI command, or the client address for the server.
    pub actor: String,
    /// What, in a sentence.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_read_back_and_unknown_names_are_errors() {
        for m in [Method::Offline, Method::Online] {
            assert_eq!(m.as_str().parse::<Method>().unwrap(), m);
        }
        for s in [
            ActivationState::Active,
            ActivationState::Deactivated,
            ActivationState::Reset,
        ] {
            assert_eq!(s.as_str().parse::<ActivationState>().unwrap(), s);
        }
        assert_eq!("refused".parse::<AuditEvent>().unwrap(), AuditEvent::Refused);
        assert!("Active".parse::<ActivationState>().is_err());
        assert!("floating".parse::<Method>().is_err());
        assert!("".parse::<AuditEvent>().is_err());
    }
}
