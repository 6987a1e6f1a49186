//! HTTP/1.1 with hyper: the sign-in routes the harness calls (any phone, code, email and password
//! succeed), announcements (any admin token), `/readyz`, a minimal `/metrics`, and the upgrade at
//! `/v1/ws` with the hub's socket buffer sizes.

use crate::state::Peer;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

/// The only encoding the peer speaks.
pub const JSON_PROTOCOL: &str = "anapars.v1.json";

const MAX_BODY_BYTES: usize = 16 * 1024;

/// A plain tokio-tungstenite socket: 4 KiB read and 8 KiB write buffers. The hub reads into less
/// (`read_buffer_bytes`, 768) and frames its own writes; loadtest/peers/README.md says so beside
/// the memory figures.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(8192)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(256 * 1024))
        .max_frame_size(Some(256 * 1024))
}

/// Serves one TCP connection: HTTP requests, or one upgrade to a WebSocket.
pub async fn connection(peer: Arc<Peer>, stream: TcpStream) {
    let service = service_fn(move |req| route(peer.clone(), req));
    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades().await;
}

fn reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    reply(status, &json!({"error": {"code": code, "message": message}}))
}

async fn route(peer: Arc<Peer>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    Ok(match (&method, path.as_str()) {
        (&Method::GET, "/v1/ws") => upgrade(peer, req),
        (&Method::GET, "/readyz") => reply(StatusCode::OK, &json!({"status": "ready"})),
        (&Method::GET, "/healthz") => reply(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, "/metrics") => {
            // Only the gauge the harness reads, under the hub's name.
            let text = format!("hub_connections {}\n", peer.connections.load(Ordering::Relaxed));
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
            response
        }
        (&Method::POST, _) => {
            let body = match Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
                Ok(collected) => serde_json::from_slice::<Value>(&collected.to_bytes()).unwrap_or(Value::Null),
                Err(_) => return Ok(refuse(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "body too large")),
            };
            post(&peer, &path, &body)
        }
        _ => refuse(StatusCode::NOT_FOUND, "not_found", "route not found"),
    })
}

fn post(peer: &Peer, path: &str, body: &Value) -> Response<Full<Bytes>> {
    if !body.is_object() {
        return refuse(StatusCode::BAD_REQUEST, "bad_request", "invalid json");
    }
    let now = crate::state::now_ms();
    match path {
        "/v1/auth/code" => reply(StatusCode::ACCEPTED, &json!({"expires_in_ms": 300_000, "resend_after_ms": 60_000})),
        "/v1/auth/verify" => {
            // A fresh user whose id is carried by the token: `auth` needs no lookup.
            let user = peer.new_id();
            let token = format!("usr_{user}");
            let device = peer.new_id();
            let expires_at = now + 30 * 24 * 3600 * 1000;
            let answer = json!({"token": token, "expires_at": expires_at, "user_id": &*user, "device_id": &*device, "new_user": true});
            reply(StatusCode::OK, &answer)
        }
        "/v1/agent/login" => {
            let email = body["email"].as_str().unwrap_or_default();
            let id = peer.agent_id(email);
            let agent = json!({"id": &*id, "name": email, "email": email, "status": "away", "capacity": 5});
            reply(
                StatusCode::OK,
                &json!({"token": format!("agt_{id}"), "expires_at": now + 12 * 3600 * 1000, "agent": agent}),
            )
        }
        "/v1/admin/announcements" => {
            let audience = body["audience"].as_str().unwrap_or("everyone");
            match body["text"].as_str().filter(|t| !t.trim().is_empty()) {
                Some(text) if matches!(audience, "users" | "agents" | "everyone") => {
                    let (id, _) = peer.announce(text, audience);
                    reply(StatusCode::ACCEPTED, &json!({"announcement_id": &*id}))
                }
                _ => refuse(StatusCode::BAD_REQUEST, "bad_request", "text and audience"),
            }
        }
        _ => refuse(StatusCode::NOT_FOUND, "not_found", "route not found"),
    }
}

fn upgrade(peer: Arc<Peer>, mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return refuse(StatusCode::BAD_REQUEST, "bad_request", "expected a websocket upgrade (version 13)");
    };
    let offered: Vec<String> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_owned()))
        .collect();
    if !offered.is_empty() && !offered.iter().any(|p| p == JSON_PROTOCOL) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "unsupported subprotocol: this peer speaks anapars.v1.json",
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config())).await;
            crate::socket::run(peer, ws).await;
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if !offered.is_empty() {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(JSON_PROTOCOL));
    }
    response
}
