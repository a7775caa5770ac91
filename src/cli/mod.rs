//! Command-line definitions and dispatch. Arguments become library calls; the
//! library decides, this layer only presents (output.rs) and maps outcomes to
//! exit codes (exit.rs).

mod activation;
mod borrow;
mod clock;
mod config;
mod exit;
mod ledger;
mod manual;
mod online;
mod output;
mod overrides;
mod pool;
mod values;
mod vendor;
mod workstation;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use exit::{CliError, Exit};
use nodelock::machine::fingerprint::MatchPolicy;
use nodelock::workstation::store::Store;

/// Bind software licenses to workstations and check them offline.
#[derive(Parser)]
#[command(name = "nodelock", version, about, propagate_version = true)]
struct Cli {
    /// Print one machine-readable JSON result on stdout (see README, "JSON output").
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// The vendor's commands in the order a vendor meets them (`vendor --help`).
const VENDOR_DAY: &str = "\
The vendor's work, in order:
  once       nodelock vendor keygen --out DIR                  the signing key (DIR/vendor.pub goes into applications)
  once       nodelock vendor init --ledger PATH                the ledger of seats sold, activations and the audit
  per order  nodelock vendor entitlement create --product P --seats N --customer C
                                                              prints the activation key for the customer
  per file   nodelock vendor answer --signing-key KEY REQUEST -o FILE
                                                              an activation, deactivation or refresh request, answered
  online     nodelock vendor serve --listen ADDR --signing-key KEY
                                                              the same answers over HTTP, and the portal page
  support    nodelock vendor report | audit | reset | entitlement list|show|update
  no ledger  nodelock vendor issue --fingerprint REPORT ...   a license bound to a fingerprint report

The ledger is --ledger PATH, or NODELOCK_LEDGER, or the vendor data directory's nodelock-vendor/ledger.sqlite.";

#[derive(Subcommand)]
enum Command {
    /// Print this workstation's id; with --json, its fingerprint report (digests only).
    Fingerprint(FingerprintArgs),
    /// Print this machine's raw facts snapshot (contains hardware serials: share it only with support).
    Facts,
    /// Check a license file: signature, product, dates and this machine.
    Verify(VerifyArgs),
    /// Verify a license and install it in the store.
    Import(ImportArgs),
    /// Show every installed license and its state.
    Status(StatusArgs),
    /// Check the installed license for a product, as an application does at start-up.
    Check(CheckArgs),
    /// Make an offline activation request for an activation key (send the file to the vendor).
    Request(RequestArgs),
    /// Give a license back: a signed deactivation request, sent online or written to a file.
    Deactivate(DeactivateArgs),
    /// Get installed licenses again from the vendor, with today's terms (renewals, revalidation).
    Refresh(RefreshArgs),
    /// Activate online in one step: request, send to the server, import (falls back to the offline files).
    Activate(ActivateArgs),
    /// Report the configuration, the server, the store and the clock.
    Doctor(DoctorArgs),
    /// Manage the vendor public keys the store trusts.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Vendor tools: signing keys, licenses, entitlements and activation keys, answering
    /// requests, resets, the compliance report and audit, and the activation server.
    #[command(subcommand, after_help = VENDOR_DAY)]
    Vendor(VendorCommand),
    /// Floating licenses: the license server on the customer's network, its status and report.
    #[command(subcommand)]
    Pool(pool::PoolCommand),
    /// A seat of a floating pool for a script or installer: checkout, renew, checkin.
    #[command(subcommand)]
    Lease(pool::LeaseCommand),
    /// Take a seat of a floating pool out for offline use, for --days N.
    Borrow(borrow::BorrowArgs),
    /// Give a borrowed seat back early: online (--server) or as a file (--offline -o FILE).
    Return(borrow::ReturnArgs),
    /// Recover from a wrong clock: ask the vendor for its signed time (online, or as a file).
    #[command(subcommand)]
    Clock(ClockCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff); with --out DIR, write one page per command there.
    Man {
        /// Directory for nodelock.1 and a page per command.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct FingerprintArgs {
    /// Compute from a facts snapshot instead of this machine.
    #[arg(long, value_name = "FILE")]
    facts: Option<PathBuf>,
    #[command(subcommand)]
    compare: Option<FingerprintCommand>,
}

#[derive(Subcommand)]
enum FingerprintCommand {
    /// Would a license bound to BOUND hold on CURRENT? (exit 0 yes, 1 no)
    Compare {
        /// What the license is bound to: a `fingerprint --json` report, a license, or an activation request.
        bound: PathBuf,
        /// The machine it is checked on: a report, a `nodelock facts` snapshot, or (left out) this machine.
        current: Option<PathBuf>,
        /// The match policy: strict, standard or tolerant (default: the license's own, else standard).
        #[arg(long, value_name = "POLICY", value_parser = values::match_policy)]
        policy: Option<MatchPolicy>,
    },
}

#[derive(Args)]
pub struct StoreArg {
    /// License store directory (default: the platform's per-user data directory).
    #[arg(long, value_name = "DIR", env = "NODELOCK_STORE")]
    store: Option<PathBuf>,
}

impl StoreArg {
    fn open(&self) -> Result<Store, CliError> {
        self.store
            .clone()
            .or_else(Store::default_location)
            .map(Store::open)
            .ok_or_else(|| {
                CliError::new(
                    Exit::Io,
                    "no per-user data directory is known here; pass --store DIR",
                )
            })
    }

    /// ` --store DIR` as a pasted command needs it (empty for the default
    /// store), quoted for a POSIX shell when the path needs it.
    fn flag(&self) -> String {
        self.store
            .as_deref()
            .map(|s| format!(" --store {}", output::shell_word(&s.display().to_string())))
            .unwrap_or_default()
    }

    /// The store, which must exist: commands that only read or give back
    /// (check, refresh, deactivate) say so rather than report an empty one.
    fn open_existing(&self) -> Result<Store, CliError> {
        let store = self.open()?;
        if store.root().is_dir() {
            return Ok(store);
        }
        Err(CliError::new(
            Exit::NotFound,
            format!(
                "there is no license store at {} (nothing was imported or activated there); install a license with `nodelock import LICENSE-FILE --pubkey VENDOR-KEY-FILE --store {}`, or pass the --store it was installed into",
                store.root().display(),
                output::shell_word(&store.root().display().to_string())
            ),
        ))
    }
}

#[derive(Subcommand)]
enum ClockCommand {
    /// Write a clock request to carry to the vendor (answered by the portal or `vendor answer`).
    Request {
        /// Where to write the request.
        #[arg(short, long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        keys: KeysArg,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Ask the activation server for its signed time and take it as the store's clock.
    Sync {
        #[command(flatten)]
        server: ServerArg,
        #[command(flatten)]
        keys: KeysArg,
        #[command(flatten)]
        store: StoreArg,
    },
}

#[derive(Args)]
pub struct KeysArg {
    /// Vendor public key (SPKI PEM) to trust; repeat for several. Default: the store's trust roots.
    #[arg(long = "pubkey", value_name = "FILE")]
    pubkeys: Vec<PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    keys: KeysArg,
    /// Refuse unless the license is for this product.
    #[arg(long)]
    product: Option<String>,
    /// The application build's release date, for licenses with a maintenance end.
    #[arg(long, value_name = "DATE", value_parser = values::start_date)]
    build_date: Option<nodelock::base::clock::Timestamp>,
    #[command(flatten)]
    store: StoreArg,
    /// The license file (armored or binary).
    license: PathBuf,
}

#[derive(Args)]
struct ImportArgs {
    #[command(flatten)]
    keys: KeysArg,
    #[command(flatten)]
    store: StoreArg,
    /// The license file (armored or binary).
    license: PathBuf,
}

#[derive(Args)]
struct CheckArgs {
    /// The product to check.
    #[arg(long)]
    product: String,
    /// The application build's release date, for licenses with a maintenance end.
    #[arg(long, value_name = "DATE", value_parser = values::start_date)]
    build_date: Option<nodelock::base::clock::Timestamp>,
    #[command(flatten)]
    warn: WarnArg,
    #[command(flatten)]
    keys: KeysArg,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
struct ReportArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    /// Only entitlements that end within the next DAYS days (renewals to chase).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(i64).range(0..=36_500))]
    ending_within: Option<i64>,
    #[command(flatten)]
    select: SelectArgs,
    /// Print CSV (one row per entitlement) instead of text or JSON.
    #[arg(long)]
    csv: bool,
}

#[derive(Args)]
struct AuditArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    #[command(flatten)]
    select: SelectArgs,
    /// Only rows from this date (or RFC 3339 instant) on.
    #[arg(long, value_name = "DATE", value_parser = values::start_date)]
    since: Option<nodelock::base::clock::Timestamp>,
    /// Only rows up to the end of this date (or before this RFC 3339 instant).
    #[arg(long, value_name = "DATE", value_parser = values::end_date)]
    until: Option<nodelock::base::clock::Timestamp>,
    /// Print CSV instead of text or JSON.
    #[arg(long)]
    csv: bool,
}

/// Which entitlements a report covers, or whose audit rows an audit shows.
#[derive(Args)]
struct SelectArgs {
    /// Only this product.
    #[arg(long, value_name = "PRODUCT")]
    product: Option<String>,
    /// Only this customer (as the entitlement names it).
    #[arg(long, value_name = "NAME")]
    customer: Option<String>,
    /// Only this entitlement (E-…).
    #[arg(long, value_name = "ID")]
    entitlement: Option<String>,
}

#[derive(Args)]
struct WarnArg {
    /// Warn this many days before a license or its maintenance ends.
    #[arg(long, value_name = "DAYS", env = "NODELOCK_WARN_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(i64).range(0..=3650))]
    warn_days: i64,
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    warn: WarnArg,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
struct RequestArgs {
    /// The activation key you received (dashes and case do not matter).
    #[arg(required_unless_present = "refresh")]
    key: Option<String>,
    /// Instead, a refresh request for this installed license (its id, as `nodelock status` shows it).
    #[arg(long, value_name = "LICENSE-ID", conflicts_with = "key")]
    refresh: Option<String>,
    /// Where to write the request file.
    #[arg(short, long, value_name = "FILE")]
    out: PathBuf,
    /// Vendor public key to trust for the license that comes back (kept in the store).
    #[command(flatten)]
    keys: KeysArg,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
struct DeactivateArgs {
    /// The license id, as `nodelock status` shows it.
    license_id: String,
    /// Write the deactivation request to FILE (offline) instead of sending it.
    #[arg(short, long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArg,
    /// Where to leave the request file if the server cannot be reached.
    #[arg(long, value_name = "FILE", default_value = "nodelock-deactivation.req")]
    request_out: PathBuf,
    #[command(flatten)]
    keys: KeysArg,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
struct RefreshArgs {
    /// The product whose license to refresh (default: every license activated here).
    product: Option<String>,
    /// Write the refresh request to FILE (offline) instead of sending it.
    #[arg(short, long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArg,
    #[command(flatten)]
    keys: KeysArg,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
struct ServerArg {
    /// The activation server (default: $NODELOCK_SERVER, then `server` in the config file).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Seconds to wait for the server.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
}

#[derive(Args)]
struct ActivateArgs {
    /// The activation key you received.
    key: String,
    #[command(flatten)]
    server: ServerArg,
    #[command(flatten)]
    keys: KeysArg,
    /// Where to leave the request file if the server cannot be reached.
    #[arg(long, value_name = "FILE", default_value = "nodelock-activation.req")]
    request_out: PathBuf,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
struct DoctorArgs {
    #[command(flatten)]
    server: ServerArg,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the URL is printed on stdout).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8750")]
    listen: String,
    #[command(flatten)]
    ledger: LedgerArg,
    /// The vendor's private key (PKCS#8 PEM).
    #[arg(long, value_name = "FILE")]
    signing_key: PathBuf,
    /// Worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Seconds a client may take to send a request (headers, then body); idle connections close after it.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    read_timeout: u64,
    /// Requests per second one address may send to the document endpoints after a burst; 0 turns
    /// the limit off (behind a proxy that limits instead, every client shares its address).
    #[arg(long, value_name = "PER_SECOND", default_value_t = 50)]
    rate_limit: u32,
    /// Requests one address may send at once before --rate-limit applies.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    rate_burst: u32,
}

impl ServeArgs {
    /// The server's limits on clients, as these arguments set them.
    fn limits(&self) -> nodelock::vendor::server::Limits {
        use nodelock::vendor::server::{Limits, RateLimit};
        Limits {
            read_timeout: std::time::Duration::from_secs(self.read_timeout),
            rate: (self.rate_limit > 0).then_some(RateLimit {
                per_second: self.rate_limit,
                burst: self.rate_burst,
            }),
            ..Limits::default()
        }
    }
}

#[derive(Args)]
struct LedgerArg {
    /// The vendor ledger (SQLite; default: the vendor data directory's nodelock-vendor/ledger.sqlite).
    #[arg(long, value_name = "PATH", env = "NODELOCK_LEDGER")]
    ledger: Option<PathBuf>,
    /// Who is acting, for the audit (default: $USER).
    #[arg(long, value_name = "NAME")]
    operator: Option<String>,
}

#[derive(Subcommand)]
enum EntitlementCommand {
    /// Sell seats: create an entitlement and print its activation key (shown once).
    Create(EntitlementArgs),
    /// Every entitlement, one line each.
    List(LedgerArg),
    /// One entitlement with its activations.
    Show(EntitlementIdArgs),
    /// Renew or change an entitlement; licenses get it at their next `nodelock refresh`.
    Update(UpdateArgs),
}

#[derive(Args)]
struct EntitlementIdArgs {
    /// The entitlement id (E-…).
    id: String,
    #[command(flatten)]
    ledger: LedgerArg,
}

#[derive(Args)]
struct UpdateArgs {
    /// The entitlement id (E-…).
    id: String,
    /// New last day of the term (UTC, end of day) or an RFC 3339 instant.
    #[arg(long, value_name = "DATE", value_parser = values::end_date)]
    expires: Option<nodelock::base::clock::Timestamp>,
    /// New last day of maintenance.
    #[arg(long, value_name = "DATE", value_parser = values::end_date)]
    maintenance_until: Option<nodelock::base::clock::Timestamp>,
    /// New number of seats (never below those in use).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(nodelock::vendor::ledger::MAX_COUNT)))]
    seats: Option<u32>,
    /// New feature list, comma-separated.
    #[arg(long, value_delimiter = ',')]
    features: Option<Vec<String>>,
    /// Stop granting activations and refreshes.
    #[arg(long, conflicts_with = "resume")]
    suspend: bool,
    /// Grant them again.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    ledger: LedgerArg,
}

#[derive(Args)]
struct EntitlementArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    #[command(flatten)]
    sale: values::SaleArgs,
    /// Machines that may hold it at once (1 to 100,000,000).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(nodelock::vendor::ledger::MAX_COUNT)))]
    seats: u32,
    /// Transfers (deactivate here, activate there) allowed over the entitlement's life.
    #[arg(long, default_value_t = nodelock::vendor::ledger::DEFAULT_MAX_TRANSFERS,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(nodelock::vendor::ledger::MAX_COUNT)))]
    max_transfers: u32,
    /// Support resets allowed per rolling year.
    #[arg(long, default_value_t = nodelock::vendor::ledger::DEFAULT_MAX_RESETS_PER_YEAR,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(nodelock::vendor::ledger::MAX_COUNT)))]
    max_resets: u32,
    /// Licenses must be refreshed (`nodelock refresh`) this often, in days; a
    /// deactivated or reset one then stops working everywhere. Default: never.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36_500))]
    revalidate_days: Option<u32>,
    /// Floating: how long a lease runs before the application renews it.
    #[arg(long, value_name = "MINUTES", default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=10_080))]
    lease_minutes: u32,
    /// Floating: the longest borrow for offline use, in days (0: no borrowing).
    #[arg(long, value_name = "DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(0..=365))]
    borrow_max_days: u32,
    /// Floating: the most seats out on borrow at once (default: all of them).
    #[arg(long, value_name = "SEATS")]
    borrow_max_seats: Option<u32>,
}

#[derive(Args)]
struct AnswerArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    /// The vendor's private key (PKCS#8 PEM).
    #[arg(long, value_name = "FILE")]
    signing_key: PathBuf,
    /// An activation, deactivation or refresh request file.
    request: PathBuf,
    /// Where to write the license or receipt.
    #[arg(short, long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args)]
struct ResetArgs {
    #[command(flatten)]
    ledger: LedgerArg,
    /// The activation id (see `nodelock vendor report`).
    activation_id: String,
    /// Why (recorded in the audit).
    #[arg(long)]
    reason: String,
    /// Go past the entitlement's reset limit.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand)]
enum TrustCommand {
    /// Trust a vendor public key (SPKI PEM) in this store.
    Add {
        /// The key file.
        key: PathBuf,
        #[command(flatten)]
        store: StoreArg,
    },
    /// List the trusted vendor keys.
    List {
        #[command(flatten)]
        store: StoreArg,
    },
}

#[derive(Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per run; boxing buys nothing"
)]
enum VendorCommand {
    /// Create the ledger (seats sold, activations, audit) if there is none; upgrade its schema.
    Init(LedgerArg),
    /// Make a vendor signing key pair: DIR/vendor.key (PKCS#8, owner-only) and DIR/vendor.pub (SPKI).
    Keygen {
        /// Directory to write the keys into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace an existing private key.
        #[arg(long)]
        force: bool,
    },
    /// Issue a license bound to a workstation's fingerprint report.
    Issue(IssueArgs),
    /// Entitlements: seats sold under an activation key.
    #[command(subcommand)]
    Entitlement(EntitlementCommand),
    /// Answer an activation or refresh request (-> license) or a deactivation request (-> receipt).
    Answer(AnswerArgs),
    /// Free a seat without proof (the machine died); limited and audited.
    Reset(ResetArgs),
    /// Seats, activations, transfers and resets per entitlement: the compliance view.
    Report(ReportArgs),
    /// Every activation, deactivation, reset and refusal, with who and why.
    Audit(AuditArgs),
    /// The ledger's deep check: file integrity and seat counters (exit 45 on problems).
    Check(LedgerArg),
    /// Run the online activation server and the offline portal page.
    Serve(ServeArgs),
}

#[derive(Args)]
struct IssueArgs {
    /// The vendor's private key (PKCS#8 PEM).
    #[arg(long, value_name = "FILE")]
    signing_key: PathBuf,
    /// The workstation's `nodelock fingerprint --json` report.
    #[arg(long, value_name = "FILE")]
    fingerprint: PathBuf,
    #[command(flatten)]
    sale: values::SaleArgs,
    /// First day of validity (default: now, less the clock tolerance).
    #[arg(long, value_name = "DATE", value_parser = values::start_date)]
    not_before: Option<nodelock::base::clock::Timestamp>,
    /// Where to write the license.
    #[arg(short, long, value_name = "FILE")]
    out: PathBuf,
}

/// Parses arguments, runs the command, prints, and returns the exit code.
pub fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { Exit::Usage as u8 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Fingerprint(args) => match args.compare {
            Some(FingerprintCommand::Compare {
                bound,
                current,
                policy,
            }) => workstation::compare(&bound, current.as_deref(), policy),
            None => workstation::fingerprint(args.facts.as_deref()),
        },
        Command::Facts => workstation::facts(),
        Command::Verify(args) => workstation::verify(&args),
        Command::Import(args) => workstation::import(&args),
        Command::Status(args) => workstation::status(&args),
        Command::Check(args) => workstation::check(&args),
        Command::Request(args) => activation::request(&args),
        Command::Deactivate(args) => online::deactivate(&args),
        Command::Refresh(args) => online::refresh(&args),
        Command::Activate(args) => online::activate(&args),
        Command::Doctor(args) => online::doctor(&args),
        Command::Trust(TrustCommand::Add { key, store }) => workstation::trust_add(&key, &store),
        Command::Trust(TrustCommand::List { store }) => workstation::trust_list(&store),
        Command::Vendor(VendorCommand::Init(args)) => ledger::init(&args),
        Command::Vendor(VendorCommand::Keygen { out, force }) => vendor::keygen(&out, force),
        Command::Vendor(VendorCommand::Issue(args)) => vendor::issue(&args),
        Command::Vendor(VendorCommand::Entitlement(EntitlementCommand::Create(args))) => {
            ledger::create(&args)
        }
        Command::Vendor(VendorCommand::Entitlement(EntitlementCommand::List(args))) => {
            ledger::list(&args, cli.json)
        }
        Command::Vendor(VendorCommand::Entitlement(EntitlementCommand::Show(args))) => ledger::show(&args),
        Command::Vendor(VendorCommand::Entitlement(EntitlementCommand::Update(args))) => {
            ledger::update(&args)
        }
        Command::Vendor(VendorCommand::Answer(args)) => ledger::answer(&args),
        Command::Vendor(VendorCommand::Reset(args)) => ledger::reset(&args),
        Command::Vendor(VendorCommand::Report(args)) => ledger::report(&args, cli.json),
        Command::Vendor(VendorCommand::Audit(args)) => ledger::audit(&args, cli.json),
        Command::Vendor(VendorCommand::Check(args)) => ledger::check(&args),
        Command::Vendor(VendorCommand::Serve(args)) => online::serve(&args),
        Command::Clock(command) => clock::run(&command),
        Command::Pool(command) => pool::run(&command, cli.json),
        Command::Lease(command) => pool::lease_command(&command),
        Command::Borrow(args) => borrow::borrow(&args),
        Command::Return(args) => borrow::give_back(&args),
        Command::Completions { shell } => manual::completions(shell),
        Command::Man { out } => manual::man(out.as_deref()),
    };
    std::process::ExitCode::from(output::emit(result, cli.json) as u8)
}
