//! The license document: what a vendor grants, to which machine, for how long.
//!
//! docs/FORMAT.md §4 specifies the payload. A [`VerifiedLicense`] can only come
//! out of [`verify`], so [`check`](check::check) cannot be handed a license whose
//! signature nobody looked at.

use serde::{Deserialize, Serialize};

use crate::base::clock::{CLOCK_TOLERANCE, Timestamp};
use crate::base::random::{self, Random};
use crate::format::codec;
use crate::format::envelope::{self, DocumentKind, EnvelopeError};
use crate::format::typeable;
use crate::format::{KeyId, Keyring, PrivateKey, PublicKey};
use crate::machine::fingerprint::{
    ALGORITHM_SALTED, Component, ComponentDigest, ComponentName, Fingerprint, FingerprintError, Identity,
    MatchPolicy, SALT_LEN,
};

/// Payload version this build writes and reads.
pub const VERSION: u32 = 1;

/// Why a license could not be issued or read.
#[derive(Debug, thiserror::Error)]
pub enum LicenseError {
    /// The envelope was refused (damaged, wrong kind, bad signature, unknown signer).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The signed payload is not a license this build understands.
    #[error("the license content is not valid: {0}")]
    Invalid(String),
    /// The binding cannot be used.
    #[error(transparent)]
    Fingerprint(#[from] FingerprintError),
    /// A license may not be issued as asked.
    #[error("{0}")]
    Refused(String),
}

/// Perpetual, subscription, and the kinds later modules issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LicenseKind {
    /// Runs forever; may carry a maintenance end.
    Perpetual,
    /// Runs until `expires_at`.
    Subscription,
    /// A floating pool's license (seats).
    FloatingPool,
    /// Borrowed from a pool, until `expires_at`.
    Borrowed,
    /// Evaluation, until `expires_at`.
    Trial,
}

impl LicenseKind {
    /// The kind as written in documents and output.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseKind::Perpetual => "perpetual",
            LicenseKind::Subscription => "subscription",
            LicenseKind::FloatingPool => "floating-pool",
            LicenseKind::Borrowed => "borrowed",
            LicenseKind::Trial => "trial",
        }
    }

    /// Every kind, in the order documents list them.
    pub const ALL: [LicenseKind; 5] = [
        LicenseKind::Perpetual,
        LicenseKind::Subscription,
        LicenseKind::FloatingPool,
        LicenseKind::Borrowed,
        LicenseKind::Trial,
    ];
}

impl std::fmt::Display for LicenseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A kind name that is not one of [`LicenseKind::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a license kind (perpetual, subscription, floating-pool, borrowed, trial)")]
pub struct UnknownKind(String);

impl std::str::FromStr for LicenseKind {
    type Err = UnknownKind;

    /// Exactly the names [`LicenseKind::as_str`] writes; anything else is an
    /// error, never a default.
    fn from_str(s: &str) -> Result<LicenseKind, UnknownKind> {
        LicenseKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// One bound component digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundComponent {
    /// Component name.
    pub name: ComponentName,
    /// 32-byte digest.
    #[serde(with = "serde_bytes")]
    pub digest: Vec<u8>,
}

/// Which machine the license belongs to, and how strictly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// Fingerprint algorithm of the digests.
    pub algorithm: u32,
    /// Whether a machine without hardware anchors may hold this license.
    pub allow_clone_only: bool,
    /// The bound digests.
    pub components: Vec<BoundComponent>,
    /// How much evidence a check asks for; left out (and never written) when
    /// standard, so licenses from before policies existed read as standard.
    #[serde(default, skip_serializing_if = "MatchPolicy::is_standard")]
    pub match_policy: MatchPolicy,
    /// Algorithm 2's salt (16 bytes); present exactly when `algorithm` is 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<serde_bytes::ByteBuf>,
}

impl Binding {
    /// The binding to `fingerprint`: every component's digest, in the
    /// fingerprint's order.
    pub fn of(fingerprint: &Fingerprint, allow_clone_only: bool, match_policy: MatchPolicy) -> Binding {
        Binding {
            algorithm: fingerprint.algorithm(),
            allow_clone_only,
            match_policy,
            salt: fingerprint.salt().map(|s| serde_bytes::ByteBuf::from(s.to_vec())),
            components: fingerprint
                .components()
                .map(|c| BoundComponent {
                    name: c.name,
                    digest: c.digest.0.to_vec(),
                })
                .collect(),
        }
    }
}

/// What a floating pool's license lets its pool server hand out, besides
/// `seats` (FORMAT.md §4 `pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolTerms {
    /// How long an online lease runs before the client must renew it.
    pub lease_minutes: u32,
    /// The longest borrow, in days (0: no borrowing).
    pub borrow_days: u32,
    /// The most seats out on borrow at once.
    pub borrow_seats: u32,
}

/// The license payload (CBOR map with these text keys, in this order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct License {
    /// Payload version, [`VERSION`].
    pub v: u32,
    /// Unique license id (`L-` and 16 base32 characters).
    pub id: String,
    /// Product name.
    pub product: String,
    /// Enabled features.
    pub features: Vec<String>,
    /// Perpetual, subscription, trial, …: which dates rule it.
    pub kind: LicenseKind,
    /// Customer name, free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// Vendor's entitlement reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<String>,
    /// When the vendor signed it.
    pub issued_at: Timestamp,
    /// Not valid before this instant.
    pub not_before: Timestamp,
    /// Not valid from this instant on (exclusive end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Builds released after this instant are not covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_until: Option<Timestamp>,
    /// Seats (pools only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<u32>,
    /// Lease and borrow policy (pools only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolTerms>,
    /// The machine binding.
    pub binding: Binding,
    /// The workstation's install public key (compressed SEC1), when activated
    /// by request; proves later deactivations.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub install_key: Option<Vec<u8>>,
    /// The nonce of the activation request this license answers; the
    /// workstation imports it only if it made that request.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub request_nonce: Option<Vec<u8>>,
    /// Ids of this customer's licenses that support reset (dead machines):
    /// a workstation that sees this list stops honouring them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<String>,
    /// Checks refuse it from this instant until a refreshed license from the
    /// vendor replaces it (`nodelock refresh`): a license that must be
    /// revalidated stops working on a machine whose seat ended, even when its
    /// file comes back from a backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revalidate_by: Option<Timestamp>,
}

/// Is `name` usable as a product name (and so as a file name in a store)?
pub fn valid_product(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Is `id` a well-formed license id (1-64 letters, digits and dashes; it names
/// files in a store)?
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl License {
    /// Reads the payload of a license document *without* verifying it, for
    /// housekeeping on licenses this store verified when it imported them.
    pub fn read_unverified(input: &[u8]) -> Option<License> {
        let doc = envelope::parse(input, DocumentKind::License).ok()?;
        codec::decode(doc.untrusted_payload()).ok()
    }

    /// The bound fingerprint.
    fn bound_fingerprint(&self) -> Result<Fingerprint, LicenseError> {
        let components = self
            .binding
            .components
            .iter()
            .map(|c| {
                <[u8; 32]>::try_from(c.digest.as_slice())
                    .map(|d| Component {
                        name: c.name,
                        digest: ComponentDigest(d),
                    })
                    .map_err(|_| LicenseError::Invalid(format!("the {} digest is not 32 bytes", c.name)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        match (self.binding.algorithm, &self.binding.salt) {
            (ALGORITHM_SALTED, Some(salt)) => {
                let salt = <[u8; SALT_LEN]>::try_from(salt.as_slice())
                    .map_err(|_| LicenseError::Invalid("the binding's salt is not 16 bytes".into()))?;
                Ok(Fingerprint::from_salted_components(salt, components)?)
            }
            (ALGORITHM_SALTED, None) => Err(LicenseError::Invalid("a salted binding has no salt".into())),
            (_, Some(_)) => Err(LicenseError::Invalid(
                "only a salted binding (algorithm 2) has a salt".into(),
            )),
            (algorithm, None) => Ok(Fingerprint::from_components(algorithm, components)?),
        }
    }

    /// The install public key, if any.
    fn install_public_key(&self) -> Result<Option<PublicKey>, LicenseError> {
        self.install_key
            .as_deref()
            .map(|k| {
                PublicKey::from_sec1(k)
                    .map_err(|_| LicenseError::Invalid("install_key is not a P-256 point".into()))
            })
            .transpose()
    }

    /// Every structural rule the signature cannot express, for licenses read
    /// from outside; returns the binding and install key it parsed, so that
    /// nothing parses them again.
    pub fn validate(&self) -> Result<(Fingerprint, Option<PublicKey>), LicenseError> {
        self.check_fields()?;
        Ok((self.bound_fingerprint()?, self.install_public_key()?))
    }

    /// The rules that do not parse the binding or the install key: enough for
    /// a license `issue` built from a `Fingerprint` and a `PublicKey`, which
    /// are valid by construction (parsing the key again costs a square root).
    fn check_fields(&self) -> Result<(), LicenseError> {
        let invalid = |m: &str| Err(LicenseError::Invalid(m.to_owned()));
        if self.v != VERSION {
            return invalid(&format!(
                "version {} (this nodelock reads {VERSION}); update nodelock",
                self.v
            ));
        }
        if !valid_product(&self.product) {
            return invalid("the product name is not valid");
        }
        if self.install_key.is_some() != self.request_nonce.is_some() {
            return invalid("install_key and request_nonce come together");
        }
        if self.request_nonce.as_ref().is_some_and(|n| n.len() != 16) {
            return invalid("request_nonce is not 16 bytes");
        }
        if !valid_id(&self.id) {
            return invalid("the license id is not valid");
        }
        if self.expires_at.is_some_and(|e| e <= self.not_before) {
            return invalid("it expires before it starts");
        }
        if self.revalidate_by.is_some_and(|r| r <= self.issued_at) {
            return invalid("it must be revalidated before it was issued");
        }
        if self.revalidate_by.is_some() && self.install_key.is_none() {
            return invalid("revalidate_by needs an install key to refresh with");
        }
        let pool = self.kind == LicenseKind::FloatingPool;
        if pool != (self.seats.is_some() && self.pool.is_some()) && (pool || self.pool.is_some()) {
            return invalid("a floating-pool license, and only one, carries seats and pool terms");
        }
        if let Some(p) = self.pool
            && (p.lease_minutes == 0 || p.borrow_seats > self.seats.unwrap_or(0))
        {
            return invalid("its pool terms are out of range");
        }
        if matches!(
            self.kind,
            LicenseKind::Subscription | LicenseKind::Borrowed | LicenseKind::Trial
        ) && self.expires_at.is_none()
        {
            return invalid(&format!("a {} license must have an expiry", self.kind.as_str()));
        }
        Ok(())
    }
}

/// A license whose signature verified under a trusted key and whose
/// structure is valid. Only [`verify`] makes one; it carries the binding and
/// install key already parsed, so a check compares and never re-parses.
#[derive(Debug, Clone)]
pub struct VerifiedLicense {
    license: License,
    binding: Fingerprint,
    install_key: Option<PublicKey>,
    signer: KeyId,
    envelope: Vec<u8>,
}

impl VerifiedLicense {
    /// The license terms.
    pub fn license(&self) -> &License {
        &self.license
    }
    /// The fingerprint the license is bound to.
    pub fn binding(&self) -> &Fingerprint {
        &self.binding
    }
    /// The install key a deactivation must be signed by (activated licenses only).
    pub fn install_key(&self) -> Option<&PublicKey> {
        self.install_key.as_ref()
    }
    /// The vendor key that signed it.
    pub fn signer(&self) -> KeyId {
        self.signer
    }
    /// The binary envelope exactly as received.
    pub fn envelope(&self) -> &[u8] {
        &self.envelope
    }
    /// The license armored for storage or sending.
    pub fn armored(&self) -> String {
        envelope::armor(DocumentKind::License, &self.envelope)
    }
}

/// Parses, verifies and validates a license document (armored or binary).
pub fn verify(input: &[u8], keyring: &Keyring) -> Result<VerifiedLicense, LicenseError> {
    let doc = envelope::parse(input, DocumentKind::License)?.verify(keyring)?;
    let license: License =
        codec::decode_canonical(doc.payload()).map_err(|e| LicenseError::Invalid(e.to_string()))?;
    let (binding, install_key) = license.validate()?;
    Ok(VerifiedLicense {
        license,
        binding,
        install_key,
        signer: doc.signer(),
        envelope: doc.envelope().to_vec(),
    })
}

/// What the vendor decides when issuing a license.
#[derive(Debug, Clone)]
pub struct Terms {
    /// Product name.
    pub product: String,
    /// Which dates rule it (see [`LicenseKind`]).
    pub kind: LicenseKind,
    /// Feature names the application may enable.
    pub features: Vec<String>,
    /// Who it is sold to; a reset revokes across this customer's licenses.
    pub customer: Option<String>,
    /// Entitlement reference.
    pub entitlement: Option<String>,
    /// Start; `None` means the issue time minus [`CLOCK_TOLERANCE`](crate::base::clock::CLOCK_TOLERANCE), so that a
    /// workstation whose clock runs a little behind can use it at once.
    pub not_before: Option<Timestamp>,
    /// End (exclusive).
    pub expires_at: Option<Timestamp>,
    /// Maintenance end.
    pub maintenance_until: Option<Timestamp>,
    /// Whether a clone-only machine may hold it.
    pub allow_clone_only: bool,
    /// The match policy checks apply.
    pub match_policy: MatchPolicy,
    /// Days after issue until it must be refreshed (`revalidate_by`).
    pub revalidate_days: Option<u32>,
    /// The id to issue it under (a refresh keeps the license's id); `None`
    /// draws a new one.
    pub id: Option<String>,
    /// License ids to revoke (see [`License::revoked`]).
    pub revoked: Vec<String>,
    /// Seats and lease policy, for a floating pool's license.
    pub pool: Option<(u32, PoolTerms)>,
}

impl Terms {
    /// Terms for `product` of `kind` and nothing else: no features, customer,
    /// entitlement or dates, clone-only machines allowed, nothing revoked.
    /// Set the rest with struct update: `Terms { expires_at, ..Terms::new(p, k) }`.
    pub fn new(product: impl Into<String>, kind: LicenseKind) -> Terms {
        Terms {
            product: product.into(),
            kind,
            features: Vec::new(),
            customer: None,
            entitlement: None,
            not_before: None,
            expires_at: None,
            maintenance_until: None,
            allow_clone_only: true,
            match_policy: MatchPolicy::Standard,
            revalidate_days: None,
            id: None,
            revoked: Vec::new(),
            pool: None,
        }
    }
}

/// The activation request a license answers: the workstation's install key
/// and the request's nonce.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// The install public key.
    pub install_key: &'a PublicKey,
    /// The request nonce.
    pub nonce: &'a [u8],
}

/// Issues a license bound to `fingerprint`, signed by `key`, with an id drawn
/// from `random`, and returns the payload and the armored document.
pub fn issue(
    terms: &Terms,
    fingerprint: &Fingerprint,
    requester: Option<Requester<'_>>,
    now: Timestamp,
    key: &PrivateKey,
    random: &dyn Random,
) -> Result<(License, String), LicenseError> {
    if !valid_product(&terms.product) {
        return Err(LicenseError::Refused(format!(
            "'{}' is not a valid product name (1-64 letters, digits, '.', '_' or '-', starting with a letter or digit)",
            terms.product
        )));
    }
    let clone_only_allowed = terms.allow_clone_only && terms.match_policy != MatchPolicy::Strict;
    if fingerprint.identity() == Identity::CloneOnly && !clone_only_allowed {
        return Err(LicenseError::Refused(
            "this machine has only clone-shared identifiers and the policy requires a hardware identifier"
                .into(),
        ));
    }
    let id = match &terms.id {
        Some(id) => id.clone(),
        None => {
            let id_bytes = random::bytes::<10>(random).map_err(|e| LicenseError::Refused(e.to_string()))?;
            format!("L-{}", typeable::base32(&id_bytes, 16))
        }
    };
    let license = License {
        v: VERSION,
        id,
        product: terms.product.clone(),
        features: terms.features.clone(),
        kind: terms.kind,
        customer: terms.customer.clone(),
        entitlement: terms.entitlement.clone(),
        issued_at: now,
        not_before: terms.not_before.unwrap_or(now - CLOCK_TOLERANCE),
        expires_at: terms.expires_at,
        maintenance_until: terms.maintenance_until,
        seats: terms.pool.map(|(seats, _)| seats),
        pool: terms.pool.map(|(_, pool)| pool),
        binding: Binding::of(fingerprint, terms.allow_clone_only, terms.match_policy),
        install_key: requester.map(|r| r.install_key.to_sec1_compressed()),
        request_nonce: requester.map(|r| r.nonce.to_vec()),
        revoked: terms.revoked.clone(),
        revalidate_by: terms
            .revalidate_days
            .map(|d| now.saturating_add(i64::from(d).saturating_mul(crate::base::clock::DAY))),
    };
    license.check_fields()?;
    let payload = codec::encode(&license).map_err(|e| LicenseError::Invalid(e.to_string()))?;
    let env = envelope::seal(DocumentKind::License, &payload, key)?;
    Ok((license, envelope::armor(DocumentKind::License, &env)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::random::OsRandom;
    use crate::machine::facts::Facts;

    #[test]
    fn a_match_policy_other_than_standard_is_signed_and_standard_is_never_written() {
        let mut facts = Facts::empty();
        facts.machine_id = Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into());
        let fp = Fingerprint::from_facts(&facts).unwrap();
        let vendor = PrivateKey::generate().unwrap();
        let issue_with = |match_policy| {
            let terms = Terms {
                match_policy,
                ..Terms::new("surveyor", LicenseKind::Perpetual)
            };
            issue(&terms, &fp, None, 1_700_000_000, &vendor, &OsRandom)
                .unwrap()
                .0
        };
        let standard = codec::encode(&issue_with(MatchPolicy::Standard)).unwrap();
        assert!(!standard.windows(12).any(|w| w == b"match_policy"));
        let tolerant = codec::encode(&issue_with(MatchPolicy::Tolerant)).unwrap();
        let back: License = codec::decode_canonical(&tolerant).unwrap();
        assert_eq!(back.binding.match_policy, MatchPolicy::Tolerant);
        // Spelling the default out is not canonical, so it is refused.
        let at = tolerant.windows(8).position(|w| w == b"tolerant").unwrap();
        let mut spelled = tolerant.clone();
        spelled[at..at + 8].copy_from_slice(b"standard");
        assert!(codec::decode_canonical::<License>(&spelled).is_err());
        // Strict needs hardware identity even where clone-only is allowed.
        let strict = Terms {
            match_policy: MatchPolicy::Strict,
            ..Terms::new("surveyor", LicenseKind::Perpetual)
        };
        assert!(issue(&strict, &fp, None, 1_700_000_000, &vendor, &OsRandom).is_err());
    }

    #[test]
    fn revalidation_needs_an_install_key_to_refresh_with() {
        let mut facts = Facts::empty();
        facts.machine_id = Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into());
        let fp = Fingerprint::from_facts(&facts).unwrap();
        let vendor = PrivateKey::generate().unwrap();
        let terms = Terms {
            revalidate_days: Some(30),
            ..Terms::new("surveyor", LicenseKind::Perpetual)
        };
        let err = issue(&terms, &fp, None, 1_700_000_000, &vendor, &OsRandom).unwrap_err();
        assert!(err.to_string().contains("install key"), "{err}");
        let install = PrivateKey::generate().unwrap().public();
        let requester = Requester {
            install_key: &install,
            nonce: &[1; 16],
        };
        let (lic, _) = issue(&terms, &fp, Some(requester), 1_700_000_000, &vendor, &OsRandom).unwrap();
        assert_eq!(lic.revalidate_by, Some(1_700_000_000 + 30 * 86_400));
    }

    #[test]
    fn a_request_nonce_is_sixteen_bytes() {
        let mut facts = Facts::empty();
        facts.machine_id = Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into());
        let fp = Fingerprint::from_facts(&facts).unwrap();
        let vendor = PrivateKey::generate().unwrap();
        let install = PrivateKey::generate().unwrap().public();
        let terms = Terms::new("surveyor", LicenseKind::Perpetual);
        for (nonce, ok) in [
            (&[7u8; 16][..], true),
            (&[7u8; 3][..], false),
            (&[7u8; 17][..], false),
        ] {
            let requester = Requester {
                install_key: &install,
                nonce,
            };
            let issued = issue(&terms, &fp, Some(requester), 1_800_000_000, &vendor, &OsRandom);
            assert_eq!(issued.is_ok(), ok, "{} bytes", nonce.len());
        }
    }
}
