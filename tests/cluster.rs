//! Several hub processes behind one Postgres and one Redis, or a Redis Cluster: conversations, queue
//! watchers, presence, profiles and revocations across nodes; a node killed with SIGKILL
//! mid-conversation; Redis stopped and started, or a cluster master killed and its replica
//! promoted, under a live conversation; push notifications sent once by one of the nodes, held back
//! by a socket on another node, and kept across a restart of every node.
//!
//! Each test starts its own `redis-server` on a free loopback port (so that it can stop it without
//! disturbing other tests), or its own Redis Cluster of three masters with a replica each, and real
//! `anapars-hub` processes on port 0. They need `TEST_DATABASE_URL` (CI sets it) and the
//! `redis-server` binary; without the variable they are skipped, and with it a missing
//! `redis-server` fails them.

mod common;

use anapars_hub::protocol::Encoding;
use common::cluster::{
    assert_unique, open_ticket, send, subscribe, until_message, Cluster, Stream, ADMIN_TOKEN, GRACE_MS, NODE_TTL_MS,
    PATIENCE, SWEEP_MS,
};
use common::hub::{phone, Client};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn is_presence(f: &Value, id: &str, online: bool) -> bool {
    f["type"] == "presence" && f["participant"]["id"] == id && f["online"] == online
}

async fn share_everything(cluster: Cluster) {
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

async fn kill_a_node_mid_conversation(mut cluster: Cluster) {
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

/// Agent Ana on node 1 holds a ticket of a user on node 0; both follow it, and a first message has
/// crossed.
struct Conversation {
    ana: Client,
    user: Client,
    token: String,
    ticket: String,
    ana_stream: Stream,
    user_stream: Stream,
}

impl Conversation {
    async fn start(cluster: &Cluster, number: &str) -> Self {
        let (ana_token, _) = cluster.agent(1, "Ana").await;
        let mut ana = cluster.connect(1, &ana_token, Encoding::MsgPack).await;
        let token = cluster.sign_in(0, number, "phone-a").await;
        let mut user = cluster.connect(0, &token, Encoding::Json).await;
        let ticket = open_ticket(&mut user).await;
        let claim = ana.request(json!({"type": "ticket.claim", "ticket_id": ticket})).await;
        assert_eq!(claim["type"], "ticket.update.ok", "{claim}");
        subscribe(&mut ana, &ticket, 0).await;
        subscribe(&mut user, &ticket, 0).await;
        let (mut ana_stream, user_stream) = (Stream::default(), Stream::default());
        send(&mut user, &ticket, "before").await;
        until_message(&mut ana, &mut ana_stream, &ticket, "before").await;
        Self { ana, user, token, ticket, ana_stream, user_stream }
    }
}

#[tokio::test]
async fn redis_stopped_and_started_under_a_live_conversation() {
    let Some(mut cluster) = Cluster::start(2).await else { return };
    let Conversation { mut ana, mut user, ticket, mut ana_stream, mut user_stream, .. } =
        Conversation::start(&cluster, &phone()).await;
    cluster.wait_ready(0, 200).await;

    // Redis goes away: both nodes keep serving their sockets and say they are not ready; messages
    // still cross nodes, through the storage sweep.
    cluster.redis.one().stop();
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
    cluster.redis.one().resume();
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

/// Asks each of `bases` for `/readyz` every 50 ms until `stop`: every answer, as (status, body).
async fn ask_ready_until(
    http: reqwest::Client,
    bases: Vec<String>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<(u16, Value)> {
    let mut answers = Vec::new();
    loop {
        for base in &bases {
            let answer = match http.get(format!("{base}/readyz")).send().await {
                Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
                Err(e) => (0, json!(e.to_string())),
            };
            answers.push(answer);
        }
        tokio::select! {
            _ = &mut stop => return answers,
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

/// A Redis Cluster of one master, which does not know its own address: the nodes become ready
/// and carry a conversation between them.
#[tokio::test]
async fn nodes_on_a_redis_cluster_of_one_master_are_ready_and_share_a_conversation() {
    let Some(cluster) = Cluster::on_lone_master(2, &[]).await else { return };
    cluster.wait_ready(0, 200).await;
    cluster.wait_ready(1, 200).await;
    let Conversation { mut ana, mut user, ticket, mut ana_stream, mut user_stream, .. } =
        Conversation::start(&cluster, &phone()).await;
    send(&mut ana, &ticket, "from node 1").await;
    until_message(&mut user, &mut user_stream, &ticket, "from node 1").await;
    send(&mut user, &ticket, "from node 0").await;
    until_message(&mut ana, &mut ana_stream, &ticket, "from node 0").await;
    assert_unique(&ana_stream);
    assert_unique(&user_stream);
}

/// Sends, answering `unavailable` with another try (as clients do) while Redis fails over: the
/// rate-limit counter of the sender may live on the shard that is changing hands.
async fn send_through_failover(c: &mut Client, ticket: &str, cmid: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r =
            c.request(json!({"type": "ticket.send", "ticket_id": ticket, "client_msg_id": cmid, "body": cmid})).await;
        if r["type"] == "ticket.send.ok" {
            return;
        }
        assert_eq!(r["error"]["code"], "unavailable", "only `unavailable` while a shard fails over: {r}");
        assert!(Instant::now() < deadline, "{cmid} was never stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The master holding the conversation's channel dies under it, then another master (every master
/// holds parts of the roster): each replica takes over, and nothing is lost or repeated; presence
/// and revocations work after both.
#[tokio::test]
async fn a_redis_cluster_master_killed_under_a_live_conversation() {
    // Node heartbeats outlast a failover (about 2 s here), as the README asks of production
    // settings: a failover then takes nobody offline.
    let Some(mut cluster) = Cluster::sharded(2, &[("HUB_PRESENCE_NODE_TTL_MS", "8000")]).await else { return };
    let number = phone();
    let Conversation { mut ana, mut user, token, ticket, mut ana_stream, mut user_stream } =
        Conversation::start(&cluster, &number).await;
    let user_id = user.request(json!({"type": "me"})).await["user_id"].as_str().unwrap().to_owned();

    let channel_master =
        cluster.redis.sharded().master_of(&format!("cluster-test:ch:t:{ticket}")).await.expect("the channel's master");
    // Every master holds parts of the roster: the second failover is of another one than the
    // channel's (which still has its replica).
    let second = *cluster.redis.sharded().masters().await.iter().find(|&&m| m != channel_master).unwrap();
    // Both nodes are asked whether they are ready all along: a failover is every node's alike, and
    // a load balancer that took them all out would refuse every new socket until it is over.
    let bases: Vec<String> = cluster.nodes.iter().map(|n| n.base.clone()).collect();
    let (stop_asking, stop) = tokio::sync::oneshot::channel::<()>();
    let asking = tokio::spawn(ask_ready_until(cluster.http.clone(), bases, stop));
    for (round, master) in [channel_master, second].into_iter().enumerate() {
        let took = cluster.redis.sharded().kill_and_fail_over(master).await.expect("the replica takes over");
        eprintln!("redis cluster failed over in {took:?}");
        for i in 0..5 {
            let body = format!("round {round} user {i}");
            send_through_failover(&mut user, &ticket, &body).await;
            until_message(&mut ana, &mut ana_stream, &ticket, &body).await;
            let body = format!("round {round} agent {i}");
            send_through_failover(&mut ana, &ticket, &body).await;
            until_message(&mut user, &mut user_stream, &ticket, &body).await;
        }
        cluster.wait_ready(0, 200).await;
        cluster.wait_ready(1, 200).await;
    }
    let _ = stop_asking.send(());
    let answers = asking.await.unwrap();
    let not_ready: Vec<&(u16, Value)> = answers.iter().filter(|(status, _)| *status != 200).collect();
    assert!(not_ready.is_empty(), "a node said it was not ready during a failover: {not_ready:?}");
    assert!(
        answers.iter().any(|(_, body)| body["degraded"] == "redis shard"),
        "the failovers were seen as a shard down ({} answers)",
        answers.len()
    );
    assert_unique(&ana_stream);
    assert_unique(&user_stream);

    // Presence after the failovers: the user's second socket leaves and nothing is announced; a
    // sign-in on another phone revokes the first one, live, on its node; then the user is offline.
    let second = cluster.connect(1, &token, Encoding::MsgPack).await;
    drop(second);
    tokio::time::sleep(Duration::from_millis(GRACE_MS * 3)).await;
    assert!(
        !ana.seen.iter().any(|f| is_presence(f, &user_id, false)),
        "offline announced while connected, during the failovers or after"
    );
    cluster.sign_in(1, &number, "phone-b").await;
    assert_eq!(user.closed().await, Some(4003));
    ana.event_where("presence", |f| is_presence(f, &user_id, false)).await;
}

async fn delete_an_account(cluster: Cluster) {
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
    let deadline = Instant::now() + PATIENCE;
    loop {
        let named = cluster.redis.naming(&user_id).await;
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
async fn push_once_and_across_a_restart(mut cluster: Cluster) {
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

/// A waiting user hears their place from their own node, once however many nodes there are, and a
/// claim through another node moves them at once, not at the nodes' 5 s safety round.
async fn queue_positions(cluster: Cluster) {
    let (ana_token, _) = cluster.agent(1, "Ana").await;
    let mut ana = cluster.connect(1, &ana_token, Encoding::Json).await;
    let first_token = cluster.sign_in(0, &phone(), "phone-1").await;
    let mut first = cluster.connect(0, &first_token, Encoding::Json).await;
    let first_ticket = open_ticket(&mut first).await;
    first.event_where("ticket.queue", |f| f["ticket_id"] == first_ticket.as_str() && f["position"] == 1).await;
    let second_token = cluster.sign_in(2, &phone(), "phone-2").await;
    let mut second = cluster.connect(2, &second_token, Encoding::Json).await;
    let second_ticket = open_ticket(&mut second).await;
    second.event_where("ticket.queue", |f| f["ticket_id"] == second_ticket.as_str() && f["position"] == 2).await;

    let claimed = Instant::now();
    let r = ana.request(json!({"type": "ticket.claim", "ticket_id": first_ticket})).await;
    assert_eq!(r["type"], "ticket.update.ok", "{r}");
    second.event_where("ticket.queue", |f| f["ticket_id"] == second_ticket.as_str() && f["position"] == 1).await;
    assert!(claimed.elapsed() < Duration::from_secs(3), "moved up after {:?}: at a safety round", claimed.elapsed());

    // Past every node's next safety round: nobody tells it again.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    second.request(json!({"type": "ping"})).await;
    let told: Vec<&Value> = second.seen.iter().filter(|f| f["type"] == "ticket.queue").collect();
    assert_eq!(told.len(), 2, "each place told once: {told:?}");
}

/// Auto-assignment runs on the node where the queue changed: the nodes told of the change move
/// their waiting users up but do not race it for the same tickets.
async fn assignment_where_the_queue_changed(cluster: Cluster) {
    const ROUNDS: &str = "hub_auto_assign_rounds_total";
    let (ana_token, ana_id) = cluster.agent(1, "Ana").await;
    let waiting_token = cluster.sign_in(2, &phone(), "phone-1").await;
    let mut waiting = cluster.connect(2, &waiting_token, Encoding::Json).await;
    let first = open_ticket(&mut waiting).await;
    waiting.event_where("ticket.queue", |f| f["ticket_id"] == first.as_str() && f["position"] == 1).await;
    let next_token = cluster.sign_in(0, &phone(), "phone-2").await;
    let mut next = cluster.connect(0, &next_token, Encoding::Json).await;
    let second = open_ticket(&mut next).await;
    next.event_where("ticket.queue", |f| f["ticket_id"] == second.as_str() && f["position"] == 2).await;
    // Each node's own change ran its round (the first with nobody online to take the ticket).
    let before = [cluster.metric(0, ROUNDS).await, cluster.metric(1, ROUNDS).await, cluster.metric(2, ROUNDS).await];
    assert!(before[0] >= 1.0 && before[2] >= 1.0, "a ticket opened on a node runs its round there: {before:?}");

    // Ana becomes available on node 1 for one ticket: node 1 hands her the oldest, and node 0,
    // told of it, moves its waiting user up.
    let mut ana = cluster.connect(1, &ana_token, Encoding::Json).await;
    ana.request(json!({"type": "agent.status", "status": "available", "capacity": 1})).await;
    let got = waiting.event_where("ticket.updated", |f| f["ticket"]["status"] == "assigned").await;
    assert_eq!((got["ticket"]["id"].as_str(), got["ticket"]["agent_id"].as_str()), (Some(&*first), Some(&*ana_id)));
    next.event_where("ticket.queue", |f| f["ticket_id"] == second.as_str() && f["position"] == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = [cluster.metric(0, ROUNDS).await, cluster.metric(1, ROUNDS).await, cluster.metric(2, ROUNDS).await];
    assert!(after[1] > before[1], "the node where Ana became available assigned: {before:?} then {after:?}");
    assert_eq!(
        (after[0], after[2]),
        (before[0], before[2]),
        "the nodes told of the change ran no assignment of their own: {before:?} then {after:?}"
    );
}

/// Each scenario runs on one Redis and on a Redis Cluster: `$one` and `$sharded` are its two tests.
macro_rules! on_both {
    ($(#[$attr:meta])* $one:ident, $sharded:ident: $scenario:ident($count:expr, $settings:expr)) => {
        $(#[$attr])*
        async fn $one() {
            if let Some(cluster) = Cluster::start_with($count, $settings).await {
                $scenario(cluster).await;
            }
        }

        $(#[$attr])*
        async fn $sharded() {
            if let Some(cluster) = Cluster::sharded($count, $settings).await {
                $scenario(cluster).await;
            }
        }
    };
}

/// The periodic session re-check out of the way: a revocation it found first would be reported as
/// `signed_out`, so these tests see the published one with its own reason.
const LIVE_REVOCATIONS: [(&str, &str); 1] = [("HUB_SESSION_RECHECK_SECS", "600")];

on_both!(
    #[tokio::test]
    three_nodes_share_conversations_queue_presence_profiles_and_revocations,
    three_nodes_share_conversations_queue_presence_profiles_and_revocations_on_redis_cluster:
        share_everything(3, &LIVE_REVOCATIONS)
);

on_both!(
    #[tokio::test]
    a_node_killed_mid_conversation_loses_and_duplicates_nothing,
    a_node_killed_mid_conversation_loses_and_duplicates_nothing_on_redis_cluster:
        kill_a_node_mid_conversation(3, &[])
);

on_both!(
    #[tokio::test]
    deleting_an_account_through_one_node_reaches_every_node,
    deleting_an_account_through_one_node_reaches_every_node_on_redis_cluster:
        delete_an_account(3, &LIVE_REVOCATIONS)
);

const PUSH_SETTINGS: [(&str, &str); 2] = [("HUB_WEBPUSH_ALLOW_HTTP", "true"), ("HUB_PUSH_COLLAPSE_MS", "1500")];

on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    pushes_go_out_once_from_one_node_and_survive_a_restart,
    pushes_go_out_once_from_one_node_and_survive_a_restart_on_redis_cluster:
        push_once_and_across_a_restart(2, &PUSH_SETTINGS)
);

on_both!(
    #[tokio::test]
    waiting_users_hear_their_place_once_from_their_own_node,
    waiting_users_hear_their_place_once_from_their_own_node_on_redis_cluster: queue_positions(3, &[])
);

on_both!(
    #[tokio::test]
    auto_assignment_runs_once_on_the_node_where_the_queue_changed,
    auto_assignment_runs_once_on_the_node_where_the_queue_changed_on_redis_cluster:
        assignment_where_the_queue_changed(3, &[("HUB_AUTO_ASSIGN", "true")])
);
