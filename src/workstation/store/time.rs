//! The store's two clocks, and recovery from a wrong one.
//!
//! `clock` is the watermark: the latest time this store has *observed*, on
//! its own clock at every check and in the issue time of every document it
//! imported. `trusted-clock` is the latest time it was *told* by the vendor,
//! signed: the issue time of an imported license, or a time statement. A check
//! is refused when the local clock is more than the tolerance behind the
//! watermark, which is what stops a clock set back to revive an expired
//! license; one check with a clock a year ahead used to make that refusal
//! last a year.
//!
//! The way back is a time statement (FORMAT.md §13-14): the store makes a
//! clock request with a fresh nonce and remembers the watermark at that
//! moment; the vendor signs its own time with that nonce; the store accepts
//! the statement once, and only while its watermark has not moved on by more
//! than the tolerance since the request. Then the watermark becomes the
//! vendor's time. A statement kept and imported later, after checks moved
//! the watermark on, is refused, so a statement can undo at most what the
//! store observed within the tolerance after asking, which is no more than
//! the tolerance already allows. Signed times are verified when they arrive,
//! never at a check.

use serde::Serialize;

use super::{Store, StoreError, io_err};
use crate::base::clock::{self, CLOCK_TOLERANCE, Timestamp};
use crate::base::fsio;
use crate::base::random::{self, OsRandom};
use crate::documents::activation::NONCE_LEN;
use crate::documents::time::{self, VerifiedTime};
use crate::format::{KeyError, Keyring, PrivateKey};

/// A clock request made and waiting for its statement.
#[derive(Debug, Clone, Serialize)]
pub struct ClockRequestMade {
    /// Its nonce, hex.
    pub nonce: String,
    /// The request, armored: the file to carry, or the body to post.
    #[serde(skip)]
    pub armored: String,
}

/// What accepting a time statement did.
#[derive(Debug, Clone, Serialize)]
pub struct ClockSynced {
    /// The vendor's time, RFC 3339.
    #[serde(serialize_with = "clock::serialize_rfc3339")]
    pub vendor_time: Timestamp,
    /// This machine's clock minus the vendor's, in seconds, at import.
    pub skew_seconds: i64,
    /// The watermark before, RFC 3339 (none: the store had seen no time).
    pub watermark_before: Option<String>,
    /// The watermark now (the vendor's time).
    pub watermark: String,
}

/// Why a time statement was not accepted; the store is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum StaleTime {
    /// No clock request of this store has its nonce (never made, or already used).
    #[error(
        "this time statement answers no clock request waiting in this store (it was made elsewhere, or already imported); make a new one with `nodelock clock request`"
    )]
    NotRequested,
    /// The store saw time move on after the request: the statement is old news.
    #[error(
        "this machine has seen its clock move on by more than a day since the clock request was made, so the time statement is out of date; make a new clock request"
    )]
    MovedOn,
    /// Older than a time the vendor already signed.
    #[error(
        "the time statement ({}) is older than a time the vendor already signed for this store ({}); make a new clock request", clock::format(*.statement), clock::format(*.trusted)
    )]
    OlderThanTrusted {
        /// The statement's time.
        statement: Timestamp,
        /// The newest signed time the store knows.
        trusted: Timestamp,
    },
}

impl Store {
    /// The latest vendor-signed time this store has been told, if any.
    pub fn trusted_time(&self) -> Result<Option<Timestamp>, StoreError> {
        read_time(&self.root.join("trusted-clock"))
    }

    /// Raises the trusted time to `to` (an imported license's issue time, a
    /// statement). Called under the lock.
    pub(super) fn raise_trusted_locked(&self, to: Timestamp) -> Result<(), StoreError> {
        if self.trusted_time()?.is_some_and(|t| t >= to) {
            return Ok(());
        }
        write_time(&self.root.join("trusted-clock"), to)
    }

    /// Makes a clock request and keeps its nonce, with the watermark now,
    /// until its statement is imported.
    pub fn create_clock_request(&self, now: Timestamp) -> Result<ClockRequestMade, StoreError> {
        let nonce = random::bytes::<NONCE_LEN>(&OsRandom).map_err(KeyError::from)?;
        let seal = PrivateKey::generate()?;
        let (_, armored) = time::make_clock_request(nonce, now, &seal)?;
        let _lock = self.lock()?;
        let hex = base16ct::lower::encode_string(&nonce);
        let path = self.root.join("pending").join(format!("{hex}.clock"));
        let watermark = self
            .watermark()?
            .map_or_else(|| "none".to_owned(), |w| w.to_string());
        fsio::write_file(&path, format!("{watermark}\n").as_bytes(), false, false).map_err(io_err(&path))?;
        Ok(ClockRequestMade { nonce: hex, armored })
    }

    /// Verifies a time statement and, if it answers a clock request of this
    /// store that is still current (module docs), sets the watermark to the
    /// vendor's time. Changes nothing when it refuses.
    pub fn import_time_statement(
        &self,
        input: &[u8],
        keyring: &Keyring,
        now: Timestamp,
    ) -> Result<ClockSynced, StoreError> {
        if keyring.is_empty() {
            return Err(StoreError::NoTrustRoots);
        }
        let verified = time::verify_time_statement(input, keyring)?;
        let _lock = self.lock()?;
        self.accept_locked(&verified, now)
    }

    fn accept_locked(&self, verified: &VerifiedTime, now: Timestamp) -> Result<ClockSynced, StoreError> {
        let statement = verified.statement();
        let hex = base16ct::lower::encode_string(&statement.nonce);
        let pending = self.root.join("pending").join(format!("{hex}.clock"));
        let asked_at = match fsio::read_capped(&pending, 64, fsio::Links::Refuse) {
            Ok(bytes) => String::from_utf8(bytes).unwrap_or_default(),
            Err(e) if e.is_not_found() => return Err(StaleTime::NotRequested.into()),
            Err(fsio::ReadError::Io(source)) => return Err(io_err(&pending)(source)),
            Err(_) => return Err(StaleTime::NotRequested.into()),
        };
        let watermark_then: Option<Timestamp> = asked_at.trim().parse().ok();
        let watermark = self.watermark()?;
        if let Some(w) = watermark
            && w > watermark_then
                .unwrap_or(Timestamp::MIN)
                .saturating_add(CLOCK_TOLERANCE)
        {
            return Err(StaleTime::MovedOn.into());
        }
        if let Some(trusted) = self.trusted_time()?
            && statement.time < trusted.saturating_sub(CLOCK_TOLERANCE)
        {
            return Err(StaleTime::OlderThanTrusted {
                statement: statement.time,
                trusted,
            }
            .into());
        }
        write_time(&self.root.join("clock"), statement.time)?;
        self.raise_trusted_locked(statement.time)?;
        std::fs::remove_file(&pending).map_err(io_err(&pending))?;
        Ok(ClockSynced {
            vendor_time: statement.time,
            skew_seconds: now.saturating_sub(statement.time),
            watermark_before: watermark.map(clock::format),
            watermark: clock::format(statement.time),
        })
    }
}

/// A decimal Unix time file of the store (`clock`, `trusted-clock`,
/// `borrows/*.received`): none when missing, [`StoreError::ClockDamaged`]
/// when it holds anything but a whole number, never a guess.
pub(super) fn read_time(path: &std::path::Path) -> Result<Option<Timestamp>, StoreError> {
    match fsio::read_capped(path, 64, fsio::Links::Refuse) {
        Ok(bytes) => String::from_utf8(bytes)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| StoreError::ClockDamaged {
                path: path.display().to_string(),
            }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(fsio::ReadError::Io(source)) => Err(io_err(path)(source)),
        Err(_) => Err(StoreError::ClockDamaged {
            path: path.display().to_string(),
        }),
    }
}

/// Writes a decimal Unix time file, atomically.
pub(super) fn write_time(path: &std::path::Path, to: Timestamp) -> Result<(), StoreError> {
    fsio::write_file(path, format!("{to}\n").as_bytes(), false, false).map_err(io_err(path))
}
