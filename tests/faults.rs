//! Storage faults in the middle of a conversation: the hub's Postgres connections are terminated
//! while messages flow. Every acknowledged message must be stored exactly once with the seq it was
//! acknowledged with; every refused one must be refused with a documented code and be storable by
//! resending it. Runs only where Postgres is (CI sets `TEST_DATABASE_URL`).

mod common;

use anapars_hub::protocol::Encoding;
use common::hub::{phone, TestHub};
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
            let n: Vec<(bool,)> = sqlx::query_as(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&dbname)
            .fetch_all(&mut admin)
            .await
            .unwrap();
            killed += n.len() as u64;
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

    // Read the whole stream back.
    let mut stored: BTreeMap<String, u64> = BTreeMap::new();
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let h = c.request(json!({"type": "ticket.history", "ticket_id": tid, "after_seq": after, "limit": 100})).await;
        let events = h["events"].as_array().unwrap().clone();
        for e in &events {
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
    stored.remove("open");
    assert_eq!(stored, acked, "every acknowledged message stored once, with the seq it was acknowledged with");
    eprintln!("sent {i}, refused then resent {}, connections killed {killed}", refused.len());
}
