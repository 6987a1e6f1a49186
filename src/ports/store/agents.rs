//! The storage port for support agents: staff accounts, their status and canned replies (their
//! sessions are [`Sessions`](super::Sessions), like users').

use crate::error::Result;
use crate::model::agent::{Agent, AgentChange, AgentStatus, CannedReply, NewAgent};
use crate::model::ids::{AgentId, CannedReplyId};
use crate::model::time::Millis;
use async_trait::async_trait;

/// Agents, their status and canned replies.
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
    /// Applies an operator's change, in one transaction with the revocation of every live session
    /// when the password changes. False when there is no such agent.
    async fn change_agent(&self, id: AgentId, change: &AgentChange, now: Millis) -> Result<bool>;
    /// Makes the agent a supervisor or not. False when there is no such agent.
    async fn set_supervisor(&self, id: AgentId, supervisor: bool) -> Result<bool>;
    /// Stores a canned reply.
    async fn add_canned_reply(&self, reply: &CannedReply) -> Result<()>;
    /// The agent's canned replies, oldest first.
    async fn canned_replies(&self, agent: AgentId) -> Result<Vec<CannedReply>>;
    /// Deletes one of the agent's canned replies. False if it is not theirs or does not exist.
    async fn delete_canned_reply(&self, agent: AgentId, id: CannedReplyId) -> Result<bool>;
}
