//! The blocking HTTP(S) client for the activation server (ureq over rustls).
//!
//! It tells the causes of failure apart, because a person acts differently on
//! each: a name that does not resolve, nothing listening, no answer in time, a
//! TLS problem, an HTTP error from something that is not a nodelock server,
//! and a refusal the server made (no free seat, expired, bad key), which
//! carries the server's stable code and sentence.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::base::text::{answer_summary, printable_prefix};

/// Largest answer body read; real documents are a few KiB.
const MAX_ANSWER: u64 = 256 * 1024;

/// Why talking to the server failed.
#[allow(
    missing_docs,
    reason = "variant fields are named for what they hold; the #[error] text says what they mean"
)]
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `http://` or `https://`.
    #[error("'{0}' is not a server URL (http://host:port or https://host)")]
    BadUrl(String),
    /// The host name does not resolve.
    #[error(
        "the server name in {url} cannot be resolved (DNS); check the address and this machine's network"
    )]
    Dns { url: String },
    /// Nothing listens there.
    #[error(
        "nothing accepts connections at {url} (connection refused); check the address and that the license server is running"
    )]
    ConnectionRefused { url: String },
    /// No answer in time.
    #[error("the license server at {url} did not answer within {secs} seconds (timeout)")]
    Timeout { url: String, secs: u64 },
    /// TLS failed (certificate, protocol).
    #[error(
        "no secure connection to {url} could be made (TLS: {detail}); check the address and the server's certificate"
    )]
    Tls { url: String, detail: String },
    /// Another network failure.
    #[error("cannot reach {url}: {detail}")]
    Network { url: String, detail: String },
    /// An HTTP error from something that is not a nodelock answer (a proxy, a 5xx).
    #[error("the server at {url} answered HTTP {status}: {message}")]
    Http {
        url: String,
        status: u16,
        /// The server's words (sanitised, shortened).
        message: String,
    },
    /// The license server refused, with its reason.
    #[error("the license server refused: {message}")]
    Refused {
        status: u16,
        /// The server's stable code (docs/API.md).
        code: String,
        message: String,
    },
}

impl ClientError {
    /// Network trouble (as opposed to a refusal): the offline flow can finish the job.
    pub fn is_network(&self) -> bool {
        match self {
            // A server that says it cannot answer now is unavailable, not refusing.
            ClientError::Refused { status, .. } => *status >= 500,
            ClientError::BadUrl(_) => false,
            _ => true,
        }
    }
}

/// At most `max` characters of `text` from a server, without control
/// characters: it reaches a terminal.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// An activation answered online.
#[derive(Debug, Clone)]
pub struct Activated {
    /// The license document, armored.
    pub license: String,
    /// The machine already held a seat of this entitlement: its license was
    /// issued again to this request, and no seat was taken.
    pub reactivated: bool,
}

/// A client for one server.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    timeout: Duration,
}

/// Whether the host of `url` resolves to at least one address.
fn host_resolves(url: &str) -> bool {
    use std::net::ToSocketAddrs;
    let (default_port, rest) = match url.split_once("://") {
        Some(("https", rest)) => (443, rest),
        Some((_, rest)) => (80, rest),
        None => (80, url),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            match port.parse::<u16>() {
                Ok(port) => (host, port),
                Err(_) => (authority, default_port),
            }
        }
        _ => (authority, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .is_ok_and(|mut addrs| addrs.next().is_some())
}

impl Client {
    /// A client for `base` (`https://licenses.example.com`), giving up after `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Client, ClientError> {
        let base = base.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
            return Err(ClientError::BadUrl(base));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(format!("nodelock/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client { agent, base, timeout })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn classify(&self, url: &str, e: ureq::Error) -> ClientError {
        let url = url.to_owned();
        match e {
            ureq::Error::HostNotFound => ClientError::Dns { url },
            ureq::Error::Timeout(_) => ClientError::Timeout {
                url,
                secs: self.timeout.as_secs().max(1),
            },
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                ClientError::ConnectionRefused { url }
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => ClientError::Timeout {
                url,
                secs: self.timeout.as_secs().max(1),
            },
            // rustls reports handshake failures through the I/O layer as
            // InvalidData; on an https URL nothing else does. (Telling them by
            // the rustls error type would tie this to ureq's rustls version.)
            ureq::Error::Io(io)
                if url.starts_with("https://") && io.kind() == std::io::ErrorKind::InvalidData =>
            {
                ClientError::Tls {
                    url,
                    detail: io.to_string(),
                }
            }
            ureq::Error::Tls(detail) => ClientError::Tls {
                url,
                detail: detail.to_owned(),
            },
            ureq::Error::Rustls(e) => ClientError::Tls {
                url,
                detail: e.to_string(),
            },
            ureq::Error::Pem(e) => ClientError::Tls {
                url,
                detail: e.to_string(),
            },
            ureq::Error::TlsRequired => ClientError::Tls {
                url,
                detail: "the server requires TLS".into(),
            },
            // The resolver's own failures come through as plain I/O errors;
            // asking it again tells a name that does not resolve from a
            // network that fails after it did.
            _ if !host_resolves(&url) => ClientError::Dns { url },
            other => ClientError::Network {
                url,
                detail: other.to_string(),
            },
        }
    }

    /// The status and body of an answer (at most [`MAX_ANSWER`] bytes).
    fn read_answer(
        &self,
        url: &str,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<(u16, String), ClientError> {
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| self.classify(url, e))?;
        Ok((status, body))
    }

    fn post(&self, path: &str, document: &[u8]) -> Result<String, ClientError> {
        self.post_answer(path, document).map(|(body, _)| body)
    }

    /// The answer's body, and whether the server said this machine already
    /// held a seat (`x-nodelock-reactivated`).
    fn post_answer(&self, path: &str, document: &[u8]) -> Result<(String, bool), ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .agent
            .post(&url)
            .header("content-type", "application/x-nodelock-document")
            .send(document)
            .map_err(|e| self.classify(&url, e))?;
        let reactivated = response
            .headers()
            .get("x-nodelock-reactivated")
            .is_some_and(|v| v.as_bytes() == b"true");
        let (status, body) = self.read_answer(&url, response)?;
        if status == 200 {
            return Ok((body, reactivated));
        }
        Err(self.refusal(url, status, &body))
    }

    /// What a non-200 answer says: the server's refusal when it is a
    /// nodelock one (a 4xx, or a 503 with a JSON error), else an HTTP error.
    fn refusal(&self, url: String, status: u16, body: &str) -> ClientError {
        if ((400..500).contains(&status) || status == 503)
            && let Ok(parsed) = serde_json::from_str::<ErrorBody>(body)
        {
            // The server's words reach a terminal: no control characters.
            let message = printable_prefix(&parsed.error.message, 500);
            let code: String = parsed
                .error
                .code
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(40)
                .collect();
            return ClientError::Refused {
                status,
                code,
                message,
            };
        }
        let message = answer_summary(body, 200);
        ClientError::Http {
            url,
            status,
            message: if message.is_empty() {
                "(no message)".into()
            } else {
                message
            },
        }
    }

    /// Posts an activation request document; returns the license document.
    pub fn activate(&self, request: &[u8]) -> Result<Activated, ClientError> {
        let (license, reactivated) = self.post_answer("/v1/activations", request)?;
        Ok(Activated { license, reactivated })
    }

    /// Posts `body` to `path` of this server; returns the answer's body
    /// (JSON from a pool server), or the refusal it carried.
    pub fn post_to(&self, path: &str, body: &[u8]) -> Result<String, ClientError> {
        self.post(path, body)
    }

    /// `GET path`: the answer's body, or the refusal it carried.
    pub fn get_from(&self, path: &str, bearer: Option<&str>) -> Result<String, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.call().map_err(|e| self.classify(&url, e))?;
        let (status, body) = self.read_answer(&url, response)?;
        if status == 200 {
            return Ok(body);
        }
        Err(self.refusal(url, status, &body))
    }

    /// Posts JSON with the admin token.
    pub fn post_admin(&self, path: &str, body: &[u8], token: &str) -> Result<String, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .send(body)
            .map_err(|e| self.classify(&url, e))?;
        let (status, body) = self.read_answer(&url, response)?;
        if status == 200 {
            return Ok(body);
        }
        Err(self.refusal(url, status, &body))
    }

    /// Posts a clock request; returns the vendor's time statement.
    pub fn time(&self, request: &[u8]) -> Result<String, ClientError> {
        self.post("/v1/time", request)
    }

    /// Posts a deactivation request document; returns the receipt.
    pub fn deactivate(&self, request: &[u8]) -> Result<String, ClientError> {
        self.post("/v1/deactivations", request)
    }

    /// Posts a refresh request document; returns the refreshed license.
    pub fn refresh(&self, request: &[u8]) -> Result<String, ClientError> {
        self.post("/v1/refreshes", request)
    }

    /// `GET /healthz`: how long the server took to say it is healthy.
    pub fn health(&self) -> Result<Duration, ClientError> {
        let url = format!("{}/healthz", self.base);
        let started = Instant::now();
        let response = self.agent.get(&url).call().map_err(|e| self.classify(&url, e))?;
        let (status, body) = self.read_answer(&url, response)?;
        if status != 200 {
            let message = answer_summary(&body, 200);
            return Err(ClientError::Http { url, status, message });
        }
        Ok(started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_told_apart() {
        let refused = Client::new("http://127.0.0.1:1", Duration::from_secs(2)).unwrap();
        assert!(matches!(
            refused.health(),
            Err(ClientError::ConnectionRefused { .. })
        ));
        let dns = Client::new("http://nodelock-test.invalid", Duration::from_secs(5)).unwrap();
        let got = dns.health();
        assert!(matches!(got, Err(ClientError::Dns { .. })), "{got:?}");
        // A server that hangs up mid-answer: the name resolved, the network failed.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hangs_up = std::thread::spawn(move || {
            use std::io::Read;
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let _ = conn.read(&mut buf);
            drop(conn);
        });
        let client = Client::new(&format!("http://{addr}"), Duration::from_secs(2)).unwrap();
        let got = client.activate(b"x");
        assert!(matches!(got, Err(ClientError::Network { .. })), "{got:?}");
        hangs_up.join().unwrap();
        assert!(matches!(
            Client::new("ftp://x", Duration::from_secs(1)),
            Err(ClientError::BadUrl(_))
        ));
    }

    #[test]
    fn hosts_are_read_from_urls_to_resolve() {
        assert!(host_resolves("http://127.0.0.1:1/v1/x"));
        assert!(host_resolves("https://[::1]:8443"));
        assert!(host_resolves("http://localhost"));
        assert!(!host_resolves("http://nodelock-test.invalid:80/healthz"));
    }

    #[test]
    fn a_silent_server_is_a_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = std::thread::spawn(move || {
            let conn = listener.accept();
            std::thread::sleep(Duration::from_millis(1500));
            drop(conn);
        });
        let client = Client::new(&format!("http://{addr}"), Duration::from_millis(300)).unwrap();
        assert!(matches!(client.activate(b"x"), Err(ClientError::Timeout { .. })));
        hold.join().unwrap();
    }
}
