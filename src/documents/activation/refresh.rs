//! The refresh request (docs/FORMAT.md §12): a workstation asks for its
//! license again, with the vendor's current terms and a new issue time,
//! signed by the license's install key, like a deactivation. The vendor
//! answers only while the activation holds its seat, so a license that must
//! be revalidated stops working on a machine whose seat was given back or
//! reset, even when its file was restored from a backup.

use serde::{Deserialize, Serialize};

use super::request::CompactFingerprint;
use super::{ActivationError, NONCE_LEN, VERSION, client_name, decode, invalid, seal};
use crate::base::clock::Timestamp;
use crate::format::envelope::{self, DocumentKind, SignedDocument};
use crate::format::{PrivateKey, PublicKey};
use crate::machine::fingerprint::Fingerprint;

/// The refresh request payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Payload version.
    pub v: u32,
    /// The license to refresh.
    pub license_id: String,
    /// Random, 16 bytes; the refreshed license carries it as `request_nonce`.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// When (informative).
    pub at: Timestamp,
    /// Client software and version.
    pub client: String,
    /// The workstation's fingerprint now: the vendor re-binds to it when it
    /// still matches the license's binding, so the license follows the
    /// machine's benign changes instead of drifting away from them.
    pub fp: CompactFingerprint,
}

/// Makes a refresh request signed by the license's install key.
pub fn make_refresh(
    license_id: &str,
    fingerprint: &Fingerprint,
    install: &PrivateKey,
    nonce: [u8; NONCE_LEN],
    now: Timestamp,
) -> Result<(RefreshRequest, String), ActivationError> {
    let request = RefreshRequest {
        v: VERSION,
        license_id: license_id.to_owned(),
        nonce: nonce.to_vec(),
        at: now,
        client: client_name(),
        fp: CompactFingerprint::from_fingerprint(fingerprint),
    };
    let armored = seal(DocumentKind::RefreshRequest, &request, install)?;
    Ok((request, armored))
}

/// A refresh request read but not verified: the key that must have signed
/// it is the one recorded for the license it names.
#[derive(Debug, Clone)]
pub struct UnverifiedRefresh {
    signed: SignedDocument,
    claimed: RefreshRequest,
}

impl UnverifiedRefresh {
    /// The license id it names; a claim until verified.
    pub fn claimed_license_id(&self) -> &str {
        &self.claimed.license_id
    }

    /// Verifies with the install key recorded at activation.
    pub fn verify(self, install_key: &PublicKey) -> Result<VerifiedRefresh, ActivationError> {
        let kind = DocumentKind::RefreshRequest;
        let verified = self.signed.verify_with(install_key)?;
        let request: RefreshRequest = decode(kind, verified.payload())?;
        if request.v != VERSION || request.nonce.len() != NONCE_LEN {
            return Err(invalid(kind, "unsupported version or bad nonce"));
        }
        let fingerprint = request.fp.to_fingerprint(kind)?;
        Ok(VerifiedRefresh { request, fingerprint })
    }
}

/// A refresh request whose signature verified with its license's install key.
#[derive(Debug, Clone)]
pub struct VerifiedRefresh {
    request: RefreshRequest,
    fingerprint: Fingerprint,
}

impl VerifiedRefresh {
    /// The signed payload.
    pub fn payload(&self) -> &RefreshRequest {
        &self.request
    }

    /// The workstation's fingerprint now.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
}

/// Parses a refresh request (signature checked later, see [`UnverifiedRefresh`]).
pub fn open_refresh(input: &[u8]) -> Result<UnverifiedRefresh, ActivationError> {
    let kind = DocumentKind::RefreshRequest;
    let signed = envelope::parse(input, kind)?;
    let claimed: RefreshRequest = decode(kind, signed.untrusted_payload())?;
    Ok(UnverifiedRefresh { signed, claimed })
}
