//! The hub's protocol as the harness speaks it: requests built from small serde structs, replies and
//! events read into one lenient [`Frame`] (unknown fields ignored), in JSON text frames or
//! MessagePack binary frames, over a socket bound to a chosen 127.0.0.x source address.

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// How long a connect, a handshake or a set-up request may take before it counts as an error.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// A socket's encoding (the subprotocol the harness offers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// `anapars.v1.json`, text frames.
    Json,
    /// `anapars.v1.msgpack`, binary frames.
    Msgpack,
}

impl Encoding {
    /// The subprotocol name.
    pub fn protocol(self) -> &'static str {
        match self {
            Self::Json => "anapars.v1.json",
            Self::Msgpack => "anapars.v1.msgpack",
        }
    }
}

/// Which encoding each socket uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingChoice {
    /// Every socket in JSON.
    Json,
    /// Every socket in MessagePack.
    Msgpack,
    /// Even-numbered sockets in JSON, odd ones in MessagePack.
    Mixed,
}

impl EncodingChoice {
    /// The encoding of socket number `i`.
    pub fn for_socket(self, i: usize) -> Encoding {
        match self {
            Self::Json => Encoding::Json,
            Self::Msgpack => Encoding::Msgpack,
            Self::Mixed if i % 2 == 0 => Encoding::Json,
            Self::Mixed => Encoding::Msgpack,
        }
    }
}

/// The source addresses sockets are spread over: 127.0.0.1, 127.0.0.2, ... (`count` of them, at
/// most 254), so that many sockets never run out of ephemeral ports towards one hub address.
pub fn source_ips(count: usize) -> Vec<IpAddr> {
    (1..=count.clamp(1, 254) as u8).map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))).collect()
}

/// A request: `id` and `type` beside the type's own fields, in one flat map.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    id: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    body: T,
}

/// Request bodies the harness sends.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Body<'a> {
    /// `auth`.
    Auth {
        /// Session token.
        token: &'a str,
    },
    /// `ticket.open`.
    Open {
        /// Subject.
        subject: &'a str,
        /// First message.
        body: &'a str,
        /// Client id of the first message.
        client_msg_id: &'a str,
    },
    /// `ticket.subscribe`.
    Subscribe {
        /// Ticket.
        ticket_id: &'a str,
        /// Last seq the client has.
        after_seq: u64,
    },
    /// `ticket.send`.
    Send {
        /// Ticket.
        ticket_id: &'a str,
        /// Client message id.
        client_msg_id: &'a str,
        /// Text.
        body: &'a str,
        /// Ids of the sender's stored uploads (absent: none).
        #[serde(skip_serializing_if = "Option::is_none")]
        attachments: Option<&'a [&'a str]>,
    },
    /// `ticket.claim`.
    Ticket {
        /// Ticket.
        ticket_id: &'a str,
    },
    /// `telemetry.views`: a batch of view events.
    Views {
        /// The events.
        events: &'a [ViewEvent],
    },
    /// `ticket.search`.
    Search {
        /// The words.
        query: &'a str,
        /// Matches per page.
        limit: u32,
    },
    /// Requests without fields (`ping`, `queue.subscribe`).
    Empty {},
}

/// One view event of `telemetry.views` (protocol: "View events").
#[derive(Clone, Debug, Serialize)]
pub struct ViewEvent {
    /// `screen` or `action`.
    pub kind: &'static str,
    /// The screen's name.
    pub screen: String,
    /// By the app's clock, ms since the epoch.
    pub at: i64,
    /// How long the screen was shown.
    pub duration_ms: u64,
}

/// Encodes a request as a WebSocket message in `encoding`.
///
/// # Errors
/// Only if serde fails, which these types rule out.
pub fn encode(encoding: Encoding, id: u64, kind: &str, body: Body<'_>) -> Result<Message, String> {
    let envelope = Envelope { id, kind, body };
    match encoding {
        Encoding::Json => serde_json::to_string(&envelope).map(|s| Message::Text(s.into())).map_err(|e| e.to_string()),
        Encoding::Msgpack => {
            rmp_serde::to_vec_named(&envelope).map(|v| Message::Binary(v.into())).map_err(|e| e.to_string())
        }
    }
}

/// A frame from the hub, read leniently: only the fields the harness uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Frame {
    /// `type`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Echoed request id (absent in events, null in some errors).
    #[serde(default)]
    pub id: Option<u64>,
    /// `ticket.send.ok`: the stored message's seq.
    #[serde(default)]
    pub seq: Option<u64>,
    /// `ticket.send.ok`: whether the client message id was stored before.
    #[serde(default)]
    pub duplicate: Option<bool>,
    /// `error`: the code.
    #[serde(default)]
    pub code: Option<String>,
    /// `ticket.event`: the event.
    #[serde(default)]
    pub event: Option<EventIn>,
    /// Replies and events carrying a ticket.
    #[serde(default)]
    pub ticket: Option<TicketIn>,
}

/// The parts of a ticket event the harness checks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct EventIn {
    /// Ticket.
    #[serde(default)]
    pub ticket_id: String,
    /// Place in the ticket's stream.
    #[serde(default)]
    pub seq: u64,
    /// `message`, `opened`, `claimed`, ...
    #[serde(default)]
    pub kind: String,
    /// Who caused it.
    #[serde(default)]
    pub author: AuthorIn,
    /// The sender's message id (carries the harness's send time).
    #[serde(default)]
    pub client_msg_id: Option<String>,
    /// A message's attachments.
    #[serde(default)]
    pub attachments: Vec<AttachmentIn>,
}

/// The parts of a message's attachment the harness checks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct AttachmentIn {
    /// Id.
    #[serde(default)]
    pub id: String,
    /// `image` or `file`.
    #[serde(default)]
    pub kind: String,
}

/// An event's author.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct AuthorIn {
    /// `user`, `agent` or `system`.
    #[serde(default)]
    pub kind: String,
}

/// The parts of a ticket view the harness uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct TicketIn {
    /// Id.
    #[serde(default)]
    pub id: String,
    /// Seq of its last event.
    #[serde(default)]
    pub last_seq: u64,
}

/// Decodes a data message from the hub; `Ok(None)` for control frames.
///
/// # Errors
/// A payload that is not a frame in the message's encoding.
pub fn decode(message: &Message) -> Result<Option<Frame>, String> {
    match message {
        Message::Text(t) => serde_json::from_str(t.as_str()).map(Some).map_err(|e| e.to_string()),
        Message::Binary(b) => rmp_serde::from_slice(b).map(Some).map_err(|e| e.to_string()),
        _ => Ok(None),
    }
}

/// Why a socket stopped working, as a stable key for the error table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnError {
    /// TCP connect failed.
    Connect(String),
    /// The WebSocket upgrade failed (HTTP status, or another reason).
    Handshake(String),
    /// The hub closed the socket with this code (None: no close frame).
    Closed(Option<u16>),
    /// A read or write failed.
    Io(String),
    /// A step took longer than [`STEP_TIMEOUT`].
    Timeout(&'static str),
    /// A frame could not be decoded.
    BadFrame,
    /// The hub answered something unexpected (a set-up request refused, a wrong reply).
    Refused(String),
}

impl ConnError {
    /// The key under which the error is counted.
    pub fn key(&self) -> String {
        match self {
            Self::Connect(kind) => format!("connect:{kind}"),
            Self::Handshake(why) => format!("handshake:{why}"),
            Self::Closed(Some(code)) => format!("closed:{code}"),
            Self::Closed(None) => "closed:no_close_frame".into(),
            Self::Io(kind) => format!("io:{kind}"),
            Self::Timeout(step) => format!("timeout:{step}"),
            Self::BadFrame => "bad_frame".into(),
            Self::Refused(what) => format!("refused:{what}"),
        }
    }
}

/// An open socket to the hub with its encoding and request ids.
pub struct Conn {
    ws: WebSocketStream<TcpStream>,
    /// The socket's encoding.
    pub encoding: Encoding,
    next_id: u64,
}

/// Client buffers: small, like the hub's, so that thousands of harness sockets stay cheap.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0).max_message_size(Some(16 << 20))
}

impl Conn {
    /// Connects to `hub` from `source`, offering `encoding`.
    ///
    /// # Errors
    /// [`ConnError::Connect`], [`ConnError::Handshake`] or [`ConnError::Timeout`].
    pub async fn connect(hub: SocketAddr, source: IpAddr, encoding: Encoding) -> Result<Self, ConnError> {
        let socket = TcpSocket::new_v4().map_err(|e| ConnError::Connect(io_kind(&e)))?;
        socket.bind(SocketAddr::new(source, 0)).map_err(|e| ConnError::Connect(io_kind(&e)))?;
        let stream = tokio::time::timeout(STEP_TIMEOUT, socket.connect(hub))
            .await
            .map_err(|_| ConnError::Timeout("connect"))?
            .map_err(|e| ConnError::Connect(io_kind(&e)))?;
        let _ = stream.set_nodelay(true);
        let mut request = format!("ws://{hub}/v1/ws")
            .into_client_request()
            .map_err(|e| ConnError::Handshake(format!("request: {e}")))?;
        let offer = encoding.protocol().parse().map_err(|_| ConnError::Handshake("header".into()))?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", offer);
        let (ws, response) = tokio::time::timeout(
            STEP_TIMEOUT,
            tokio_tungstenite::client_async_with_config(request, stream, Some(client_config())),
        )
        .await
        .map_err(|_| ConnError::Timeout("handshake"))?
        .map_err(|e| match e {
            WsError::Http(r) => ConnError::Handshake(r.status().as_u16().to_string()),
            other => ConnError::Handshake(short(&other.to_string())),
        })?;
        let agreed = response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
        if agreed != Some(encoding.protocol()) {
            return Err(ConnError::Handshake("subprotocol".into()));
        }
        Ok(Self { ws, encoding, next_id: 1 })
    }

    /// Sends a request with a fresh id and returns the id.
    ///
    /// # Errors
    /// [`ConnError::Io`] when the write fails.
    pub async fn send(&mut self, kind: &str, body: Body<'_>) -> Result<u64, ConnError> {
        let id = self.next_id;
        self.next_id += 1;
        let message = encode(self.encoding, id, kind, body).map_err(|_| ConnError::Io("encode".into()))?;
        self.ws.send(message).await.map_err(|e| ConnError::Io(ws_kind(&e)))?;
        Ok(id)
    }

    /// The next data message from the hub, undecoded (control frames are skipped; tungstenite
    /// answers pings while reading): for receivers that only look for a marker in the bytes.
    ///
    /// # Errors
    /// [`ConnError::Closed`] or [`ConnError::Io`].
    pub async fn recv_message(&mut self) -> Result<Message, ConnError> {
        loop {
            let message = match self.ws.next().await {
                Some(Ok(m)) => m,
                Some(Err(
                    WsError::ConnectionClosed
                    | WsError::AlreadyClosed
                    | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                ))
                | None => return Err(ConnError::Closed(None)),
                Some(Err(e)) => return Err(ConnError::Io(ws_kind(&e))),
            };
            match message {
                Message::Close(frame) => return Err(ConnError::Closed(frame.as_ref().map(|f| u16::from(f.code)))),
                Message::Text(_) | Message::Binary(_) => return Ok(message),
                _ => continue,
            }
        }
    }

    /// The next frame from the hub (control frames are skipped; tungstenite answers pings while
    /// reading).
    ///
    /// # Errors
    /// [`ConnError::Closed`], [`ConnError::Io`] or [`ConnError::BadFrame`].
    pub async fn recv(&mut self) -> Result<Frame, ConnError> {
        loop {
            let message = self.recv_message().await?;
            match decode(&message) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => continue,
                Err(_) => return Err(ConnError::BadFrame),
            }
        }
    }

    /// Sends a request and waits for its reply; frames arriving meanwhile go to `on_other`.
    ///
    /// # Errors
    /// As [`Conn::send`] and [`Conn::recv`], and [`ConnError::Timeout`].
    pub async fn request(
        &mut self,
        kind: &'static str,
        body: Body<'_>,
        on_other: &mut impl FnMut(Frame),
    ) -> Result<Frame, ConnError> {
        let id = self.send(kind, body).await?;
        let wait = async {
            loop {
                let frame = self.recv().await?;
                if frame.id == Some(id) {
                    return Ok(frame);
                }
                on_other(frame);
            }
        };
        tokio::time::timeout(STEP_TIMEOUT, wait).await.map_err(|_| ConnError::Timeout(kind))?
    }

    /// A set-up step: a request whose reply must be of type `expected`.
    ///
    /// # Errors
    /// As [`Conn::request`], and [`ConnError::Refused`] (`<kind>:<code>`) for any other reply.
    pub async fn expect(
        &mut self,
        kind: &'static str,
        body: Body<'_>,
        expected: &str,
        on_other: &mut impl FnMut(Frame),
    ) -> Result<Frame, ConnError> {
        let reply = self.request(kind, body, on_other).await?;
        if reply.kind == expected {
            Ok(reply)
        } else {
            Err(ConnError::Refused(format!("{kind}:{}", reply.code.as_deref().unwrap_or(&reply.kind))))
        }
    }

    /// Connects to `hub` from `source` in `encoding` and authenticates with a user's or an agent's
    /// token.
    ///
    /// # Errors
    /// As [`Conn::connect`] and [`Conn::expect`].
    pub async fn open(
        hub: SocketAddr,
        source: IpAddr,
        encoding: Encoding,
        token: &str,
        agent: bool,
    ) -> Result<Self, ConnError> {
        let mut conn = Self::connect(hub, source, encoding).await?;
        let ok = if agent { "auth.agent.ok" } else { "auth.ok" };
        conn.expect("auth", Body::Auth { token }, ok, &mut |_f: Frame| {}).await?;
        Ok(conn)
    }

    /// Opens a ticket as its user; returns its id.
    ///
    /// # Errors
    /// As [`Conn::expect`]; [`ConnError::Refused`] (`ticket.open:no_ticket`) when the reply carries
    /// no ticket.
    pub async fn open_ticket(&mut self, subject: &str, body: &str, client_msg_id: &str) -> Result<String, ConnError> {
        let open = Body::Open { subject, body, client_msg_id };
        let opened = self.expect("ticket.open", open, "ticket.open.ok", &mut |_f: Frame| {}).await?;
        let ticket = opened.ticket.map(|t| t.id).filter(|id| !id.is_empty());
        ticket.ok_or_else(|| ConnError::Refused("ticket.open:no_ticket".into()))
    }

    /// Drops the connection abruptly: the TCP connection closes without a WebSocket close frame, as
    /// when a phone loses its network.
    pub fn abort(self) {
        drop(self.ws);
    }

    /// Closes the socket politely (1000), without waiting long for the hub's answer.
    pub async fn close(mut self) {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "load test done".into() };
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(Some(frame))).await;
    }
}

fn io_kind(e: &std::io::Error) -> String {
    format!("{:?}", e.kind()).to_lowercase()
}

fn ws_kind(e: &WsError) -> String {
    match e {
        WsError::Io(io) => io_kind(io),
        WsError::Capacity(_) => "capacity".into(),
        WsError::Protocol(_) => "protocol".into(),
        WsError::Utf8(_) => "utf8".into(),
        _ => "other".into(),
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_json(message: &Message) -> serde_json::Value {
        match message {
            Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
            Message::Binary(b) => rmp_serde::from_slice(b).unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn requests_are_flat_maps_in_both_encodings() {
        let send = || Body::Send { ticket_id: "t1", client_msg_id: "u1-2-3", body: "hi", attachments: None };
        let expected = serde_json::json!({"id": 7, "type": "ticket.send", "ticket_id": "t1", "client_msg_id": "u1-2-3", "body": "hi"});
        let ids = ["0194f3a2-7b1c-7d00-8e4f-0123456789ab"];
        let with = || Body::Send { ticket_id: "t1", client_msg_id: "u1-2-3", body: "hi", attachments: Some(&ids) };
        let mut expected_with = expected.clone();
        expected_with["attachments"] = serde_json::json!(ids);
        for encoding in [Encoding::Json, Encoding::Msgpack] {
            let m = encode(encoding, 7, "ticket.send", send()).unwrap();
            assert_eq!(matches!(m, Message::Text(_)), encoding == Encoding::Json);
            assert_eq!(roundtrip_json(&m), expected, "{encoding:?}");
            assert_eq!(roundtrip_json(&encode(encoding, 7, "ticket.send", with()).unwrap()), expected_with);
        }
        let ping = encode(Encoding::Msgpack, 3, "ping", Body::Empty {}).unwrap();
        // The protocol document's own vector for {"id":3,"type":"ping"}.
        assert_eq!(ping, Message::Binary(hex("82a2696403a474797065a470696e67").into()));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn frames_decode_leniently_from_either_encoding() {
        let event = serde_json::json!({"type": "ticket.event", "event": {"ticket_id": "t", "seq": 9, "kind": "message",
            "author": {"kind": "user", "id": "u"}, "body": "x", "client_msg_id": "u1-1-5", "at": 1}});
        let text = Message::Text(event.to_string().into());
        let binary = Message::Binary(rmp_serde::to_vec_named(&event).unwrap().into());
        for m in [text, binary] {
            let f = decode(&m).unwrap().unwrap();
            assert_eq!(f.kind, "ticket.event");
            assert_eq!(f.id, None);
            let e = f.event.unwrap();
            assert_eq!((e.seq, e.author.kind.as_str(), e.client_msg_id.as_deref()), (9, "user", Some("u1-1-5")));
            assert!(e.attachments.is_empty());
        }
        let with = serde_json::json!({"type": "ticket.event", "event": {"ticket_id": "t", "seq": 10, "kind": "message",
            "author": {"kind": "user"}, "attachments": [{"id": "a1", "kind": "image", "media_type": "image/jpeg",
            "size": 1, "name": "p.jpg", "url": "/v1/attachments/a1"}]}});
        let f = decode(&Message::Binary(rmp_serde::to_vec_named(&with).unwrap().into())).unwrap().unwrap();
        assert_eq!(f.event.unwrap().attachments, [AttachmentIn { id: "a1".into(), kind: "image".into() }]);
        let err = serde_json::json!({"type": "error", "id": null, "code": "rate_limited", "message": "m", "retry_after_ms": 20});
        let f = decode(&Message::Text(err.to_string().into())).unwrap().unwrap();
        assert_eq!((f.id, f.code.as_deref()), (None, Some("rate_limited")));
        assert!(decode(&Message::Text("garbage".into())).is_err());
        assert_eq!(decode(&Message::Ping(Default::default())).unwrap(), None);
    }

    #[test]
    fn sockets_spread_over_loopback_sources() {
        let ips = source_ips(3);
        assert_eq!(ips.len(), 3);
        assert_eq!(ips[2], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(source_ips(0).len(), 1);
        assert_eq!(source_ips(1000).len(), 254);
        assert_eq!(EncodingChoice::Mixed.for_socket(3), Encoding::Msgpack);
        assert_eq!(ConnError::Closed(Some(4008)).key(), "closed:4008");
    }
}
