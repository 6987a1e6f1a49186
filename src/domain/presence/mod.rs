//! Who is online. Many sockets of one person are one presence. Coming online is announced at
//! once; going offline only after `presence_grace_ms` without any socket, so a flapping connection
//! (a phone switching networks) announces nothing. The last-seen time is stored when the offline is
//! announced.
//!
//! This node counts its own sockets per person; the [`Roster`] port decides what that means for the
//! whole deployment: [`crate::adapters::memory::MemoryRoster`] on a single node,
//! [`crate::adapters::redis::RedisRoster`] across a cluster (a person with sockets on two nodes is
//! one presence, and a node that dies stops counting within `presence_node_ttl_ms`).
//!
//! Who is told: for a user, the agents holding their open tickets and whoever follows those tickets;
//! for an agent, every agent watching the queue and the users whose tickets they hold.

use crate::model::event::Event;
use crate::model::ids::{AgentId, Principal, TicketId};
use crate::model::ticket::TicketStatus;
use crate::model::time::{now_ms, Millis};
use crate::ports::broker::{Audience, Broker};
use crate::ports::roster::Roster;
use crate::ports::store::profiles::Profiles;
use crate::ports::store::tickets::Tickets;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug)]
struct Entry {
    sockets: u32,
    /// Bumped on every change, so a delayed offline check knows whether it is still current.
    generation: u64,
    /// Names the current stretch of sockets for the roster (the generation when it began).
    mark: u64,
}

/// Presence, as seen from this node.
pub struct Presence {
    people: DashMap<Principal, Entry>,
    generation: AtomicU64,
    grace: Duration,
    profiles: Arc<dyn Profiles>,
    tickets: Arc<dyn Tickets>,
    broker: Arc<dyn Broker>,
    roster: Arc<dyn Roster>,
}

impl Presence {
    /// Presence with the offline debounce `grace`, counted in `roster`.
    pub fn new(
        grace: Duration,
        profiles: Arc<dyn Profiles>,
        tickets: Arc<dyn Tickets>,
        broker: Arc<dyn Broker>,
        roster: Arc<dyn Roster>,
    ) -> Arc<Self> {
        Arc::new(Self {
            people: DashMap::new(),
            generation: AtomicU64::new(1),
            grace,
            profiles,
            tickets,
            broker,
            roster,
        })
    }

    /// Whether each person is online anywhere. A person with a socket on this node is, without
    /// asking; the roster is asked about the others only (in a cluster it is a Redis call, made
    /// for every round of messages that may need a push, so answering from memory where memory
    /// knows saves Redis most of them). When the roster cannot be asked (Redis is down), this
    /// node's own sockets are the answer.
    pub async fn online(&self, who: &[Principal]) -> Vec<bool> {
        let mut online: Vec<bool> = who.iter().map(|w| self.people.get(w).is_some_and(|e| e.sockets > 0)).collect();
        let elsewhere: Vec<Principal> = who.iter().zip(&online).filter(|(_, here)| !**here).map(|(w, _)| *w).collect();
        if elsewhere.is_empty() {
            return online;
        }
        if let Ok(flags) = self.roster.online(&elsewhere).await {
            let mut flags = flags.into_iter();
            for here in online.iter_mut().filter(|here| !**here) {
                *here = flags.next().unwrap_or(false);
            }
        }
        online
    }

    /// Whether one person is online anywhere.
    pub async fn is_online(&self, who: Principal) -> bool {
        self.online(&[who]).await.first().copied().unwrap_or(false)
    }

    /// Whether each person has a socket open right now: [`Presence::online`] without the grace
    /// period, for notifications. A phone whose app went to the background closed its socket, and
    /// an event in the seconds after must reach it by push; presence keeps counting it online for
    /// `presence_grace_ms` so that a flapping connection announces nothing. On a single node this
    /// node's sockets are the answer; a cluster's roster records departures only after the grace
    /// period, so there an event in those seconds still counts the person as online.
    pub async fn connected_now(&self, who: &[Principal]) -> Vec<bool> {
        if self.roster.needs_upkeep() {
            return self.online(who).await;
        }
        who.iter().map(|w| self.people.get(w).is_some_and(|e| e.sockets > 0)).collect()
    }

    /// Agents online anywhere (this node's, when the roster cannot be asked).
    pub async fn online_agents(&self) -> Vec<AgentId> {
        match self.roster.online_agents().await {
            Ok(agents) => agents,
            Err(_) => self
                .people
                .iter()
                .filter_map(|e| match e.key() {
                    Principal::Agent(a) if e.sockets > 0 => Some(*a),
                    _ => None,
                })
                .collect(),
        }
    }

    /// A socket of `who` authenticated.
    pub fn connected(self: &Arc<Self>, who: Principal) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let first = {
            let mut entry = self.people.entry(who).or_insert(Entry { sockets: 0, generation, mark: generation });
            entry.sockets += 1;
            entry.generation = generation;
            if entry.sockets == 1 {
                entry.mark = generation;
            }
            entry.sockets == 1
        };
        if first {
            let this = self.clone();
            // Not tracked by the node: one roster call and an announcement, nothing to flush. If
            // shutdown drops it, nothing is lost: once this node's heartbeat lapses, another node's
            // upkeep reaps its people (on a single node the roster ends with the process).
            tokio::spawn(async move {
                match this.roster.arrived(who, generation).await {
                    Ok(true) => this.announce(who, true, None).await,
                    Ok(false) => {}
                    // Registered again, and announced if need be, when the roster is back.
                    Err(e) => tracing::warn!(error = %e, "presence not recorded"),
                }
            });
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
        // Not tracked by the node, like the arrival above: a grace timer and one roster call, nothing
        // to flush. Waiting for it would hold every shutdown for the grace period.
        tokio::spawn(async move {
            tokio::time::sleep(this.grace).await;
            // Still gone from this node, and nothing happened since: ask the roster.
            let Some((_, entry)) = this.people.remove_if(&who, |_, e| e.sockets == 0 && e.generation == generation)
            else {
                return;
            };
            match this.roster.departed(who, entry.mark).await {
                Ok(true) => this.announce(who, false, Some(left_at)).await,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "presence not recorded"),
            }
        });
    }

    /// Forgets `who` (a deleted account) on this node and in the roster, announcing nothing: their
    /// sockets are being closed, and nobody is left to tell (their tickets went with them).
    ///
    /// # Errors
    /// `unavailable` when the roster does not answer.
    pub async fn forget(&self, who: Principal) -> crate::Result<()> {
        self.people.remove(&who);
        self.roster.forget(who).await
    }

    /// Runs the roster's upkeep (cluster heartbeats, reaping dead nodes) every `every` until
    /// shutdown, announcing what it finds. Returns at once for a roster that needs none.
    pub async fn maintain(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        if !self.roster.needs_upkeep() {
            return;
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.roster.maintain().await {
                Ok(changes) => {
                    if failing {
                        tracing::info!("presence upkeep works again");
                        failing = false;
                    }
                    for c in changes {
                        self.announce(c.who, c.online, c.last_seen).await;
                    }
                }
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "presence upkeep failed: this node may look offline until it works again");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }

    async fn announce(&self, who: Principal, online: bool, left_at: Option<Millis>) {
        let mut last_seen_at = left_at;
        if let (Principal::User(u), Some(at)) = (who, left_at) {
            if let Err(e) = self.profiles.set_last_seen(u, at).await {
                tracing::warn!(error = %e, "last-seen time not stored");
            }
            if let Ok(Some(profile)) = self.profiles.profile(u).await {
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
        let audience = Audience {
            tickets: &tickets,
            principals: &principals,
            queue_watchers: matches!(who, Principal::Agent(_)),
            except: Some(who),
            broadcast: None,
        };
        self.broker.publish(&audience, Event::Presence { who, online, last_seen_at });
    }

    /// Who may see `who`'s presence: the people on their open tickets, and those tickets' followers.
    async fn entitled(&self, who: Principal) -> crate::Result<(Vec<Principal>, Vec<TicketId>)> {
        let tickets = match who {
            Principal::User(u) => self.tickets.user_tickets(u, 100).await?,
            Principal::Agent(a) => self.tickets.agent_tickets(a).await?,
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
