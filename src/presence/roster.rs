//! The presence port: who is online across however many nodes. A node tells the roster when its
//! first socket of a person opens and when its last one has been closed for the grace period; the
//! roster says when that makes the person online or offline everywhere, which is when presence is
//! announced. [`MemoryRoster`] serves a single node; [`super::RedisRoster`] a cluster.

use crate::error::Result;
use crate::ids::{AgentId, Principal};
use crate::time::Millis;
use async_trait::async_trait;
use dashmap::DashMap;

/// A change the roster found by itself (a dead node's people, or a resync after Redis came back),
/// for the node to announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// Whose presence changed.
    pub who: Principal,
    /// Online now, or offline.
    pub online: bool,
    /// For offline: when they were last seen.
    pub last_seen: Option<Millis>,
}

/// Who is online.
#[async_trait]
pub trait Roster: Send + Sync {
    /// This node's first socket of `who` opened; `mark` names this stretch of sockets (a later
    /// [`Roster::departed`] with an older mark is ignored). True if the person was offline
    /// everywhere: announce them online.
    async fn arrived(&self, who: Principal, mark: u64) -> Result<bool>;
    /// This node has had no socket of `who` since the stretch `mark` ended (and the grace period
    /// passed). True if the person now has no socket anywhere: announce them offline.
    async fn departed(&self, who: Principal, mark: u64) -> Result<bool>;
    /// Whether each person has a socket on a live node.
    async fn online(&self, who: &[Principal]) -> Result<Vec<bool>>;
    /// Agents with a socket on a live node.
    async fn online_agents(&self) -> Result<Vec<AgentId>>;
    /// Removes every trace of `who` (a deleted account): they are offline everywhere at once, with
    /// nothing to announce, and later departures of theirs find nothing.
    async fn forget(&self, who: Principal) -> Result<()>;
    /// Periodic upkeep (a cluster's heartbeat, reaping dead nodes, resync after an outage): the
    /// changes found, to announce.
    async fn maintain(&self) -> Result<Vec<Change>>;
    /// Whether [`Roster::maintain`] needs calling (false for a single node).
    fn needs_upkeep(&self) -> bool;
}

/// The single-node roster: this node's people are everyone.
#[derive(Default)]
pub struct MemoryRoster {
    present: DashMap<Principal, u64>,
}

impl MemoryRoster {
    /// An empty roster.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Roster for MemoryRoster {
    async fn arrived(&self, who: Principal, mark: u64) -> Result<bool> {
        Ok(self.present.insert(who, mark).is_none())
    }

    async fn departed(&self, who: Principal, mark: u64) -> Result<bool> {
        Ok(self.present.remove_if(&who, |_, m| *m == mark).is_some())
    }

    async fn online(&self, who: &[Principal]) -> Result<Vec<bool>> {
        Ok(who.iter().map(|w| self.present.contains_key(w)).collect())
    }

    async fn online_agents(&self) -> Result<Vec<AgentId>> {
        Ok(self
            .present
            .iter()
            .filter_map(|e| match e.key() {
                Principal::Agent(a) => Some(*a),
                Principal::User(_) => None,
            })
            .collect())
    }

    async fn forget(&self, who: Principal) -> Result<()> {
        self.present.remove(&who);
        Ok(())
    }

    async fn maintain(&self) -> Result<Vec<Change>> {
        Ok(Vec::new())
    }

    fn needs_upkeep(&self) -> bool {
        false
    }
}
