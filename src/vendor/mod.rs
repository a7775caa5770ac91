//! The vendor side: the ledger of entitlements and activations, and the online
//! activation server over it. Only with the `vendor` (ledger) and `server`
//! (HTTP) features; an application that checks licenses needs neither.

pub mod ledger;
#[cfg(feature = "server")]
pub mod server;
