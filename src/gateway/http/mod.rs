//! The HTTP side of the one listener: sign-in, the owner's account, billing's purchase reports,
//! health, metrics, the WebSocket upgrade (with its `Origin` check) and the agent console's files. Errors leave as
//! `{"error": {"code", "message", "retry_after_ms"?}}` with the status from
//! [`WireError::http_status`] and a `Retry-After` header where one applies
//! ([`crate::protocol::errors`], shared with the socket's error frames).

mod account;
mod audit;
mod client;
mod console;
mod export;
mod origin;
mod purchases;
mod push;
mod reports;
mod search;
mod upgrade;
mod uploads;

use crate::domain::auth::DeviceInfo;
use crate::error::{Error, SizeUnit};
use crate::gateway::services::Services;
use crate::model::account::Identity;
use crate::protocol::errors::{self, WireError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// An admission permit, held for the life of the TCP connection, including after it became a
/// WebSocket (the socket task keeps a clone).
#[derive(Clone)]
pub(crate) struct ConnPermit(#[allow(dead_code)] Arc<tokio::sync::OwnedSemaphorePermit>);

impl ConnPermit {
    /// Wraps the listener's permit for one accepted connection.
    pub(crate) fn new(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        Self(Arc::new(permit))
    }
}

/// The header that carries a request's id both ways.
const REQUEST_ID: &str = "x-request-id";

/// Largest HTTP request body the JSON routes read (image uploads have their own limit).
const MAX_BODY: usize = 16 * 1024;

/// The hub's routes.
pub(crate) fn router(hub: Arc<Services>) -> Router {
    Router::new()
        .route("/v1/auth/code", post(request_code))
        .route("/v1/auth/verify", post(verify_code))
        .route("/v1/auth/session", delete(sign_out))
        .route("/v1/agent/login", post(agent_login))
        .route("/v1/me", get(me))
        .route("/v1/me/image", put(put_image).delete(delete_image))
        .merge(account::routes())
        .merge(uploads::routes())
        .merge(push::routes())
        .merge(search::routes())
        .merge(reports::routes())
        .merge(audit::routes())
        .route("/v1/media/{file}", get(media))
        .route("/v1/admin/announcements", post(announce))
        .route("/v1/ws", get(upgrade::websocket))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics_text))
        .merge(purchases::routes())
        .merge(console::routes())
        .fallback(|| async { ApiError(Error::NotFound("route")) })
        .method_not_allowed_fallback(|| async { ApiError(Error::MethodNotAllowed) })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(observe))
        .with_state(hub)
}

/// An error on its way out as an HTTP response.
pub(crate) struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        e.observe();
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(errors::http_body(&e))).into_response();
        if let Some(secs) = e.retry_after_secs() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// How a supervisors' route answers: `?format=json` (the default) or `?format=csv`.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    Json,
    Csv,
}

/// CSV bytes as a download named `filename`, not stored by caches.
pub(crate) fn csv_download(bytes: Vec<u8>, filename: &str) -> Response {
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    no_store(response)
}

/// `Cache-Control: no-store` on an answer that carries a token, a number or other personal data.
pub(crate) fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Every request: its id (the client's `X-Request-Id` when it is 1 to 64 letters, digits, `-`, `_`
/// or `.`, else a new UUIDv7), answered in `X-Request-Id` and carried by the `http` span around
/// everything the request logs, so that a client's report and the hub's lines meet; and its
/// latency, by route and status.
async fn observe(req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".to_owned());
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let span = tracing::info_span!("http", request_id = %id, method = %req.method(), route = %route);
    let started = std::time::Instant::now();
    let mut response = tracing::Instrument::instrument(next.run(req), span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    metrics::histogram!(
        crate::metrics::HTTP_LATENCY,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// The request body, with the hub's own error for one over [`MAX_BODY`].
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Error> {
    body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => {
            Error::TooLarge { what: "request body", size: None, limit: MAX_BODY, unit: SizeUnit::Bytes }
        }
        other => Error::BadRequest(other.body_text()),
    })
}

/// Parses a JSON body into `T`, with the hub's own errors for a body that is too large or not JSON.
pub(crate) fn parse_json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, Error> {
    let body = body_bytes(body)?;
    serde_json::from_slice(&body).map_err(|e| Error::BadRequest(format!("invalid request body: {e}")))
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the last address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub(crate) fn client_ip(hub: &Services, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let trusted = hub.config.trusted_proxy_ips().unwrap_or_default();
    if !trusted.contains(&peer.ip()) {
        return peer.ip();
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded.into_iter().rev().find(|ip| !trusted.contains(ip)).unwrap_or(peer.ip())
}

/// The identity behind `Authorization: Bearer <token>` (a user's or an agent's token).
pub(crate) async fn bearer(hub: &Services, headers: &HeaderMap) -> Result<Option<Identity>, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    // The scheme is case-insensitive (RFC 7235).
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .ok_or(Error::Unauthorized)?;
    hub.sessions.authenticate(token.trim()).await.map(Some)
}

pub(crate) async fn require_bearer(hub: &Services, headers: &HeaderMap) -> Result<Identity, Error> {
    bearer(hub, headers).await?.ok_or(Error::Unauthenticated)
}

/// `{"phone"}`: the body of both code requests (sign-in, and the number change).
#[derive(Deserialize)]
pub(crate) struct CodeRequest {
    pub(crate) phone: String,
}

/// `202` `{"expires_in_ms", "resend_after_ms"}`: the answer to both code requests.
pub(crate) fn code_sent(sent: crate::domain::auth::CodeSent) -> Response {
    let body = json!({
        "expires_in_ms": sent.expires_in.as_millis() as u64,
        "resend_after_ms": sent.resend_after.as_millis() as u64,
    });
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

async fn request_code(
    State(hub): State<Arc<Services>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let req: CodeRequest = parse_json(body)?;
    let ip = client_ip(&hub, peer, &headers);
    Ok(code_sent(hub.auth.request_code(&req.phone, ip).await?))
}

#[derive(Deserialize)]
struct VerifyRequest {
    phone: String,
    code: String,
    device: DeviceInfo,
}

async fn verify_code(State(hub): State<Arc<Services>>, body: Result<Bytes, BytesRejection>) -> ApiResult<Response> {
    let req: VerifyRequest = parse_json(body)?;
    let signed_in = hub.auth.verify_code(&req.phone, &req.code, &req.device).await?;
    let body = json!({
        "token": signed_in.token,
        "expires_at": signed_in.session.expires_at,
        "user_id": signed_in.user.id,
        "device_id": signed_in.device.id,
        "new_user": signed_in.new_user,
    });
    Ok(no_store(Json(body).into_response()))
}

async fn sign_out(State(hub): State<Arc<Services>>, headers: HeaderMap) -> ApiResult<StatusCode> {
    let identity = require_bearer(&hub, &headers).await?;
    hub.sessions.sign_out(identity.who, identity.session).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct AgentLogin {
    email: String,
    password: String,
}

async fn agent_login(
    State(hub): State<Arc<Services>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let req: AgentLogin = parse_json(body)?;
    let ip = client_ip(&hub, peer, &headers);
    let signed_in = hub.agents.login(&req.email, &req.password, ip).await?;
    let a = &signed_in.agent;
    let body = json!({
        "token": signed_in.token,
        "expires_at": signed_in.session.expires_at,
        "agent": {"id": a.id, "name": a.name, "email": a.email, "status": a.status, "capacity": a.capacity},
    });
    Ok(no_store(Json(body).into_response()))
}

#[derive(Deserialize)]
struct Announcement {
    text: String,
    #[serde(default = "everyone")]
    audience: crate::ports::broker::Broadcast,
}

fn everyone() -> crate::ports::broker::Broadcast {
    crate::ports::broker::Broadcast::Everyone
}

/// Checks the operator token: `forbidden` while no `admin_token` is configured, `unauthorized` for
/// a missing or wrong one. Compared as SHA-256 digests, so the time taken says nothing about how
/// much of the token was right.
pub(super) fn require_admin(hub: &Services, headers: &HeaderMap) -> Result<(), Error> {
    use sha2::{Digest, Sha256};
    let Some(expected) = &hub.config.admin_token else { return Err(Error::Forbidden) };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(Error::Unauthorized)?;
    if Sha256::digest(given.as_bytes()) != Sha256::digest(expected.0.as_bytes()) {
        return Err(Error::Unauthorized);
    }
    Ok(())
}

/// `POST /v1/admin/announcements` `{"text", "audience"?: "users" | "agents" | "everyone"}`.
async fn announce(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require_admin(&hub, &headers)?;
    let req: Announcement = parse_json(body)?;
    let id = crate::domain::announcements::announce(hub.broker.as_ref(), &req.text, req.audience)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "announcement_id": id }))).into_response())
}

async fn me(State(hub): State<Arc<Services>>, headers: HeaderMap) -> ApiResult<Response> {
    let identity = require_bearer(&hub, &headers).await?;
    let crate::model::ids::Principal::User(user_id) = identity.who else { return Err(Error::Forbidden.into()) };
    let user = hub.auth.user(user_id).await?;
    let body = json!({"user_id": user.id, "phone": user.phone.e164(), "registered_at": user.registered_at});
    Ok(no_store(Json(body).into_response()))
}

pub(crate) async fn require_user(hub: &Services, headers: &HeaderMap) -> Result<crate::model::ids::UserId, Error> {
    match require_bearer(hub, headers).await?.who {
        crate::model::ids::Principal::User(u) => Ok(u),
        crate::model::ids::Principal::Agent(_) => Err(Error::Forbidden),
    }
}

/// `PUT /v1/me/image`: the raw image file as the body.
async fn put_image(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    let user = require_user(&hub, &headers).await?;
    let limit = hub.config.max_image_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| Error::TooLarge {
        what: "image",
        size: None,
        limit,
        unit: SizeUnit::Bytes,
    })?;
    let profile = crate::protocol::profile_view(&hub.profiles.set_image(user, bytes.to_vec()).await?);
    Ok(Json(json!({ "profile": profile })).into_response())
}

/// `DELETE /v1/me/image`.
async fn delete_image(State(hub): State<Arc<Services>>, headers: HeaderMap) -> ApiResult<Response> {
    let user = require_user(&hub, &headers).await?;
    let profile = crate::protocol::profile_view(&hub.profiles.clear_image(user).await?);
    Ok(Json(json!({ "profile": profile })).into_response())
}

/// `GET /v1/media/<sha256>.jpg`: content-addressed, so cacheable for good.
async fn media(
    State(hub): State<Arc<Services>>,
    axum::extract::Path(file): axum::extract::Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let etag = format!("\"{}\"", file.trim_end_matches(".jpg"));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let bytes = hub.profiles.media(&file).await.ok_or(Error::NotFound("image"))?;
    let mut response = bytes.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok(response)
}

async fn ready(State(hub): State<Arc<Services>>) -> Response {
    if hub.draining.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "shutting_down"}))).into_response();
    }
    match hub.ready().await {
        Ok(None) => Json(json!({"status": "ready"})).into_response(),
        Ok(Some(degraded)) => Json(json!({"status": "ready", "degraded": degraded})).into_response(),
        Err(down) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "down": down}))).into_response()
        }
    }
}

async fn metrics_text() -> Response {
    crate::metrics::process_collector().collect();
    crate::metrics::collect_allocator();
    let text = crate::metrics::prometheus().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
