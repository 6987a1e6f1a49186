//! The listener: binds, admits connections under a cap, serves HTTP/1.1 (and upgrades to WebSocket)
//! on each, and shuts down gracefully: stop accepting, tell every socket to reconnect (1012), let
//! in-flight requests and writes finish within the grace period, then stop the node's tasks in
//! order ([`App::shutdown`]) and return.

use crate::app::App;
use crate::config::Config;
use crate::error::Error;
use crate::gateway::http::ConnPermit;
use crate::gateway::services::Services;
use crate::protocol::WireError;
use anyhow::Context;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Largest HTTP request head (request line and header fields together), in bytes.
pub const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// Most header fields in an HTTP request head (hyper's own limit, left at its default: setting it
/// moves the parser's field table from the stack to the heap).
pub const MAX_HEADER_FIELDS: usize = 100;
/// After answering a request head over the limits, how long the listener reads (and discards) what
/// the client still sends before it closes the connection.
const REFUSAL_DRAIN: Duration = Duration::from_secs(2);

/// A started hub.
pub struct RunningHub {
    /// The address it listens on (the real port when configured with port 0).
    pub addr: SocketAddr,
    /// Its services.
    pub hub: Arc<Services>,
    app: App,
}

/// Builds the hub from `config`, binds its listener and starts serving.
///
/// # Errors
/// The configuration is invalid, storage or Redis are unreachable, or the address cannot be bound.
pub async fn start(config: Config) -> anyhow::Result<RunningHub> {
    let listen = config.listen;
    crate::metrics::prometheus();
    let app = crate::app::build(config).await?;
    let hub = app.services.clone();
    let listener = TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    app.listen(accept_loop(listener, hub.clone()));
    // Only now: a supervisor or test that waits for this line may connect at once.
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    tracing::info!(
        %addr,
        storage = hub.store.backend(),
        objects = hub.objects.backend(),
        clustered = hub.clustered,
        workers,
        "hub ready"
    );
    Ok(RunningHub { addr, hub, app })
}

impl RunningHub {
    /// Shuts down gracefully and waits until done (at most about twice the grace period): see
    /// [`App::shutdown`].
    pub async fn shutdown(self) {
        self.app.shutdown().await;
    }
}

async fn accept_loop(listener: TcpListener, hub: Arc<Services>) {
    let permits = Arc::new(Semaphore::new(hub.config.max_connections));
    let http_conns = TaskTracker::new();
    let router = crate::gateway::http::router(hub.clone());
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            _ = hub.listening.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = hub.listening.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or a transient network error: back off, do not spin.
                    tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        backoff = Duration::from_millis(5);
        let _ = stream.set_nodelay(true);
        let permit = ConnPermit::new(permit);
        let service = router.clone().map_request(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(permit.clone());
            req
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(hub.config.upgrade_timeout_ms))
            .max_buf_size(64 * 1024)
            .max_header_size(MAX_REQUEST_HEAD)
            .serve_connection(TokioIo::new(HttpConn { tcp: stream, refusal: None }), TowerToHyperService::new(service))
            .with_upgrades();
        // Until the listener closes, a connection opened during shutdown is served (`/readyz`
        // answers 503 on it); idle keep-alive connections end with the listener.
        let closing = hub.listening.clone();
        http_conns.spawn(async move {
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = closing.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
        });
    }
    drop(listener);
    http_conns.close();
    let grace = Duration::from_millis(hub.config.shutdown_grace_ms);
    if tokio::time::timeout(grace, http_conns.wait()).await.is_err() {
        tracing::warn!("http requests still running after the grace period");
    }
}

/// A connection as hyper sees it. hyper answers a request head over [`MAX_REQUEST_HEAD`] bytes or
/// [`MAX_HEADER_FIELDS`] fields itself, with a `431` without a body, and closes the connection; here
/// the hub's JSON error body takes that answer's place (no route of the hub answers `431`, so a write
/// that starts with that status line is hyper's). The client has usually sent more of the head than
/// hyper read, and closing a connection with unread input resets it, which can destroy the answer
/// before the client reads it: so the rest is read and discarded until the client closes, at most
/// [`REFUSAL_DRAIN`].
struct HttpConn {
    tcp: TcpStream,
    refusal: Option<Box<Refusal>>,
}

/// The answer to a request head over the limits, while it is written and the connection drained.
struct Refusal {
    response: Vec<u8>,
    written: usize,
    shut: bool,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Refusal {
    /// Starts the refusal if `first`, the start of what hyper writes, is its automatic `431`.
    fn start(refusal: &mut Option<Box<Refusal>>, first: &[u8]) {
        if refusal.is_some() || !first.starts_with(b"HTTP/1.1 431 ") {
            return;
        }
        let error = Error::HeadTooLarge { bytes: MAX_REQUEST_HEAD, fields: MAX_HEADER_FIELDS };
        error.observe();
        let body = crate::protocol::errors::http_body(&error).to_string();
        let response = format!(
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        *refusal = Some(Box::new(Refusal {
            response: response.into_bytes(),
            written: 0,
            shut: false,
            deadline: Box::pin(tokio::time::sleep(REFUSAL_DRAIN)),
        }));
    }

    /// Writes the hub's answer in place of hyper's `len` bytes, which count as written once it is out.
    fn poll_write(
        &mut self,
        tcp: &mut TcpStream,
        cx: &mut TaskContext<'_>,
        len: usize,
    ) -> Poll<std::io::Result<usize>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::ErrorKind::TimedOut.into()));
        }
        while self.written < self.response.len() {
            let n = ready!(Pin::new(&mut *tcp).poll_write(cx, &self.response[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(len))
    }

    /// Shuts the hub's side, then reads and drops what the client still sends until it closes its
    /// side, fails, or the deadline passes.
    fn poll_drain(&mut self, tcp: &mut TcpStream, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        if !self.shut {
            ready!(Pin::new(&mut *tcp).poll_shutdown(cx))?;
            self.shut = true;
        }
        let mut scratch = [0u8; 4096];
        loop {
            if self.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut *tcp).poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => {}
                _ => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncRead for HttpConn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for HttpConn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let HttpConn { tcp, refusal } = self.get_mut();
        Refusal::start(refusal, buf);
        match refusal {
            Some(r) => r.poll_write(tcp, cx, buf.len()),
            None => Pin::new(tcp).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let HttpConn { tcp, refusal } = self.get_mut();
        Refusal::start(refusal, bufs.iter().find(|b| !b.is_empty()).map_or(&[], |b| &b[..]));
        match refusal {
            Some(r) => r.poll_write(tcp, cx, bufs.iter().map(|b| b.len()).sum()),
            None => Pin::new(tcp).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        let HttpConn { tcp, refusal } = self.get_mut();
        match refusal {
            Some(r) => r.poll_drain(tcp, cx),
            None => Pin::new(tcp).poll_shutdown(cx),
        }
    }
}

/// Runs the hub until SIGTERM or Ctrl-C, then shuts down gracefully.
///
/// # Errors
/// As [`start`].
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let running = start(config).await?;
    wait_for_signal().await;
    running.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
