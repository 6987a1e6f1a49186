//! The fan-out port: how an event reaches the sockets that should see it. The single-node
//! implementation is the [`crate::registry::Registry`]; a cluster puts Redis behind the same trait.

use crate::auth::RevokeReason;
use crate::codec::SharedFrame;
use crate::ids::{AgentId, Principal, SessionId, TicketId};
use std::sync::Arc;

/// Who should receive an event. A socket that belongs to several groups receives it once.
#[derive(Clone, Copy, Debug, Default)]
pub struct Audience<'a> {
    /// Sockets subscribed to any of these tickets.
    pub tickets: &'a [TicketId],
    /// Every socket of these users and agents.
    pub principals: &'a [Principal],
    /// Agents' sockets watching the queue.
    pub queue_watchers: bool,
    /// Sockets of this principal are left out (nobody needs their own typing indicator).
    pub except: Option<Principal>,
}

/// Publishes events to sockets.
pub trait Broker: Send + Sync {
    /// Queues `frame` once on every socket in `audience`.
    fn publish(&self, audience: &Audience<'_>, frame: Arc<SharedFrame>);
    /// Agents with at least one live socket.
    fn online_agents(&self) -> Vec<AgentId>;
    /// Every socket of `session` receives `session.revoked` and is closed (4003).
    fn session_revoked(&self, who: Principal, session: SessionId, reason: RevokeReason);
    /// Every socket of the agent receives `session.revoked` (`agent_disabled`) and is closed.
    fn agent_disabled(&self, agent: AgentId);
}
