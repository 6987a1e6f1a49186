//! The peer on port 0, driven the way the load harness drives it: sign-in over HTTP, two JSON
//! sockets, a ticket opened, claimed and followed, one message relayed exactly once, and an
//! announcement fanned out to both.

use anapars_peer_rust::{serve, Config};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

async fn start() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, Config::default()));
    addr
}

/// One HTTP/1.1 request on its own connection; the status and the JSON body.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &Value) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.to_string();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nauthorization: Bearer any\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

async fn post(addr: SocketAddr, path: &str, body: Value) -> (u16, Value) {
    let (status, body) = http(addr, "POST", path, &body).await;
    (status, serde_json::from_str(&body).unwrap())
}

struct Client {
    ws: WebSocketStream<TcpStream>,
    next_id: u64,
    pending: Vec<Value>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let mut request = format!("ws://{addr}/v1/ws").into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", "anapars.v1.json".parse().unwrap());
        let stream = TcpStream::connect(addr).await.unwrap();
        let (ws, response) = tokio_tungstenite::client_async(request, stream).await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "anapars.v1.json");
        Self { ws, next_id: 1, pending: Vec::new() }
    }

    /// The first frame (already received or arriving within 5 s) that `pick` accepts.
    async fn next(&mut self, pick: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pick) {
            return self.pending.remove(i);
        }
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await.expect("a frame in time");
            if let Message::Text(text) = message.unwrap().unwrap() {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                if pick(&frame) {
                    return frame;
                }
                self.pending.push(frame);
            }
        }
    }

    async fn request(&mut self, kind: &str, fields: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut frame = fields;
        frame["id"] = json!(id);
        frame["type"] = json!(kind);
        self.ws.send(Message::Text(frame.to_string().into())).await.unwrap();
        self.next(|f| f["id"] == json!(id)).await
    }
}

#[tokio::test]
async fn a_message_is_relayed_once_in_order_and_announcements_reach_every_socket() {
    let addr = start().await;
    let (status, _) = post(addr, "/v1/auth/code", json!({"phone": "+989120000000"})).await;
    assert_eq!(status, 202);
    let verify = json!({"phone": "+989120000000", "code": "123456", "device": {"id": "d"}});
    let (status, user_signin) = post(addr, "/v1/auth/verify", verify).await;
    assert_eq!(status, 200);
    let (status, agent_signin) = post(addr, "/v1/agent/login", json!({"email": "a@x.test", "password": "x"})).await;
    assert_eq!(status, 200);
    assert!(agent_signin["token"].as_str().unwrap().starts_with("agt_"));

    let mut user = Client::connect(addr).await;
    let mut agent = Client::connect(addr).await;
    let ok = user.request("auth", json!({"token": user_signin["token"]})).await;
    assert_eq!((ok["type"].as_str(), &ok["user_id"]), (Some("auth.ok"), &user_signin["user_id"]));
    let ok = agent.request("auth", json!({"token": agent_signin["token"]})).await;
    assert_eq!(ok["type"], "auth.agent.ok");
    assert_eq!(ok["agent"]["id"], agent_signin["agent"]["id"]);

    let opened = user.request("ticket.open", json!({"subject": "s", "body": "first", "client_msg_id": "c1"})).await;
    assert_eq!((opened["type"].as_str(), opened["ticket"]["last_seq"].as_u64()), (Some("ticket.open.ok"), Some(2)));
    let ticket = opened["ticket"]["id"].clone();
    assert_eq!(agent.request("ticket.claim", json!({"ticket_id": ticket})).await["type"], "ticket.update.ok");
    let sub = user.request("ticket.subscribe", json!({"ticket_id": ticket, "after_seq": 0})).await;
    assert_eq!(sub["type"], "ticket.subscribe.ok");
    let sub = agent.request("ticket.subscribe", json!({"ticket_id": ticket, "after_seq": 1})).await;
    assert_eq!(sub["ticket"]["last_seq"], 3);
    // The replay (2: the first message, 3: the claim) was written before the reply.
    for seq in [2, 3] {
        assert_eq!(agent.next(|f| f["type"] == "ticket.event").await["event"]["seq"], seq);
    }

    let sent =
        user.request("ticket.send", json!({"ticket_id": ticket, "client_msg_id": "u-1-5", "body": "hello"})).await;
    assert_eq!((sent["type"].as_str(), sent["seq"].as_u64()), (Some("ticket.send.ok"), Some(4)));
    let got = agent.next(|f| f["type"] == "ticket.event").await;
    assert_eq!(got["event"]["seq"], 4);
    assert_eq!((got["event"]["author"]["kind"].as_str(), got["event"]["body"].as_str()), (Some("user"), Some("hello")));
    assert_eq!(got["event"]["client_msg_id"], "u-1-5");
    // The user's own stream: 1, 2, 3 from the replay and live, then 4; nothing twice.
    let mut seqs = Vec::new();
    while seqs.len() < 4 {
        seqs.push(user.next(|f| f["type"] == "ticket.event").await["event"]["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs, [1, 2, 3, 4]);

    let (status, announced) =
        post(addr, "/v1/admin/announcements", json!({"text": "maintenance tonight", "audience": "everyone"})).await;
    assert_eq!(status, 202);
    for client in [&mut user, &mut agent] {
        let a = client.next(|f| f["type"] == "announcement").await;
        assert_eq!((&a["text"], &a["announcement_id"]), (&json!("maintenance tonight"), &announced["announcement_id"]));
    }
    assert_eq!(user.request("ping", json!({})).await["type"], "ping.ok");
    let (status, metrics) = http(addr, "GET", "/metrics", &json!({})).await;
    assert_eq!((status, metrics.lines().next()), (200, Some("hub_connections 2")));
}

#[tokio::test]
async fn an_offer_without_the_json_subprotocol_is_refused() {
    let addr = start().await;
    let mut request = format!("ws://{addr}/v1/ws").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "anapars.v1.msgpack".parse().unwrap());
    let stream = TcpStream::connect(addr).await.unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("expected a 400, got {:?}", other.map(|(_, r)| r.status())),
    }
}
