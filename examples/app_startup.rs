//! How an application checks its license at start-up.
//!
//! The vendor's public key is compiled in; the license was installed earlier
//! with `nodelock import` (or `nodelock activate`). Run it after the README
//! walkthrough:
//!
//! ```text
//! cargo run --example app_startup -- surveyor --store /tmp/nodelock-demo/store
//! ```
//!
//! This example compiles in the TEST-ONLY key from `fixtures/keys`; a real
//! application embeds its vendor's `vendor.pub` the same way.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use nodelock::Checker;

const VENDOR_PUBLIC_KEY: &str = include_str!("../fixtures/keys/TEST-ONLY-vendor.pub");
/// The day this build was released: licenses whose maintenance ended before it
/// do not cover it.
const BUILD_DATE: &str = "2026-11-01";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let product = args.next().unwrap_or_else(|| "surveyor".to_owned());
    let store = match (args.next().as_deref(), args.next()) {
        (Some("--store"), Some(dir)) => Some(dir),
        _ => None,
    };

    let checker = match Checker::new(VENDOR_PUBLIC_KEY).and_then(|c| c.build_date(BUILD_DATE)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("internal error: {e}");
            return ExitCode::from(70);
        }
    };
    let checker = match store {
        Some(dir) => checker.store(dir),
        None => checker,
    };

    match checker.check(&product) {
        Ok(grant) => {
            let left = grant
                .days_left
                .map(|d| format!(", {d} days left"))
                .unwrap_or_default();
            println!("{product} is licensed ({}{left}); starting.", grant.kind.as_str());
            if let Some(warning) = grant.warning {
                eprintln!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{product} cannot start: {e}");
            ExitCode::from(1)
        }
    }
}
