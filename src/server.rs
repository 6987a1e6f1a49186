//! The listener: binds, admits connections under a cap, serves HTTP/1.1 (and upgrades to WebSocket)
//! on each, and shuts down gracefully: stop accepting, tell every socket to reconnect (1012), let
//! in-flight requests and writes finish within the grace period, then return.

use crate::app::App;
use crate::config::Config;
use crate::gateway::http::ConnPermit;
use crate::gateway::services::Services;
use anyhow::Context;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// A started hub.
pub struct RunningHub {
    /// The address it listens on (the real port when configured with port 0).
    pub addr: SocketAddr,
    /// Its services.
    pub hub: Arc<Services>,
    app: App,
    accept: JoinHandle<()>,
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
    let accept = tokio::spawn(accept_loop(listener, hub.clone()));
    tracing::info!(%addr, "listening");
    Ok(RunningHub { addr, hub, app, accept })
}

impl RunningHub {
    /// Shuts down gracefully and waits until done (at most about twice the grace period).
    pub async fn shutdown(self) {
        let grace = Duration::from_millis(self.hub.config.shutdown_grace_ms);
        tracing::info!("shutting down: closing sockets with 1012");
        self.hub.shutdown.cancel();
        self.hub.sockets.close();
        if tokio::time::timeout(grace, self.hub.sockets.wait()).await.is_err() {
            tracing::warn!("sockets still open after the grace period; dropping them");
        }
        let _ = self.accept.await;
        self.app.stopped(grace).await;
    }
}

async fn accept_loop(listener: TcpListener, hub: Arc<Services>) {
    let permits = Arc::new(Semaphore::new(hub.config.max_connections));
    let http_conns = TaskTracker::new();
    let router = crate::gateway::http::router(hub.clone());
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            _ = hub.shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = hub.shutdown.cancelled() => break,
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
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let shutdown = hub.shutdown.clone();
        http_conns.spawn(async move {
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.cancelled() => {
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
