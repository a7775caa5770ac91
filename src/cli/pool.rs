//! Floating licenses on the command line: the pool server (`pool serve`,
//! `status`, `remove`, `import-return`, `report`), the client's seats
//! (`lease checkout|renew|checkin`) and borrowing (`borrow`, `return`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use nodelock::base::clock::{self, Timestamp};
use nodelock::base::fsio;
use nodelock::base::random::{self, OsRandom};
use nodelock::documents::lease::{self, Checkout, LeaseMode, LeaseOp};
use nodelock::format::{PrivateKey, typeable};
use nodelock::machine::fingerprint::Fingerprint;
use nodelock::online::pool::{LeaseError, PoolClient};
use nodelock::pool::http::{PoolService, Views};
use nodelock::pool::policy::PolicyFile;
use nodelock::pool::{Pool, PoolDb, PoolError, Served};
use nodelock::workstation::store::Store;

use super::exit::{CliError, Exit};
use super::output::{CsvStream, Outcome, clean, shell_word};
use super::{KeysArg, StoreArg, overrides, values, workstation};

/// `nodelock pool …`: the license server a customer runs.
#[derive(Subcommand)]
pub enum PoolCommand {
    /// Serve every pool license installed in the store to clients on the network.
    Serve(ServeArgs),
    /// Seats in use, available and borrowed, and each lease (from the server).
    Status(StatusArgs),
    /// Free a stuck seat (needs the admin token).
    Remove(RemoveArgs),
    /// Free the seat of a borrow returned offline (the file `nodelock return --offline` wrote).
    ImportReturn(ImportReturnArgs),
    /// Usage per product and day: peak seats, denials, borrows, hours.
    Report(ReportArgs),
}

/// `nodelock lease …`: a seat for a script or an installer.
#[derive(Subcommand)]
pub enum LeaseCommand {
    /// Take a seat; prints the lease (`--json`: `lease_id`, `expires_at`).
    Checkout {
        /// The product.
        product: String,
        #[command(flatten)]
        server: PoolServerArg,
        #[command(flatten)]
        keys: KeysArg,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Extend a lease this store took.
    Renew {
        /// The lease id.
        lease_id: String,
        #[command(flatten)]
        server: PoolServerArg,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Give a lease this store took back.
    Checkin {
        /// The lease id.
        lease_id: String,
        #[command(flatten)]
        server: PoolServerArg,
        #[command(flatten)]
        store: StoreArg,
    },
}

/// Where the pool server is.
#[derive(Args)]
pub struct PoolServerArg {
    /// The pool server, e.g. http://licenses.lan:8760.
    #[arg(long, value_name = "URL")]
    pub(super) server: String,
    /// Seconds to wait for it.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
}

impl PoolServerArg {
    pub(super) fn client(&self) -> Result<PoolClient, CliError> {
        PoolClient::new(&self.server, Duration::from_secs(self.timeout.max(1))).map_err(lease_error)
    }
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:8760.
    #[arg(long, value_name = "ADDR")]
    listen: String,
    #[command(flatten)]
    store: StoreArg,
    /// The pool database (default: pool.sqlite in the store).
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Serve the status views only to holders of the admin token.
    #[arg(long)]
    views_need_token: bool,
    /// Who may take a seat (default: pool-policy.toml in the store; none there: everyone).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    server: PoolServerArg,
    /// The admin token file, when the pool's views need it.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct RemoveArgs {
    /// The lease id (S-…), as `pool status` shows it.
    lease_id: String,
    #[command(flatten)]
    server: PoolServerArg,
    /// The admin token file (default: pool-admin.token in --store).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
pub struct ImportReturnArgs {
    /// The return file.
    file: PathBuf,
    #[command(flatten)]
    store: StoreArg,
    /// The pool database (default: pool.sqlite in the store).
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
}

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The pool database (default: pool.sqlite in the store).
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Only from this day on.
    #[arg(long, value_name = "DATE", value_parser = values::start_date)]
    since: Option<Timestamp>,
    /// Print CSV.
    #[arg(long)]
    csv: bool,
}

pub(super) fn lease_error(e: LeaseError) -> CliError {
    match e {
        LeaseError::Server(e) => CliError::from(e),
        LeaseError::Untrusted(e) => CliError::from(e),
        LeaseError::OtherMachine => CliError::new(Exit::OtherMachine, e.to_string()),
        LeaseError::Answer(_) => CliError::new(Exit::Network, e.to_string()),
        LeaseError::Key(e) => CliError::from(e),
        LeaseError::Store(e) => CliError::from(e),
    }
}

fn pool_error(e: PoolError) -> CliError {
    CliError::new(e.exit(), e.to_string())
}

fn db_path(store: &Store, db: Option<&Path>) -> PathBuf {
    db.map_or_else(|| store.root().join("pool.sqlite"), Path::to_path_buf)
}

pub(super) fn current_fingerprint() -> Result<Fingerprint, CliError> {
    Ok(Fingerprint::from_facts(&overrides::current_facts()?)?)
}

/// The pool licenses of `store`, each checked on this machine now; none is an error.
fn served(store: &Store, store_arg: &StoreArg) -> Result<Vec<Served>, CliError> {
    let ring = store.trust_roots()?;
    let found = store
        .pool_licenses(&ring, &current_fingerprint()?, overrides::now()?)
        .map_err(|e| {
            let e = CliError::from(e);
            CliError::new(
                e.exit,
                format!(
                    "a pool license in {} cannot be served: {}",
                    store.root().display(),
                    e.message
                ),
            )
        })?;
    if found.is_empty() {
        return Err(CliError::new(
            Exit::NotFound,
            format!(
                "no pool license is installed in {}; activate the floating entitlement there first: nodelock activate KEY --server URL{}",
                store.root().display(),
                store_arg.flag()
            ),
        ));
    }
    Ok(found
        .into_iter()
        .map(|p| Served {
            license: p.license,
            install: p.install,
            armored: p.armored,
        })
        .collect())
}

/// The admin token in `path`, trimmed.
fn read_token(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| CliError::new(Exit::Io, format!("cannot read {}: {e}", path.display())))
}

fn admin_token(store: &Store) -> Result<String, CliError> {
    let path = store.root().join("pool-admin.token");
    if path.exists() {
        let token = read_token(&path)?;
        // An empty token would let anyone who sends none remove leases.
        if token.len() < 16 {
            return Err(CliError::new(
                Exit::BadInput,
                format!(
                    "the admin token in {} is empty or shorter than 16 characters; delete the file and start the server again to make a new one",
                    path.display()
                ),
            ));
        }
        return Ok(token);
    }
    let bytes = random::bytes::<20>(&OsRandom).map_err(|e| CliError::new(Exit::Io, e.to_string()))?;
    let token = typeable::base32(&bytes, 32);
    fsio::write_file(&path, format!("{token}\n").as_bytes(), true, true)
        .map_err(|e| CliError::new(Exit::Io, format!("cannot write {}: {e}", path.display())))?;
    Ok(token)
}

pub fn run(command: &PoolCommand, json_mode: bool) -> Result<Outcome, CliError> {
    match command {
        PoolCommand::Serve(args) => serve(args),
        PoolCommand::Status(args) => status(args),
        PoolCommand::Remove(args) => {
            let token = match &args.token_file {
                Some(path) => read_token(path)?,
                None => {
                    let store = args.store.open_existing()?;
                    let path = store.root().join("pool-admin.token");
                    if !path.exists() {
                        return Err(CliError::new(
                            Exit::Usage,
                            format!(
                                "no admin token at {}; pass --token-file FILE (pool serve wrote it into its store)",
                                path.display()
                            ),
                        ));
                    }
                    read_token(&path)?
                }
            };
            let answer = args
                .server
                .client()?
                .remove(&args.lease_id, &token)
                .map_err(lease_error)?;
            let removed = serde_json::from_str::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v["removed"].as_bool())
                .unwrap_or(false);
            Ok(Outcome::new(
                if removed {
                    format!("lease {} removed: its seat is free", args.lease_id)
                } else {
                    format!("lease {} had already ended; nothing changed", args.lease_id)
                },
                json!({ "lease_id": args.lease_id, "removed": removed }),
            ))
        }
        PoolCommand::ImportReturn(args) => {
            let store = args.store.open_existing()?;
            let mut pool = Pool::new(
                served(&store, &args.store)?,
                PoolDb::open(&db_path(&store, args.db.as_deref())).map_err(pool_error)?,
                Arc::new(OsRandom),
            );
            let bytes = nodelock::format::envelope::read_file(
                &args.file,
                nodelock::format::DocumentKind::LeaseUpdate,
                fsio::Links::Follow,
            )?;
            let update = lease::open_lease_update(&bytes)?;
            let done = pool.update(update, overrides::now()?).map_err(pool_error)?;
            let (id, already) = match &done {
                nodelock::pool::Updated::Ended { lease_id, already } => (lease_id.clone(), *already),
                nodelock::pool::Updated::Renewed(g) => (g.lease_id.clone(), false),
            };
            Ok(Outcome::new(
                if already {
                    format!("lease {id} was returned before; nothing changed")
                } else {
                    format!("lease {id} returned: its seat is free")
                },
                json!({ "lease_id": id, "freed": !already }),
            ))
        }
        PoolCommand::Report(args) => report(args, json_mode),
    }
}

fn serve(args: &ServeArgs) -> Result<Outcome, CliError> {
    super::online::init_logs();
    let store = args.store.open_existing()?;
    let served = served(&store, &args.store)?;
    let summary: Vec<String> = served
        .iter()
        .map(|s| {
            let lic = s.license.license();
            format!("{} ({} seats)", lic.product, lic.seats.unwrap_or(0))
        })
        .collect();
    let db = PoolDb::open(&db_path(&store, args.db.as_deref())).map_err(pool_error)?;
    let policy_path = args
        .policy
        .clone()
        .unwrap_or_else(|| store.root().join("pool-policy.toml"));
    let policy = PolicyFile::load(policy_path).map_err(|e| CliError::new(Exit::BadInput, e.to_string()))?;
    let token = admin_token(&store)?;
    let views = if args.views_need_token {
        Views::Token
    } else {
        Views::Open
    };
    let service = Arc::new(
        PoolService::new(
            Pool::new(served, db, Arc::new(OsRandom)).with_policy(policy),
            overrides::clock()?,
            token,
            views,
        )
        .map_err(pool_error)?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Exit::Io, e.to_string()))?;
    super::online::listen_until_signal(
        &runtime,
        &args.listen,
        &format!("pool: {}", summary.join(", ")),
        |listener, shutdown| nodelock::pool::http::serve(listener, service, Default::default(), shutdown),
    )?;
    Ok(Outcome::new("", json!({ "stopped": true })))
}

fn status(args: &StatusArgs) -> Result<Outcome, CliError> {
    let token = args.token_file.as_deref().map(read_token).transpose()?;
    let answer = args
        .server
        .client()?
        .status(token.as_deref())
        .map_err(lease_error)?;
    let value: serde_json::Value = serde_json::from_str(&answer).map_err(|e| {
        CliError::new(
            Exit::Network,
            format!("the pool server's status could not be read: {e}"),
        )
    })?;
    let text = |v: &serde_json::Value| clean(v.as_str().unwrap_or("-"));
    let mut human = String::new();
    for p in value["products"].as_array().into_iter().flatten() {
        human.push_str(&format!(
            "{}: {} seat(s), {} in use, {} available, {} borrowed\n",
            text(&p["product"]),
            p["seats"],
            p["in_use"],
            p["available"],
            p["borrowed"]
        ));
        for l in p["leases"].as_array().into_iter().flatten() {
            human.push_str(&format!(
                "  {}  {:<8}  workstation {}  {}@{}  since {}  until {}\n",
                text(&l["id"]),
                text(&l["mode"]),
                text(&l["workstation_id"]),
                text(&l["user"]),
                text(&l["host"]),
                text(&l["since"]),
                text(&l["until"])
            ));
        }
    }
    Ok(Outcome::new(human, value))
}

fn report(args: &ReportArgs, json_mode: bool) -> Result<Outcome, CliError> {
    if args.csv && json_mode {
        return Err(CliError::new(Exit::Usage, "choose one of --csv and --json"));
    }
    let store = args.store.open_existing()?;
    let path = db_path(&store, args.db.as_deref());
    if !path.exists() {
        return Err(CliError::new(
            Exit::NotFound,
            format!(
                "there is no pool database at {}; it is made by `nodelock pool serve`",
                path.display()
            ),
        ));
    }
    let db = PoolDb::open(&path).map_err(pool_error)?;
    let days = nodelock::pool::report::usage(&db, args.since).map_err(pool_error)?;
    if args.csv {
        let mut out = CsvStream::start(&["product", "day", "peak", "denials", "borrows", "hours"])?;
        for d in &days {
            out.row([
                d.product.clone(),
                d.day.clone(),
                d.peak.to_string(),
                d.denials.to_string(),
                d.borrows.to_string(),
                format!("{:.2}", d.hours),
            ])?;
        }
        return out.finish();
    }
    let human: String = days
        .iter()
        .map(|d| {
            format!(
                "{}  {}  peak {}  denials {}  borrows {}  hours {:.2}\n",
                d.day,
                clean(&d.product),
                d.peak,
                d.denials,
                d.borrows,
                d.hours
            )
        })
        .collect();
    Ok(Outcome::new(
        if human.is_empty() {
            "no usage recorded".into()
        } else {
            human
        },
        json!({ "days": days }),
    ))
}

/// Refuses to give back a pool license while seats of it are out on
/// borrow: the laptops keep working until their borrows end, so the same
/// seats would be counted again on the pool's new hardware.
pub fn refuse_if_borrowed(store: &Store, license_id: &str, now: Timestamp) -> Result<(), CliError> {
    let db = store.root().join("pool.sqlite");
    if !db.exists() {
        return Ok(());
    }
    let out = PoolDb::open(&db)
        .and_then(|db| db.read().borrowed_out(license_id, now))
        .map_err(pool_error)?;
    if let Some(last) = out.last() {
        return Err(CliError::new(
            Exit::LimitReached,
            format!(
                "{} seat(s) of pool license {license_id} are out on borrow (the last until {}); they would be counted twice on the pool's new hardware: deactivate once they have come back (`nodelock pool status`), or been returned with `nodelock pool import-return FILE`",
                out.len(),
                clock::format(last.until)
            ),
        ));
    }
    Ok(())
}

pub(super) fn host_label() -> Option<String> {
    overrides::current_facts()
        .ok()
        .and_then(|f| f.hostname)
        .filter(|h| !h.is_empty() && h.len() <= lease::MAX_LABEL && !h.chars().any(char::is_control))
}

pub(super) fn user_label() -> Option<String> {
    std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("USERNAME").ok())
        .filter(|u| !u.is_empty() && u.len() <= lease::MAX_LABEL && !u.chars().any(char::is_control))
}

fn lease_key_path(store: &Store, lease_id: &str) -> PathBuf {
    store.root().join("leases").join(format!("{lease_id}.key"))
}

pub fn lease_command(command: &LeaseCommand) -> Result<Outcome, CliError> {
    match command {
        LeaseCommand::Checkout {
            product,
            server,
            keys,
            store: store_arg,
        } => {
            let store = store_arg.open()?;
            workstation::keep_given_keys(&store, keys)?;
            let ring = workstation::keyring(keys, Some(&store))?;
            let returned = super::borrow::reconnect_before(&store, product)?;
            let fp = current_fingerprint()?;
            let holder = PrivateKey::generate()?;
            let checkout = Checkout {
                product,
                mode: LeaseMode::Online,
                days: 0,
                fingerprint: &fp,
                user: user_label(),
                host: host_label(),
            };
            let (granted, _) = server
                .client()?
                .checkout(&checkout, &holder, &ring, overrides::now()?)
                .map_err(lease_error)?;
            // Kept so that `lease renew|checkin` from this store can sign.
            let path = lease_key_path(&store, &granted.lease_id);
            if let Some(dir) = path.parent() {
                fsio::create_private_dir(dir).map_err(|e| CliError::new(Exit::Io, e.to_string()))?;
            }
            fsio::write_file(&path, holder.to_pkcs8_pem()?.as_bytes(), true, false)
                .map_err(|e| CliError::new(Exit::Io, format!("cannot write {}: {e}", path.display())))?;
            let mut human = returned.map(|(r, _)| format!("{r}\n")).unwrap_or_default();
            human.push_str(&format!(
                "lease {} for {product} until {} (renew with `nodelock lease renew {} --server {}{}`)",
                granted.lease_id,
                granted.expires_at,
                granted.lease_id,
                shell_word(&server.server),
                store_arg.flag()
            ));
            Ok(Outcome::new(
                human,
                json!({ "lease_id": granted.lease_id, "expires_at": granted.expires_at, "product": product }),
            ))
        }
        LeaseCommand::Renew {
            lease_id,
            server,
            store,
        }
        | LeaseCommand::Checkin {
            lease_id,
            server,
            store,
        } => {
            let renew = matches!(command, LeaseCommand::Renew { .. });
            let store = store.open_existing()?;
            let path = lease_key_path(&store, lease_id);
            if !lease::valid_lease_id(lease_id) || !path.exists() {
                return Err(CliError::new(
                    Exit::NotInstalled,
                    format!("this store took no lease {lease_id} (see `nodelock lease checkout`)"),
                ));
            }
            let holder = PrivateKey::load(&path)?;
            let op = if renew { LeaseOp::Renew } else { LeaseOp::Checkin };
            let answer = server
                .client()?
                .update(lease_id, op, &holder, overrides::now()?)
                .map_err(lease_error)?;
            let value: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
            if renew {
                Ok(Outcome::new(
                    format!(
                        "lease {lease_id} renewed until {}",
                        value["expires_at"].as_str().unwrap_or("?")
                    ),
                    json!({ "lease_id": lease_id, "expires_at": value["expires_at"] }),
                ))
            } else {
                let _ = std::fs::remove_file(&path);
                Ok(Outcome::new(
                    format!("lease {lease_id} checked in: its seat is free"),
                    json!({ "lease_id": lease_id, "checked_in": true }),
                ))
            }
        }
    }
}
