//! Cross-site WebSocket hijacking protection: the `Origin` of a `/v1/ws` upgrade.
//!
//! Browsers send `Origin` with every WebSocket handshake and let any page open a socket to any
//! host, so without this check a page on another site could open a socket to the hub from an
//! agent's browser. The console never puts its token anywhere a browser sends by itself (no
//! cookie, no URL), so such a socket could not authenticate today; the check keeps it that way
//! should that ever change, and refuses the socket before it costs anything. Native apps send no
//! `Origin`, and are let through.

use crate::config::Origin;
use crate::error::Error;
use crate::gateway::services::Services;
use axum::extract::{ConnectInfo, Request};
use axum::http::header;
use std::net::SocketAddr;

/// The hub's own origin as the client addressed it: the `Host` header, with the scheme `http`, or
/// the `X-Forwarded-Proto` of a trusted proxy (a TLS-terminating proxy says `https`).
fn own_origin(hub: &Services, req: &Request) -> Option<Origin> {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let trusted = hub.config.trusted_proxy_ips().unwrap_or_default();
    let forwarded_proto = peer
        .filter(|p| trusted.contains(&p.ip()))
        .and_then(|_| req.headers().get("x-forwarded-proto"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let scheme = match forwarded_proto.as_deref() {
        Some("https") => "https",
        _ => "http",
    };
    Origin::of_host(scheme, req.headers().get(header::HOST)?.to_str().ok()?)
}

/// Checks the `Origin` of a WebSocket upgrade: none (not a browser), the hub's own origin, or one
/// listed in `allowed_origins`.
///
/// # Errors
/// [`Error::Forbidden`] for any other origin, including `null` and unparsable ones.
pub(super) fn check(hub: &Services, req: &Request) -> Result<(), Error> {
    let Some(value) = req.headers().get(header::ORIGIN) else { return Ok(()) };
    let Some(origin) = value.to_str().ok().and_then(|v| Origin::parse(v).ok()) else {
        return Err(Error::Forbidden);
    };
    if own_origin(hub, req).as_ref() == Some(&origin) {
        return Ok(());
    }
    if hub.config.allowed_origin_list().unwrap_or_default().contains(&origin) {
        return Ok(());
    }
    tracing::debug!(origin = ?value, "websocket upgrade refused: origin not allowed");
    Err(Error::Forbidden)
}
