//! Exit codes, stable and documented in the README ("Exit codes"). Installers
//! and scripts branch on them, so a number never changes meaning.

use nodelock::documents::activation::ActivationError;
use nodelock::documents::license::LicenseError;
use nodelock::format::{EnvelopeError, KeyError};
use nodelock::machine::facts::FactsError;
use nodelock::machine::fingerprint::FingerprintError;
use nodelock::online::client::ClientError;
use nodelock::vendor::ledger::LedgerError;
use nodelock::workstation::check::Denial;
use nodelock::workstation::store::StoreError;

/// Every way the command can end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success; the license is granted; the binding holds.
    Ok = 0,
    /// `fingerprint compare`: the binding would not hold.
    NoMatch = 1,
    /// Bad command line (clap's own code).
    #[allow(dead_code)]
    Usage = 2,
    /// Input that is not what it should be: unreadable, damaged, wrong kind, too large.
    BadInput = 3,
    /// The file system failed.
    Io = 4,
    /// This machine has no identifier.
    NoIdentifier = 5,
    /// The signature does not match.
    BadSignature = 10,
    /// Signed by a key that is not trusted.
    UnknownSigner = 11,
    /// For another product.
    WrongProduct = 12,
    /// Not valid yet.
    NotYetValid = 13,
    /// Expired.
    Expired = 14,
    /// Maintenance ended before this build.
    MaintenanceEnded = 15,
    /// Bound to another machine.
    OtherMachine = 16,
    /// The clock is earlier than a time already seen.
    ClockSetBack = 17,
    /// No license installed for the product.
    NotFound = 18,
    /// A newer license is installed.
    OlderLicense = 19,
    /// A file that must not be overwritten exists.
    Exists = 20,
    /// The activation key is malformed or has a typo (caught locally).
    BadActivationKey = 21,
    /// No entitlement has this activation key.
    UnknownKey = 22,
    /// All seats are taken.
    NoFreeSeat = 23,
    /// The entitlement's term is over.
    EntitlementExpired = 24,
    /// A transfer or reset limit is used up.
    LimitReached = 25,
    /// The vendor revoked the license.
    Revoked = 26,
    /// An answered license for a request this store did not make.
    NotRequested = 27,
    /// A deactivation signed by a key other than the license's install key.
    WrongInstallKey = 28,
    /// No such license installed, or no such activation/license in the ledger.
    NotInstalled = 29,
    /// The activation already ended.
    AlreadyEnded = 30,
    /// The license was not activated by request; it cannot be deactivated offline.
    NoInstallKey = 31,
    /// The server's name does not resolve.
    Dns = 40,
    /// Nothing listens at the server's address.
    ConnectionRefused = 41,
    /// The server did not answer in time.
    Timeout = 42,
    /// TLS failed.
    Tls = 43,
    /// Another network failure, or an HTTP error that is not a nodelock answer.
    Network = 44,
    /// `doctor` found problems.
    DoctorProblems = 45,
}

impl Exit {
    /// The stable string code in `--json` errors.
    pub fn code(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::NoMatch => "no-match",
            Exit::Usage => "usage",
            Exit::BadInput => "bad-input",
            Exit::Io => "io",
            Exit::NoIdentifier => "no-identifier",
            Exit::BadSignature => "bad-signature",
            Exit::UnknownSigner => "unknown-signer",
            Exit::WrongProduct => "wrong-product",
            Exit::NotYetValid => "not-yet-valid",
            Exit::Expired => "expired",
            Exit::MaintenanceEnded => "maintenance-ended",
            Exit::OtherMachine => "other-machine",
            Exit::ClockSetBack => "clock-set-back",
            Exit::NotFound => "not-found",
            Exit::OlderLicense => "older-license",
            Exit::Exists => "exists",
            Exit::BadActivationKey => "bad-activation-key",
            Exit::UnknownKey => "unknown-key",
            Exit::NoFreeSeat => "no-free-seat",
            Exit::EntitlementExpired => "entitlement-expired",
            Exit::LimitReached => "limit-reached",
            Exit::Revoked => "revoked",
            Exit::NotRequested => "not-requested",
            Exit::WrongInstallKey => "wrong-install-key",
            Exit::NotInstalled => "not-installed",
            Exit::AlreadyEnded => "already-ended",
            Exit::NoInstallKey => "no-install-key",
            Exit::Dns => "dns",
            Exit::ConnectionRefused => "connection-refused",
            Exit::Timeout => "timeout",
            Exit::Tls => "tls",
            Exit::Network => "network",
            Exit::DoctorProblems => "problems",
        }
    }
}

/// A failure: an exit code and one sentence saying what is wrong and what to do.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> CliError {
        CliError {
            exit,
            message: message.into(),
        }
    }
}

impl From<EnvelopeError> for CliError {
    fn from(e: EnvelopeError) -> CliError {
        let exit = match e {
            EnvelopeError::Io { .. } => Exit::Io,
            EnvelopeError::BadSignature => Exit::BadSignature,
            EnvelopeError::UnknownSigner(_) => Exit::UnknownSigner,
            _ => Exit::BadInput,
        };
        CliError::new(exit, e.to_string())
    }
}

impl From<KeyError> for CliError {
    fn from(e: KeyError) -> CliError {
        let exit = match e {
            KeyError::Io { .. } | KeyError::Random(_) => Exit::Io,
            KeyError::Exists { .. } => Exit::Exists,
            KeyError::BadSignature | KeyError::HighS => Exit::BadSignature,
            _ => Exit::BadInput,
        };
        CliError::new(exit, e.to_string())
    }
}

impl From<FactsError> for CliError {
    fn from(e: FactsError) -> CliError {
        let exit = if matches!(e, FactsError::Io { .. }) {
            Exit::Io
        } else {
            Exit::BadInput
        };
        CliError::new(exit, e.to_string())
    }
}

impl From<FingerprintError> for CliError {
    fn from(e: FingerprintError) -> CliError {
        let exit = if matches!(e, FingerprintError::NoIdentifier) {
            Exit::NoIdentifier
        } else {
            Exit::BadInput
        };
        CliError::new(exit, e.to_string())
    }
}

impl From<Denial> for CliError {
    fn from(d: Denial) -> CliError {
        let exit = match d {
            Denial::WrongProduct { .. } => Exit::WrongProduct,
            Denial::OtherMachine { .. } => Exit::OtherMachine,
            Denial::Revoked { .. } => Exit::Revoked,
            Denial::ClockSetBack { .. } => Exit::ClockSetBack,
            Denial::NotYetValid { .. } => Exit::NotYetValid,
            Denial::Expired { .. } => Exit::Expired,
            Denial::MaintenanceEnded { .. } => Exit::MaintenanceEnded,
        };
        CliError::new(exit, d.to_string())
    }
}

impl From<LicenseError> for CliError {
    fn from(e: LicenseError) -> CliError {
        match e {
            LicenseError::Envelope(e) => e.into(),
            LicenseError::Fingerprint(e) => e.into(),
            other => CliError::new(Exit::BadInput, other.to_string()),
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> CliError {
        match e {
            StoreError::License(e) => e.into(),
            StoreError::Denied(d) => d.into(),
            StoreError::Io { .. } => CliError::new(Exit::Io, e.to_string()),
            StoreError::NotFound { .. } => CliError::new(Exit::NotFound, e.to_string()),
            StoreError::Older { .. } => CliError::new(Exit::OlderLicense, e.to_string()),
            StoreError::NoTrustRoots => CliError::new(Exit::UnknownSigner, e.to_string()),
            StoreError::NotRequested { .. } => CliError::new(Exit::NotRequested, e.to_string()),
            StoreError::NotInstalled { .. } => CliError::new(Exit::NotInstalled, e.to_string()),
            StoreError::NoInstallKey { .. } => CliError::new(Exit::NoInstallKey, e.to_string()),
            StoreError::Activation(e) => e.into(),
            StoreError::Key(e) => e.into(),
        }
    }
}

impl From<ActivationError> for CliError {
    fn from(e: ActivationError) -> CliError {
        match e {
            ActivationError::Envelope(e) => e.into(),
            ActivationError::Fingerprint(e) => e.into(),
            ActivationError::Key(_) => CliError::new(Exit::BadActivationKey, e.to_string()),
            ActivationError::Invalid { .. } => CliError::new(Exit::BadInput, e.to_string()),
        }
    }
}

impl From<LedgerError> for CliError {
    fn from(e: LedgerError) -> CliError {
        let exit = match &e {
            LedgerError::Document(_) | LedgerError::License(_) | LedgerError::NonceReuse => Exit::BadInput,
            LedgerError::Database(_) | LedgerError::Io { .. } | LedgerError::NewerSchema { .. } => Exit::Io,
            LedgerError::Key(_) | LedgerError::Unavailable(_) => Exit::Io,
            LedgerError::UnknownKey => Exit::UnknownKey,
            LedgerError::EntitlementExpired { .. } => Exit::EntitlementExpired,
            LedgerError::NoFreeSeat { .. } => Exit::NoFreeSeat,
            LedgerError::TransferLimit { .. } | LedgerError::ResetLimit { .. } => Exit::LimitReached,
            LedgerError::UnknownActivation(_) | LedgerError::UnknownLicense(_) => Exit::NotInstalled,
            LedgerError::WrongInstallKey(_) => Exit::WrongInstallKey,
            LedgerError::AlreadyEnded { .. } => Exit::AlreadyEnded,
        };
        match e {
            LedgerError::Document(d) => d.into(),
            other => CliError::new(exit, other.to_string()),
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> CliError {
        let exit = match &e {
            ClientError::BadUrl(_) => Exit::Usage,
            ClientError::Dns { .. } => Exit::Dns,
            ClientError::ConnectionRefused { .. } => Exit::ConnectionRefused,
            ClientError::Timeout { .. } => Exit::Timeout,
            ClientError::Tls { .. } => Exit::Tls,
            ClientError::Network { .. } | ClientError::Http { .. } => Exit::Network,
            ClientError::Refused { code, .. } => match code.as_str() {
                "unknown-key" => Exit::UnknownKey,
                "no-free-seat" => Exit::NoFreeSeat,
                "entitlement-expired" => Exit::EntitlementExpired,
                "transfer-limit" | "reset-limit" => Exit::LimitReached,
                "bad-activation-key" => Exit::BadActivationKey,
                "wrong-install-key" => Exit::WrongInstallKey,
                "unknown-license" => Exit::NotInstalled,
                "already-ended" => Exit::AlreadyEnded,
                "bad-signature" => Exit::BadSignature,
                _ => Exit::BadInput,
            },
        };
        CliError::new(exit, e.to_string())
    }
}
