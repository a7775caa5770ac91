//! `nodelock clock request|sync` and the import of a time statement: how a
//! machine whose clock was once wrong gets back to checking licenses without
//! support (workstation::store's `time.rs` has the rules).

use serde_json::json;

use nodelock::base::clock::{self, CLOCK_TOLERANCE};
use nodelock::workstation::store::{ClockSynced, Store};

use super::exit::{CliError, Exit};
use super::output::{Outcome, write_out};
use super::{ClockCommand, overrides, workstation};

pub fn run(command: &ClockCommand) -> Result<Outcome, CliError> {
    match command {
        ClockCommand::Request { out, store, keys } => {
            let store_handle = store.open()?;
            let made = store_handle.create_clock_request(overrides::now()?)?;
            write_out(out, &made.armored)?;
            let kept = workstation::keep_given_keys(&store_handle, keys)?;
            let mut outcome = Outcome::new(
                format!(
                    "clock request written to {}.\nNext: upload it at the vendor's activation portal or send it to the vendor (`nodelock vendor answer`), then install the time statement you get back with:\n  {}",
                    out.display(),
                    workstation::import_step("FILE", &store_handle, store)?
                ),
                json!({ "request": out.display().to_string(), "nonce": made.nonce }),
            );
            for note in kept {
                outcome = outcome.note(note);
            }
            Ok(outcome)
        }
        ClockCommand::Sync { server, store, keys } => {
            let client = server.client()?.ok_or_else(|| {
                CliError::new(
                    Exit::Usage,
                    "no activation server is configured; pass --server URL, set NODELOCK_SERVER, or use `nodelock clock request -o FILE` offline",
                )
            })?;
            let store_handle = store.open()?;
            workstation::keep_given_keys(&store_handle, keys)?;
            let ring = workstation::keyring(keys, Some(&store_handle))?;
            let made = store_handle.create_clock_request(overrides::now()?)?;
            let statement = client.time(made.armored.as_bytes())?;
            let synced =
                store_handle.import_time_statement(statement.as_bytes(), &ring, overrides::now()?)?;
            Ok(synced_outcome(&store_handle, &synced))
        }
    }
}

/// Before an online activation or refresh: when this store's watermark is
/// ahead of the clock by more than the tolerance (a clock that was once
/// wrong), take the server's signed time first, so that the license the
/// server answers is not refused as "clock set back". Any failure here is
/// left to the exchange that follows, which reports its own.
pub fn sync_if_ahead(
    store: &Store,
    client: &nodelock::online::client::Client,
    ring: &nodelock::format::Keyring,
) -> Option<String> {
    let now = overrides::now().ok()?;
    let watermark = store.watermark().ok().flatten()?;
    if watermark <= now.saturating_add(CLOCK_TOLERANCE) {
        return None;
    }
    let made = store.create_clock_request(now).ok()?;
    let statement = client.time(made.armored.as_bytes()).ok()?;
    let synced = store
        .import_time_statement(statement.as_bytes(), ring, now)
        .ok()?;
    Some(format!(
        "note: this store had seen {} (a clock once set ahead); it now takes the server's signed time, {}",
        synced.watermark_before.as_deref().unwrap_or("none"),
        synced.watermark
    ))
}

/// What importing a time statement did, as people and scripts read it.
pub fn synced_outcome(store: &Store, synced: &ClockSynced) -> Outcome {
    let skew = synced.skew_seconds;
    let agreement = if skew.abs() <= CLOCK_TOLERANCE {
        format!("this machine's clock agrees with the vendor's (off by {skew} s)")
    } else {
        format!(
            "this machine's clock is {} {} the vendor's: set it to the correct time, or every check will observe the wrong time again",
            duration(skew.abs()),
            if skew > 0 { "ahead of" } else { "behind" }
        )
    };
    let mut outcome = Outcome::new(
        format!(
            "the store {} now takes {} as the latest time seen (it was {}); {agreement}",
            store.root().display(),
            synced.watermark,
            synced.watermark_before.as_deref().unwrap_or("none"),
        ),
        json!({ "outcome": "clock-synced", "clock": synced }),
    );
    if skew.abs() > CLOCK_TOLERANCE {
        outcome = outcome.note(format!(
            "warning: the system clock says {}",
            clock::format(synced.vendor_time.saturating_add(skew))
        ));
    }
    outcome
}

fn duration(seconds: i64) -> String {
    if seconds >= clock::DAY {
        format!("{} day(s)", seconds / clock::DAY)
    } else {
        format!("{} hour(s)", seconds / 3600)
    }
}
