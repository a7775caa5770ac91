//! The one registry of nodelock's stable codes: the exit codes of the
//! command (with the `error.code` string of its `--json` errors) and the codes
//! of the HTTP API's errors (with their status and the exit code a client
//! ends with when the server answers one). Installers, scripts and other
//! clients branch on them, so an entry never changes meaning; the README's
//! and docs/API.md's tables are checked against these by the tests below.

/// Defines [`Exit`] from `Name = number => "code"` lines.
macro_rules! exits {
    ($($(#[$doc:meta])* $name:ident = $number:literal => $code:literal,)+) => {
        /// Every way the command can end.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Exit {
            $($(#[$doc])* $name = $number,)+
        }

        impl Exit {
            /// Every exit, in number order.
            pub const ALL: &[Exit] = &[$(Exit::$name),+];

            /// The stable string of `--json` errors.
            pub fn code(self) -> &'static str {
                match self {
                    $(Exit::$name => $code,)+
                }
            }

            /// The process exit status.
            pub fn number(self) -> u8 {
                self as u8
            }
        }
    };
}

exits! {
    /// Success; the license is granted; the binding holds.
    Ok = 0 => "ok",
    /// `fingerprint compare`: the binding would not hold.
    NoMatch = 1 => "no-match",
    /// Bad command line (clap's own code).
    Usage = 2 => "usage",
    /// Input that is not what it should be: unreadable, damaged, wrong kind, too large.
    BadInput = 3 => "bad-input",
    /// The file system failed.
    Io = 4 => "io",
    /// This machine has no identifier.
    NoIdentifier = 5 => "no-identifier",
    /// The signature does not match.
    BadSignature = 10 => "bad-signature",
    /// Signed by a key that is not trusted.
    UnknownSigner = 11 => "unknown-signer",
    /// For another product.
    WrongProduct = 12 => "wrong-product",
    /// Not valid yet.
    NotYetValid = 13 => "not-yet-valid",
    /// After the license's end.
    Expired = 14 => "expired",
    /// Maintenance ended before this build.
    MaintenanceEnded = 15 => "maintenance-ended",
    /// Bound to another machine.
    OtherMachine = 16 => "other-machine",
    /// The clock is earlier than a time already seen.
    ClockSetBack = 17 => "clock-set-back",
    /// No license installed for the product.
    NotFound = 18 => "not-found",
    /// A newer license is installed.
    OlderLicense = 19 => "older-license",
    /// A file that must not be overwritten exists.
    Exists = 20 => "exists",
    /// The activation key is malformed or has a typo (caught locally).
    BadActivationKey = 21 => "bad-activation-key",
    /// No entitlement has this activation key.
    UnknownKey = 22 => "unknown-key",
    /// All seats are taken.
    NoFreeSeat = 23 => "no-free-seat",
    /// The entitlement's term is over.
    EntitlementExpired = 24 => "entitlement-expired",
    /// A transfer or reset limit is used up.
    LimitReached = 25 => "limit-reached",
    /// The vendor revoked the license.
    Revoked = 26 => "revoked",
    /// An answered license for a request this store did not make.
    NotRequested = 27 => "not-requested",
    /// A deactivation signed by a key other than the license's install key.
    WrongInstallKey = 28 => "wrong-install-key",
    /// No such license installed, or no such activation/license in the ledger.
    NotInstalled = 29 => "not-installed",
    /// The activation already ended.
    AlreadyEnded = 30 => "already-ended",
    /// The license was not activated by request; it cannot be deactivated offline.
    NoInstallKey = 31 => "no-install-key",
    /// The entitlement requires a hardware identifier and this machine has none.
    HardwareIdRequired = 32 => "hardware-id-required",
    /// The license must be refreshed with the vendor first.
    RevalidationDue = 33 => "revalidation-due",
    /// Vendor: there is no ledger at the path given (`vendor init` makes one).
    NoLedger = 34 => "no-ledger",
    /// A time statement that answers no current clock request of this store.
    StaleTime = 35 => "stale-time",
    /// A floating lease ended (lapsed, checked in, returned or removed).
    LeaseLost = 36 => "lease-lost",
    /// The pool server's policy file refuses this client.
    PolicyDenied = 37 => "policy-denied",
    /// The server's name does not resolve.
    Dns = 40 => "dns",
    /// Nothing listens at the server's address.
    ConnectionRefused = 41 => "connection-refused",
    /// The server did not answer in time.
    Timeout = 42 => "timeout",
    /// TLS failed.
    Tls = 43 => "tls",
    /// Another network failure, or an HTTP error that is not a nodelock answer.
    Network = 44 => "network",
    /// `doctor` found problems.
    DoctorProblems = 45 => "problems",
}

/// One error code of the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiCode {
    /// The `error.code` string (and `X-Nodelock-Code` header).
    pub code: &'static str,
    /// The HTTP status it comes with.
    pub status: u16,
    /// How `nodelock activate`/`deactivate` ends when the server answers it.
    pub exit: Exit,
}

const fn api(code: &'static str, status: u16, exit: Exit) -> ApiCode {
    ApiCode { code, status, exit }
}

/// Every code the activation server and the pool server answer with (docs/API.md).
pub const API_CODES: &[ApiCode] = &[
    api("bad-document", 400, Exit::BadInput),
    api("bad-signature", 400, Exit::BadSignature),
    api("bad-activation-key", 400, Exit::BadActivationKey),
    api("bad-body", 400, Exit::BadInput),
    api("too-large", 413, Exit::BadInput),
    api("wrong-kind", 415, Exit::BadInput),
    api("unknown-key", 404, Exit::UnknownKey),
    api("unknown-license", 404, Exit::NotInstalled),
    api("not-found", 404, Exit::Network),
    api("entitlement-expired", 403, Exit::EntitlementExpired),
    api("entitlement-suspended", 403, Exit::EntitlementExpired),
    api("wrong-install-key", 403, Exit::WrongInstallKey),
    api("hardware-id-required", 403, Exit::HardwareIdRequired),
    api("other-machine", 403, Exit::OtherMachine),
    api("no-free-seat", 409, Exit::NoFreeSeat),
    api("transfer-limit", 409, Exit::LimitReached),
    api("reset-limit", 409, Exit::LimitReached),
    api("nonce-reuse", 409, Exit::BadInput),
    api("already-ended", 409, Exit::AlreadyEnded),
    api("slow-request", 408, Exit::Timeout),
    api("rate-limited", 429, Exit::Network),
    api("unavailable", 503, Exit::Network),
    // The pool server (`nodelock pool serve`).
    api("not-served", 404, Exit::NotFound),
    api("pool-expired", 403, Exit::Expired),
    api("all-seats-in-use", 409, Exit::NoFreeSeat),
    api("borrow-refused", 403, Exit::LimitReached),
    api("policy-denied", 403, Exit::PolicyDenied),
    api("unknown-lease", 404, Exit::NotInstalled),
    api("wrong-holder-key", 403, Exit::WrongInstallKey),
    api("lease-ended", 409, Exit::LeaseLost),
    api("replayed", 409, Exit::AlreadyEnded),
    api("token-needed", 401, Exit::Usage),
    api("pool-clock-set-back", 503, Exit::ClockSetBack),
];

/// The API entry for `code`, if the server can answer it.
pub fn api_code(code: &str) -> Option<&'static ApiCode> {
    API_CODES.iter().find(|c| c.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `| a | b | … |` rows of the Markdown table under `heading`.
    fn table(doc: &str, heading: &str) -> Vec<Vec<String>> {
        let start = doc.find(heading).unwrap();
        doc[start..]
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2) // header and rule
            .map(|l| {
                l.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_owned())
                    .collect()
            })
            .collect()
    }

    fn unquote(cell: &str) -> Vec<String> {
        cell.split(',')
            .map(|c| c.trim().trim_matches('`').to_owned())
            .filter(|c| !c.is_empty())
            .collect()
    }

    #[test]
    fn the_readme_exit_table_is_the_registry() {
        let readme = include_str!("../../README.md");
        let rows = table(readme, "## Exit codes");
        let documented: Vec<(u8, String)> = rows
            .iter()
            .map(|r| {
                (
                    r[0].parse().unwrap(),
                    unquote(&r[1]).pop().unwrap_or_else(|| "ok".into()),
                )
            })
            .collect();
        let registry: Vec<(u8, String)> = Exit::ALL
            .iter()
            .map(|e| (e.number(), e.code().to_owned()))
            .collect();
        assert_eq!(documented, registry);
    }

    #[test]
    fn the_api_table_is_the_registry() {
        let doc = include_str!("../../docs/API.md");
        let mut documented: Vec<(String, u16)> = table(doc, "Codes are stable")
            .iter()
            .flat_map(|r| {
                let status: u16 = r[0].parse().unwrap();
                unquote(&r[1]).into_iter().map(move |c| (c, status))
            })
            .collect();
        let mut registry: Vec<(String, u16)> =
            API_CODES.iter().map(|c| (c.code.to_owned(), c.status)).collect();
        documented.sort();
        registry.sort();
        assert_eq!(documented, registry);
    }

    #[test]
    fn numbers_and_codes_are_unique() {
        for (i, a) in Exit::ALL.iter().enumerate() {
            for b in &Exit::ALL[i + 1..] {
                assert!(a.number() != b.number() && a.code() != b.code(), "{a:?} {b:?}");
            }
        }
        for (i, a) in API_CODES.iter().enumerate() {
            assert!(API_CODES[i + 1..].iter().all(|b| b.code != a.code), "{}", a.code);
        }
    }
}
