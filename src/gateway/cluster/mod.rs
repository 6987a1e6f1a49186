//! Several hub nodes behind one address, sharing Postgres and Redis. [`Cluster`] is the cluster's
//! [`Broker`]: it delivers to this node's sockets at once (through the [`Registry`]) and publishes
//! the same event to Redis for the other nodes.
//!
//! - **Topics.** Each node subscribes only to the Redis channels its own sockets need: one per
//!   subscribed ticket, one per connected user or agent, and the queue's (all [`QUEUE_PARTS`] of
//!   them) while an agent here watches it ([`link`]). An event goes to one channel of each topic in
//!   its audience; a node subscribed to several of them delivers it once ([`seen`]). On a Redis
//!   Cluster the channels are sharded: each lives on the shard owning its slot.
//! - **At-most-once pub/sub, exactly-once delivery.** Redis pub/sub drops what a node misses (a
//!   restart, a failover, a blip). Ticket events are stored with sequence numbers before they are
//!   published, every socket keeps a cursor per ticket and fills gaps from storage, and each node
//!   sweeps storage for tickets changed lately whose last seq it has not delivered ([`sweep`]); so a
//!   missed publish, even one lost with a node killed between commit and publish, reaches live
//!   sockets within about `cluster_sweep_ms` and a half.
//! - **Revocations** are published too, and each node re-checks the sessions of its sockets every
//!   `session_recheck_secs` and whenever its link comes back, so a missed one is late, not lost.
//! - **Redis down.** Local sockets keep working; the node reports not ready; other nodes' ticket
//!   events still arrive through the sweep; the link reconnects with backoff and re-subscribes.
//!
//! Wire format of a published envelope: the sending node's id (16 bytes), the envelope's number
//! (8 bytes, big-endian, increasing per node in publication order), then the [`Body`] in MessagePack.
//! A body carries the product event, not a client frame: each node renders it for its own sockets.
//! Nodes of one cluster run the same version; a body another version wrote is logged and dropped,
//! and the sweep delivers its ticket events from storage.

mod link;
mod seen;
mod sweep;

use crate::adapters::redis::{publish, Connection, Redis};
use crate::config::Config;
use crate::domain::tickets::queue::Queue;
use crate::gateway::registry::Registry;
use crate::model::account::RevokeReason;
use crate::model::event::Event;
use crate::model::ids::{AgentId, Principal, SessionId, TicketId};
use crate::ports::broker::{Audience, Broker, Topic};
use crate::ports::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// Envelopes waiting for the publisher; past this, events are dropped (and recovered by the sweep).
const PUBLISH_QUEUE: usize = 16_384;
/// Envelopes sent to Redis in one pipeline at most.
const PUBLISH_BATCH: usize = 512;
/// How long one pipeline may take before Redis counts as unreachable.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// Revocations kept for another try while Redis is unreachable.
const MAX_RETRIED: usize = 10_000;
/// Length of the envelope header: node id and number.
const HEADER: usize = 24;
/// Channels the queue's events are spread over. A node with an agent watching the queue follows
/// every one; an event goes to one, chosen by its ticket (so one ticket's queue events keep their
/// order). Every ticket's change goes to the queue, so on one channel the shard owning its slot
/// would carry a share of the fan-out that no number of shards takes off it.
const QUEUE_PARTS: u16 = 16;

/// What an envelope carries.
#[derive(Debug, Serialize, Deserialize)]
enum Body {
    /// An event for an audience; each node renders it for its own sockets.
    Event {
        tickets: Vec<TicketId>,
        principals: Vec<Principal>,
        queue_watchers: bool,
        except: Option<Principal>,
        broadcast: Option<crate::ports::broker::Broadcast>,
        event: Box<Event>,
    },
    /// See [`Broker::session_revoked`].
    SessionRevoked { who: Principal, session: SessionId, reason: RevokeReason },
    /// See [`Broker::agent_disabled`].
    AgentDisabled { agent: AgentId },
    /// See [`Broker::queue_changed`].
    QueueChanged { claims: u32 },
}

/// An envelope on its way to Redis.
struct Outgoing {
    channels: Vec<String>,
    body: Vec<u8>,
    /// Revocations are retried while Redis is unreachable; events are not (storage has them).
    retried: bool,
}

/// The state of a node's pub/sub link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Subscribed to everything this node's sockets need.
    Up,
    /// Down on a Redis Cluster after it was up: a shard changed hands (or is changing them) and the
    /// link reconnects with backoff, at most [`link::BACKOFF_MAX`] after Redis answers again. Every
    /// node sees the same; the sweep delivers ticket events meanwhile.
    Returning,
    /// Down on one Redis, or not up yet since the node started.
    Down,
}

/// This node's part of the cluster.
pub struct Cluster {
    node: Uuid,
    channel_prefix: String,
    /// The queue's channels, [`QUEUE_PARTS`] of them, each under a hash tag that puts it on its
    /// own stretch of slots.
    queue_channels: Vec<String>,
    registry: Arc<Registry>,
    /// Woken when another node's queue changed.
    queue: Arc<Queue>,
    /// What the sweep and the session re-check read, and what is told the ticket states other nodes
    /// stored (see
    /// [`Tickets::stored_elsewhere`](crate::ports::store::tickets::Tickets::stored_elsewhere)).
    store: Arc<dyn Store>,
    outgoing: mpsc::Sender<Outgoing>,
    link_up: AtomicBool,
    /// Whether the link was ever up (a node that is starting is not ready until it is).
    link_was_up: AtomicBool,
    /// Whether Redis is a Redis Cluster.
    sharded: bool,
    /// Woken when the link comes back: the sessions of local sockets are checked again.
    link_back: Notify,
}

impl Cluster {
    /// Starts the node's publisher, its Redis pub/sub link, the storage sweep and the session
    /// re-check on `tasks`, all stopping at `shutdown` (the publisher once it sent what is queued).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        config: &Config,
        node: Uuid,
        redis: Redis,
        registry: Arc<Registry>,
        queue: Arc<Queue>,
        store: Arc<dyn Store>,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(PUBLISH_QUEUE);
        let cluster = Arc::new(Self {
            node,
            channel_prefix: format!("{}ch:", config.redis_prefix),
            queue_channels: crate::adapters::redis::spread_tags("queue", QUEUE_PARTS)
                .into_iter()
                .map(|tag| format!("{}ch:{{{tag}}}", config.redis_prefix))
                .collect(),
            registry,
            queue,
            store,
            outgoing: tx,
            link_up: AtomicBool::new(false),
            link_was_up: AtomicBool::new(false),
            sharded: matches!(redis.links, crate::adapters::redis::Links::Cluster(_)),
            link_back: Notify::new(),
        });
        tasks.spawn(cluster.clone().publisher(rx, redis.conn, shutdown.clone()));
        tasks.spawn(cluster.clone().link(redis.links, shutdown.clone()));
        tasks.spawn(sweep::sweep(cluster.clone(), Duration::from_millis(config.cluster_sweep_ms), shutdown.clone()));
        tasks.spawn(sweep::recheck_sessions(
            cluster.clone(),
            Duration::from_secs(config.session_recheck_secs),
            shutdown,
        ));
        cluster
    }

    /// This node's id (random per process).
    pub fn node(&self) -> Uuid {
        self.node
    }

    /// Whether the Redis pub/sub link is up.
    pub fn link_up(&self) -> bool {
        self.link_up.load(Ordering::Relaxed)
    }

    /// The pub/sub link, for readiness.
    pub fn link_state(&self) -> Link {
        if self.link_up() {
            Link::Up
        } else if self.sharded && self.link_was_up.load(Ordering::Relaxed) {
            Link::Returning
        } else {
            Link::Down
        }
    }

    /// Waits up to `limit` for the link to come up (at start, so that a node is ready once built).
    pub async fn wait_for_link(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.link_up() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// The channels a node follows for `topic`: one, or every part of the queue.
    fn channels(&self, topic: Topic) -> Vec<String> {
        match topic {
            Topic::Queue => self.queue_channels.clone(),
            _ => vec![self.channel(topic, None)],
        }
    }

    /// The channel an event for `topic` goes to: the queue's part is chosen by `ticket`.
    fn channel(&self, topic: Topic, ticket: Option<TicketId>) -> String {
        match topic {
            Topic::Queue => {
                let part = ticket.map_or(0, |t| t.0.as_u128() as usize % self.queue_channels.len());
                self.queue_channels[part].clone()
            }
            _ => format!("{}{}", self.channel_prefix, topic.name()),
        }
    }

    fn send(&self, topics: Vec<Topic>, ticket: Option<TicketId>, body: &Body, retried: bool) {
        if topics.is_empty() {
            return;
        }
        let body = match crate::protocol::to_msgpack(body) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cluster envelope not encoded");
                return;
            }
        };
        let channels = topics.into_iter().map(|t| self.channel(t, ticket)).collect();
        if self.outgoing.try_send(Outgoing { channels, body, retried }).is_err() {
            metrics::counter!(crate::metrics::CLUSTER_PUBLISH_DROPPED).increment(1);
        }
    }

    /// Sends envelopes to Redis in batches, numbering them in the order they go out (receivers
    /// drop a number they have seen, which is how an envelope on several channels arrives once).
    /// At `shutdown` it refuses new envelopes, sends those already queued (one try each), and
    /// returns.
    async fn publisher(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Outgoing>,
        mut conn: Connection,
        shutdown: CancellationToken,
    ) {
        let mut number: u64 = 0;
        let mut batch: Vec<Outgoing> = Vec::with_capacity(PUBLISH_BATCH);
        let mut retry: VecDeque<Outgoing> = VecDeque::new();
        let mut failing = false;
        let mut stopping = false;
        loop {
            let wait_retry = async {
                if retry.is_empty() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            tokio::select! {
                _ = shutdown.cancelled(), if !stopping => {
                    // The events of the last commits are queued: they still go out.
                    rx.close();
                    stopping = true;
                    continue;
                }
                n = rx.recv_many(&mut batch, PUBLISH_BATCH) => if n == 0 { return },
                _ = wait_retry, if !stopping => {}
            }
            let mut all: Vec<Outgoing> = retry.drain(..).chain(batch.drain(..)).collect();
            let payloads: Vec<Vec<u8>> = all
                .iter()
                .map(|o| {
                    number += 1;
                    let mut payload = Vec::with_capacity(HEADER + o.body.len());
                    payload.extend_from_slice(self.node.as_bytes());
                    payload.extend_from_slice(&number.to_be_bytes());
                    payload.extend_from_slice(&o.body);
                    payload
                })
                .collect();
            let items: Vec<(&str, &[u8])> = all
                .iter()
                .zip(&payloads)
                .flat_map(|(o, payload)| o.channels.iter().map(move |c| (c.as_str(), payload.as_slice())))
                .collect();
            match tokio::time::timeout(PUBLISH_TIMEOUT, publish(&mut conn, &items)).await {
                Ok(Ok(())) => {
                    metrics::counter!(crate::metrics::CLUSTER_PUBLISHED).increment(all.len() as u64);
                    if failing {
                        tracing::info!("publishing to Redis works again");
                        failing = false;
                    }
                }
                outcome => {
                    if !failing {
                        let error = match outcome {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timed out".into(),
                        };
                        tracing::warn!(%error, "publishing to Redis failed: other nodes get events through the storage sweep until it works again");
                        failing = true;
                    }
                    let before = all.len();
                    all.retain(|o| o.retried);
                    let kept = all.len().min(MAX_RETRIED.saturating_sub(retry.len()));
                    retry.extend(all.into_iter().take(kept));
                    metrics::counter!(crate::metrics::CLUSTER_PUBLISH_DROPPED).increment((before - kept) as u64);
                }
            }
        }
    }

    /// Delivers an envelope from another node to this node's sockets.
    fn deliver(&self, payload: &[u8], seen: &mut std::collections::HashMap<Uuid, seen::Seen>) {
        if payload.len() < HEADER {
            return;
        }
        let (node, rest) = payload.split_at(16);
        let (number, body) = rest.split_at(8);
        let Ok(node) = Uuid::from_slice(node) else { return };
        if node == self.node {
            return; // delivered locally when it was published
        }
        let number = u64::from_be_bytes(number.try_into().unwrap_or([0; 8]));
        if !seen.entry(node).or_default().first_time(number) {
            return; // the same envelope through another of this node's channels
        }
        metrics::counter!(crate::metrics::CLUSTER_RECEIVED).increment(1);
        match crate::protocol::from_msgpack::<Body>(body) {
            Ok(Body::Event { tickets, principals, queue_watchers, except, broadcast, event }) => {
                if let Event::TicketUpdated(ticket) = &*event {
                    self.store.stored_elsewhere(ticket);
                }
                let audience =
                    Audience { tickets: &tickets, principals: &principals, queue_watchers, except, broadcast };
                self.registry.publish(&audience, *event);
            }
            Ok(Body::SessionRevoked { who, session, reason }) => self.registry.session_revoked(who, session, reason),
            Ok(Body::AgentDisabled { agent }) => self.registry.agent_disabled(agent),
            Ok(Body::QueueChanged { claims }) => self.queue.changed_elsewhere(claims),
            Err(e) => tracing::warn!(error = %e, "cluster envelope not understood (a node of another version?)"),
        }
    }
}

impl Broker for Cluster {
    fn publish(&self, audience: &Audience<'_>, event: Event) {
        self.registry.deliver(audience, crate::gateway::render::frame(&event));
        let body = Body::Event {
            tickets: audience.tickets.to_vec(),
            principals: audience.principals.to_vec(),
            queue_watchers: audience.queue_watchers,
            except: audience.except,
            broadcast: audience.broadcast,
            event: Box::new(event),
        };
        self.send(audience.topics(), audience.tickets.first().copied(), &body, false);
    }

    fn tell_here(&self, audience: &Audience<'_>, event: Event) {
        self.registry.publish(audience, event);
    }

    fn queue_changed(&self, claims: u32) {
        self.send(vec![Topic::Everyone], None, &Body::QueueChanged { claims }, false);
    }

    fn session_revoked(&self, who: Principal, session: SessionId, reason: RevokeReason) {
        self.registry.session_revoked(who, session, reason);
        self.send(vec![Topic::Principal(who)], None, &Body::SessionRevoked { who, session, reason }, true);
    }

    fn agent_disabled(&self, agent: AgentId) {
        self.registry.agent_disabled(agent);
        self.send(vec![Topic::Principal(Principal::Agent(agent))], None, &Body::AgentDisabled { agent }, true);
    }
}
