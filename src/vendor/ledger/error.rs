//! Why a ledger operation failed or was refused, and what the storage under
//! it can report.

use super::model::ActivationState;
use crate::base::clock::{self, Timestamp};
use crate::documents::activation::ActivationError;
use crate::documents::license::LicenseError;
use crate::format::KeyError;

/// A failure of the storage backend (the database), or a stored value this
/// nodelock cannot read. Backends turn their own errors into this, so that
/// the activation rules never see a database type.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database failed (I/O, locking, a constraint).
    #[error("ledger database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored value is not one this nodelock writes.
    #[error(
        "the ledger holds {what} '{value}', which this nodelock does not know; it was written by a newer nodelock or edited by hand"
    )]
    Unreadable {
        /// Which column or field.
        what: &'static str,
        /// The value found (ledger data the vendor wrote, never a secret).
        value: String,
    },
}

/// Why a ledger operation failed or was refused.
#[allow(
    missing_docs,
    reason = "variant fields are named for what they hold; the #[error] text says what they mean"
)]
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The storage under the ledger failed, or holds what this nodelock cannot read.
    #[error(transparent)]
    Database(#[from] StorageError),
    /// Creating the ledger's directory failed.
    #[error("cannot create the ledger directory {path}: {source}")]
    Io {
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Written by a newer nodelock.
    #[error(
        "the ledger has schema version {found}, newer than this nodelock knows ({known}); update nodelock"
    )]
    NewerSchema {
        /// The ledger file's schema version.
        found: i64,
        /// The newest version this build can migrate to.
        known: usize,
    },
    /// The document was refused before the ledger was consulted.
    #[error(transparent)]
    Document(#[from] ActivationError),
    /// No entitlement has this key.
    #[error("no entitlement has this activation key; check the key, or ask the vendor whether it was issued")]
    UnknownKey,
    /// The entitlement's term is over.
    #[error("the entitlement for this key expired ({}); renew it before activating", clock::format_end(*.expired_at))]
    EntitlementExpired { expired_at: Timestamp },
    /// All seats are taken.
    #[error(
        "all {seats} seat(s) of this entitlement are in use; deactivate a machine first (nodelock deactivate) or buy more seats"
    )]
    NoFreeSeat {
        /// The entitlement's seat count, all of them taken.
        seats: u32,
    },
    /// The entitlement requires hardware identity and the machine has none.
    #[error(
        "this entitlement requires a hardware identifier, and the requesting machine has only its OS installation id, which clones share; activate on a machine with SMBIOS data or a disk serial, or ask the vendor for a floating license"
    )]
    HardwareIdRequired,
    /// A refresh from a machine that no longer matches the license's binding.
    #[error(
        "the refreshing machine does not match the license's binding ({0}); the license cannot be refreshed there: deactivate it and activate this machine"
    )]
    NotThisMachine(String),
    /// The transfer limit is used up.
    #[error("this entitlement has used its {max} transfer(s); contact the vendor to allow more")]
    TransferLimit { max: u32 },
    /// The reset limit is used up.
    #[error(
        "this entitlement has had {used} support reset(s) in the last 365 days (limit {max}); pass --force to override, with a reason"
    )]
    ResetLimit {
        /// Resets in the window.
        used: u32,
        max: u32,
    },
    /// The same install key and nonce with different content.
    #[error(
        "this request reuses the nonce of an earlier, different request; make a new request with `nodelock request`"
    )]
    NonceReuse,
    /// No activation with this id.
    #[error("no activation '{0}' in the ledger (see `nodelock vendor report`)")]
    UnknownActivation(String),
    /// No entitlement with this id.
    #[error("no entitlement '{0}' in the ledger (see `nodelock vendor entitlement list`)")]
    UnknownEntitlement(String),
    /// The vendor suspended the entitlement.
    #[error(
        "entitlement {0} is suspended by the vendor: it grants no activation or refresh until it is resumed; contact the vendor"
    )]
    Suspended(String),
    /// No activation issued this license.
    #[error("no activation in this ledger issued license '{0}'")]
    UnknownLicense(String),
    /// A deactivation or refresh signed by a key other than the license's install key.
    #[error("the request is not signed by the install key license '{0}' was activated with; refused")]
    WrongInstallKey(String),
    /// Already ended by a deactivation or a reset.
    #[error("activation {id} was already ended ({how}); it frees no seat and gets no license")]
    AlreadyEnded { id: String, how: ActivationState },
    /// An answered request came again after its activation ended.
    #[error(
        "this request was answered before and activation {id} has since been {how}; make a new request with `nodelock request` (it takes a seat if one is free)"
    )]
    RequestSpent { id: String, how: ActivationState },
    /// Issuing the license failed.
    #[error(transparent)]
    License(#[from] LicenseError),
    /// Randomness failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An entitlement spec with a count out of range.
    #[error("the entitlement cannot be created: {0}")]
    BadSpec(String),
    /// The ledger cannot be reached (a server's writer stopped, a batch failed).
    #[error("the ledger is unavailable: {0}")]
    Unavailable(String),
}

impl LedgerError {
    /// A stable code for scripts and the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::Database(_) | LedgerError::Io { .. } | LedgerError::Key(_) => "ledger",
            LedgerError::Unavailable(_) => "unavailable",
            LedgerError::BadSpec(_) => "usage",
            LedgerError::NewerSchema { .. } => "ledger-version",
            LedgerError::Document(_) | LedgerError::License(_) => "bad-document",
            LedgerError::UnknownKey => "unknown-key",
            LedgerError::EntitlementExpired { .. } => "entitlement-expired",
            LedgerError::NoFreeSeat { .. } => "no-free-seat",
            LedgerError::HardwareIdRequired => "hardware-id-required",
            LedgerError::NotThisMachine(_) => "other-machine",
            LedgerError::TransferLimit { .. } => "transfer-limit",
            LedgerError::ResetLimit { .. } => "reset-limit",
            LedgerError::NonceReuse => "nonce-reuse",
            LedgerError::UnknownActivation(_) => "unknown-activation",
            LedgerError::UnknownEntitlement(_) => "unknown-entitlement",
            LedgerError::Suspended(_) => "entitlement-suspended",
            LedgerError::UnknownLicense(_) => "unknown-license",
            LedgerError::WrongInstallKey(_) => "wrong-install-key",
            LedgerError::AlreadyEnded { .. } | LedgerError::RequestSpent { .. } => "already-ended",
        }
    }
}
