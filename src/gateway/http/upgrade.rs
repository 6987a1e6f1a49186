//! The WebSocket upgrade (`GET /v1/ws`): validates the handshake, negotiates the encoding by
//! subprotocol, optionally authenticates with `Authorization: Bearer`, and hands the upgraded
//! connection to a socket task with deliberately small buffers.

use crate::error::Error;
use crate::gateway::http::ApiError;
use crate::gateway::http::ConnPermit;
use crate::gateway::services::Services;
use crate::gateway::session::{self, SocketParams};
use crate::model::telemetry::ClientInfo;
use crate::protocol::Encoding;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

fn header_has_token(req: &Request, name: header::HeaderName, token: &str) -> bool {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// `GET /v1/ws`.
pub(super) async fn websocket(State(hub): State<Arc<Services>>, mut req: Request) -> Response {
    if hub.shutdown.is_cancelled() {
        return ApiError(Error::Unavailable).into_response();
    }
    let is_upgrade = req.method() == Method::GET
        && header_has_token(&req, header::CONNECTION, "upgrade")
        && header_has_token(&req, header::UPGRADE, "websocket");
    if is_upgrade && req.headers().get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
        // RFC 6455 4.4: tell the client which version the hub speaks.
        let mut response = ApiError(Error::BadRequest("unsupported websocket version: use 13".into())).into_response();
        *response.status_mut() = StatusCode::UPGRADE_REQUIRED;
        response.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return ApiError(Error::BadRequest("expected a websocket upgrade (version 13)".into())).into_response();
    };
    if !is_upgrade {
        return ApiError(Error::BadRequest("expected a websocket upgrade (version 13)".into())).into_response();
    }
    if let Err(e) = super::origin::check(&hub, &req) {
        return ApiError(e).into_response();
    }
    let offered: Vec<String> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_owned()))
        .collect();
    // No offer at all means JSON (handy for command-line clients); offers without one of ours are
    // refused rather than silently answered in an encoding the client did not ask for.
    let encoding = if offered.is_empty() {
        None
    } else {
        match Encoding::negotiate(offered.iter().map(String::as_str)) {
            Some(e) => Some(e),
            None => {
                return ApiError(Error::BadRequest(
                    "unsupported subprotocol: offer anapars.v1.json or anapars.v1.msgpack".into(),
                ))
                .into_response()
            }
        }
    };
    let authenticated = match super::bearer(&hub, req.headers()).await {
        Ok(a) => a,
        Err(e) => return ApiError(e).into_response(),
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return ApiError(Error::BadRequest("connection cannot be upgraded".into())).into_response();
    };
    let permit = req.extensions().get::<ConnPermit>().cloned();
    let cfg = &hub.config;
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(cfg.read_buffer_bytes)
        .write_buffer_size(cfg.write_buffer_bytes)
        .max_write_buffer_size(cfg.max_write_buffer_bytes)
        .max_message_size(Some(cfg.max_frame_hard_bytes))
        .max_frame_size(Some(cfg.max_frame_hard_bytes));
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |peer| super::client_ip(&hub, peer, req.headers()));
    let params = SocketParams {
        conn: hub.next_conn_id(),
        encoding: encoding.unwrap_or(Encoding::Json),
        authenticated,
        client: ClientInfo::from_headers(ip, req.headers()),
    };
    // What the socket starts with waits in a box until the upgrade completes: a future keeps what
    // it captured for its whole life, and this task lives as long as the socket.
    // Everything the socket logs carries its id, as the request's id ties an HTTP request's lines.
    let span = tracing::info_span!("socket", conn = %params.conn);
    hub.sockets.spawn(tracing::Instrument::instrument(
        socket_task(hub.clone(), permit, on_upgrade, Box::new((ws_config, params))),
        span,
    ));

    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(e) = encoding {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(e.protocol()));
    }
    response
}

/// The task of one socket, from the end of the upgrade until the socket closes. Its size is what
/// every open socket costs besides its buffers (see the test below).
async fn socket_task(
    hub: Arc<Services>,
    permit: Option<ConnPermit>,
    on_upgrade: OnUpgrade,
    start: Box<(WebSocketConfig, SocketParams)>,
) {
    let _permit = permit;
    match on_upgrade.await {
        Ok(upgraded) => {
            let (ws_config, params) = *start;
            let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config)).await;
            session::run(ws, hub, params).await;
        }
        Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future an `async fn` returns, without calling it.
    fn output_size<A, B, C, D, R>(_: fn(A, B, C, D) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every idle socket holds one such task: this is the deterministic part of the idle memory
    /// per socket (the rest is its buffers and the allocator's rounding), so growth shows here
    /// before it shows in a measurement.
    #[test]
    fn a_socket_task_stays_under_its_budget() {
        let size = output_size(super::socket_task);
        type Ws = tokio_tungstenite::WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;
        println!(
            "socket task future: {size} bytes; websocket {} bytes; socket {} bytes",
            std::mem::size_of::<Ws>(),
            crate::gateway::session::socket_size::<Ws>()
        );
        // 1,384 bytes in the test profile, of which the socket's state is 640 (the WebSocket 328):
        // the budget leaves less than one cache line of room.
        assert!(size <= 1408, "the socket task future grew to {size} bytes");
    }
}
