//! How each library error ends the command. The codes themselves are the
//! library's registry (`nodelock::base::codes`), checked against the README.

pub use nodelock::base::codes::Exit;
use nodelock::base::codes::api_code;
use nodelock::documents::activation::ActivationError;
use nodelock::documents::license::LicenseError;
use nodelock::format::{EnvelopeError, KeyError};
use nodelock::machine::facts::FactsError;
use nodelock::machine::fingerprint::FingerprintError;
use nodelock::online::client::ClientError;
use nodelock::vendor::ledger::LedgerError;
use nodelock::workstation::check::Denial;
use nodelock::workstation::store::StoreError;

/// A failure: an exit code and one sentence saying what is wrong and what to do.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
    /// Fields a script needs besides the error (a file left behind), added
    /// to the JSON output next to `error`.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> CliError {
        CliError {
            exit,
            message: message.into(),
            fields: serde_json::Map::new(),
        }
    }

    /// The same error with `name` in its JSON output.
    pub fn with_field(mut self, name: &str, value: impl Into<serde_json::Value>) -> CliError {
        self.fields.insert(name.to_owned(), value.into());
        self
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
        CliError::new(d.exit(), d.to_string())
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
            StoreError::Io { .. } | StoreError::ClockDamaged { .. } => CliError::new(Exit::Io, e.to_string()),
            StoreError::NotFound { .. } => CliError::new(Exit::NotFound, e.to_string()),
            StoreError::Older { .. } => CliError::new(Exit::OlderLicense, e.to_string()),
            StoreError::NoTrustRoots => CliError::new(Exit::UnknownSigner, e.to_string()),
            StoreError::NotRequested { .. } => CliError::new(Exit::NotRequested, e.to_string()),
            StoreError::NotInstalled { .. } => CliError::new(Exit::NotInstalled, e.to_string()),
            StoreError::NoInstallKey { .. } => CliError::new(Exit::NoInstallKey, e.to_string()),
            StoreError::StaleTime(_) => CliError::new(Exit::StaleTime, e.to_string()),
            StoreError::PoolLicense { .. } => CliError::new(Exit::NotFound, e.to_string()),
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
            LedgerError::BadSpec(_) => Exit::Usage,
            LedgerError::HardwareIdRequired => Exit::HardwareIdRequired,
            LedgerError::NotThisMachine(_) => Exit::OtherMachine,
            LedgerError::UnknownKey => Exit::UnknownKey,
            LedgerError::EntitlementExpired { .. } => Exit::EntitlementExpired,
            LedgerError::NoFreeSeat { .. } => Exit::NoFreeSeat,
            LedgerError::TransferLimit { .. } | LedgerError::ResetLimit { .. } => Exit::LimitReached,
            LedgerError::UnknownActivation(_)
            | LedgerError::UnknownLicense(_)
            | LedgerError::UnknownEntitlement(_) => Exit::NotInstalled,
            LedgerError::Suspended(_) => Exit::EntitlementExpired,
            LedgerError::WrongInstallKey(_) => Exit::WrongInstallKey,
            LedgerError::AlreadyEnded { .. } | LedgerError::RequestSpent { .. } => Exit::AlreadyEnded,
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
            // A code this client does not know comes from a newer server:
            // the document was refused, so it is bad input here.
            ClientError::Refused { code, .. } => api_code(code).map_or(Exit::BadInput, |c| c.exit),
        };
        CliError::new(exit, e.to_string())
    }
}
