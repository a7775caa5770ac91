//! nodelock binds software licenses to workstations and checks them offline.
//!
//! The folders follow sides and trust boundaries, and dependencies point down
//! only (a module never imports one listed above it):
//!
//! ```text
//! pool         [feature server] the floating license server a customer runs
//! vendor       [feature vendor/server] the ledger and the activation server
//! online       [feature online] the workstation's HTTP client of that server
//! workstation  check policy, the local store, Checker (what an application embeds)
//! documents    licenses, activation/deactivation requests and receipts, leases, signed time
//! machine      facts (the only OS reader) → fingerprint → matching
//! format       CBOR, keys, the signed typed envelope, PEM armor
//! base         time, atomic file writes and capped reads
//! ```
//!
//! The command-line tool (`src/cli`, feature `cli`) sits on top of all of them.
//! An application checks its license at start-up with [`Checker`]; see
//! `examples/app_startup.rs`. It needs none of the features: build with
//! `default-features = false`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod base;
pub mod documents;
pub mod format;
pub mod machine;
#[cfg(feature = "online")]
pub mod online;
#[cfg(feature = "server")]
pub mod pool;
#[cfg(feature = "vendor")]
pub mod vendor;
pub mod workstation;

pub use workstation::{CheckError, Checker};
