//! One task per WebSocket: it reads frames, writes replies and queued events, pings, enforces the
//! limits, authenticates the socket and closes it with a documented code. Everything is in one
//! `select!` loop with one timer, because every extra task or channel per socket shows up at
//! 20,000 sockets.
//!
//! The loop is generic over the socket ([`Transport`]: tungstenite messages in and out, and the
//! connection under them for the data frames the session frames itself, see `frame.rs`), so it
//! never sees HTTP; requests are handed to [`commands`], which calls the domain. `ticket.send` is
//! pipelined (see [`InFlight`]); every other request is handled before the next is read.

mod commands;
mod frame;
pub mod outbox;
mod ticket_commands;

use crate::error::{CloseCode, Error, SizeUnit};
use crate::gateway::registry::Connection;
use crate::gateway::services::Services;
use crate::model::account::Identity;
use crate::model::ids::{ConnId, DeviceId, Principal, SessionId, TicketId};
use crate::model::time::{now_ms, Millis};
use crate::protocol::{self, Encoded, Encoding, ServerFrame};
pub use commands::Transport;
use futures_util::{FutureExt, SinkExt, StreamExt};
use outbox::{Outbound, Outbox};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Failed `auth` frames a socket may send before it is closed with 4002.
const MAX_FAILED_AUTHS: u32 = 3;
/// `session.expiring` is sent this long before the token expires.
const EXPIRY_WARNING: Duration = Duration::from_secs(300);
/// How long a close frame may take to write before the connection is simply dropped.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// After the close frame, how long the hub reads (and discards) what the client still sends, waiting
/// for it to close the connection.
const CLOSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

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

/// The reply of a pipelined request, once it is ready.
type PendingReply = futures_util::future::BoxFuture<'static, (protocol::RequestId, crate::Result<ServerFrame>)>;

/// A socket's `ticket.send`s that are queued for storage and not yet answered, oldest first.
///
/// An agent's console writes to many tickets: waiting for each message's commit before reading the
/// next request made its sends queue behind each other. Sends are therefore pipelined: each is
/// queued for the writer as it is read, and the replies leave as the commits come back, in request
/// order (`FuturesOrdered`). At most one send per ticket is in flight, so that a sender's messages to a
/// ticket are stored in the order it sent them, and at most [`MAX_SENDS_IN_FLIGHT`] in all. Any
/// other request first waits for these replies, so that every reply still leaves in request order.
/// Created with the first send and dropped with the last reply: an idle socket pays nothing.
#[derive(Default)]
struct InFlight {
    replies: futures_util::stream::FuturesOrdered<PendingReply>,
    tickets: std::collections::VecDeque<TicketId>,
}

/// The authenticated identity of a socket.
struct Authed {
    who: Principal,
    session: SessionId,
    expires_at: Millis,
    warned: bool,
}

/// How the loop ends.
enum Exit {
    /// Close with this code (a close frame is sent).
    Close(CloseCode),
    /// The peer is gone or stuck: drop the connection without a close handshake.
    Gone,
}

/// Frames written, by type, counted into `hub_frames_out_total` once per run of one type (on drop).
#[derive(Default)]
struct FrameCount {
    kind: &'static str,
    n: u64,
}

impl FrameCount {
    fn add(&mut self, kind: &'static str) {
        if kind != self.kind {
            self.flush();
            self.kind = kind;
        }
        self.n += 1;
    }

    fn flush(&mut self) {
        if self.n > 0 {
            metrics::counter!(crate::metrics::FRAMES_OUT, "type" => self.kind).increment(self.n);
            self.n = 0;
        }
    }
}

impl Drop for FrameCount {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A token bucket: `rate` frames per second sustained, `burst` at once (both from the
/// configuration, passed in rather than kept: every byte of a socket counts at 20,000 sockets).
struct FrameBudget {
    tokens: f64,
    last: Instant,
}

impl FrameBudget {
    fn take(&mut self, now: Instant, rate: f64, burst: f64) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Socket<S> {
    ws: S,
    hub: Arc<Services>,
    conn: ConnId,
    encoding: Encoding,
    outbox: Arc<Outbox>,
    authed: Option<Authed>,
    opened: Instant,
    last_inbound: Instant,
    next_ping: Instant,
    ping_sent: Option<Instant>,
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
        last_inbound: now,
        next_ping: now + Duration::from_millis(cfg.ping_interval_ms),
        ping_sent: None,
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
        hub,
    };
    let authenticated = params.authenticated;
    async move { socket.live(authenticated).await }
}

impl<S: Transport> Socket<S> {
    /// The socket's whole life once built: see [`run`].
    async fn live(&mut self, authenticated: Option<Identity>) {
        metrics::gauge!(crate::metrics::CONNECTIONS).increment(1.0);
        metrics::counter!(crate::metrics::CONNECTIONS_TOTAL).increment(1);
        if let Some(identity) = authenticated {
            self.register(identity);
            if let Principal::User(_) = identity.who {
                if let Ok(Some(s)) = self.hub.store.session(identity.session).await {
                    self.user_device(s.device_id);
                }
            }
        }
        let exit = self.serve().await;
        let reason = match exit {
            Exit::Close(code) => {
                Box::pin(self.close(code)).await;
                code.reason()
            }
            Exit::Gone => "gone",
        };
        if let Some(id) = self.connection {
            self.hub.telemetry.disconnected(id, now_ms());
        }
        if let Some(a) = &self.authed {
            self.hub.registry.remove(a.who, self.conn, self.cursors.keys().copied());
            self.hub.presence.disconnected(a.who);
        }
        metrics::gauge!(crate::metrics::CONNECTIONS).decrement(1.0);
        metrics::counter!(crate::metrics::DISCONNECTS, "reason" => reason).increment(1);
        tracing::debug!(conn = %self.conn, reason, "socket closed");
    }

    async fn serve(&mut self) -> Exit {
        let shutdown = self.hub.shutdown.clone();
        // Boxed: an idle socket's task is this loop's state, and a `Sleep` inline would take it past
        // a size class of the allocator (a 1,792-byte task instead of 1,536, plus 112 for the box).
        let mut timer = Box::pin(tokio::time::sleep_until(self.next_deadline()));
        let outbox = self.outbox.clone();
        loop {
            // The handlers are boxed: their state (a command's storage calls, a write's timeout)
            // then lives on the heap only while it runs, and the task of an idle socket is just
            // this loop and the `Socket`, which matters at 20,000 sockets.
            let step = tokio::select! {
                biased;
                _ = shutdown.cancelled() => Err(Exit::Close(CloseCode::ServiceRestart)),
                _ = outbox.ready() => Box::pin(self.flush_outbox()).await,
                inbound = self.ws.next() => match inbound {
                    Some(Ok(message)) => Box::pin(self.on_message(message)).await,
                    Some(Err(e)) => Box::pin(self.on_read_error(e)).await,
                    None => Err(Exit::Gone),
                },
                _ = timer.as_mut() => Box::pin(self.on_timer()).await,
                Some((id, result)) = next_reply(&mut self.sends), if self.sends.is_some() => {
                    Box::pin(self.on_send_stored(id, result)).await
                }
            };
            if let Err(exit) = step {
                return exit;
            }
            timer.as_mut().reset(self.next_deadline());
        }
    }

    /// The earliest moment the timer has something to do.
    fn next_deadline(&self) -> Instant {
        let cfg = &self.hub.config;
        let mut next = match self.ping_sent {
            Some(sent) => sent + Duration::from_millis(cfg.pong_timeout_ms),
            None => self.next_ping,
        };
        match &self.authed {
            None => next = next.min(self.opened + Duration::from_millis(cfg.auth_timeout_ms)),
            Some(a) => {
                let warn_at =
                    if a.warned { a.expires_at } else { a.expires_at - crate::model::time::ms(EXPIRY_WARNING) };
                next = next.min(wall_to_instant(warn_at));
            }
        }
        next
    }

    async fn on_timer(&mut self) -> Result<(), Exit> {
        let now = Instant::now();
        let cfg = &self.hub.config;
        if self.authed.is_none() && now >= self.opened + Duration::from_millis(cfg.auth_timeout_ms) {
            return Err(Exit::Close(CloseCode::AuthTimeout));
        }
        if let Some(sent) = self.ping_sent {
            if now >= sent + Duration::from_millis(cfg.pong_timeout_ms) {
                return Err(Exit::Close(CloseCode::PingTimeout));
            }
        } else if now >= self.next_ping {
            self.ping_sent = Some(now);
            self.next_ping = now + Duration::from_millis(cfg.ping_interval_ms);
            self.write(std::iter::once(Message::Ping(Default::default()))).await?;
        }
        self.check_expiry().await
    }

    async fn check_expiry(&mut self) -> Result<(), Exit> {
        let Some(a) = &self.authed else { return Ok(()) };
        let now = now_ms();
        if now >= a.expires_at {
            // Another socket of this session may have refreshed it: ask storage before closing.
            let (who, session) = (a.who, a.session);
            match self.hub.live_session(who, session).await {
                Ok(Some(expires_at)) => {
                    if let Some(a) = &mut self.authed {
                        a.expires_at = expires_at;
                        a.warned = false;
                    }
                    return Ok(());
                }
                Ok(None) => {
                    self.send(&ServerFrame::SessionExpired {}).await?;
                    return Err(Exit::Close(CloseCode::SessionExpired));
                }
                // Storage is down: keep the socket, look again in a few seconds.
                Err(_) => {
                    if let Some(a) = &mut self.authed {
                        a.expires_at = now + 5_000;
                    }
                    return Ok(());
                }
            }
        }
        if !a.warned && now >= a.expires_at - crate::model::time::ms(EXPIRY_WARNING) {
            let expires_at = a.expires_at;
            if let Some(a) = &mut self.authed {
                a.warned = true;
            }
            self.send(&ServerFrame::SessionExpiring { expires_at }).await?;
        }
        Ok(())
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
        self.last_inbound = now;
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
            metrics::counter!(crate::metrics::FRAMES_IN, "type" => "refused").increment(1);
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
                metrics::counter!(crate::metrics::FRAMES_IN, "type" => frame.request.kind()).increment(1);
                let started = std::time::Instant::now();
                let kind = frame.request.kind();
                tracing::trace!(conn = %self.conn, id = frame.id, kind, "request");
                let result = commands::handle(self, frame).await;
                tracing::trace!(conn = %self.conn, kind, elapsed_ms = started.elapsed().as_millis() as u64, "handled");
                // A pipelined send is only queued by now: its latency is recorded at its commit.
                if kind != "ticket.send" {
                    metrics::histogram!(crate::metrics::WS_LATENCY, "type" => kind)
                        .record(started.elapsed().as_secs_f64());
                }
                result
            }
            Err(bad) => {
                metrics::counter!(crate::metrics::FRAMES_IN, "type" => "invalid").increment(1);
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

    /// Replies to a malformed frame and counts it towards the protocol-abuse limit.
    async fn reply_bad(&mut self, id: Option<protocol::RequestId>, error: Error) -> Result<(), Exit> {
        let now = Instant::now();
        if now.duration_since(self.bad_window) >= Duration::from_secs(60) {
            self.bad_window = now;
            self.bad_frames = 0;
        }
        self.bad_frames += 1;
        if self.bad_frames > self.hub.config.max_bad_frames_per_min {
            error.observe();
            return Err(Exit::Close(CloseCode::ProtocolAbuse));
        }
        self.reply_error(id, error).await
    }

    async fn reply_error(&mut self, id: Option<protocol::RequestId>, error: Error) -> Result<(), Exit> {
        error.observe();
        self.send(&ServerFrame::error(id, &error)).await
    }

    /// The socket's principal and session, once authenticated.
    fn identity(&self) -> Option<(Principal, SessionId)> {
        self.authed.as_ref().map(|a| (a.who, a.session))
    }

    /// This socket's entry for the registry.
    fn connection(&self, who: Principal, session: SessionId) -> Connection {
        Connection { conn: self.conn, who, session, outbox: self.outbox.clone() }
    }

    /// Registers the socket as authenticated.
    fn register(&mut self, identity: Identity) {
        self.hub.registry.insert(identity.who, self.connection(identity.who, identity.session));
        self.authed = Some(Authed {
            who: identity.who,
            session: identity.session,
            expires_at: identity.expires_at,
            warned: false,
        });
        self.hub.presence.connected(identity.who);
        if matches!(identity.who, Principal::Agent(_)) {
            // An agent coming online may take waiting tickets.
            self.hub.tickets.queue_changed();
        }
        tracing::debug!(conn = %self.conn, who = ?identity.who, "socket authenticated");
    }

    /// Notes the device of a user's socket and writes its connection record (once).
    fn user_device(&mut self, device: DeviceId) {
        self.device = Some(device);
        if let (Some(client), Some(Authed { who: Principal::User(user), .. })) = (self.client.take(), &self.authed) {
            self.connection = Some(self.hub.telemetry.connected(*user, device, &client, self.connected_at));
        }
    }

    /// The device of this user socket's session.
    async fn device(&mut self) -> crate::Result<DeviceId> {
        if let Some(d) = self.device {
            return Ok(d);
        }
        let Some((_, session)) = self.identity() else { return Err(Error::Unauthenticated) };
        let device = self.hub.store.session(session).await?.ok_or(Error::Unauthorized)?.device_id;
        self.user_device(device);
        Ok(device)
    }

    /// Sends one reply or the error instead.
    /// Queues a `ticket.send` for storage and returns without waiting for it (see [`InFlight`]);
    /// waits first for an earlier send to the same ticket, or for the oldest one when
    /// [`MAX_SENDS_IN_FLIGHT`] are in flight.
    async fn pipeline_send(
        &mut self,
        id: protocol::RequestId,
        who: Principal,
        ticket_id: TicketId,
        client_msg_id: String,
        body: String,
    ) -> Result<(), Exit> {
        while let Some(in_flight) = self.sends.as_mut() {
            if !in_flight.tickets.contains(&ticket_id) && in_flight.tickets.len() < MAX_SENDS_IN_FLIGHT {
                break;
            }
            let Some((reply_id, result)) = in_flight.replies.next().await else { break };
            self.on_send_stored(reply_id, result).await?;
        }
        let support = self.hub.tickets.clone();
        let started = std::time::Instant::now();
        let reply: PendingReply = match support.queue_send(who, ticket_id, &client_msg_id, &body) {
            Ok(queued) => Box::pin(async move {
                let sent = support.finish_send(queued).await;
                metrics::histogram!(crate::metrics::WS_LATENCY, "type" => "ticket.send")
                    .record(started.elapsed().as_secs_f64());
                (id, sent.map(|s| ServerFrame::TicketSendOk { id, ticket_id, seq: s.seq, duplicate: s.duplicate }))
            }),
            // Refused before queueing: answered now, unless earlier replies must go first.
            Err(e) => {
                metrics::histogram!(crate::metrics::WS_LATENCY, "type" => "ticket.send")
                    .record(started.elapsed().as_secs_f64());
                if self.sends.is_none() {
                    return self.reply_error(Some(id), e).await;
                }
                Box::pin(std::future::ready((id, Err(e))))
            }
        };
        let in_flight = self.sends.get_or_insert_with(Box::default);
        in_flight.replies.push_back(reply);
        in_flight.tickets.push_back(ticket_id);
        Ok(())
    }

    /// Writes the reply of the oldest pipelined send, which has just been stored (or refused), in
    /// one write with the replies of the sends stored since (still in request order) and whatever
    /// the outbox holds, the events these sends published to this very socket among it: one
    /// system call where a sender's ack and its own echo used to take two.
    async fn on_send_stored(
        &mut self,
        id: protocol::RequestId,
        result: crate::Result<ServerFrame>,
    ) -> Result<(), Exit> {
        let mut replies = vec![self.reply_message(id, result)?];
        self.pop_send();
        while let Some(in_flight) = self.sends.as_mut() {
            // Polled once without waiting; the session loop polls the rest with its own waker.
            let Some(Some((id, result))) = in_flight.replies.next().now_or_never() else { break };
            replies.push(self.reply_message(id, result)?);
            self.pop_send();
        }
        self.flush_outbox_after(replies).await
    }

    /// Forgets the oldest pipelined send, whose reply is being written.
    fn pop_send(&mut self) {
        if let Some(in_flight) = self.sends.as_mut() {
            in_flight.tickets.pop_front();
            if in_flight.tickets.is_empty() {
                self.sends = None;
            }
        }
    }

    /// A reply (or the error instead) encoded for this socket, not yet written.
    fn reply_message(&self, id: protocol::RequestId, result: crate::Result<ServerFrame>) -> Result<Message, Exit> {
        let frame = result.unwrap_or_else(|e| {
            e.observe();
            ServerFrame::error(Some(id), &e)
        });
        self.message(&frame)
    }

    /// One frame encoded for this socket and counted, not yet written.
    fn message(&self, frame: &ServerFrame) -> Result<Message, Exit> {
        let bytes = protocol::encode(self.encoding, frame).map_err(|e| {
            e.observe();
            Exit::Close(CloseCode::InternalError)
        })?;
        metrics::counter!(crate::metrics::FRAMES_OUT, "type" => frame.kind()).increment(1);
        Ok(to_message(bytes))
    }

    /// Writes the replies of every pipelined send, in order, before another reply may leave.
    async fn answer_sends(&mut self) -> Result<(), Exit> {
        while let Some(in_flight) = self.sends.as_mut() {
            let Some((id, result)) = in_flight.replies.next().await else {
                self.sends = None;
                break;
            };
            self.on_send_stored(id, result).await?;
        }
        Ok(())
    }

    /// Writes a reply, or the error instead.
    async fn answer(&mut self, id: protocol::RequestId, result: crate::Result<ServerFrame>) -> Result<(), Exit> {
        let message = self.reply_message(id, result)?;
        self.write(std::iter::once(message)).await
    }

    /// Writes everything queued by other tasks. Ticket events are checked against this socket's
    /// cursor: what it already sent is dropped, and a gap (an event published out of order, or one
    /// this node never received) is filled from storage first, so the client sees every event of a
    /// subscribed ticket exactly once and in order.
    async fn flush_outbox(&mut self) -> Result<(), Exit> {
        self.flush_outbox_after(Vec::new()).await
    }

    /// [`Self::flush_outbox`], with `replies` written first in the same write.
    async fn flush_outbox_after(&mut self, replies: Vec<Message>) -> Result<(), Exit> {
        let mut items = Vec::new();
        let overflowed = self.outbox.drain(&mut items);
        let mut revoked = None;
        let mut catch_up = Vec::new();
        // The replies among `messages` (they lead it until a gap makes an early write).
        let mut answered = replies.len();
        let mut messages = replies;
        messages.reserve(items.len());
        // Frames counted per run of one type: a counter lookup per frame was a tenth of the hub's
        // time in a fan-out burst.
        let mut counted = FrameCount::default();
        for item in items {
            match item {
                Outbound::Frame { kind, bytes, ticket_seq } => {
                    if let Some((ticket, seq)) = ticket_seq {
                        let Some(&sent) = self.cursors.get(&ticket) else { continue };
                        if seq <= sent {
                            continue;
                        }
                        if seq > sent + 1 {
                            self.write(std::mem::take(&mut messages)).await?;
                            answered = 0;
                            self.send_events(ticket, sent, Some(seq - 1)).await?;
                        }
                        self.cursors.insert(ticket, seq);
                    }
                    counted.add(kind);
                    messages.push(to_message(bytes));
                }
                Outbound::Revoke(reason) => revoked = Some(reason),
                Outbound::CatchUp(ticket) => catch_up.push(ticket),
            }
        }
        if overflowed {
            tracing::info!(conn = %self.conn, "outbound queue overflowed: closing slow consumer");
            return Err(Exit::Close(CloseCode::SlowConsumer));
        }
        if let Some(reason) = revoked {
            // Pending events are moot once the session is gone; only the replies (when they were
            // still here) and the revocation are sent.
            messages.truncate(answered);
            self.write(messages).await?;
            self.send(&ServerFrame::SessionRevoked { reason }).await?;
            return Err(Exit::Close(CloseCode::SessionRevoked));
        }
        self.write(messages).await?;
        for ticket in catch_up {
            if let Some(&sent) = self.cursors.get(&ticket) {
                self.send_events(ticket, sent, None).await?;
            }
        }
        Ok(())
    }

    /// Sends the stored events of `ticket` after `after` (up to `until`, or all) as `ticket.event`
    /// frames, page by page, and moves the cursor.
    async fn send_events(&mut self, ticket: TicketId, after: u64, until: Option<u64>) -> Result<(), Exit> {
        const PAGE: u32 = 200;
        let mut cursor = after;
        loop {
            if until.is_some_and(|u| cursor >= u) {
                return Ok(());
            }
            let events = match self.hub.tickets.events_after(ticket, cursor, PAGE).await {
                Ok(e) => e,
                // Storage is down: close so the client resumes from its cursor later, rather than
                // carry on with a hole in the stream.
                Err(_) => return Err(Exit::Close(CloseCode::ServiceRestart)),
            };
            let mut messages = Vec::with_capacity(events.len());
            for e in events.iter().filter(|e| until.is_none_or(|u| e.seq <= u)) {
                let frame = ServerFrame::TicketEvent { event: crate::protocol::event_view(e) };
                let bytes =
                    protocol::encode(self.encoding, &frame).map_err(|_| Exit::Close(CloseCode::InternalError))?;
                metrics::counter!(crate::metrics::FRAMES_OUT, "type" => "ticket.event").increment(1);
                messages.push(to_message(bytes));
                cursor = e.seq;
            }
            self.cursors.insert(ticket, cursor);
            self.write(messages).await?;
            if (events.len() as u32) < PAGE {
                return Ok(());
            }
        }
    }

    /// Encodes and writes one frame.
    async fn send(&mut self, frame: &ServerFrame) -> Result<(), Exit> {
        let message = self.message(frame)?;
        self.write(std::iter::once(message)).await
    }

    /// Feeds every message, then flushes once; a peer that cannot take them within the write
    /// timeout is dropped.
    async fn write(&mut self, messages: impl IntoIterator<Item = Message>) -> Result<(), Exit> {
        let deadline = Duration::from_millis(self.hub.config.write_timeout_ms);
        let ws = &mut self.ws;
        let result = tokio::time::timeout(deadline, async move {
            // Data frames are framed here into one buffer that lives for this write only; anything
            // else goes through tungstenite. Its own buffer (an automatic pong, say) is flushed
            // first, so that its frames and these never interleave.
            let mut framed = Vec::new();
            for m in messages {
                if !frame::append(&mut framed, &m) {
                    frame::write_all(ws, &mut framed).await?;
                    ws.feed(m).await?;
                }
            }
            frame::write_all(ws, &mut framed).await?;
            ws.flush().await
        })
        .await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(conn = %self.conn, error = %e, "socket write failed");
                Err(Exit::Gone)
            }
            Err(_) => {
                tracing::info!(conn = %self.conn, "socket write timed out: dropping");
                Err(Exit::Gone)
            }
        }
    }

    /// Sends the close frame, then ends the connection without a reset: the hub's side is shut
    /// (the client reads the end of the stream after the close frame), and what the client still sends
    /// is read and discarded until it closes its side, for at most [`CLOSE_DRAIN_TIMEOUT`]. Dropping
    /// a connection with unread input (a flood's frames, say) makes the kernel send a reset, and the
    /// reset makes the client's kernel discard what the client had not read yet: the replies and the
    /// close frame.
    async fn close(&mut self, code: CloseCode) {
        let frame = CloseFrame { code: WsCloseCode::from(code.code()), reason: code.reason().into() };
        let sent = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, self.ws.send(Message::Close(Some(frame)))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
        let raw = self.ws.raw();
        let _ = tokio::time::timeout(CLOSE_DRAIN_TIMEOUT, async move {
            raw.shutdown().await?;
            tokio::io::copy(raw, &mut tokio::io::sink()).await
        })
        .await;
    }
}

fn to_message(bytes: Encoded) -> Message {
    match bytes {
        Encoded::Text(t) => Message::Text(t),
        Encoded::Binary(b) => Message::Binary(b),
    }
}

/// The next pipelined reply to be ready (in request order); pending forever when none is in flight
/// (the `select!` branch is disabled then anyway).
async fn next_reply(sends: &mut Option<Box<InFlight>>) -> Option<(protocol::RequestId, crate::Result<ServerFrame>)> {
    match sends {
        Some(in_flight) => in_flight.replies.next().await,
        None => std::future::pending().await,
    }
}

/// The monotonic instant of a wall-clock time (past times map to now).
fn wall_to_instant(at: Millis) -> Instant {
    let delta = at.saturating_sub(now_ms()).max(0) as u64;
    // Cap far-future times (30-day sessions) so the arithmetic never overflows.
    Instant::now() + Duration::from_millis(delta.min(86_400_000))
}
