//! What a workstation is: the facts read from the OS and the fingerprint made
//! from them, with the rule that decides whether two fingerprints are one machine.
//!
//! Both sides use this layer: the workstation to describe itself, the vendor
//! (and a license check) to compare a binding with what a machine reports now.

pub mod facts;
pub mod fingerprint;
