//! The fan-out port: how an event reaches the sockets that should see it. On one node the
//! [`crate::gateway::registry::Registry`] is the whole broker; a cluster puts [`crate::gateway::cluster::Cluster`]
//! (the local registry plus Redis pub/sub) behind the same trait.

use crate::model::account::RevokeReason;
use crate::model::event::Event;
use crate::model::ids::{AgentId, Principal, SessionId, TicketId};

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
    /// Every authenticated socket of this kind (announcements).
    pub broadcast: Option<Broadcast>,
}

/// Whom an announcement reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Broadcast {
    /// Users' apps.
    Users,
    /// Agents' consoles.
    Agents,
    /// Both.
    Everyone,
}

impl Broadcast {
    /// Whether `who` is in it.
    pub fn includes(self, who: Principal) -> bool {
        matches!(
            (self, who),
            (Self::Everyone, _) | (Self::Users, Principal::User(_)) | (Self::Agents, Principal::Agent(_))
        )
    }
}

impl Audience<'static> {
    /// Every agent's sockets, on every node (and no user's).
    pub const AGENTS: Self =
        Self { tickets: &[], principals: &[], queue_watchers: false, except: None, broadcast: Some(Broadcast::Agents) };
}

impl Audience<'_> {
    /// The topics a node must follow to hold any of this audience's sockets.
    pub fn topics(&self) -> Vec<Topic> {
        let mut topics: Vec<Topic> = self.tickets.iter().map(|t| Topic::Ticket(*t)).collect();
        topics.extend(self.principals.iter().map(|p| Topic::Principal(*p)));
        if self.queue_watchers {
            topics.push(Topic::Queue);
        }
        if self.broadcast.is_some() {
            topics.push(Topic::Everyone);
        }
        topics
    }
}

/// What a socket can be reached by, and so what a cluster node subscribes to for its sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Subscribers of one ticket.
    Ticket(TicketId),
    /// Every socket of one user or agent.
    Principal(Principal),
    /// Agents watching the queue.
    Queue,
    /// Every node (announcements).
    Everyone,
}

impl Topic {
    /// The topic's name after the Redis prefix: `t:<ticket>`, `u:<user>`, `a:<agent>`, `queue`.
    pub fn name(&self) -> String {
        match self {
            Self::Ticket(t) => format!("t:{t}"),
            Self::Principal(p) => p.key(),
            Self::Queue => "queue".into(),
            Self::Everyone => "all".into(),
        }
    }

    /// The topic named `name` (see [`Topic::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "queue" => Some(Self::Queue),
            "all" => Some(Self::Everyone),
            _ => match name.strip_prefix("t:") {
                Some(id) => uuid::Uuid::parse_str(id).ok().map(|id| Self::Ticket(TicketId(id))),
                None => Principal::from_key(name).map(Self::Principal),
            },
        }
    }
}

/// Publishes events to sockets, on this node and, in a cluster, on every other.
pub trait Broker: Send + Sync {
    /// Tells every socket in `audience` about `event`, once each.
    fn publish(&self, audience: &Audience<'_>, event: Event);
    /// Tells this node's sockets in `audience` about `event`, and no other node's: for what every
    /// node works out alike for its own sockets (the waiting users' places in the queue), which
    /// published would reach each socket once from every node.
    fn tell_here(&self, audience: &Audience<'_>, event: Event);
    /// Tells the other nodes that the queue changed, with the `claims` this node saw since it last
    /// told them, so that each runs its queue round (nothing to do on a single node).
    fn queue_changed(&self, claims: u32);
    /// Every socket of `session` receives `session.revoked` and is closed (4003).
    fn session_revoked(&self, who: Principal, session: SessionId, reason: RevokeReason);
    /// Every socket of the agent receives `session.revoked` (`agent_disabled`) and is closed.
    fn agent_disabled(&self, agent: AgentId);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::UserId;

    #[test]
    fn topic_names_round_trip() {
        let topics = [
            Topic::Queue,
            Topic::Everyone,
            Topic::Ticket(TicketId::generate()),
            Topic::Principal(Principal::User(UserId::generate())),
            Topic::Principal(Principal::Agent(AgentId::generate())),
        ];
        for t in topics {
            assert_eq!(Topic::from_name(&t.name()), Some(t));
        }
        assert_eq!(Topic::from_name("t:nonsense"), None);
        assert_eq!(Topic::from_name("x:0"), None);
    }
}
