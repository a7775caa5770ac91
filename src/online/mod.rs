//! The workstation's online side: the HTTP(S) client of the activation
//! server. Only with the `online` feature.

pub mod client;
pub mod pool;
