//! Storage faults in the middle of a conversation: the hub's Postgres connections are terminated
//! while messages flow; the hub on SQLite is killed with SIGKILL while sends are in flight and
//! started again on the same file. Every acknowledged message must be stored exactly once with the
//! seq it was acknowledged with; every refused or unanswered one must be refused with a documented
//! code and be storable by resending it. The Postgres test runs only where Postgres is (CI sets
//! `TEST_DATABASE_URL`).

mod common;

use anapars_hub::protocol::Encoding;
use common::cluster::{open_ticket, Cluster};
use common::hub::{phone, Client, Next, TestHub};
use common::TestDatabase;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn terminated_database_connections_lose_no_acknowledged_message() {
    let Some(admin_url) = common::postgres_admin_url() else {
        eprintln!("TEST_DATABASE_URL not set: the Postgres fault test runs in CI");
        return;
    };
    let db = TestDatabase::postgres(&admin_url).await;
    let hub = TestHub::start(db, None, |c| {
        c.db_timeout_ms = 1000;
        c.max_frames_per_sec = 10_000;
        c.frame_burst = 10_000;
    })
    .await;
    let dbname = hub.postgres_database().unwrap().to_owned();
    let token = hub.token(&phone()).await;
    let mut c = hub.connect_as(Encoding::MsgPack, &token).await;
    let r = c.request(json!({"type": "ticket.open", "subject": "s", "body": "b", "client_msg_id": "open"})).await;
    let tid = r["ticket"]["id"].as_str().unwrap().to_owned();

    let killer = tokio::spawn(async move {
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await.unwrap();
        let mut killed = 0u64;
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            killed += end_connections(&mut admin, &dbname).await;
        }
        killed
    });

    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut refused: Vec<String> = Vec::new();
    let started = std::time::Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_millis(1300) || !killer.is_finished() {
        let cmid = format!("m-{i}");
        i += 1;
        let r = c.request(json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": cmid, "body": cmid})).await;
        match r["type"].as_str() {
            Some("ticket.send.ok") => {
                acked.insert(cmid, r["seq"].as_u64().unwrap());
            }
            _ => {
                let code = r["code"].as_str().unwrap_or_default().to_owned();
                assert!(["unavailable", "overloaded"].contains(&code.as_str()), "documented refusal, got {r}");
                refused.push(cmid);
            }
        }
    }
    let killed = killer.await.unwrap();
    assert!(killed > 0, "the test must actually kill connections");

    // Resend every refused message until it is stored: the hub recovers by itself.
    for cmid in &refused {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r =
                c.request(json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": cmid, "body": cmid})).await;
            if r["type"] == "ticket.send.ok" {
                acked.insert(cmid.clone(), r["seq"].as_u64().unwrap());
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the hub did not recover: {r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let stored = stored_messages(&mut c, &tid).await;
    assert_eq!(stored, acked, "every acknowledged message stored once, with the seq it was acknowledged with");
    eprintln!("sent {i}, refused then resent {}, connections killed {killed}", refused.len());
}

/// The message writer keeps its Postgres connections between batches and hands out one that
/// answered under a second ago without a ping. When Postgres ends them under it (a restart, a
/// failover, an operator's `pg_terminate_backend`), the next message must still be stored and
/// acknowledged, not refused `unavailable` for the writer's stale connection.
#[tokio::test]
async fn a_message_sent_just_after_the_writers_connections_ended_is_stored() {
    let Some(admin_url) = common::postgres_admin_url() else {
        eprintln!("TEST_DATABASE_URL not set: the Postgres fault test runs in CI");
        return;
    };
    let db = TestDatabase::postgres(&admin_url).await;
    let hub = TestHub::start(db, None, |_| {}).await;
    let dbname = hub.postgres_database().unwrap().to_owned();
    let token = hub.token(&phone()).await;
    let mut c = hub.connect_as(Encoding::Json, &token).await;
    let r = c.request(json!({"type": "ticket.open", "subject": "s", "body": "b", "client_msg_id": "open"})).await;
    let tid = r["ticket"]["id"].as_str().unwrap().to_owned();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await.unwrap();
    let mut acked = BTreeMap::new();
    for i in 0..4 {
        if i > 0 {
            assert!(end_connections(&mut admin, &dbname).await > 0, "the hub's connections were not found");
        }
        let cmid = format!("m-{i}");
        let r = c.request(json!({"type": "ticket.send", "ticket_id": tid, "client_msg_id": cmid, "body": cmid})).await;
        assert_eq!(r["type"], "ticket.send.ok", "message {i}, sent just after the connections ended: {r}");
        acked.insert(cmid, r["seq"].as_u64().unwrap());
    }
    assert_eq!(stored_messages(&mut c, &tid).await, acked);
}

/// Ends every connection to `dbname` but `admin`'s, as a restart or failover would, and returns
/// how many it ended once each one's backend has exited (or after a second).
async fn end_connections(admin: &mut sqlx::PgConnection, dbname: &str) -> u64 {
    let ended: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid, 1000) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(dbname)
    .fetch_all(admin)
    .await
    .unwrap();
    ended.len() as u64
}

/// Users whose sends are in flight when the hub dies, each on a ticket of their own (so that the
/// writer has batches in flight for several tickets at once), and how many each sends at once.
const KILLED_USERS: usize = 4;
const SENDS_IN_FLIGHT: usize = 150;

/// The client message id and seq a `ticket.send.ok` acknowledges (the sends' ids are their
/// numbers, `m-<id>` their client message ids); None for any other frame.
fn ack(f: &serde_json::Value) -> Option<(String, u64)> {
    (f["type"] == "ticket.send.ok")
        .then(|| (format!("m-{}", f["id"].as_u64().expect("the send's id")), f["seq"].as_u64().expect("a seq")))
}

/// Reads `c` until its socket ends: the seq of each acknowledged send, by client message id.
async fn acks_until_closed(c: &mut Client, acked: &mut BTreeMap<String, u64>) {
    loop {
        match c.next_within(Duration::from_secs(10)).await {
            Next::Frame(f) => acked.extend(ack(&f)),
            Next::Closed(_) => return,
            Next::TimedOut => panic!("the killed hub's socket stayed open"),
        }
    }
}

/// The ticket's stream read back: the seq of each message sent as `m-...` by client message id,
/// after checking that no client message id is stored twice and the seqs are gapless from 1.
async fn stored_messages(c: &mut Client, ticket: &str) -> BTreeMap<String, u64> {
    let (mut stored, mut seqs, mut after) = (BTreeMap::new(), Vec::new(), 0);
    loop {
        let h =
            c.request(json!({"type": "ticket.history", "ticket_id": ticket, "after_seq": after, "limit": 100})).await;
        for e in h["events"].as_array().expect("events") {
            let seq = e["seq"].as_u64().unwrap();
            seqs.push(seq);
            after = seq;
            if let Some(cmid) = e["client_msg_id"].as_str() {
                assert!(stored.insert(cmid.to_owned(), seq).is_none(), "{cmid} stored twice");
            }
        }
        if !h["more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "gapless and ordered");
    stored.retain(|cmid, _| cmid.starts_with("m-"));
    stored
}

#[tokio::test]
async fn a_hub_on_sqlite_killed_with_sends_in_flight_loses_and_duplicates_nothing() {
    let settings = [("HUB_MAX_FRAMES_PER_SEC", "100000"), ("HUB_FRAME_BURST", "100000")];
    let mut hub = Cluster::alone(TestDatabase::sqlite(), &settings);
    hub.nodes.push(hub.spawn_node().await);
    let mut users = Vec::new();
    for _ in 0..KILLED_USERS {
        let token = hub.sign_in(0, &phone(), "phone").await;
        let mut c = hub.connect(0, &token, Encoding::MsgPack).await;
        let ticket = open_ticket(&mut c).await;
        users.push((token, c, ticket));
    }

    // Every user sends at once; the hub dies once a third of the first user's sends are answered.
    for (_, c, ticket) in &mut users {
        for i in 0..SENDS_IN_FLIGHT {
            let cmid = format!("m-{i}");
            c.send(json!({"type": "ticket.send", "id": i, "ticket_id": ticket, "client_msg_id": cmid, "body": cmid}))
                .await;
        }
    }
    let mut acked: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); KILLED_USERS];
    while acked[0].len() < SENDS_IN_FLIGHT / 3 {
        let f = users[0].1.recv().await;
        acked[0].extend(ack(&f));
    }
    hub.kill(0).await;
    for ((_, c, _), acked) in users.iter_mut().zip(&mut acked) {
        acks_until_closed(c, acked).await;
    }
    let answered: usize = acked.iter().map(BTreeMap::len).sum();
    assert!(answered < KILLED_USERS * SENDS_IN_FLIGHT, "every send was answered before the kill");

    // Started again on the same file: what was acknowledged is there, once, with its seq; resending
    // everything stores each message once.
    hub.nodes[0] = hub.spawn_node().await;
    for ((token, _, ticket), acked) in users.iter().zip(&acked) {
        let mut c = hub.connect(0, token, Encoding::MsgPack).await;
        let stored = stored_messages(&mut c, ticket).await;
        for (cmid, seq) in acked {
            assert_eq!(stored.get(cmid), Some(seq), "{cmid}: acknowledged with seq {seq}, stored {stored:?}");
        }
        for i in 0..SENDS_IN_FLIGHT {
            let cmid = format!("m-{i}");
            let r = c
                .request(json!({"type": "ticket.send", "ticket_id": ticket, "client_msg_id": cmid, "body": cmid}))
                .await;
            assert_eq!(r["type"], "ticket.send.ok", "{r}");
            if let Some(seq) = stored.get(&cmid) {
                assert_eq!((r["duplicate"].as_bool(), r["seq"].as_u64()), (Some(true), Some(*seq)), "{r}");
            }
        }
        assert_eq!(stored_messages(&mut c, ticket).await.len(), SENDS_IN_FLIGHT);
    }
    eprintln!("answered before the kill: {answered} of {}", KILLED_USERS * SENDS_IN_FLIGHT);
}
