//! Push registration over HTTP, for apps that register before (or without) opening a socket:
//! `PUT /v1/push`, `DELETE /v1/push`, and the hub's VAPID public key for Web Push subscriptions.

use super::{parse_json, require_bearer, ApiResult};
use crate::gateway::services::Services;
use crate::protocol::views::{push_registration_view, PushRegistrationRequest};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// The push routes.
pub(super) fn routes() -> Router<Arc<Services>> {
    Router::new().route("/v1/push", put(register).delete(unregister)).route("/v1/push/vapid", get(vapid))
}

/// `PUT /v1/push`: the body of `push.register`, for the token's session.
async fn register(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let identity = require_bearer(&hub, &headers).await?;
    let request: PushRegistrationRequest = parse_json(body)?;
    let registration = hub.push.register(identity.who, identity.session, request.into_model()?).await?;
    Ok(Json(json!({ "registration": push_registration_view(&registration) })).into_response())
}

/// `DELETE /v1/push`: the token's session receives no more notifications.
async fn unregister(State(hub): State<Arc<Services>>, headers: HeaderMap) -> ApiResult<StatusCode> {
    let identity = require_bearer(&hub, &headers).await?;
    hub.push.unregister(identity.session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/push/vapid`: `{"public_key"}`, the `applicationServerKey` of Web Push subscriptions.
async fn vapid(State(hub): State<Arc<Services>>) -> Json<serde_json::Value> {
    Json(json!({ "public_key": hub.vapid_public_key }))
}
