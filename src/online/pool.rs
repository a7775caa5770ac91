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
        let answer = self.client.post_to("/v1/leases", request.as_bytes())?;
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
                if let Ok(granted) = serde_json::from_str::<GrantedAnswer>(&answer) {
                    let secs = crate::base::clock::parse_start(&granted.expires_at)
                        .ok()
                        .map(|end| end.saturating_sub(now).max(1));
                    if let Some(secs) = secs {
                        length = Duration::from_secs(u64::try_from(secs).unwrap_or(60));
                    }
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

/// What [`return_on_reconnect`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconnected {
    /// No borrow of the product is set to return on reconnect.
    NotSet,
    /// The pool was tried less than [`PROBE_EVERY`] ago.
    NotYet,
    /// The pool cannot be reached: the laptop is away (and now noted so).
    Away,
    /// The pool answers and the laptop has not been away: the borrow stays.
    Here,
    /// Back after being away: the borrow was given back to the pool and is
    /// gone from this store.
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
/// the pool's policy). "Away" means one attempt to reach the pool failed
/// since the borrow: a laptop that never leaves the network keeps its borrow
/// to the end. `nodelock check` and `nodelock lease checkout` call this; an
/// application that checks through the library calls it where it wants the
/// same (it waits up to `timeout` when the pool cannot be reached, at most
/// once per [`PROBE_EVERY`]).
pub fn return_on_reconnect(
    store: &crate::workstation::store::Store,
    product: &str,
    keyring: &Keyring,
    now: i64,
    timeout: Duration,
) -> Result<Reconnected, LeaseError> {
    let Some(mut reconnect) = store.reconnect(product) else {
        return Ok(Reconnected::NotSet);
    };
    let Some(borrow) = store.borrow(product, keyring)? else {
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
        reconnect.away = true;
        store.set_reconnect(product, &reconnect)?;
        return Ok(Reconnected::Away);
    }
    if !reconnect.away {
        store.set_reconnect(product, &reconnect)?;
        return Ok(Reconnected::Here);
    }
    let lease_id = borrow.lease.lease().id.clone();
    let holder = store.borrow_holder(product)?;
    match client.update(&lease_id, LeaseOp::Return, &holder, now) {
        Ok(_) => {}
        // The pool no longer holds it (it ended, or was removed): nothing
        // to give back, and the borrow goes all the same.
        Err(LeaseError::Server(ClientError::Refused { code, .. }))
            if code == "lease-ended" || code == "unknown-lease" => {}
        Err(LeaseError::Server(e)) if e.is_network() => {
            store.set_reconnect(product, &reconnect)?;
            return Ok(Reconnected::Away);
        }
        Err(e) => return Err(e),
    }
    store.drop_borrow(product)?;
    Ok(Reconnected::Returned {
        lease_id,
        server: reconnect.server,
    })
}
