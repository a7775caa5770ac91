//! An application that holds a seat of a floating pool while it runs: it
//! takes the seat at start, the guard renews it in the background, and the
//! seat goes back when the guard is dropped.
//!
//! ```text
//! cargo run --example floating_app -- http://licenses.lan:8760 surveyor 60
//! ```
//!
//! This example compiles in the TEST-ONLY vendor key from `fixtures/keys`; a
//! real application embeds its vendor's `vendor.pub` the same way.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use nodelock::format::{Keyring, PublicKey};
use nodelock::machine::facts::{RealSystem, SystemSource};
use nodelock::machine::fingerprint::Fingerprint;
use nodelock::online::pool::{LeaseGuard, PoolClient};

const VENDOR_PUBLIC_KEY: &str = include_str!("../fixtures/keys/TEST-ONLY-vendor.pub");

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(server), Some(product)) = (args.next(), args.next()) else {
        eprintln!("usage: floating_app SERVER-URL PRODUCT [SECONDS]");
        return ExitCode::from(2);
    };
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);

    let keyring: Keyring = PublicKey::from_spki_pem(VENDOR_PUBLIC_KEY, "vendor key")
        .into_iter()
        .collect();
    let fingerprint = match RealSystem.facts().map(|f| Fingerprint::from_facts(&f)) {
        Ok(Ok(fp)) => fp,
        _ => {
            eprintln!("this machine has no usable identifier");
            return ExitCode::from(5);
        }
    };
    let client = match PoolClient::new(&server, Duration::from_secs(10)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let seat = match LeaseGuard::checkout(client, &product, &keyring, &fingerprint) {
        Ok(seat) => seat,
        Err(e) => {
            // "all seats in use (…)", "cannot reach the license server at …"
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "running with seat {} (features: {})",
        seat.lease_id(),
        seat.features().join(", ")
    );
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        if let Some(why) = seat.lost() {
            eprintln!("{why}; saving and stopping");
            return ExitCode::from(3);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(seat);
    println!("seat given back");
    ExitCode::SUCCESS
}
