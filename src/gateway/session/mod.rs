//! One task per WebSocket: it reads frames, writes replies and queued events, pings, enforces the
//! limits, authenticates the socket and closes it with a documented code. Everything is in one
//! `select!` loop with one timer, because every extra task or channel per socket shows up at
//! 20,000 sockets.
//!
//! The loop is generic over the socket ([`Transport`]: tungstenite messages in and out, and the
//! connection under them for the data frames the session frames itself, see `frame.rs`), so it
//! never sees HTTP; requests are handed to [`commands`], which calls the domain. `ticket.send` is
//! pipelined (see [`pipeline::InFlight`]); every other request is handled before the next is read.
//!
//! # Files
//! This file holds the [`Socket`]'s state and its loop: building it, the `select!` over pipelined
//! replies, outbox (which also brings the node's shutdown), socket and timer, and reading one frame
//! up to its command. The rest
//! of its `impl` is split by responsibility:
//! - `auth.rs`: the authenticated identity, registration, the device and connection record, and
//!   the session's expiry.
//! - `limits.rs`: the frame-rate budget, the bad-frame allowance, and the timer (authentication
//!   deadline, pings, pong timeout).
//! - `pipeline.rs`: pipelined `ticket.send`s, answered in request order.
//! - `write.rs`: frames encoded for the socket, replies and errors, the batched write under its
//!   timeout, and the close handshake.
//! - `events.rs`: queued events delivered against per-ticket cursors, gaps filled from storage,
//!   and a subscription's resume.
//! - `outbox.rs`: the bounded queue other tasks push this socket's events to.
//! - `frame.rs`: the data frames the session frames itself, written straight to the connection.
//! - `commands.rs`, `ticket_commands.rs`: requests applied to the domain.

mod auth;
mod commands;
mod events;
mod frame;
mod limits;
pub mod outbox;
mod pipeline;
mod ticket_commands;
mod write;

use crate::error::{Error, SizeUnit};
use crate::gateway::services::Services;
use crate::model::account::Identity;
use crate::model::ids::{ConnId, DeviceId, TicketId};
use crate::model::time::{now_ms, Millis};
use crate::protocol::CloseCode;
use crate::protocol::{self, Encoding};
use auth::Authed;
pub use commands::Transport;
use futures_util::{SinkExt, StreamExt};
use limits::FrameBudget;
use outbox::Outbox;
use pipeline::{next_reply, InFlight};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use write::CLOSE_WRITE_TIMEOUT;

/// What the upgrade learned about a new socket.
pub struct SocketParams {
    /// Its id on this node.
    pub conn: ConnId,
    /// The negotiated encoding.
    pub encoding: Encoding,
    /// Set when the upgrade request carried a valid `Authorization: Bearer` token.
    pub authenticated: Option<Identity>,
    /// What the upgrade request said about the client (for the connection record).
    pub client: crate::model::telemetry::ClientInfo,
}

/// Tickets one socket may follow at once.
pub const MAX_SUBSCRIPTIONS: usize = 100;
/// `ticket.send`s one socket may have queued for storage and not yet answered.
pub const MAX_SENDS_IN_FLIGHT: usize = 32;

/// How the loop ends.
enum Exit {
    /// Close with this code (a close frame is sent).
    Close(CloseCode),
    /// The peer is gone or stuck: drop the connection without a close handshake.
    Gone,
}

struct Socket<S> {
    ws: S,
    hub: Arc<Services>,
    conn: ConnId,
    encoding: Encoding,
    outbox: Arc<Outbox>,
    authed: Option<Authed>,
    opened: Instant,
    next_ping: Instant,
    ping_sent: Option<Instant>,
    /// When the session's expiry is next looked at, as a monotonic instant, beside the wall-clock
    /// time it stands for: converted when that time changes or the timer fired, not on every frame.
    expiry_check: Option<(Millis, Instant)>,
    budget: FrameBudget,
    refused_in_row: u32,
    bad_window: Instant,
    bad_frames: u32,
    failed_auths: u32,
    /// Subscribed tickets and the last seq this socket has sent of each.
    cursors: HashMap<TicketId, u64>,
    /// When this socket last relayed typing, per ticket (typing is rate-limited); created with the
    /// first typing frame, since most sockets never send one. Boxed on purpose: an empty map inline
    /// is 48 bytes of every socket's task, the box 8.
    #[allow(clippy::box_collection)]
    typing: Option<Box<HashMap<TicketId, Instant>>>,
    /// Wall-clock time the socket opened.
    connected_at: Millis,
    /// The client's details until a user's connection record is written (then `None`).
    client: Option<Box<crate::model::telemetry::ClientInfo>>,
    /// The device of a user's session, once known.
    device: Option<DeviceId>,
    /// The id of this socket's connection record, once written.
    connection: Option<uuid::Uuid>,
    /// Pipelined `ticket.send`s awaiting their commit.
    sends: Option<Box<InFlight>>,
    /// The loop ended and said why (see `Drop`).
    ended: bool,
}

/// The size of one socket's state over transport `S` (for the socket task's size budget).
#[cfg(test)]
pub(crate) fn socket_size<S: Transport>() -> usize {
    std::mem::size_of::<Socket<S>>()
}

/// Runs a socket until it closes. Registers it in the hub's registry once authenticated and always
/// removes it on the way out.
///
/// Not an `async fn`: the socket is built here, before the future exists, so that the future holds
/// it once. An `async fn` keeps its arguments in the future as well as whatever they are moved
/// into (about 700 bytes more per socket here, most of an idle socket's memory after the buffers).
pub fn run<S: Transport>(ws: S, hub: Arc<Services>, params: SocketParams) -> impl std::future::Future<Output = ()> {
    let now = Instant::now();
    let cfg = &hub.config;
    let outbox = Arc::new(Outbox::new(params.encoding, cfg.outbound_queue_bytes));
    let mut socket = Socket {
        ws,
        conn: params.conn,
        encoding: params.encoding,
        outbox,
        authed: None,
        opened: now,
        next_ping: now + Duration::from_millis(cfg.ping_interval_ms),
        ping_sent: None,
        expiry_check: None,
        budget: FrameBudget { tokens: f64::from(cfg.frame_burst.max(1)), last: now },
        refused_in_row: 0,
        bad_window: now,
        bad_frames: 0,
        failed_auths: 0,
        cursors: HashMap::new(),
        typing: None,
        connected_at: now_ms(),
        client: Some(Box::new(params.client)),
        device: None,
        connection: None,
        sends: None,
        ended: false,
        hub,
    };
    // Counted here, with the socket built: its `Drop` counts it out however its future ends.
    metrics::gauge!(crate::metrics::CONNECTIONS).increment(1.0);
    metrics::counter!(crate::metrics::CONNECTIONS_TOTAL).increment(1);
    let authenticated = params.authenticated;
    async move { socket.live(authenticated).await }
}

/// Takes the socket out of everything that knows it: the outboxes, the registry, presence and the
/// connection record. Here rather than at the end of the loop so that a socket whose task ends any
/// other way (a bug's panic, the runtime dropping the task) does not stay registered, count as
/// online and keep its outbox for the life of the node.
impl<S> Drop for Socket<S> {
    fn drop(&mut self) {
        self.hub.outboxes.closed(self.conn);
        if let Some(id) = self.connection {
            self.hub.telemetry.disconnected(id, now_ms());
        }
        if let Some(a) = &self.authed {
            self.hub.registry.remove(a.who, self.conn, self.cursors.keys().copied());
            self.hub.presence.disconnected(a.who);
        }
        metrics::gauge!(crate::metrics::CONNECTIONS).decrement(1.0);
        if !self.ended {
            metrics::counter!(crate::metrics::DISCONNECTS, "reason" => "task_ended").increment(1);
            tracing::warn!(conn = %self.conn, "socket task ended without closing; its socket is removed");
        }
    }
}

impl<S: Transport> Socket<S> {
    /// The socket's whole life once built: see [`run`].
    async fn live(&mut self, authenticated: Option<Identity>) {
        self.hub.outboxes.open(self.conn, self.outbox.clone());
        if let Some(identity) = authenticated {
            self.register(identity);
            if let Some(device) = identity.device {
                self.user_device(device);
            }
        }
        let exit = self.serve().await;
        self.hub.outboxes.closed(self.conn);
        let reason = match exit {
            Exit::Close(code) => {
                Box::pin(self.close(code)).await;
                code.reason()
            }
            Exit::Gone => "gone",
        };
        self.ended = true;
        metrics::counter!(crate::metrics::DISCONNECTS, "reason" => reason).increment(1);
        tracing::debug!(conn = %self.conn, reason, "socket closed");
        // The rest of the way out is `Drop`, which also runs when the task ends without getting
        // here (a panic, or the runtime dropping it).
    }

    async fn serve(&mut self) -> Exit {
        // Boxed: an idle socket's task is this loop's state, and a `Sleep` inline would take it past
        // a size class of the allocator (a 1,792-byte task instead of 1,536, plus 112 for the box).
        let mut timer = Box::pin(tokio::time::sleep_until(self.next_deadline()));
        let outbox = self.outbox.clone();
        let mut fired = false;
        loop {
            // The handlers are boxed: their state (a command's storage calls, a write's timeout)
            // then lives on the heap only while it runs, and the task of an idle socket is just
            // this loop and the `Socket`, which matters at 20,000 sockets.
            let step = tokio::select! {
                biased;
                // No branch for shutdown: it comes through the outbox (see `Outboxes`).
                // Before the outbox: a stored send's echo is in the outbox by the time its reply is
                // ready (the writer announces, then answers), and the reply's write carries the
                // outbox with it, so the ack and the echo leave in one system call, not two. An
                // echo whose reply is not ready yet waits in the pipeline (see `InFlight`).
                Some((id, result)) = next_reply(&mut self.sends), if self.sends.is_some() => {
                    Box::pin(self.on_send_stored(id, result)).await
                }
                _ = outbox.ready() => Box::pin(self.flush_outbox()).await,
                inbound = self.ws.next() => match inbound {
                    Some(Ok(message)) => Box::pin(self.on_message(message)).await,
                    Some(Err(e)) => Box::pin(self.on_read_error(e)).await,
                    None => Err(Exit::Gone),
                },
                _ = timer.as_mut() => {
                    fired = true;
                    Box::pin(self.on_timer()).await
                }
            };
            if let Err(exit) = step {
                return exit;
            }
            // Most steps leave the deadline where it was: moving the timer costs the runtime's timer
            // wheel a removal and an insertion, on every frame of a busy socket.
            let next = self.next_deadline();
            if std::mem::take(&mut fired) || next != timer.deadline() {
                timer.as_mut().reset(next);
            }
        }
    }

    async fn on_read_error(&mut self, error: WsError) -> Result<(), Exit> {
        match error {
            WsError::Capacity(CapacityError::MessageTooLong { .. }) => Err(Exit::Close(CloseCode::MessageTooBig)),
            // tungstenite cannot go on reading after a bad text frame, and RFC 6455 says to fail
            // the connection: the client gets the error, then 1007.
            WsError::Utf8(_) => {
                self.reply_error(None, Error::InvalidUtf8).await?;
                Err(Exit::Close(CloseCode::InvalidPayload))
            }
            WsError::ConnectionClosed | WsError::AlreadyClosed => Err(Exit::Gone),
            other => {
                tracing::debug!(conn = %self.conn, error = %other, "socket read failed");
                Err(Exit::Gone)
            }
        }
    }

    async fn on_message(&mut self, message: Message) -> Result<(), Exit> {
        let now = Instant::now();
        self.ping_sent = None;
        let (encoding, payload): (Encoding, &[u8]) = match &message {
            Message::Text(t) => (Encoding::Json, t.as_bytes()),
            Message::Binary(b) => (Encoding::MsgPack, b),
            // Pings are answered by tungstenite; a pong or any frame proves liveness.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Ok(()),
            // tungstenite has queued the close reply: send it, then end (RFC 6455 5.5.1).
            Message::Close(_) => {
                let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, self.ws.flush()).await;
                return Err(Exit::Gone);
            }
        };
        let (rate, burst) =
            (f64::from(self.hub.config.max_frames_per_sec), f64::from(self.hub.config.frame_burst.max(1)));
        if !self.budget.take(now, rate, burst) {
            self.refused_in_row += 1;
            if self.refused_in_row > self.hub.config.max_frames_per_sec {
                return Err(Exit::Close(CloseCode::Flood));
            }
            crate::metrics::frame_in("refused");
            let retry_after = Duration::from_secs_f64(1.0 / rate);
            let id = protocol::peek_id(encoding, payload);
            self.answer_sends().await?;
            return self.reply_error(id, Error::RateLimited { retry_after }).await;
        }
        self.refused_in_row = 0;
        let limit = self.hub.config.max_message_bytes;
        if payload.len() > limit {
            let id = protocol::peek_id(encoding, payload);
            self.answer_sends().await?;
            let error = Error::TooLarge { what: "frame", size: Some(payload.len()), limit, unit: SizeUnit::Bytes };
            return self.reply_bad(id, error).await;
        }
        let decoded = protocol::decode_request(encoding, payload);
        if !matches!(&decoded, Ok(frame) if matches!(frame.request, protocol::Request::TicketSend { .. })) {
            self.answer_sends().await?;
        }
        match decoded {
            Ok(frame) => {
                crate::metrics::frame_in(frame.request.kind());
                let started = std::time::Instant::now();
                let kind = frame.request.kind();
                tracing::trace!(conn = %self.conn, id = frame.id, kind, "request");
                let result = commands::handle(self, frame).await;
                tracing::trace!(conn = %self.conn, kind, elapsed_ms = started.elapsed().as_millis() as u64, "handled");
                // A pipelined send is only queued by now: its latency is recorded at its commit.
                if kind != "ticket.send" {
                    crate::metrics::request_took(kind, started.elapsed());
                }
                result
            }
            Err(bad) => {
                crate::metrics::frame_in("invalid");
                if let Some(kind) = bad.kind.and_then(crate::domain::telemetry::request_kind) {
                    crate::domain::telemetry::malformed(kind);
                }
                // An unknown type is not garbage: a newer client may probe for features.
                if matches!(bad.error, Error::UnknownType) {
                    self.reply_error(bad.id, bad.error).await
                } else {
                    self.reply_bad(bad.id, bad.error).await
                }
            }
        }
    }
}
