//! The online activation server and the offline portal page, on axum.
//!
//! A transport over the same ledger and documents as the offline flow
//! (docs/API.md): the body of `POST /v1/activations` is an activation request
//! document exactly as `nodelock request` writes it, and the answer is the
//! license document `vendor answer` would write. Verification and signing run
//! on every core; the ledger's single [`writer`] commits answers in batches.
//!
//! Bad input never reaches the ledger: bodies over the limit are refused from
//! their `Content-Length` before they are read; documents that fail to parse or
//! verify are answered with a 4xx JSON error and leave no trace (the audit
//! records refusals of *verified* requests only, so anonymous garbage cannot
//! fill it).

mod api;
pub mod limits;
pub mod listen;
mod portal;
pub mod readers;
pub mod writer;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use crate::base::clock::{Clock, SystemClock};
use crate::base::random::{OsRandom, Random};
use crate::documents::activation::{self, ActivationError};
use crate::format::PrivateKey;
use crate::format::envelope::MAX_DOCUMENT_BYTES;
use crate::vendor::ledger::{Answered, Deactivated, Ledger, LedgerError, Method, Refreshed};
use readers::Readers;
use writer::Writer;

pub use limits::{Limits, RateLimit};

pub use api::ApiError;

/// Largest request body accepted: one document.
pub const BODY_LIMIT: usize = MAX_DOCUMENT_BYTES;

/// Why the server could not start or stopped.
#[allow(
    missing_docs,
    reason = "variant fields are named for what they hold; the #[error] text says what they mean"
)]
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The ledger could not be opened.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Binding or serving failed.
    #[error("cannot serve on {addr}: {source}")]
    Io {
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// What answers requests: the ledger (a writer and a pool of readers) and the
/// vendor key.
pub struct Service {
    writer: Writer,
    readers: Readers<Ledger>,
    ledger_path: PathBuf,
    vendor: Arc<PrivateKey>,
    clock: Arc<dyn Clock + Send + Sync>,
    random: Arc<dyn Random>,
    /// Refusals since start, by code: bounded by the number of codes, so a
    /// flood of anonymous requests costs counters, never audit rows.
    refusals: Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl Service {
    /// Opens the ledger and starts its writer, on the system clock.
    pub fn new(ledger_path: PathBuf, vendor: PrivateKey) -> Result<Service, LedgerError> {
        Service::with_clock(ledger_path, vendor, Arc::new(SystemClock))
    }

    /// Opens the ledger and starts its writer; every answer's time (issue
    /// times, ledger rows) comes from `clock`.
    pub fn with_clock(
        ledger_path: PathBuf,
        vendor: PrivateKey,
        clock: Arc<dyn Clock + Send + Sync>,
    ) -> Result<Service, LedgerError> {
        Service::with_sources(ledger_path, vendor, clock, Arc::new(OsRandom))
    }

    /// Opens the ledger and starts its writer, with time from `clock` and
    /// ids (activations, licenses) from `random`: a server under test can be
    /// given both and needs no real clock.
    pub fn with_sources(
        ledger_path: PathBuf,
        vendor: PrivateKey,
        clock: Arc<dyn Clock + Send + Sync>,
        random: Arc<dyn Random>,
    ) -> Result<Service, LedgerError> {
        let vendor = Arc::new(vendor);
        let ledger = Ledger::open(&ledger_path)?.with_random(random.clone());
        let writer = Writer::start(ledger, vendor.clone(), clock.clone())?;
        Ok(Service {
            writer,
            readers: Readers::default(),
            ledger_path,
            vendor,
            clock,
            random,
            refusals: Mutex::default(),
        })
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Ledger) -> Result<T, LedgerError>) -> Result<T, LedgerError> {
        self.readers.with(
            || Ok(Ledger::open(&self.ledger_path)?.with_random(self.random.clone())),
            f,
        )
    }

    /// Answers an activation request document with a license.
    ///
    /// Verifying the request and signing the license (about 0.2 ms of CPU)
    /// run right on the runtime's worker: handing them to the blocking pool
    /// cost more in thread switches than it saved, and with one worker per
    /// core the runtime stays busy with exactly this work.
    pub async fn activate(self: &Arc<Self>, body: Vec<u8>, actor: String) -> Result<Answered, ApiError> {
        let answer = async {
            let request = activation::open_request(&body).map_err(ApiError::from_document)?;
            let prepared = self
                .with_reader(|reader| {
                    reader.prepare_activation(request, &self.vendor, Method::Online, &actor, self.clock.now())
                })
                .map_err(ApiError::from_ledger)?;
            self.writer
                .activate(prepared)
                .await
                .map_err(ApiError::from_ledger)
        };
        answer.await.inspect_err(|e| self.count(e))
    }

    /// Answers a deactivation request document with a receipt.
    pub async fn deactivate(self: &Arc<Self>, body: Vec<u8>, actor: String) -> Result<Deactivated, ApiError> {
        let answer = async {
            let pending = activation::open_deactivation(&body).map_err(ApiError::from_document)?;
            self.writer
                .deactivate(pending, actor)
                .await
                .map_err(ApiError::from_ledger)
        };
        answer.await.inspect_err(|e| self.count(e))
    }

    /// Answers a refresh request document with the refreshed license.
    pub async fn refresh(self: &Arc<Self>, body: Vec<u8>, actor: String) -> Result<Refreshed, ApiError> {
        let answer = async {
            let pending = activation::open_refresh(&body).map_err(ApiError::from_document)?;
            self.writer
                .refresh(pending, actor)
                .await
                .map_err(ApiError::from_ledger)
        };
        answer.await.inspect_err(|e| self.count(e))
    }

    /// The vendor's time, signed, for a clock request: no ledger, no state,
    /// one signature (FORMAT.md §14).
    pub async fn time(self: &Arc<Self>, body: Vec<u8>) -> Result<String, ApiError> {
        let answer = async {
            let request =
                crate::documents::time::open_clock_request(&body).map_err(ApiError::from_document)?;
            let svc = self.clone();
            tokio::task::spawn_blocking(move || {
                crate::documents::time::answer_clock_request(&request, &svc.vendor, svc.clock.now())
                    .map(|(_, armored)| armored)
                    .map_err(ApiError::from_document)
            })
            .await
            .map_err(|_| ApiError::unavailable("the signer stopped"))?
        };
        answer.await.inspect_err(|e| self.count(e))
    }

    /// Whether the ledger answers (a cheap query; the deep check is
    /// `nodelock vendor check`, for the operator).
    pub fn healthy(&self) -> Result<(), LedgerError> {
        self.with_reader(Ledger::ping)
    }

    /// Refusals since start, by code.
    pub fn refusals(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.refusals.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn count(&self, e: &ApiError) {
        if let Ok(mut r) = self.refusals.lock() {
            *r.entry(e.code).or_default() += 1;
        }
    }
}

/// The router: API, health, portal; the rate limit on the three endpoints
/// that take documents. Also returns the rate limiter's trim, which the
/// accept loop calls now and then so its per-address state stays small.
pub fn router(service: Arc<Service>, limits: Limits) -> (Router, Option<limits::Trim>) {
    let mut documents = Router::new()
        .route("/portal", post(portal::upload))
        .route("/v1/activations", post(api::activations))
        .route("/v1/deactivations", post(api::deactivations))
        .route("/v1/refreshes", post(api::refreshes))
        .route("/v1/time", post(api::time))
        .route_layer(middleware::from_fn_with_state(limits, deadline));
    let mut trim = None;
    if let Some((layer, trimmer)) = limits.rate.and_then(limits::rate_layer) {
        documents = documents.route_layer(layer);
        trim = Some(trimmer);
    }
    let router = Router::new()
        .route("/", get(portal::page))
        .route("/healthz", get(api::healthz))
        .merge(documents)
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(refuse_oversized))
        .layer(middleware::from_fn(log_request))
        .with_state(service);
    (router, trim)
}

/// Bounds a document request, body read included, by the read timeout: a
/// client that trickles its body is cut off with 408 `slow-request`. (Should
/// the ledger itself be that slow, the request is cut off too; a retry is
/// answered from the ledger as a replay, so no seat is lost or taken twice.)
async fn deadline(
    axum::extract::State(limits): axum::extract::State<Limits>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limits.read_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => axum::response::IntoResponse::into_response(ApiError::slow_request()),
    }
}

/// Refuses a body whose declared length is over the limit before reading any
/// of it (the body limit alone would only stop reading once the limit is passed).
async fn refuse_oversized(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // The portal's multipart body wraps a document in a little framing.
    let limit = if request.uri().path() == "/portal" {
        BODY_LIMIT + 4096
    } else {
        BODY_LIMIT
    } as u64;
    if declared.is_some_and(|n| n > limit) {
        let mut response = axum::response::IntoResponse::into_response(api::ApiError::too_large());
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        return response;
    }
    next.run(request).await
}

/// One structured log line per request.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let response = next.run(request).await;
    let code = response
        .headers()
        .get("x-nodelock-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    tracing::info!(
        target: "nodelock::http",
        %method,
        path,
        status = response.status().as_u16(),
        code,
        remote,
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// Serves on `listener` until `shutdown` resolves, then finishes the requests
/// in flight (for at most `limits.shutdown_grace`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let (app, trim) = router(service, limits);
    listen::serve(listener, app, limits, trim, shutdown).await
}

pub use listen::Running;

/// Starts a server on `listen` on a thread of its own with `workers` runtime threads.
pub fn start(
    listen: SocketAddr,
    service: Service,
    workers: usize,
    limits: Limits,
) -> Result<Running, ServerError> {
    let (app, trim) = router(Arc::new(service), limits);
    listen::start(listen, app, trim, workers, limits)
}

impl From<ActivationError> for ApiError {
    fn from(e: ActivationError) -> ApiError {
        ApiError::from_document(e)
    }
}
