//! The hub's shared state: configuration and the domain services over their ports, built once at
//! start and shared (`Arc<Hub>`) by every connection.

use crate::agents::AgentDesk;
use crate::auth::{Auth, RevokeReason};
use crate::broker::Broker;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ids::{Principal, SessionId};
use crate::presence::{MemoryRoster, RedisRoster, Roster};
use crate::quota::{MemoryQuotas, Quotas, RedisQuotas};
use crate::registry::Registry;
use crate::session::Identity;
use crate::storage::{self, Store};
use crate::tickets::queue::Queue;
use crate::tickets::writer::{MessageWriter, WriterConfig};
use crate::tickets::SupportDesk;
use anyhow::Context;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often each node checks whether its online agents were disabled.
pub const AGENT_WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// Everything a connection needs.
pub struct Hub {
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
    pub support: Arc<SupportDesk>,
    /// Who is online.
    pub presence: Arc<crate::presence::Presence>,
    /// Profiles and their images.
    pub profiles: crate::profiles::ProfileDesk,
    /// Device and client telemetry, view patterns, settings and consent.
    pub usage: Arc<crate::usage::UsageDesk>,
    /// Users' rights: the export and the account deletion.
    pub account: crate::account::AccountDesk,
    /// Purchases and subscriptions reported by billing.
    pub billing: crate::billing::BillingDesk,
    /// This node's live sockets.
    pub registry: Arc<Registry>,
    /// Fan-out: the registry itself on a single node, the cluster broker with Redis.
    pub broker: Arc<dyn Broker>,
    /// This node's part of the cluster, when clustered.
    pub cluster: Option<Arc<Cluster>>,
    /// Cancelled when the hub shuts down; every socket task watches it.
    pub shutdown: CancellationToken,
    /// Every socket task, so that shutdown can wait for them.
    pub sockets: TaskTracker,
    /// Whether Redis is configured (readiness then includes it).
    pub clustered: bool,
    next_conn: AtomicU64,
}

impl Hub {
    /// Connects storage (running migrations) and Redis, and builds the services.
    ///
    /// # Errors
    /// Storage or Redis cannot be reached, or the configuration is inconsistent.
    pub async fn build(config: Config) -> anyhow::Result<Arc<Self>> {
        config.validate()?;
        let store = storage::connect(&config).await.context("connecting to storage")?;
        let redis = match &config.redis_url {
            Some(url) => {
                let client = redis::Client::open(url.0.as_str()).context("parsing REDIS_URL")?;
                let manager_config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(2)))
                    .set_number_of_retries(2);
                let conn = redis::aio::ConnectionManager::new_with_config(client.clone(), manager_config)
                    .await
                    .context("connecting to Redis")?;
                Some((client, conn))
            }
            None => None,
        };
        let clustered = redis.is_some();
        let quotas: Arc<dyn Quotas> = match &redis {
            Some((_, conn)) => Arc::new(RedisQuotas::new(conn.clone(), &config.redis_prefix)),
            None => Arc::new(MemoryQuotas::new()),
        };
        let key = match &config.secret {
            Some(secret) => Sha256::digest(secret.0.as_bytes()).to_vec(),
            None => {
                let mut candidate = [0u8; 32];
                rand::rng().fill_bytes(&mut candidate);
                store.key_or_insert("hmac", &candidate).await.context("loading the hub key")?
            }
        };
        let sms = crate::sms::build(&config.sms, Duration::from_millis(config.sms_timeout_ms), config.sms_retries)?;
        let shutdown = CancellationToken::new();
        let (registry, broker, roster, cluster): (Arc<Registry>, Arc<dyn Broker>, Arc<dyn Roster>, _) = match redis {
            Some((client, conn)) => {
                let registry = Arc::new(Registry::clustered());
                let node = uuid::Uuid::new_v4();
                let roster = RedisRoster::new(
                    conn.clone(),
                    &config.redis_prefix,
                    &node.simple().to_string(),
                    Duration::from_millis(config.presence_node_ttl_ms),
                );
                // The first heartbeat, before any socket: people here count as online from the start.
                roster.maintain().await.context("registering the node in Redis")?;
                let cluster =
                    Cluster::start(&config, node, client, conn, registry.clone(), store.clone(), shutdown.clone());
                if !cluster.wait_for_link(Duration::from_secs(5)).await {
                    tracing::warn!("redis pub/sub link not up yet: the node reports not ready until it is");
                }
                (registry, cluster.clone() as Arc<dyn Broker>, Arc::new(roster) as Arc<dyn Roster>, Some(cluster))
            }
            None => {
                let registry = Arc::new(Registry::new());
                (registry.clone(), registry as Arc<dyn Broker>, Arc::new(MemoryRoster::new()) as Arc<dyn Roster>, None)
            }
        };
        let auth = Auth::new(&config, key, store.clone(), quotas.clone(), sms, broker.clone())?;
        let agents = AgentDesk::new(
            store.clone(),
            quotas.clone(),
            Duration::from_secs(config.agent_session_ttl_secs),
            config.max_body_chars,
        )?;
        let writer = MessageWriter::start(
            store.clone(),
            WriterConfig {
                queue: config.message_queue,
                max_batch: config.message_batch,
                // SQLite has one writer: more transactions in flight would only wait on its lock.
                concurrency: if store.backend() == "postgres" { config.message_writers } else { 1 },
                timeout: Duration::from_millis(config.db_timeout_ms),
            },
        );
        let queue = Queue::new(config.auto_assign);
        let support =
            Arc::new(SupportDesk::new(store.clone(), writer, broker.clone(), queue.clone(), config.max_body_chars));
        let presence = crate::presence::Presence::new(
            Duration::from_millis(config.presence_grace_ms),
            store.clone(),
            broker.clone(),
            roster,
        );
        tokio::spawn(
            presence.clone().maintain(Duration::from_millis(config.presence_node_ttl_ms / 3), shutdown.clone()),
        );
        let profiles = crate::profiles::ProfileDesk::new(
            store.clone(),
            broker.clone(),
            presence.clone(),
            config.media_dir.clone(),
            crate::profiles::image::ImagePolicy {
                max_bytes: config.max_image_bytes,
                max_side: config.max_image_side,
                out_side: 512,
            },
        );
        let usage = Arc::new(crate::usage::UsageDesk::new(store.clone(), broker.clone(), &config));
        tokio::spawn(crate::usage::retention::purge_loop(
            usage.clone(),
            Duration::from_millis(config.telemetry_purge_interval_ms),
            shutdown.clone(),
        ));
        let account = crate::account::AccountDesk::new(store.clone(), quotas.clone(), broker.clone(), presence.clone());
        let billing = crate::billing::BillingDesk::new(store.clone(), broker.clone(), &config);
        tokio::spawn(queue.run(support.clone(), store.clone(), broker.clone(), presence.clone(), shutdown.clone()));
        tracing::info!(storage = store.backend(), clustered, "hub ready");
        let hub = Arc::new(Self {
            config,
            store,
            quotas,
            auth,
            agents,
            support,
            presence,
            profiles,
            usage,
            account,
            billing,
            registry,
            broker,
            cluster,
            shutdown,
            sockets: TaskTracker::new(),
            clustered,
            next_conn: AtomicU64::new(1),
        });
        tokio::spawn(hub.clone().watch_disabled_agents());
        Ok(hub)
    }

    /// The identity behind any session token: agent tokens start with `agt_`.
    ///
    /// # Errors
    /// `unauthorized`, `unavailable`.
    pub async fn authenticate(&self, token: &str) -> Result<Identity> {
        if token.starts_with(crate::agents::AGENT_TOKEN_PREFIX) {
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
    pub async fn live_session(&self, who: Principal, session: SessionId) -> Result<Option<crate::time::Millis>> {
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

    /// Closes the sockets of agents an operator disabled (`anapars-hub agent disable` runs in
    /// another process and only changes the database), checking the online agents every
    /// [`AGENT_WATCH_INTERVAL`].
    async fn watch_disabled_agents(self: Arc<Self>) {
        let mut tick = tokio::time::interval(AGENT_WATCH_INTERVAL);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            for id in self.registry.online_agents() {
                match self.store.agent(id).await {
                    Ok(Some(agent)) if agent.disabled_at.is_none() => {}
                    Ok(_) => {
                        tracing::info!(agent_id = %id, "agent disabled: closing their sockets");
                        self.registry.agent_disabled(id);
                    }
                    Err(Error::Unavailable) => break,
                    Err(e) => tracing::warn!(error = %e, "agent check failed"),
                }
            }
        }
    }

    /// A fresh id for a socket on this node.
    pub fn next_conn_id(&self) -> crate::ids::ConnId {
        crate::ids::ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
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

    /// Deletes expired codes and long-dead sessions, forever, every `every`.
    pub async fn purge_loop(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = crate::time::now_ms();
            // Sessions are kept a day past their end so "signed out" can still be told apart from
            // "never existed" in the logs of that day.
            let day = 86_400_000;
            match (self.store.purge_codes(now).await, self.store.purge_sessions(now - day).await) {
                (Ok(codes), Ok(sessions)) => tracing::debug!(codes, sessions, "purged expired sign-in data"),
                (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "purge failed; retrying next round"),
            }
        }
    }
}
