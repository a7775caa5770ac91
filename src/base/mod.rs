//! The bottom layer: time, files, printable text, and the registry of stable
//! codes. Nothing here depends on another nodelock module.

pub mod clock;
pub mod codes;
pub mod fsio;
pub mod random;
pub mod text;
