//! The users'-rights routes: the export, the number change and the account deletion. They are
//! HTTP only (not socket requests): rare, one answer each, and the export is a download.

use crate::domain::account::Requester;
use crate::error::Error;
use crate::gateway::http::{
    client_ip, code_sent, no_store, parse_json, require_admin, require_user, ApiResult, CodeRequest,
};
use crate::gateway::services::Services;
use crate::model::ids::UserId;
use crate::protocol::consent_view;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Chunks of an export in flight between its writer and the socket: with 64 KiB chunks, at most
/// about a quarter of a megabyte per export is buffered whatever the account's size.
const EXPORT_CHUNKS_IN_FLIGHT: usize = 4;

pub(super) fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route("/v1/me/export", get(export))
        .route("/v1/me/phone/code", post(phone_code))
        .route("/v1/me/phone/verify", post(phone_verify))
        .route("/v1/me/deletion", post(request_deletion))
        .route("/v1/me/deletion/confirm", post(confirm_deletion))
        .route("/v1/admin/users/lookup", post(admin_lookup))
        .route("/v1/admin/users/{id}/export", get(admin_export))
        .route("/v1/admin/users/{id}/deletion", post(admin_request_deletion))
        .route("/v1/admin/users/{id}/deletion/confirm", post(admin_confirm_deletion))
}

/// `GET /v1/me/export`: the whole document, streamed. Errors found before the first byte are
/// ordinary error answers; a failure later cuts the body short (the client sees an incomplete
/// transfer, and the document lacks `"complete": true`).
async fn export(State(hub): State<Arc<Services>>, headers: HeaderMap) -> ApiResult<Response> {
    let user = require_user(&hub, &headers).await?;
    stream_export(hub, user, Requester::User).await
}

/// The export of `user`, streamed, for them or for an operator.
async fn stream_export(hub: Arc<Services>, user: UserId, by: Requester) -> ApiResult<Response> {
    hub.account.admit_export(user, by).await?;
    let consent = consent_view(&hub.telemetry.consent(user).await?);
    let (tx, rx) = mpsc::channel::<Bytes>(EXPORT_CHUNKS_IN_FLIGHT);
    let (done_tx, done_rx) = oneshot::channel();
    let writer = hub.clone();
    // Tracked with the sockets: shutdown gives a download in progress the grace period to finish.
    hub.sockets.spawn(async move {
        let result = super::export::write(writer.store.as_ref(), writer.objects.as_ref(), user, consent, tx).await;
        let outcome = if result.is_ok() { "complete" } else { "failed" };
        metrics::counter!(crate::metrics::EXPORTS, "outcome" => outcome).increment(1);
        if let Err(e) = &result {
            tracing::warn!(user_id = %user, error = %e, "export cut short");
        }
        let _ = done_tx.send(result);
    });
    let body = futures_util::stream::unfold((rx, Some(done_rx)), |(mut rx, done)| async move {
        match rx.recv().await {
            Some(chunk) => Some((Ok(chunk), (rx, done))),
            None => match done?.await {
                Ok(Ok(())) => None,
                _ => Some((Err(std::io::Error::other("export failed")), (rx, None))),
            },
        }
    });
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let name = format!("attachment; filename=\"anapars-export-{}.json\"", user.0.simple());
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(no_store(response))
}

/// `POST /v1/me/phone/code` `{"phone"}`: a code to the new number.
async fn phone_code(
    State(hub): State<Arc<Services>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let user = require_user(&hub, &headers).await?;
    let req: CodeRequest = parse_json(body)?;
    Ok(code_sent(hub.auth.request_phone_change(user, &req.phone, client_ip(&hub, peer, &headers)).await?))
}

#[derive(Deserialize)]
struct PhoneVerifyRequest {
    phone: String,
    code: String,
}

/// `POST /v1/me/phone/verify` `{"phone", "code"}`: the account moves to the new number.
async fn phone_verify(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let user = require_user(&hub, &headers).await?;
    let req: PhoneVerifyRequest = parse_json(body)?;
    let account = hub.auth.change_phone(user, &req.phone, &req.code).await?;
    let body = json!({"user_id": account.id, "phone": account.phone.e164(), "registered_at": account.registered_at});
    Ok(no_store(Json(body).into_response()))
}

/// `POST /v1/me/deletion`: what deleting the account would lose, and the confirmation.
async fn request_deletion(State(hub): State<Arc<Services>>, headers: HeaderMap) -> ApiResult<Response> {
    let user = require_user(&hub, &headers).await?;
    deletion_notice(&hub, user).await
}

/// What deleting `user`'s account would lose, and the confirmation the deletion needs.
async fn deletion_notice(hub: &Services, user: UserId) -> ApiResult<Response> {
    let notice = hub.account.request_deletion(&hub.auth, user).await?;
    let now = crate::model::time::now_ms();
    let view = |list: &[crate::model::purchase::Purchase]| {
        list.iter().map(|p| crate::protocol::purchase_view(p, now)).collect::<Vec<_>>()
    };
    let body = json!({
        "confirmation": notice.confirmation,
        "expires_at": notice.expires_at,
        "will_delete": {"tickets": notice.tickets, "devices": notice.devices, "purchases": notice.purchases},
        "paid_and_lost": {
            "active_subscriptions": view(&notice.active_subscriptions),
            "activations": view(&notice.activations),
        },
    });
    Ok(no_store(Json(body).into_response()))
}

#[derive(Deserialize)]
struct ConfirmDeletion {
    confirmation: String,
}

/// `POST /v1/me/deletion/confirm` `{"confirmation"}`: deletes the account.
async fn confirm_deletion(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let user = require_user(&hub, &headers).await?;
    delete_account(&hub, user, body, Requester::User).await
}

/// Deletes `user`'s account with the notice's confirmation.
async fn delete_account(
    hub: &Services,
    user: UserId,
    body: Result<Bytes, BytesRejection>,
    by: Requester,
) -> ApiResult<Response> {
    let req: ConfirmDeletion = parse_json(body)?;
    let deleted =
        hub.account.confirm_deletion(&hub.auth, &hub.tickets, &hub.profiles, user, &req.confirmation, by).await?;
    Ok(no_store(Json(json!({"deleted_at": deleted.deleted_at, "tickets_deleted": deleted.tickets})).into_response()))
}

// ---------------------------------------------------------------------------------------------
// The same rights, exercised by an operator for a user who asked through the policy's contact
// links (`anapars-hub user ...` calls these with the admin token).

#[derive(Deserialize)]
struct Lookup {
    phone: String,
}

/// `POST /v1/admin/users/lookup` `{"phone"}`: the account of a number, without the number.
async fn admin_lookup(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require_admin(&hub, &headers)?;
    let req: Lookup = parse_json(body)?;
    let account = hub.auth.account_of(&req.phone).await?;
    let tickets = hub.store.user_tickets(account.id, u32::MAX).await?.len();
    let devices = hub.store.devices(account.id).await?.len();
    let body =
        json!({"user_id": account.id, "registered_at": account.registered_at, "tickets": tickets, "devices": devices});
    Ok(no_store(Json(body).into_response()))
}

/// `GET /v1/admin/users/<id>/export`.
async fn admin_export(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    Path(user): Path<Uuid>,
) -> ApiResult<Response> {
    require_admin(&hub, &headers)?;
    let user = existing(&hub, user).await?;
    stream_export(hub, user, Requester::Operator).await
}

/// `POST /v1/admin/users/<id>/deletion`.
async fn admin_request_deletion(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    Path(user): Path<Uuid>,
) -> ApiResult<Response> {
    require_admin(&hub, &headers)?;
    let user = existing(&hub, user).await?;
    deletion_notice(&hub, user).await
}

/// `POST /v1/admin/users/<id>/deletion/confirm` `{"confirmation"}`.
async fn admin_confirm_deletion(
    State(hub): State<Arc<Services>>,
    headers: HeaderMap,
    Path(user): Path<Uuid>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require_admin(&hub, &headers)?;
    let user = existing(&hub, user).await?;
    delete_account(&hub, user, body, Requester::Operator).await
}

/// The user with this id, or `not_found`.
async fn existing(hub: &Services, id: Uuid) -> Result<UserId, Error> {
    let user = UserId(id);
    hub.store.user(user).await?.ok_or(Error::NotFound("account"))?;
    Ok(user)
}
