//! What the server allows one client: how long it may take to send a request,
//! how many requests per second it may make, and how long shutdown waits.
//!
//! The defaults let a real installer base through (hundreds of requests from
//! one address in a burst, as a site rollout or this project's concurrency
//! tests make) and stop what only an attacker does: connections that never
//! finish their headers or body, idle connections held open, and floods.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Response};
use axum::response::IntoResponse;
use tower_governor::GovernorError;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::PeerIpKeyExtractor;

use super::ApiError;

/// How many requests per second one client address may make, after a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// Requests allowed at once before the rate applies.
    pub burst: u32,
}

impl Default for RateLimit {
    /// 50 requests per second after a burst of 500, per address.
    fn default() -> RateLimit {
        RateLimit {
            per_second: 50,
            burst: 500,
        }
    }
}

/// The server's limits on clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request's headers (and how long an
    /// idle keep-alive connection is kept), and then its body.
    pub read_timeout: Duration,
    /// How long shutdown waits for requests in flight before it closes them.
    pub shutdown_grace: Duration,
    /// The per-address limit on the activation endpoints; `None` behind a
    /// proxy that limits instead (every client would share its address).
    pub rate: Option<RateLimit>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            rate: Some(RateLimit::default()),
        }
    }
}

/// The rate-limit layer on the document endpoints.
/// Keyed by the peer address the accept loop records as `ConnectInfo`.
pub type RateLayer =
    tower_governor::GovernorLayer<PeerIpKeyExtractor, governor::middleware::NoOpMiddleware, Body>;

/// Drops the limiter's state for addresses not seen lately.
pub type Trim = Arc<dyn Fn() + Send + Sync>;

/// The rate-limit layer for `rate`, answering an excess request with the
/// API's JSON error (429 `rate-limited`) and `Retry-After`; and a handle to
/// its limiter, whose per-address state the server trims now and then.
pub fn rate_layer(rate: RateLimit) -> Option<(RateLayer, Trim)> {
    let nanos_per_token = 1_000_000_000u64 / u64::from(rate.per_second.max(1));
    let config = GovernorConfigBuilder::default()
        .per_nanosecond(nanos_per_token.max(1))
        .burst_size(rate.burst.max(1))
        .finish()?;
    let config = Arc::new(config);
    let limiter = config.limiter().clone();
    let trim: Trim = Arc::new(move || limiter.retain_recent());
    let layer = tower_governor::GovernorLayer::new(config).error_handler(|e| match e {
        GovernorError::TooManyRequests { wait_time, .. } => {
            let mut response: Response<Body> = ApiError::rate_limited(wait_time).into_response();
            if let Ok(v) = HeaderValue::from_str(&wait_time.max(1).to_string()) {
                response.headers_mut().insert("retry-after", v);
            }
            response
        }
        _ => ApiError::unavailable("the server could not tell who is asking").into_response(),
    });
    Some((layer, trim))
}
