//! nodelock binds software licenses to workstations and checks them offline.
//!
//! Modules follow trust boundaries, and dependencies point down only:
//!
//! ```text
//! store        workstation side: installed licenses, trust roots, clock watermark
//! license      the license document, its policy, and check → Grant | Denial
//! fingerprint  facts → normalised components → digests → workstation id; matching
//! facts        SystemSource: this machine, or a facts snapshot (the only OS reader)
//! crypto       keys, keyrings and the signed, typed, armored envelope
//! codec        the one module that speaks CBOR
//! ```
//!
//! An application checks its license at start-up with [`Checker`]; see
//! `examples/app_startup.rs`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod activation;
pub mod checker;
pub mod client;
pub mod clock;
pub mod codec;
pub mod crypto;
pub mod facts;
pub mod fingerprint;
pub mod ledger;
pub mod license;
pub mod server;
pub mod store;
pub mod typeable;

pub use checker::{CheckError, Checker};
