//! Search over HTTP, for agents' tools beside the console: `GET /v1/search` with the fields of
//! `ticket.search` as query parameters, answered as `ticket.search.ok` is (without `id`).

use super::{require_bearer, ApiResult};
use crate::domain::tickets::search::SearchRequest;
use crate::error::Error;
use crate::gateway::services::Services;
use crate::model::ids::{AgentId, LabelId};
use crate::model::search::SearchFilters;
use crate::model::ticket::TicketStatus;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The search route.
pub(super) fn routes() -> Router<Arc<Services>> {
    Router::new().route("/v1/search", get(search))
}

/// The query parameters: those of `ticket.search`.
#[derive(Deserialize)]
struct Params {
    query: String,
    status: Option<TicketStatus>,
    agent_id: Option<AgentId>,
    label_id: Option<LabelId>,
    from: Option<i64>,
    to: Option<i64>,
    offset: Option<u32>,
    limit: Option<u32>,
}

/// `GET /v1/search?query=...`: an agent's search.
async fn search(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    params: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let identity = require_bearer(&hub, &headers).await?;
    let Query(p) = params.map_err(|e| Error::BadRequest(e.body_text()))?;
    let request = SearchRequest {
        query: p.query,
        filters: SearchFilters { status: p.status, agent: p.agent_id, label: p.label_id, from: p.from, to: p.to },
        offset: p.offset.unwrap_or(0),
        limit: p.limit.unwrap_or(20),
    };
    let (found, more) = hub.tickets.search(identity.who, &request).await?;
    let results: Vec<_> = found.into_iter().map(|f| crate::protocol::search_result_view(f.hit, f.snippet)).collect();
    Ok(Json(json!({ "results": results, "more": more })))
}
