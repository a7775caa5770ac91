//! The floating license server a customer runs on its own network
//! (`nodelock pool serve`): it serves the pool licenses installed in a
//! store, leases their seats to clients, lends seats for offline use, and
//! keeps the seat count, the leases and a usage log in one SQLite file.
//!
//! `rules.rs` decides who gets a seat, `local.rs` judges on the caller's
//! thread, `db.rs` keeps the state,
//! `writer.rs` commits a server's changes in batches, `http.rs` is the HTTP
//! face (API, status page, admin), `policy.rs` the admin's rules on who may
//! take a seat, `report.rs` the usage report.

pub mod db;
pub mod http;
pub mod local;
pub mod policy;
pub mod report;
pub mod rules;
pub mod writer;

pub use db::{LeaseRow, PoolDb};
pub use local::Pool;
pub use rules::{
    Change, Granted, Lender, Outcome, POOL_CLOCK_TOLERANCE, ProductStatus, Served, Status, Updated,
};

use crate::base::clock::{self, Timestamp};
use crate::base::codes::Exit;
use crate::documents::activation::ActivationError;

/// Why a pool operation was refused or failed.
#[allow(
    missing_docs,
    reason = "variant fields are named for what they hold; the #[error] text says what they mean"
)]
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The pool database failed.
    #[error("the pool database failed: {0}")]
    Database(#[from] rusqlite::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// Made by a newer nodelock.
    #[error("the pool database was made by a newer nodelock; update nodelock")]
    NewerSchema,
    /// Something stored does not read back.
    #[error("the pool database is damaged: {0}")]
    Damaged(String),
    /// A document was refused.
    #[error(transparent)]
    Document(#[from] ActivationError),
    /// The change could not be recorded (the writer stopped or a commit failed).
    #[error("the license server could not record this: {0}; try again")]
    Unavailable(String),
    /// Randomness failed.
    #[error(transparent)]
    Key(#[from] crate::format::KeyError),
    /// No pool license for the product is served here.
    #[error("this license server serves no pool for '{0}'")]
    NotServed(String),
    /// The pool license ended.
    #[error("the pool license for '{0}' has expired; the pool's owner must renew it with the vendor")]
    PoolExpired(String),
    /// Every seat is held.
    #[error("all {seats} seat(s) of {product} are in use ({}){}", if holders.is_empty() { "the pool's admin does not show by whom".to_owned() } else { holders.join(", ") }, next_free.map(|t| format!("; a borrowed seat comes back {}", clock::format(t))).unwrap_or_default())]
    AllSeatsInUse {
        product: String,
        seats: u32,
        holders: Vec<String>,
        next_free: Option<Timestamp>,
    },
    /// The admin's policy file refuses this client (the rule is named).
    #[error("the license server's policy refuses this seat: {0}")]
    PolicyDenied(String),
    /// A borrow beyond the pool's policy.
    #[error("the borrow was refused: {0}")]
    BorrowRefused(String),
    /// No such lease.
    #[error("no lease {0} is known to this license server")]
    UnknownLease(String),
    /// Signed by a key other than the lease's holder key.
    #[error("the request for lease {0} was not signed by the key that holds it")]
    WrongHolder(String),
    /// The lease ended (lapsed, checked in, returned or removed).
    #[error("lease {id} has ended ({how}); take a new seat")]
    LeaseEnded { id: String, how: String },
    /// An update answered before.
    #[error("this update of lease {0} was answered before")]
    Replayed(String),
    /// This server's clock is behind a time it already granted at.
    #[error("the license server's clock ({}) is behind a time it already granted leases at ({}); it grants no seat until the clock is set right", clock::format(*.now), clock::format(*.watermark))]
    ClockBehind { now: Timestamp, watermark: Timestamp },
}

impl PoolError {
    /// The stable code of the HTTP API (docs/API.md, pool server) and the
    /// HTTP status it comes with.
    pub fn code(&self) -> (&'static str, u16) {
        match self {
            PoolError::Database(_)
            | PoolError::Io { .. }
            | PoolError::NewerSchema
            | PoolError::Damaged(_) => ("unavailable", 503),
            PoolError::Key(_) | PoolError::Unavailable(_) => ("unavailable", 503),
            PoolError::Document(ActivationError::Envelope(crate::format::EnvelopeError::WrongKind {
                ..
            })) => ("wrong-kind", 415),
            PoolError::Document(ActivationError::Envelope(crate::format::EnvelopeError::TooLarge {
                ..
            })) => ("too-large", 413),
            PoolError::Document(_) => ("bad-document", 400),
            PoolError::NotServed(_) => ("not-served", 404),
            PoolError::PoolExpired(_) => ("pool-expired", 403),
            PoolError::AllSeatsInUse { .. } => ("all-seats-in-use", 409),
            PoolError::BorrowRefused(_) => ("borrow-refused", 403),
            PoolError::PolicyDenied(_) => ("policy-denied", 403),
            PoolError::UnknownLease(_) => ("unknown-lease", 404),
            PoolError::WrongHolder(_) => ("wrong-holder-key", 403),
            PoolError::LeaseEnded { .. } => ("lease-ended", 409),
            PoolError::Replayed(_) => ("replayed", 409),
            PoolError::ClockBehind { .. } => ("pool-clock-set-back", 503),
        }
    }

    /// How a command ends on it.
    pub fn exit(&self) -> Exit {
        match self {
            PoolError::Database(_)
            | PoolError::Io { .. }
            | PoolError::NewerSchema
            | PoolError::Damaged(_) => Exit::Io,
            PoolError::Key(_) | PoolError::Unavailable(_) => Exit::Io,
            PoolError::Document(_) => Exit::BadInput,
            PoolError::NotServed(_) => Exit::NotFound,
            PoolError::PoolExpired(_) => Exit::Expired,
            PoolError::AllSeatsInUse { .. } => Exit::NoFreeSeat,
            PoolError::BorrowRefused(_) => Exit::LimitReached,
            PoolError::PolicyDenied(_) => Exit::PolicyDenied,
            PoolError::UnknownLease(_) => Exit::NotInstalled,
            PoolError::WrongHolder(_) => Exit::WrongInstallKey,
            PoolError::LeaseEnded { .. } => Exit::LeaseLost,
            PoolError::Replayed(_) => Exit::AlreadyEnded,
            PoolError::ClockBehind { .. } => Exit::ClockSetBack,
        }
    }
}
