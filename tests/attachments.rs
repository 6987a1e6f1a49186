//! Attachments end to end, on every hub set-up (SQLite in-process; Postgres with Redis when the
//! TEST_ URLs are set) and on an S3-compatible store: a photo uploaded with tus across a dropped
//! connection arrives without its EXIF, goes on a message, and is read by exactly the people who
//! may; content is told by the bytes; every refusal has its documented error; a decompression bomb
//! costs no memory; unattached uploads expire; the export carries the files.

mod common;

use anapars_hub::model::ids::Principal;
use anapars_hub::protocol::Encoding;
use base64::Engine as _;
use common::hub::{hubs, phone, TestHub};
use common::s3::TestS3;
use common::TestDatabase;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::io::Cursor;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const TUS: &str = "1.0.0";
const PIECE: usize = 16 * 1024;

/// A noisy photo (so it does not compress to nothing) as a JPEG with an EXIF segment that holds a
/// GPS position and the camera's serial number, right after the start marker.
fn photo_with_exif(width: u32, height: u32) -> Vec<u8> {
    let mut seed = 0x2545_f491_u32;
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        image::Rgb([(x % 256) as u8, (y % 256) as u8, (seed & 0xff) as u8])
    });
    // TIFF header (little-endian) with one IFD entry: the GPS IFD pointer; the GPS IFD holds the
    // latitude reference; then the markers the test looks for. The encoder writes it as the APP1
    // segment a camera writes.
    let mut tiff: Vec<u8> = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    tiff.extend([1, 0]);
    tiff.extend([0x25, 0x88, 4, 0, 1, 0, 0, 0, 26, 0, 0, 0]);
    tiff.extend([0, 0, 0, 0]);
    tiff.extend([1, 0, 1, 0, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0, 0, 0, 0, 0]);
    tiff.extend(b"GPS 35.6892N 51.3890E SERIAL-XYZ-0042");
    let mut jpeg = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90);
    image::ImageEncoder::set_exif_metadata(&mut encoder, tiff).unwrap();
    img.write_with_encoder(encoder).unwrap();
    assert!(jpeg_segments(&jpeg).contains(&0xE1), "the photo carries an EXIF segment");
    jpeg
}

/// The marker of every segment of a JPEG up to the start of its scan.
fn jpeg_segments(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(&bytes[..2], [0xFF, 0xD8], "a JPEG starts with SOI");
    let (mut at, mut markers) = (2, Vec::new());
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let marker = bytes[at + 1];
        markers.push(marker);
        if marker == 0xDA {
            break;
        }
        at += 2 + usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
    }
    markers
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::RgbaImage::from_pixel(width, height, image::Rgba([20, 120, 220, 255]))
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// A PNG whose header claims `side` x `side` pixels over a few bytes: a decompression bomb's shape.
fn png_bomb(side: u32) -> Vec<u8> {
    let mut bytes = png(1, 1);
    bytes[16..20].copy_from_slice(&side.to_be_bytes());
    bytes[20..24].copy_from_slice(&side.to_be_bytes());
    let mut crc = !0u32;
    for &b in &bytes[12..29] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    bytes[29..33].copy_from_slice(&(!crc).to_be_bytes());
    bytes
}

struct Http<'a> {
    hub: &'a TestHub,
    token: String,
}

impl Http<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.hub.base)
    }

    async fn create(&self, length: usize, name: &str, first: Option<&[u8]>) -> reqwest::Response {
        let meta = format!("filename {}", base64::engine::general_purpose::STANDARD.encode(name));
        let mut req = self
            .hub
            .http
            .post(self.url("/v1/uploads"))
            .bearer_auth(&self.token)
            .header("tus-resumable", TUS)
            .header("upload-length", length.to_string())
            .header("upload-metadata", meta);
        if let Some(bytes) = first {
            req = req.header("content-type", "application/offset+octet-stream").body(bytes.to_vec());
        }
        req.send().await.unwrap()
    }

    async fn patch(&self, location: &str, offset: usize, bytes: &[u8]) -> reqwest::Response {
        self.hub
            .http
            .patch(self.url(location))
            .bearer_auth(&self.token)
            .header("tus-resumable", TUS)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap()
    }

    async fn offset(&self, location: &str) -> (u16, Option<usize>) {
        let resp = self
            .hub
            .http
            .head(self.url(location))
            .bearer_auth(&self.token)
            .header("tus-resumable", TUS)
            .send()
            .await
            .unwrap();
        let offset = header(resp.headers(), "upload-offset").and_then(|v| v.parse().ok());
        (resp.status().as_u16(), offset)
    }

    /// A whole file in one request: status and body.
    async fn upload(&self, name: &str, bytes: &[u8]) -> (u16, Value) {
        let resp = self
            .hub
            .http
            .post(self.url("/v1/attachments"))
            .query(&[("name", name)])
            .bearer_auth(&self.token)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    async fn download(&self, path: &str) -> reqwest::Response {
        self.hub.http.get(self.url(path)).bearer_auth(&self.token).send().await.unwrap()
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn user(hub: &TestHub) -> Http<'_> {
    Http { hub, token: hub.token(&phone()).await }
}

/// Sends the head of a `PATCH` and `sent` of its `declared` body bytes, then drops the connection:
/// a phone whose network went away mid-upload.
async fn patch_cut_off(hub: &TestHub, token: &str, location: &str, offset: usize, sent: &[u8], declared: usize) {
    let addr = hub.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {declared}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(sent).await.unwrap();
    tcp.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(tcp);
}

async fn wait_for_offset(http: &Http<'_>, location: &str, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, offset) = http.offset(location).await;
        if offset == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "the offset stayed at {offset:?}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The whole path of a photo: tus across a dropped connection, EXIF gone, on a message, read by
/// the people allowed and nobody else.
async fn a_photo_travels(hub: &TestHub) {
    let label = hub.label();
    let alice = user(hub).await;
    let photo = photo_with_exif(640, 480);
    assert!(photo.len() > 4 * PIECE, "{label} the photo is several pieces long ({} bytes)", photo.len());
    assert!(photo.windows(10).any(|w| w == b"SERIAL-XYZ"), "the fixture carries its EXIF");

    let options = hub.http.request(reqwest::Method::OPTIONS, alice.url("/v1/uploads")).send().await.unwrap();
    assert_eq!(options.status().as_u16(), 204, "{label}");
    assert_eq!(header(options.headers(), "tus-version").as_deref(), Some(TUS));
    assert!(header(options.headers(), "tus-extension").unwrap().contains("creation-with-upload"));

    // Creation with the first piece.
    let created = alice.create(photo.len(), "رسید بانک.jpg", Some(&photo[..PIECE])).await;
    assert_eq!(created.status().as_u16(), 201, "{label}");
    assert_eq!(header(created.headers(), "tus-resumable").as_deref(), Some(TUS));
    assert_eq!(header(created.headers(), "upload-offset").as_deref(), Some(PIECE.to_string().as_str()));
    assert!(header(created.headers(), "upload-expires").is_some());
    let location = header(created.headers(), "location").unwrap();
    let body: Value = created.json().await.unwrap();
    let id = body["attachment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/uploads/{id}"));
    assert_eq!(body["attachment"]["state"], "uploading");
    assert_eq!(body["attachment"]["name"], "رسید بانک.jpg");

    // The network goes away two pieces into the next request: what arrived is kept.
    let declared = photo.len() - PIECE;
    patch_cut_off(hub, &alice.token, &location, PIECE, &photo[PIECE..3 * PIECE], declared).await;
    wait_for_offset(&alice, &location, 3 * PIECE).await;
    // A resend from the old offset is told where the upload is, before a byte is read.
    let stale = alice.patch(&location, PIECE, &photo[PIECE..2 * PIECE]).await;
    assert_eq!(stale.status().as_u16(), 409, "{label}");
    // The rest, from where HEAD says.
    let done = alice.patch(&location, 3 * PIECE, &photo[3 * PIECE..]).await;
    assert_eq!(done.status().as_u16(), 204, "{label}");
    assert_eq!(header(done.headers(), "upload-offset"), Some(photo.len().to_string()));
    let (_, status) = hub.get(&location, Some(&alice.token)).await;
    let stored = &status["attachment"];
    assert_eq!(stored["state"], "stored", "{label} {status}");
    assert_eq!((stored["kind"].as_str(), stored["media_type"].as_str()), (Some("image"), Some("image/jpeg")));
    assert_eq!((stored["width"].as_u64(), stored["height"].as_u64()), (Some(640), Some(480)));

    // The served bytes: a JPEG without any APP1 (EXIF) segment, none of the original's metadata.
    let served = alice.download(&format!("/v1/attachments/{id}")).await;
    assert_eq!(served.status().as_u16(), 200);
    let h = served.headers().clone();
    let bytes = served.bytes().await.unwrap();
    assert!(!jpeg_segments(&bytes).contains(&0xE1), "{label} an APP1 segment survived");
    for marker in [&b"Exif"[..], b"SERIAL-XYZ", b"35.6892"] {
        assert!(!bytes.windows(marker.len()).any(|w| w == marker), "{label} {marker:?} survived");
    }
    assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 640);
    assert_eq!(header(&h, "content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(header(&h, "x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header(&h, "cache-control").as_deref(), Some("private, no-store"));
    assert!(header(&h, "content-security-policy").unwrap().starts_with("default-src 'none'"));
    assert!(header(&h, "content-disposition").unwrap().contains("filename*=UTF-8''%D8%B1"), "{h:?}");
    let ranged = hub
        .http
        .get(alice.url(&format!("/v1/attachments/{id}")))
        .bearer_auth(&alice.token)
        .header("range", "bytes=0-1")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status().as_u16(), 206);
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), &[0xFF, 0xD8]);

    // Before it is on a message, nobody else reads it.
    let (agent_token, _) = hub.agent("Sara").await;
    let agent = Http { hub, token: agent_token.clone() };
    let bob = user(hub).await;
    for (who, http) in [("an agent", &agent), ("another user", &bob)] {
        let resp = http.download(&format!("/v1/attachments/{id}")).await;
        assert_eq!(resp.status().as_u16(), 404, "{label} {who} read an unattached upload");
        assert_eq!(http.offset(&location).await.0, 404, "{label} {who} saw the upload");
    }

    // On a ticket's first message, without text.
    let mut app = hub.connect_as(Encoding::Json, &alice.token).await;
    let opened = app
        .request(
            json!({"type": "ticket.open", "subject": "charged twice", "attachments": [id], "client_msg_id": "o-1"}),
        )
        .await;
    assert_eq!(opened["type"], "ticket.open.ok", "{label} {opened}");
    let ticket = opened["ticket"]["id"].as_str().unwrap().to_owned();
    let history = app.request(json!({"type": "ticket.history", "ticket_id": ticket})).await;
    let message = &history["events"][1];
    assert_eq!(message["body"], "", "{label}");
    let carried = &message["attachments"][0];
    assert_eq!(carried["id"], id.as_str());
    assert_eq!(carried["kind"], "image");
    assert_eq!(carried["name"], "رسید بانک.jpg");
    assert_eq!(carried["url"], format!("/v1/attachments/{id}"));
    assert_eq!(carried["thumbnail"], format!("/v1/attachments/{id}/thumbnail"));
    assert_eq!(carried["size"].as_u64(), Some(bytes.len() as u64));

    // Now the agents read it, and its thumbnail; another user still does not.
    let thumb = agent.download(&format!("/v1/attachments/{id}/thumbnail")).await;
    assert_eq!(thumb.status().as_u16(), 200, "{label}");
    let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (320, 240));
    assert_eq!(agent.download(&format!("/v1/attachments/{id}")).await.status().as_u16(), 200);
    assert_eq!(bob.download(&format!("/v1/attachments/{id}")).await.status().as_u16(), 404, "{label}");
    assert_eq!(bob.download(&format!("/v1/attachments/{id}/thumbnail")).await.status().as_u16(), 404);
    assert_eq!(hub.http.get(alice.url(&format!("/v1/attachments/{id}"))).send().await.unwrap().status().as_u16(), 401);

    // Once only, by its uploader only, and resends are duplicates.
    let again = app
        .request(json!({"type": "ticket.send", "ticket_id": ticket, "client_msg_id": "m-2", "attachments": [id]}))
        .await;
    assert_eq!((again["type"].as_str(), again["code"].as_str()), (Some("error"), Some("wrong_state")), "{label}");
    let (code, pdf) = bob.upload("statement.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n").await;
    assert_eq!(code, 201, "{label} {pdf}");
    let bobs = pdf["attachment"]["id"].as_str().unwrap();
    let foreign = app
        .request(json!({"type": "ticket.send", "ticket_id": ticket, "client_msg_id": "m-3", "attachments": [bobs]}))
        .await;
    assert_eq!(foreign["code"], "not_found", "{label} {foreign}");
    let mut agent_socket = hub.connect_agent(Encoding::Json, &agent_token).await;
    let claimed = agent_socket.request(json!({"type": "ticket.claim", "ticket_id": ticket})).await;
    assert_eq!(claimed["type"], "ticket.update.ok", "{label} {claimed}");
    let (_, note) = agent.upload("steps.txt", "۱. برنامه را باز کنید\n2. Settings\n".as_bytes()).await;
    let note_id = note["attachment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(note["attachment"]["media_type"], "text/plain");
    let send = json!({"type": "ticket.send", "ticket_id": ticket, "client_msg_id": "a-1", "body": "ببینید", "attachments": [note_id]});
    let sent = agent_socket.request(send.clone()).await;
    assert_eq!(sent["type"], "ticket.send.ok", "{label} {sent}");
    let resent = agent_socket.request(send).await;
    assert_eq!((resent["seq"].clone(), resent["duplicate"].clone()), (sent["seq"].clone(), json!(true)));
    // The user reads the agent's file on their ticket; the other user does not.
    let text = alice.download(&format!("/v1/attachments/{note_id}")).await;
    assert_eq!(text.status().as_u16(), 200, "{label}");
    assert_eq!(header(text.headers(), "content-type").as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(bob.download(&format!("/v1/attachments/{note_id}")).await.status().as_u16(), 404);

    // The export carries both files with their bytes.
    let (_, export) = hub.get("/v1/me/export", Some(&alice.token)).await;
    let files = export["attachments"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{label} {files:?}");
    let photo_part = files.iter().find(|f| f["id"] == id.as_str()).unwrap();
    let exported =
        base64::engine::general_purpose::STANDARD.decode(photo_part["content_base64"].as_str().unwrap()).unwrap();
    assert_eq!(exported, bytes.as_ref(), "{label} the export holds the stored bytes");
    assert!(files.iter().any(|f| f["id"] == note_id.as_str() && f["uploaded_by"]["kind"] == "agent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_photo_goes_up_in_pieces_across_a_dropped_connection_and_reaches_only_those_allowed() {
    for hub in hubs(|_| {}).await {
        a_photo_travels(&hub).await;
    }
}

/// The same path with the bytes in an S3-compatible bucket, as a cluster stores them, on each
/// database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_photo_travels_through_an_s3_bucket() {
    let Some(s3) = TestS3::start().await else { return };
    for db in common::test_databases().await {
        let hub = TestHub::start(db, None, |c| s3.configure(c, Some("hub"))).await;
        a_photo_travels(&hub).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_type_comes_from_the_bytes() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let alice = user(&hub).await;
        let (code, body) = alice.upload("report.pdf", &png(30, 20)).await;
        assert_eq!(code, 201, "{label} {body}");
        assert_eq!(
            (body["attachment"]["media_type"].as_str(), body["attachment"]["kind"].as_str()),
            (Some("image/png"), Some("image"))
        );
        let (code, body) = alice.upload("photo.png", b"<!DOCTYPE html><html><script>alert(1)</script></html>").await;
        assert_eq!((code, body["error"]["code"].as_str()), (415, Some("unsupported_media")), "{label} {body}");
        let (code, body) =
            alice.upload("icon.png", b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>").await;
        assert_eq!((code, body["error"]["code"].as_str()), (415, Some("unsupported_media")), "{label}");
        let (code, body) = alice.upload("statement.pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n").await;
        assert_eq!((code, body["attachment"]["kind"].as_str()), (201, Some("file")), "{label}");
        let pdf = alice.download(body["attachment"]["url"].as_str().unwrap()).await;
        assert!(
            header(pdf.headers(), "content-disposition").unwrap().starts_with("attachment;"),
            "a PDF is never inline"
        );
        // A refused upload is gone.
        let page = b"<html><head></head><body><script>alert(1)</script></body></html>";
        let created = alice.create(page.len(), "page.jpg", Some(page)).await;
        assert_eq!(created.status().as_u16(), 415, "{label}");
        assert_eq!(header(created.headers(), "tus-resumable").as_deref(), Some(TUS), "errors speak tus too");
        let (code, _) = alice.upload("a.txt", b"").await;
        assert_eq!(code, 400, "{label} an empty file");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_refusal_has_its_documented_error() {
    for hub in hubs(|c| {
        c.attachment_max_bytes = 200_000;
        c.attachment_bytes_per_day = 300_000;
        c.uploads_in_progress = 2;
        c.attachments_per_message = 2;
    })
    .await
    {
        let label = hub.label();
        let alice = user(&hub).await;
        let error = |v: &Value| v["error"]["code"].as_str().map(str::to_owned);
        // No tus version, no token, no length, a bad length, a length over the limit.
        let bare = hub.http.post(alice.url("/v1/uploads")).bearer_auth(&alice.token).header("upload-length", "10");
        let resp = bare.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 412, "{label}");
        assert_eq!(header(resp.headers(), "tus-resumable").as_deref(), Some(TUS));
        let anonymous =
            hub.http.post(alice.url("/v1/uploads")).header("tus-resumable", TUS).header("upload-length", "10");
        assert_eq!(anonymous.send().await.unwrap().status().as_u16(), 401);
        let no_length = hub.http.post(alice.url("/v1/uploads")).bearer_auth(&alice.token).header("tus-resumable", TUS);
        assert_eq!(no_length.send().await.unwrap().status().as_u16(), 400);
        let over = alice.create(200_001, "big.jpg", None).await;
        assert_eq!(over.status().as_u16(), 413, "{label}");
        assert_eq!(error(&over.json().await.unwrap()).as_deref(), Some("too_large"));
        let (code, body) = alice.upload("big.bin", &vec![b'a'; 200_001]).await;
        assert_eq!((code, error(&body).as_deref()), (413, Some("too_large")), "{label}");

        // Two uploads in progress at most; the third waits.
        let first = alice.create(100_000, "one.txt", None).await;
        let location = header(first.headers(), "location").unwrap();
        let _second = alice.create(100_000, "two.txt", None).await;
        let third = alice.create(10, "three.txt", None).await;
        assert_eq!(third.status().as_u16(), 429, "{label}");
        assert!(header(third.headers(), "retry-after").is_some());
        let third: Value = third.json().await.unwrap();
        assert_eq!(error(&third).as_deref(), Some("upload_limit"));
        assert!(third["error"]["retry_after_ms"].as_u64().is_some());

        // Pieces: wrong type, wrong offset, too small, beyond the end.
        let wrong_type = hub
            .http
            .patch(alice.url(&location))
            .bearer_auth(&alice.token)
            .header("tus-resumable", TUS)
            .header("upload-offset", "0")
            .header("content-type", "application/octet-stream")
            .body(vec![b'a'; PIECE])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_type.status().as_u16(), 415, "{label}");
        assert_eq!(alice.patch(&location, 5, &[b'a'; PIECE]).await.status().as_u16(), 409, "{label}");
        assert_eq!(alice.patch(&location, 0, &[b'a'; 100]).await.status().as_u16(), 400, "{label} a tiny piece");
        assert_eq!(alice.patch(&location, 0, &vec![b'a'; 100_001]).await.status().as_u16(), 413, "{label}");
        assert_eq!(alice.offset(&location).await, (200, Some(0)), "{label} nothing was taken");
        // Cancelling frees a place.
        let cancel = hub.http.delete(alice.url(&location)).bearer_auth(&alice.token).header("tus-resumable", TUS);
        assert_eq!(cancel.send().await.unwrap().status().as_u16(), 204);
        assert_eq!(alice.offset(&location).await.0, 404, "{label}");

        // The day's bytes: 100000 (in progress) + 150000 stored leaves less than 60000.
        let (code, body) = alice.upload("a.txt", &vec![b'a'; 150_000]).await;
        assert_eq!(code, 201, "{label} {body}");
        let (code, body) = alice.upload("b.txt", &vec![b'b'; 60_000]).await;
        assert_eq!((code, error(&body).as_deref()), (429, Some("upload_limit")), "{label} {body}");

        // On a message: too many, named twice, still uploading.
        let bob = user(&hub).await;
        let mut ids = Vec::new();
        for i in 0..3 {
            let (code, body) = bob.upload("n.txt", format!("note {i}").as_bytes()).await;
            assert_eq!(code, 201, "{label} {body}");
            ids.push(body["attachment"]["id"].as_str().unwrap().to_owned());
        }
        let mut app = hub.connect_as(Encoding::Json, &bob.token).await;
        let open = |attachments: Value, cmid: &str| json!({"type": "ticket.open", "subject": "s", "attachments": attachments, "client_msg_id": cmid});
        let reply = app.request(open(json!(ids), "o-1")).await;
        assert_eq!(reply["code"], "too_large", "{label} {reply}");
        let reply = app.request(open(json!([ids[0], ids[0]]), "o-2")).await;
        assert_eq!(reply["code"], "bad_request", "{label} {reply}");
        let started = bob.create(100, "later.txt", None).await;
        let pending: Value = started.json().await.unwrap();
        let reply = app.request(open(json!([pending["attachment"]["id"]]), "o-3")).await;
        assert_eq!(
            (reply["code"].as_str(), reply["message"].as_str()),
            (Some("wrong_state"), Some("an attachment is still uploading")),
            "{label}"
        );
        let reply = app.request(open(json!([uuid::Uuid::now_v7()]), "o-4")).await;
        assert_eq!(reply["code"], "not_found", "{label}");
        let reply = app.request(json!({"type": "ticket.open", "subject": "s", "client_msg_id": "o-5"})).await;
        assert_eq!(reply["code"], "empty_body", "{label} no text and no attachment");
        let reply = app.request(open(json!([ids[0], ids[1]]), "o-6")).await;
        assert_eq!(reply["type"], "ticket.open.ok", "{label} {reply}");
    }
}

/// Resident memory of this process (the hub runs in it), from /proc.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decompression_bomb_is_refused_without_the_memory_it_claims() {
    let hub = TestHub::start(TestDatabase::sqlite(), None, |_| {}).await;
    let alice = user(&hub).await;
    // Warm up the path with a real image so that the measurement sees only the bomb.
    assert_eq!(alice.upload("ok.png", &png(64, 64)).await.0, 201);
    let bomb = png_bomb(30_000);
    assert!(bomb.len() < 100, "{} bytes claiming 900 megapixels (3.6 GB of pixels)", bomb.len());
    let before = rss_bytes();
    let mut peak = before;
    for i in 0..3 {
        let (code, body) = alice.upload(&format!("bomb-{i}.png"), &bomb).await;
        assert_eq!((code, body["error"]["code"].as_str()), (400, Some("bad_image")), "{body}");
        assert_eq!(body["error"]["message"], "the image is larger than the dimension limit");
        peak = peak.max(rss_bytes());
    }
    let grew = peak.saturating_sub(before);
    eprintln!("resident memory before the bombs {} MiB, peak {} MiB", before >> 20, peak >> 20);
    assert!(grew < 64 << 20, "memory grew by {} MiB for images claiming 3.6 GB", grew >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_that_reach_no_message_expire_with_their_bytes() {
    for hub in hubs(|c| c.upload_expiry_secs = 60).await {
        let label = hub.label();
        let alice = user(&hub).await;
        let created = alice.create(3 * PIECE, "half.jpg", Some(&[7u8; PIECE])).await;
        let location = header(created.headers(), "location").unwrap();
        let (code, stored) = alice.upload("kept-for-a-while.txt", b"hello").await;
        assert_eq!(code, 201);
        let services = hub.running.as_ref().unwrap().hub.clone();
        let (_, me) = hub.get("/v1/me", Some(&alice.token)).await;
        let uid = anapars_hub::model::ids::UserId(me["user_id"].as_str().unwrap().parse().unwrap());
        let prefix = anapars_hub::model::attachment::uploader_prefix(Principal::User(uid));
        assert!(!services.objects.list(&prefix).await.unwrap().is_empty(), "{label} pieces are stored");
        // Not yet expired: nothing goes.
        let now = anapars_hub::model::time::now_ms();
        assert_eq!(services.attachments.purge_expired(now, 100).await.unwrap(), 0);
        // A minute and a bit later, both go, bytes and all.
        let removed = services.attachments.purge_expired(now + 61_000, 100).await.unwrap();
        assert!(removed >= 2, "{label} removed {removed}");
        assert_eq!(alice.offset(&location).await.0, 404, "{label}");
        let url = stored["attachment"]["url"].as_str().unwrap();
        assert_eq!(alice.download(url).await.status().as_u16(), 404, "{label}");
        assert!(services.objects.list(&prefix).await.unwrap().is_empty(), "{label} bytes left behind");
    }
}

/// Upload bodies together never take more memory than `upload_buffer_bytes`: a body that does not
/// fit waits, before its first byte is read, until another one is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_bodies_share_a_bounded_buffer() {
    let hub = TestHub::start(TestDatabase::sqlite(), None, |c| {
        c.attachment_max_bytes = 64 * 1024;
        c.upload_buffer_bytes = 64 * 1024;
    })
    .await;
    let alice = user(&hub).await;
    let created = alice.create(40_000, "slow.txt", None).await;
    let location = header(created.headers(), "location").unwrap();
    // A slow phone: its PATCH announces 40000 bytes and sends half, then stalls.
    let addr = hub.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nTus-Resumable: 1.0.0\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: 40000\r\n\r\n",
        alice.token
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&[b'a'; 20_000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Another upload of 30000 bytes does not fit beside it: it waits.
    let bob = user(&hub).await;
    let upload = bob.upload("fits-later.txt", &[b'b'; 30_000]);
    tokio::pin!(upload);
    let early = tokio::time::timeout(Duration::from_millis(700), &mut upload).await;
    assert!(early.is_err(), "the second body was read while the first held the whole buffer: {early:?}");
    drop(slow);
    let (code, body) = tokio::time::timeout(Duration::from_secs(10), upload).await.unwrap();
    assert_eq!(code, 201, "{body}");
}
