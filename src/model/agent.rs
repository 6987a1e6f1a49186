//! Support agents: staff accounts, their sessions and canned replies.

use crate::model::ids::{AgentId, CannedReplyId};
use crate::model::time::Millis;
use serde::{Deserialize, Serialize};

/// What an agent says about their availability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Takes tickets (and is auto-assigned when online).
    Available,
    /// Working, but takes no new tickets.
    Busy,
    /// Away from the console.
    Away,
}

impl AgentStatus {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Busy => "busy",
            Self::Away => "away",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "available" => Some(Self::Available),
            "busy" => Some(Self::Busy),
            "away" => Some(Self::Away),
            _ => None,
        }
    }
}

/// A support agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// Id.
    pub id: AgentId,
    /// Sign-in email, stored lowercase.
    pub email: String,
    /// Display name, shown to users.
    pub name: String,
    /// Argon2id PHC string of the password.
    pub password_hash: String,
    /// When the operator created the account.
    pub created_at: Millis,
    /// When the operator disabled it; a disabled agent cannot sign in.
    pub disabled_at: Option<Millis>,
    /// Availability as the agent last set it.
    pub status: AgentStatus,
    /// How many assigned tickets the agent handles at once.
    pub capacity: u32,
    /// A supervisor also keeps the team's labels and reads the team's reports.
    pub supervisor: bool,
}

/// An agent account to create.
#[derive(Clone, Debug)]
pub struct NewAgent {
    /// Id.
    pub id: AgentId,
    /// Email (the store lowercases it).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Creation time.
    pub created_at: Millis,
}

/// What an operator changes on an agent's account; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentChange {
    /// A new display name.
    pub name: Option<String>,
    /// A new capacity (tickets held at once, 1 to 100).
    pub capacity: Option<u32>,
    /// A new Argon2id PHC string: every live session of the agent is revoked with it.
    pub password_hash: Option<String>,
    /// `true`: enable a disabled agent (they sign in again; their old sessions stay revoked).
    pub enable: bool,
}

/// A canned reply an agent keeps for common answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CannedReply {
    /// Id.
    pub id: CannedReplyId,
    /// Owner.
    pub agent_id: AgentId,
    /// Short title (at most 100 characters).
    pub title: String,
    /// The text inserted into a message.
    pub body: String,
    /// Creation time.
    pub created_at: Millis,
}
