//! Who is online: a count of live authenticated sockets per person on this node. Many sockets of
//! one person are one presence. Coming online is announced at once; going offline only after
//! `presence_grace_ms` without any socket, so a flapping connection (a phone switching networks)
//! announces nothing. The last-seen time is stored when the offline is announced.
//!
//! Who is told: for a user, the agents holding their open tickets and whoever follows those tickets;
//! for an agent, every agent watching the queue and the users whose tickets they hold.

use crate::broker::{Audience, Broker};
use crate::codec::{Participant, ServerFrame, SharedFrame};
use crate::ids::{Principal, TicketId};
use crate::storage::tickets::TicketStatus;
use crate::storage::Store;
use crate::time::{now_ms, Millis};
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
struct Entry {
    sockets: u32,
    /// Bumped on every change, so a delayed offline check knows whether it is still current.
    generation: u64,
    /// Whether "online" was announced and not yet taken back.
    announced: bool,
}

/// Presence on this node.
pub struct Presence {
    people: DashMap<Principal, Entry>,
    generation: AtomicU64,
    grace: Duration,
    store: Arc<dyn Store>,
    broker: Arc<dyn Broker>,
}

impl Presence {
    /// Presence with the offline debounce `grace`.
    pub fn new(grace: Duration, store: Arc<dyn Store>, broker: Arc<dyn Broker>) -> Arc<Self> {
        Arc::new(Self { people: DashMap::new(), generation: AtomicU64::new(1), grace, store, broker })
    }

    /// Whether the person has a live socket on this node.
    pub fn is_online(&self, who: Principal) -> bool {
        self.people.get(&who).is_some_and(|e| e.sockets > 0)
    }

    /// A socket of `who` authenticated.
    pub fn connected(self: &Arc<Self>, who: Principal) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let announce = {
            let mut entry = self.people.entry(who).or_insert(Entry { sockets: 0, generation, announced: false });
            entry.sockets += 1;
            entry.generation = generation;
            let first = !entry.announced;
            entry.announced = true;
            first
        };
        if announce {
            let this = self.clone();
            tokio::spawn(async move { this.announce(who, true, None).await });
        }
    }

    /// A socket of `who` closed.
    pub fn disconnected(self: &Arc<Self>, who: Principal) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let last = match self.people.get_mut(&who) {
            Some(mut entry) => {
                entry.sockets = entry.sockets.saturating_sub(1);
                entry.generation = generation;
                entry.sockets == 0
            }
            None => false,
        };
        if !last {
            return;
        }
        let left_at = now_ms();
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(this.grace).await;
            // Still gone, and nothing happened since: the person is offline.
            let gone = this.people.remove_if(&who, |_, e| e.sockets == 0 && e.generation == generation).is_some();
            if gone {
                this.announce(who, false, Some(left_at)).await;
            }
        });
    }

    async fn announce(&self, who: Principal, online: bool, left_at: Option<Millis>) {
        let (participant, mut last_seen_at) = match who {
            Principal::User(u) => (Participant::User(u), left_at),
            Principal::Agent(a) => (Participant::Agent(a), left_at),
        };
        if let (Principal::User(u), Some(at)) = (who, left_at) {
            if let Err(e) = self.store.set_last_seen(u, at).await {
                tracing::warn!(error = %e, "last-seen time not stored");
            }
            if let Ok(Some(profile)) = self.store.profile(u).await {
                if profile.hide_last_seen {
                    last_seen_at = None;
                }
            }
        }
        let (principals, tickets) = match self.entitled(who).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "presence not announced");
                return;
            }
        };
        let frame = SharedFrame::new(ServerFrame::Presence { participant, online, last_seen_at });
        let audience = Audience {
            tickets: &tickets,
            principals: &principals,
            queue_watchers: matches!(who, Principal::Agent(_)),
            except: Some(who),
        };
        self.broker.publish(&audience, frame);
    }

    /// Who may see `who`'s presence: the people on their open tickets, and those tickets' followers.
    async fn entitled(&self, who: Principal) -> crate::Result<(Vec<Principal>, Vec<TicketId>)> {
        let tickets = match who {
            Principal::User(u) => self.store.user_tickets(u, 100).await?,
            Principal::Agent(a) => self.store.agent_tickets(a).await?,
        };
        let open: Vec<_> = tickets.into_iter().filter(|t| t.status != TicketStatus::Resolved).collect();
        let mut principals: Vec<Principal> = open
            .iter()
            .filter_map(|t| match who {
                Principal::User(_) => t.agent_id.map(Principal::Agent),
                Principal::Agent(_) => Some(Principal::User(t.user_id)),
            })
            .collect();
        principals.sort_unstable();
        principals.dedup();
        Ok((principals, open.iter().map(|t| t.id).collect()))
    }
}
