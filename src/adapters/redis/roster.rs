//! Presence across nodes, in Redis. Each node keeps a heartbeat; a person is online while some live
//! node holds a socket of theirs. Keys, all under the configured prefix:
//!
//! - `nodes`: sorted set, node id -> heartbeat expiry (Redis server time, ms). A node is live while
//!   its expiry is in the future; it renews it every third of `presence_node_ttl_ms`.
//! - `presence:<u:id|a:id>`: hash, node id -> the node's mark for its current stretch of sockets,
//!   plus `on` = 1 while the person is announced online.
//! - `node:<node id>`: set of the people with sockets on that node (what to clean up if it dies).
//! - `beats`: hash, node id -> its last heartbeat (Redis time, ms): the last-seen time of the people
//!   of a node that died.
//! - `agents`: set of the agents announced online.
//!
//! Every change is one Lua script, so two nodes never both announce the same change. Liveness is
//! judged by Redis's clock (`TIME`), so node clocks need not agree. A node killed without cleaning up
//! stops counting as soon as its expiry passes; the first node to run upkeep after that reaps it and
//! announces its people offline (unless they have reconnected elsewhere). A node that finds its own
//! heartbeat gone (Redis restarted, or it was cut off long enough to be reaped) registers its people
//! again.
//!
//! On a Redis Cluster the roster is split into [`CLUSTER_SHARDS`] parts, each under a hash tag of
//! its own after the prefix (`{roster:0}` to `{roster:15}`), so that presence is spread over the
//! cluster's masters instead of all on the one owning a single slot. A person belongs to one part
//! (chosen by the random tail of their id), and every key above exists once per part: `nodes` and
//! `beats` (each node beats in every part), `node:<node id>` with that node's people of the part,
//! `agents` with the part's agents. The scripts touch keys they compute, all within one part, so
//! each runs whole on the master owning that part's slot. A single Redis has one part, with its keys
//! under the plain prefix.

use super::Connection;
use crate::error::Result;
use crate::model::ids::{AgentId, Principal};
use crate::model::time::Millis;
use crate::ports::roster::{Change, Roster};
use async_trait::async_trait;
use dashmap::DashMap;
use futures_util::{stream, StreamExt, TryStreamExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `now` in ms by Redis's clock, and `alive(field)`: whether the node `field` is live.
const PRELUDE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function alive(nodes, field)
  if field == 'on' then return false end
  local exp = redis.call('ZSCORE', nodes, field)
  return exp ~= false and exp ~= nil and tonumber(exp) > now
end
local function anyone(nodes, hash)
  for _, f in ipairs(redis.call('HKEYS', hash)) do
    if alive(nodes, f) then return true end
  end
  return false
end
";

/// KEYS: presence hash, node set, agents set. ARGV: node, mark, person, is agent.
const ARRIVE: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('HSETNX', KEYS[1], 'on', '1') == 1 then
  if ARGV[4] == '1' then redis.call('SADD', KEYS[3], ARGV[3]) end
  return 1
end
return 0
";

/// KEYS: presence hash, node set, agents set, nodes. ARGV: node, mark ('' = any), person.
const DEPART: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  if ARGV[2] ~= '' and cur ~= ARGV[2] then return 0 end
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('SREM', KEYS[2], ARGV[3])
if anyone(KEYS[4], KEYS[1]) then return 0 end
if redis.call('HGET', KEYS[1], 'on') then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[3], ARGV[3])
  return 1
end
return 0
";

/// KEYS: presence hash, agents set, nodes. ARGV: key prefix, person. Deletes the person's hash and
/// takes them out of every node's set and the agents.
const FORGET: &str = r"
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
for _, node in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  redis.call('SREM', ARGV[1] .. 'node:' .. node, ARGV[2])
end
return 1
";

/// KEYS: nodes, then presence hashes. Returns 1/0 per hash.
const ONLINE: &str = r"
local out = {}
for i = 2, #KEYS do
  out[i - 1] = anyone(KEYS[1], KEYS[i]) and 1 or 0
end
return out
";

/// KEYS: nodes, agents set. ARGV: presence key prefix. Returns the online agents' person keys.
const ONLINE_AGENTS: &str = r"
local out = {}
for _, p in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if anyone(KEYS[1], ARGV[1] .. p) then table.insert(out, p) end
end
return out
";

/// KEYS: nodes, beats. ARGV: node, ttl ms. Returns 1 if the node was live before this beat.
const HEARTBEAT: &str = r"
local before = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], now)
if before and tonumber(before) > now then return 1 end
return 0
";

/// KEYS: nodes, beats. ARGV: key prefix. Reaps one dead node: returns {its last heartbeat, people
/// now offline}, or an empty list when no node is dead.
const REAP: &str = r"
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
if #dead == 0 then return {} end
local node = dead[1]
local people = ARGV[1] .. 'node:' .. node
local gone = {}
for _, p in ipairs(redis.call('SMEMBERS', people)) do
  local hash = ARGV[1] .. 'presence:' .. p
  redis.call('HDEL', hash, node)
  if not anyone(KEYS[1], hash) and redis.call('HGET', hash, 'on') then
    redis.call('DEL', hash)
    redis.call('SREM', ARGV[1] .. 'agents', p)
    table.insert(gone, p)
  end
end
local beat = redis.call('HGET', KEYS[2], node) or dead[2]
redis.call('DEL', people)
redis.call('ZREM', KEYS[1], node)
redis.call('HDEL', KEYS[2], node)
return {beat, gone}
";

/// Parts of the roster on a Redis Cluster (see the module's docs): enough that they spread evenly
/// over a few masters, few enough that a heartbeat (one call per part) stays cheap.
const CLUSTER_SHARDS: usize = 16;

/// How many Redis calls a resync keeps in flight.
const RESYNC_CONCURRENCY: usize = 64;
/// Dead nodes reaped per upkeep round at most.
const REAP_PER_ROUND: usize = 8;

fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{PRELUDE}{body}"))
}

/// One part of the roster: every key of it starts with `prefix`.
struct Shard {
    prefix: String,
}

impl Shard {
    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    fn person_key(&self, who: Principal) -> String {
        self.key(&format!("presence:{}", who.key()))
    }

    fn node_key(&self, node: &str) -> String {
        self.key(&format!("node:{node}"))
    }
}

/// Presence in Redis for one node.
pub struct RedisRoster {
    conn: Connection,
    shards: Vec<Shard>,
    node: String,
    ttl: Duration,
    /// This node's people and their marks: what to register again after Redis lost them.
    local: DashMap<Principal, u64>,
    /// Set when a call failed: the next upkeep re-registers everything.
    resync: AtomicBool,
    arrive: redis::Script,
    depart: redis::Script,
    online: redis::Script,
    online_agents: redis::Script,
    heartbeat: redis::Script,
    reap: redis::Script,
    forget: redis::Script,
}

impl RedisRoster {
    /// The roster of node `node` (unique per process) with keys under `prefix` (and the parts' hash
    /// tags on a cluster); a node counts as dead `ttl` after its last heartbeat.
    pub fn new(conn: Connection, prefix: &str, node: &str, ttl: Duration) -> Self {
        let shards = if conn.is_cluster() {
            (0..CLUSTER_SHARDS).map(|i| Shard { prefix: format!("{prefix}{{roster:{i}}}") }).collect()
        } else {
            vec![Shard { prefix: prefix.to_owned() }]
        };
        Self {
            conn,
            shards,
            node: node.to_owned(),
            ttl,
            local: DashMap::new(),
            resync: AtomicBool::new(true),
            arrive: script(ARRIVE),
            depart: script(DEPART),
            online: script(ONLINE),
            online_agents: script(ONLINE_AGENTS),
            heartbeat: script(HEARTBEAT),
            reap: script(REAP),
            forget: script(FORGET),
        }
    }

    /// The part `who` belongs to: by the last two bytes of their id, which are random (ids are
    /// UUIDv7), so people spread evenly and every node agrees.
    fn shard_index(&self, who: Principal) -> usize {
        let id = match who {
            Principal::User(u) => u.0,
            Principal::Agent(a) => a.0,
        };
        let bytes = id.as_bytes();
        usize::from(u16::from_be_bytes([bytes[14], bytes[15]])) % self.shards.len()
    }

    fn shard_of(&self, who: Principal) -> &Shard {
        &self.shards[self.shard_index(who)]
    }

    /// `call` on every part at once, each with a connection handle of its own: the answers in the
    /// parts' order.
    async fn every_part<'a, T, F, Fut>(&'a self, call: F) -> Result<Vec<T>>
    where
        F: Fn(usize, &'a Shard, Connection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let calls = self.shards.iter().enumerate().map(|(i, shard)| call(i, shard, self.conn.clone()));
        Ok(futures_util::future::try_join_all(calls).await?)
    }

    fn failed<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.resync.store(true, Ordering::Relaxed);
        }
        r
    }

    async fn arrive_call(&self, who: Principal, mark: u64) -> Result<bool> {
        let mut conn = self.conn.clone();
        let shard = self.shard_of(who);
        let announced: i64 = self
            .arrive
            .key(shard.person_key(who))
            .key(shard.node_key(&self.node))
            .key(shard.key("agents"))
            .arg(&self.node)
            .arg(mark)
            .arg(who.key())
            .arg(if matches!(who, Principal::Agent(_)) { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await?;
        Ok(announced == 1)
    }

    async fn depart_call(&self, who: Principal, mark: Option<u64>) -> Result<bool> {
        let mut conn = self.conn.clone();
        let shard = self.shard_of(who);
        let announced: i64 = self
            .depart
            .key(shard.person_key(who))
            .key(shard.node_key(&self.node))
            .key(shard.key("agents"))
            .key(shard.key("nodes"))
            .arg(&self.node)
            .arg(mark.map(|m| m.to_string()).unwrap_or_default())
            .arg(who.key())
            .invoke_async(&mut conn)
            .await?;
        Ok(announced == 1)
    }

    /// Registers every local person again and takes back those Redis lists on this node who are no
    /// longer here; returns the resulting announcements.
    async fn resync(&self) -> Result<Vec<Change>> {
        let listed: Vec<Vec<String>> = self
            .every_part(|_, shard, mut conn| {
                let key = shard.node_key(&self.node);
                async move { redis::cmd("SMEMBERS").arg(key).query_async(&mut conn).await }
            })
            .await?;
        let stale: Vec<Principal> = listed
            .iter()
            .flatten()
            .filter_map(|k| Principal::from_key(k))
            .filter(|p| !self.local.contains_key(p))
            .collect();
        let now = crate::model::time::now_ms();
        let mut changes: Vec<Change> = stream::iter(stale)
            .map(|who| async move {
                Ok::<_, crate::Error>(self.depart_call(who, None).await?.then_some(Change {
                    who,
                    online: false,
                    last_seen: Some(now),
                }))
            })
            .buffer_unordered(RESYNC_CONCURRENCY)
            .try_filter_map(|c| async move { Ok(c) })
            .try_collect()
            .await?;
        let here: Vec<(Principal, u64)> = self.local.iter().map(|e| (*e.key(), *e.value())).collect();
        let arrived: Vec<Change> = stream::iter(here)
            .map(|(who, mark)| async move {
                Ok::<_, crate::Error>(self.arrive_call(who, mark).await?.then_some(Change {
                    who,
                    online: true,
                    last_seen: None,
                }))
            })
            .buffer_unordered(RESYNC_CONCURRENCY)
            .try_filter_map(|c| async move { Ok(c) })
            .try_collect()
            .await?;
        changes.extend(arrived);
        Ok(changes)
    }

    /// Reaps one dead node from `shard`: its people there who are now offline.
    async fn reap_one(&self, shard: &Shard) -> Result<Option<Vec<Change>>> {
        let mut conn = self.conn.clone();
        let reaped: Vec<redis::Value> = self
            .reap
            .key(shard.key("nodes"))
            .key(shard.key("beats"))
            .arg(&shard.prefix)
            .invoke_async(&mut conn)
            .await?;
        let [beat, gone] = reaped.as_slice() else { return Ok(None) };
        // Its last heartbeat: the best estimate of when its people were last seen.
        let last_seen: f64 = redis::from_redis_value_ref(beat).map_err(redis::RedisError::from)?;
        let last_seen = last_seen as Millis;
        let gone: Vec<String> = redis::from_redis_value_ref(gone).map_err(redis::RedisError::from)?;
        Ok(Some(
            gone.iter()
                .filter_map(|k| Principal::from_key(k))
                .map(|who| Change { who, online: false, last_seen: Some(last_seen) })
                .collect(),
        ))
    }
}

#[async_trait]
impl Roster for RedisRoster {
    async fn arrived(&self, who: Principal, mark: u64) -> Result<bool> {
        self.local.insert(who, mark);
        let r = self.arrive_call(who, mark).await;
        self.failed(r)
    }

    async fn departed(&self, who: Principal, mark: u64) -> Result<bool> {
        self.local.remove_if(&who, |_, m| *m == mark);
        let r = self.depart_call(who, Some(mark)).await;
        self.failed(r)
    }

    async fn forget(&self, who: Principal) -> Result<()> {
        self.local.remove(&who);
        let mut conn = self.conn.clone();
        let shard = self.shard_of(who);
        let r: Result<i64> = self
            .forget
            .key(shard.person_key(who))
            .key(shard.key("agents"))
            .key(shard.key("nodes"))
            .arg(&shard.prefix)
            .arg(who.key())
            .invoke_async(&mut conn)
            .await
            .map_err(Into::into);
        self.failed(r).map(drop)
    }

    async fn online(&self, who: &[Principal]) -> Result<Vec<bool>> {
        if who.is_empty() {
            return Ok(Vec::new());
        }
        // Each person's place in `who`, by part; the parts with someone to ask are asked at once.
        let mut asked: Vec<Vec<usize>> = vec![Vec::new(); self.shards.len()];
        for (i, w) in who.iter().enumerate() {
            asked[self.shard_index(*w)].push(i);
        }
        let flags: Vec<Vec<i64>> = self
            .every_part(|part, shard, mut conn| {
                let people = &asked[part];
                let mut call = self.online.key(shard.key("nodes"));
                for &i in people {
                    call.key(shard.person_key(who[i]));
                }
                async move {
                    if people.is_empty() {
                        Ok(Vec::new())
                    } else {
                        call.invoke_async(&mut conn).await
                    }
                }
            })
            .await?;
        let mut online = vec![false; who.len()];
        for (people, flags) in asked.iter().zip(flags) {
            for (&i, flag) in people.iter().zip(flags) {
                online[i] = flag == 1;
            }
        }
        Ok(online)
    }

    async fn online_agents(&self) -> Result<Vec<AgentId>> {
        let keys: Vec<String> = self
            .every_part(|_, shard, mut conn| {
                let mut call = self.online_agents.key(shard.key("nodes"));
                call.key(shard.key("agents")).arg(shard.key("presence:"));
                async move { call.invoke_async::<Vec<String>>(&mut conn).await }
            })
            .await?
            .concat();
        Ok(keys
            .iter()
            .filter_map(|k| match Principal::from_key(k) {
                Some(Principal::Agent(a)) => Some(a),
                _ => None,
            })
            .collect())
    }

    async fn maintain(&self) -> Result<Vec<Change>> {
        // A beat in every part; the node was live before only if every part still had it.
        let was_live: Vec<i64> = self
            .every_part(|_, shard, mut conn| {
                let mut call = self.heartbeat.key(shard.key("nodes"));
                call.key(shard.key("beats")).arg(&self.node).arg(self.ttl.as_millis() as u64);
                async move { call.invoke_async::<i64>(&mut conn).await }
            })
            .await
            .inspect_err(|_| self.resync.store(true, Ordering::Relaxed))?;
        let mut changes = Vec::new();
        if was_live.contains(&0) || self.resync.swap(false, Ordering::Relaxed) {
            match self.resync().await {
                Ok(found) => {
                    tracing::info!(people = self.local.len(), "presence registered in Redis");
                    changes.extend(found);
                }
                Err(e) => {
                    self.resync.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        // Every part reaps each dead node once: the first part's count is the number of nodes.
        for (i, shard) in self.shards.iter().enumerate() {
            let mut reaped = 0;
            for _ in 0..REAP_PER_ROUND {
                match self.reap_one(shard).await? {
                    Some(gone) => {
                        reaped += 1;
                        changes.extend(gone);
                    }
                    None => break,
                }
            }
            if i == 0 && reaped > 0 {
                tracing::warn!(nodes = reaped, "hub nodes stopped without cleaning up: their people are offline");
                metrics::counter!(crate::metrics::NODES_REAPED).increment(reaped);
            }
        }
        Ok(changes)
    }

    fn needs_upkeep(&self) -> bool {
        true
    }
}
