//! Floating licenses (docs/FORMAT.md §15-17): a client asks a pool server
//! for a seat, the server answers with a lease, and the client later renews,
//! checks in or returns it.
//!
//! The chain of trust needs nothing but the vendor's key: the vendor signs
//! the pool license (kind `floating-pool`), which carries the install key of
//! the pool server it was activated on; that key signs leases. A lease can
//! therefore only be minted by a machine holding an activated pool's install
//! key, and a lease from one pool never verifies against another pool's
//! license.
//!
//! Requests and updates are signed by a *holder key* the client makes for
//! the lease (its public half is in the request, and so in the lease): only
//! the holder can renew, check in or return, so a lease id seen on a status
//! page is not enough. For a borrow, that key also signs the offline return.

use serde::{Deserialize, Serialize};

use crate::base::clock::Timestamp;
use crate::documents::activation::{
    ActivationError, CompactFingerprint, NONCE_LEN, VERSION, client_name, decode, invalid, seal,
};
use crate::documents::license::{self, LicenseKind, VerifiedLicense};
use crate::format::envelope::{self, DocumentKind};
use crate::format::{KeyId, Keyring, PrivateKey, PublicKey};
use crate::machine::fingerprint::Fingerprint;

/// Longest user or host label a client may send (shown on status pages).
pub const MAX_LABEL: usize = 64;

/// How a lease is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaseMode {
    /// While the application runs, renewed every few minutes.
    Online,
    /// Taken out for offline use, until its end.
    Borrowed,
}

impl LeaseMode {
    /// The mode as documents and output write it.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseMode::Online => "online",
            LeaseMode::Borrowed => "borrowed",
        }
    }
}

/// What a holder asks about its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaseOp {
    /// Extend an online lease.
    Renew,
    /// Give an online lease back.
    Checkin,
    /// Give a borrow back early (online, or carried as a file).
    Return,
}

/// A client's request for a seat (kind `lease-request`), signed by the
/// holder key it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// Payload version.
    pub v: u32,
    /// The product wanted.
    pub product: String,
    /// Online or borrowed.
    pub mode: LeaseMode,
    /// For a borrow: how many days (0 for an online lease).
    pub days: u32,
    /// Random, 16 bytes; the lease carries it back.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// The client's clock (informative).
    pub at: Timestamp,
    /// Client software and version.
    pub client: String,
    /// The holder key, compressed SEC1.
    #[serde(with = "serde_bytes")]
    pub holder_key: Vec<u8>,
    /// The client machine's fingerprint (anchors and machine id).
    pub fp: CompactFingerprint,
    /// Who asks, as the client names them (shown to the admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The client's host name, as it names itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A lease (kind `lease`), signed by the pool server's install key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    /// Payload version.
    pub v: u32,
    /// Lease id, `S-` and 16 base32 characters.
    pub id: String,
    /// The pool license it was granted under.
    pub pool_license: String,
    /// The product.
    pub product: String,
    /// Features of the pool license.
    pub features: Vec<String>,
    /// Online or borrowed.
    pub mode: LeaseMode,
    /// The holder key, compressed SEC1: what renews, checks in and returns.
    #[serde(with = "serde_bytes")]
    pub holder_key: Vec<u8>,
    /// The client machine's fingerprint: the lease holds only there.
    pub fp: CompactFingerprint,
    /// The nonce of the request (or update) this lease answers.
    #[serde(with = "serde_bytes")]
    pub request_nonce: Vec<u8>,
    /// When the server granted or renewed it, in the server's time.
    pub issued_at: Timestamp,
    /// When it ends, in the server's time (exclusive).
    pub expires_at: Timestamp,
    /// The user label of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The host label of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A holder's word about its lease (kind `lease-update`), signed by the
/// holder key: renew, check in, or return (the offline return file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseUpdate {
    /// Payload version.
    pub v: u32,
    /// The lease.
    pub lease_id: String,
    /// What to do.
    pub op: LeaseOp,
    /// Random, 16 bytes: each update is answered once.
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// The client's clock (informative).
    pub at: Timestamp,
}

fn label_ok(label: &Option<String>) -> bool {
    label
        .as_deref()
        .is_none_or(|l| !l.is_empty() && l.len() <= MAX_LABEL && !l.chars().any(char::is_control))
}

/// Is `id` a well-formed lease id?
pub fn valid_lease_id(id: &str) -> bool {
    license::valid_id(id) && id.starts_with("S-")
}

/// What a client sends to take a seat.
pub struct Checkout<'a> {
    /// The product.
    pub product: &'a str,
    /// Online or borrowed.
    pub mode: LeaseMode,
    /// Borrow days (0 online).
    pub days: u32,
    /// This machine's fingerprint.
    pub fingerprint: &'a Fingerprint,
    /// User label.
    pub user: Option<String>,
    /// Host label.
    pub host: Option<String>,
}

/// Makes a lease request signed by `holder`.
pub fn make_lease_request(
    checkout: &Checkout<'_>,
    holder: &PrivateKey,
    nonce: [u8; NONCE_LEN],
    now: Timestamp,
) -> Result<(LeaseRequest, String), ActivationError> {
    let request = LeaseRequest {
        v: VERSION,
        product: checkout.product.to_owned(),
        mode: checkout.mode,
        days: checkout.days,
        nonce: nonce.to_vec(),
        at: now,
        client: client_name(),
        holder_key: holder.public().to_sec1_compressed(),
        fp: CompactFingerprint::from_fingerprint(checkout.fingerprint),
        user: checkout.user.clone(),
        host: checkout.host.clone(),
    };
    let kind = DocumentKind::LeaseRequest;
    if !label_ok(&request.user) || !label_ok(&request.host) {
        return Err(invalid(
            kind,
            "a user or host label is empty, too long or holds control characters",
        ));
    }
    let armored = seal(kind, &request, holder)?;
    Ok((request, armored))
}

/// A lease request whose signature verified with the holder key it carries.
#[derive(Debug, Clone)]
pub struct VerifiedLeaseRequest {
    request: LeaseRequest,
    holder: PublicKey,
    fingerprint: Fingerprint,
}

impl VerifiedLeaseRequest {
    /// The signed payload.
    pub fn request(&self) -> &LeaseRequest {
        &self.request
    }
    /// The holder key.
    pub fn holder(&self) -> &PublicKey {
        &self.holder
    }
    /// The client machine's fingerprint.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
}

/// Reads and verifies a lease request (self-signed by its holder key).
pub fn open_lease_request(input: &[u8]) -> Result<VerifiedLeaseRequest, ActivationError> {
    let kind = DocumentKind::LeaseRequest;
    let signed = envelope::parse(input, kind)?;
    let claimed: LeaseRequest = decode(kind, signed.untrusted_payload())?;
    let holder = PublicKey::from_sec1(&claimed.holder_key).map_err(|e| invalid(kind, e.to_string()))?;
    let verified = signed.verify_with(&holder)?;
    let request: LeaseRequest = decode(kind, verified.payload())?;
    if request.v != VERSION || request.nonce.len() != NONCE_LEN {
        return Err(invalid(kind, "unsupported version or bad nonce"));
    }
    if !license::valid_product(&request.product) {
        return Err(invalid(kind, "the product name is not valid"));
    }
    if (request.mode == LeaseMode::Online) != (request.days == 0) {
        return Err(invalid(kind, "a borrow names its days, an online lease none"));
    }
    if !label_ok(&request.user) || !label_ok(&request.host) {
        return Err(invalid(
            kind,
            "a user or host label is empty, too long or holds control characters",
        ));
    }
    let fingerprint = request.fp.to_fingerprint(kind)?;
    Ok(VerifiedLeaseRequest {
        request,
        holder,
        fingerprint,
    })
}

/// Signs `lease` with the pool server's install key.
pub fn sign_lease(lease: &Lease, install: &PrivateKey) -> Result<String, ActivationError> {
    seal(DocumentKind::Lease, lease, install)
}

/// A lease whose chain verified: vendor key → pool license → its install
/// key → the lease, naming that pool license and its product.
#[derive(Debug, Clone)]
pub struct VerifiedLease {
    lease: Lease,
    pool: VerifiedLicense,
    fingerprint: Fingerprint,
}

impl VerifiedLease {
    /// The lease terms.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }
    /// The pool license it was granted under (verified).
    pub fn pool(&self) -> &VerifiedLicense {
        &self.pool
    }
    /// The client machine the lease holds on.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
    /// Whether `key` is the lease's holder key. (Compared as the SEC1 bytes
    /// the lease carries: a check never needs the point itself.)
    pub fn held_by(&self, key: &PublicKey) -> bool {
        self.lease.holder_key == key.to_sec1_compressed()
    }
    /// The vendor key that signed the pool license.
    pub fn vendor(&self) -> KeyId {
        self.pool.signer()
    }
}

/// Verifies a lease against its pool license and the trusted vendor keys.
pub fn verify_lease(
    lease: &[u8],
    pool_license: &[u8],
    keyring: &Keyring,
) -> Result<VerifiedLease, ActivationError> {
    let kind = DocumentKind::Lease;
    let pool = license::verify(pool_license, keyring)
        .map_err(|e| invalid(kind, format!("its pool license does not verify: {e}")))?;
    if pool.license().kind != LicenseKind::FloatingPool {
        return Err(invalid(kind, "the license it names is not a floating pool's"));
    }
    let install = pool
        .install_key()
        .ok_or_else(|| invalid(kind, "the pool license carries no install key"))?;
    let verified = envelope::parse(lease, kind)?.verify_with(install)?;
    let lease: Lease = decode(kind, verified.payload())?;
    if lease.v != VERSION || lease.request_nonce.len() != NONCE_LEN || !valid_lease_id(&lease.id) {
        return Err(invalid(kind, "unsupported version, bad nonce or bad lease id"));
    }
    if lease.pool_license != pool.license().id || lease.product != pool.license().product {
        return Err(invalid(kind, "it was granted under another pool license"));
    }
    if lease.expires_at <= lease.issued_at {
        return Err(invalid(kind, "it ends before it starts"));
    }
    if lease.holder_key.len() != 33 {
        return Err(invalid(kind, "the holder key is not a compressed P-256 key"));
    }
    let fingerprint = lease.fp.to_fingerprint(kind)?;
    Ok(VerifiedLease {
        lease,
        pool,
        fingerprint,
    })
}

/// Makes a lease update signed by the holder key.
pub fn make_lease_update(
    lease_id: &str,
    op: LeaseOp,
    holder: &PrivateKey,
    nonce: [u8; NONCE_LEN],
    now: Timestamp,
) -> Result<(LeaseUpdate, String), ActivationError> {
    let update = LeaseUpdate {
        v: VERSION,
        lease_id: lease_id.to_owned(),
        op,
        nonce: nonce.to_vec(),
        at: now,
    };
    let armored = seal(DocumentKind::LeaseUpdate, &update, holder)?;
    Ok((update, armored))
}

/// A lease update read but not verified: the key that must have signed it
/// is the holder key the server recorded for the lease it names.
#[derive(Debug, Clone)]
pub struct UnverifiedLeaseUpdate {
    signed: envelope::SignedDocument,
    claimed: LeaseUpdate,
}

impl UnverifiedLeaseUpdate {
    /// The lease it names; a claim until verified.
    pub fn claimed_lease_id(&self) -> &str {
        &self.claimed.lease_id
    }

    /// Verifies with the holder key recorded for the lease.
    pub fn verify(self, holder: &PublicKey) -> Result<LeaseUpdate, ActivationError> {
        let kind = DocumentKind::LeaseUpdate;
        let verified = self.signed.verify_with(holder)?;
        let update: LeaseUpdate = decode(kind, verified.payload())?;
        if update.v != VERSION || update.nonce.len() != NONCE_LEN {
            return Err(invalid(kind, "unsupported version or bad nonce"));
        }
        Ok(update)
    }
}

/// Parses a lease update (verified later, see [`UnverifiedLeaseUpdate`]).
pub fn open_lease_update(input: &[u8]) -> Result<UnverifiedLeaseUpdate, ActivationError> {
    let kind = DocumentKind::LeaseUpdate;
    let signed = envelope::parse(input, kind)?;
    let claimed: LeaseUpdate = decode(kind, signed.untrusted_payload())?;
    if !valid_lease_id(&claimed.lease_id) {
        return Err(invalid(kind, "the lease id is not valid"));
    }
    Ok(UnverifiedLeaseUpdate { signed, claimed })
}
