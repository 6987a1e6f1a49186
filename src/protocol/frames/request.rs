//! Requests: what a client may send, each with its fields as they travel.

use super::{RequestId, SettingsDocument};
use crate::model::agent::AgentStatus;
use crate::model::ids::{AgentId, AttachmentId, CannedReplyId, DeviceId, LabelId, NoteId, TicketId, UserId};
use crate::model::telemetry::{DeviceReport, ViewEventReport};
use crate::model::ticket::TicketStatus;
use serde::{Deserialize, Serialize};

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
        /// First message, 1 to `max_body_chars` characters; may be empty or absent when it
        /// carries attachments.
        #[serde(default)]
        body: String,
        /// The user's uploads the first message carries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentId>,
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
        /// Agents: only tickets with this label.
        #[serde(default)]
        label_id: Option<LabelId>,
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
        /// The text, 1 to `max_body_chars` characters; may be empty or absent when the message
        /// carries attachments.
        #[serde(default)]
        body: String,
        /// The sender's uploads the message carries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentId>,
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
    /// Agent: a private note on a ticket, for agents only.
    #[serde(rename = "note.add")]
    NoteAdd {
        /// The ticket (any ticket, whoever holds it).
        ticket_id: TicketId,
        /// The writer's id for the note, 1 to 64 characters: a resend answers the stored note.
        client_msg_id: String,
        /// Text, 1 to `max_body_chars` characters.
        body: String,
        /// Agents the note names (at most 10); they are told of it.
        #[serde(default)]
        mentions: Vec<AgentId>,
    },
    /// Agent: a ticket's notes, oldest first: the newest `limit`, or those before `before_id`.
    #[serde(rename = "note.list")]
    NoteList {
        /// The ticket.
        ticket_id: TicketId,
        /// Notes older than this one.
        #[serde(default)]
        before_id: Option<NoteId>,
        /// Page size, 1 to 100 (default 50).
        #[serde(default)]
        limit: Option<u32>,
    },
    /// User: rates a resolution of their ticket, once (the same rating again answers the stored one).
    #[serde(rename = "rating.submit")]
    RatingSubmit {
        /// The ticket.
        ticket_id: TicketId,
        /// The seq of the `resolved` event rated (from `rating.request`).
        resolution_seq: u64,
        /// 1 (worst) to 5 (best).
        score: u8,
        /// The user's words, at most 1000 characters (blank: none).
        #[serde(default)]
        comment: Option<String>,
    },
    /// User: the resolutions they may still rate (asked on start: a request made while the app was
    /// closed is not pushed again).
    #[serde(rename = "rating.pending")]
    RatingPending {},
    /// Agent, or the ticket's user: every rating of a ticket.
    #[serde(rename = "rating.list")]
    RatingList {
        /// The ticket.
        ticket_id: TicketId,
    },
    /// Agent: searches the tickets' subjects and messages.
    #[serde(rename = "ticket.search")]
    TicketSearch {
        /// Words (or a ticket's id), 1 to 200 characters.
        query: String,
        /// Only tickets in this status.
        #[serde(default)]
        status: Option<TicketStatus>,
        /// Only tickets this agent holds.
        #[serde(default)]
        agent_id: Option<AgentId>,
        /// Only tickets with this label.
        #[serde(default)]
        label_id: Option<LabelId>,
        /// Only messages from this time on (ms since the epoch).
        #[serde(default)]
        from: Option<i64>,
        /// Only messages before this time.
        #[serde(default)]
        to: Option<i64>,
        /// Matches to skip (default 0).
        #[serde(default)]
        offset: Option<u32>,
        /// Matches per page, 1 to 50 (default 20).
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Agent: the team's labels.
    #[serde(rename = "label.list")]
    LabelList {},
    /// Supervisor: adds a label to the team's list.
    #[serde(rename = "label.create")]
    LabelCreate {
        /// Name, 1 to 40 characters after trimming.
        name: String,
        /// Colour, `#rrggbb`.
        color: String,
    },
    /// Supervisor: renames or recolours a label.
    #[serde(rename = "label.update")]
    LabelUpdate {
        /// The label.
        label_id: LabelId,
        /// New name (absent: unchanged).
        #[serde(default)]
        name: Option<String>,
        /// New colour (absent: unchanged).
        #[serde(default)]
        color: Option<String>,
    },
    /// Supervisor: deletes a label (it leaves every ticket).
    #[serde(rename = "label.delete")]
    LabelDelete {
        /// The label.
        label_id: LabelId,
    },
    /// Agent: puts a label on a ticket (`on`) or takes it off.
    #[serde(rename = "ticket.label")]
    TicketLabel {
        /// The ticket.
        ticket_id: TicketId,
        /// The label.
        label_id: LabelId,
        /// On or off.
        on: bool,
    },
    /// A user's profile: agents may read any user's; a user only their own.
    #[serde(rename = "profile.get")]
    ProfileGet {
        /// The user.
        user_id: UserId,
    },
    /// Agent: a user beside a conversation: profile, latest device report (with the user's analytics
    /// consent) and tickets. Never the number.
    #[serde(rename = "customer.get")]
    CustomerGet {
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
    /// User: turns analytics, personalisation or SMS reminders on or off.
    #[serde(rename = "consent.set")]
    ConsentSet {
        /// View patterns may be collected (absent or null: unchanged).
        #[serde(default)]
        analytics: Option<bool>,
        /// Settings may be stored on the server (absent or null: unchanged).
        #[serde(default)]
        personalisation: Option<bool>,
        /// An SMS may remind me of an unread reply (absent or null: unchanged).
        #[serde(default)]
        sms_reminders: Option<bool>,
    },
    /// User: what I paid for (activations and subscriptions), newest first.
    #[serde(rename = "purchase.list")]
    PurchaseList {},
    /// Registers this device session's push target (replacing its earlier one).
    #[serde(rename = "push.register")]
    PushRegister {
        /// The target and the person's choices.
        #[serde(flatten)]
        registration: crate::protocol::views::PushRegistrationRequest,
    },
    /// Removes this device session's push target.
    #[serde(rename = "push.unregister")]
    PushUnregister {},
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
        "note.add",
        "note.list",
        "rating.submit",
        "rating.pending",
        "rating.list",
        "ticket.search",
        "label.list",
        "label.create",
        "label.update",
        "label.delete",
        "ticket.label",
        "profile.get",
        "customer.get",
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
        "push.register",
        "push.unregister",
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
            Self::NoteAdd { .. } => "note.add",
            Self::NoteList { .. } => "note.list",
            Self::RatingSubmit { .. } => "rating.submit",
            Self::RatingPending {} => "rating.pending",
            Self::RatingList { .. } => "rating.list",
            Self::TicketSearch { .. } => "ticket.search",
            Self::LabelList {} => "label.list",
            Self::LabelCreate { .. } => "label.create",
            Self::LabelUpdate { .. } => "label.update",
            Self::LabelDelete { .. } => "label.delete",
            Self::TicketLabel { .. } => "ticket.label",
            Self::ProfileGet { .. } => "profile.get",
            Self::CustomerGet { .. } => "customer.get",
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
            Self::PushRegister { .. } => "push.register",
            Self::PushUnregister {} => "push.unregister",
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
