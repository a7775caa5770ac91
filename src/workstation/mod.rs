//! The workstation side: the check policy, the local store of licenses and
//! pending requests, and [`Checker`], the API an application embeds.

pub mod check;
pub mod checker;
pub mod store;

pub use checker::{CheckError, Checker};
