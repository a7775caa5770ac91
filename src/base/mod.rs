//! The bottom layer: time and files. Nothing here knows what a license is.

pub mod clock;
pub mod fsio;
