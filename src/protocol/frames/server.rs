//! Frames from the hub: the replies to requests and the events pushed to sockets.

use super::{RequestId, RevokeReason, SettingsDocument};
use crate::model::ids::{DeviceId, TicketId, UserId};
use crate::model::time::Millis;
use crate::protocol::errors::{ErrorCode, WireError};
use crate::protocol::views::{
    AgentView, CannedReplyView, ConsentView, CustomerView, DeviceView, EventView, LabelView, MarkView, NoteView,
    Participant, ProfileView, PurchaseView, RatingRequestView, RatingView, SearchResultView, TicketLabelsView,
    TicketView,
};
use serde::{Deserialize, Serialize};

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
        /// Agents: the labels of the listed tickets that have any (absent for users).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        labels: Option<Vec<TicketLabelsView>>,
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
    /// Reply to `label.list`, `label.create`, `label.update`, `label.delete` (the list after the
    /// change).
    #[serde(rename = "label.list.ok")]
    LabelListOk {
        /// Echoed request id.
        id: RequestId,
        /// The team's labels, oldest first.
        labels: Vec<LabelView>,
    },
    /// Reply to `ticket.search`.
    #[serde(rename = "ticket.search.ok")]
    TicketSearchOk {
        /// Echoed request id.
        id: RequestId,
        /// Matches, best first.
        results: Vec<SearchResultView>,
        /// Whether more matches follow (ask again with `offset` + the page's length).
        more: bool,
    },
    /// Reply to `ticket.label`.
    #[serde(rename = "ticket.label.ok")]
    TicketLabelOk {
        /// Echoed request id.
        id: RequestId,
        /// The ticket's labels after the change.
        labels: TicketLabelsView,
    },
    /// Reply to `note.add`.
    #[serde(rename = "note.add.ok")]
    NoteAddOk {
        /// Echoed request id.
        id: RequestId,
        /// The note as stored (the earlier one, for a resend).
        note: NoteView,
    },
    /// Reply to `rating.submit`.
    #[serde(rename = "rating.submit.ok")]
    RatingSubmitOk {
        /// Echoed request id.
        id: RequestId,
        /// The rating as stored.
        rating: RatingView,
    },
    /// Reply to `rating.pending`.
    #[serde(rename = "rating.pending.ok")]
    RatingPendingOk {
        /// Echoed request id.
        id: RequestId,
        /// The resolutions the user may still rate, oldest first.
        requests: Vec<RatingRequestView>,
    },
    /// Reply to `rating.list`.
    #[serde(rename = "rating.list.ok")]
    RatingListOk {
        /// Echoed request id.
        id: RequestId,
        /// The ticket.
        ticket_id: TicketId,
        /// Its ratings, by resolution.
        ratings: Vec<RatingView>,
    },
    /// Reply to `note.list`.
    #[serde(rename = "note.list.ok")]
    NoteListOk {
        /// Echoed request id.
        id: RequestId,
        /// The ticket.
        ticket_id: TicketId,
        /// Notes, oldest first.
        notes: Vec<NoteView>,
        /// Whether older ones remain.
        more: bool,
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
    /// Reply to `customer.get`.
    #[serde(rename = "customer.get.ok")]
    CustomerGetOk {
        /// Echoed request id.
        id: RequestId,
        /// The user as agents see them (boxed: the largest reply, and every frame the socket holds
        /// across an await is as large as the largest variant).
        customer: Box<CustomerView>,
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
    /// Reply to `push.register`.
    #[serde(rename = "push.register.ok")]
    PushRegisterOk {
        /// Echoed request id.
        id: RequestId,
        /// The registration as stored (without its token or keys).
        registration: crate::protocol::views::PushRegistrationView,
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
    /// Event: the team's labels changed (to every agent's socket).
    #[serde(rename = "labels.updated")]
    LabelsUpdated {
        /// The labels, oldest first.
        labels: Vec<LabelView>,
    },
    /// Event: a ticket's labels changed (to every agent's socket).
    #[serde(rename = "ticket.labels")]
    TicketLabels {
        /// The ticket's labels now.
        labels: TicketLabelsView,
    },
    /// Event: an agent resolved the user's ticket; the user may rate the resolution until
    /// `expires_at` (to the user's sockets).
    #[serde(rename = "rating.request")]
    RatingRequest {
        /// The request.
        #[serde(flatten)]
        request: RatingRequestView,
    },
    /// Event: a user rated a resolution (to every agent's socket and the user's).
    #[serde(rename = "ticket.rated")]
    TicketRated {
        /// The rating.
        rating: RatingView,
    },
    /// Event: an agent wrote a private note on a ticket (to every agent's socket; never to users).
    #[serde(rename = "ticket.note")]
    TicketNote {
        /// The note.
        note: NoteView,
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
            Self::NoteAddOk { .. } => "note.add.ok",
            Self::LabelListOk { .. } => "label.list.ok",
            Self::TicketSearchOk { .. } => "ticket.search.ok",
            Self::TicketLabelOk { .. } => "ticket.label.ok",
            Self::NoteListOk { .. } => "note.list.ok",
            Self::RatingSubmitOk { .. } => "rating.submit.ok",
            Self::RatingPendingOk { .. } => "rating.pending.ok",
            Self::RatingListOk { .. } => "rating.list.ok",
            Self::ProfileOk { .. } => "profile.ok",
            Self::CustomerGetOk { .. } => "customer.get.ok",
            Self::AgentGetOk { .. } => "agent.get.ok",
            Self::DeviceListOk { .. } => "device.list.ok",
            Self::SettingsOk { .. } => "settings.ok",
            Self::ConsentOk { .. } => "consent.ok",
            Self::PurchaseListOk { .. } => "purchase.list.ok",
            Self::PushRegisterOk { .. } => "push.register.ok",
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
            Self::TicketNote { .. } => "ticket.note",
            Self::RatingRequest { .. } => "rating.request",
            Self::TicketRated { .. } => "ticket.rated",
            Self::LabelsUpdated { .. } => "labels.updated",
            Self::TicketLabels { .. } => "ticket.labels",
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
        Self::Error { id, code: error.code(), message: error.public_message(), retry_after_ms: error.retry_after_ms() }
    }
}
