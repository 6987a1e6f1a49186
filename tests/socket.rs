//! The WebSocket protocol against a real hub on port 0, in both encodings, on every backend:
//! authentication, replies, bad input that leaves the socket alive, and abuse that closes it with
//! the documented code.

mod common;

use anapars_hub::protocol::Encoding;
use common::hub::{hubs, phone, Client};
use futures_util::SinkExt;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const ENCODINGS: [Encoding; 2] = [Encoding::Json, Encoding::MsgPack];

#[tokio::test]
async fn auth_frame_then_requests_in_both_encodings() {
    for hub in hubs(|_| {}).await {
        let number = phone();
        let signed_in = hub.sign_in_on(&number, "pixel-1").await;
        let token = signed_in["token"].as_str().unwrap();
        for encoding in ENCODINGS {
            let mut c = hub.connect(encoding).await;
            let ok = c.request(json!({"type": "auth", "token": token})).await;
            assert_eq!(ok["type"], "auth.ok", "{} {ok}", hub.label());
            assert_eq!(ok["user_id"], signed_in["user_id"]);
            assert_eq!(ok["device_id"], signed_in["device_id"]);
            let me = c.request(json!({"type": "me"})).await;
            assert_eq!(me["type"], "me.ok");
            assert_eq!(me["phone"], number.as_str(), "the owner sees their own number");
            let pong = c.request(json!({"type": "ping"})).await;
            assert_eq!(pong["type"], "ping.ok");
            assert!(pong["server_time"].as_i64().unwrap() > 1_700_000_000_000);
            let again = c.request(json!({"type": "auth", "token": token})).await;
            assert_eq!(again["code"], "already_authenticated");
        }
    }
}

#[tokio::test]
async fn bearer_header_authenticates_the_upgrade_and_bad_tokens_are_refused() {
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        let mut c = Client::connect(&hub.ws_url, Some(Encoding::MsgPack), Some(&token)).await;
        assert_eq!(c.request(json!({"type": "me"})).await["type"], "me.ok", "{}", hub.label());

        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(hub.ws_url.as_str())
                .unwrap();
        req.headers_mut().insert("Authorization", "Bearer not-a-token".parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
            other => panic!("expected a 401 upgrade refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn requests_before_auth_are_refused_and_the_socket_lives() {
    for hub in hubs(|_| {}).await {
        for encoding in ENCODINGS {
            let mut c = hub.connect(encoding).await;
            let r = c.request(json!({"type": "me"})).await;
            assert_eq!(r["type"], "error");
            assert_eq!(r["code"], "unauthenticated", "{} {r}", hub.label());
            assert_eq!(c.request(json!({"type": "ping"})).await["type"], "ping.ok");
        }
    }
}

#[tokio::test]
async fn garbage_gets_clear_errors_and_the_socket_lives() {
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        for encoding in ENCODINGS {
            let mut c = hub.connect_as(encoding, &token).await;
            let cases: Vec<(Message, Option<u64>, &str)> = vec![
                (Message::Text("not json at all".into()), None, "bad_request"),
                (Message::Binary(vec![0xc1, 0xff, 0x00].into()), None, "bad_request"),
                (c.encode(&json!({"id": 5, "type": "warp.drive"})), Some(5), "unknown_type"),
                (c.encode(&json!({"id": 6, "type": "auth"})), Some(6), "bad_request"),
                (c.encode(&json!({"id": 7, "type": "auth", "token": 42})), Some(7), "bad_request"),
                (c.encode(&json!({"id": "eight", "type": "ping"})), None, "bad_request"),
                (c.encode(&json!([9, "ping"])), None, "bad_request"),
                (c.encode(&json!({"id": 10, "type": "ping", "pad": "x".repeat(70_000)})), Some(10), "too_large"),
            ];
            for (frame, id, code) in cases {
                c.ws.send(frame).await.unwrap();
                let r = c.recv().await;
                assert_eq!(r["type"], "error", "{} {r}", hub.label());
                assert_eq!(r["code"], code, "{} {r}", hub.label());
                assert_eq!(r["id"], json!(id), "{} {r}", hub.label());
                assert!(!r["message"].as_str().unwrap().is_empty());
            }
            let missing = {
                c.send(json!({"id": 11, "type": "auth"})).await;
                c.recv().await
            };
            assert!(missing["message"].as_str().unwrap().contains("token"), "names the field: {missing}");
            assert_eq!(c.request(json!({"type": "ping"})).await["type"], "ping.ok", "still alive");
        }
    }
}

/// A value of a hand-written MessagePack map: the hub's own encoder never writes a `bin`.
enum Packed<'a> {
    Uint(u64),
    Str(&'a str),
    Bin(&'a [u8]),
}

/// A MessagePack map of up to 15 fields, keys as `str`.
fn packed_map(fields: &[(&str, Packed)]) -> Message {
    fn bytes(out: &mut Vec<u8>, marker: u8, b: &[u8]) {
        out.push(marker);
        out.push(u8::try_from(b.len()).expect("short"));
        out.extend_from_slice(b);
    }
    let mut out = vec![0x80 | u8::try_from(fields.len()).expect("a fixmap")];
    for (key, value) in fields {
        bytes(&mut out, 0xd9, key.as_bytes());
        match value {
            Packed::Uint(n) => {
                out.push(0xcf);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Packed::Str(s) => bytes(&mut out, 0xd9, s.as_bytes()),
            Packed::Bin(b) => bytes(&mut out, 0xc4, b),
        }
    }
    Message::Binary(out.into())
}

/// PROTOCOL.md: strings are MessagePack `str` and ids are never raw bytes. A `bin` where a `str`
/// belongs (`type`, a body) or 16 raw bytes as a ticket id get `bad_request` echoing the id, the
/// request is not carried out, and the socket stays open.
#[tokio::test]
async fn messagepack_bin_is_refused_where_the_protocol_says_str() {
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        let mut c = hub.connect_as(Encoding::MsgPack, &token).await;
        let open = json!({"type": "ticket.open", "subject": "s", "body": "first", "client_msg_id": "open-1"});
        let tid = c.request(open).await["ticket"]["id"].as_str().unwrap().to_owned();
        let raw_id = *uuid::Uuid::parse_str(&tid).unwrap().as_bytes();
        let cases = [
            (20, packed_map(&[("id", Packed::Uint(20)), ("type", Packed::Bin(b"ping"))])),
            (
                21,
                packed_map(&[
                    ("id", Packed::Uint(21)),
                    ("type", Packed::Str("ticket.send")),
                    ("ticket_id", Packed::Str(&tid)),
                    ("client_msg_id", Packed::Str("bin-body")),
                    ("body", Packed::Bin(b"hello")),
                ]),
            ),
            (
                22,
                packed_map(&[
                    ("id", Packed::Uint(22)),
                    ("type", Packed::Str("ticket.send")),
                    ("ticket_id", Packed::Bin(&raw_id)),
                    ("client_msg_id", Packed::Str("bin-id")),
                    ("body", Packed::Str("hello")),
                ]),
            ),
        ];
        for (id, frame) in cases {
            c.ws.send(frame).await.unwrap();
            // The owner's socket also gets the ticket's events: the reply is the next frame with an id.
            let r = loop {
                let f = c.recv().await;
                if f.get("id").is_some() {
                    break f;
                }
            };
            assert_eq!(
                (r["type"].as_str(), r["code"].as_str()),
                (Some("error"), Some("bad_request")),
                "{} {r}",
                hub.label()
            );
            assert_eq!(r["id"], id, "{} {r}", hub.label());
        }
        assert_eq!(c.request(json!({"type": "ping"})).await["type"], "ping.ok", "{} still open", hub.label());
        let h = c.request(json!({"type": "ticket.history", "ticket_id": tid})).await;
        assert_eq!(h["events"].as_array().map(Vec::len), Some(2), "{} nothing was stored: {h}", hub.label());
    }
}

/// The `too_large` messages are the texts PROTOCOL.md quotes, each in the unit its limit counts:
/// bytes for a frame and an HTTP body, characters for a message body (of two-byte characters here).
#[tokio::test]
async fn too_large_messages_are_the_ones_protocol_md_quotes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol/PROTOCOL.md")).unwrap();
    let row = doc.lines().find(|l| l.starts_with("| `too_large` |")).expect("the error table's too_large row");
    let quoted = |template: &str, n: usize, m: usize| {
        assert!(row.contains(&format!("(\"{template}\"")), "PROTOCOL.md quotes \"{template}\": {row}");
        template.replace('N', &n.to_string()).replace('M', &m.to_string())
    };
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        let mut c = hub.connect_as(Encoding::Json, &token).await;
        let big = json!({"id": 10, "type": "ping", "pad": "x".repeat(70_000)}).to_string();
        let size = big.len();
        c.ws.send(Message::Text(big.into())).await.unwrap();
        let r = c.recv().await;
        let expected = quoted("frame of N bytes is over the limit of M bytes", size, 65_536);
        assert_eq!((r["code"].as_str(), r["message"].as_str()), (Some("too_large"), Some(expected.as_str())));

        let open = json!({"type": "ticket.open", "subject": "s", "body": "first", "client_msg_id": "open-1"});
        let tid = c.request(open).await["ticket"]["id"].as_str().unwrap().to_owned();
        let body = "\u{0634}".repeat(4_001);
        let r = c.request(json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": "m", "body": body})).await;
        let expected = quoted("body of N characters is over the limit of M characters", 4_001, 4_000);
        assert_eq!((r["code"].as_str(), r["message"].as_str()), (Some("too_large"), Some(expected.as_str())));

        let (status, r) = hub.post("/v1/auth/code", json!({"phone": "x".repeat(17 * 1024)})).await;
        let expected = quoted("request body is over the limit of 16384 bytes", 0, 0);
        assert_eq!(status, 413, "{} {r}", hub.label());
        assert_eq!(
            (r["error"]["code"].as_str(), r["error"]["message"].as_str()),
            (Some("too_large"), Some(expected.as_str()))
        );
    }
}

#[tokio::test]
async fn invalid_utf8_text_gets_an_error_then_1007() {
    for hub in hubs(|_| {}).await {
        let mut c = hub.connect(Encoding::Json).await;
        // A text frame whose payload is not UTF-8, built by hand: tungstenite will not send one.
        let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
            vec![b'{', 0xff, 0xfe, b'}'],
            tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
                tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
            ),
            true,
        );
        c.ws.send(Message::Frame(frame)).await.unwrap();
        assert_eq!(c.closed().await, Some(1007), "{}", hub.label());
        assert_eq!(c.seen.len(), 1);
        assert_eq!(c.seen[0]["code"], "invalid_utf8", "{} {:?}", hub.label(), c.seen);
    }
}

#[tokio::test]
async fn a_frame_over_the_hard_limit_closes_with_1009() {
    for hub in hubs(|_| {}).await {
        let mut c = hub.connect(Encoding::Json).await;
        c.ws.send(Message::Text("x".repeat(300 * 1024).into())).await.unwrap();
        assert_eq!(c.closed().await, Some(1009), "{}", hub.label());
    }
}

#[tokio::test]
async fn repeated_garbage_closes_with_4010() {
    for hub in hubs(|c| c.max_bad_frames_per_min = 5).await {
        let mut c = hub.connect(Encoding::Json).await;
        for _ in 0..6 {
            c.ws.send(Message::Text("garbage".into())).await.unwrap();
        }
        assert_eq!(c.closed().await, Some(4010), "{}", hub.label());
        assert_eq!(c.seen.len(), 5, "one error per bad frame before the close");
    }
}

#[tokio::test]
async fn a_flood_is_refused_then_closed_with_4009() {
    for hub in hubs(|c| {
        c.max_frames_per_sec = 5;
        c.frame_burst = 5;
    })
    .await
    {
        let mut c = hub.connect(Encoding::Json).await;
        for i in 0..7 {
            c.send(json!({"id": i, "type": "ping"})).await;
        }
        let mut codes = Vec::new();
        for _ in 0..7 {
            let r = c.recv().await;
            codes.push(r["code"].as_str().unwrap_or("ok").to_owned());
        }
        assert_eq!(codes.iter().filter(|c| *c == "ok").count(), 5, "{} burst honoured: {codes:?}", hub.label());
        assert_eq!(codes.iter().filter(|c| *c == "rate_limited").count(), 2, "{codes:?}");
        assert!(
            c.seen.iter().filter(|f| f["code"] == "rate_limited").all(|f| f["id"].is_u64()),
            "refusals echo the id"
        );
        for i in 0..20 {
            c.send(json!({"id": 100 + i, "type": "ping"})).await;
        }
        assert_eq!(c.closed().await, Some(4009), "{}", hub.label());
    }
}

/// 3,000 frames in one write, far past the flood limit: the hub closes while most of them are still
/// unread, and every try must still see the refusals and the 4009 close frame, not a reset that
/// throws them away.
#[tokio::test]
async fn a_flood_sent_at_once_still_gets_the_refusals_and_4009() {
    for hub in hubs(|_| {}).await {
        for encoding in ENCODINGS {
            for attempt in 0..8 {
                let mut c = hub.connect(encoding).await;
                for i in 0..3_000 {
                    let frame = c.encode(&json!({"id": i, "type": "ping"}));
                    if c.ws.feed(frame).await.is_err() {
                        break;
                    }
                }
                let _ = c.ws.flush().await;
                let code = c.closed().await;
                let label = format!("{} {encoding:?} try {attempt}", hub.label());
                assert_eq!(code, Some(4009), "{label}: {} frames before the end", c.seen.len());
                assert!(c.seen.iter().any(|f| f["code"] == "rate_limited"), "{label}: refusals arrive");
            }
        }
    }
}

#[tokio::test]
async fn no_auth_within_the_deadline_closes_with_4001() {
    for hub in hubs(|c| c.auth_timeout_ms = 300).await {
        let mut c = hub.connect(Encoding::MsgPack).await;
        assert_eq!(c.closed().await, Some(4001), "{}", hub.label());
    }
}

#[tokio::test]
async fn repeated_bad_tokens_close_with_4002() {
    for hub in hubs(|_| {}).await {
        let mut c = hub.connect(Encoding::Json).await;
        for _ in 0..2 {
            let r = c.request(json!({"type": "auth", "token": "x".repeat(43)})).await;
            assert_eq!(r["code"], "unauthorized", "{} {r}", hub.label());
        }
        c.send(json!({"id": 99, "type": "auth", "token": "nope"})).await;
        assert_eq!(c.closed().await, Some(4002), "{}", hub.label());
    }
}

#[tokio::test]
async fn a_silent_peer_is_pinged_then_closed_with_4011() {
    for hub in hubs(|c| {
        c.ping_interval_ms = 1000;
        c.pong_timeout_ms = 500;
    })
    .await
    {
        let mut c = hub.connect(Encoding::Json).await;
        // Not reading means not answering pings: tungstenite answers only while polled.
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        assert_eq!(c.closed().await, Some(4011), "{}", hub.label());
    }
}

#[tokio::test]
async fn a_reading_peer_stays_connected_across_pings() {
    for hub in hubs(|c| {
        c.ping_interval_ms = 1000;
        c.pong_timeout_ms = 500;
    })
    .await
    {
        let token = hub.token(&phone()).await;
        let mut c = hub.connect_as(Encoding::Json, &token).await;
        // recv() polls the socket, so the client answers pings while it waits.
        let waited = tokio::time::timeout(Duration::from_millis(2_600), c.recv()).await;
        assert!(waited.is_err(), "no data frame expected, got {waited:?}");
        assert_eq!(c.request(json!({"type": "ping"})).await["type"], "ping.ok", "{}", hub.label());
    }
}

#[tokio::test]
async fn refresh_issues_a_new_token_and_retires_the_old_one() {
    for hub in hubs(|_| {}).await {
        let old = hub.token(&phone()).await;
        let mut c = hub.connect_as(Encoding::MsgPack, &old).await;
        let r = c.request(json!({"type": "session.refresh"})).await;
        assert_eq!(r["type"], "session.refresh.ok", "{} {r}", hub.label());
        let new = r["token"].as_str().unwrap();
        assert_ne!(new, old);
        assert_eq!(hub.get("/v1/me", Some(new)).await.0, 200);
        assert_eq!(hub.get("/v1/me", Some(&old)).await.0, 401);
        assert_eq!(c.request(json!({"type": "me"})).await["type"], "me.ok", "the socket carries on");
    }
}

#[tokio::test]
async fn an_expiring_session_is_warned_then_closed_with_4004() {
    for hub in hubs(|c| c.session_ttl_secs = 2).await {
        let token = hub.token(&phone()).await;
        let mut c = hub.connect_as(Encoding::Json, &token).await;
        let warning = c.recv().await;
        assert_eq!(warning["type"], "session.expiring", "{} {warning}", hub.label());
        assert_eq!(c.closed().await, Some(4004));
        assert_eq!(c.seen.last().unwrap()["type"], "session.expired");
    }
}

#[tokio::test]
async fn signing_out_closes_every_socket_of_the_session() {
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        let mut a = hub.connect_as(Encoding::Json, &token).await;
        let mut b = hub.connect_as(Encoding::MsgPack, &token).await;
        let r = a.request(json!({"type": "session.sign_out"})).await;
        assert_eq!(r["type"], "session.sign_out.ok", "{} {r}", hub.label());
        assert_eq!(a.closed().await, Some(1000));
        assert_eq!(b.closed().await, Some(4003), "{}", hub.label());
        assert_eq!(b.seen.last().unwrap()["type"], "session.revoked");
        assert_eq!(b.seen.last().unwrap()["reason"], "signed_out");
        assert_eq!(hub.get("/v1/me", Some(&token)).await.0, 401);
    }
}

#[tokio::test]
async fn http_sign_out_revokes_live_sockets() {
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        let mut c = hub.connect_as(Encoding::Json, &token).await;
        let status = hub.http.delete(format!("{}/v1/auth/session", hub.base)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(status.status(), 204);
        assert_eq!(c.closed().await, Some(4003), "{}", hub.label());
    }
}

#[tokio::test]
async fn unknown_subprotocols_are_refused_and_none_means_json() {
    for hub in hubs(|_| {}).await {
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(hub.ws_url.as_str())
                .unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-ws".parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
            other => panic!("expected 400, got {other:?}"),
        }
        let mut c = Client::connect(&hub.ws_url, None, None).await;
        assert_eq!(c.request(json!({"type": "ping"})).await["type"], "ping.ok", "{}", hub.label());
    }
}

#[tokio::test]
async fn shutdown_tells_clients_to_reconnect_with_1012() {
    for mut hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        let mut a = hub.connect_as(Encoding::Json, &token).await;
        let mut b = hub.connect(Encoding::MsgPack).await;
        hub.shutdown().await;
        assert_eq!(a.closed().await, Some(1012), "{}", hub.label());
        assert_eq!(b.closed().await, Some(1012));
    }
}
