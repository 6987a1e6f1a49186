//! The typed frames of protocol v1. These serde types are the protocol: JSON and MessagePack are two
//! spellings of the same values (see protocol/PROTOCOL.md).
//!
//! Every client frame is a request `{"id": <u64>, "type": "<name>", ...fields}` and gets exactly one
//! reply echoing its `id`: `{"type": "<name>.ok", "id": ..., ...}` or `{"type": "error", "id": ...}`.
//! Frames from the hub without an `id` are events.

use crate::error::ErrorCode;
pub use crate::model::account::RevokeReason;
use crate::model::agent::AgentStatus;
use crate::model::ids::{AgentId, CannedReplyId, DeviceId, TicketId, UserId};
use crate::model::telemetry::{DeviceReport, ViewEventReport};
use crate::model::ticket::TicketStatus;
use crate::model::time::Millis;
use crate::protocol::views::{
    AgentView, CannedReplyView, ConsentView, DeviceView, EventView, MarkView, Participant, ProfileView, PurchaseView,
    TicketView,
};
use serde::{Deserialize, Serialize};

/// A user's settings document: a JSON object (a MessagePack map with string keys).
pub use crate::model::telemetry::SettingsDocument;

/// The client-chosen request id, echoed in the reply. Keep it below 2^53 for JavaScript clients.
pub type RequestId = u64;

/// A request from a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[allow(clippy::large_enum_variant)]
pub enum Request {
    /// Authenticates the socket with a session token (the first frame of a connection).
    #[serde(rename = "auth")]
    Auth {
        /// The session token from `POST /v1/auth/verify`.
        token: String,
    },
    /// Application-level ping for clients that cannot see WebSocket pings (browsers). Allowed before `auth`.
    #[serde(rename = "ping")]
    Ping {},
    /// Issues a new token for this session with a fresh expiry; the old token stops working.
    #[serde(rename = "session.refresh")]
    SessionRefresh {},
    /// Signs this session out everywhere it is connected, then closes the socket (1000).
    #[serde(rename = "session.sign_out")]
    SessionSignOut {},
    /// The signed-in user's own account: id, number, registration time.
    #[serde(rename = "me")]
    Me {},
    /// User: opens a ticket with its first message.
    #[serde(rename = "ticket.open")]
    TicketOpen {
        /// Subject, 1 to 200 characters.
        subject: String,
        /// First message, 1 to `max_body_chars` characters.
        body: String,
        /// The app's id for the first message (1 to 64 characters); repeating it returns the same ticket.
        client_msg_id: String,
    },
    /// Lists tickets: a user's own; for an agent, those in `status` (default: open and assigned), or
    /// only their own with `mine`.
    #[serde(rename = "ticket.list")]
    TicketList {
        /// Only tickets in this status.
        #[serde(default)]
        status: Option<TicketStatus>,
        /// Agents: only tickets assigned to me.
        #[serde(default)]
        mine: bool,
    },
    /// Streams the ticket's events after `after_seq` (everything missed), then its live events.
    #[serde(rename = "ticket.subscribe")]
    TicketSubscribe {
        /// The ticket.
        ticket_id: TicketId,
        /// The last seq the client has; 0 for everything.
        #[serde(default)]
        after_seq: u64,
    },
    /// Stops the ticket's live events on this socket.
    #[serde(rename = "ticket.unsubscribe")]
    TicketUnsubscribe {
        /// The ticket.
        ticket_id: TicketId,
    },
    /// A page of the ticket's history: before `before_seq` (older history) or after `after_seq`.
    #[serde(rename = "ticket.history")]
    TicketHistory {
        /// The ticket.
        ticket_id: TicketId,
        /// Events older than this seq (the newest of them).
        #[serde(default)]
        before_seq: Option<u64>,
        /// Events newer than this seq (the oldest of them). Ignored when `before_seq` is set.
        #[serde(default)]
        after_seq: Option<u64>,
        /// Page size, 1 to 100 (default 50).
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Sends a message; acknowledged only once stored.
    #[serde(rename = "ticket.send")]
    TicketSend {
        /// The ticket.
        ticket_id: TicketId,
        /// The sender's id for this message (1 to 64 characters): resending it never stores twice.
        client_msg_id: String,
        /// The text, 1 to `max_body_chars` characters.
        body: String,
    },
    /// Agent: takes an open ticket from the queue.
    #[serde(rename = "ticket.claim")]
    TicketClaim {
        /// The ticket.
        ticket_id: TicketId,
    },
    /// Agent: gives a ticket they hold to another agent.
    #[serde(rename = "ticket.transfer")]
    TicketTransfer {
        /// The ticket.
        ticket_id: TicketId,
        /// The agent who takes it.
        agent_id: AgentId,
    },
    /// Agent: resolves a ticket they hold.
    #[serde(rename = "ticket.resolve")]
    TicketResolve {
        /// The ticket.
        ticket_id: TicketId,
    },
    /// A device received the ticket's events up to `seq`.
    #[serde(rename = "ticket.delivered")]
    TicketDelivered {
        /// The ticket.
        ticket_id: TicketId,
        /// Highest seq received.
        seq: u64,
    },
    /// The participant read the ticket up to `seq`.
    #[serde(rename = "ticket.read")]
    TicketRead {
        /// The ticket.
        ticket_id: TicketId,
        /// Highest seq read.
        seq: u64,
    },
    /// The participant is typing (ephemeral, never stored).
    #[serde(rename = "ticket.typing")]
    TicketTyping {
        /// The ticket.
        ticket_id: TicketId,
    },
    /// Agent: the queue and every ticket being handled, then `ticket.updated` events for all of them.
    #[serde(rename = "queue.subscribe")]
    QueueSubscribe {},
    /// Agent: sets availability and capacity.
    #[serde(rename = "agent.status")]
    AgentStatus {
        /// `available`, `busy` or `away`.
        status: AgentStatus,
        /// Tickets taken at once, 1 to 100 (unchanged when absent).
        #[serde(default)]
        capacity: Option<u32>,
    },
    /// Agent: every agent, for transfers.
    #[serde(rename = "agent.list")]
    AgentList {},
    /// Agent: my canned replies.
    #[serde(rename = "canned.list")]
    CannedList {},
    /// Agent: adds a canned reply.
    #[serde(rename = "canned.add")]
    CannedAdd {
        /// Title, 1 to 100 characters.
        title: String,
        /// Text, 1 to `max_body_chars` characters.
        body: String,
    },
    /// Agent: deletes a canned reply.
    #[serde(rename = "canned.delete")]
    CannedDelete {
        /// The reply.
        reply_id: CannedReplyId,
    },
    /// A user's profile: agents may read any user's; a user only their own.
    #[serde(rename = "profile.get")]
    ProfileGet {
        /// The user.
        user_id: UserId,
    },
    /// User: changes their name (null clears it) and whether others see their last-seen time.
    #[serde(rename = "profile.update")]
    ProfileUpdate {
        /// New display name, 1 to 64 characters; `null` removes it; absent leaves it.
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
        name: Option<Option<String>>,
        /// Hide the last-seen time from others.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hide_last_seen: Option<bool>,
    },
    /// An agent's public view (name, status, online), for a user whose ticket they handle, or agents.
    #[serde(rename = "agent.get")]
    AgentGet {
        /// The agent.
        agent_id: AgentId,
    },
    /// User: my devices and whether they are signed in.
    #[serde(rename = "device.list")]
    DeviceList {},
    /// User: signs one of my devices out (its sockets get `session.revoked`).
    #[serde(rename = "device.sign_out")]
    DeviceSignOut {
        /// The device.
        device_id: DeviceId,
    },
    /// User: what the app knows of the device it runs on; acknowledged once stored.
    #[serde(rename = "telemetry.device")]
    TelemetryDevice {
        /// The report (see protocol/PROTOCOL.md, "Telemetry").
        device: DeviceReport,
    },
    /// User: a batch of screen views and interactions; acknowledged once stored, refused with
    /// `consent_required` while analytics is off.
    #[serde(rename = "telemetry.views")]
    TelemetryViews {
        /// 1 to 100 events.
        events: Vec<ViewEventReport>,
    },
    /// User: my settings document.
    #[serde(rename = "settings.get")]
    SettingsGet {},
    /// User: replaces my settings document (every socket of mine gets `settings.updated`).
    #[serde(rename = "settings.put")]
    SettingsPut {
        /// The whole document, a JSON object of at most `settings_max_bytes` bytes.
        settings: SettingsDocument,
    },
    /// User: my consent switches.
    #[serde(rename = "consent.get")]
    ConsentGet {},
    /// User: turns analytics or personalisation on or off.
    #[serde(rename = "consent.set")]
    ConsentSet {
        /// View patterns may be collected (absent or null: unchanged).
        #[serde(default)]
        analytics: Option<bool>,
        /// Settings may be stored on the server (absent or null: unchanged).
        #[serde(default)]
        personalisation: Option<bool>,
    },
    /// User: what I paid for (activations and subscriptions), newest first.
    #[serde(rename = "purchase.list")]
    PurchaseList {},
}

/// Reads a field that may be absent (`None`), `null` (`Some(None)`) or a value (`Some(Some(v))`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl Request {
    /// Every request `type`, to tell an unknown type from a malformed known one.
    pub const TYPES: &'static [&'static str] = &[
        "auth",
        "ping",
        "session.refresh",
        "session.sign_out",
        "me",
        "ticket.open",
        "ticket.list",
        "ticket.subscribe",
        "ticket.unsubscribe",
        "ticket.history",
        "ticket.send",
        "ticket.claim",
        "ticket.transfer",
        "ticket.resolve",
        "ticket.delivered",
        "ticket.read",
        "ticket.typing",
        "queue.subscribe",
        "agent.status",
        "agent.list",
        "canned.list",
        "canned.add",
        "canned.delete",
        "profile.get",
        "profile.update",
        "agent.get",
        "device.list",
        "device.sign_out",
        "telemetry.device",
        "telemetry.views",
        "settings.get",
        "settings.put",
        "consent.get",
        "consent.set",
        "purchase.list",
    ];

    /// The request's `type`, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "auth",
            Self::Ping {} => "ping",
            Self::SessionRefresh {} => "session.refresh",
            Self::SessionSignOut {} => "session.sign_out",
            Self::Me {} => "me",
            Self::TicketOpen { .. } => "ticket.open",
            Self::TicketList { .. } => "ticket.list",
            Self::TicketSubscribe { .. } => "ticket.subscribe",
            Self::TicketUnsubscribe { .. } => "ticket.unsubscribe",
            Self::TicketHistory { .. } => "ticket.history",
            Self::TicketSend { .. } => "ticket.send",
            Self::TicketClaim { .. } => "ticket.claim",
            Self::TicketTransfer { .. } => "ticket.transfer",
            Self::TicketResolve { .. } => "ticket.resolve",
            Self::TicketDelivered { .. } => "ticket.delivered",
            Self::TicketRead { .. } => "ticket.read",
            Self::TicketTyping { .. } => "ticket.typing",
            Self::QueueSubscribe {} => "queue.subscribe",
            Self::AgentStatus { .. } => "agent.status",
            Self::AgentList {} => "agent.list",
            Self::CannedList {} => "canned.list",
            Self::CannedAdd { .. } => "canned.add",
            Self::CannedDelete { .. } => "canned.delete",
            Self::ProfileGet { .. } => "profile.get",
            Self::ProfileUpdate { .. } => "profile.update",
            Self::AgentGet { .. } => "agent.get",
            Self::DeviceList {} => "device.list",
            Self::DeviceSignOut { .. } => "device.sign_out",
            Self::TelemetryDevice { .. } => "telemetry.device",
            Self::TelemetryViews { .. } => "telemetry.views",
            Self::SettingsGet {} => "settings.get",
            Self::SettingsPut { .. } => "settings.put",
            Self::ConsentGet {} => "consent.get",
            Self::ConsentSet { .. } => "consent.set",
            Self::PurchaseList {} => "purchase.list",
        }
    }
}

/// A decoded request with its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFrame {
    /// The client's id for the request.
    pub id: RequestId,
    /// What it asks for.
    pub request: Request,
}

/// A frame from the hub: a reply (with `id`) or an event (without).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServerFrame {
    /// Reply to `auth` for a user.
    #[serde(rename = "auth.ok")]
    AuthOk {
        /// Echoed request id.
        id: RequestId,
        /// The signed-in user.
        user_id: UserId,
        /// The device of the session.
        device_id: DeviceId,
        /// When the session's token expires (refresh before).
        session_expires_at: Millis,
    },
    /// Reply to `auth` for a support agent.
    #[serde(rename = "auth.agent.ok")]
    AuthAgentOk {
        /// Echoed request id.
        id: RequestId,
        /// The signed-in agent.
        agent: AgentView,
        /// When the session's token expires (refresh before).
        session_expires_at: Millis,
    },
    /// Reply to `ticket.open`.
    #[serde(rename = "ticket.open.ok")]
    TicketOpenOk {
        /// Echoed request id.
        id: RequestId,
        /// The new ticket (or the one the same `client_msg_id` opened before).
        ticket: TicketView,
    },
    /// Reply to `ticket.list`.
    #[serde(rename = "ticket.list.ok")]
    TicketListOk {
        /// Echoed request id.
        id: RequestId,
        /// The tickets (at most 500).
        tickets: Vec<TicketView>,
    },
    /// Reply to `ticket.subscribe`, after the missed events were sent as `ticket.event` frames.
    #[serde(rename = "ticket.subscribe.ok")]
    TicketSubscribeOk {
        /// Echoed request id.
        id: RequestId,
        /// The ticket as of now; its `last_seq` is the last event sent.
        ticket: TicketView,
        /// Every participant's delivery and read marks, so that a client that comes back shows
        /// its receipts without waiting for the next change.
        marks: Vec<MarkView>,
    },
    /// Reply to `ticket.history`.
    #[serde(rename = "ticket.history.ok")]
    TicketHistoryOk {
        /// Echoed request id.
        id: RequestId,
        /// The ticket.
        ticket_id: TicketId,
        /// Events, oldest first.
        events: Vec<EventView>,
        /// Whether there are more in the direction asked.
        more: bool,
    },
    /// Reply to `ticket.send`: the message is stored.
    #[serde(rename = "ticket.send.ok")]
    TicketSendOk {
        /// Echoed request id.
        id: RequestId,
        /// The ticket.
        ticket_id: TicketId,
        /// The message's seq.
        seq: u64,
        /// True when this `client_msg_id` was stored before (the original seq is returned).
        duplicate: bool,
    },
    /// Reply to `ticket.claim`, `ticket.transfer` and `ticket.resolve`.
    #[serde(rename = "ticket.update.ok")]
    TicketUpdateOk {
        /// Echoed request id.
        id: RequestId,
        /// The ticket after the change.
        ticket: TicketView,
    },
    /// Reply to `queue.subscribe`.
    #[serde(rename = "queue.subscribe.ok")]
    QueueSubscribeOk {
        /// Echoed request id.
        id: RequestId,
        /// Open tickets in queue order, then assigned ones (at most 500 each).
        tickets: Vec<TicketView>,
    },
    /// Reply to `agent.status`.
    #[serde(rename = "agent.status.ok")]
    AgentStatusOk {
        /// Echoed request id.
        id: RequestId,
        /// The agent now.
        agent: AgentView,
    },
    /// Reply to `agent.list`.
    #[serde(rename = "agent.list.ok")]
    AgentListOk {
        /// Echoed request id.
        id: RequestId,
        /// Every enabled agent.
        agents: Vec<AgentView>,
    },
    /// Reply to `canned.list` and `canned.add` (the full list after the change).
    #[serde(rename = "canned.list.ok")]
    CannedListOk {
        /// Echoed request id.
        id: RequestId,
        /// The agent's canned replies.
        replies: Vec<CannedReplyView>,
    },
    /// Reply to `profile.get` and `profile.update`.
    #[serde(rename = "profile.ok")]
    ProfileOk {
        /// Echoed request id.
        id: RequestId,
        /// The profile.
        profile: ProfileView,
    },
    /// Reply to `agent.get`.
    #[serde(rename = "agent.get.ok")]
    AgentGetOk {
        /// Echoed request id.
        id: RequestId,
        /// The agent.
        agent: AgentView,
    },
    /// Reply to `device.list`.
    #[serde(rename = "device.list.ok")]
    DeviceListOk {
        /// Echoed request id.
        id: RequestId,
        /// The user's devices, most recently used first.
        devices: Vec<DeviceView>,
    },
    /// Reply to `settings.get` and `settings.put`.
    #[serde(rename = "settings.ok")]
    SettingsOk {
        /// Echoed request id.
        id: RequestId,
        /// The stored document (`{}` when none is stored).
        settings: SettingsDocument,
        /// When it was stored; `null` when none is.
        updated_at: Option<Millis>,
    },
    /// Reply to `consent.get` and `consent.set`.
    #[serde(rename = "consent.ok")]
    ConsentOk {
        /// Echoed request id.
        id: RequestId,
        /// The switches now.
        consent: ConsentView,
    },
    /// Reply to `purchase.list`.
    #[serde(rename = "purchase.list.ok")]
    PurchaseListOk {
        /// Echoed request id.
        id: RequestId,
        /// The user's purchases, newest `purchased_at` first.
        purchases: Vec<PurchaseView>,
    },
    /// Reply to requests that return nothing but success: `ticket.unsubscribe`, `ticket.delivered`,
    /// `ticket.read`, `ticket.typing`, `canned.delete`, `device.sign_out`, `telemetry.device`,
    /// `telemetry.views`.
    #[serde(rename = "ok")]
    Ok {
        /// Echoed request id.
        id: RequestId,
    },
    /// Reply to `ping`.
    #[serde(rename = "ping.ok")]
    PingOk {
        /// Echoed request id.
        id: RequestId,
        /// The hub's clock.
        server_time: Millis,
    },
    /// Reply to `session.refresh`.
    #[serde(rename = "session.refresh.ok")]
    SessionRefreshOk {
        /// Echoed request id.
        id: RequestId,
        /// The new token; the old one no longer works.
        token: String,
        /// When the new token expires.
        expires_at: Millis,
    },
    /// Reply to `session.sign_out`; the hub then closes the socket with 1000.
    #[serde(rename = "session.sign_out.ok")]
    SessionSignOutOk {
        /// Echoed request id.
        id: RequestId,
    },
    /// Reply to `me`.
    #[serde(rename = "me.ok")]
    MeOk {
        /// Echoed request id.
        id: RequestId,
        /// The user's id.
        user_id: UserId,
        /// The user's own number (only ever sent to its owner).
        phone: String,
        /// When the number first signed in.
        registered_at: Millis,
    },
    /// The request failed, or a frame could not be understood (`id` is null when it could not be read).
    #[serde(rename = "error")]
    Error {
        /// Echoed request id, if the frame had a readable one.
        id: Option<RequestId>,
        /// Stable machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation (English, lowercase).
        message: String,
        /// When to try again, for `rate_limited` and similar.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Event: the session's token expires soon; send `session.refresh`.
    #[serde(rename = "session.expiring")]
    SessionExpiring {
        /// When it expires.
        expires_at: Millis,
    },
    /// Event: the session expired; the hub closes the socket with 4004.
    #[serde(rename = "session.expired")]
    SessionExpired {},
    /// Event: the session was revoked; the hub closes the socket with 4003.
    #[serde(rename = "session.revoked")]
    SessionRevoked {
        /// Why.
        reason: RevokeReason,
    },
    /// Event: a message from the operators to every connected app (and/or agent console), such as
    /// planned maintenance. Not stored: sockets connected when it is sent receive it.
    #[serde(rename = "announcement")]
    Announcement {
        /// Its id (the same on every socket).
        announcement_id: uuid::Uuid,
        /// The text, as the operator wrote it.
        text: String,
        /// When the operator sent it.
        sent_at: Millis,
    },
    /// Event: a ticket's stream grew (to its subscribers).
    #[serde(rename = "ticket.event")]
    TicketEvent {
        /// The event.
        event: EventView,
    },
    /// Event: a ticket changed state or got a message (to its owner, its subscribers, queue watchers
    /// and its agent).
    #[serde(rename = "ticket.updated")]
    TicketUpdated {
        /// The ticket now.
        ticket: TicketView,
    },
    /// Event: a ticket no longer exists: its user deleted their account (to its subscribers, its
    /// agent and queue watchers). Forget it; nothing more will come about it.
    #[serde(rename = "ticket.deleted")]
    TicketDeleted {
        /// The ticket.
        ticket_id: TicketId,
    },
    /// Event: a participant's delivery and read marks moved (to the ticket's subscribers).
    #[serde(rename = "ticket.receipt")]
    TicketReceipt {
        /// The ticket.
        ticket_id: TicketId,
        /// Whose marks.
        participant: Participant,
        /// Highest seq a device of theirs received.
        delivered_seq: u64,
        /// Highest seq they read.
        read_seq: u64,
    },
    /// Event: a participant is typing (to the ticket's other subscribers).
    #[serde(rename = "ticket.typing")]
    TicketTyping {
        /// The ticket.
        ticket_id: TicketId,
        /// Who.
        participant: Participant,
    },
    /// Event: a profile changed (to the user's sockets and the agents handling their tickets).
    #[serde(rename = "profile.updated")]
    ProfileUpdated {
        /// The profile now.
        profile: ProfileView,
    },
    /// Event: someone came online or went offline (debounced).
    #[serde(rename = "presence")]
    Presence {
        /// Who.
        participant: Participant,
        /// Online now.
        online: bool,
        /// When they were last online; only when offline and not hidden by the user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seen_at: Option<Millis>,
    },
    /// Event: the user's settings document was replaced (to every socket of the user).
    #[serde(rename = "settings.updated")]
    SettingsUpdated {
        /// The document now.
        settings: SettingsDocument,
        /// When it was stored.
        updated_at: Millis,
    },
    /// Event: the user's consent changed (to every socket of the user).
    #[serde(rename = "consent.updated")]
    ConsentUpdated {
        /// The switches now.
        consent: ConsentView,
    },
    /// Event: billing reported a new purchase of the user, or a change of one (to every socket of the
    /// user), so that an app unlocks, or locks, at once.
    #[serde(rename = "purchase.updated")]
    PurchaseUpdated {
        /// The purchase now.
        purchase: PurchaseView,
    },
    /// Event: a waiting user's place in the queue (to the ticket's owner).
    #[serde(rename = "ticket.queue")]
    TicketQueue {
        /// The ticket.
        ticket_id: TicketId,
        /// 1 for the next ticket to be taken.
        position: u32,
        /// Estimated wait, when the hub has seen enough claims to estimate.
        estimated_wait_ms: Option<u64>,
    },
}

impl ServerFrame {
    /// The frame's `type`, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AuthOk { .. } => "auth.ok",
            Self::AuthAgentOk { .. } => "auth.agent.ok",
            Self::TicketOpenOk { .. } => "ticket.open.ok",
            Self::TicketListOk { .. } => "ticket.list.ok",
            Self::TicketSubscribeOk { .. } => "ticket.subscribe.ok",
            Self::TicketHistoryOk { .. } => "ticket.history.ok",
            Self::TicketSendOk { .. } => "ticket.send.ok",
            Self::TicketUpdateOk { .. } => "ticket.update.ok",
            Self::QueueSubscribeOk { .. } => "queue.subscribe.ok",
            Self::AgentStatusOk { .. } => "agent.status.ok",
            Self::AgentListOk { .. } => "agent.list.ok",
            Self::CannedListOk { .. } => "canned.list.ok",
            Self::ProfileOk { .. } => "profile.ok",
            Self::AgentGetOk { .. } => "agent.get.ok",
            Self::DeviceListOk { .. } => "device.list.ok",
            Self::SettingsOk { .. } => "settings.ok",
            Self::ConsentOk { .. } => "consent.ok",
            Self::PurchaseListOk { .. } => "purchase.list.ok",
            Self::Ok { .. } => "ok",
            Self::PingOk { .. } => "ping.ok",
            Self::SessionRefreshOk { .. } => "session.refresh.ok",
            Self::SessionSignOutOk { .. } => "session.sign_out.ok",
            Self::MeOk { .. } => "me.ok",
            Self::Error { .. } => "error",
            Self::SessionExpiring { .. } => "session.expiring",
            Self::SessionExpired {} => "session.expired",
            Self::SessionRevoked { .. } => "session.revoked",
            Self::Announcement { .. } => "announcement",
            Self::TicketEvent { .. } => "ticket.event",
            Self::TicketUpdated { .. } => "ticket.updated",
            Self::TicketDeleted { .. } => "ticket.deleted",
            Self::TicketReceipt { .. } => "ticket.receipt",
            Self::TicketTyping { .. } => "ticket.typing",
            Self::TicketQueue { .. } => "ticket.queue",
            Self::ProfileUpdated { .. } => "profile.updated",
            Self::Presence { .. } => "presence",
            Self::SettingsUpdated { .. } => "settings.updated",
            Self::ConsentUpdated { .. } => "consent.updated",
            Self::PurchaseUpdated { .. } => "purchase.updated",
        }
    }

    /// The error reply for `error`, echoing `id`.
    pub fn error(id: Option<RequestId>, error: &crate::Error) -> Self {
        Self::Error {
            id,
            code: error.code(),
            message: error.public_message(),
            retry_after_ms: error.retry_after().map(|d| d.as_millis().min(u64::MAX as u128) as u64),
        }
    }
}
