//! The node's services, as the gateway's sessions and HTTP handlers reach them.

use crate::config::Config;
use crate::domain::agents::AgentDesk;
use crate::domain::auth::Auth;
use crate::domain::sessions::SessionDesk;
use crate::domain::tickets::TicketDesk;
use crate::error::Result;
use crate::gateway::cluster::Cluster;
use crate::gateway::cluster::Link;
use crate::gateway::registry::Registry;
use crate::ports::broker::Broker;
use crate::ports::quota::Quotas;
use crate::ports::quota::Reach;
use crate::ports::store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The node's services as the gateway serves them: the configuration, the domain's desks over
/// their ports, and the live sockets with their fan-out. Built once by [`crate::app`] and shared
/// (`Arc<Services>`) by every connection and request.
pub struct Services {
    /// The validated configuration.
    pub config: Config,
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Rate-limit counters (memory, or Redis when clustered).
    pub quotas: Arc<dyn Quotas>,
    /// Stored objects: attachments' bytes and thumbnails.
    pub objects: Arc<dyn crate::ports::objects::Objects>,
    /// Sessions of users and agents: tokens, refresh, sign-out.
    pub sessions: Arc<SessionDesk>,
    /// Phone sign-in, devices and the account's number.
    pub auth: Auth,
    /// Support agents.
    pub agents: AgentDesk,
    /// Tickets.
    pub tickets: Arc<TicketDesk>,
    /// Uploads and the attachments of messages.
    pub attachments: Arc<crate::domain::attachments::AttachmentDesk>,
    /// Push registrations and notifications.
    pub push: Arc<crate::domain::push::PushDesk>,
    /// The hub's VAPID public key, base64url (apps subscribe to Web Push with it).
    pub vapid_public_key: String,
    /// Who is online.
    pub presence: Arc<crate::domain::presence::Presence>,
    /// Profiles and their images.
    pub profiles: crate::domain::profiles::ProfileDesk,
    /// Device and client telemetry, view patterns, settings and consent.
    pub telemetry: Arc<crate::domain::telemetry::TelemetryDesk>,
    /// Users' rights: the export and the account deletion.
    pub account: crate::domain::account::AccountDesk,
    /// Purchases and subscriptions reported by billing.
    pub billing: crate::domain::billing::BillingDesk,
    /// This node's live sockets.
    pub registry: Arc<Registry>,
    /// Fan-out: the registry itself on a single node, the cluster broker with Redis.
    pub broker: Arc<dyn Broker>,
    /// This node's part of the cluster, when clustered.
    pub cluster: Option<Arc<Cluster>>,
    /// Cancelled when shutdown begins: `/readyz` answers `503` from then on, while the node
    /// serves everything for `shutdown_drain_ms` more.
    pub draining: CancellationToken,
    /// Cancelled after the drain: new sockets are refused and uploads stop reading. The open
    /// sockets are told through [`Self::outboxes`] at the same time, and close with `1012`.
    pub shutdown: CancellationToken,
    /// Cancelled once the sockets closed (or the grace period ran out): the listener stops
    /// accepting. Until then `/readyz` answers a load balancer's checks with `503` instead of a
    /// refused connection.
    pub listening: CancellationToken,
    /// Every socket task and every export being streamed, so that shutdown can wait for them.
    pub sockets: TaskTracker,
    /// Every open socket's outbox, through which shutdown tells each socket to close.
    pub outboxes: crate::gateway::session::outbox::Outboxes,
    /// Whether Redis is configured (readiness then includes it).
    pub clustered: bool,
    /// Source of socket ids on this node.
    pub(crate) next_conn: AtomicU64,
}

impl Services {
    /// A fresh id for a socket on this node.
    pub fn next_conn_id(&self) -> crate::model::ids::ConnId {
        crate::model::ids::ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// Whether storage, the object store (and Redis, when clustered) answer within a short deadline:
    /// `Ok(None)` when all is well, `Ok(Some(what))` when the node serves with `what` degraded for
    /// every node alike, `Err(what)` when this node should not take new sockets.
    ///
    /// A Redis Cluster with a shard that does not answer while the others do is a failover under
    /// way (or a master lost for good): every node of the deployment sees the same, so reporting
    /// not ready would take them all out of the load balancer at once. The node stays ready,
    /// degraded (`redis shard`), while its pub/sub link waits for the new master, and then
    /// (`redis pub/sub`) until the link is back; the sweep delivers ticket events meanwhile. A node
    /// that reaches no Redis at all is cut off, and one whose link has not been up since it started
    /// is not serving yet: not ready. On one Redis, a link that is down is not ready too.
    pub async fn ready(&self) -> Result<Option<&'static str>, &'static str> {
        let deadline = Duration::from_secs(2);
        match tokio::time::timeout(deadline, self.store.ping()).await {
            Ok(Ok(())) => {}
            _ => return Err("storage"),
        }
        match tokio::time::timeout(deadline, self.objects.ping()).await {
            Ok(Ok(())) => {}
            _ => return Err("objects"),
        }
        if !self.clustered {
            return Ok(None);
        }
        let reach = match tokio::time::timeout(deadline, self.quotas.ping()).await {
            Ok(Ok(reach)) => reach,
            _ => return Err("redis"),
        };
        let link = self.cluster.as_ref().map_or(Link::Up, |c| c.link_state());
        match (link, reach) {
            (Link::Down, _) => Err("redis pub/sub"),
            (_, Reach::Part) => Ok(Some("redis shard")),
            (Link::Returning, Reach::All) => Ok(Some("redis pub/sub")),
            (Link::Up, Reach::All) => Ok(None),
        }
    }
}
