//! A real hub on an ephemeral port, with a file SMS sender to read codes from, and a WebSocket
//! client speaking either encoding.

use super::TestDatabase;
use anapars_hub::config::Secret;
use anapars_hub::protocol::Encoding;
use anapars_hub::{Config, RunningHub};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any single frame before it fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// The variable naming the Redis server to test against.
pub const TEST_REDIS_URL: &str = "TEST_REDIS_URL";

/// A Redis key prefix of its own; its keys are deleted on drop.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    /// A fresh prefix on the server of `TEST_REDIS_URL`, if set.
    ///
    /// # Panics
    /// The variable is set but Redis does not answer.
    pub async fn from_env() -> Option<Self> {
        let url = std::env::var(TEST_REDIS_URL).ok().filter(|u| !u.trim().is_empty())?;
        let client = redis::Client::open(url.as_str()).expect("TEST_REDIS_URL is not a redis URL");
        let mut conn = tokio::time::timeout(Duration::from_secs(5), client.get_multiplexed_async_connection())
            .await
            .unwrap_or_else(|_| panic!("TEST_REDIS_URL={url}: redis did not answer in 5 s"))
            .unwrap_or_else(|e| panic!("TEST_REDIS_URL={url}: cannot connect: {e}"));
        let _: String = redis::cmd("PING").query_async(&mut conn).await.expect("redis PING failed");
        Some(Self { url, prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()) })
    }

    /// Every key under this prefix.
    pub async fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("KEYS").arg(format!("{}*", self.prefix)).query_async(&mut conn).await.unwrap()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        let _ = std::thread::spawn(move || -> redis::RedisResult<()> {
            let client = redis::Client::open(url.as_str())?;
            let mut conn = client.get_connection()?;
            let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut conn)?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(keys).query::<()>(&mut conn)?;
            }
            Ok(())
        })
        .join();
    }
}

/// A running hub and everything needed to talk to it.
pub struct TestHub {
    pub running: Option<RunningHub>,
    pub base: String,
    pub ws_url: String,
    pub sms_file: PathBuf,
    pub backend: &'static str,
    pub http: reqwest::Client,
    _db: TestDatabase,
    _redis: Option<TestRedis>,
    _dir: tempfile::TempDir,
}

/// The hub set-ups every scenario runs against: SQLite with in-process state always; Postgres with
/// Redis when `TEST_DATABASE_URL` and `TEST_REDIS_URL` are set (CI sets both).
pub async fn hubs(tweak: impl Fn(&mut Config)) -> Vec<TestHub> {
    let mut out = Vec::new();
    for db in super::test_databases().await {
        let redis = if db.backend == "postgres" { TestRedis::from_env().await } else { None };
        out.push(TestHub::start(db, redis, &tweak).await);
    }
    out
}

impl TestHub {
    /// The hub's database.
    pub fn database(&self) -> &TestDatabase {
        &self._db
    }

    /// Starts a hub on 127.0.0.1:0 over `db` (and `redis`), after applying `tweak` to its config.
    pub async fn start(db: TestDatabase, redis: Option<TestRedis>, tweak: impl Fn(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sms_file = dir.path().join("sms.jsonl");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            sms: format!("file:{}", sms_file.display()),
            media_dir: dir.path().join("media"),
            attachments_dir: dir.path().join("attachments"),
            // Tests sign the same number in more than once; a real resend waits a minute.
            code_resend_secs: 1,
            ..db.config.clone()
        };
        if let Some(r) = &redis {
            config.redis_url = Some(Secret(r.url.clone()));
            config.redis_prefix = r.prefix.clone();
        }
        tweak(&mut config);
        if std::env::var_os("HUB_TEST_LOG").is_some() {
            anapars_hub::metrics::init_logging("text");
        }
        let running = anapars_hub::server::start(config).await.expect("hub starts");
        let addr = running.addr;
        Self {
            running: Some(running),
            base: format!("http://{addr}"),
            ws_url: format!("ws://{addr}/v1/ws"),
            sms_file,
            backend: db.backend,
            http: reqwest::Client::new(),
            _db: db,
            _redis: redis,
            _dir: dir,
        }
    }

    /// A label for assertion messages.
    pub fn label(&self) -> String {
        format!("[{}{}]", self.backend, if self._redis.is_some() { "+redis" } else { "" })
    }

    /// The Postgres database of this hub, if it runs on Postgres.
    pub fn postgres_database(&self) -> Option<&str> {
        self._db.postgres_name()
    }

    /// The Redis of this hub, if any.
    pub fn redis(&self) -> Option<&TestRedis> {
        self._redis.as_ref()
    }

    /// POSTs JSON; returns status and body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self.http.post(format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POSTs JSON with a bearer token; returns status and body.
    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self.http.post(format!("{}{path}", self.base)).bearer_auth(token).json(&body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// PUTs JSON with a bearer token; returns status and body.
    pub async fn http_put_json(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let resp = self.http.put(format!("{}{path}", self.base)).bearer_auth(token).json(body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// GETs with an optional bearer token; returns status and body.
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Every SMS sent so far, as JSON lines.
    pub fn sms(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.sms_file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The code in the newest SMS to `phone` (E.164).
    pub fn last_code(&self, phone: &str) -> String {
        let sms = self.sms();
        let text = sms.iter().rev().find(|s| s["to"] == phone).unwrap_or_else(|| panic!("no sms to {phone}"))["text"]
            .as_str()
            .unwrap()
            .to_owned();
        text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("a 6-digit code").to_owned()
    }

    /// Signs `phone` in on `device`, returning the verify response body (token, user_id, ...).
    pub async fn sign_in_on(&self, phone: &str, device: &str) -> Value {
        let (status, body) = self.post("/v1/auth/code", json!({ "phone": phone })).await;
        assert_eq!(status, 202, "{} code request: {body}", self.label());
        let code = self.last_code(phone);
        let (status, body) = self
            .post(
                "/v1/auth/verify",
                json!({"phone": phone, "code": code, "device": {"id": device, "name": "test phone"}}),
            )
            .await;
        assert_eq!(status, 200, "{} verify: {body}", self.label());
        body
    }

    /// Signs `phone` in again on `device` once the resend cooldown allows a new code.
    pub async fn sign_in_on_after_cooldown(&self, phone: &str, device: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(70);
        loop {
            let (status, body) = self.post("/v1/auth/code", json!({ "phone": phone })).await;
            if status == 202 {
                break;
            }
            assert_eq!(body["error"]["code"], "rate_limited", "{} {body}", self.label());
            assert!(std::time::Instant::now() < deadline, "cooldown never ended");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let code = self.last_code(phone);
        let (status, body) = self
            .post(
                "/v1/auth/verify",
                json!({"phone": phone, "code": code, "device": {"id": device, "name": "test phone"}}),
            )
            .await;
        assert_eq!(status, 200, "{} verify: {body}", self.label());
        body
    }

    /// Signs `phone` in and returns its token.
    pub async fn token(&self, phone: &str) -> String {
        self.sign_in_on(phone, "device-1").await["token"].as_str().unwrap().to_owned()
    }

    /// Creates an agent and signs them in over HTTP; returns (token, agent id).
    pub async fn agent(&self, name: &str) -> (String, String) {
        let hub = &self.running.as_ref().expect("hub running").hub;
        let email = format!("{}-{}@anapars.test", name.to_lowercase(), uuid::Uuid::new_v4().simple());
        let (_, password) = hub.agents.add(&email, name).await.expect("agent added");
        let (status, body) = self.post("/v1/agent/login", json!({"email": email, "password": password})).await;
        assert_eq!(status, 200, "{} agent login: {body}", self.label());
        (body["token"].as_str().unwrap().to_owned(), body["agent"]["id"].as_str().unwrap().to_owned())
    }

    /// Creates an agent who is a supervisor, signed in: their token and id.
    pub async fn supervisor(&self, name: &str) -> (String, String) {
        let (token, id) = self.agent(name).await;
        let hub = &self.running.as_ref().expect("hub running").hub;
        let agent = anapars_hub::model::ids::AgentId(id.parse().expect("an agent id"));
        assert!(hub.store.set_supervisor(agent, true).await.expect("supervisor flag set"));
        (token, id)
    }

    /// Opens an agent socket (authenticated, `auth.agent.ok` checked).
    pub async fn connect_agent(&self, encoding: Encoding, token: &str) -> Client {
        let mut c = self.connect(encoding).await;
        let reply = c.request(json!({"type": "auth", "token": token})).await;
        assert_eq!(reply["type"], "auth.agent.ok", "{} agent auth: {reply}", self.label());
        c
    }

    /// Opens a socket in `encoding` (subprotocol offered), unauthenticated.
    pub async fn connect(&self, encoding: Encoding) -> Client {
        Client::connect(&self.ws_url, Some(encoding), None).await
    }

    /// Opens a socket and authenticates it with `token` in the first frame.
    pub async fn connect_as(&self, encoding: Encoding, token: &str) -> Client {
        let mut c = self.connect(encoding).await;
        let reply = c.request(json!({"type": "auth", "token": token})).await;
        assert_eq!(reply["type"], "auth.ok", "{} auth: {reply}", self.label());
        c
    }

    /// Shuts the hub down gracefully.
    pub async fn shutdown(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(r) = &self.running {
            r.hub.draining.cancel();
            r.hub.shutdown.cancel();
            r.hub.listening.cancel();
        }
    }
}

/// A unique valid Iranian mobile number.
pub fn phone() -> String {
    format!("+98912{:07}", rand::random_range(0..10_000_000u32))
}

/// A WebSocket client speaking the hub's protocol in one encoding.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub encoding: Encoding,
    next_id: u64,
    /// Every data frame received, decoded, in order (for privacy checks).
    pub seen: Vec<Value>,
    /// Frames received while waiting for a reply, not yet taken by `event`/`recv`.
    pending: std::collections::VecDeque<Value>,
}

impl Client {
    /// Connects, offering `encoding`'s subprotocol (none: JSON by default) and an optional bearer.
    pub async fn connect(url: &str, encoding: Option<Encoding>, bearer: Option<&str>) -> Self {
        let mut req = url.into_client_request().unwrap();
        if let Some(e) = encoding {
            req.headers_mut().insert("Sec-WebSocket-Protocol", e.protocol().parse().unwrap());
        }
        if let Some(t) = bearer {
            req.headers_mut().insert("Authorization", format!("Bearer {t}").parse().unwrap());
        }
        let (ws, resp) = tokio_tungstenite::connect_async(req).await.expect("websocket connects");
        if let Some(e) = encoding {
            assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), e.protocol());
        }
        Self {
            ws,
            encoding: encoding.unwrap_or(Encoding::Json),
            next_id: 1,
            seen: Vec::new(),
            pending: Default::default(),
        }
    }

    /// Encodes a JSON value in this socket's encoding.
    pub fn encode(&self, frame: &Value) -> Message {
        match self.encoding {
            Encoding::Json => Message::Text(frame.to_string().into()),
            Encoding::MsgPack => Message::Binary(anapars_hub::protocol::to_msgpack(frame).unwrap().into()),
        }
    }

    /// Sends a frame as is.
    pub async fn send(&mut self, frame: Value) {
        let m = self.encode(&frame);
        self.ws.send(m).await.unwrap();
    }

    /// Sends a request with a fresh id and returns the reply to it, keeping events aside in `seen`.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        frame["id"] = json!(id);
        self.send(frame).await;
        let mut skipped = Vec::new();
        loop {
            let f = self.recv().await;
            if f["id"] == json!(id) {
                // Events that arrived meanwhile stay available to `event`, in order.
                for s in skipped.into_iter().rev() {
                    self.pending.push_front(s);
                }
                return f;
            }
            skipped.push(f);
        }
    }

    /// Forgets the frames set aside while waiting for replies (they stay in `seen`).
    pub fn clear_pending(&mut self) {
        self.pending.clear();
    }

    /// Waits for the next event of `type` (skipping others, which stay in `seen`).
    pub async fn event(&mut self, kind: &str) -> Value {
        loop {
            let f = self.recv().await;
            if f["type"] == kind && f.get("id").is_none() {
                return f;
            }
        }
    }

    /// Waits for an event of `type` matching `pred`.
    pub async fn event_where(&mut self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let f = self.event(kind).await;
            if pred(&f) {
                return f;
            }
        }
    }

    /// The next data frame (first those set aside while waiting for a reply), decoded from either
    /// encoding. Panics on close or timeout.
    pub async fn recv(&mut self) -> Value {
        match self.next_within(FRAME_TIMEOUT).await {
            Next::Frame(v) => v,
            Next::Closed(c) => panic!("socket closed: {c:?}"),
            Next::TimedOut => panic!("no frame within {FRAME_TIMEOUT:?}"),
        }
    }

    /// Reads until the hub closes the socket; returns the close code (None if the TCP connection
    /// ended without a close frame). Data frames on the way are kept in `seen`.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.next_within(FRAME_TIMEOUT).await {
                Next::Frame(_) => {}
                Next::Closed(c) => return c,
                Next::TimedOut => panic!("no close within {FRAME_TIMEOUT:?}"),
            }
        }
    }

    /// The next data frame within `limit` (first those set aside while waiting for a reply), or
    /// how the socket ended: for clients that reconnect instead of failing the test.
    pub async fn next_within(&mut self, limit: Duration) -> Next {
        if let Some(f) = self.pending.pop_front() {
            return Next::Frame(f);
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, self.ws.next()).await else {
                return Next::TimedOut;
            };
            let v: Value = match next {
                Some(Ok(Message::Text(t))) => {
                    assert_eq!(self.encoding, Encoding::Json, "text frame on a msgpack socket");
                    serde_json::from_str(&t).unwrap()
                }
                Some(Ok(Message::Binary(b))) => {
                    assert_eq!(self.encoding, Encoding::MsgPack, "binary frame on a json socket");
                    anapars_hub::protocol::from_msgpack(&b).unwrap()
                }
                Some(Ok(Message::Close(c))) => return Next::Closed(c.map(|c| u16::from(c.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Next::Closed(None),
            };
            self.seen.push(v.clone());
            return Next::Frame(v);
        }
    }
}

/// What waiting for a frame gave.
#[derive(Debug)]
pub enum Next {
    /// A data frame, decoded.
    Frame(Value),
    /// The socket ended: the close code, or None without a close frame (or on a socket error).
    Closed(Option<u16>),
    /// Nothing within the limit.
    TimedOut,
}

/// A lock that stalls the hub's writes to one table while it is held (an open transaction on a
/// connection of the test's own); dropping it releases the lock.
pub enum WriteLock {
    /// SQLite: the database's write lock (`BEGIN IMMEDIATE`).
    Sqlite(sqlx::SqliteConnection),
    /// Postgres: `LOCK TABLE .. IN ACCESS EXCLUSIVE MODE`.
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    /// Takes the lock on `table` of `hub`'s database.
    pub async fn take(hub: &TestHub, table: &str) -> Self {
        use sqlx::{Connection, Executor};
        let config = &hub.running.as_ref().expect("hub running").hub.config;
        match &config.database_url {
            Some(url) => {
                let mut conn = sqlx::PgConnection::connect(&url.0).await.expect("postgres connects");
                conn.execute("BEGIN").await.expect("begin");
                conn.execute(format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE").as_str()).await.expect("lock");
                Self::Postgres(conn)
            }
            None => {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&config.sqlite_path);
                let mut conn = sqlx::SqliteConnection::connect_with(&options).await.expect("sqlite opens");
                conn.execute("BEGIN IMMEDIATE").await.expect("write lock");
                Self::Sqlite(conn)
            }
        }
    }
}
