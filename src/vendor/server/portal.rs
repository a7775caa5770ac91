//! The offline activation portal: one plain HTML page, no JavaScript, where
//! support or a customer uploads a request file carried from an offline
//! machine and downloads the license (or receipt) to carry back.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{ConnectInfo, Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::{ApiError, Service};
use crate::format::DocumentKind;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#111}\
h1{font-size:1.6rem}label{display:block;font-weight:600;margin:1rem 0 .3rem}\
input[type=file]{font-size:1rem}button{font-size:1rem;padding:.5rem 1.2rem;margin-top:1rem}\
.refusal{border-left:4px solid #b00020;padding:.5rem 1rem;background:#fdecee}\
code{background:#f2f2f2;padding:0 .2rem}";

fn page_html(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /`: the upload form.
pub async fn page() -> Html<String> {
    Html(page_html(
        "nodelock activation portal",
        "<h1>Activate or deactivate a machine without internet</h1>\n\
         <p>On the offline machine, run <code>nodelock request KEY -o request.req</code> (to activate) or \
         <code>nodelock deactivate LICENSE-ID -o request.req</code> (to give a license back), and bring the file here.</p>\n\
         <form method=\"post\" action=\"/portal\" enctype=\"multipart/form-data\">\n\
         <label for=\"request\">Request file</label>\n\
         <input type=\"file\" id=\"request\" name=\"request\" required aria-describedby=\"request-help\">\n\
         <p id=\"request-help\">An activation request or a deactivation request made by nodelock.</p>\n\
         <button type=\"submit\">Upload and download the answer</button>\n\
         </form>\n\
         <p>You get a license file (for an activation) or a receipt (for a deactivation). Carry it back and run \
         <code>nodelock import FILE</code> on the machine.</p>",
    ))
}

/// A refusal page; its code goes in `X-Nodelock-Code`, which the request log
/// records, as for API errors.
fn refusal(status: StatusCode, code: &'static str, message: &str) -> Response {
    let body = format!(
        "<h1>The request was not accepted</h1>\n<div class=\"refusal\" role=\"alert\"><p>{}</p></div>\n\
         <p><a href=\"/\">Upload another file</a></p>",
        escape(message)
    );
    let mut response = (
        status,
        Html(page_html("Request refused — nodelock activation portal", &body)),
    )
        .into_response();
    response
        .headers_mut()
        .insert("x-nodelock-code", HeaderValue::from_static(code));
    response
}

fn download(text: String, filename: &str) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        text,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// `POST /portal`: one file in field `request`; answers with the document as
/// a download, or a page that says why not.
pub async fn upload(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let Ok(mut form) = form else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "bad-body",
            "The upload could not be read; choose the request file and try again.",
        );
    };
    let mut file = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) if field.name() == Some("request") => match field.bytes().await {
                Ok(bytes) => file = Some(bytes.to_vec()),
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return refusal(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too-large",
                        "That file is far too large to be a request file.",
                    );
                }
                Err(_) => {
                    return refusal(
                        StatusCode::BAD_REQUEST,
                        "bad-body",
                        "The upload was interrupted; try again.",
                    );
                }
            },
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "That file is far too large to be a request file.",
                );
            }
            Err(_) => {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    "bad-body",
                    "The upload could not be read; try again.",
                );
            }
        }
    }
    let Some(file) = file.filter(|f| !f.is_empty()) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "bad-body",
            "No file was chosen; choose the request file and try again.",
        );
    };
    let actor = format!("portal {}", addr.ip());
    let answer = match crate::format::envelope::peek_kind(&file) {
        Some(DocumentKind::DeactivationRequest) => svc
            .deactivate(file, actor)
            .await
            .map(|d| download(d.receipt, &format!("{}-receipt.rcpt", d.license_id))),
        Some(DocumentKind::RefreshRequest) => svc
            .refresh(file, actor)
            .await
            .map(|r| download(r.license, &format!("{}.lic", r.license_id))),
        Some(DocumentKind::ClockRequest) => svc
            .time(file)
            .await
            .map(|statement| download(statement, "time-statement.time")),
        _ => svc
            .activate(file, actor)
            .await
            .map(|a| download(a.license, &format!("{}.lic", a.license_id))),
    };
    answer.unwrap_or_else(|e: ApiError| refusal(e.status, e.code, &e.message))
}
