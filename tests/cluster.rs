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
use common::hub::{phone, Client};
use common::redis_cluster::LocalCluster;
use common::{postgres_admin_url, TestDatabase};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Cluster timings, short so that the tests are quick (production defaults are longer).
const GRACE_MS: u64 = 300;
const NODE_TTL_MS: u64 = 1_500;
const SWEEP_MS: u64 = 200;
const ADMIN_TOKEN: &str = "cluster-test-admin-token-0123456789abcdef";
/// Longest wait for anything a test expects to happen eventually.
const PATIENCE: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `redis-server` of the test's own, on a free port, without persistence.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start() -> Self {
        let mut redis = Self { port: free_port(), child: None };
        redis.resume();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port and waits until it answers.
    fn resume(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but redis-server cannot be started: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (its data goes with it: nothing is persisted).
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Redis the nodes share.
enum Backplane {
    One(OwnRedis),
    Sharded(LocalCluster),
}

impl Backplane {
    fn url(&self) -> String {
        match self {
            Self::One(r) => r.url(),
            Self::Sharded(c) => c.url(),
        }
    }

    fn one(&mut self) -> &mut OwnRedis {
        match self {
            Self::One(r) => r,
            Self::Sharded(_) => panic!("a single Redis was asked of a Redis Cluster"),
        }
    }

    fn sharded(&mut self) -> &mut LocalCluster {
        match self {
            Self::Sharded(c) => c,
            Self::One(_) => panic!("a Redis Cluster was asked of a single Redis"),
        }
    }

    /// Keys that name `id`, in their name or as a member of a set or field of a hash.
    async fn naming(&self, id: &str) -> Vec<String> {
        let mut conn = anapars_hub::adapters::redis::connect(&self.url()).await.expect("redis answers").conn;
        let keys: Vec<String> = match self {
            Self::One(_) => redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap(),
            Self::Sharded(c) => c.keys().await,
        };
        let mut named = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await.unwrap();
            let members: Vec<String> = match kind.as_str() {
                "set" => redis::cmd("SMEMBERS").arg(&key).query_async(&mut conn).await.unwrap(),
                "hash" => redis::cmd("HKEYS").arg(&key).query_async(&mut conn).await.unwrap(),
                _ => Vec::new(),
            };
            if key.contains(id) || members.iter().any(|m| m.contains(id)) {
                named.push(key);
            }
        }
        named
    }
}

/// One `anapars-hub serve` process.
struct Node {
    child: Child,
    base: String,
    ws_url: String,
}

/// Hub processes sharing one database and one Redis.
struct Cluster {
    nodes: Vec<Node>,
    env: Vec<(String, String)>,
    sms_file: PathBuf,
    http: reqwest::Client,
    redis: Backplane,
    _db: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `count` nodes, or None when `TEST_DATABASE_URL` is not set.
    async fn start(count: usize) -> Option<Self> {
        Self::start_with(count, &[]).await
    }

    /// As [`Cluster::start`], with more settings for every node.
    async fn start_with(count: usize, settings: &[(&str, &str)]) -> Option<Self> {
        Self::start_on(false, count, settings).await
    }

    /// As [`Cluster::start_with`], on a Redis Cluster of three masters with a replica each.
    async fn sharded(count: usize, settings: &[(&str, &str)]) -> Option<Self> {
        Self::start_on(true, count, settings).await
    }

    async fn start_on(sharded: bool, count: usize, settings: &[(&str, &str)]) -> Option<Self> {
        let Some(admin) = postgres_admin_url() else {
            eprintln!("TEST_DATABASE_URL not set: cluster tests skipped (CI sets it)");
            return None;
        };
        let db = TestDatabase::postgres(&admin).await;
        let redis = if sharded {
            Backplane::Sharded(
                LocalCluster::start(3).await.expect("redis-server is installed (TEST_DATABASE_URL is set)"),
            )
        } else {
            Backplane::One(OwnRedis::start())
        };
        let dir = tempfile::tempdir().unwrap();
        let sms_file = dir.path().join("sms.jsonl");
        let database_url = db.config.database_url.as_ref().unwrap().0.clone();
        let env: Vec<(String, String)> = [
            ("DATABASE_URL", database_url),
            ("HUB_DATA_KEYS", common::TEST_DATA_KEYS.to_owned()),
            ("REDIS_URL", redis.url()),
            ("HUB_REDIS_PREFIX", "cluster-test:".into()),
            ("HUB_SMS", format!("file:{}", sms_file.display())),
            ("HUB_MEDIA_DIR", dir.path().join("media").display().to_string()),
            ("HUB_ATTACHMENTS_DIR", dir.path().join("attachments").display().to_string()),
            ("HUB_CODE_RESEND_SECS", "1".into()),
            ("HUB_PRESENCE_GRACE_MS", GRACE_MS.to_string()),
            ("HUB_PRESENCE_NODE_TTL_MS", NODE_TTL_MS.to_string()),
            ("HUB_CLUSTER_SWEEP_MS", SWEEP_MS.to_string()),
            ("HUB_SESSION_RECHECK_SECS", "2".into()),
            ("HUB_LOG_FORMAT", "json".into()),
            ("HUB_ADMIN_TOKEN", ADMIN_TOKEN.into()),
            ("RUST_LOG", "info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
        .collect();
        let mut cluster =
            Self { nodes: Vec::new(), env, sms_file, http: reqwest::Client::new(), redis, _db: db, _dir: dir };
        for _ in 0..count {
            let node = cluster.spawn_node().await;
            cluster.nodes.push(node);
        }
        Some(cluster)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_anapars-hub"));
        cmd.env_clear().envs(self.env.iter().map(|(k, v)| (k, v))).kill_on_drop(true);
        cmd
    }

    /// Starts a node on a free port and waits for its "hub ready" log line.
    async fn spawn_node(&self) -> Node {
        let mut child = self
            .command()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the hub binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let Ok(log) = serde_json::from_str::<Value>(&line) else { continue };
                if log["fields"]["message"] == "hub ready" {
                    return log["fields"]["addr"].as_str().unwrap().to_owned();
                }
            }
            panic!("the hub exited before listening")
        })
        .await
        .expect("the hub listens within the timeout");
        // Keep reading its log, so that it never blocks on a full pipe; echo it when asked.
        let echo = std::env::var_os("HUB_TEST_LOG").is_some().then(|| addr.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = &echo {
                    eprintln!("[{addr}] {line}");
                }
            }
        });
        Node { child, base: format!("http://{addr}"), ws_url: format!("ws://{addr}/v1/ws") }
    }

    async fn post(&self, node: usize, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.nodes[node].base)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn ready(&self, node: usize) -> u16 {
        match self.http.get(format!("{}/readyz", self.nodes[node].base)).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Waits until `/readyz` of `node` answers `status`.
    async fn wait_ready(&self, node: usize, status: u16) {
        let deadline = Instant::now() + PATIENCE;
        while self.ready(node).await != status {
            assert!(Instant::now() < deadline, "node {node} never answered /readyz {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn last_code(&self, phone: &str) -> Option<String> {
        let sms = std::fs::read_to_string(&self.sms_file).unwrap_or_default();
        let line = sms.lines().rev().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|s| s["to"] == phone)?;
        let text = line["text"].as_str().unwrap().to_owned();
        text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).map(str::to_owned)
    }

    /// Signs `phone` in on `device` through `node` (waiting out the resend cooldown); the token.
    async fn sign_in(&self, node: usize, phone: &str, device: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, body) = self.post(node, "/v1/auth/code", json!({ "phone": phone })).await;
            if status == 202 {
                break;
            }
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
            assert!(Instant::now() < deadline, "the resend cooldown never ended");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let code = self.last_code(phone).expect("a code was sent");
        let device = json!({"id": device, "name": "test phone"});
        let (status, body) =
            self.post(node, "/v1/auth/verify", json!({"phone": phone, "code": code, "device": device})).await;
        assert_eq!(status, 200, "verify: {body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Creates an agent with the CLI (as an operator would) and signs them in through `node`;
    /// returns (token, agent id).
    async fn agent(&self, node: usize, name: &str) -> (String, String) {
        let email = format!("{}-{}@anapars.test", name.to_lowercase(), uuid::Uuid::new_v4().simple());
        let out = self.command().args(["agent", "add", "--email", &email, "--name", name]).output().await.unwrap();
        assert!(out.status.success(), "agent add: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let password = stdout.lines().find_map(|l| l.split_once("store it now): ")).expect("a password").1.to_owned();
        let (status, body) = self.post(node, "/v1/agent/login", json!({"email": email, "password": password})).await;
        assert_eq!(status, 200, "agent login: {body}");
        (body["token"].as_str().unwrap().to_owned(), body["agent"]["id"].as_str().unwrap().to_owned())
    }

    async fn connect(&self, node: usize, token: &str, encoding: Encoding) -> Client {
        let mut c = Client::connect(&self.nodes[node].ws_url, Some(encoding), None).await;
        let reply = c.request(json!({"type": "auth", "token": token})).await;
        assert!(reply["type"] == "auth.ok" || reply["type"] == "auth.agent.ok", "auth on node {node}: {reply}");
        c
    }

    /// Kills a node with SIGKILL: no clean-up of any kind.
    async fn kill(&mut self, node: usize) {
        let child = &mut self.nodes[node].child;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
}

async fn open_ticket(c: &mut Client) -> String {
    let r = c
        .request(json!({"type": "ticket.open", "subject": "Card declined", "body": "hello", "client_msg_id": "open-1"}))
        .await;
    assert_eq!(r["type"], "ticket.open.ok", "{r}");
    r["ticket"]["id"].as_str().unwrap().to_owned()
}

async fn send(c: &mut Client, ticket: &str, cmid: &str) -> Value {
    let r = c.request(json!({"type": "ticket.send", "ticket_id": ticket, "client_msg_id": cmid, "body": cmid})).await;
    assert_eq!(r["type"], "ticket.send.ok", "{r}");
    r
}

async fn subscribe(c: &mut Client, ticket: &str, after: u64) -> Value {
    let r = c.request(json!({"type": "ticket.subscribe", "ticket_id": ticket, "after_seq": after})).await;
    assert_eq!(r["type"], "ticket.subscribe.ok", "{r}");
    r
}

/// A socket's view of one ticket's stream: every `ticket.event` it received, checked to come in
/// seq order without gaps or repeats.
#[derive(Default)]
struct Stream {
    last_seq: u64,
    bodies: BTreeMap<u64, String>,
}

impl Stream {
    fn take(&mut self, frames: &[Value], ticket: &str) {
        for f in frames.iter().filter(|f| f["type"] == "ticket.event" && f["event"]["ticket_id"] == ticket) {
            let seq = f["event"]["seq"].as_u64().unwrap();
            if seq <= self.last_seq {
                continue; // already taken from an earlier slice of `seen`
            }
            assert_eq!(seq, self.last_seq + 1, "events arrive in order without gaps: {f}");
            self.last_seq = seq;
            if let Some(body) = f["event"]["body"].as_str() {
                self.bodies.insert(seq, body.to_owned());
            }
        }
    }

    fn has(&self, body: &str) -> bool {
        self.bodies.values().any(|b| b == body)
    }
}

/// Reads `c` until its stream holds a message with `body`; asserts order and exactly-once on the way.
async fn until_message(c: &mut Client, stream: &mut Stream, ticket: &str, body: &str) {
    let deadline = Instant::now() + PATIENCE;
    stream.take(&c.seen, ticket);
    while !stream.has(body) {
        assert!(Instant::now() < deadline, "message {body} never arrived");
        let _ = tokio::time::timeout(Duration::from_millis(100), c.recv()).await;
        stream.take(&c.seen, ticket);
    }
    let copies = c
        .seen
        .iter()
        .filter(|f| f["type"] == "ticket.event" && f["event"]["ticket_id"] == ticket && f["event"]["body"] == body)
        .count();
    assert_eq!(copies, 1, "{body} arrived exactly once");
}

/// No message body appears twice in the stream.
fn assert_unique(stream: &Stream) {
    let mut bodies: Vec<&String> = stream.bodies.values().collect();
    let all = bodies.len();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), all, "every message once: {:?}", stream.bodies);
}

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

/// The master holding the conversation's channel dies under it, then the master holding the
/// roster (or another, when one held both): each replica takes over, and nothing is lost or repeated; presence and revocations work
/// after both.
#[tokio::test]
async fn a_redis_cluster_master_killed_under_a_live_conversation() {
    // Node heartbeats outlast a failover (about 2 s here), as the README asks of production
    // settings: a failover then takes nobody offline.
    let Some(mut cluster) = Cluster::sharded(2, &[("HUB_PRESENCE_NODE_TTL_MS", "8000")]).await else { return };
    let number = phone();
    let Conversation { mut ana, mut user, token, ticket, mut ana_stream, mut user_stream } =
        Conversation::start(&cluster, &number).await;
    let user_id = user.request(json!({"type": "me"})).await["user_id"].as_str().unwrap().to_owned();

    let channel_master = cluster.redis.sharded().master_of(&format!("cluster-test:ch:t:{ticket}")).await;
    let mut second = cluster.redis.sharded().master_of("cluster-test:{roster}nodes").await;
    if second == channel_master {
        // One shard holds both: the second failover is of another shard (which still has its replica).
        second = *cluster.redis.sharded().masters().await.iter().find(|&&m| m != channel_master).unwrap();
    }
    for (round, master) in [channel_master, second].into_iter().enumerate() {
        cluster.redis.sharded().kill_and_fail_over(master).await;
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

on_both!(
    #[tokio::test]
    three_nodes_share_conversations_queue_presence_profiles_and_revocations,
    three_nodes_share_conversations_queue_presence_profiles_and_revocations_on_redis_cluster:
        share_everything(3, &[])
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
        delete_an_account(3, &[])
);

const PUSH_SETTINGS: [(&str, &str); 2] = [("HUB_WEBPUSH_ALLOW_HTTP", "true"), ("HUB_PUSH_COLLAPSE_MS", "1500")];

on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    pushes_go_out_once_from_one_node_and_survive_a_restart,
    pushes_go_out_once_from_one_node_and_survive_a_restart_on_redis_cluster:
        push_once_and_across_a_restart(2, &PUSH_SETTINGS)
);
