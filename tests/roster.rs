//! Presence rosters: the conformance checks against the in-process roster always and the Redis one
//! when `TEST_REDIS_URL` is set, plus what only a cluster has: several nodes, a node that dies, and
//! Redis losing its data.

mod common;
// The suite's checks are `pub` for the runner in this file, not a library API.
#[allow(unreachable_pub)]
#[path = "conformance/roster.rs"]
mod conformance;

use anapars_hub::adapters::memory::MemoryRoster;
use anapars_hub::adapters::redis::RedisRoster;
use anapars_hub::model::ids::{Principal, UserId};
use anapars_hub::ports::roster::{Change, Roster};
use common::hub::TestRedis;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn memory_roster_conforms() {
    conformance::run_all(|| async { Arc::new(MemoryRoster::new()) as Arc<dyn Roster> }).await;
}

async fn node(redis: &TestRedis, ttl: Duration) -> RedisRoster {
    node_at(&redis.url, &redis.prefix, ttl).await
}

async fn node_at(url: &str, prefix: &str, ttl: Duration) -> RedisRoster {
    let conn = anapars_hub::adapters::redis::connect(url).await.expect("redis answers").conn;
    let roster = RedisRoster::new(conn, prefix, &uuid::Uuid::new_v4().simple().to_string(), ttl);
    roster.maintain().await.expect("first heartbeat");
    roster
}

#[tokio::test]
async fn redis_roster_conforms() {
    let Some(redis) = TestRedis::from_env().await else {
        eprintln!("TEST_REDIS_URL not set: the Redis roster is not tested here (CI sets it)");
        return;
    };
    let redis = Arc::new(redis);
    conformance::run_all(|| {
        let redis = redis.clone();
        async move { Arc::new(node(&redis, Duration::from_secs(30)).await) as Arc<dyn Roster> }
    })
    .await;
}

/// On a Redis Cluster the roster is in parts, each in one slot: every script runs whole on one
/// shard, and the people's presence spreads over the masters.
#[tokio::test]
async fn redis_roster_conforms_on_a_redis_cluster() {
    if std::env::var_os(common::hub::TEST_REDIS_URL).is_none() {
        eprintln!("TEST_REDIS_URL not set: the Redis Cluster roster is not tested here (CI sets it)");
        return;
    }
    let Some(cluster) = common::redis_cluster::start(3).await else { return };
    let url = Arc::new(cluster.url());
    conformance::run_all(|| {
        let url = url.clone();
        async move { Arc::new(node_at(&url, "test:", Duration::from_secs(30)).await) as Arc<dyn Roster> }
    })
    .await;
    let keys = cluster.keys().await;
    assert!(!keys.is_empty() && keys.iter().all(|k| k.starts_with("test:{roster:")), "{keys:?}");

    let node = node_at(&url, "test:", Duration::from_secs(30)).await;
    let people: Vec<Principal> = (0..32).map(|_| Principal::User(UserId::generate())).collect();
    for who in &people {
        assert!(node.arrived(*who, 1).await.unwrap());
    }
    // Every other one leaves: the answers must come back in the asker's order across the parts.
    for who in people.iter().step_by(2) {
        assert!(node.departed(*who, 1).await.unwrap());
    }
    let alternating: Vec<bool> = (0..people.len()).map(|i| i % 2 == 1).collect();
    assert_eq!(node.online(&people).await.unwrap(), alternating, "answered in order across the parts");
    for who in people.iter().step_by(2) {
        assert!(node.arrived(*who, 2).await.unwrap());
    }
    let (keys, mut masters) = (cluster.keys().await, std::collections::BTreeSet::new());
    for who in &people {
        let key = keys.iter().find(|k| k.ends_with(&format!("presence:{}", who.key()))).expect("a presence key");
        masters.insert(cluster.master_of(key).await.expect("the master of a key"));
    }
    assert!(masters.len() > 1, "32 people's presence all on one master: {masters:?}");
}

#[tokio::test]
async fn a_person_on_two_nodes_is_one_presence() {
    let Some(redis) = TestRedis::from_env().await else { return };
    let (a, b) = (node(&redis, Duration::from_secs(30)).await, node(&redis, Duration::from_secs(30)).await);
    let who = Principal::User(UserId::generate());
    assert!(a.arrived(who, 1).await.unwrap(), "online when the first node sees them");
    assert!(!b.arrived(who, 1).await.unwrap(), "the second node announces nothing");
    assert!(!a.departed(who, 1).await.unwrap(), "still on the other node");
    assert_eq!(b.online(&[who]).await.unwrap(), [true]);
    assert!(b.departed(who, 1).await.unwrap(), "gone from the last node: offline");
    assert_eq!(a.online(&[who]).await.unwrap(), [false]);
}

#[tokio::test]
async fn a_dead_nodes_people_go_offline_once_its_heartbeat_expires() {
    let Some(redis) = TestRedis::from_env().await else { return };
    let ttl = Duration::from_millis(600);
    let doomed = node(&redis, ttl).await;
    let survivor = node(&redis, Duration::from_secs(30)).await;
    let (alone, also_elsewhere) = (Principal::User(UserId::generate()), Principal::User(UserId::generate()));
    doomed.arrived(alone, 1).await.unwrap();
    doomed.arrived(also_elsewhere, 1).await.unwrap();
    survivor.arrived(also_elsewhere, 1).await.unwrap();
    assert_eq!(survivor.online(&[alone, also_elsewhere]).await.unwrap(), [true, true]);
    let died_at = anapars_hub::model::time::now_ms();
    drop(doomed); // no more heartbeats, no clean-up: as if killed

    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    assert_eq!(
        survivor.online(&[alone, also_elsewhere]).await.unwrap(),
        [false, true],
        "the dead node no longer counts"
    );
    let changes = survivor.maintain().await.unwrap();
    let [Change { who, online: false, last_seen: Some(seen) }] = changes[..] else {
        panic!("expected exactly the lone person to go offline, got {changes:?}")
    };
    assert_eq!(who, alone);
    assert!((seen - died_at).abs() < 2_000, "last seen near the node's death: {seen} vs {died_at}");
    assert!(survivor.maintain().await.unwrap().is_empty(), "reaped once");
}

#[tokio::test]
async fn a_node_registers_its_people_again_after_redis_lost_them() {
    let Some(redis) = TestRedis::from_env().await else { return };
    let a = node(&redis, Duration::from_secs(30)).await;
    let who = Principal::User(UserId::generate());
    a.arrived(who, 1).await.unwrap();
    // Redis restarted without persistence: every key of this deployment is gone.
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys = redis.keys().await;
    let _: () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.unwrap();
    assert_eq!(a.online(&[who]).await.unwrap(), [false]);

    let changes = a.maintain().await.unwrap();
    assert_eq!(changes, [Change { who, online: true, last_seen: None }]);
    assert_eq!(a.online(&[who]).await.unwrap(), [true]);
}

/// A person with a socket on this node is online without the roster's word (so pushes, which ask
/// for every round of messages, need no Redis call for them); a person elsewhere is asked about.
#[tokio::test]
async fn presence_answers_for_its_own_sockets_and_asks_the_roster_about_the_others() {
    let Some(redis) = TestRedis::from_env().await else { return };
    let db = common::TestDatabase::sqlite();
    let store = anapars_hub::adapters::sql::connect(&db.config).await.expect("store");
    let here = Arc::new(node(&redis, Duration::from_secs(30)).await);
    let elsewhere = node(&redis, Duration::from_secs(30)).await;
    let presence = anapars_hub::domain::presence::Presence::new(
        Duration::from_secs(5),
        store.clone(),
        store,
        Arc::new(Unheard),
        here.clone(),
    );
    let (local, remote, nobody) =
        (Principal::User(UserId::generate()), Principal::User(UserId::generate()), Principal::User(UserId::generate()));
    presence.connected(local);
    elsewhere.arrived(remote, 1).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !here.online(&[local]).await.unwrap()[0] {
        assert!(tokio::time::Instant::now() < deadline, "the local arrival never reached the roster");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(presence.online(&[local, remote, nobody]).await, [true, true, false]);

    // Redis lost its data: the roster no longer knows the local person, the node still does.
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL").arg(redis.keys().await).query_async(&mut conn).await.unwrap();
    assert_eq!(here.online(&[local]).await.unwrap(), [false], "the roster forgot");
    assert_eq!(presence.online(&[nobody, local, remote]).await, [false, true, false], "in the order asked");
    assert!(presence.connected_now(&[local]).await[0]);
}

/// Announcements go nowhere: these tests ask presence, they do not listen to it.
struct Unheard;

impl anapars_hub::ports::broker::Broker for Unheard {
    fn publish(&self, _: &anapars_hub::ports::broker::Audience<'_>, _: anapars_hub::model::event::Event) {}
    fn tell_here(&self, _: &anapars_hub::ports::broker::Audience<'_>, _: anapars_hub::model::event::Event) {}
    fn queue_changed(&self, _: u32) {}
    fn session_revoked(
        &self,
        _: Principal,
        _: anapars_hub::model::ids::SessionId,
        _: anapars_hub::model::account::RevokeReason,
    ) {
    }
    fn agent_disabled(&self, _: anapars_hub::model::ids::AgentId) {}
}
