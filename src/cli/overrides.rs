//! Where the CLI gets machine facts and time.
//!
//! Tests play several machines and clocks through two environment variables,
//! `NODELOCK_TEST_FACTS` (a facts snapshot file) and `NODELOCK_TEST_NOW` (a date
//! or RFC 3339 instant). They are compiled only into debug builds (what
//! `cargo test` runs) or with the `insecure-test-overrides` feature; a release
//! build has no code that reads them (docs/CONTRIBUTING.md).

use nodelock::base::clock::Timestamp;
use nodelock::machine::facts::Facts;

use super::exit::CliError;

#[cfg(any(debug_assertions, feature = "insecure-test-overrides"))]
fn test_facts() -> Option<std::path::PathBuf> {
    std::env::var_os("NODELOCK_TEST_FACTS").map(Into::into)
}

#[cfg(not(any(debug_assertions, feature = "insecure-test-overrides")))]
fn test_facts() -> Option<std::path::PathBuf> {
    None
}

#[cfg(any(debug_assertions, feature = "insecure-test-overrides"))]
fn test_now() -> Option<String> {
    std::env::var("NODELOCK_TEST_NOW").ok()
}

#[cfg(not(any(debug_assertions, feature = "insecure-test-overrides")))]
fn test_now() -> Option<String> {
    None
}

/// This machine's facts (or, in test builds, the snapshot a test names).
pub fn current_facts() -> Result<Facts, CliError> {
    use nodelock::machine::facts::{RealSystem, SystemSource};
    match test_facts() {
        Some(path) => Ok(Facts::load(&path)?),
        None => Ok(RealSystem.facts()?),
    }
}

/// The time now (or, in test builds, the time a test names).
pub fn now() -> Result<Timestamp, CliError> {
    use nodelock::base::clock::{Clock, SystemClock, parse_start};
    match test_now() {
        Some(text) => parse_start(&text).map_err(|e| CliError::new(super::exit::Exit::Usage, e.to_string())),
        None => Ok(SystemClock.now()),
    }
}

/// The clock a server runs on: the system clock, or in test builds the
/// fixed time a test names (so server tests need no real clock).
pub fn clock() -> Result<std::sync::Arc<dyn nodelock::base::clock::Clock + Send + Sync>, CliError> {
    use nodelock::base::clock::{FixedClock, SystemClock};
    Ok(match test_now() {
        Some(_) => std::sync::Arc::new(FixedClock(now()?)),
        None => std::sync::Arc::new(SystemClock),
    })
}
