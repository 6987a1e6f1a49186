//! The audit log for supervisors: `GET /v1/audit?from=&to=[&after=][&limit=][&format=csv]`, the
//! entries of a time range in order, a page at a time, as JSON or as CSV (to keep or hand over).

use super::{csv_download, no_store, require_bearer, ApiResult, Format};
use crate::error::Error;
use crate::gateway::services::Services;
use crate::model::audit::AuditEntry;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// The audit route.
pub(super) fn routes() -> Router<Arc<Services>> {
    Router::new().route("/v1/audit", get(audit))
}

#[derive(Deserialize)]
struct Params {
    /// Start of the range, Unix ms (included).
    from: i64,
    /// End of the range, Unix ms (excluded).
    to: i64,
    /// The previous page's `next`.
    after: Option<Uuid>,
    /// Entries per page, 1 to 1000 (default 200).
    limit: Option<u32>,
    /// `json` (the default) or `csv`.
    format: Option<Format>,
}

/// `GET /v1/audit`: a page of the log, for supervisors.
async fn audit(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    params: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Response> {
    let identity = require_bearer(&hub, &headers).await?;
    let Query(p) = params.map_err(|e| Error::BadRequest(e.body_text()))?;
    let limit = p.limit.unwrap_or(200);
    let entries =
        crate::domain::audit::page(hub.store.as_ref(), hub.store.as_ref(), identity.who, p.from, p.to, p.after, limit)
            .await?;
    let next = entries.last().filter(|_| entries.len() == limit as usize).map(|e| e.id);
    if p.format != Some(Format::Csv) {
        return Ok(no_store(Json(json!({"entries": entries, "next": next})).into_response()));
    }
    let mut response = csv_download(csv(&entries)?, &format!("anapars-audit-{}-{}.csv", p.from, p.to));
    if let Some(v) = next.and_then(|n| HeaderValue::from_str(&n.to_string()).ok()) {
        response.headers_mut().insert("audit-next", v);
    }
    Ok(response)
}

/// The entries as CSV (RFC 4180, UTF-8).
fn csv(entries: &[AuditEntry]) -> Result<Vec<u8>, Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| Error::Internal(format!("audit csv: {e}"));
    out.write_record(["id", "at", "actor", "actor_id", "action", "object", "object_id", "detail"]).map_err(failed)?;
    let id = |v: Option<Uuid>| v.map(|v| v.to_string()).unwrap_or_default();
    for e in entries {
        out.write_record([
            e.id.to_string(),
            e.at.to_string(),
            e.actor.as_str().to_owned(),
            id(e.actor_id),
            e.action.clone(),
            e.object.clone(),
            id(e.object_id),
            e.detail.as_ref().map(ToString::to_string).unwrap_or_default(),
        ])
        .map_err(failed)?;
    }
    out.into_inner().map_err(|e| Error::Internal(format!("audit csv: {e}")))
}
