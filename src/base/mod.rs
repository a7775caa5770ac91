//! The bottom layer: time, files and printable text. Nothing here knows what a license is.

pub mod clock;
pub mod fsio;
pub mod text;
