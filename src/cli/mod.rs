//! Command-line definitions and dispatch. Arguments become library calls; the
//! library decides, this layer only presents (output.rs) and maps outcomes to
//! exit codes (exit.rs).

mod exit;
mod output;
mod overrides;
mod vendor;
mod workstation;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use exit::{CliError, Exit};
use nodelock::store::Store;

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
    Status(StoreArg),
    /// Check the installed license for a product, as an application does at start-up.
    Check(CheckArgs),
    /// Manage the vendor public keys the store trusts.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Vendor tools: keys and license issuing.
    #[command(subcommand)]
    Vendor(VendorCommand),
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
    /// Would a license bound to BOUND hold on CURRENT? (both `fingerprint --json` reports; exit 0 yes, 1 no)
    Compare {
        /// Report of the machine the license was bound to.
        bound: PathBuf,
        /// Report of the machine it is checked on.
        current: PathBuf,
    },
}

#[derive(Args)]
struct StoreArg {
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
}

#[derive(Args)]
struct KeysArg {
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
    #[arg(long, value_name = "DATE")]
    build_date: Option<String>,
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
    #[arg(long, value_name = "DATE")]
    build_date: Option<String>,
    #[command(flatten)]
    keys: KeysArg,
    #[command(flatten)]
    store: StoreArg,
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
}

#[derive(Args)]
struct IssueArgs {
    /// The vendor's private key (PKCS#8 PEM).
    #[arg(long, value_name = "FILE")]
    signing_key: PathBuf,
    /// The workstation's `nodelock fingerprint --json` report.
    #[arg(long, value_name = "FILE")]
    fingerprint: PathBuf,
    /// Product name.
    #[arg(long)]
    product: String,
    /// perpetual or subscription (default: subscription with --expires, else perpetual).
    #[arg(long, value_parser = ["perpetual", "subscription", "trial"])]
    kind: Option<String>,
    /// Last day of validity (UTC; the license runs to the end of that day) or an RFC 3339 instant.
    #[arg(long, value_name = "DATE")]
    expires: Option<String>,
    /// Builds released after this day are not covered (perpetual licenses).
    #[arg(long, value_name = "DATE")]
    maintenance_until: Option<String>,
    /// First day of validity (default: now, less the clock tolerance).
    #[arg(long, value_name = "DATE")]
    not_before: Option<String>,
    /// Features, comma-separated.
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// Customer name.
    #[arg(long)]
    customer: Option<String>,
    /// Refuse machines whose only identifier is one clones share.
    #[arg(long)]
    require_hardware_id: bool,
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
            Some(FingerprintCommand::Compare { bound, current }) => workstation::compare(&bound, &current),
            None => workstation::fingerprint(args.facts.as_deref()),
        },
        Command::Facts => workstation::facts(),
        Command::Verify(args) => workstation::verify(&args),
        Command::Import(args) => workstation::import(&args),
        Command::Status(args) => workstation::status(&args),
        Command::Check(args) => workstation::check(&args),
        Command::Trust(TrustCommand::Add { key, store }) => workstation::trust_add(&key, &store),
        Command::Trust(TrustCommand::List { store }) => workstation::trust_list(&store),
        Command::Vendor(VendorCommand::Keygen { out, force }) => vendor::keygen(&out, force),
        Command::Vendor(VendorCommand::Issue(args)) => vendor::issue(&args),
    };
    std::process::ExitCode::from(output::emit(result, cli.json) as u8)
}
