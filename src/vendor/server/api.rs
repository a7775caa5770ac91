//! `POST /v1/activations`, `POST /v1/deactivations`, `GET /healthz`, and the
//! JSON error every failure becomes (docs/API.md).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Service;
use crate::base::codes::api_code;
use crate::documents::activation::ActivationError;
use crate::format::EnvelopeError;
use crate::vendor::ledger::LedgerError;

/// Media type of nodelock documents in HTTP bodies.
pub const DOCUMENT_TYPE: &str = "application/x-nodelock-document";

/// A failure as the API reports it: a status, a stable code, a sentence.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status (4xx for anything the client can fix, 503 when the ledger is unavailable).
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// One sentence for a person.
    pub message: String,
}

impl ApiError {
    /// An error with a registered code; its status comes from the registry.
    fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        let status = api_code(code)
            .and_then(|c| StatusCode::from_u16(c.status).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// The server cannot answer now.
    pub fn unavailable(message: &str) -> ApiError {
        ApiError::new("unavailable", message)
    }

    /// A document that did not parse or verify.
    pub fn from_document(e: ActivationError) -> ApiError {
        let code = match &e {
            ActivationError::Envelope(EnvelopeError::TooLarge { .. }) => "too-large",
            ActivationError::Envelope(
                EnvelopeError::WrongKind { .. } | EnvelopeError::UnknownLabel { .. },
            ) => "wrong-kind",
            ActivationError::Envelope(EnvelopeError::BadSignature | EnvelopeError::UnknownSigner(_)) => {
                "bad-signature"
            }
            ActivationError::Key(_) => "bad-activation-key",
            _ => "bad-document",
        };
        ApiError::new(code, e.to_string())
    }

    /// A ledger refusal, or (for a failure of the ledger itself, whose
    /// details are logged, not sent) "unavailable".
    pub fn from_ledger(e: LedgerError) -> ApiError {
        match api_code(e.code()) {
            Some(registered) if registered.status != 503 => ApiError::new(registered.code, e.to_string()),
            _ => {
                tracing::error!(target: "nodelock::vendor::ledger", error = %e, "ledger failure");
                ApiError::unavailable(
                    "the license server cannot reach its ledger right now; try again in a minute",
                )
            }
        }
    }

    /// A client over its rate limit; it may try again after `wait_secs`.
    pub fn rate_limited(wait_secs: u64) -> ApiError {
        ApiError::new(
            "rate-limited",
            format!(
                "too many requests from this address; try again in {} second(s)",
                wait_secs.max(1)
            ),
        )
    }

    /// A body that did not arrive within the read timeout.
    pub fn slow_request() -> ApiError {
        ApiError::new(
            "slow-request",
            "the request did not complete in time (a body sent too slowly, or a busy ledger); send it again",
        )
    }

    /// A body over the limit.
    pub fn too_large() -> ApiError {
        ApiError::new(
            "too-large",
            format!(
                "the body is larger than {} bytes, far more than any nodelock document",
                super::BODY_LIMIT
            ),
        )
    }

    /// From an axum body rejection (too large, unreadable).
    pub fn from_body(rejection: BytesRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::too_large();
        }
        ApiError::new("bad-body", "the request body could not be read")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": { "code": self.code, "message": self.message } }));
        let mut response = (self.status, body).into_response();
        if let Ok(v) = HeaderValue::from_str(self.code) {
            response.headers_mut().insert("x-nodelock-code", v);
        }
        response
    }
}

fn document_response(text: String, headers: &[(&'static str, String)]) -> Response {
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, DOCUMENT_TYPE)], text).into_response();
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, v);
        }
    }
    response
}

fn actor(addr: &SocketAddr) -> String {
    format!("online {}", addr.ip())
}

pub async fn activations(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(ApiError::from_body)?;
    let answered = svc.activate(body.to_vec(), actor(&addr)).await?;
    Ok(document_response(
        answered.license,
        &[
            ("x-nodelock-license-id", answered.license_id),
            ("x-nodelock-activation-id", answered.activation_id),
            ("x-nodelock-replayed", answered.replayed.to_string()),
            ("x-nodelock-reactivated", answered.reactivated.to_string()),
        ],
    ))
}

pub async fn deactivations(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(ApiError::from_body)?;
    let done = svc.deactivate(body.to_vec(), actor(&addr)).await?;
    Ok(document_response(
        done.receipt,
        &[
            ("x-nodelock-license-id", done.license_id),
            ("x-nodelock-replayed", done.replayed.to_string()),
        ],
    ))
}

pub async fn refreshes(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(ApiError::from_body)?;
    let done = svc.refresh(body.to_vec(), actor(&addr)).await?;
    Ok(document_response(
        done.license,
        &[
            ("x-nodelock-license-id", done.license_id),
            ("x-nodelock-activation-id", done.activation_id),
        ],
    ))
}

pub async fn time(
    State(svc): State<Arc<Service>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(ApiError::from_body)?;
    let statement = svc.time(body.to_vec()).await?;
    Ok(document_response(statement, &[]))
}

pub async fn healthz(State(svc): State<Arc<Service>>) -> Response {
    let svc2 = svc.clone();
    match tokio::task::spawn_blocking(move || svc2.healthy()).await {
        Ok(Ok(())) => Json(json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "refused": svc.refusals(),
        }))
        .into_response(),
        _ => ApiError::unavailable("the ledger does not answer").into_response(),
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        "not-found",
        "no such endpoint; see docs/API.md (POST /v1/activations, POST /v1/deactivations, POST /v1/refreshes, GET /healthz)",
    )
}
