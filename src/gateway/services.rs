//! The node's services, as the gateway's sessions and HTTP handlers reach them.

use crate::config::Config;
use crate::domain::agents::AgentDesk;
use crate::domain::auth::Auth;
use crate::domain::tickets::TicketDesk;
use crate::error::Result;
use crate::gateway::cluster::Cluster;
use crate::gateway::registry::Registry;
use crate::model::account::{Identity, RevokeReason};
use crate::model::ids::{Principal, SessionId};
use crate::ports::broker::Broker;
use crate::ports::quota::Quotas;
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
    /// Sign-in and sessions.
    pub auth: Auth,
    /// Support agents.
    pub agents: AgentDesk,
    /// Tickets.
    pub tickets: Arc<TicketDesk>,
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
    /// Cancelled when shutdown begins: the listener stops accepting and every socket task closes
    /// its socket with `1012`.
    pub shutdown: CancellationToken,
    /// Every socket task and every export being streamed, so that shutdown can wait for them.
    pub sockets: TaskTracker,
    /// Whether Redis is configured (readiness then includes it).
    pub clustered: bool,
    /// Source of socket ids on this node.
    pub(crate) next_conn: AtomicU64,
}

impl Services {
    /// The identity behind any session token: agent tokens start with `agt_`.
    ///
    /// # Errors
    /// `unauthorized`, `unavailable`.
    pub async fn authenticate(&self, token: &str) -> Result<Identity> {
        if token.starts_with(crate::domain::agents::AGENT_TOKEN_PREFIX) {
            let (session, agent) = self.agents.authenticate(token).await?;
            Ok(Identity { who: Principal::Agent(agent.id), session: session.id, expires_at: session.expires_at })
        } else {
            let (session, user) = self.auth.authenticate(token).await?;
            Ok(Identity { who: Principal::User(user.id), session: session.id, expires_at: session.expires_at })
        }
    }

    /// The session's expiry if it is still live.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn live_session(&self, who: Principal, session: SessionId) -> Result<Option<crate::model::time::Millis>> {
        Ok(match who {
            Principal::User(_) => self.auth.live_session(session).await?.map(|s| s.expires_at),
            Principal::Agent(_) => self.agents.live_session(session).await?.map(|s| s.expires_at),
        })
    }

    /// Signs a session out and closes its sockets.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn sign_out(&self, who: Principal, session: SessionId) -> Result<()> {
        match who {
            Principal::User(user) => self.auth.sign_out(user, session).await,
            Principal::Agent(_) => {
                self.agents.sign_out(session).await?;
                self.broker.session_revoked(who, session, RevokeReason::SignedOut);
                Ok(())
            }
        }
    }

    /// A fresh id for a socket on this node.
    pub fn next_conn_id(&self) -> crate::model::ids::ConnId {
        crate::model::ids::ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// Whether storage (and Redis, when clustered) answer within a short deadline.
    pub async fn ready(&self) -> Result<(), &'static str> {
        let deadline = Duration::from_secs(2);
        match tokio::time::timeout(deadline, self.store.ping()).await {
            Ok(Ok(())) => {}
            _ => return Err("storage"),
        }
        if self.clustered {
            match tokio::time::timeout(deadline, self.quotas.ping()).await {
                Ok(Ok(())) => {}
                _ => return Err("redis"),
            }
        }
        if self.cluster.as_ref().is_some_and(|c| !c.link_up()) {
            return Err("redis pub/sub");
        }
        Ok(())
    }
}
