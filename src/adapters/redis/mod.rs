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
use crate::ports::quota::Reach;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
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

    /// How much of Redis answers: the server (`PING`), or on a cluster each master that holds slots
    /// (as `CLUSTER NODES` lists them), asked its id through one of its slots within
    /// [`PROBE_TIMEOUT`]. A master that died and whose replica has not taken over yet still holds
    /// its slots and does not answer while the others do: [`Reach::Part`]. (The cluster client
    /// sends a command for a slot whose master is down to another node, so the answer must say
    /// which node gave it: a `PING` would not.)
    ///
    /// # Errors
    /// `unavailable` when nothing answers.
    pub async fn reach(&self) -> crate::Result<Reach> {
        match self {
            Self::Single(c) => {
                let _: String = redis::cmd("PING").query_async(&mut c.clone()).await?;
                Ok(Reach::All)
            }
            Self::Cluster(c) => {
                let masters = masters(&cluster_nodes(c).await?);
                let probes = masters.iter().map(|(id, first_slot)| {
                    let mut c = c.clone();
                    let route = Route::new(*first_slot, SlotAddr::Master);
                    let to = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                    let expected = id.as_str();
                    async move {
                        let mut myid = redis::cmd("CLUSTER");
                        myid.arg("MYID");
                        let answer = tokio::time::timeout(PROBE_TIMEOUT, c.route_command(myid, to)).await;
                        matches!(answer, Ok(Ok(Value::BulkString(id))) if id == expected.as_bytes())
                    }
                });
                let answered = futures_util::future::join_all(probes).await.into_iter().filter(|&ok| ok).count();
                match answered {
                    0 => Err(crate::Error::Unavailable),
                    n if n == masters.len() => Ok(Reach::All),
                    _ => Ok(Reach::Part),
                }
            }
        }
    }
}

/// `CLUSTER NODES` from any node that answers: a node picked at random may be the one that died,
/// so another is tried. Both tries and the pings after them fit in readiness's 2 s.
async fn cluster_nodes(c: &ClusterConnection) -> crate::Result<String> {
    let mut last = crate::Error::Unavailable;
    for _ in 0..2 {
        let mut list = redis::cmd("CLUSTER");
        list.arg("NODES");
        let random = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
        match tokio::time::timeout(LIST_TIMEOUT, c.clone().route_command(list, random)).await {
            Ok(Ok(nodes)) => return redis::from_redis_value(nodes).map_err(|_| crate::Error::Unavailable),
            Ok(Err(e)) => last = e.into(),
            Err(_) => last = crate::Error::Unavailable,
        }
    }
    Err(last)
}

/// The masters that hold slots, as `(node id, first slot)`, from the text of `CLUSTER NODES` (one
/// node a line: id, `host:port@bus-port[,hostname]`, flags, master id, ping and pong times, epoch,
/// link state, then its slots and slot ranges; a slot being moved is listed in brackets and left
/// out here). Masters are named by id and reached through their first slot, so that addresses
/// (which a lone node does not know of itself, and which may be names or numbers) never need to
/// match the cluster client's.
fn masters(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (id, flags) = (fields.first()?, fields.get(2)?);
            if !flags.split(',').any(|f| f == "master") {
                return None;
            }
            let first = fields
                .iter()
                .skip(8)
                .filter_map(|f| f.split_once('-').map_or(f.parse::<u16>().ok(), |(a, _)| a.parse().ok()))
                .min()?;
            Some(((*id).to_owned(), first))
        })
        .collect()
}

/// How long a master has to answer [`Connection::reach`].
const PROBE_TIMEOUT: Duration = Duration::from_millis(1_100);
/// How long a node has to list the cluster's nodes for [`Connection::reach`].
const LIST_TIMEOUT: Duration = Duration::from_millis(400);

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

/// Slots of a Redis Cluster.
const SLOTS: u16 = 16_384;

/// The slot of a key or sharded channel on a Redis Cluster: CRC16 (XMODEM) of its hash tag (the
/// text between the first `{` and the next `}`, when not empty), else of the whole name.
pub fn slot(name: &str) -> u16 {
    let bytes = name.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &bytes[open + 1..];
        rest.iter().position(|&b| b == b'}').filter(|&close| close > 0).map(|close| &rest[..close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(bytes)) % SLOTS
}

/// `parts` hash tags (`name:k.n`, to be put between braces) that a Redis Cluster shares out
/// evenly: tag `k` takes the smallest `n` whose slot lies in the middle half of the k-th of
/// `parts` equal ranges of slots. Masters that hold equal ranges of slots (as `redis-cli
/// --cluster create` and an even reshard make them) then hold as equal a number of parts as
/// `parts` allows; tags chosen without regard to their slots land where CRC16 puts them, which for
/// 16 tags over 3 masters can be 8, 4 and 4.
pub fn spread_tags(name: &str, parts: u16) -> Vec<String> {
    let width = SLOTS / parts.clamp(1, SLOTS);
    (0..parts.clamp(1, SLOTS))
        .map(|k| {
            let middle = k * width + width / 4..k * width + width / 4 + (width / 2).max(1);
            (0u32..)
                .map(|n| format!("{name}:{k}.{n}"))
                .find(|tag| middle.contains(&slot(tag)))
                .unwrap_or_else(|| format!("{name}:{k}"))
        })
        .collect()
}

fn timed_out(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "timed out", what.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masters_that_hold_slots_are_read_from_cluster_nodes() {
        // `CLUSTER NODES` of Redis 7 while a master (67ed) has failed and its replica (e7d1) took
        // over, with a slot being imported, and an empty master (a1b2) just added.
        let nodes = "\
07c3 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
67ed 127.0.0.1:7001@17001 master,fail - 1700000000000 1700000000000 2 disconnected
292f 127.0.0.1:7002@17002,redis-c.example master - 0 1700000001000 3 connected 10923-16382 16383 [10922-<-07c3]
e7d1 127.0.0.1:7004@17004 master - 0 1700000001000 7 connected 5461-10922
6ec2 127.0.0.1:7003@17003 slave 07c3 0 1700000001000 1 connected
a1b2 [::1]:7006@17006 master - 0 1700000001000 8 connected
";
        let found = masters(nodes);
        let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["07c3", "292f", "e7d1"]);
        let firsts: Vec<u16> = found.iter().map(|&(_, first)| first).collect();
        assert_eq!(firsts, [0, 10_923, 5_461]);
        let single = masters("07c3 127.0.0.1:7000@17000 master - 0 0 1 connected 16383 100-200\n");
        assert_eq!(single, [("07c3".to_owned(), 100)]);
        // A lone node does not know its own address.
        let lone = masters("07c3 :7000@17000 myself,master - 0 0 1 connected 0-16383\n");
        assert_eq!(lone, [("07c3".to_owned(), 0)]);
    }

    #[test]
    fn slots_are_those_redis_computes() {
        // `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(slot("foo"), 12_182);
        assert_eq!(slot("somekey"), 11_058);
        assert_eq!(slot("{user1000}.following"), slot("user1000"));
        assert_eq!(slot("foo{}{bar}"), slot("foo{}{bar}"), "an empty tag: the whole name");
        assert_ne!(slot("foo{}{bar}"), slot("bar"));
        assert_eq!(slot("foo{{bar}}zap"), slot("{bar"));
    }

    #[test]
    fn spread_tags_share_out_evenly_over_masters_of_equal_ranges() {
        let tags = spread_tags("queue", 16);
        assert_eq!(tags.len(), 16);
        for masters in 1..=8u32 {
            let mut held = vec![0u32; masters as usize];
            for tag in &tags {
                held[(u32::from(slot(tag)) * masters / u32::from(SLOTS)) as usize] += 1;
            }
            let (least, most) = (held.iter().min().unwrap(), held.iter().max().unwrap());
            assert!(most - least <= 1, "{masters} masters hold {held:?}");
        }
        assert_eq!(spread_tags("queue", 16), tags, "the same tags on every node");
    }
}
