//! The shapes of tickets, events and agents as clients see them: plain protocol values, filled in
//! by the session layer from the domain's records. No phone number ever appears here.

use crate::ids::{AgentId, CannedReplyId, TicketId, UserId};
use crate::storage::agents::AgentStatus;
use crate::storage::tickets::{EventKind, TicketStatus};
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// Who did something, as shown to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Participant {
    /// An app user.
    User(UserId),
    /// A support agent.
    Agent(AgentId),
    /// The hub (auto-assignment).
    System,
}

/// A ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketView {
    /// Id.
    pub id: TicketId,
    /// Owner.
    pub user_id: UserId,
    /// Subject.
    pub subject: String,
    /// `open`, `assigned` or `resolved`.
    pub status: TicketStatus,
    /// The agent holding it (also the last holder of a resolved ticket).
    pub agent_id: Option<AgentId>,
    /// Creation time.
    pub created_at: Millis,
    /// Time of the last event.
    pub updated_at: Millis,
    /// Seq of its last event.
    pub last_seq: u64,
}

/// One event of a ticket's stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Place in the stream: 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// `opened`, `message`, `claimed`, `transferred`, `resolved` or `reopened`.
    pub kind: EventKind,
    /// Who caused it.
    pub author: Participant,
    /// Message text (and the subject, for `opened`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The sender's id for a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// For `claimed` and `transferred`: the agent holding the ticket now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// When it was stored.
    pub at: Millis,
}

/// An agent, as other agents see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    /// Id.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// Their status.
    pub status: AgentStatus,
    /// Assigned tickets they take at once.
    pub capacity: u32,
    /// Whether they have a live socket on this hub.
    pub online: bool,
}

/// A canned reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CannedReplyView {
    /// Id.
    pub id: CannedReplyId,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
}
