//! Giving a license back (docs/FORMAT.md §9-10): the deactivation request,
//! signed by the license's install key, and the vendor's receipt for it.

use serde::{Deserialize, Serialize};

use super::{ActivationError, NONCE_LEN, VERSION, client_name, decode, invalid, seal};
use crate::base::clock::Timestamp;
use crate::format::envelope::{self, DocumentKind, SignedDocument};
use crate::format::{KeyId, Keyring, PrivateKey, PublicKey};

/// The deactivation request payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeactivationRequest {
    /// Payload version.
    pub v: u32,
    /// The license given up.
    pub license_id: String,
    /// Random, 16 bytes.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// When (informative).
    pub at: Timestamp,
    /// Client software and version.
    pub client: String,
}

/// Makes a deactivation request signed by the license's install key.
pub fn make_deactivation(
    license_id: &str,
    install: &PrivateKey,
    nonce: [u8; NONCE_LEN],
    now: Timestamp,
) -> Result<(DeactivationRequest, String), ActivationError> {
    let request = DeactivationRequest {
        v: VERSION,
        license_id: license_id.to_owned(),
        nonce: nonce.to_vec(),
        at: now,
        client: client_name(),
    };
    let armored = seal(DocumentKind::DeactivationRequest, &request, install)?;
    Ok((request, armored))
}

/// A deactivation request read but not verified yet. Which key must have
/// signed it depends on what it claims (the license it names), so the vendor
/// looks up the install key recorded for [`claimed_license_id`](Self::claimed_license_id)
/// and calls [`verify`](Self::verify); nothing else in it may be used before that.
#[derive(Debug, Clone)]
pub struct UnverifiedDeactivation {
    signed: SignedDocument,
    claimed: DeactivationRequest,
}

impl UnverifiedDeactivation {
    /// The license id the request names; a claim until verified.
    pub fn claimed_license_id(&self) -> &str {
        &self.claimed.license_id
    }

    /// The id of the key that says it signed; a claim until verified.
    pub fn claimed_key_id(&self) -> KeyId {
        self.signed.key_id()
    }

    /// Verifies with the install key recorded at activation.
    pub fn verify(self, install_key: &PublicKey) -> Result<VerifiedDeactivation, ActivationError> {
        let kind = DocumentKind::DeactivationRequest;
        let verified = self.signed.verify_with(install_key)?;
        let request: DeactivationRequest = decode(kind, verified.payload())?;
        if request.v != VERSION || request.nonce.len() != NONCE_LEN {
            return Err(invalid(kind, "unsupported version or bad nonce"));
        }
        Ok(VerifiedDeactivation {
            request,
            envelope: verified.envelope().to_vec(),
        })
    }
}

/// A deactivation request whose signature verified with the install key of
/// the license it names; only [`UnverifiedDeactivation::verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedDeactivation {
    request: DeactivationRequest,
    envelope: Vec<u8>,
}

impl VerifiedDeactivation {
    /// The signed payload.
    pub fn payload(&self) -> &DeactivationRequest {
        &self.request
    }

    /// The binary envelope exactly as received and verified.
    pub fn envelope(&self) -> &[u8] {
        &self.envelope
    }
}

/// Parses a deactivation request (signature checked later, see [`UnverifiedDeactivation`]).
pub fn open_deactivation(input: &[u8]) -> Result<UnverifiedDeactivation, ActivationError> {
    let kind = DocumentKind::DeactivationRequest;
    let signed = envelope::parse(input, kind)?;
    let claimed: DeactivationRequest = decode(kind, signed.untrusted_payload())?;
    Ok(UnverifiedDeactivation { signed, claimed })
}

/// The vendor's deactivation receipt payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeactivationReceipt {
    /// Payload version.
    pub v: u32,
    /// The license given up.
    pub license_id: String,
    /// The ledger's activation id.
    pub activation_id: String,
    /// The entitlement whose seat was freed.
    pub entitlement: String,
    /// When the vendor recorded it.
    pub deactivated_at: Timestamp,
    /// The nonce of the deactivation request it answers.
    #[serde(with = "serde_bytes")]
    pub request_nonce: Vec<u8>,
    /// Transfers used on the entitlement, this one included.
    pub transfers_used: u32,
    /// Transfers the entitlement allows.
    pub max_transfers: u32,
}

/// Signs a receipt; returns it armored.
pub fn make_receipt(receipt: &DeactivationReceipt, vendor: &PrivateKey) -> Result<String, ActivationError> {
    seal(DocumentKind::DeactivationReceipt, receipt, vendor)
}

/// A receipt whose vendor signature verified; only [`open_receipt`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedReceipt {
    receipt: DeactivationReceipt,
    signer: KeyId,
}

impl VerifiedReceipt {
    /// The signed receipt.
    pub fn receipt(&self) -> &DeactivationReceipt {
        &self.receipt
    }

    /// The vendor key that signed it.
    pub fn signer(&self) -> KeyId {
        self.signer
    }

    /// The receipt, for keeping after the verification that vouched for it.
    pub fn into_receipt(self) -> DeactivationReceipt {
        self.receipt
    }
}

/// Verifies a vendor receipt against `keyring`.
pub fn open_receipt(input: &[u8], keyring: &Keyring) -> Result<VerifiedReceipt, ActivationError> {
    let kind = DocumentKind::DeactivationReceipt;
    let verified = envelope::parse(input, kind)?.verify(keyring)?;
    Ok(VerifiedReceipt {
        receipt: decode(kind, verified.payload())?,
        signer: verified.signer(),
    })
}
