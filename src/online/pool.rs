//! A floating license client: take a seat from a pool server, keep it while
//! the application runs, give it back when it stops.
//!
//! ```no_run
//! # fn main() -> Result<(), nodelock::online::pool::LeaseError> {
//! # let keyring = nodelock::format::Keyring::new();
//! # let fingerprint: nodelock::machine::fingerprint::Fingerprint = unimplemented!();
//! use nodelock::online::pool::{LeaseGuard, PoolClient};
//! let client = PoolClient::new("http://licenses.lan:8760", std::time::Duration::from_secs(10))?;
//! let seat = LeaseGuard::checkout(client, "surveyor", &keyring, &fingerprint)?;
//! // … run; `seat.lost()` says when the seat was lost (server gone past the lease's end) …
//! drop(seat); // checks the seat in
//! # Ok(()) }
//! ```
//!
//! The guard renews on a thread of its own at a third of the lease's length.
//! A renewal that fails for a network reason is tried again until the lease
//! would end; only then is the seat lost, with the cause told apart (as for
//! `activate`). The lease is verified before it is used: vendor key → pool
//! license → its install key → lease, and this machine against its binding.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::base::random::{self, OsRandom};
use crate::documents::activation::{ActivationError, NONCE_LEN};
use crate::documents::lease::{self, Checkout, LeaseMode, LeaseOp, VerifiedLease};
use crate::format::{KeyError, Keyring, PrivateKey};
use crate::machine::fingerprint::{self, Fingerprint, MatchPolicy, Verdict};
use crate::online::client::{Client, ClientError};

/// Why a seat could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The server could not be reached, or refused (its code and sentence).
    #[error("network license: {0}")]
    Server(#[from] ClientError),
    /// What the server sent is not a lease of a pool this vendor signed.
    #[error("network license: the server's answer is not a lease this application trusts: {0}")]
    Untrusted(#[from] ActivationError),
    /// The lease was granted for another machine.
    #[error("network license: the lease the server granted does not hold on this machine")]
    OtherMachine,
    /// The answer was not the JSON a pool server sends.
    #[error("network license: the server's answer could not be read: {0}")]
    Answer(String),
    /// No randomness or key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] crate::workstation::store::StoreError),
}

/// A pool server's answer to a checkout or renewal.
#[derive(Debug, Clone, Deserialize)]
pub struct GrantedAnswer {
    /// Lease id.
    pub lease_id: String,
    /// When it ends unless renewed (RFC 3339, server time).
    pub expires_at: String,
    /// `online` or `borrowed`.
    pub mode: String,
    /// The signed lease.
    pub lease: String,
    /// The pool license it was granted under.
    pub pool_license: String,
    /// For a borrow: the pool's policy wants it given back the first time
    /// the laptop reaches the pool again after being away.
    #[serde(default)]
    pub return_on_reconnect: bool,
}

/// How often a checkout is sent when its answer is lost on the way.
const CHECKOUT_TRIES: u32 = 3;

/// The client of one pool server.
pub struct PoolClient {
    client: Client,
}

fn nonce() -> Result<[u8; NONCE_LEN], KeyError> {
    Ok(random::bytes::<NONCE_LEN>(&OsRandom)?)
}

impl PoolClient {
    /// A client for the pool server at `base`, giving up on a call after `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<PoolClient, LeaseError> {
        Ok(PoolClient {
            client: Client::new(base, timeout)?,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        self.client.base()
    }

    /// Asks for a seat; returns the answer and the verified lease.
    pub fn checkout(
        &self,
        checkout: &Checkout<'_>,
        holder: &PrivateKey,
        keyring: &Keyring,
        now: i64,
    ) -> Result<(GrantedAnswer, VerifiedLease), LeaseError> {
        let (_, request) = lease::make_lease_request(checkout, holder, nonce()?, now)?;
        // An answer lost on the way back (a timeout, a reset) may follow a
        // seat the server did grant: the same request again gets that lease
        // back, where a new one would take a second seat.
        let mut tries = 0;
        let answer = loop {
            tries += 1;
            match self.client.post_to("/v1/leases", request.as_bytes()) {
                Err(e @ (ClientError::Timeout { .. } | ClientError::Network { .. }))
                    if tries < CHECKOUT_TRIES =>
                {
                    tracing::debug!(target: "nodelock::pool", error = %e, "checkout answer lost; asking again");
                    std::thread::sleep(Duration::from_millis(300));
                }
                other => break other?,
            }
        };
        let granted: GrantedAnswer =
            serde_json::from_str(&answer).map_err(|e| LeaseError::Answer(e.to_string()))?;
        let verified =
            lease::verify_lease(granted.lease.as_bytes(), granted.pool_license.as_bytes(), keyring)?;
        let report = fingerprint::compare(
            verified.fingerprint(),
            checkout.fingerprint,
            MatchPolicy::Standard,
            true,
        );
        if report.verdict != Verdict::Holds || !verified.held_by(&holder.public()) {
            return Err(LeaseError::OtherMachine);
        }
        Ok((granted, verified))
    }

    /// Renews, checks in or returns a lease; the answer's JSON.
    pub fn update(
        &self,
        lease_id: &str,
        op: LeaseOp,
        holder: &PrivateKey,
        now: i64,
    ) -> Result<String, LeaseError> {
        let (_, update) = lease::make_lease_update(lease_id, op, holder, nonce()?, now)?;
        Ok(self.client.post_to("/v1/leases/update", update.as_bytes())?)
    }

    /// The pool's status (JSON), with the admin token when views need it.
    pub fn status(&self, token: Option<&str>) -> Result<String, LeaseError> {
        Ok(self.client.get_from("/v1/status", token)?)
    }

    /// Frees a lease (admin).
    pub fn remove(&self, lease_id: &str, token: &str) -> Result<String, LeaseError> {
        let body = serde_json::json!({ "lease_id": lease_id }).to_string();
        Ok(self
            .client
            .post_admin("/v1/admin/remove", body.as_bytes(), token)?)
    }
}

#[derive(Default)]
struct GuardState {
    lease_id: String,
    features: Vec<String>,
    /// When the lease ends, on this process's monotonic clock.
    ends: Option<Instant>,
    lost: Option<String>,
    stop: bool,
}

struct Shared {
    state: Mutex<GuardState>,
    wake: Condvar,
}

/// A seat held while the guard lives: renewed in the background, checked in
/// on drop.
pub struct LeaseGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LeaseGuard {
    /// Takes a seat of `product` for this machine and starts renewing it.
    pub fn checkout(
        client: PoolClient,
        product: &str,
        keyring: &Keyring,
        fingerprint: &Fingerprint,
    ) -> Result<LeaseGuard, LeaseError> {
        let holder = PrivateKey::generate()?;
        let now = crate::base::clock::Clock::now(&crate::base::clock::SystemClock);
        let checkout = Checkout {
            product,
            mode: LeaseMode::Online,
            days: 0,
            fingerprint,
            user: std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty() && u.len() <= lease::MAX_LABEL),
            host: None,
        };
        let (granted, verified) = client.checkout(&checkout, &holder, keyring, now)?;
        let length = lease_length(&verified);
        let shared = Arc::new(Shared {
            state: Mutex::new(GuardState {
                lease_id: granted.lease_id.clone(),
                features: verified.lease().features.clone(),
                ends: Some(Instant::now() + length),
                lost: None,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("nodelock-lease".into())
            .spawn(move || renew_loop(&client, &holder, &thread_shared, length))
            .map_err(|e| LeaseError::Answer(e.to_string()))?;
        Ok(LeaseGuard {
            shared,
            thread: Some(thread),
        })
    }

    /// The lease id (for the admin's status page, and support).
    pub fn lease_id(&self) -> String {
        self.shared
            .state
            .lock()
            .map(|s| s.lease_id.clone())
            .unwrap_or_default()
    }

    /// The features the pool grants.
    pub fn features(&self) -> Vec<String> {
        self.shared
            .state
            .lock()
            .map(|s| s.features.clone())
            .unwrap_or_default()
    }

    /// `Some(why)` once the seat is lost: the application should save and stop.
    pub fn lost(&self) -> Option<String> {
        let state = self.shared.state.lock().ok()?;
        if let Some(why) = &state.lost {
            return Some(why.clone());
        }
        state
            .ends
            .filter(|end| Instant::now() >= *end)
            .map(|_| "network license: the lease ran out before it could be renewed".to_owned())
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.stop = true;
        }
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The length a lease document states, from the server's two signed times.
fn signed_length(armored: &str) -> Option<Duration> {
    let doc = crate::format::envelope::parse(armored.as_bytes(), crate::format::DocumentKind::Lease).ok()?;
    let lease: lease::Lease = crate::format::codec::decode(doc.untrusted_payload()).ok()?;
    let secs = lease.expires_at.checked_sub(lease.issued_at).filter(|s| *s > 0)?;
    Some(Duration::from_secs(u64::try_from(secs).ok()?))
}

fn lease_length(verified: &VerifiedLease) -> Duration {
    let lease = verified.lease();
    Duration::from_secs(u64::try_from(lease.expires_at.saturating_sub(lease.issued_at)).unwrap_or(60))
}

fn renew_loop(client: &PoolClient, holder: &PrivateKey, shared: &Shared, mut length: Duration) {
    let mut next = Instant::now() + length / 3;
    loop {
        let Ok(mut state) = shared.state.lock() else {
            return;
        };
        while !state.stop && Instant::now() < next {
            let wait = next.saturating_duration_since(Instant::now());
            state = match shared.wake.wait_timeout(state, wait) {
                Ok((s, _)) => s,
                Err(_) => return,
            };
        }
        let lease_id = state.lease_id.clone();
        let stopping = state.stop;
        let lost = state.lost.is_some();
        drop(state);
        let now = crate::base::clock::Clock::now(&crate::base::clock::SystemClock);
        if stopping {
            if !lost {
                let _ = client.update(&lease_id, LeaseOp::Checkin, holder, now);
            }
            return;
        }
        if lost {
            next = Instant::now() + Duration::from_secs(3600);
            continue;
        }
        match client.update(&lease_id, LeaseOp::Renew, holder, now) {
            Ok(answer) => {
                // The new length is the server's own (its signed expires_at
                // less its issued_at): this machine's clock may be off.
                if let Some(renewed) = serde_json::from_str::<GrantedAnswer>(&answer)
                    .ok()
                    .and_then(|granted| signed_length(&granted.lease))
                {
                    length = renewed;
                }
                if let Ok(mut state) = shared.state.lock() {
                    state.ends = Some(Instant::now() + length);
                }
                next = Instant::now() + length / 3;
            }
            Err(LeaseError::Server(e)) if e.is_network() => {
                // Keep the seat through a restart or a short outage: try
                // again soon, until the lease would have ended.
                let ends = shared.state.lock().ok().and_then(|s| s.ends);
                if ends.is_some_and(|end| Instant::now() >= end) {
                    if let Ok(mut state) = shared.state.lock() {
                        state.lost = Some(format!(
                            "network license: cannot reach the license server at {}: {e}",
                            client.base()
                        ));
                    }
                } else {
                    next = Instant::now() + (length / 10).max(Duration::from_millis(200));
                }
            }
            Err(e) => {
                if let Ok(mut state) = shared.state.lock() {
                    state.lost = Some(e.to_string());
                }
            }
        }
    }
}

/// How often, at most, a borrow set to return on reconnect tries to reach
/// its pool server (seconds of the store's clock): a check away from the
/// network waits for a failed connection at most once in this time.
pub const PROBE_EVERY: i64 = 300;

/// How long the pool must stay out of reach (failed tries, none reaching it
/// in between) before the laptop counts as away: a server restart, a Wi-Fi
/// drop or a slow DNS at the desk is not a trip.
pub const AWAY_AFTER: i64 = 3600;

/// What [`return_on_reconnect`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconnected {
    /// No borrow of the product is set to return on reconnect.
    NotSet,
    /// The pool was tried less than [`PROBE_EVERY`] ago.
    NotYet,
    /// The pool cannot be reached (the laptop is away, or may be).
    Away,
    /// The pool answers and the laptop has not been away: the borrow stays.
    Here,
    /// Back after being away: the borrow is gone from this store and the
    /// pool has taken its seat back.
    Returned {
        /// The borrow's lease.
        lease_id: String,
        /// The pool server it went back to.
        server: String,
    },
}

/// Gives the borrow of `product` back to its pool the first time the pool
/// is reached after the laptop has been away from it, when the borrow was
/// set to return on reconnect (`nodelock borrow --return-on-reconnect`, or
/// the pool's policy). "Away" means the pool could not be reached for
/// [`AWAY_AFTER`], with no try reaching it in between: a laptop that never
/// leaves the network keeps its borrow to the end. `nodelock check` and
/// `nodelock lease checkout` call this; an application that checks through
/// the library calls it where it wants the same (it waits up to `timeout`
/// when the pool cannot be reached, at most once per [`PROBE_EVERY`]).
///
/// The borrow leaves the store before its return is sent, as an offline
/// return does; the signed return is kept and sent again until the pool
/// answers, so a lost answer neither keeps a borrow the pool has freed nor
/// frees a seat a borrow still uses.
pub fn return_on_reconnect(
    store: &crate::workstation::store::Store,
    product: &str,
    now: i64,
    timeout: Duration,
) -> Result<Reconnected, LeaseError> {
    use crate::workstation::store::PendingReturn;
    if let Some(pending) = store.pending_return(product) {
        return send_return(store, product, pending, timeout);
    }
    // Read without verifying: the check that follows verifies the borrow,
    // and a return signed with this store's holder key names only its own
    // lease, so nothing here is granted on what is read.
    let Some(lease_id) = store.borrow_lease_id(product) else {
        return Ok(Reconnected::NotSet);
    };
    let Some(mut reconnect) = store.reconnect(product).filter(|r| r.lease_id == lease_id) else {
        return Ok(Reconnected::NotSet);
    };
    if reconnect
        .probed_at
        .is_some_and(|at| now >= at && now - at < PROBE_EVERY)
    {
        return Ok(Reconnected::NotYet);
    }
    reconnect.probed_at = Some(now);
    let client = PoolClient::new(&reconnect.server, timeout)?;
    // Reached means a nodelock server answered: a captive portal or a
    // proxy's error page is not the pool, so the laptop is not back yet.
    let reached = client
        .client
        .get_from("/healthz", None)
        .ok()
        .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
        .is_some_and(|v| v["status"] == "ok");
    if !reached {
        let since = *reconnect.first_failure.get_or_insert(now);
        if now.saturating_sub(since) >= AWAY_AFTER {
            reconnect.away = true;
        }
        store.set_reconnect(product, &reconnect)?;
        return Ok(Reconnected::Away);
    }
    if !reconnect.away {
        reconnect.first_failure = None;
        store.set_reconnect(product, &reconnect)?;
        return Ok(Reconnected::Here);
    }
    let holder = store.borrow_holder(product)?;
    let (_, update) = lease::make_lease_update(&lease_id, LeaseOp::Return, &holder, nonce()?, now)?;
    let pending = PendingReturn {
        server: reconnect.server,
        lease_id: lease_id.clone(),
        update,
    };
    store.keep_pending_return(product, &pending)?;
    if !store.drop_borrow_of(product, &lease_id)? {
        // Another borrow was kept meanwhile: this one was given back already.
        store.drop_pending_return(product)?;
        return Ok(Reconnected::NotSet);
    }
    send_return(store, product, pending, timeout)
}

/// Sends a kept return; forgets it once the pool has answered it.
fn send_return(
    store: &crate::workstation::store::Store,
    product: &str,
    pending: crate::workstation::store::PendingReturn,
    timeout: Duration,
) -> Result<Reconnected, LeaseError> {
    let client = PoolClient::new(&pending.server, timeout)?;
    match client
        .client
        .post_to("/v1/leases/update", pending.update.as_bytes())
    {
        Ok(_) => {}
        // Answered before (the answer was lost), or the pool no longer holds
        // the lease (it ended, or the admin removed it): the seat is free.
        Err(ClientError::Refused { code, .. })
            if code == "replayed" || code == "lease-ended" || code == "unknown-lease" => {}
        Err(e) if e.is_network() => return Ok(Reconnected::Away),
        Err(e) => {
            // The pool refuses this return for good (it is not this pool's
            // lease): keeping it would retry forever.
            store.drop_pending_return(product)?;
            return Err(e.into());
        }
    }
    store.drop_pending_return(product)?;
    Ok(Reconnected::Returned {
        lease_id: pending.lease_id,
        server: pending.server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewed_lease_lasts_what_the_server_signed_whatever_this_clock_says() {
        let vector = include_str!("../../fixtures/documents/lease.lease");
        assert_eq!(signed_length(vector), Some(Duration::from_secs(900)));
        assert_eq!(signed_length("not a lease"), None);
    }
}
