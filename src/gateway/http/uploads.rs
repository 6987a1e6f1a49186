//! Attachments over HTTP: resumable uploads with the tus 1.0.0 protocol (core, creation,
//! creation-with-upload, termination, expiration) under `/v1/uploads`, an upload in one request
//! at `POST /v1/attachments`, and downloads at `/v1/attachments/<id>` (and `/thumbnail`).
//!
//! A request body is read by a task of its own, so that when the connection drops mid-body the
//! bytes that arrived are still stored as a piece and the client resumes after them (tus `HEAD`).

use super::{require_bearer, ApiError, ApiResult};
use crate::domain::attachments::{Rendition, MIN_PIECE};
use crate::error::{Error, SizeUnit};
use crate::gateway::services::Services;
use crate::model::attachment::{Attachment, AttachmentKind};
use crate::model::ids::{AttachmentId, Principal};
use crate::protocol::upload_view;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The tus version the hub speaks.
const TUS_VERSION: &str = "1.0.0";
/// The tus extensions the hub implements.
const TUS_EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration";
/// The body type of a tus `PATCH` (and of a creation that carries bytes).
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// What a download may do in a browser: nothing but be shown (no scripts, no plugins, no
/// requests, no forms), sandboxed as an opaque origin.
const DOWNLOAD_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");

/// The attachment routes.
pub(super) fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route("/v1/uploads", post(create).options(options))
        .route("/v1/uploads/{id}", get(status).head(head).patch(patch).delete(terminate))
        .route("/v1/attachments", post(upload_whole))
        .route("/v1/attachments/{id}", get(download))
        .route("/v1/attachments/{id}/thumbnail", get(thumbnail))
}

/// A tus answer: `Tus-Resumable` on every one, errors included.
struct Tus(Response);

impl IntoResponse for Tus {
    fn into_response(mut self) -> Response {
        self.0.headers_mut().insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
        self.0
    }
}

type TusResult = Result<Tus, Tus>;

impl From<Error> for Tus {
    fn from(e: Error) -> Self {
        Tus(ApiError(e).into_response())
    }
}

/// `precondition_failed` unless the client speaks tus 1.0.0.
fn check_version(headers: &HeaderMap) -> Result<(), Error> {
    match headers.get(&TUS_RESUMABLE).and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(Error::PreconditionFailed("send Tus-Resumable: 1.0.0 (the tus version this hub speaks)")),
    }
}

async fn uploader(hub: &Services, headers: &HeaderMap) -> Result<Principal, Error> {
    Ok(require_bearer(hub, headers).await?.who)
}

fn parse_id(raw: &str) -> Result<AttachmentId, Error> {
    raw.parse::<uuid::Uuid>().map(AttachmentId).map_err(|_| Error::NotFound("attachment"))
}

fn number_header(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, Error> {
    let Some(value) = headers.get(name) else { return Ok(None) };
    value
        .to_str()
        .ok()
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| Error::BadRequest(format!("{name} must be a non-negative integer")))
}

/// The file name in `Upload-Metadata` (`filename`, or `name`): comma-separated pairs of a key and
/// a base64 value.
fn metadata_name(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let Some(value) = headers.get("upload-metadata") else { return Ok(None) };
    let text = value.to_str().map_err(|_| Error::BadRequest("Upload-Metadata is not ASCII".into()))?;
    for pair in text.split(',') {
        let mut parts = pair.trim().splitn(2, ' ');
        let key = parts.next().unwrap_or("");
        if key == "filename" || key == "name" {
            let encoded = parts.next().unwrap_or("").trim();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| Error::BadRequest(format!("Upload-Metadata {key} is not base64")))?;
            let name = String::from_utf8(bytes)
                .map_err(|_| Error::BadRequest(format!("Upload-Metadata {key} is not UTF-8")))?;
            return Ok(Some(name));
        }
    }
    Ok(None)
}

fn http_date(ms: i64) -> Option<HeaderValue> {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).ok()?);
    HeaderValue::from_str(&httpdate::fmt_http_date(at)).ok()
}

/// The tus headers that describe an upload.
fn upload_headers(response: &mut Response, upload: &Attachment) {
    let h = response.headers_mut();
    h.insert(UPLOAD_OFFSET, HeaderValue::from(upload.received));
    h.insert(UPLOAD_LENGTH, HeaderValue::from(upload.length));
    if let Some(expires) = upload.expires_at.and_then(http_date) {
        h.insert(UPLOAD_EXPIRES, expires);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `OPTIONS /v1/uploads`: what the hub's tus server supports (no token needed).
async fn options(State(hub): State<Arc<Services>>) -> Tus {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-extension", HeaderValue::from_static(TUS_EXTENSIONS));
    h.insert("tus-max-size", HeaderValue::from(hub.attachments.policy().max_bytes));
    Tus(response)
}

/// A request body as far as it came: at most `limit` bytes (`over` when there were more), and
/// whether it ended cleanly (not cut by a dropped connection).
struct Piece {
    bytes: Bytes,
    over: bool,
    clean: bool,
}

async fn read_piece(body: Body, limit: u64) -> Piece {
    let mut stream = body.into_data_stream();
    let mut bytes = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                if (bytes.len() + chunk.len()) as u64 > limit {
                    return Piece { bytes: Bytes::new(), over: true, clean: false };
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(_) => return Piece { bytes: bytes.freeze(), over: false, clean: false },
        }
    }
    Piece { bytes: bytes.freeze(), over: false, clean: true }
}

/// Reads a piece of upload `upload` at `offset` and adds it, in a task of its own: a client that
/// goes away mid-body does not stop it, so what arrived is kept.
async fn take_piece(hub: &Arc<Services>, who: Principal, upload: &Attachment, body: Body) -> Result<Attachment, Error> {
    let (hub2, id, offset, length) = (hub.clone(), upload.id, upload.received, upload.length);
    let task = hub.sockets.spawn(async move {
        let piece = read_piece(body, length - offset).await;
        if piece.over {
            return Err(Error::TooLarge {
                what: "upload",
                size: None,
                limit: usize::try_from(length).unwrap_or(usize::MAX),
                unit: SizeUnit::Bytes,
            });
        }
        let finishes = offset + piece.bytes.len() as u64 == length;
        if !piece.clean && (piece.bytes.len() as u64) < MIN_PIECE && !finishes {
            // Too little arrived to be worth a piece: the client resumes from the offset before.
            return Err(Error::BadRequest("the request body ended early".into()));
        }
        hub2.attachments.add_piece(who, id, offset, piece.bytes).await
    });
    task.await.map_err(|e| Error::Internal(format!("upload task: {e}")))?
}

fn body_type_is_offset_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()) != Some("0")
        && (headers.contains_key(header::CONTENT_LENGTH) || headers.contains_key(header::TRANSFER_ENCODING))
}

/// `POST /v1/uploads` (tus creation, with creation-with-upload).
async fn create(State(hub): State<Arc<Services>>, headers: HeaderMap, body: Body) -> TusResult {
    check_version(&headers)?;
    let who = uploader(&hub, &headers).await?;
    if headers.contains_key("upload-defer-length") {
        return Err(Error::BadRequest("Upload-Defer-Length is not supported: send Upload-Length".into()).into());
    }
    let length = number_header(&headers, &UPLOAD_LENGTH)?
        .ok_or_else(|| Error::BadRequest("Upload-Length is required".into()))?;
    let name = metadata_name(&headers)?;
    let mut upload = hub.attachments.start(who, name.as_deref(), length).await?;
    if has_body(&headers) {
        if !body_type_is_offset_stream(&headers) {
            return Err(Error::UnsupportedMedia(
                "bytes sent with a creation need Content-Type: application/offset+octet-stream",
            )
            .into());
        }
        upload = take_piece(&hub, who, &upload, body).await?;
    }
    let mut response = (StatusCode::CREATED, Json(json!({ "attachment": upload_view(&upload) }))).into_response();
    upload_headers(&mut response, &upload);
    let location = format!("/v1/uploads/{}", upload.id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(Tus(response))
}

/// `HEAD /v1/uploads/<id>`: where the upload is.
async fn head(State(hub): State<Arc<Services>>, Path(id): Path<String>, headers: HeaderMap) -> TusResult {
    check_version(&headers)?;
    let who = uploader(&hub, &headers).await?;
    let upload = hub.attachments.upload(who, parse_id(&id)?).await?;
    let mut response = StatusCode::OK.into_response();
    upload_headers(&mut response, &upload);
    Ok(Tus(response))
}

/// `GET /v1/uploads/<id>`: the upload as JSON (not part of tus: the checked result of a complete
/// upload).
async fn status(State(hub): State<Arc<Services>>, Path(id): Path<String>, headers: HeaderMap) -> ApiResult<Response> {
    let who = uploader(&hub, &headers).await?;
    let upload = hub.attachments.upload(who, parse_id(&id)?).await?;
    let mut response = Json(json!({ "attachment": upload_view(&upload) })).into_response();
    upload_headers(&mut response, &upload);
    Ok(response)
}

/// `PATCH /v1/uploads/<id>`: the next piece.
async fn patch(State(hub): State<Arc<Services>>, Path(id): Path<String>, headers: HeaderMap, body: Body) -> TusResult {
    check_version(&headers)?;
    let who = uploader(&hub, &headers).await?;
    if !body_type_is_offset_stream(&headers) {
        return Err(Error::UnsupportedMedia("PATCH takes Content-Type: application/offset+octet-stream").into());
    }
    let offset = number_header(&headers, &UPLOAD_OFFSET)?
        .ok_or_else(|| Error::BadRequest("Upload-Offset is required".into()))?;
    let upload = hub.attachments.upload(who, parse_id(&id)?).await?;
    // Told before a byte is read: the client asks for the offset and resumes from there.
    if offset != upload.received || upload.received == upload.length {
        return Err(Error::Conflict("the upload offset is not where the upload is: ask for it (HEAD)").into());
    }
    let upload = take_piece(&hub, who, &upload, body).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    upload_headers(&mut response, &upload);
    Ok(Tus(response))
}

/// `DELETE /v1/uploads/<id>` (tus termination).
async fn terminate(State(hub): State<Arc<Services>>, Path(id): Path<String>, headers: HeaderMap) -> TusResult {
    check_version(&headers)?;
    let who = uploader(&hub, &headers).await?;
    hub.attachments.cancel(who, parse_id(&id)?).await?;
    Ok(Tus(StatusCode::NO_CONTENT.into_response()))
}

#[derive(Deserialize)]
struct NameQuery {
    name: Option<String>,
}

/// `POST /v1/attachments?name=<file name>`: a whole file in one request.
async fn upload_whole(
    State(hub): State<Arc<Services>>,
    Query(query): Query<NameQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let who = uploader(&hub, &headers).await?;
    let limit = hub.attachments.policy().max_bytes;
    // Refused before a byte is read when the announced length is over the limit.
    if let Some(length) = number_header(&headers, &header::CONTENT_LENGTH)? {
        if length > limit {
            return Err(too_large(Some(length), limit).into());
        }
    }
    let piece = read_piece(body, limit).await;
    if piece.over {
        return Err(too_large(None, limit).into());
    }
    if !piece.clean {
        return Err(Error::BadRequest("the request body ended early".into()).into());
    }
    let upload = hub.attachments.upload_whole(who, query.name.as_deref(), piece.bytes).await?;
    Ok((StatusCode::CREATED, Json(json!({ "attachment": upload_view(&upload) }))).into_response())
}

fn too_large(size: Option<u64>, limit: u64) -> Error {
    Error::TooLarge {
        what: "attachment",
        size: size.and_then(|s| usize::try_from(s).ok()),
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
        unit: SizeUnit::Bytes,
    }
}

/// `GET /v1/attachments/<id>`.
async fn download(State(hub): State<Arc<Services>>, Path(id): Path<String>, headers: HeaderMap) -> ApiResult<Response> {
    serve(&hub, &id, &headers, Rendition::Original).await
}

/// `GET /v1/attachments/<id>/thumbnail`.
async fn thumbnail(
    State(hub): State<Arc<Services>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve(&hub, &id, &headers, Rendition::Thumbnail).await
}

async fn serve(hub: &Services, id: &str, headers: &HeaderMap, rendition: Rendition) -> ApiResult<Response> {
    let who = uploader(hub, headers).await?;
    let (attachment, bytes) = hub.attachments.read(who, parse_id(id)?, rendition).await?;
    let media_type = attachment.content.as_ref().map(|c| c.media_type);
    let (content_type, inline) = match (rendition, media_type) {
        (Rendition::Thumbnail, _) => ("image/jpeg", true),
        (Rendition::Original, Some(t)) if t.kind() == AttachmentKind::Image => (t.as_str(), true),
        (Rendition::Original, Some(crate::model::attachment::MediaType::PlainText)) => {
            ("text/plain; charset=utf-8", true)
        }
        (Rendition::Original, Some(t)) => (t.as_str(), false),
        (Rendition::Original, None) => return Err(Error::NotFound("attachment").into()),
    };
    let total = bytes.len() as u64;
    let (status, body, range) = match requested_range(headers, total) {
        Some(Ok((start, end))) => (
            StatusCode::PARTIAL_CONTENT,
            bytes.slice(start as usize..=end as usize),
            Some(format!("bytes {start}-{end}/{total}")),
        ),
        Some(Err(())) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(response);
        }
        None => (StatusCode::OK, bytes, None),
    };
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let name = match rendition {
        Rendition::Original => attachment.name.clone(),
        Rendition::Thumbnail => format!("{}.thumbnail.jpg", attachment.name),
    };
    if let Ok(v) = HeaderValue::from_str(&content_disposition(inline, &name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOWNLOAD_CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(range) = range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        h.insert(header::CONTENT_RANGE, range);
    }
    Ok(response)
}

/// The one byte range of a `Range: bytes=...` header, inclusive: `None` without one (or with
/// several ranges or another unit: the whole file is sent), `Err` when it lies outside the file.
fn requested_range(headers: &HeaderMap, total: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = headers.get(header::RANGE)?.to_str().ok()?.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let range = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            if n == 0 || total == 0 {
                return Some(Err(()));
            }
            (total.saturating_sub(n), total - 1)
        }
        (start, "") => (start.parse().ok()?, total.saturating_sub(1)),
        (start, end) => (start.parse().ok()?, end.parse::<u64>().ok()?.min(total.saturating_sub(1))),
    };
    Some(if range.0 <= range.1 && range.0 < total { Ok(range) } else { Err(()) })
}

/// `Content-Disposition` with the name as ASCII (others replaced) and, for every script, as
/// UTF-8 (RFC 8187), which browsers prefer.
fn content_disposition(inline: bool, name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, total: u64) -> Option<Result<(u64, u64), ()>> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        requested_range(&headers, total)
    }

    #[test]
    fn single_byte_ranges_are_read_and_others_get_the_whole_file() {
        assert_eq!(range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(range("bytes=50-500", 100), Some(Ok((50, 99))));
        assert_eq!(range("bytes=100-", 100), Some(Err(())));
        assert_eq!(range("bytes=9-3", 100), Some(Err(())));
        assert_eq!(range("bytes=0-1,5-6", 100), None);
        assert_eq!(range("items=0-1", 100), None);
    }

    #[test]
    fn names_travel_as_ascii_and_as_utf8() {
        assert_eq!(
            content_disposition(false, "رسید \"1\".pdf"),
            "attachment; filename=\"____ _1_.pdf\"; filename*=UTF-8''%D8%B1%D8%B3%DB%8C%D8%AF%20%221%22%2Epdf"
        );
        assert!(content_disposition(true, "a.png").starts_with("inline; filename=\"a.png\""));
    }

    #[test]
    fn metadata_gives_the_file_name() {
        let mut headers = HeaderMap::new();
        let name = base64::engine::general_purpose::STANDARD.encode("عکس.jpg");
        headers
            .insert("upload-metadata", HeaderValue::from_str(&format!("filetype aW1hZ2U=,filename {name}")).unwrap());
        assert_eq!(metadata_name(&headers).unwrap().as_deref(), Some("عکس.jpg"));
        headers.insert("upload-metadata", HeaderValue::from_static("filename !!!"));
        assert!(matches!(metadata_name(&headers), Err(Error::BadRequest(_))));
    }
}
