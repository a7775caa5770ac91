//! Borrowing a seat for field use: `nodelock borrow`, `nodelock return`
//! (online, or offline to a file IT imports), and the return on reconnect
//! that `check` and `lease checkout` run first.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use nodelock::base::clock;
use nodelock::base::random::{self, OsRandom};
use nodelock::documents::lease::{self, Checkout, LeaseMode, LeaseOp};
use nodelock::format::PrivateKey;
use nodelock::online::pool::{PoolClient, Reconnected, return_on_reconnect};
use nodelock::workstation::store::{Reconnect, Store};

use super::exit::{CliError, Exit};
use super::output::{self, Outcome, shell_word, write_out};
use super::pool::{PoolServerArg, current_fingerprint, host_label, lease_error, user_label};
use super::{KeysArg, StoreArg, overrides, workstation};

#[derive(Args)]
pub struct BorrowArgs {
    /// The product.
    product: String,
    #[command(flatten)]
    server: PoolServerArg,
    /// How many days to take it for.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=365))]
    days: u32,
    /// Give it back by itself the first time this laptop reaches the pool
    /// again after being away from it for more than an hour (`nodelock
    /// check` and `lease checkout` try, at most every 5 minutes).
    #[arg(long)]
    return_on_reconnect: bool,
    #[command(flatten)]
    keys: KeysArg,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
pub struct ReturnArgs {
    /// The product borrowed.
    product: String,
    /// The pool server, to give it back online.
    #[arg(long, value_name = "URL", conflicts_with = "offline")]
    server: Option<String>,
    /// Give it back without the network: write the return to -o FILE.
    #[arg(long, requires = "out")]
    offline: bool,
    /// Where the offline return goes.
    #[arg(short, long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArg,
}

pub fn borrow(args: &BorrowArgs) -> Result<Outcome, CliError> {
    let store = args.store.open()?;
    workstation::keep_given_keys(&store, &args.keys)?;
    let ring = workstation::keyring(&args.keys, Some(&store))?;
    let fp = current_fingerprint()?;
    let holder = PrivateKey::generate()?;
    let now = overrides::now()?;
    // A second borrow would replace the first one's holder key, and the
    // first could then never be given back: it would hold its seat to its end.
    if let Some(kept) = store.borrow(&args.product, &ring)?
        && kept.local_end() > now
    {
        return Err(CliError::new(
            Exit::Exists,
            format!(
                "a borrow of {} is kept here until {}; give it back first: nodelock return {} --server {}{}",
                args.product,
                clock::format(kept.local_end()),
                shell_word(&args.product),
                shell_word(&args.server.server),
                args.store.flag()
            ),
        ));
    }
    let checkout = Checkout {
        product: &args.product,
        mode: LeaseMode::Borrowed,
        days: args.days,
        fingerprint: &fp,
        user: user_label(),
        host: host_label(),
    };
    let (granted, _) = args
        .server
        .client()?
        .checkout(&checkout, &holder, &ring, now)
        .map_err(lease_error)?;
    let borrow = store.keep_borrow(&granted.lease, &granted.pool_license, holder, &ring, &fp, now)?;
    let end = clock::format(borrow.local_end());
    let on_reconnect = args.return_on_reconnect || granted.return_on_reconnect;
    if on_reconnect {
        store.set_reconnect(
            &args.product,
            &Reconnect {
                server: args.server.server.clone(),
                lease_id: granted.lease_id.clone(),
                away: false,
                first_failure: None,
                probed_at: Some(now),
            },
        )?;
    }
    let mut human = format!(
        "borrowed {} until {end} (lease {}); it works offline on this machine until then. Give it back early with `nodelock return {} --server {}{}`",
        args.product,
        granted.lease_id,
        shell_word(&args.product),
        shell_word(&args.server.server),
        args.store.flag()
    );
    if on_reconnect {
        human.push_str(&format!(
            "\nIt goes back to the pool by itself the first time this laptop reaches {} again after being away{}.",
            args.server.server,
            if args.return_on_reconnect { "" } else { " (the pool's policy)" }
        ));
    }
    Ok(Outcome::new(
        human,
        json!({
            "lease_id": granted.lease_id,
            "product": args.product,
            "expires_at": end,
            "return_on_reconnect": on_reconnect,
        }),
    ))
}

pub fn give_back(args: &ReturnArgs) -> Result<Outcome, CliError> {
    let store = args.store.open_existing()?;
    let ring = store.trust_roots()?;
    let borrow = store.borrow(&args.product, &ring)?.ok_or_else(|| {
        CliError::new(
            Exit::NotFound,
            format!(
                "no borrow of '{}' is kept in {}",
                args.product,
                store.root().display()
            ),
        )
    })?;
    let lease_id = borrow.lease.lease().id.clone();
    let holder = store.borrow_holder(&args.product)?;
    let now = overrides::now()?;
    if let (true, Some(out)) = (args.offline, &args.out) {
        let nonce = random::bytes::<16>(&OsRandom).map_err(|e| CliError::new(Exit::Io, e.to_string()))?;
        let (_, text) = lease::make_lease_update(&lease_id, LeaseOp::Return, &holder, nonce, now)?;
        write_out(out, &text)?;
        // The borrow is gone from this machine before the file leaves it.
        store.drop_borrow(&args.product)?;
        return Ok(Outcome::new(
            format!(
                "the borrow of {} is removed from this machine; its return is in {}.\nNext: carry that file to the license server and run there: nodelock pool import-return {} --store POOL-STORE",
                args.product,
                out.display(),
                out.display()
            ),
            json!({ "lease_id": lease_id, "return": out.display().to_string() }),
        ));
    }
    let Some(server) = &args.server else {
        return Err(CliError::new(
            Exit::Usage,
            "say how to give it back: --server URL (online) or --offline -o FILE",
        ));
    };
    let client = PoolClient::new(server, Duration::from_secs(10)).map_err(lease_error)?;
    client
        .update(&lease_id, LeaseOp::Return, &holder, now)
        .map_err(lease_error)?;
    store.drop_borrow(&args.product)?;
    Ok(Outcome::new(
        format!(
            "the borrow of {} is returned: its seat is back in the pool",
            args.product
        ),
        json!({ "lease_id": lease_id, "returned": true }),
    ))
}

/// Gives a borrow of `product` set to return on reconnect back when this
/// laptop is back on the pool's network (`online::pool::return_on_reconnect`,
/// waiting at most 2 s for an unreachable pool): the sentence that says so,
/// and the pool server.
pub fn reconnect_before(store: &Store, product: &str) -> Result<Option<(String, String)>, CliError> {
    let now = overrides::now()?;
    match return_on_reconnect(store, product, now, Duration::from_secs(2)) {
        Ok(Reconnected::Returned { lease_id, server }) => Ok(Some((
            format!(
                "the borrow of {product} (lease {lease_id}) went back to the pool at {server}, now that this laptop reaches it again (it was set to return on reconnect)"
            ),
            server,
        ))),
        Ok(_) => Ok(None),
        Err(e) => {
            // The check itself must not fail for it: say so and go on.
            output::warn(&format!(
                "the borrow of {product} could not be given back on reconnect: {e}"
            ));
            Ok(None)
        }
    }
}
