//! The presence port: who is online across however many nodes. A node tells the roster when its
//! first socket of a person opens and when its last one has been closed for the grace period; the
//! roster says when that makes the person online or offline everywhere, which is when presence is
//! announced. [`crate::adapters::memory::MemoryRoster`] serves a single node;
//! [`crate::adapters::redis::RedisRoster`] a cluster. Both pass the conformance checks in
//! `tests/conformance/roster.rs`.

use crate::error::Result;
use crate::model::ids::{AgentId, Principal};
use crate::model::time::Millis;
use async_trait::async_trait;

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
