//! The hub's shared state: configuration and the domain services over their ports, built once at
//! start and shared (`Arc<Hub>`) by every connection.

use crate::auth::Auth;
use crate::config::Config;
use crate::quota::{MemoryQuotas, Quotas, RedisQuotas};
use crate::registry::Registry;
use crate::storage::{self, Store};
use anyhow::Context;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    /// This node's live sockets.
    pub registry: Arc<Registry>,
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
        let (quotas, clustered): (Arc<dyn Quotas>, bool) = match &config.redis_url {
            Some(url) => {
                let client = redis::Client::open(url.0.as_str()).context("parsing REDIS_URL")?;
                let manager_config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(2)))
                    .set_number_of_retries(2);
                let conn = redis::aio::ConnectionManager::new_with_config(client, manager_config)
                    .await
                    .context("connecting to Redis")?;
                (Arc::new(RedisQuotas::new(conn, &config.redis_prefix)), true)
            }
            None => (Arc::new(MemoryQuotas::new()), false),
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
        let registry = Arc::new(Registry::new());
        let auth = Auth::new(&config, key, store.clone(), quotas.clone(), sms, registry.clone())?;
        tracing::info!(storage = store.backend(), clustered, "hub ready");
        Ok(Arc::new(Self {
            config,
            store,
            quotas,
            auth,
            registry,
            shutdown: CancellationToken::new(),
            sockets: TaskTracker::new(),
            clustered,
            next_conn: AtomicU64::new(1),
        }))
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
