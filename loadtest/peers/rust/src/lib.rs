//! `anapars-peer-rust`: the hub's chat relay and announcement fan-out in bare tokio +
//! tokio-tungstenite, as a benchmark fixture for the load harness. It keeps tickets and their
//! events in memory, checks no token, speaks JSON only, and implements just the part of
//! protocol/PROTOCOL.md that the harness's `chat`, `idle` and `burst` scenarios use. It is the
//! same-language upper bound the hub is measured against: what the hot path costs with nothing
//! else (no storage, no authentication, no limits but the outbound queue) in the way.
//!
//! # Layout
//!
//! - [`state`]: the shared state: tickets with their events and subscribers, the authenticated
//!   sockets (for announcements), queue watchers; each socket's bounded outbox.
//! - [`http`]: the HTTP routes the harness calls and the WebSocket upgrade (hyper).
//! - [`socket`]: one task per socket: requests in, replies and pushed events out, pings.
//! - `main.rs`: the command line (`--port`, `--host`, `--ping-interval-ms`).

#![forbid(unsafe_code)]

pub mod http;
pub mod socket;
pub mod state;

use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Settings of a peer.
#[derive(Clone, Debug)]
pub struct Config {
    /// Interval of WebSocket pings; a socket that did not answer the previous one is dropped.
    /// Default 25 s, as the hub.
    pub ping_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self { ping_interval: Duration::from_secs(25) }
    }
}

/// Serves HTTP and `/v1/ws` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, config: Config) {
    let peer = Arc::new(state::Peer::new(config));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(http::connection(peer.clone(), stream));
            }
            // Out of files (EMFILE) and the like: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
