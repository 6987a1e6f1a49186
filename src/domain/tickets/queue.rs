//! The queue's background work: auto-assignment and the waiting users' positions.
//!
//! Any change to the queue (a ticket opened, reopened, claimed, transferred or resolved; an agent
//! becoming available or connecting) wakes one task per node. It hands the oldest waiting tickets to
//! the online, available agents with the most free capacity (when `auto_assign` is on), then tells
//! each waiting user whose position changed where they are and how long the wait may be. Wake-ups
//! arriving while a round runs are coalesced into one more round, so a burst of changes costs at
//! most two rounds. Assignments are guarded compare-and-set transitions, so two nodes racing for the
//! same ticket cannot both assign it.
//!
//! In a cluster every node works out the same positions, so each tells only its own sockets, and
//! after a round woken by a change of its own it tells the other nodes that the queue changed (and
//! how many claims it saw), so that theirs run too: a claim through one node moves the users waiting
//! on every node at once, each told once, and each node's wait estimate counts the claims of the
//! whole deployment.
//!
//! Assignment runs only where the change happened, not on every node it is told to: every change
//! (a ticket opened, an agent freed) is made on some node, whose round assigns what it made
//! assignable; the nodes told of it would only race that round for the same tickets, each reading the
//! team and the queue to lose the compare-and-set. So a change costs the deployment one assignment
//! round, however many nodes it has. Every node still assigns at its [`SAFETY_TICK`] round, which
//! catches a round that failed on the node of the change (storage unreachable for a moment) and
//! assumes every node runs with the same `auto_assign`.

use crate::domain::tickets::TicketDesk;
use crate::model::agent::AgentStatus;
use crate::model::event::Event;
use crate::model::ids::{AgentId, Principal, TicketId, UserId};
use crate::model::ticket::{Author, Ticket, TicketStatus, Transition};
use crate::model::time::now_ms;
use crate::ports::broker::{Audience, Broker};
use crate::ports::store::agents::Agents;
use crate::ports::store::tickets::Tickets;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Queue rounds also run this often without a change, to catch changes made on other nodes.
const SAFETY_TICK: Duration = Duration::from_secs(5);
/// Most open tickets looked at per round.
const ROUND_LIMIT: u32 = 500;
/// Claims seen before the hub starts estimating waits.
const MIN_SAMPLES: u32 = 3;
/// Weight of the newest claim interval in the moving average.
const EWMA_WEIGHT: f64 = 0.2;
/// Claims of another node counted from one notice at most (they count as spread evenly since the
/// last claim counted, one sample each).
const MAX_CLAIMS_TOLD: u32 = 64;

#[derive(Default)]
struct ClaimRate {
    last: Option<Instant>,
    interval_ms: Option<f64>,
    samples: u32,
}

/// What woke a queue round.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// A change on this node.
    Here,
    /// A change another node told of.
    Elsewhere,
    /// The [`SAFETY_TICK`].
    Tick,
}

/// Queue state shared by the desk and the background task.
pub struct Queue {
    /// A change on this node: the round that follows tells the other nodes.
    wake: Notify,
    /// A change another node told of.
    wake_from_elsewhere: Notify,
    rate: Mutex<ClaimRate>,
    /// Claims on this node the other nodes have not been told of.
    claims_untold: AtomicU32,
    /// The waiting tickets' places as this node's last round told them, by user: what a user's new
    /// socket is told at once. Held while a round tells its places, so that a new socket hears a
    /// place either before the round's or as the round's, never an older one after a newer.
    places: Mutex<HashMap<UserId, Vec<(TicketId, u32)>>>,
    auto_assign: bool,
}

impl Queue {
    /// A queue; `auto_assign` hands waiting tickets to available agents.
    pub fn new(auto_assign: bool) -> Arc<Self> {
        Arc::new(Self {
            wake: Notify::new(),
            wake_from_elsewhere: Notify::new(),
            rate: Mutex::new(ClaimRate::default()),
            claims_untold: AtomicU32::new(0),
            places: Mutex::new(HashMap::new()),
            auto_assign,
        })
    }

    /// Something about the queue changed: run a round soon.
    pub fn changed(&self) {
        self.wake.notify_one();
    }

    /// Another node's queue changed, with `claims` claims there: count them, run a round soon.
    pub fn changed_elsewhere(&self, claims: u32) {
        self.count_claims(claims.min(MAX_CLAIMS_TOLD));
        self.wake_from_elsewhere.notify_one();
    }

    /// A ticket left the queue by a claim: feeds the wait estimate (the average time between claims).
    pub fn claimed(&self) {
        self.claims_untold.fetch_add(1, Ordering::Relaxed);
        self.count_claims(1);
    }

    /// Counts `claims` made since the last one counted, as evenly spread over the time between: a
    /// notice of several claims from another node is that many intervals of its share of the
    /// time, not a burst of intervals of nothing. The first claim ever only starts the clock.
    fn count_claims(&self, claims: u32) {
        if claims == 0 {
            return;
        }
        let now = Instant::now();
        let mut rate = self.rate.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = rate.last {
            let interval = now.duration_since(last).as_secs_f64() * 1000.0 / f64::from(claims);
            for _ in 0..claims {
                rate.interval_ms = Some(match rate.interval_ms {
                    Some(avg) => avg * (1.0 - EWMA_WEIGHT) + interval * EWMA_WEIGHT,
                    None => interval,
                });
            }
            rate.samples += claims;
        }
        rate.last = Some(now);
    }

    /// Estimated wait for the ticket at `position` (1 = next), once enough claims were seen.
    pub fn estimate(&self, position: u32) -> Option<u64> {
        let rate = self.rate.lock().unwrap_or_else(|p| p.into_inner());
        match rate.interval_ms {
            Some(avg) if rate.samples >= MIN_SAMPLES => Some((avg * f64::from(position)) as u64),
            _ => None,
        }
    }

    /// Runs rounds until shutdown.
    pub async fn run(
        self: Arc<Self>,
        desk: Arc<TicketDesk>,
        tickets: Arc<dyn Tickets>,
        agents: Arc<dyn Agents>,
        broker: Arc<dyn Broker>,
        presence: Arc<crate::domain::presence::Presence>,
        shutdown: CancellationToken,
    ) {
        let mut positions: HashMap<TicketId, u32> = HashMap::new();
        let mut gauges = SupportGauges::default();
        loop {
            let wake = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => Wake::Here,
                _ = self.wake_from_elsewhere.notified() => Wake::Elsewhere,
                _ = tokio::time::sleep(SAFETY_TICK) => Wake::Tick,
            };
            let mut open = tickets.tickets_with_status(TicketStatus::Open, ROUND_LIMIT).await;
            if self.auto_assign && wake != Wake::Elsewhere {
                if let Some(waiting) = open.as_ref().ok().filter(|waiting| !waiting.is_empty()) {
                    match self.assign(waiting, &desk, tickets.as_ref(), agents.as_ref(), &presence).await {
                        // What was handed out left the queue: the positions come from the queue as
                        // it is now.
                        Ok(true) => open = tickets.tickets_with_status(TicketStatus::Open, ROUND_LIMIT).await,
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "auto-assignment round failed; retrying on the next change")
                        }
                    }
                }
            }
            match open {
                Ok(open) => {
                    positions = self.tell_positions(&open, positions, broker.as_ref());
                    if gauges.due() {
                        gauges.record(&open, tickets.as_ref(), agents.as_ref(), &presence).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "queue positions not updated"),
            }
            if wake == Wake::Here {
                broker.queue_changed(self.claims_untold.swap(0, Ordering::Relaxed));
            }
        }
    }

    /// Hands the `waiting` tickets (oldest first) to the online, available agents with free
    /// capacity: whether it tried to hand out any (then the queue changed, or another node took them
    /// first). The team is read in one query, however many agents are online.
    async fn assign(
        &self,
        waiting: &[Ticket],
        desk: &TicketDesk,
        tickets: &dyn Tickets,
        agents: &dyn Agents,
        presence: &crate::domain::presence::Presence,
    ) -> crate::Result<bool> {
        metrics::counter!(crate::metrics::AUTO_ASSIGN_ROUNDS).increment(1);
        let online: HashSet<AgentId> = presence.online_agents().await.into_iter().collect();
        if online.is_empty() {
            return Ok(false);
        }
        let counts: HashMap<AgentId, u32> = tickets.assigned_counts().await?.into_iter().collect();
        let mut free: Vec<(AgentId, u32)> = agents
            .agents()
            .await?
            .into_iter()
            .filter(|a| online.contains(&a.id) && a.disabled_at.is_none() && a.status == AgentStatus::Available)
            .filter_map(|a| {
                let held = counts.get(&a.id).copied().unwrap_or(0);
                (held < a.capacity).then_some((a.id, a.capacity - held))
            })
            .collect();
        let mut tried = false;
        for ticket in waiting {
            // Most free capacity first; ties go to the smaller id so every node picks alike.
            free.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let Some((agent, slots)) = free.first_mut().filter(|(_, s)| *s > 0) else { break };
            tried = true;
            let assigned = desk.apply(Transition::claim(ticket.id, *agent, Author::System, now_ms())).await;
            if assigned.is_ok() {
                tracing::info!(ticket_id = %ticket.id, agent_id = %agent, "ticket auto-assigned");
                *slots -= 1;
            }
        }
        Ok(tried)
    }

    /// Tells the users whose tickets' places changed since `before` (this node's sockets only),
    /// and keeps the places for the users' new sockets ([`Queue::places_of`]).
    fn tell_positions(
        &self,
        open: &[Ticket],
        before: HashMap<TicketId, u32>,
        broker: &dyn Broker,
    ) -> HashMap<TicketId, u32> {
        let mut now = HashMap::with_capacity(open.len());
        let mut places: HashMap<UserId, Vec<(TicketId, u32)>> = HashMap::new();
        let mut kept = self.places.lock().unwrap_or_else(|p| p.into_inner());
        for (i, t) in open.iter().enumerate() {
            let position = i as u32 + 1;
            now.insert(t.id, position);
            places.entry(t.user_id).or_default().push((t.id, position));
            if before.get(&t.id) != Some(&position) {
                let event =
                    Event::QueuePosition { ticket_id: t.id, position, estimated_wait_ms: self.estimate(position) };
                let owner = [Principal::User(t.user_id)];
                broker.tell_here(&Audience { principals: &owner, ..Audience::default() }, event);
            }
        }
        *kept = places;
        now
    }

    /// Gives `tell` the places of `user`'s waiting tickets as this node's last round saw them (the
    /// queue as it was at most one safety round ago, or at the last change): a socket that connects
    /// while its ticket waits learns its place at once instead of at the next move.
    pub fn places_of(&self, user: UserId, mut tell: impl FnMut(Event)) {
        let places = self.places.lock().unwrap_or_else(|p| p.into_inner());
        for &(ticket_id, position) in places.get(&user).into_iter().flatten() {
            tell(Event::QueuePosition { ticket_id, position, estimated_wait_ms: self.estimate(position) });
        }
    }
}

/// What a support lead watches, as gauges: the queue's length and oldest wait, the connected
/// agents by status, and each agent's load against their capacity. Every node reports the whole
/// deployment's figures (read from storage and the roster), at most every [`SAFETY_TICK`].
#[derive(Default)]
struct SupportGauges {
    last: Option<Instant>,
    /// Agents with a load gauge: set to 0 once they neither hold tickets nor are connected.
    reported: HashSet<AgentId>,
}

impl SupportGauges {
    fn due(&self) -> bool {
        self.last.is_none_or(|at| at.elapsed() >= SAFETY_TICK)
    }

    async fn record(
        &mut self,
        open: &[Ticket],
        tickets: &dyn Tickets,
        agents: &dyn Agents,
        presence: &crate::domain::presence::Presence,
    ) {
        self.last = Some(Instant::now());
        let now = now_ms();
        let waiting =
            if open.len() < ROUND_LIMIT as usize { Ok(open.len() as u64) } else { tickets.queue_length().await };
        match waiting {
            Ok(n) => metrics::gauge!(crate::metrics::QUEUE_TICKETS).set(n as f64),
            Err(e) => tracing::warn!(error = %e, "queue length not measured"),
        }
        let oldest = open.iter().map(|t| t.queued_at.unwrap_or(t.created_at)).min();
        let wait_ms = oldest.map_or(0, |at| now.saturating_sub(at));
        metrics::gauge!(crate::metrics::QUEUE_OLDEST_WAIT).set(wait_ms as f64 / 1000.0);

        let (held, team) = match (tickets.assigned_counts().await, agents.agents().await) {
            (Ok(held), Ok(team)) => (held.into_iter().collect::<HashMap<AgentId, u32>>(), team),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "agent gauges not measured");
                return;
            }
        };
        let online: HashSet<AgentId> = presence.online_agents().await.into_iter().collect();
        let mut by_status: HashMap<AgentStatus, u32> = HashMap::new();
        let mut free = 0u64;
        let mut now_reported = HashSet::new();
        for agent in team.iter().filter(|a| a.disabled_at.is_none()) {
            let load = held.get(&agent.id).copied().unwrap_or(0);
            let connected = online.contains(&agent.id);
            if connected {
                *by_status.entry(agent.status).or_default() += 1;
                if agent.status == AgentStatus::Available {
                    free += u64::from(agent.capacity.saturating_sub(load));
                }
            }
            if connected || load > 0 {
                let id = agent.id.to_string();
                metrics::gauge!(crate::metrics::AGENT_TICKETS, "agent_id" => id.clone()).set(f64::from(load));
                metrics::gauge!(crate::metrics::AGENT_CAPACITY, "agent_id" => id).set(f64::from(agent.capacity));
                now_reported.insert(agent.id);
            }
        }
        for gone in self.reported.difference(&now_reported) {
            metrics::gauge!(crate::metrics::AGENT_TICKETS, "agent_id" => gone.to_string()).set(0.0);
        }
        self.reported = now_reported;
        for status in [AgentStatus::Available, AgentStatus::Busy, AgentStatus::Away] {
            let n = by_status.get(&status).copied().unwrap_or(0);
            metrics::gauge!(crate::metrics::AGENTS_ONLINE, "status" => status.as_str()).set(f64::from(n));
        }
        metrics::gauge!(crate::metrics::AGENTS_FREE_CAPACITY).set(free as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_need_samples_and_scale_with_position() {
        let q = Queue::new(false);
        assert_eq!(q.estimate(1), None);
        {
            let mut rate = q.rate.lock().unwrap();
            rate.interval_ms = Some(1000.0);
            rate.samples = MIN_SAMPLES;
        }
        assert_eq!(q.estimate(1), Some(1000));
        assert_eq!(q.estimate(3), Some(3000));
    }

    #[test]
    fn claims_on_other_nodes_count_toward_the_estimate_and_are_not_told_back() {
        let q = Queue::new(false);
        q.claimed();
        assert_eq!(q.claims_untold.swap(0, Ordering::Relaxed), 1);
        std::thread::sleep(Duration::from_millis(40));
        // Four claims elsewhere in those 40 ms: four intervals of about 10 ms, not one of 40 and
        // three of nothing.
        q.changed_elsewhere(MIN_SAMPLES + 1);
        let one = q.estimate(1).expect("four intervals are enough samples");
        assert!((9..=14).contains(&one), "claims told together are spread over the time since the last: {one} ms");
        assert_eq!(q.claims_untold.load(Ordering::Relaxed), 0, "not told back to the other nodes");
        q.claimed();
        q.claimed();
        assert_eq!(q.claims_untold.swap(0, Ordering::Relaxed), 2);
    }
}
