//! The pool server's HTTP face: the lease API, the status view (JSON, and a
//! plain HTML page with no JavaScript), and the admin's `remove`. Bodies are
//! capped before they are read; every refusal is a 4xx JSON error with a
//! stable code and records nothing. Documents are verified and leases signed
//! on the runtime's workers in parallel; the changes are committed by the
//! pool's writer thread (`writer.rs`).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::rules::unexpected;
use super::writer::Writer;
use super::{Change, Lender, Outcome, Pool, PoolDb, PoolError, Status};
use crate::base::clock::{self, Clock};
use crate::base::text::printable;
use crate::documents::lease;
use crate::vendor::server::ServerError;
use crate::vendor::server::limits::{self, Limits};
use crate::vendor::server::readers::Readers;

/// Largest request body the pool reads.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Who may see the views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Views {
    /// Anyone who can reach the server (the default on a LAN).
    Open,
    /// Only with the admin token.
    Token,
}

/// What the handlers share: the lender (which signs), read connections, and
/// the writer that commits.
pub struct PoolService {
    lender: Arc<Lender>,
    db_path: std::path::PathBuf,
    readers: Readers<PoolDb>,
    writer: Writer,
    clock: Arc<dyn Clock + Send + Sync>,
    admin_token: String,
    views: Views,
}

impl PoolService {
    /// A service over `pool` (its writer thread started), on `clock`, with
    /// the admin token `admin_token`.
    pub fn new(
        pool: Pool,
        clock: Arc<dyn Clock + Send + Sync>,
        admin_token: String,
        views: Views,
    ) -> Result<PoolService, PoolError> {
        let (lender, db, policy) = pool.into_parts();
        let lender = Arc::new(lender);
        let db_path = db.path().to_path_buf();
        let writer = Writer::start(lender.clone(), db, policy)?;
        Ok(PoolService {
            lender,
            db_path,
            readers: Readers::default(),
            writer,
            clock,
            admin_token,
            views,
        })
    }

    /// Runs `f` on a read connection from the service's pool of them.
    fn with_reader<T>(&self, f: impl FnOnce(&PoolDb) -> Result<T, PoolError>) -> Result<T, PoolError> {
        self.readers.with(|| PoolDb::open_reader(&self.db_path), f)
    }

    /// The status now.
    pub fn status(&self) -> Result<Status, PoolError> {
        let now = self.clock.now();
        self.with_reader(|db| self.lender.status(&db.read(), now))
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // No token configured opens nothing.
        !self.admin_token.is_empty() && constant_time_eq(given.as_bytes(), self.admin_token.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Refused(PoolError);

impl From<PoolError> for Refused {
    fn from(e: PoolError) -> Refused {
        Refused(e)
    }
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response();
    if let Ok(v) = code.parse() {
        response.headers_mut().insert("x-nodelock-code", v);
    }
    response
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (code, status) = self.0.code();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        error_response(status, code, &self.0.to_string())
    }
}

/// A refusal before any pool work: the body could not be read.
struct Unread(StatusCode, &'static str, &'static str);

impl IntoResponse for Unread {
    fn into_response(self) -> Response {
        error_response(self.0, self.1, self.2)
    }
}

fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Unread> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Unread(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "the request body is larger than 64 KiB; send the document the client wrote",
            )
        } else {
            Unread(
                StatusCode::BAD_REQUEST,
                "bad-document",
                "the request body could not be read",
            )
        }
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PoolError> + Send + 'static,
) -> Result<T, Refused> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Refused(PoolError::Damaged("a request failed mid-way".into())))?
        .map_err(Refused)
}

async fn checkout(
    State(svc): State<Arc<PoolService>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let raw = match body(raw) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    // Verified and signed here, on the runtime's workers (a blocking-pool
    // hop per request cost more than the work); only the commit is serial.
    let answer = async {
        let request = lease::open_lease_request(&raw)?;
        let prepared = svc
            .lender
            .prepare_checkout(&request, Some(peer.ip()), svc.clock.now())?;
        svc.writer.commit(Change::Checkout(Box::new(prepared))).await
    }
    .await;
    match answer {
        Ok(Outcome::Granted(granted)) => Json(granted).into_response(),
        Ok(other) => Refused(unexpected(&other)).into_response(),
        Err(e) => Refused(e).into_response(),
    }
}

async fn update(State(svc): State<Arc<PoolService>>, raw: Result<Bytes, BytesRejection>) -> Response {
    let raw = match body(raw) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let answer = async {
        let update = lease::open_lease_update(&raw)?;
        let now = svc.clock.now();
        let prepared = svc.with_reader(|db| svc.lender.prepare_update(&db.read(), update, now))?;
        svc.writer.commit(Change::Update(Box::new(prepared))).await
    }
    .await;
    match answer {
        Ok(Outcome::Updated(updated)) => Json(updated).into_response(),
        Ok(other) => Refused(unexpected(&other)).into_response(),
        Err(e) => Refused(e).into_response(),
    }
}

/// The status for a view, rendered by `render`, if the caller may see it.
async fn view(svc: Arc<PoolService>, headers: &HeaderMap, render: fn(Status) -> Response) -> Response {
    if svc.views == Views::Token && !svc.authorised(headers) {
        return error_response(
            StatusCode::UNAUTHORIZED,
            "token-needed",
            "this pool's views need the admin token",
        );
    }
    match blocking(move || svc.status()).await {
        Ok(status) => render(status),
        Err(refused) => refused.into_response(),
    }
}

async fn status_json(State(svc): State<Arc<PoolService>>, headers: HeaderMap) -> Response {
    view(svc, &headers, |status| Json(status).into_response()).await
}

async fn status_page(State(svc): State<Arc<PoolService>>, headers: HeaderMap) -> Response {
    view(svc, &headers, |status| Html(page(&status)).into_response()).await
}

#[derive(serde::Deserialize)]
struct RemoveBody {
    lease_id: String,
}

async fn remove(
    State(svc): State<Arc<PoolService>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    if !svc.authorised(&headers) {
        return error_response(
            StatusCode::UNAUTHORIZED,
            "token-needed",
            "removing a lease needs the admin token (the pool-admin.token file pool serve wrote)",
        );
    }
    let raw = match body(raw) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let Ok(wanted) = serde_json::from_slice::<RemoveBody>(&raw) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "bad-document",
            "send {\"lease_id\": \"S-…\"}",
        );
    };
    if !lease::valid_lease_id(&wanted.lease_id) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "bad-document",
            "that is not a lease id (S-…)",
        );
    }
    let change = Change::Remove {
        id: wanted.lease_id,
        now: svc.clock.now(),
    };
    match svc.writer.commit(change).await {
        Ok(Outcome::Removed(freed)) => Json(json!({ "removed": freed })).into_response(),
        Ok(other) => Refused(unexpected(&other)).into_response(),
        Err(e) => Refused(e).into_response(),
    }
}

async fn healthz() -> Response {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") })).into_response()
}

async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not-found",
        "no such endpoint on this license server",
    )
}

/// The router of a pool server.
pub fn router(service: Arc<PoolService>, limits: Limits) -> (Router, Option<limits::Trim>) {
    let mut documents = Router::new()
        .route("/v1/leases", post(checkout))
        .route("/v1/leases/update", post(update))
        .route("/v1/admin/remove", post(remove));
    // The same per-address limit as the activation server's: a client that
    // floods the pool slows only itself.
    let mut trim = None;
    if let Some((layer, trimmer)) = limits.rate.and_then(limits::rate_layer) {
        documents = documents.route_layer(layer);
        trim = Some(trimmer);
    }
    let router = Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/v1/status", get(status_json))
        .merge(documents)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(service);
    (router, trim)
}

fn escape(text: &str) -> String {
    printable(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The status as a plain HTML page (no JavaScript), the same figures as
/// `/v1/status`.
pub fn page(status: &Status) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>nodelock license server</title></head><body>\n<h1>Floating licenses</h1>\n",
    );
    for p in &status.products {
        html.push_str(&format!(
            "<section><h2>{}</h2>\n<p>seats <span class=\"seats\">{}</span>, in use <span class=\"in-use\">{}</span>, available <span class=\"available\">{}</span>, borrowed <span class=\"borrowed\">{}</span></p>\n",
            escape(&p.product),
            p.seats,
            p.in_use,
            p.available,
            p.borrowed
        ));
        html.push_str("<table><thead><tr><th>lease</th><th>workstation</th><th>user</th><th>host</th><th>since</th><th>until</th><th>mode</th></tr></thead><tbody>\n");
        for l in &p.leases {
            html.push_str(&format!(
                "<tr class=\"lease\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&l.id),
                escape(&l.workstation_id),
                escape(l.user.as_deref().unwrap_or("")),
                escape(l.host.as_deref().unwrap_or("")),
                clock::format(l.since),
                clock::format(l.until),
                escape(&l.mode)
            ));
        }
        html.push_str("</tbody></table></section>\n");
    }
    html.push_str("</body></html>\n");
    html
}

/// Serves `service` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<PoolService>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let (app, trim) = router(service, limits);
    crate::vendor::server::listen::serve(listener, app, limits, trim, shutdown).await
}

/// Starts a pool server on `listen` on a thread of its own with `workers`
/// runtime threads (for benchmarks and embedding).
pub fn start(
    listen: std::net::SocketAddr,
    service: Arc<PoolService>,
    workers: usize,
    limits: Limits,
) -> Result<crate::vendor::server::Running, ServerError> {
    let (app, trim) = router(service, limits);
    crate::vendor::server::listen::start(listen, app, trim, workers, limits)
}
