//! What an operator relies on: health, readiness, metrics, and clean errors for unknown routes.

mod common;

use anapars_hub::protocol::Encoding;
use common::hub::{hubs, phone};
use serde_json::json;

#[tokio::test]
async fn health_and_readiness() {
    for hub in hubs(|_| {}).await {
        assert_eq!(hub.get("/healthz", None).await, (200, json!({"status": "ok"})), "{}", hub.label());
        assert_eq!(hub.get("/readyz", None).await, (200, json!({"status": "ready"})), "{}", hub.label());
        let (status, body) = hub.get("/no/such/route", None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    }
}

#[tokio::test]
async fn metrics_count_connections_frames_errors_and_codes() {
    for hub in hubs(|_| {}).await {
        let token = hub.token(&phone()).await;
        let mut c = hub.connect_as(Encoding::Json, &token).await;
        c.request(json!({"type": "ping"})).await;
        c.request(json!({"type": "no.such.type"})).await;
        let text = hub.http.get(format!("{}/metrics", hub.base)).send().await.unwrap().text().await.unwrap();
        for needle in [
            "hub_connections ",
            "hub_connections_total",
            "hub_frames_in_total{type=\"ping\"}",
            "hub_frames_out_total{type=\"ping.ok\"}",
            "hub_errors_total{code=\"unknown_type\"}",
            "hub_otp_sent_total",
            "hub_sign_ins_total",
            "hub_http_request_duration_seconds_bucket",
            "hub_ws_request_duration_seconds_bucket",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
        ] {
            assert!(text.contains(needle), "{} /metrics lacks {needle}", hub.label());
        }
    }
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_request_is_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for hub in hubs(|c| c.upgrade_timeout_ms = 300).await {
        let addr = hub.base.trim_start_matches("http://").to_owned();
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(b"GET /v1/ws HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf)).await;
        let elapsed = started.elapsed();
        assert!(read.is_ok(), "{} the hub must end a stalled request", hub.label());
        assert!(elapsed < std::time::Duration::from_secs(2), "{} took {elapsed:?}", hub.label());
    }
}

#[tokio::test]
async fn announcements_reach_every_connected_app_and_console_once() {
    let admin = "an-operator-token-of-at-least-32-characters";
    for hub in hubs(|c| c.admin_token = Some(anapars_hub::config::Secret(admin.into()))).await {
        let label = hub.label();
        let token = hub.token(&phone()).await;
        let mut app_json = hub.connect_as(Encoding::Json, &token).await;
        let mut app_msgpack = hub.connect_as(Encoding::MsgPack, &token).await;
        let (agent_token, _) = hub.agent("Ops").await;
        let mut console = hub.connect_agent(Encoding::Json, &agent_token).await;
        let post = |token: &'static str, body: serde_json::Value| {
            let req = hub.http.post(format!("{}/v1/admin/announcements", hub.base)).json(&body);
            async move {
                let r = req.bearer_auth(token).send().await.unwrap();
                (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
            }
        };

        let (status, body) = post("wrong-token", json!({"text": "hi"})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{label}");
        let (status, body) = post(admin, json!({"text": "   "})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{label}");
        let (status, body) = post(admin, json!({"text": "x".repeat(1001)})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (413, Some("too_large")), "{label}");

        // Users only: both sockets of the app get it, the console does not.
        let (status, body) = post(admin, json!({"text": "Maintenance at 23:00", "audience": "users"})).await;
        assert_eq!(status, 202, "{label} {body}");
        let id = body["announcement_id"].as_str().unwrap().to_owned();
        for app in [&mut app_json, &mut app_msgpack] {
            let a = app.event("announcement").await;
            assert_eq!(
                (a["announcement_id"].as_str(), a["text"].as_str()),
                (Some(id.as_str()), Some("Maintenance at 23:00"))
            );
        }
        // Everyone (the default): the console too, and the apps once more, once each.
        let (status, body) = post(admin, json!({"text": "Back online"})).await;
        assert_eq!(status, 202, "{label} {body}");
        let a = console.event("announcement").await;
        assert_eq!(a["text"], "Back online", "{label}");
        assert_eq!(
            console.seen.iter().filter(|f| f["type"] == "announcement").count(),
            1,
            "{label} users-only skipped agents"
        );
        for app in [&mut app_json, &mut app_msgpack] {
            assert_eq!(app.event("announcement").await["text"], "Back online");
            app.request(json!({"type": "ping"})).await;
            assert_eq!(app.seen.iter().filter(|f| f["type"] == "announcement").count(), 2, "{label} once each");
        }
    }
}

#[tokio::test]
async fn announcements_are_off_without_an_admin_token() {
    for hub in hubs(|_| {}).await {
        let r = hub
            .http
            .post(format!("{}/v1/admin/announcements", hub.base))
            .bearer_auth("x".repeat(40))
            .json(&json!({"text": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{}", hub.label());
    }
}

/// `GET /healthz` with `fields` header fields after `Host` and `Connection: close` (`X-Pad` set
/// to `pad` bytes, the others short), padded so that the head is exactly `len` bytes (blank line
/// included) when `len` is given.
fn head(fields: usize, len: Option<usize>) -> String {
    let mut head = "GET /healthz HTTP/1.1\r\nHost: hub.test\r\nConnection: close\r\n".to_owned();
    for i in 1..fields {
        head.push_str(&format!("X-Field-{i}: v\r\n"));
    }
    let pad = len.map_or(1, |len| len.checked_sub(head.len() + "X-Pad: \r\n\r\n".len()).expect("a head that long"));
    head.push_str(&format!("X-Pad: {}\r\n\r\n", "p".repeat(pad)));
    assert!(len.is_none_or(|len| head.len() == len));
    head
}

/// Writes `head` at once on a new connection and reads the answer to its end: status and body.
async fn raw_request(hub: &common::hub::TestHub, head: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = hub.running.as_ref().expect("hub running").addr;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A write cut short by the hub's answer is fine: the answer is what matters.
    let _ = tcp.write_all(head.as_bytes()).await;
    let mut response = Vec::new();
    let read = tokio::time::timeout(common::hub::FRAME_TIMEOUT, tcp.read_to_end(&mut response)).await;
    let len = head.len();
    assert!(matches!(read, Ok(Ok(_))), "{} {len}-byte head: the answer was not read: {read:?}", hub.label());
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("an HTTP response: {text:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("a status: {head}"));
    (status, body.to_owned())
}

/// PROTOCOL.md: an HTTP request head is at most 64 KiB and 100 header fields. A head of up to
/// 65,536 bytes and 100 fields is read; one byte more, 70 KiB and 1 MiB written at once (4 tries
/// each: the answer must not be lost while most of the head is still unread), and 101 fields get
/// `431` with the JSON error body.
#[tokio::test]
async fn a_request_head_over_the_limits_gets_431_with_the_json_error_body() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        for ok in [head(1, Some(60 * 1024)), head(1, Some(64 * 1024)), head(98, None)] {
            let (status, body) = raw_request(&hub, &ok).await;
            assert_eq!(status, 200, "{label} a {}-byte head is read: {body}", ok.len());
        }
        let lens = [64 * 1024 + 1].into_iter().chain([70 * 1024; 4]).chain([1 << 20; 4]);
        let refused = lens.map(|len| head(1, Some(len))).chain([head(99, None)]);
        for refused in refused {
            let (status, body) = raw_request(&hub, &refused).await;
            let len = refused.len();
            assert_eq!(status, 431, "{label} {len}-byte head: {body}");
            let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{label} {e}: {body}"));
            let message = "request head is over the limit of 65536 bytes or 100 header fields";
            assert_eq!(body, json!({"error": {"code": "too_large", "message": message}}), "{label} {len}");
        }
    }
}

/// Shutdown while messages are in flight: every message the hub acknowledged is in the store once
/// the hub stopped (each at the seq its `ticket.send.ok` gave), and the hub's shutdown returns
/// within its deadline (twice the grace period: sockets first, then the node's tasks).
#[tokio::test]
async fn shutdown_with_messages_in_flight_keeps_every_acknowledged_message() {
    use anapars_hub::model::ids::TicketId;
    use anapars_hub::model::ticket::{EventKind, Page};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    const SOCKETS: usize = 3;
    const TICKETS_PER_SOCKET: usize = 6;
    const SENDS_PER_SOCKET: usize = 120;
    let grace = Duration::from_millis(3_000);
    for mut hub in hubs(|c| {
        c.shutdown_grace_ms = 3_000;
        c.max_frames_per_sec = 10_000;
        c.frame_burst = 10_000;
    })
    .await
    {
        let label = hub.label();
        // Per socket: its client, and each request id's (ticket, client_msg_id, body).
        let mut sockets = Vec::new();
        for _ in 0..SOCKETS {
            let token = hub.token(&phone()).await;
            let mut c = hub.connect_as(Encoding::MsgPack, &token).await;
            let mut tickets = Vec::new();
            for t in 0..TICKETS_PER_SOCKET {
                let opened = c
                    .request(json!({"type": "ticket.open", "subject": format!("in flight {t}"), "body": "first", "client_msg_id": uuid::Uuid::new_v4().to_string()}))
                    .await;
                assert_eq!(opened["type"], "ticket.open.ok", "{label} {opened}");
                tickets.push(opened["ticket"]["id"].as_str().unwrap().to_owned());
            }
            sockets.push((c, tickets, HashMap::new()));
        }
        // Pipelined sends on every socket at once, without waiting for any reply.
        for (c, tickets, sent) in &mut sockets {
            for n in 0..SENDS_PER_SOCKET {
                let (id, ticket) = (1_000 + n as u64, tickets[n % tickets.len()].clone());
                let (cmid, body) = (uuid::Uuid::new_v4().to_string(), format!("message {n} عدد ۱۲"));
                c.send(
                    json!({"id": id, "type": "ticket.send", "ticket_id": ticket, "client_msg_id": cmid, "body": body}),
                )
                .await;
                sent.insert(id, (ticket, cmid, body));
            }
        }
        // One commit acknowledged, so that the shutdown starts while the rest are in flight.
        while sockets[0].0.recv().await["type"] != "ticket.send.ok" {}
        let running = hub.running.take().expect("the hub runs");
        let services = running.hub.clone();
        let started = Instant::now();
        let stopping = tokio::spawn(running.shutdown());
        // Each socket read to its close, then dropped (the hub waits for clients to hang up).
        let mut closed = Vec::new();
        for (mut c, tickets, sent) in sockets {
            assert_eq!(c.closed().await, Some(1012), "{label}");
            closed.push((std::mem::take(&mut c.seen), tickets, sent));
        }
        tokio::time::timeout(grace * 2 + Duration::from_secs(1), stopping)
            .await
            .unwrap_or_else(|_| panic!("{label} shutdown took longer than its deadline"))
            .expect("shutdown does not panic");
        // Well within the deadline, in fact: every group of tasks ended on its own, none was
        // waited out.
        let took = started.elapsed();
        assert!(took < grace, "{label} shutdown took {took:?}");

        let mut acknowledged = 0;
        let mut stored: HashMap<String, Vec<_>> = HashMap::new();
        for (seen, tickets, sent) in &closed {
            for ticket in tickets {
                let id = TicketId(ticket.parse().unwrap());
                let events = services.store.events(id, Page::After(0), 1_000).await.expect("the store answers");
                stored.insert(ticket.clone(), events);
            }
            for ack in seen.iter().filter(|f| f["type"] == "ticket.send.ok") {
                let (ticket, cmid, body) = &sent[&ack["id"].as_u64().unwrap()];
                let seq = ack["seq"].as_u64().unwrap();
                let event = stored[ticket].iter().find(|e| e.seq == seq);
                assert!(
                    event.is_some_and(|e| e.kind == EventKind::Message
                        && e.client_msg_id.as_deref() == Some(cmid.as_str())
                        && e.body.as_deref() == Some(body.as_str())),
                    "{label} acknowledged message at seq {seq} of {ticket} is not in the store: {event:?}"
                );
                acknowledged += 1;
            }
        }
        assert!(acknowledged >= 1, "{label} nothing was acknowledged");
        let messages: usize =
            stored.values().map(|events| events.iter().filter(|e| e.kind == EventKind::Message).count()).sum();
        // Each ticket's opening message, and at least what was acknowledged.
        assert!(messages >= SOCKETS * TICKETS_PER_SOCKET + acknowledged, "{label} {messages} stored");
    }
}

/// After SIGTERM a node answers `503` on `/readyz` at once; during `shutdown_drain_ms` its sockets
/// keep working; then they get `1012`, and while one of them has not finished closing the listener
/// still answers `/readyz` with `503` (a load balancer sees "not ready", not a refused connection).
/// Once the grace period is over the listener is closed.
#[tokio::test]
async fn readiness_answers_503_from_sigterm_until_the_listener_closes() {
    use std::time::{Duration, Instant};
    for mut hub in hubs(|c| {
        c.shutdown_grace_ms = 2_000;
        c.shutdown_drain_ms = 800;
    })
    .await
    {
        let label = hub.label();
        let readyz = format!("{}/readyz", hub.base);
        // A new connection each time: the point is whether the listener still accepts.
        let ready = || async {
            let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
            match client.get(&readyz).send().await {
                Ok(r) => Some((r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap_or_default())),
                Err(_) => None,
            }
        };
        let mut draining = hub.connect_as(Encoding::Json, &hub.token(&phone()).await).await;
        let lingering = hub.connect_as(Encoding::Json, &hub.token(&phone()).await).await;
        let running = hub.running.take().expect("the hub runs");
        let started = Instant::now();
        let stopping = tokio::spawn(running.shutdown());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(ready().await, Some((503, json!({"status": "shutting_down"}))), "{label} during the drain");
        let pong = draining.request(json!({"id": 1, "type": "ping"})).await;
        assert_eq!(pong["type"], "ping.ok", "{label}: sockets work during the drain: {pong}");
        assert_eq!(draining.closed().await, Some(1012), "{label}");
        assert!(started.elapsed() >= Duration::from_millis(800), "{label}: 1012 came before the drain ended");
        // `lingering` does not answer the close: the node waits for it up to the grace period, and
        // its listener keeps saying "not ready".
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(ready().await, Some((503, json!({"status": "shutting_down"}))), "{label} while a socket closes");
        tokio::time::timeout(Duration::from_secs(10), stopping).await.expect("shutdown ends").expect("no panic");
        assert_eq!(ready().await, None, "{label}: the listener is closed once shutdown is over");
        drop(lingering);
    }
}
