//! Support tickets and the events of their streams.

use crate::model::attachment::{AttachmentRefusal, MessageAttachment};
use crate::model::ids::{AgentId, AttachmentId, Principal, TicketId, UserId};
use crate::model::time::Millis;
use serde::{Deserialize, Serialize};

/// Where a ticket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Waiting in the queue for an agent.
    Open,
    /// An agent holds it.
    Assigned,
    /// Done; a new message from the user reopens it.
    Resolved,
}

impl TicketStatus {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Assigned => "assigned",
            Self::Resolved => "resolved",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "assigned" => Some(Self::Assigned),
            "resolved" => Some(Self::Resolved),
            _ => None,
        }
    }
}

/// A ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Id.
    pub id: TicketId,
    /// The user who opened it (its owner).
    pub user_id: UserId,
    /// Subject line (at most 200 characters).
    pub subject: String,
    /// Current state.
    pub status: TicketStatus,
    /// The agent holding it, when assigned (and kept as the last holder when resolved).
    pub agent_id: Option<AgentId>,
    /// Creation time.
    pub created_at: Millis,
    /// Time of the last event.
    pub updated_at: Millis,
    /// When it (re-)entered the queue; set while open, the queue's order.
    pub queued_at: Option<Millis>,
    /// Sequence number of its last event.
    pub last_seq: u64,
}

/// Who caused an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Author {
    /// The ticket's user.
    User(UserId),
    /// A support agent.
    Agent(AgentId),
    /// The hub itself (auto-assignment).
    System,
}

impl From<Principal> for Author {
    /// A user or agent acting on a ticket.
    fn from(who: Principal) -> Self {
        match who {
            Principal::User(u) => Self::User(u),
            Principal::Agent(a) => Self::Agent(a),
        }
    }
}

/// What an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The ticket was opened (always seq 1).
    Opened,
    /// A message.
    Message,
    /// An agent took the ticket from the queue (or was given it by auto-assignment).
    Claimed,
    /// The ticket moved to another agent.
    Transferred,
    /// The ticket was resolved.
    Resolved,
    /// A user message reopened a resolved ticket (it is back in the queue).
    Reopened,
}

impl EventKind {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Message => "message",
            Self::Claimed => "claimed",
            Self::Transferred => "transferred",
            Self::Resolved => "resolved",
            Self::Reopened => "reopened",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "opened" => Some(Self::Opened),
            "message" => Some(Self::Message),
            "claimed" => Some(Self::Claimed),
            "transferred" => Some(Self::Transferred),
            "resolved" => Some(Self::Resolved),
            "reopened" => Some(Self::Reopened),
            _ => None,
        }
    }
}

/// One event of a ticket's stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketEvent {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Its place in the ticket's stream (1-based, gapless).
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
    /// Who did it.
    pub author: Author,
    /// The message text (messages, and the opening: the subject).
    pub body: Option<String>,
    /// The sender's own id for a message, for idempotent resends.
    pub client_msg_id: Option<String>,
    /// For `claimed` and `transferred`: the agent who holds the ticket now.
    pub agent_id: Option<AgentId>,
    /// For a message: the files it carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<MessageAttachment>,
    /// When it was stored.
    pub created_at: Millis,
}

/// A ticket to open, with its first message.
#[derive(Clone, Debug)]
pub struct NewTicket {
    /// Id for the new ticket.
    pub id: TicketId,
    /// Owner.
    pub user_id: UserId,
    /// Subject.
    pub subject: String,
    /// The first message.
    pub body: String,
    /// The user's uploads the first message carries.
    pub attachments: Vec<AttachmentId>,
    /// The user's id for the first message: opening is idempotent on (user, client_msg_id).
    pub client_msg_id: String,
    /// Now.
    pub created_at: Millis,
}

/// A ticket that was opened (or found again, for a repeated request).
#[derive(Clone, Debug)]
pub struct Opened {
    /// The ticket as stored.
    pub ticket: Ticket,
    /// Its first events: `opened` (seq 1) and the first `message` (seq 2).
    pub events: Vec<TicketEvent>,
    /// False when the same (user, client_msg_id) had opened it before.
    pub created: bool,
}

/// A message to append.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The sender: the ticket's user or an agent (authorisation is the domain's job).
    pub author: Author,
    /// The sender's id for the message, unique per (ticket, author).
    pub client_msg_id: String,
    /// The text (empty when attachments carry the message).
    pub body: String,
    /// The sender's uploads the message carries.
    pub attachments: Vec<AttachmentId>,
    /// Now.
    pub created_at: Millis,
}

/// The outcome of appending one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Stored now. `events` is what was appended: the message, preceded by `reopened` when a
    /// user's message reopened a resolved ticket.
    Stored {
        /// The new events, in order.
        events: Vec<TicketEvent>,
        /// The ticket after the append.
        ticket: Ticket,
    },
    /// The same (ticket, author, client_msg_id) was stored before: the original event, unchanged.
    Duplicate(TicketEvent),
    /// There is no such ticket.
    NoTicket,
    /// The author may not write to this ticket: a user to another user's, an agent to one another
    /// agent holds.
    NotAllowed,
    /// An agent wrote to an open ticket: it must be claimed first.
    NotClaimed,
    /// The ticket is resolved and the author is not its user (agents cannot write to resolved tickets).
    Resolved,
    /// The message names attachments it cannot carry; nothing was stored.
    AttachmentRefused(AttachmentRefusal),
}

/// A guarded change of a ticket's state, with the event that records it.
#[derive(Clone, Debug)]
pub struct Transition {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The change applies only if the ticket's status is one of these...
    pub from: Vec<TicketStatus>,
    /// ...and, when set, only if the holding agent is this one (`Some(None)`: nobody holds it).
    pub holder: Option<Option<AgentId>>,
    /// The new status.
    pub to: TicketStatus,
    /// The agent holding the ticket afterwards (kept as is when resolving).
    pub agent_id: Option<AgentId>,
    /// The event recorded (`claimed`, `transferred`, `resolved`).
    pub kind: EventKind,
    /// Who did it.
    pub actor: Author,
    /// Now.
    pub now: Millis,
}

impl Transition {
    /// An open, unheld ticket goes to `agent` (`claimed`), by `actor` (the agent, or the hub).
    pub fn claim(ticket_id: TicketId, agent: AgentId, actor: Author, now: Millis) -> Self {
        Self {
            ticket_id,
            from: vec![TicketStatus::Open],
            holder: Some(None),
            to: TicketStatus::Assigned,
            agent_id: Some(agent),
            kind: EventKind::Claimed,
            actor,
            now,
        }
    }

    /// A ticket `agent` holds moves to `to` (`transferred`).
    pub fn transfer(ticket_id: TicketId, agent: AgentId, to: AgentId, now: Millis) -> Self {
        Self {
            ticket_id,
            from: vec![TicketStatus::Assigned],
            holder: Some(Some(agent)),
            to: TicketStatus::Assigned,
            agent_id: Some(to),
            kind: EventKind::Transferred,
            actor: Author::Agent(agent),
            now,
        }
    }

    /// A ticket `agent` holds is resolved (`resolved`); the agent stays recorded as its last holder.
    pub fn resolve(ticket_id: TicketId, agent: AgentId, now: Millis) -> Self {
        Self {
            ticket_id,
            from: vec![TicketStatus::Assigned],
            holder: Some(Some(agent)),
            to: TicketStatus::Resolved,
            agent_id: Some(agent),
            kind: EventKind::Resolved,
            actor: Author::Agent(agent),
            now,
        }
    }
}

/// Which part of a stream to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// Events with seq greater than this, oldest first.
    After(u64),
    /// Events with seq less than this, the newest of them, returned oldest first.
    Before(u64),
}

/// How far one participant has got in a ticket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadMarks {
    /// Highest seq a device of the participant acknowledged receiving.
    pub delivered_seq: u64,
    /// Highest seq the participant has read.
    pub read_seq: u64,
}
