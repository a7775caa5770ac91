//! The accept loop: one HTTP/1.1 connection per task, with a header read
//! timeout that also closes idle keep-alive connections, and a shutdown that
//! finishes requests in flight but waits for them only so long.
//!
//! axum's own `serve` has no read timeouts, so a client that opens
//! connections and never finishes a request would hold them (and delay
//! shutdown) forever.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::task::JoinSet;
use tower::Service as _;

use super::ServerError;
use super::limits::{Limits, Trim};

/// Serves `app` on `listener` until `shutdown` resolves; then stops
/// accepting, lets each connection finish the request it is in, and after
/// `limits.shutdown_grace` drops whatever is left.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    trim: Option<Trim>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    let mut trim_every = tokio::time::interval(Duration::from_secs(60));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = trim_every.tick() => {
                if let Some(trim) = &trim {
                    trim();
                }
            }
            // Reap finished connection tasks so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    // Out of descriptors or a reset during accept: keep serving.
                    Err(e) => {
                        tracing::warn!(target: "nodelock::vendor::server", error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                connections.spawn(connection(stream, peer, app.clone(), limits, stop_rx.clone()));
            }
        }
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            target: "nodelock::vendor::server",
            open = connections.len(),
            "shutdown grace over; closing the connections left"
        );
        connections.abort_all();
    }
    Ok(())
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let stopping = async move {
        let _ = stop.wait_for(|stopping| *stopping).await.map(|_| ());
    };
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move { app.call(request).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopping => {
            // Finish the request in flight (if any), then close.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// A server running on its own thread (for benchmarks and embedding).
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Stops it, finishing requests in flight.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Serves `app` on `listen` from a thread of its own with `workers` runtime
/// threads, until the returned handle is stopped or dropped.
pub fn start(
    listen: SocketAddr,
    app: Router,
    trim: Option<Trim>,
    workers: usize,
    limits: Limits,
) -> Result<Running, ServerError> {
    let io = |source| ServerError::Io {
        addr: listen.to_string(),
        source,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .map_err(io)?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("nodelock-server".into())
        .spawn(move || {
            let _ = runtime.block_on(serve(listener, app, limits, trim, async {
                let _ = stopped.await;
            }));
        })
        .map_err(io)?;
    Ok(Running {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}
