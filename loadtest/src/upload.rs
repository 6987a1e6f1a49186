//! Attachments uploaded as an app uploads them (protocol: Attachments): resumable over tus 1.0.0
//! (`POST /v1/uploads` carrying the first chunk, then `PATCH` the rest chunk by chunk) or in one
//! request (`POST /v1/attachments`). Either returns the attachment's id, once the hub has checked
//! the content and stored it, for a `ticket.send` to carry.

use crate::signin::{classify, http_error};
use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// How long one upload request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The tus version the harness speaks.
const TUS_VERSION: &str = "1.0.0";
/// The body type of tus requests that carry bytes.
const OFFSET_STREAM: &str = "application/offset+octet-stream";

/// How a picture is uploaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadMode {
    /// Resumable, over tus: the creation request carries the first chunk, `PATCH` the rest.
    Tus,
    /// The whole file in one `POST /v1/attachments`.
    Single,
}

impl UploadMode {
    /// The mode's name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tus => "tus",
            Self::Single => "single",
        }
    }
}

/// One upload: who, where to, how.
#[derive(Clone, Copy, Debug)]
pub struct Upload<'a> {
    /// The hub's base URL.
    pub base: &'a str,
    /// The uploader's session token.
    pub token: &'a str,
    /// The file name the hub is told.
    pub name: &'a str,
    /// Resumable or in one request.
    pub mode: UploadMode,
    /// Bytes per tus request.
    pub chunk: usize,
}

impl Upload<'_> {
    /// Uploads `file`; returns the stored attachment's id.
    ///
    /// # Errors
    /// An error key: `http:<status>:<code>` for the hub's refusal, `http:timeout` and the like, or
    /// `tus:<what>` when a tus answer lacks what the protocol promises.
    pub async fn send(&self, http: &reqwest::Client, file: Bytes) -> Result<String, String> {
        match self.mode {
            UploadMode::Tus => self.tus(http, file).await,
            UploadMode::Single => self.single(http, file).await,
        }
    }

    async fn single(&self, http: &reqwest::Client, file: Bytes) -> Result<String, String> {
        let response = http
            .post(format!("{}/v1/attachments", self.base))
            .query(&[("name", self.name)])
            .bearer_auth(self.token)
            .header("Content-Type", "image/jpeg")
            .body(file)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match attachment_id(&body) {
            Some(id) if status == 201 => Ok(id),
            _ => Err(http_error(status, &body)),
        }
    }

    async fn tus(&self, http: &reqwest::Client, file: Bytes) -> Result<String, String> {
        let chunk = self.chunk.max(1);
        let length = file.len();
        let name = base64::engine::general_purpose::STANDARD.encode(self.name);
        let response = http
            .post(format!("{}/v1/uploads", self.base))
            .bearer_auth(self.token)
            .header("Tus-Resumable", TUS_VERSION)
            .header("Upload-Length", length)
            .header("Upload-Metadata", format!("filename {name}"))
            .header("Content-Type", OFFSET_STREAM)
            .body(file.slice(..chunk.min(length)))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let location = header(&response, "location");
        let mut offset = header(&response, "upload-offset").and_then(|o| o.parse::<usize>().ok());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != 201 {
            return Err(http_error(status, &body));
        }
        let location = location.ok_or("tus:no_location")?;
        let url = if location.starts_with('/') { format!("{}{location}", self.base) } else { location.clone() };
        let id = attachment_id(&body).or_else(|| location.rsplit('/').next().map(str::to_owned)).ok_or("tus:no_id")?;
        loop {
            let at = offset.ok_or("tus:no_offset")?;
            if at >= length {
                return Ok(id);
            }
            let end = (at + chunk).min(length);
            let response = http
                .patch(&url)
                .bearer_auth(self.token)
                .header("Tus-Resumable", TUS_VERSION)
                .header("Upload-Offset", at)
                .header("Content-Type", OFFSET_STREAM)
                .body(file.slice(at..end))
                .timeout(REQUEST_TIMEOUT)
                .send()
                .await
                .map_err(|e| classify(&e))?;
            let status = response.status().as_u16();
            offset = header(&response, "upload-offset").and_then(|o| o.parse().ok());
            if status != 204 {
                return Err(http_error(status, &response.json().await.unwrap_or(Value::Null)));
            }
            // Loopback loses nothing: an offset that did not move is the hub's fault, not the net's.
            if offset.is_some_and(|o| o <= at) {
                return Err("tus:offset_stuck".into());
            }
        }
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The id in a `{"attachment": {...}}` body.
fn attachment_id(body: &Value) -> Option<String> {
    body["attachment"]["id"].as_str().filter(|id| !id.is_empty()).map(str::to_owned)
}

/// A uuid's 128 bits from its text (hyphens optional).
pub fn uuid_bits(id: &str) -> Option<u128> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    (hex.len() == 32).then(|| u128::from_str_radix(&hex, 16).ok()).flatten()
}

/// A uuid's text (lowercase, hyphenated) from its 128 bits.
pub fn uuid_text(bits: u128) -> String {
    let h = format!("{bits:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    /// A request as the fake hub saw it.
    #[derive(Clone, Debug)]
    struct Seen {
        line: String,
        headers: HashMap<String, String>,
        body: Vec<u8>,
    }

    /// What the fake hub holds: every request, and the bytes of its one upload.
    #[derive(Default)]
    struct FakeHub {
        seen: Vec<Seen>,
        file: Vec<u8>,
        length: usize,
        /// Answer the completing PATCH with this status and error code.
        refuse_last: Option<(u16, &'static str)>,
    }

    const ID: &str = "0194f3a2-7b1c-7d00-8e4f-0123456789ab";

    /// A loopback HTTP/1.1 server that speaks the hub's upload routes for one upload.
    async fn fake_hub(refuse_last: Option<(u16, &'static str)>) -> (String, Arc<Mutex<FakeHub>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(FakeHub { refuse_last, ..Default::default() }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    while let Some(seen) = read_request(&mut stream).await {
                        let answer = answer(&mut state.lock().unwrap(), seen);
                        if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (base, state)
    }

    async fn read_request(stream: &mut BufReader<tokio::net::TcpStream>) -> Option<Seen> {
        let mut line = String::new();
        stream.read_line(&mut line).await.ok().filter(|n| *n > 0)?;
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            stream.read_line(&mut h).await.ok()?;
            let Some((k, v)) = h.trim_end().split_once(": ") else { break };
            headers.insert(k.to_lowercase(), v.to_owned());
        }
        let mut body = vec![0; headers.get("content-length").map_or(0, |l| l.parse().unwrap())];
        stream.read_exact(&mut body).await.ok()?;
        Some(Seen { line: line.trim_end().to_owned(), headers, body })
    }

    fn answer(hub: &mut FakeHub, seen: Seen) -> String {
        hub.seen.push(seen.clone());
        let reply = |status: &str, headers: &str, body: &str| {
            format!("HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n{body}", body.len())
        };
        let stored = json!({"attachment": {"id": ID, "state": "uploading"}}).to_string();
        if seen.line.starts_with("POST /v1/attachments?name=photo+1.jpg ") {
            hub.file = seen.body;
            return reply("201 Created", "", &stored);
        }
        if seen.headers.get("tus-resumable").map(String::as_str) != Some("1.0.0") {
            return reply("412 Precondition Failed", "", "");
        }
        if seen.line.starts_with("POST /v1/uploads ") {
            hub.length = seen.headers["upload-length"].parse().unwrap();
            hub.file = seen.body;
            let headers = format!("Location: /v1/uploads/{ID}\r\nUpload-Offset: {}\r\n", hub.file.len());
            return reply("201 Created", &headers, &stored);
        }
        let offset_ok = seen.headers["upload-offset"].parse::<usize>().unwrap() == hub.file.len();
        let type_ok = seen.headers["content-type"] == OFFSET_STREAM;
        if seen.line.starts_with(&format!("PATCH /v1/uploads/{ID} ")) && offset_ok && type_ok {
            hub.file.extend_from_slice(&seen.body);
            if let Some((status, code)) = hub.refuse_last.filter(|_| hub.file.len() == hub.length) {
                let error = json!({"error": {"code": code, "message": "m"}}).to_string();
                return reply(&format!("{status} Refused"), "", &error);
            }
            return reply("204 No Content", &format!("Upload-Offset: {}\r\n", hub.file.len()), "");
        }
        reply("409 Conflict", "", "")
    }

    fn upload<'a>(base: &'a str, mode: UploadMode, chunk: usize) -> Upload<'a> {
        Upload { base, token: "tok", name: "photo 1.jpg", mode, chunk }
    }

    #[tokio::test]
    async fn tus_sends_the_first_chunk_with_the_creation_and_patches_the_rest() {
        let (base, hub) = fake_hub(None).await;
        let file: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let http = reqwest::Client::new();
        let id = upload(&base, UploadMode::Tus, 300).send(&http, Bytes::from(file.clone())).await;
        assert_eq!(id.as_deref(), Ok(ID));
        let hub = hub.lock().unwrap();
        assert_eq!(hub.file, file, "every byte, in order");
        let sizes: Vec<(String, usize)> =
            hub.seen.iter().map(|s| (s.line.split(' ').next().unwrap().to_owned(), s.body.len())).collect();
        let expected = [("POST", 300), ("PATCH", 300), ("PATCH", 300), ("PATCH", 100)];
        assert_eq!(sizes, expected.map(|(m, n)| (m.to_owned(), n)));
        let create = &hub.seen[0].headers;
        assert_eq!(create["upload-length"], "1000");
        assert_eq!(create["upload-metadata"], "filename cGhvdG8gMS5qcGc=");
        assert_eq!(create["authorization"], "Bearer tok");
        assert_eq!(create["content-type"], OFFSET_STREAM);
        assert_eq!(hub.seen[3].headers["upload-offset"], "900");
    }

    #[tokio::test]
    async fn a_refused_upload_and_one_in_one_request() {
        let (base, _hub) = fake_hub(Some((415, "unsupported_media"))).await;
        let http = reqwest::Client::new();
        let refused = upload(&base, UploadMode::Tus, 64).send(&http, Bytes::from(vec![1; 100])).await;
        assert_eq!(refused, Err("http:415:unsupported_media".into()));

        let (base, hub) = fake_hub(None).await;
        let small = upload(&base, UploadMode::Tus, 64).send(&http, Bytes::from(vec![2; 10])).await;
        assert_eq!(small.as_deref(), Ok(ID), "all in the creation request");
        let single = upload(&base, UploadMode::Single, 64).send(&http, Bytes::from(vec![3; 500])).await;
        assert_eq!(single.as_deref(), Ok(ID));
        let hub = hub.lock().unwrap();
        assert_eq!((hub.seen.len(), hub.file.len()), (2, 500));
        assert_eq!(hub.seen[1].headers["authorization"], "Bearer tok");
    }

    #[test]
    fn uuids_round_trip_through_their_bits() {
        let id = "0194f3a2-7b1c-7d00-8e4f-0123456789ab";
        let bits = uuid_bits(id).unwrap();
        assert_eq!(uuid_text(bits), id);
        assert_eq!(uuid_bits("0194F3A27B1C7D008E4F0123456789AB"), Some(bits));
        assert_eq!(uuid_bits("not-a-uuid"), None);
        assert_eq!(uuid_bits("0194f3a2-7b1c-7d00-8e4f-0123456789zz"), None);
        assert_eq!(uuid_text(1), "00000000-0000-0000-0000-000000000001");
    }

    #[test]
    fn the_id_comes_from_the_attachment_map() {
        assert_eq!(attachment_id(&json!({"attachment": {"id": "a-b", "state": "stored"}})).as_deref(), Some("a-b"));
        assert_eq!(attachment_id(&json!({"attachment": {"id": ""}})), None);
        assert_eq!(attachment_id(&json!({"error": {"code": "bad_image"}})), None);
        assert_eq!(UploadMode::Single.name(), "single");
    }
}
