//! Several hub processes behind one Postgres and one Redis: conversations, queue watchers, presence,
//! profiles and revocations across nodes; a node killed with SIGKILL mid-conversation; Redis stopped
//! and started under a live conversation; push notifications sent once by one of the nodes, held
//! back by a socket on another node, and kept across a restart of every node.
//!
//! Each test starts its own `redis-server` on a free loopback port (so that it can stop it without
//! disturbing other tests) and real `anapars-hub` processes on port 0. They need
//! `TEST_DATABASE_URL` (CI sets it) and the `redis-server` binary; without the variable they are
//! skipped, and with it a missing `redis-server` fails them.

mod common;

use anapars_hub::protocol::Encoding;
use common::cluster::{
    assert_unique, open_ticket, send, subscribe, until_message, Cluster, Stream, ADMIN_TOKEN, GRACE_MS, NODE_TTL_MS,
    PATIENCE, SWEEP_MS,
};
use common::hub::phone;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn is_presence(f: &Value, id: &str, online: bool) -> bool {
    f["type"] == "presence" && f["participant"]["id"] == id && f["online"] == online
}

#[tokio::test]
async fn three_nodes_share_conversations_queue_presence_profiles_and_revocations() {
    let Some(cluster) = Cluster::start(3).await else { return };
    let (ana_token, _) = cluster.agent(1, "Ana").await;
    let (carl_token, _) = cluster.agent(2, "Carl").await;
    let mut ana = cluster.connect(1, &ana_token, Encoding::MsgPack).await;
    let mut carl = cluster.connect(2, &carl_token, Encoding::Json).await;
    assert_eq!(carl.request(json!({"type": "queue.subscribe"})).await["type"], "queue.subscribe.ok");

    // A user on node 0 opens a ticket: the queue watcher on node 2 sees it.
    let number = phone();
    let token = cluster.sign_in(0, &number, "phone-a").await;
    let mut user = cluster.connect(0, &token, Encoding::Json).await;
    let user_id = user.request(json!({"type": "me"})).await["user_id"].as_str().unwrap().to_owned();
    let ticket = open_ticket(&mut user).await;
    carl.event_where("ticket.updated", |f| f["ticket"]["id"] == ticket.as_str() && f["ticket"]["status"] == "open")
        .await;

    // The agent on node 1 claims it; the user on node 0 sees the claim live.
    subscribe(&mut user, &ticket, 0).await;
    assert_eq!(ana.request(json!({"type": "ticket.claim", "ticket_id": ticket})).await["type"], "ticket.update.ok");
    user.event_where("ticket.event", |f| f["event"]["kind"] == "claimed").await;
    carl.event_where("ticket.updated", |f| f["ticket"]["id"] == ticket.as_str() && f["ticket"]["status"] == "assigned")
        .await;
    subscribe(&mut ana, &ticket, 0).await;

    // Messages both ways, in order and once each.
    let (mut user_stream, mut ana_stream) = (Stream::default(), Stream::default());
    for i in 0..5 {
        send(&mut user, &ticket, &format!("from user {i}")).await;
        until_message(&mut ana, &mut ana_stream, &ticket, &format!("from user {i}")).await;
        send(&mut ana, &ticket, &format!("from agent {i}")).await;
        until_message(&mut user, &mut user_stream, &ticket, &format!("from agent {i}")).await;
    }

    // Typing, read receipts and profile changes cross nodes too.
    ana.request(json!({"type": "ticket.typing", "ticket_id": ticket})).await;
    user.event("ticket.typing").await;
    let last = user_stream.last_seq;
    user.request(json!({"type": "ticket.read", "ticket_id": ticket, "seq": last})).await;
    ana.event_where("ticket.receipt", |f| f["read_seq"] == last).await;
    user.request(json!({"type": "profile.update", "name": "Sara"})).await;
    ana.event_where("profile.updated", |f| f["profile"]["name"] == "Sara").await;

    // An announcement sent through node 0 reaches every socket on every node, once.
    let sent = cluster
        .http
        .post(format!("{}/v1/admin/announcements", cluster.nodes[0].base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"text": "Maintenance at 23:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status().as_u16(), 202);
    for c in [&mut user, &mut ana, &mut carl] {
        assert_eq!(c.event("announcement").await["text"], "Maintenance at 23:00");
        c.request(json!({"type": "ping"})).await;
        assert_eq!(c.seen.iter().filter(|f| f["type"] == "announcement").count(), 1);
    }

    // One person on two nodes is one presence: leaving one node announces nothing.
    let mut user_on_2 = cluster.connect(2, &token, Encoding::MsgPack).await;
    drop(user);
    tokio::time::sleep(Duration::from_millis(GRACE_MS * 3)).await;
    let profile = ana.request(json!({"type": "profile.get", "user_id": user_id})).await;
    assert_eq!(profile["profile"]["online"], true, "{profile}");
    assert!(!ana.seen.iter().any(|f| is_presence(f, &user_id, false)), "no offline while on another node");

    // Signing in on a new phone through node 1 cuts the old phone off on node 2.
    cluster.sign_in(1, &number, "phone-b").await;
    assert_eq!(user_on_2.closed().await, Some(4003));
    let revoked = user_on_2.seen.iter().find(|f| f["type"] == "session.revoked").expect("session.revoked first");
    assert_eq!(revoked["reason"], "signed_in_elsewhere");
    ana.event_where("presence", |f| is_presence(f, &user_id, false)).await;
}

#[tokio::test]
async fn a_node_killed_mid_conversation_loses_and_duplicates_nothing() {
    let Some(mut cluster) = Cluster::start(3).await else { return };
    let (ana_token, _) = cluster.agent(1, "Ana").await;
    let mut ana = cluster.connect(1, &ana_token, Encoding::Json).await;
    // Two users on node 0, both with a ticket Ana holds.
    let token = cluster.sign_in(0, &phone(), "phone").await;
    let bystander_token = cluster.sign_in(0, &phone(), "phone").await;
    let mut user = cluster.connect(0, &token, Encoding::MsgPack).await;
    let mut bystander = cluster.connect(0, &bystander_token, Encoding::Json).await;
    let bystander_id = bystander.request(json!({"type": "me"})).await["user_id"].as_str().unwrap().to_owned();
    let user_id = user.request(json!({"type": "me"})).await["user_id"].as_str().unwrap().to_owned();
    let ticket = open_ticket(&mut user).await;
    let other = open_ticket(&mut bystander).await;
    for t in [&ticket, &other] {
        assert_eq!(ana.request(json!({"type": "ticket.claim", "ticket_id": t})).await["type"], "ticket.update.ok");
    }
    subscribe(&mut ana, &ticket, 0).await;
    let mut cursor = subscribe(&mut user, &ticket, 0).await["ticket"]["last_seq"].as_u64().unwrap();

    // The user sends ten messages; node 0 dies right after the fifth is sent, ack or no ack.
    let mut ana_stream = Stream::default();
    let mut unacked = Vec::new();
    for i in 0..5 {
        let r = send(&mut user, &ticket, &format!("m{i}")).await;
        cursor = cursor.max(r["seq"].as_u64().unwrap());
    }
    user.send(json!({"type": "ticket.send", "id": 999, "ticket_id": ticket, "client_msg_id": "m5", "body": "m5"}))
        .await;
    unacked.push("m5");
    cluster.kill(0).await;
    let killed_at = Instant::now();
    drop(user);
    drop(bystander);

    // It resumes on node 2 from its cursor and resends what was not acknowledged, then goes on.
    let mut user = cluster.connect(2, &token, Encoding::MsgPack).await;
    subscribe(&mut user, &ticket, cursor).await;
    for cmid in unacked {
        send(&mut user, &ticket, cmid).await;
    }
    for i in 6..10 {
        send(&mut user, &ticket, &format!("m{i}")).await;
    }
    for i in 0..10 {
        until_message(&mut ana, &mut ana_stream, &ticket, &format!("m{i}")).await;
    }
    assert_unique(&ana_stream);

    // The bystander, held only by the dead node, goes offline once its heartbeat expires; the user,
    // back on another node, stays online.
    ana.event_where("presence", |f| is_presence(f, &bystander_id, false)).await;
    eprintln!("offline announced {:?} after the kill (node ttl {NODE_TTL_MS} ms)", killed_at.elapsed());
    let profile = ana.request(json!({"type": "profile.get", "user_id": user_id})).await;
    assert_eq!(profile["profile"]["online"], true, "{profile}");
}

#[tokio::test]
async fn redis_stopped_and_started_under_a_live_conversation() {
    let Some(mut cluster) = Cluster::start(2).await else { return };
    let (ana_token, _) = cluster.agent(1, "Ana").await;
    let mut ana = cluster.connect(1, &ana_token, Encoding::MsgPack).await;
    let token = cluster.sign_in(0, &phone(), "phone").await;
    let mut user = cluster.connect(0, &token, Encoding::Json).await;
    let ticket = open_ticket(&mut user).await;
    assert_eq!(ana.request(json!({"type": "ticket.claim", "ticket_id": ticket})).await["type"], "ticket.update.ok");
    subscribe(&mut ana, &ticket, 0).await;
    subscribe(&mut user, &ticket, 0).await;
    let (mut ana_stream, mut user_stream) = (Stream::default(), Stream::default());
    send(&mut user, &ticket, "before").await;
    until_message(&mut ana, &mut ana_stream, &ticket, "before").await;
    cluster.wait_ready(0, 200).await;

    // Redis goes away: both nodes keep serving their sockets and say they are not ready; messages
    // still cross nodes, through the storage sweep.
    cluster.redis.stop();
    cluster.wait_ready(0, 503).await;
    let mut worst = Duration::ZERO;
    for i in 0..3 {
        let body = format!("during {i}");
        let sent = Instant::now();
        send(&mut user, &ticket, &body).await;
        until_message(&mut ana, &mut ana_stream, &ticket, &body).await;
        worst = worst.max(sent.elapsed());
    }
    send(&mut ana, &ticket, "reply during").await;
    until_message(&mut user, &mut user_stream, &ticket, "reply during").await;
    eprintln!("worst delivery delay without Redis: {worst:?} (sweep every {SWEEP_MS} ms)");

    // Redis comes back (empty): the nodes reconnect, become ready and go on live.
    cluster.redis.resume();
    cluster.wait_ready(0, 200).await;
    cluster.wait_ready(1, 200).await;
    for i in 0..3 {
        let body = format!("after {i}");
        send(&mut user, &ticket, &body).await;
        until_message(&mut ana, &mut ana_stream, &ticket, &body).await;
    }
    send(&mut ana, &ticket, "reply after").await;
    until_message(&mut user, &mut user_stream, &ticket, "reply after").await;
    assert_unique(&ana_stream);
    assert_unique(&user_stream);
}

#[tokio::test]
async fn deleting_an_account_through_one_node_reaches_every_node() {
    let Some(cluster) = Cluster::start(3).await else { return };
    let (ana_token, _) = cluster.agent(1, "Ana").await;
    let (carl_token, _) = cluster.agent(2, "Carl").await;
    let mut ana = cluster.connect(1, &ana_token, Encoding::Json).await;
    let mut carl = cluster.connect(2, &carl_token, Encoding::MsgPack).await;
    assert_eq!(carl.request(json!({"type": "queue.subscribe"})).await["type"], "queue.subscribe.ok");
    let token = cluster.sign_in(0, &phone(), "phone-a").await;
    let mut on_0 = cluster.connect(0, &token, Encoding::Json).await;
    let mut on_2 = cluster.connect(2, &token, Encoding::MsgPack).await;
    let user_id = on_0.request(json!({"type": "me"})).await["user_id"].as_str().unwrap().to_owned();
    let ticket = open_ticket(&mut on_0).await;
    assert_eq!(ana.request(json!({"type": "ticket.claim", "ticket_id": ticket})).await["type"], "ticket.update.ok");
    subscribe(&mut ana, &ticket, 0).await;

    // Both steps through node 1, where the user has no socket.
    let base = &cluster.nodes[1].base;
    assert_eq!(common::delete_account(&cluster.http, base, &token).await, 200);

    for socket in [&mut on_0, &mut on_2] {
        assert_eq!(socket.closed().await, Some(4003));
        let revoked = socket.seen.iter().find(|f| f["type"] == "session.revoked").expect("session.revoked");
        assert_eq!(revoked["reason"], "account_deleted");
    }
    assert_eq!(ana.event("ticket.deleted").await["ticket_id"], ticket.as_str());
    assert_eq!(carl.event("ticket.deleted").await["ticket_id"], ticket.as_str());

    // No Redis key of any node names the user any more (presence, node sets, counters).
    let client = redis::Client::open(cluster.redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap();
        let mut named = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await.unwrap();
            let members: Vec<String> = match kind.as_str() {
                "set" => redis::cmd("SMEMBERS").arg(&key).query_async(&mut conn).await.unwrap(),
                "hash" => redis::cmd("HKEYS").arg(&key).query_async(&mut conn).await.unwrap(),
                _ => Vec::new(),
            };
            if key.contains(&user_id) || members.iter().any(|m| m.contains(&user_id)) {
                named.push(key);
            }
        }
        if named.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "redis still names the deleted user: {named:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two nodes share the push queue: an open app on one node holds back the pushes that events on the
/// other node make; with the app closed, a burst is one notification, sent by exactly one of the
/// nodes; and notifications queued when every node is killed go out after a new node starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushes_go_out_once_from_one_node_and_survive_a_restart() {
    let settings = [("HUB_WEBPUSH_ALLOW_HTTP", "true"), ("HUB_PUSH_COLLAPSE_MS", "1500")];
    let Some(mut cluster) = Cluster::start_with(2, &settings).await else { return };
    let receiver = common::webpush::Receiver::start().await;
    let token = cluster.sign_in(0, &phone(), "phone-a").await;
    let mut app = cluster.connect(0, &token, Encoding::Json).await;
    let ticket = open_ticket(&mut app).await;
    let (id, registration) = receiver.subscribe(&[]);
    let put = cluster.http.put(format!("{}/v1/push", cluster.nodes[1].base)).bearer_auth(&token).json(&registration);
    assert_eq!(put.send().await.unwrap().status().as_u16(), 200);
    let (agent_token, _) = cluster.agent(1, "Sara").await;
    let mut agent = cluster.connect(1, &agent_token, Encoding::Json).await;
    assert_eq!(agent.request(json!({"type": "ticket.claim", "ticket_id": ticket})).await["type"], "ticket.update.ok");

    // The app is open on node 0: the agent's messages on node 1 push nothing.
    send(&mut agent, &ticket, "a-1").await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert!(receiver.received(&id).is_empty(), "pushed to an app open on another node");

    // Closed: three messages are one notification, from one node.
    drop(app);
    tokio::time::sleep(Duration::from_millis(GRACE_MS + 700)).await;
    for cmid in ["a-2", "a-3", "a-4"] {
        send(&mut agent, &ticket, cmid).await;
    }
    let pushes = receiver.wait_for(&id, 1).await;
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(receiver.received(&id).len(), 1, "a burst is one notification, sent once: {pushes:?}");
    assert_eq!(pushes[0].payload.as_ref().unwrap()["ticket_id"], ticket.as_str());

    // Queued, then every node is killed before it is due: a new node sends it.
    send(&mut agent, &ticket, "a-5").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    cluster.kill(0).await;
    cluster.kill(1).await;
    assert_eq!(receiver.received(&id).len(), 1, "sent before it was due");
    let node = cluster.spawn_node().await;
    cluster.nodes.push(node);
    let deadline = Instant::now() + PATIENCE;
    while receiver.received(&id).len() < 2 {
        assert!(Instant::now() < deadline, "the queued notification was lost with the nodes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(receiver.received(&id).len(), 2, "sent more than once after the restart");
}
