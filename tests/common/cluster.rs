//! Several hub processes behind one Postgres database and a `redis-server` of the test's own (or a
//! Redis Cluster of the test's own), and what the cluster tests check on the sockets: streams that
//! arrive once, in order.
//!
//! Each node is a real `anapars-hub serve` process on port 0, on 127.0.0.1 or in a network
//! namespace of its own ([`Place`]).

use super::hub::Client;
use super::redis_cluster::LocalCluster;
use super::{postgres_admin_url, TestDatabase};
use anapars_hub::protocol::Encoding;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Cluster timings, short so that the tests are quick (production defaults are longer).
pub const GRACE_MS: u64 = 300;
pub const NODE_TTL_MS: u64 = 1_500;
pub const SWEEP_MS: u64 = 200;
pub const ADMIN_TOKEN: &str = "cluster-test-admin-token-0123456789abcdef";
/// Longest wait for anything a test expects to happen eventually.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The hub binary cargo built for the tests.
const HUB: &str = env!("CARGO_BIN_EXE_anapars-hub");

/// A free TCP port on `ip`.
pub fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

/// A `redis-server` of the test's own, without persistence.
pub struct OwnRedis {
    place: Place,
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    /// A server on a free port of 127.0.0.1.
    pub fn start() -> Self {
        let place = Place::loopback();
        let port = free_port(place.ip);
        Self::start_at(place, port)
    }

    /// A server at `place` on `port`.
    pub fn start_at(place: Place, port: u16) -> Self {
        let mut redis = Self { place, port, child: None };
        redis.resume();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://{}:{}", self.place.ip, self.port)
    }

    /// Starts the server (again) on its port and waits until it answers.
    pub fn resume(&mut self) {
        let (ip, port) = (self.place.ip.to_string(), self.port.to_string());
        let mut command = match &self.place.netns {
            None => std::process::Command::new("redis-server"),
            Some(ns) => {
                let mut command = std::process::Command::new(super::netns::ip_binary().expect("an ip binary"));
                command.args(["netns", "exec", ns, "redis-server"]);
                command
            }
        };
        let child = command
            .args(["--port", &port, "--bind", &ip, "--protected-mode", "no", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but redis-server cannot be started: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((self.place.ip, self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (its data goes with it: nothing is persisted).
    pub fn stop(&mut self) {
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
pub enum Backplane {
    One(OwnRedis),
    Sharded(LocalCluster),
    /// No Redis: one hub on its own.
    Absent,
}

impl From<OwnRedis> for Backplane {
    fn from(redis: OwnRedis) -> Self {
        Self::One(redis)
    }
}

impl Backplane {
    pub fn url(&self) -> String {
        match self {
            Self::One(r) => r.url(),
            Self::Sharded(c) => c.url(),
            Self::Absent => panic!("the URL of Redis was asked of a hub without one"),
        }
    }

    /// The single Redis (a test on one Redis asking for it).
    pub fn one(&mut self) -> &mut OwnRedis {
        match self {
            Self::One(r) => r,
            _ => panic!("a single Redis was asked of a Redis Cluster or of no Redis"),
        }
    }

    /// The Redis Cluster (a test on a cluster asking for it).
    pub fn sharded(&mut self) -> &mut LocalCluster {
        match self {
            Self::Sharded(c) => c,
            _ => panic!("a Redis Cluster was asked of a single Redis or of no Redis"),
        }
    }

    /// Keys that name `id`, in their name or as a member of a set or field of a hash.
    pub async fn naming(&self, id: &str) -> Vec<String> {
        let mut conn = anapars_hub::adapters::redis::connect(&self.url()).await.expect("redis answers").conn;
        let keys: Vec<String> = match self {
            Self::Sharded(c) => c.keys().await,
            _ => redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap(),
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

/// Where a server runs: in a network namespace (None: the test's own), listening on `ip`.
#[derive(Clone)]
pub struct Place {
    pub netns: Option<String>,
    pub ip: IpAddr,
}

impl Place {
    /// 127.0.0.1 of the test's own namespace.
    pub fn loopback() -> Self {
        Self { netns: None, ip: IpAddr::V4(Ipv4Addr::LOCALHOST) }
    }
}

/// One `anapars-hub serve` process.
pub struct Node {
    pub child: Child,
    pub base: String,
    pub ws_url: String,
}

/// The Redis a [`Cluster`] starts for its nodes.
enum Redis {
    /// One server.
    One,
    /// Three masters with a replica each.
    Sharded,
    /// One master holding every slot.
    LoneMaster,
}

/// Hub processes sharing one database and one Redis (or Redis Cluster).
pub struct Cluster {
    pub nodes: Vec<Node>,
    env: Vec<(String, String)>,
    sms_file: PathBuf,
    pub http: reqwest::Client,
    pub redis: Backplane,
    _db: TestDatabase,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `count` nodes, or None when `TEST_DATABASE_URL` is not set.
    pub async fn start(count: usize) -> Option<Self> {
        Self::start_with(count, &[]).await
    }

    /// As [`Cluster::start`], with more settings for every node.
    pub async fn start_with(count: usize, settings: &[(&str, &str)]) -> Option<Self> {
        Self::start_on(Redis::One, count, settings).await
    }

    /// As [`Cluster::start_with`], on a Redis Cluster of three masters with a replica each.
    pub async fn sharded(count: usize, settings: &[(&str, &str)]) -> Option<Self> {
        Self::start_on(Redis::Sharded, count, settings).await
    }

    /// As [`Cluster::start_with`], on a Redis Cluster of one master without a replica.
    pub async fn on_lone_master(count: usize, settings: &[(&str, &str)]) -> Option<Self> {
        Self::start_on(Redis::LoneMaster, count, settings).await
    }

    async fn start_on(redis: Redis, count: usize, settings: &[(&str, &str)]) -> Option<Self> {
        let Some(admin) = postgres_admin_url() else {
            eprintln!("TEST_DATABASE_URL not set: cluster tests skipped (CI sets it)");
            return None;
        };
        let redis = match redis {
            Redis::One => Backplane::One(OwnRedis::start()),
            Redis::Sharded => Backplane::Sharded(
                super::redis_cluster::start(3).await.expect("redis-server is installed (TEST_DATABASE_URL is set)"),
            ),
            Redis::LoneMaster => Backplane::Sharded(super::redis_cluster::lone().await?),
        };
        let db = TestDatabase::postgres(&admin).await;
        let database_url = db.config.database_url.as_ref().unwrap().0.clone();
        let mut cluster = Self::new(db, &database_url, redis, settings);
        for _ in 0..count {
            let node = cluster.spawn_node().await;
            cluster.nodes.push(node);
        }
        Some(cluster)
    }

    /// No nodes yet: they will use `db`, reached at `database_url` (the database's own URL, or one
    /// through a relay), and `redis`, with the test timings and `settings` on top.
    pub fn new(db: TestDatabase, database_url: &str, redis: impl Into<Backplane>, settings: &[(&str, &str)]) -> Self {
        Self::on(db, ("DATABASE_URL", database_url.to_owned()), redis.into(), settings)
    }

    /// No node yet: it will run on its own (no Redis) on `db`, SQLite or Postgres, with the test
    /// timings and `settings` on top. For tests that kill the hub and start it again on the same
    /// database.
    pub fn alone(db: TestDatabase, settings: &[(&str, &str)]) -> Self {
        let database = match &db.config.database_url {
            Some(url) => ("DATABASE_URL", url.0.clone()),
            None => ("HUB_SQLITE_PATH", db.config.sqlite_path.display().to_string()),
        };
        Self::on(db, database, Backplane::Absent, settings)
    }

    fn on(db: TestDatabase, database: (&str, String), redis: Backplane, settings: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sms_file = dir.path().join("sms.jsonl");
        let redis_url = match &redis {
            Backplane::Absent => None,
            other => Some(("REDIS_URL", other.url())),
        };
        let env: Vec<(String, String)> = [
            database,
            ("HUB_DATA_KEYS", super::TEST_DATA_KEYS.to_owned()),
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
        .chain(redis_url)
        .map(|(k, v)| (k.to_owned(), v))
        .chain(settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
        .collect();
        Self { nodes: Vec::new(), env, sms_file, http: reqwest::Client::new(), redis, _db: db, _dir: dir }
    }

    /// The hub binary with the cluster's settings, in the test's own namespace.
    pub fn command(&self) -> Command {
        self.command_in(None)
    }

    /// The hub binary with the cluster's settings, run in `netns` (through `ip netns exec`, which
    /// becomes the hub process) or in the test's own namespace.
    fn command_in(&self, netns: Option<&str>) -> Command {
        let mut cmd = match netns {
            None => Command::new(HUB),
            Some(ns) => {
                let ip = super::netns::ip_binary().expect("an ip binary (iproute2)");
                let mut cmd = Command::new(ip);
                cmd.args(["netns", "exec", ns, HUB]);
                cmd
            }
        };
        cmd.env_clear().envs(self.env.iter().map(|(k, v)| (k, v))).kill_on_drop(true);
        cmd
    }

    /// Starts a node on a free port of 127.0.0.1 and waits for its "hub ready" log line.
    pub async fn spawn_node(&self) -> Node {
        self.spawn_node_at(&Place::loopback()).await
    }

    /// Starts a node at `place` on a free port and waits for its "hub ready" log line.
    pub async fn spawn_node_at(&self, place: &Place) -> Node {
        let listen = std::net::SocketAddr::new(place.ip, 0).to_string();
        let mut child = self
            .command_in(place.netns.as_deref())
            .args(["serve", "--listen", &listen])
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

    pub async fn post(&self, node: usize, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.nodes[node].base)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The value of the unlabelled counter or gauge `name` on `node`'s `/metrics`.
    pub async fn metric(&self, node: usize, name: &str) -> f64 {
        let url = format!("{}/metrics", self.nodes[node].base);
        let text = self.http.get(url).send().await.unwrap().text().await.unwrap();
        let line = text.lines().find(|l| l.split_once(' ').is_some_and(|(n, _)| n == name));
        line.and_then(|l| l.split_once(' '))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not on node {node}'s /metrics"))
    }

    /// The status of `node`'s `/readyz` (0 when it does not answer).
    pub async fn ready(&self, node: usize) -> u16 {
        match self.http.get(format!("{}/readyz", self.nodes[node].base)).send().await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Waits until `/readyz` of `node` answers `status`.
    pub async fn wait_ready(&self, node: usize, status: u16) {
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
    pub async fn sign_in(&self, node: usize, phone: &str, device: &str) -> String {
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
    pub async fn agent(&self, node: usize, name: &str) -> (String, String) {
        let email = format!("{}-{}@anapars.test", name.to_lowercase(), uuid::Uuid::new_v4().simple());
        let out = self.command().args(["agent", "add", "--email", &email, "--name", name]).output().await.unwrap();
        assert!(out.status.success(), "agent add: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let password = stdout.lines().find_map(|l| l.split_once("store it now): ")).expect("a password").1.to_owned();
        let (status, body) = self.post(node, "/v1/agent/login", json!({"email": email, "password": password})).await;
        assert_eq!(status, 200, "agent login: {body}");
        (body["token"].as_str().unwrap().to_owned(), body["agent"]["id"].as_str().unwrap().to_owned())
    }

    /// A socket on `node`, authenticated with `token` (a user's or an agent's).
    pub async fn connect(&self, node: usize, token: &str, encoding: Encoding) -> Client {
        let mut c = Client::connect(&self.nodes[node].ws_url, Some(encoding), None).await;
        let reply = c.request(json!({"type": "auth", "token": token})).await;
        assert!(reply["type"] == "auth.ok" || reply["type"] == "auth.agent.ok", "auth on node {node}: {reply}");
        c
    }

    /// Kills a node with SIGKILL: no clean-up of any kind.
    pub async fn kill(&mut self, node: usize) {
        let child = &mut self.nodes[node].child;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
}

pub async fn open_ticket(c: &mut Client) -> String {
    let r = c
        .request(json!({"type": "ticket.open", "subject": "Card declined", "body": "hello", "client_msg_id": "open-1"}))
        .await;
    assert_eq!(r["type"], "ticket.open.ok", "{r}");
    r["ticket"]["id"].as_str().unwrap().to_owned()
}

pub async fn send(c: &mut Client, ticket: &str, cmid: &str) -> Value {
    let r = c.request(json!({"type": "ticket.send", "ticket_id": ticket, "client_msg_id": cmid, "body": cmid})).await;
    assert_eq!(r["type"], "ticket.send.ok", "{r}");
    r
}

pub async fn subscribe(c: &mut Client, ticket: &str, after: u64) -> Value {
    let r = c.request(json!({"type": "ticket.subscribe", "ticket_id": ticket, "after_seq": after})).await;
    assert_eq!(r["type"], "ticket.subscribe.ok", "{r}");
    r
}

/// A client's view of one ticket's stream: every `ticket.event` its socket received (or its
/// sockets, one after another, each resuming from the last seq), checked to come once, in seq
/// order, without gaps.
#[derive(Default)]
pub struct Stream {
    /// The seq of the last event taken: the client's cursor.
    pub last_seq: u64,
    /// The body of every event that has one (messages, and the subject of `opened`), by seq.
    pub bodies: BTreeMap<u64, String>,
    /// How many frames of the socket's `seen` [`Stream::take`] went through.
    taken: usize,
}

impl Stream {
    /// Takes `frame` if it is an event of `ticket` (and says so), asserting that it is the one
    /// after the last taken.
    pub fn observe(&mut self, frame: &Value, ticket: &str) -> bool {
        if frame["type"] != "ticket.event" || frame["event"]["ticket_id"] != ticket {
            return false;
        }
        let seq = frame["event"]["seq"].as_u64().unwrap();
        assert_eq!(seq, self.last_seq + 1, "events arrive once, in order, without gaps: {frame}");
        self.last_seq = seq;
        if let Some(body) = frame["event"]["body"].as_str() {
            self.bodies.insert(seq, body.to_owned());
        }
        true
    }

    /// Takes the frames of one socket's `seen` that it has not gone through yet.
    pub fn take(&mut self, seen: &[Value], ticket: &str) {
        for f in &seen[self.taken..] {
            self.observe(f, ticket);
        }
        self.taken = seen.len();
    }

    pub fn has(&self, body: &str) -> bool {
        self.bodies.values().any(|b| b == body)
    }
}

/// Reads `c` until its stream holds a message with `body`; asserts order and exactly-once on the way.
pub async fn until_message(c: &mut Client, stream: &mut Stream, ticket: &str, body: &str) {
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
pub fn assert_unique(stream: &Stream) {
    let mut bodies: Vec<&String> = stream.bodies.values().collect();
    let all = bodies.len();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), all, "every message once: {:?}", stream.bodies);
}
