//! Purchases over HTTP: billing's signed reports (`POST /v1/billing/purchases`) and a user's own
//! list (`GET /v1/me/purchases`).

use crate::domain::billing::signature;
use crate::gateway::http::{body_bytes, require_user, ApiResult};
use crate::gateway::services::Services;
use crate::model::purchase::Recorded;
use crate::protocol::WireError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// The purchase routes.
pub(super) fn routes() -> Router<Arc<Services>> {
    Router::new().route("/v1/billing/purchases", post(report)).route("/v1/me/purchases", get(mine))
}

/// `POST /v1/billing/purchases`: one report, signed in `Anapars-Signature`. `201` for a new
/// purchase, `200` for a change or a repeat, with the purchase as its buyer sees it.
async fn report(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let signed = headers.get(signature::HEADER).map(HeaderValue::as_bytes);
    let result = hub.billing.receive(signed, body_bytes(body)).await;
    // Every report is counted, refusals by their error code.
    let outcome = match &result {
        Ok(recorded) => recorded.outcome(),
        Err(e) => e.code().as_str(),
    };
    metrics::counter!(crate::metrics::PURCHASE_REPORTS, "outcome" => outcome).increment(1);
    let recorded = result?;
    let status = match recorded {
        Recorded::Created(_) => StatusCode::CREATED,
        Recorded::Updated(_) | Recorded::Duplicate(_) => StatusCode::OK,
    };
    let purchase = crate::protocol::purchase_view(recorded.purchase(), crate::model::time::now_ms());
    Ok((status, Json(json!({"outcome": recorded.outcome(), "purchase": purchase}))).into_response())
}

/// `GET /v1/me/purchases` with a user's token: `{"purchases": [...]}`, newest first.
async fn mine(State(hub): State<Arc<Services>>, headers: HeaderMap) -> ApiResult<Response> {
    let user = require_user(&hub, &headers).await?;
    let now = crate::model::time::now_ms();
    let purchases: Vec<_> =
        hub.billing.purchases(user).await?.iter().map(|p| crate::protocol::purchase_view(p, now)).collect();
    Ok(super::no_store(Json(json!({ "purchases": purchases })).into_response()))
}
