//! The in-process roster: presence on a single node.

use crate::error::Result;
use crate::model::ids::{AgentId, Principal};
use crate::ports::roster::{Change, Roster};
use async_trait::async_trait;
use dashmap::DashMap;

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
