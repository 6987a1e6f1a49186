//! The composition root: builds every adapter, desk and gateway part from the configuration, wires
//! them together, and owns every task of the node: the listener and the socket tasks, the batchers,
//! the cluster's links and the background loops all run on trackers held here, and
//! [`App::shutdown`] stops them in order:
//!
//! 0. answer `503` on `/readyz` while serving everything for `shutdown_drain_ms` (the load
//!    balancer's time to notice);
//! 1. close every socket with `1012` and refuse new ones; in-flight requests, writes and downloads
//!    get the grace period (`shutdown_grace_ms`), then the listener stops accepting (until then
//!    `/readyz` answers `503` rather than refusing the connection);
//! 2. the batchers (messages, telemetry) store everything they accepted, then stop;
//! 3. the cluster's publisher sends what is queued, and its link, sweep and session re-check stop;
//! 4. the rest (presence upkeep, the ticket queue, the purges, the agent watch).
//!
//! Steps 2 to 4 share one more grace period: a task stuck in a storage call must not hold the
//! process.

use crate::adapters::memory::MemoryQuotas;
use crate::adapters::memory::MemoryRoster;
use crate::adapters::redis::RedisQuotas;
use crate::adapters::redis::RedisRoster;
use crate::config::Config;
use crate::domain::account::{AccountDesk, AccountPorts};
use crate::domain::agents::AgentDesk;
use crate::domain::auth::Auth;
use crate::domain::sessions::{SessionDesk, SessionTtls};
use crate::domain::telemetry::pipeline::{PipelineConfig, TelemetryPipeline};
use crate::domain::telemetry::TelemetryDesk;
use crate::domain::tickets::queue::Queue;
use crate::domain::tickets::writer::MessageWriter;
use crate::domain::tickets::TicketDesk;
use crate::error::Error;
use crate::gateway::cluster::Cluster;
use crate::gateway::registry::Registry;
use crate::gateway::services::Services;
use crate::ports::broker::Broker;
use crate::ports::quota::Quotas;
use crate::ports::roster::Roster;
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often expired codes and long-dead sessions are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// How often each node checks whether its online agents were disabled.
pub const AGENT_WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// A built node: its services and every task it runs, in the groups that shutdown stops in turn.
/// Dropping it tells every task to stop without waiting for any.
pub struct App {
    /// What the gateway serves.
    pub services: Arc<Services>,
    /// The listener's accept loop (it waits for its HTTP connections itself).
    listener: TaskTracker,
    /// The group commits: messages and telemetry.
    batchers: Stage,
    /// The cluster's publisher, pub/sub link, storage sweep and session re-check.
    cluster: Stage,
    /// Presence upkeep, the ticket queue, the purges (with the months of tickets' history) and the
    /// agent watch.
    background: Stage,
}

/// Tasks that stop together: the token tells them to, the tracker waits for them.
#[derive(Default)]
struct Stage {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Stage {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }
}

/// A dropped stage (a dropped node, or a build that failed half-way) tells its tasks to stop.
impl Drop for Stage {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The agents desk for the operator's `agent` commands, over the configured storage. The commands
/// open no session and reach no socket: running hubs notice a disabled agent within
/// [`AGENT_WATCH_INTERVAL`] and close the agent's sockets themselves.
///
/// # Errors
/// Storage cannot be reached or migrated; the password hasher fails.
pub async fn operator_agents(config: &Config) -> anyhow::Result<AgentDesk> {
    let store = crate::adapters::sql::connect(config).await?;
    let sessions = Arc::new(SessionDesk::new(store.clone(), Arc::new(Registry::new()), SessionTtls::from(config)));
    Ok(AgentDesk::new(store.clone(), store, sessions, Arc::new(MemoryQuotas::new()), config.max_body_chars)?)
}

/// Connects storage (running migrations) and Redis, builds the services and starts the node's
/// tasks (all but the listener's, which [`App::listen`] starts).
///
/// # Errors
/// Storage or Redis cannot be reached, or the configuration is inconsistent.
pub async fn build(config: Config) -> anyhow::Result<App> {
    config.validate()?;
    let (batchers, cluster_tasks, background) = (Stage::default(), Stage::default(), Stage::default());
    let store = crate::adapters::sql::connect(&config).await.context("connecting to storage")?;
    // Before the first message: this month's history has its place (a failure only costs speed).
    crate::domain::tickets::history::keep_months(&*store, crate::model::time::now_ms(), history_retention(&config))
        .await;
    let objects: Arc<dyn crate::ports::objects::Objects> =
        Arc::new(crate::adapters::objects::open(&config).context("opening the object store")?);
    let redis = match &config.redis_url {
        Some(url) => Some(crate::adapters::redis::connect(&url.0).await.context("connecting to Redis")?),
        None => None,
    };
    let clustered = redis.is_some();
    let quotas: Arc<dyn Quotas> = match &redis {
        Some(redis) => Arc::new(RedisQuotas::new(redis.conn.clone(), &config.redis_prefix)),
        None => Arc::new(MemoryQuotas::new()),
    };
    let key = match &config.secret {
        Some(secret) => Sha256::digest(secret.0.as_bytes()).to_vec(),
        None => crate::adapters::sql::vault(&config)?.hub_secret().to_vec(),
    };
    let sms =
        crate::adapters::sms::build(&config.sms, Duration::from_millis(config.sms_timeout_ms), config.sms_retries)?;
    let shutdown = CancellationToken::new();
    let queue = Queue::new(config.auto_assign);
    let (registry, broker, roster, cluster): (Arc<Registry>, Arc<dyn Broker>, Arc<dyn Roster>, _) = match redis {
        Some(redis) => {
            let registry = Arc::new(Registry::clustered());
            let node = uuid::Uuid::new_v4();
            let roster = RedisRoster::new(
                redis.conn.clone(),
                &config.redis_prefix,
                &node.simple().to_string(),
                Duration::from_millis(config.presence_node_ttl_ms),
            );
            // The first heartbeat, before any socket: people here count as online from the start.
            roster.maintain().await.context("registering the node in Redis")?;
            let cluster = Cluster::start(
                &config,
                node,
                redis,
                registry.clone(),
                queue.clone(),
                store.clone(),
                &cluster_tasks.tasks,
                cluster_tasks.stop.clone(),
            );
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
    let sessions = Arc::new(SessionDesk::new(store.clone(), broker.clone(), SessionTtls::from(&config)));
    let auth = Auth::new(&config, key, store.clone(), store.clone(), sessions.clone(), quotas.clone(), sms.clone())?;
    let agents = AgentDesk::new(store.clone(), store.clone(), sessions.clone(), quotas.clone(), config.max_body_chars)?;
    let presence = crate::domain::presence::Presence::new(
        Duration::from_millis(config.presence_grace_ms),
        store.clone(),
        store.clone(),
        broker.clone(),
        roster,
    );
    let vapid_key = store
        .key_or_insert("vapid", &crate::adapters::push::webpush::Vapid::generate().map_err(anyhow::Error::msg)?)
        .await
        .context("loading the VAPID key")?;
    let vapid = crate::adapters::push::webpush::Vapid::new(&vapid_key, config.vapid_subject.clone())
        .map_err(anyhow::Error::msg)?;
    let push_timeout = Duration::from_millis(config.push_timeout_ms);
    let push_roots = crate::adapters::push::extra_roots(config.push_ca_file.as_deref()).map_err(anyhow::Error::msg)?;
    let apns = crate::adapters::push::apns::Apns::from_config(
        &config,
        crate::adapters::push::client(push_timeout, &push_roots).map_err(anyhow::Error::msg)?,
    )
    .map_err(anyhow::Error::msg)?;
    let mut push_sender = crate::adapters::push::HttpPushSender::new(vapid, push_timeout, &push_roots)
        .map_err(anyhow::Error::msg)?
        .with_apns(apns);
    if let Some(file) = &config.fcm_service_account_file {
        let json =
            std::fs::read_to_string(file).with_context(|| format!("fcm_service_account_file {}", file.display()))?;
        let fcm = crate::adapters::push::fcm::Fcm::new(&json, &config.fcm_url)
            .map_err(|e| anyhow::anyhow!("fcm_service_account_file {}: {e}", file.display()))?;
        push_sender = push_sender.with_fcm(fcm);
    }
    let push_sender = Arc::new(push_sender);
    let vapid_public_key = push_sender.vapid_public_key();
    let (push, push_trigger, push_events) = crate::domain::push::PushDesk::new(
        store.clone(),
        presence.clone(),
        push_sender,
        crate::domain::push::PushPolicy {
            collapse_window: Duration::from_millis(config.push_collapse_ms),
            give_up_after: Duration::from_secs(config.push_give_up_secs),
            allow_http_endpoints: config.webpush_allow_http,
            remind_after: (config.sms_reminder_after_secs > 0)
                .then(|| Duration::from_secs(config.sms_reminder_after_secs)),
        },
    );
    background.spawn(push.clone().take_events(push_events, background.stop.clone()));
    background.spawn(push.clone().run(background.stop.clone()));
    if config.sms_reminder_after_secs > 0 {
        let reminders = crate::domain::push::reminders::SmsReminders::new(
            store.clone(),
            store.clone(),
            presence.clone(),
            quotas.clone(),
            sms,
            config.sms_texts().map_err(anyhow::Error::msg)?,
            crate::domain::push::reminders::ReminderPolicy {
                after: Duration::from_secs(config.sms_reminder_after_secs),
                period: Duration::from_secs(config.sms_reminder_period_secs),
                per_hour: config.sms_reminders_per_hour,
            },
        );
        background.spawn(reminders.run(background.stop.clone()));
    }
    let announce = crate::domain::tickets::announce::Announcer::new(broker.clone(), push_trigger, queue.clone());
    let writer = MessageWriter::start(
        crate::domain::tickets::writer::MessageStore { tickets: store.clone(), announce: announce.clone() },
        crate::domain::tickets::writer::config(
            config.message_queue,
            config.message_batch,
            config.message_writers,
            Duration::from_millis(config.message_spill_ms),
            Duration::from_millis(config.message_linger_ms),
            Duration::from_millis(config.db_timeout_ms),
        ),
        &batchers.tasks,
        batchers.stop.clone(),
    );
    let tickets = Arc::new(TicketDesk::new(
        crate::domain::tickets::TicketStores {
            tickets: store.clone(),
            agents: store.clone(),
            notes: store.clone(),
            labels: store.clone(),
            search: store.clone(),
            ratings: store.clone(),
            reports: store.clone(),
            audit: store.clone(),
        },
        writer,
        broker.clone(),
        queue.clone(),
        crate::domain::tickets::MessageLimits {
            max_body_chars: config.max_body_chars,
            max_attachments: config.attachments_per_message,
            rating_window: (config.rating_expiry_secs > 0).then(|| Duration::from_secs(config.rating_expiry_secs)),
        },
        announce,
    ));
    {
        let (tickets, stop) = (tickets.clone(), background.stop.clone());
        background.spawn(async move {
            tokio::select! {
                () = tickets.index_old_texts() => {}
                () = stop.cancelled() => {}
            }
        });
    }
    let attachments = Arc::new(crate::domain::attachments::AttachmentDesk::new(
        store.clone(),
        store.clone(),
        objects.clone(),
        crate::domain::attachments::UploadPolicy {
            max_bytes: config.attachment_max_bytes,
            bytes_per_day: config.attachment_bytes_per_day,
            in_progress: config.uploads_in_progress,
            expiry: Duration::from_secs(config.upload_expiry_secs),
            max_pixels: config.attachment_max_pixels,
            buffer_bytes: config.upload_buffer_bytes,
        },
        // Each check holds one file (and an image's pixels) in memory: as many as there are cores.
        std::thread::available_parallelism().map_or(2, usize::from),
    ));
    if clustered && objects.backend() == "file" {
        tracing::warn!(
            "clustered with attachments in a local folder: a node cannot serve what another node took in; \
             set object_store_url to a bucket every node reaches"
        );
    }
    background.spawn(
        presence.clone().maintain(Duration::from_millis(config.presence_node_ttl_ms / 3), background.stop.clone()),
    );
    let pipeline = TelemetryPipeline::start(
        store.clone(),
        PipelineConfig {
            queue: config.telemetry_queue,
            max_batch: config.telemetry_batch,
            timeout: Duration::from_millis(config.db_timeout_ms),
            analytics_default: config.consent_analytics_default,
        },
        &batchers.tasks,
        batchers.stop.clone(),
    );
    let telemetry = Arc::new(TelemetryDesk::new(store.clone(), pipeline, broker.clone(), &config));
    let profiles = crate::domain::profiles::ProfileDesk::new(
        store.clone(),
        store.clone(),
        broker.clone(),
        presence.clone(),
        telemetry.clone(),
        config.media_dir.clone(),
        crate::domain::media::image::ImagePolicy {
            max_bytes: config.max_image_bytes,
            max_side: config.max_image_side,
            out_side: 512,
        },
    );
    background.spawn(crate::domain::telemetry::retention::purge_loop(
        telemetry.clone(),
        Duration::from_millis(config.telemetry_purge_interval_ms),
        background.stop.clone(),
    ));
    let account = AccountDesk::new(
        AccountPorts {
            accounts: store.clone(),
            records: store.clone(),
            purchases: store.clone(),
            objects: objects.clone(),
            audit: store.clone(),
        },
        sessions.clone(),
        quotas.clone(),
        presence.clone(),
    );
    let billing = crate::domain::billing::BillingDesk::new(store.clone(), store.clone(), broker.clone(), &config);
    background.spawn(queue.run(
        tickets.clone(),
        store.clone(),
        store.clone(),
        broker.clone(),
        presence.clone(),
        background.stop.clone(),
    ));
    let services = Arc::new(Services {
        config,
        store,
        quotas,
        objects,
        sessions,
        auth,
        agents,
        tickets,
        attachments,
        push,
        vapid_public_key,
        presence,
        profiles,
        telemetry,
        account,
        billing,
        registry,
        broker,
        cluster,
        draining: CancellationToken::new(),
        shutdown,
        listening: CancellationToken::new(),
        sockets: TaskTracker::new(),
        outboxes: Default::default(),
        clustered,
        next_conn: AtomicU64::new(1),
    });
    background.spawn(watch_disabled_agents(services.clone(), background.stop.clone()));
    background.spawn(purge_loop(services.clone(), PURGE_INTERVAL, background.stop.clone()));
    Ok(App { services, listener: TaskTracker::new(), batchers, cluster: cluster_tasks, background })
}

impl App {
    /// Runs the listener's accept loop, which ends once the services' shutdown token is cancelled.
    pub fn listen(&self, accept: impl Future<Output = ()> + Send + 'static) {
        self.listener.spawn(accept);
    }

    /// Shuts the node down in order (see the module documentation) and returns once every task
    /// ended, or after at most about twice the grace period.
    pub async fn shutdown(&self) {
        let grace = Duration::from_millis(self.services.config.shutdown_grace_ms);
        let drain = Duration::from_millis(self.services.config.shutdown_drain_ms);
        self.services.draining.cancel();
        if !drain.is_zero() {
            tracing::info!(drain_ms = drain.as_millis() as u64, "shutting down: not ready, still serving");
            tokio::time::sleep(drain).await;
        }
        tracing::info!("shutting down: closing sockets with 1012");
        let front = tokio::time::Instant::now() + grace;
        self.services.shutdown.cancel();
        self.services.outboxes.close_all();
        self.services.sockets.close();
        if tokio::time::timeout_at(front, self.services.sockets.wait()).await.is_err() {
            tracing::warn!("sockets still open after the grace period; dropping them");
        }
        self.services.listening.cancel();
        self.listener.close();
        if tokio::time::timeout_at(front, self.listener.wait()).await.is_err() {
            tracing::warn!("http requests still running after the grace period");
        }
        let back = tokio::time::Instant::now() + grace;
        for (stage, name) in
            [(&self.batchers, "batchers"), (&self.cluster, "cluster links"), (&self.background, "background loops")]
        {
            stage.stop.cancel();
            stage.tasks.close();
            if tokio::time::timeout_at(back, stage.tasks.wait()).await.is_err() {
                tracing::warn!(stage = name, "tasks still running after the grace period");
            }
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // The stages cancel their own tokens as they are dropped.
        self.services.draining.cancel();
        self.services.shutdown.cancel();
        self.services.listening.cancel();
    }
}

/// Closes the sockets of agents an operator disabled, and of agent sessions an operator ended with
/// a new password (`anapars-hub agent disable` and `reset-password` run in another process and
/// only change the database), checking the online agents every [`AGENT_WATCH_INTERVAL`], until
/// `stop`.
async fn watch_disabled_agents(services: Arc<Services>, stop: CancellationToken) {
    use crate::ports::broker::Broker;
    let mut tick = tokio::time::interval(AGENT_WATCH_INTERVAL);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for id in services.registry.online_agents() {
            match services.store.agent(id).await {
                Ok(Some(agent)) if agent.disabled_at.is_none() => {}
                Ok(_) => {
                    tracing::info!(agent_id = %id, "agent disabled: closing their sockets");
                    services.registry.agent_disabled(id);
                    continue;
                }
                Err(Error::Unavailable) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "agent check failed");
                    continue;
                }
            }
            // Sessions an operator ended (a new password) while their sockets were open here.
            let who = crate::model::ids::Principal::Agent(id);
            // (An expired session is the socket's own business: it ends with `session.expired`.)
            for session in services.registry.sessions_of(who) {
                match services.store.session(session).await {
                    Ok(Some(s)) if s.revoked_at.is_none() => {}
                    Ok(_) => {
                        tracing::info!(agent_id = %id, "agent session ended by an operator: closing its sockets");
                        services.registry.session_revoked(who, session, crate::model::account::RevokeReason::SignedOut);
                    }
                    Err(e) => tracing::warn!(error = %e, "agent session check failed"),
                }
            }
        }
    }
}

/// How long tickets' history is kept, if not forever.
fn history_retention(config: &Config) -> Option<Duration> {
    (config.ticket_history_retention_secs != 0).then(|| Duration::from_secs(config.ticket_history_retention_secs))
}

/// Deletes expired codes, long-dead sessions, audit entries and tickets' history past their
/// retention, and prepares the months of history ahead, every `every`, until `stop`.
async fn purge_loop(services: Arc<Services>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    // The first tick comes at once, and `build` has just prepared the months.
    let mut months_prepared = true;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = crate::model::time::now_ms();
        // Sessions are kept a day past their end so "signed out" can still be told apart from
        // "never existed" in the logs of that day.
        let day = 86_400_000;
        match (services.store.purge_codes(now).await, services.store.purge_sessions(now - day).await) {
            (Ok(codes), Ok(sessions)) => tracing::debug!(codes, sessions, "purged expired sign-in data"),
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "purge failed; retrying next round"),
        }
        let kept = i64::try_from(services.config.audit_retention_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        match services.store.purge_audit(now.saturating_sub(kept)).await {
            Ok(0) => {}
            Ok(entries) => tracing::info!(entries, "removed audit entries past their retention"),
            Err(e) => tracing::warn!(error = %e, "audit purge failed; retrying next round"),
        }
        if !std::mem::take(&mut months_prepared) {
            let retention = history_retention(&services.config);
            crate::domain::tickets::history::keep_months(&*services.store, now, retention).await;
        }
        // Uploads that reached no message, a bounded number per round.
        match services.attachments.purge_expired(now, 500).await {
            Ok(0) => {}
            Ok(uploads) => tracing::info!(uploads, "removed expired uploads"),
            Err(e) => tracing::warn!(error = %e, "purging expired uploads failed; retrying next round"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::session::{run, SocketParams};
    use crate::model::account::Identity;
    use crate::model::ids::ConnId;
    use crate::model::ids::{Principal, SessionId, UserId};
    use crate::model::time::now_ms;
    use crate::protocol::Encoding;
    use std::time::Duration;
    use tokio::time::Instant;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::WebSocketStream;

    /// A socket's task can end without its loop ending (a bug's panic in a handler, the runtime
    /// dropping the task): the socket must still leave the registry, the outboxes and presence, or
    /// the node keeps delivering to it, keeps its memory and shows its person online for good.
    #[tokio::test]
    async fn a_socket_whose_task_is_dropped_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = crate::config::Config {
            sqlite_path: dir.path().join("hub.sqlite"),
            presence_grace_ms: 50,
            ..crate::config::Config::default()
        };
        let app = build(config).await.expect("the hub");
        let hub = app.services.clone();
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let ws = WebSocketStream::from_raw_socket(ours, Role::Server, None).await;
        let _client = WebSocketStream::from_raw_socket(theirs, Role::Client, None).await;
        let who = Principal::User(UserId(uuid::Uuid::new_v4()));
        let conn = ConnId(7);
        let identity =
            Identity { who, device: None, session: SessionId(uuid::Uuid::new_v4()), expires_at: now_ms() + 3_600_000 };
        let client = crate::model::telemetry::ClientInfo {
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            user_agent: None,
            client_version: None,
        };
        let params = SocketParams { conn, encoding: Encoding::Json, authenticated: Some(identity), client };
        let task = tokio::spawn(run(ws, hub.clone(), params));
        let deadline = Instant::now() + Duration::from_secs(5);
        while hub.registry.sessions_of(who).is_empty() {
            assert!(Instant::now() < deadline, "the socket never registered");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(hub.outboxes.is_open(conn));
        assert_eq!(hub.presence.online(&[who]).await, vec![true]);

        task.abort();
        assert!(task.await.expect_err("aborted").is_cancelled());
        assert!(hub.registry.sessions_of(who).is_empty(), "still registered");
        assert!(!hub.outboxes.is_open(conn), "its outbox is kept");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(hub.presence.online(&[who]).await, vec![false], "still online");
        app.shutdown().await;
    }
}
