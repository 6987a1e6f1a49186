//! Redis implementations, shared by every node of a cluster: one Redis server (or the master
//! Sentinel names) or a Redis Cluster, found out at start from the server itself.
//!
//! On a Redis Cluster every script touches keys of one slot: the roster is split into parts, each
//! under a hash tag of its own (`{roster:0}` to `{roster:15}`), spread over the masters, a counter
//! is one key, and the fan-out goes over sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`), each
//! channel on the shard that owns its slot, so the per-message traffic spreads over the shards.

mod pubsub;
mod quota;
mod roster;

pub use pubsub::{publish, Publication, Subscriber};
pub use quota::RedisQuotas;
pub use roster::RedisRoster;

use crate::error::Error;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::time::Duration;

/// Any Redis failure is `unavailable`: the counters and the roster are out of reach, not wrong.
impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        tracing::warn!(error = %e, "redis unavailable");
        Self::Unavailable
    }
}

/// How long a connection attempt or a command may take before Redis counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Tries of a command before it fails (the first included).
const RETRIES: u32 = 2;

/// The hub's Redis, as `REDIS_URL` names it.
#[derive(Clone)]
pub struct Redis {
    /// Commands and scripts, shared by every task of the node (multiplexed).
    pub conn: Connection,
    /// Where pub/sub links connect to.
    pub links: Links,
}

/// Where a [`Subscriber`] connects.
#[derive(Clone)]
pub enum Links {
    /// One server.
    Single(redis::Client),
    /// The seed nodes of a Redis Cluster.
    Cluster(Vec<String>),
}

/// A multiplexed connection to one server or to a Redis Cluster. Commands, pipelines and scripts
/// run on either; on a cluster each goes to the shard owning its keys' slot.
#[derive(Clone)]
pub enum Connection {
    /// One server, reconnected after a failure.
    Single(ConnectionManager),
    /// A Redis Cluster, following its slot map (and failovers).
    Cluster(ClusterConnection),
}

impl Connection {
    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The seed URLs of `REDIS_URL`: one URL, or several separated by commas (nodes of one cluster).
pub fn seeds(url: &str) -> Vec<String> {
    url.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Connects to `url` (see [`seeds`]). A server with `cluster_enabled:1` in `INFO cluster` is
/// treated as a Redis Cluster, as are several seeds.
///
/// # Errors
/// No seed answers, or the URL is malformed.
pub async fn connect(url: &str) -> RedisResult<Redis> {
    let seeds = seeds(url);
    let first = seeds.first().cloned().unwrap_or_default();
    let client = redis::Client::open(first.as_str())?;
    let clustered = seeds.len() > 1 || {
        let mut probe = tokio::time::timeout(TIMEOUT, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| timed_out("connecting to Redis"))??;
        let info: String = redis::cmd("INFO").arg("cluster").query_async(&mut probe).await?;
        info.lines().any(|l| l.trim() == "cluster_enabled:1")
    };
    if clustered {
        let conn = cluster_client(&seeds, None)?.get_async_connection().await?;
        tracing::info!(seeds = seeds.len(), "redis is a cluster: sharded pub/sub, keys by slot");
        Ok(Redis { conn: Connection::Cluster(conn), links: Links::Cluster(seeds) })
    } else {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(RETRIES as usize);
        let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
        Ok(Redis { conn: Connection::Single(conn), links: Links::Single(client) })
    }
}

/// Takes a RESP3 push (a publication, a subscription's confirmation, a lost connection).
type OnPush = Box<dyn Fn(redis::PushInfo) -> Result<(), ()> + Send + Sync>;

/// A cluster client over `seeds` with the hub's timeouts; with `pushes`, on RESP3 (which sharded
/// pub/sub on a cluster connection needs) delivering pushes there.
fn cluster_client(seeds: &[String], pushes: Option<OnPush>) -> RedisResult<redis::cluster::ClusterClient> {
    let mut builder = redis::cluster::ClusterClientBuilder::new(seeds.iter().map(String::as_str))
        .connection_timeout(TIMEOUT)
        .response_timeout(TIMEOUT)
        .retries(RETRIES);
    if let Some(pushes) = pushes {
        builder = builder.use_protocol(redis::ProtocolVersion::RESP3).push_sender(pushes);
    }
    builder.build()
}

fn timed_out(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "timed out", what.to_owned()))
}
