//! One task per socket: it reads requests and answers them in order, writes the frames pushed to
//! its outbox (fed in batches, then flushed once), and pings. Nothing else runs per socket.

use crate::state::{encode, now_ms, Outbox, Peer, Principal, Refusal};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// Pushed frames written before one flush.
const BATCH: usize = 64;

/// What a socket knows about itself.
struct Session {
    outbox: Arc<Outbox>,
    who: Option<Principal>,
    subscriptions: Vec<Arc<str>>,
}

/// Serves one upgraded socket until it closes.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(peer: Arc<Peer>, mut ws: WebSocketStream<S>) {
    let (outbox, mut rx) = Outbox::new(peer.next_conn());
    let mut session = Session { outbox, who: None, subscriptions: Vec::new() };
    peer.connections.fetch_add(1, Ordering::Relaxed);
    let period = peer.config.ping_interval;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut awaiting_pong = false;
    let mut close: Option<CloseFrame> = None;
    loop {
        let ok = tokio::select! {
            inbound = ws.next() => match inbound {
                Some(Ok(Message::Text(text))) => answer(&peer, &mut session, &mut ws, text.as_bytes()).await,
                Some(Ok(Message::Binary(bytes))) => answer(&peer, &mut session, &mut ws, &bytes).await,
                Some(Ok(Message::Pong(_))) => { awaiting_pong = false; true }
                // tungstenite queues the pong for a ping itself; the flush below sends it.
                Some(Ok(Message::Ping(_) | Message::Frame(_))) => true,
                Some(Ok(Message::Close(_)) | Err(_)) | None => false,
            },
            Some(frame) = rx.recv() => {
                let mut ok = ws.feed(Message::Text(frame)).await.is_ok();
                for _ in 1..BATCH {
                    let Ok(frame) = rx.try_recv() else { break };
                    ok = ok && ws.feed(Message::Text(frame)).await.is_ok();
                }
                if session.outbox.is_slow() {
                    close = Some(CloseFrame { code: CloseCode::Library(4008), reason: "slow consumer".into() });
                    false
                } else {
                    ok
                }
            }
            // No pong since the previous ping: the client is gone.
            _ = ping.tick() => if awaiting_pong {
                false
            } else {
                awaiting_pong = true;
                ws.feed(Message::Ping(Default::default())).await.is_ok()
            },
        };
        if !ok || ws.flush().await.is_err() {
            break;
        }
    }
    if let Some(frame) = close {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), ws.close(Some(frame))).await;
    }
    peer.unregister(session.outbox.conn, &session.subscriptions);
    peer.connections.fetch_sub(1, Ordering::Relaxed);
}

fn error(id: Option<u64>, r: Refusal) -> Value {
    json!({"type": "error", "id": id, "code": r.code, "message": r.message})
}

fn bad_request(id: Option<u64>, message: &'static str) -> Value {
    error(id, Refusal { code: "bad_request", message })
}

/// Answers one request frame; `false` when the socket can no longer be written.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    peer: &Peer,
    session: &mut Session,
    ws: &mut WebSocketStream<S>,
    payload: &[u8],
) -> bool {
    let (replay, reply) = handle(peer, session, payload);
    for frame in replay {
        if ws.feed(Message::Text(frame)).await.is_err() {
            return false;
        }
    }
    ws.feed(Message::Text(encode(&reply))).await.is_ok()
}

/// The reply to one request, after the events it must be preceded by (a subscription's replay).
fn handle(peer: &Peer, session: &mut Session, payload: &[u8]) -> (Vec<Utf8Bytes>, Value) {
    let Ok(Value::Object(f)) = serde_json::from_slice::<Value>(payload) else {
        return (Vec::new(), bad_request(None, "not a json object"));
    };
    let Some(id) = f.get("id").and_then(Value::as_u64) else {
        return (Vec::new(), bad_request(None, "missing id"));
    };
    let text = |key: &str| f.get(key).and_then(Value::as_str);
    let kind = text("type").unwrap_or_default();
    let none = Vec::new;
    if kind == "ping" {
        return (none(), json!({"type": "ping.ok", "id": id, "server_time": now_ms()}));
    }
    if kind == "auth" {
        let Some(token) = text("token").filter(|t| !t.is_empty()) else {
            return (none(), error(Some(id), Refusal { code: "unauthorized", message: "session token is not valid" }));
        };
        let who = Principal::from_token(token);
        peer.register(&who, &session.outbox);
        let expires = now_ms() + 12 * 3600 * 1000;
        let reply = if who.agent {
            let agent = json!({"id": &*who.id, "name": "agent", "status": "away", "capacity": 5, "online": true});
            json!({"type": "auth.agent.ok", "id": id, "agent": agent, "session_expires_at": expires})
        } else {
            json!({"type": "auth.ok", "id": id, "user_id": &*who.id, "device_id": &*who.id, "session_expires_at": expires})
        };
        session.who = Some(who);
        return (none(), reply);
    }
    let Some(who) = session.who.clone() else {
        return (none(), error(Some(id), Refusal { code: "unauthenticated", message: "authenticate first" }));
    };
    let ticket_id = text("ticket_id").unwrap_or_default();
    let outbox = &session.outbox;
    match kind {
        "ticket.open" => match (text("subject"), text("body"), text("client_msg_id")) {
            (Some(subject), Some(body), Some(cmid)) => (
                none(),
                json!({"type": "ticket.open.ok", "id": id, "ticket": peer.open(&who, outbox, subject, body, cmid)}),
            ),
            _ => (none(), bad_request(Some(id), "invalid `ticket.open` frame")),
        },
        "ticket.claim" => match peer.claim(&who, outbox, ticket_id) {
            Ok(ticket) => (none(), json!({"type": "ticket.update.ok", "id": id, "ticket": ticket})),
            Err(r) => (none(), error(Some(id), r)),
        },
        "ticket.subscribe" => {
            let after = f.get("after_seq").map_or(Some(0), Value::as_u64);
            let Some(after) = after else { return (none(), bad_request(Some(id), "after_seq must be a seq")) };
            match peer.subscribe(outbox, ticket_id, after) {
                Ok((ticket_id, missed, ticket)) => {
                    if !session.subscriptions.contains(&ticket_id) {
                        session.subscriptions.push(ticket_id);
                    }
                    (missed, json!({"type": "ticket.subscribe.ok", "id": id, "ticket": ticket}))
                }
                Err(r) => (none(), error(Some(id), r)),
            }
        }
        "ticket.send" => match (text("client_msg_id"), text("body").filter(|b| !b.trim().is_empty())) {
            (Some(cmid), Some(body)) => match peer.send(&who, outbox, ticket_id, cmid, body) {
                Ok(seq) => (
                    none(),
                    json!({"type": "ticket.send.ok", "id": id, "ticket_id": ticket_id, "seq": seq, "duplicate": false}),
                ),
                Err(r) => (none(), error(Some(id), r)),
            },
            _ => (none(), bad_request(Some(id), "invalid `ticket.send` frame")),
        },
        "queue.subscribe" if who.agent => {
            peer.watch_queue(outbox);
            (none(), json!({"type": "queue.subscribe.ok", "id": id, "tickets": []}))
        }
        "queue.subscribe" => (none(), error(Some(id), Refusal { code: "forbidden", message: "agents only" })),
        _ => (none(), error(Some(id), Refusal { code: "unknown_type", message: "unknown type" })),
    }
}
