//! Signed time (docs/FORMAT.md §13-14): a workstation whose clock was once
//! wrong asks the vendor what time it is, and gets an answer it can trust.
//!
//! The clock request carries a fresh nonce the store keeps; the vendor's time
//! statement signs its own clock's time together with that nonce. A store
//! accepts a statement only for a nonce it is still waiting on, so a
//! statement cannot be kept and replayed later to wind the store's clock
//! back (`workstation::store` holds the rest of that rule). The vendor keeps
//! no state for either: a statement says only what time it is.
//!
//! The request is sealed with a one-time key nobody verifies: the envelope
//! needs a signer, and nothing in the request is a claim the vendor relies on
//! (the nonce is echoed, `at` is shown back to the workstation).

use serde::{Deserialize, Serialize};

use crate::base::clock::Timestamp;
use crate::documents::activation::{ActivationError, NONCE_LEN, VERSION, client_name, decode, invalid, seal};
use crate::format::envelope::{self, DocumentKind};
use crate::format::{KeyId, Keyring, PrivateKey};

/// The clock request payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
    /// Payload version.
    pub v: u32,
    /// Random, 16 bytes; the statement carries it back.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// The workstation's clock when it made the request (shown back to it).
    pub at: Timestamp,
    /// Client software and version.
    pub client: String,
}

/// The time statement payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeStatement {
    /// Payload version.
    pub v: u32,
    /// The nonce of the clock request it answers.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// The vendor's time when it answered, Unix seconds.
    pub time: Timestamp,
    /// The workstation's clock as its request said (echoed, informative).
    pub request_at: Timestamp,
}

/// Makes a clock request for `nonce`, sealed with the one-time key `seal_key`.
pub fn make_clock_request(
    nonce: [u8; NONCE_LEN],
    now: Timestamp,
    seal_key: &PrivateKey,
) -> Result<(ClockRequest, String), ActivationError> {
    let request = ClockRequest {
        v: VERSION,
        nonce: nonce.to_vec(),
        at: now,
        client: client_name(),
    };
    let armored = seal(DocumentKind::ClockRequest, &request, seal_key)?;
    Ok((request, armored))
}

/// Reads a clock request. Its seal is not verified (module docs); its
/// payload must still be a well-formed request.
pub fn open_clock_request(input: &[u8]) -> Result<ClockRequest, ActivationError> {
    let kind = DocumentKind::ClockRequest;
    let signed = envelope::parse(input, kind)?;
    let request: ClockRequest = decode(kind, signed.untrusted_payload())?;
    if request.v != VERSION || request.nonce.len() != NONCE_LEN {
        return Err(invalid(kind, "unsupported version or bad nonce"));
    }
    Ok(request)
}

/// The vendor's answer to `request`: its own time `now`, signed.
pub fn answer_clock_request(
    request: &ClockRequest,
    vendor: &PrivateKey,
    now: Timestamp,
) -> Result<(TimeStatement, String), ActivationError> {
    let statement = TimeStatement {
        v: VERSION,
        nonce: request.nonce.clone(),
        time: now,
        request_at: request.at,
    };
    let armored = seal(DocumentKind::TimeStatement, &statement, vendor)?;
    Ok((statement, armored))
}

/// A time statement whose signature verified with a trusted vendor key.
#[derive(Debug, Clone)]
pub struct VerifiedTime {
    statement: TimeStatement,
    signer: KeyId,
}

impl VerifiedTime {
    /// The signed payload.
    pub fn statement(&self) -> &TimeStatement {
        &self.statement
    }

    /// The vendor key that signed it.
    pub fn signer(&self) -> KeyId {
        self.signer
    }
}

/// Verifies a time statement against the trusted vendor keys.
pub fn verify_time_statement(input: &[u8], keyring: &Keyring) -> Result<VerifiedTime, ActivationError> {
    let kind = DocumentKind::TimeStatement;
    let verified = envelope::parse(input, kind)?.verify(keyring)?;
    let statement: TimeStatement = decode(kind, verified.payload())?;
    if statement.v != VERSION || statement.nonce.len() != NONCE_LEN {
        return Err(invalid(kind, "unsupported version or bad nonce"));
    }
    Ok(VerifiedTime {
        statement,
        signer: verified.signer(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_answers_its_request_and_verifies_only_with_the_vendor_key() {
        let one_time = PrivateKey::generate().unwrap();
        let vendor = PrivateKey::generate().unwrap();
        let (_, text) = make_clock_request([3; 16], 1_790_000_000, &one_time).unwrap();
        let request = open_clock_request(text.as_bytes()).unwrap();
        assert_eq!(request.at, 1_790_000_000);
        let (_, statement) = answer_clock_request(&request, &vendor, 1_780_000_000).unwrap();
        let mut ring = Keyring::new();
        ring.add(vendor.public());
        let verified = verify_time_statement(statement.as_bytes(), &ring).unwrap();
        assert_eq!(verified.statement().nonce, vec![3; 16]);
        assert_eq!(verified.statement().time, 1_780_000_000);
        assert_eq!(verified.statement().request_at, 1_790_000_000);

        let mut strangers = Keyring::new();
        strangers.add(one_time.public());
        assert!(verify_time_statement(statement.as_bytes(), &strangers).is_err());
        // A request is not a statement, and a statement is not a license.
        assert!(verify_time_statement(text.as_bytes(), &ring).is_err());
        assert!(crate::documents::license::verify(statement.as_bytes(), &ring).is_err());
    }
}
