//! The storage port for support agents: staff accounts, their sessions, status and canned replies.

use super::TokenHash;
use crate::error::Result;
use crate::ids::{AgentId, CannedReplyId, SessionId};
use crate::time::Millis;
use async_trait::async_trait;
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

/// A signed-in agent session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSession {
    /// Id.
    pub id: SessionId,
    /// The agent.
    pub agent_id: AgentId,
    /// Issue time.
    pub created_at: Millis,
    /// Expiry of the current token.
    pub expires_at: Millis,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Millis>,
}

impl AgentSession {
    /// Neither revoked nor expired at `now`.
    pub fn is_live(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
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

/// Agents, their sessions, status and canned replies.
#[async_trait]
pub trait Agents: Send + Sync {
    /// Creates the agent; `None` if the email (case-insensitive) is taken.
    async fn create_agent(&self, new: &NewAgent) -> Result<Option<Agent>>;
    /// The agent with this id.
    async fn agent(&self, id: AgentId) -> Result<Option<Agent>>;
    /// The agent with this email (case-insensitive).
    async fn agent_by_email(&self, email: &str) -> Result<Option<Agent>>;
    /// Every agent, by email.
    async fn agents(&self) -> Result<Vec<Agent>>;
    /// Disables the agent at `now` and revokes every live session of theirs, in one transaction.
    /// False if there is no such agent or it was disabled already.
    async fn disable_agent(&self, id: AgentId, now: Millis) -> Result<bool>;
    /// Sets the agent's status and capacity. False if there is no such agent.
    async fn set_agent_status(&self, id: AgentId, status: AgentStatus, capacity: u32) -> Result<bool>;
    /// Stores a new agent session with the hash of its token.
    ///
    /// # Errors
    /// [`Error::Forbidden`](crate::error::Error::Forbidden) if the agent does not exist or is disabled,
    /// also when [`Agents::disable_agent`] commits while this call runs: a disabled agent never ends
    /// up with a live session.
    async fn create_agent_session(&self, session: &AgentSession, token_hash: &TokenHash) -> Result<()>;
    /// The agent session whose token hashes to `hash`, live or not.
    async fn agent_session_by_token(&self, hash: &TokenHash) -> Result<Option<AgentSession>>;
    /// The agent session with this id, live or not.
    async fn agent_session(&self, id: SessionId) -> Result<Option<AgentSession>>;
    /// Gives a live agent session a new token and expiry. False if it is not live at `now`.
    async fn rotate_agent_session(
        &self,
        id: SessionId,
        new_hash: &TokenHash,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool>;
    /// Revokes an agent session. False if missing or already revoked.
    async fn revoke_agent_session(&self, id: SessionId, now: Millis) -> Result<bool>;
    /// Stores a canned reply.
    async fn add_canned_reply(&self, reply: &CannedReply) -> Result<()>;
    /// The agent's canned replies, oldest first.
    async fn canned_replies(&self, agent: AgentId) -> Result<Vec<CannedReply>>;
    /// Deletes one of the agent's canned replies. False if it is not theirs or does not exist.
    async fn delete_canned_reply(&self, agent: AgentId, id: CannedReplyId) -> Result<bool>;
}
