//! Three hub hosts with addresses of their own, in network namespaces the test builds
//! (`tests/common/netns.rs`): a back network to Redis and Postgres, a front one to the clients. A
//! user and an agent converse across the hosts while one host is cut off the back network, its
//! clients' sockets staying up. That host answers its sockets' messages `unavailable` (never an
//! acknowledgement) and reports not ready until its link is back; the other hosts carry the
//! conversation on; afterwards every socket has every message once, in seq order, and every
//! acknowledged message is stored once, with the seq it was acknowledged with.
//!
//! Needs root, `ip` (iproute2), `redis-server` and `TEST_DATABASE_URL` (CI has all four); without
//! root, `ip` or the variable it is skipped.

mod common;

use anapars_hub::protocol::Encoding;
use common::cluster::{open_ticket, Cluster, OwnRedis, Stream, PATIENCE};
use common::hub::{phone, Client, Next};
use common::netns::Network;
use common::relay::{postgres_address, with_host, Link};
use common::{postgres_admin_url, TestDatabase};
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The host that is cut off.
const C: usize = 2;
/// `db_timeout_ms` of every host: a storage call slower than this is answered `unavailable`.
const DB_TIMEOUT: Duration = Duration::from_millis(1_500);
/// How soon after a send its answer must come, whatever storage does: the deadline and slack for
/// a loaded machine.
const ANSWER_WITHIN: Duration = Duration::from_millis(1_500 + 3_000);
/// How long host C stays cut off at least: long enough for its Redis pub/sub link to notice (a
/// ping every 3 s, answered within 2 s) and for the other hosts to stop counting on its heartbeat.
const CUT_FOR: Duration = Duration::from_secs(6);
/// A peer's pause between two messages.
const PACE: Duration = Duration::from_millis(100);
/// A peer's pause before resending a refused message.
const BACKOFF: Duration = Duration::from_millis(200);

/// What became of one `ticket.send`.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    /// `ticket.send.ok` with this seq.
    Stored(u64),
    /// An `error` with this code.
    Refused(String),
    /// The socket closed before the answer.
    NoAnswer,
}

#[derive(Clone, Debug)]
struct Attempt {
    ticket: String,
    cmid: String,
    sent: Instant,
    answered: Instant,
    outcome: Outcome,
}

/// What a peer did and saw, readable while it runs.
#[derive(Default)]
struct Log {
    attempts: Vec<Attempt>,
    /// Every message body that arrived, when.
    arrivals: Vec<(String, Instant)>,
    /// How the peer's sockets ended (close codes; None without one).
    closes: Vec<Option<u16>>,
}

impl Log {
    /// Attempts sent at `from` or later, answered before `to` (if given), that ended as `outcome`.
    fn count(&self, from: Instant, to: Option<Instant>, outcome: impl Fn(&Outcome) -> bool) -> usize {
        self.attempts
            .iter()
            .filter(|a| a.sent >= from && to.is_none_or(|to| a.answered < to) && outcome(&a.outcome))
            .count()
    }

    fn stored(&self, from: Instant, to: Option<Instant>) -> usize {
        self.count(from, to, |o| matches!(o, Outcome::Stored(_)))
    }
}

/// One socket of a user or an agent (and the sockets that replace it when it closes): writes to
/// its tickets in turn, one message at a time, resending an unacknowledged message with its
/// `client_msg_id` until it is stored, and follows its tickets with a cursor each.
struct Peer {
    name: &'static str,
    ws_url: String,
    token: String,
    encoding: Encoding,
    client: Client,
    next_id: u64,
    writes: Vec<String>,
    streams: BTreeMap<String, Stream>,
    /// The message being sent: (ticket, client_msg_id).
    unacked: Option<(String, String)>,
    written: usize,
    log: Arc<Mutex<Log>>,
}

impl Peer {
    /// A peer on `node` that writes to `writes` and follows `follows` from their first event.
    async fn join(
        cluster: &Cluster,
        node: usize,
        token: &str,
        encoding: Encoding,
        name: &'static str,
        writes: &[&String],
        follows: &[&String],
    ) -> Self {
        let ws_url = cluster.nodes[node].ws_url.clone();
        let mut peer = Self {
            name,
            client: Client::connect(&ws_url, Some(encoding), None).await,
            ws_url,
            token: token.to_owned(),
            encoding,
            next_id: 0,
            writes: writes.iter().map(|t| (*t).clone()).collect(),
            streams: follows.iter().map(|t| ((*t).clone(), Stream::default())).collect(),
            unacked: None,
            written: 0,
            log: Arc::default(),
        };
        assert!(peer.resume().await, "{name} could not start on node {node}");
        peer
    }

    /// Talks until `talking` turns false, then resends until its last message is stored.
    async fn converse(mut self, talking: watch::Receiver<bool>) -> Self {
        loop {
            let talk = *talking.borrow();
            if self.unacked.is_none() {
                if !talk {
                    return self;
                }
                let ticket = self.writes[self.written % self.writes.len()].clone();
                self.written += 1;
                self.unacked = Some((ticket, format!("{}-{}", self.name, self.written)));
            }
            let (ticket, cmid) = self.unacked.clone().unwrap();
            let sent = Instant::now();
            let frame = json!({"type": "ticket.send", "ticket_id": ticket, "client_msg_id": cmid, "body": cmid});
            let outcome = match self.exchange(frame).await {
                Some(r) if r["type"] == "ticket.send.ok" => {
                    self.unacked = None;
                    Outcome::Stored(r["seq"].as_u64().unwrap())
                }
                Some(r) if r["type"] == "error" && (r["code"] == "unavailable" || r["code"] == "overloaded") => {
                    Outcome::Refused(r["code"].as_str().unwrap().to_owned())
                }
                Some(r) => panic!("{}: {cmid} answered {r}", self.name),
                None => Outcome::NoAnswer,
            };
            let pause = if matches!(outcome, Outcome::Stored(_)) { PACE } else { BACKOFF };
            let closed = outcome == Outcome::NoAnswer;
            let attempt = Attempt { ticket, cmid, sent, answered: Instant::now(), outcome };
            self.log.lock().unwrap().attempts.push(attempt);
            if closed {
                self.reconnect().await;
            }
            self.idle(pause).await;
        }
    }

    /// Reads until every stream has reached the seq `last` names for its ticket.
    async fn drain(mut self, last: &BTreeMap<String, u64>) -> Self {
        let deadline = Instant::now() + PATIENCE;
        while self.streams.iter().any(|(t, s)| s.last_seq < last[t]) {
            let at: Vec<u64> = self.streams.values().map(|s| s.last_seq).collect();
            assert!(Instant::now() < deadline, "{}: streams stopped at {at:?}, stored up to {last:?}", self.name);
            self.idle(Duration::from_millis(100)).await;
        }
        self
    }

    /// Sends `frame` with a fresh id and reads until its answer, taking the events on the way;
    /// None when the socket closed first.
    async fn exchange(&mut self, mut frame: Value) -> Option<Value> {
        self.next_id += 1;
        let id = self.next_id;
        frame["id"] = json!(id);
        let message = self.client.encode(&frame);
        if self.client.ws.send(message).await.is_err() {
            self.log.lock().unwrap().closes.push(None);
            return None;
        }
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            match self.client.next_within(deadline.saturating_duration_since(Instant::now())).await {
                Next::Frame(f) if f["id"] == json!(id) => return Some(f),
                Next::Frame(f) => self.take(&f),
                Next::Closed(code) => {
                    self.log.lock().unwrap().closes.push(code);
                    return None;
                }
                Next::TimedOut => panic!("{}: no answer to {frame} within {ANSWER_WITHIN:?}", self.name),
            }
        }
    }

    /// Reads events for `pause`, reconnecting if the socket closes.
    async fn idle(&mut self, pause: Duration) {
        let until = Instant::now() + pause;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.client.next_within(left).await {
                Next::Frame(f) => self.take(&f),
                Next::Closed(code) => {
                    self.log.lock().unwrap().closes.push(code);
                    self.reconnect().await;
                }
                Next::TimedOut => return,
            }
        }
    }

    /// Takes an event into the stream of its ticket.
    fn take(&mut self, frame: &Value) {
        for (ticket, stream) in &mut self.streams {
            if stream.observe(frame, ticket) {
                if let Some(body) = frame["event"]["body"].as_str() {
                    self.log.lock().unwrap().arrivals.push((body.to_owned(), Instant::now()));
                }
            }
        }
    }

    /// Opens sockets until one is authenticated and follows every ticket from its cursor.
    async fn reconnect(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.client = Client::connect(&self.ws_url, Some(self.encoding), None).await;
            if self.resume().await {
                return;
            }
            assert!(Instant::now() < deadline, "{} could not resume on {}", self.name, self.ws_url);
            tokio::time::sleep(BACKOFF).await;
        }
    }

    /// Authenticates the socket and subscribes it to each ticket after its cursor; false when the
    /// host answered `unavailable` or the socket closed meanwhile.
    async fn resume(&mut self) -> bool {
        let auth = json!({"type": "auth", "token": self.token});
        match self.exchange(auth).await {
            Some(r) if r["type"] == "auth.ok" || r["type"] == "auth.agent.ok" => {}
            Some(r) if r["code"] == "unavailable" => return false,
            Some(r) => panic!("{}: auth answered {r}", self.name),
            None => return false,
        }
        let cursors: Vec<(String, u64)> = self.streams.iter().map(|(t, s)| (t.clone(), s.last_seq)).collect();
        for (ticket, after) in cursors {
            match self.exchange(json!({"type": "ticket.subscribe", "ticket_id": ticket, "after_seq": after})).await {
                Some(r) if r["type"] == "ticket.subscribe.ok" => {}
                Some(r) if r["code"] == "unavailable" => return false,
                Some(r) => panic!("{}: subscribe answered {r}", self.name),
                None => return false,
            }
        }
        true
    }
}

/// Waits until `done`, failing if a peer stopped (its panic is printed above) or after PATIENCE.
async fn wait_for(peers: &[JoinHandle<Peer>], what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(!peers.iter().any(JoinHandle::is_finished), "a peer failed while waiting for {what}");
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every event of `ticket` as stored, read through a fresh socket on `node`: the stream and the
/// ticket's last seq.
async fn stored(cluster: &Cluster, node: usize, token: &str, ticket: &str) -> Stream {
    let mut reader = cluster.connect(node, token, Encoding::Json).await;
    let r = reader.request(json!({"type": "ticket.subscribe", "ticket_id": ticket, "after_seq": 0})).await;
    assert_eq!(r["type"], "ticket.subscribe.ok", "{r}");
    let mut stream = Stream::default();
    stream.take(&reader.seen, ticket);
    assert_eq!(stream.last_seq, r["ticket"]["last_seq"].as_u64().unwrap(), "every stored event before the reply");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_off_from_redis_and_postgres_mid_conversation() {
    let Some(admin) = postgres_admin_url() else {
        eprintln!("TEST_DATABASE_URL not set: the hosts test skipped (CI sets it)");
        return;
    };
    let Some(net) = Network::create(3) else {
        eprintln!("the hosts test skipped");
        return;
    };
    let began = Instant::now();
    let db = TestDatabase::postgres(&admin).await;
    let url = db.config.database_url.clone().unwrap().0;
    // Postgres listens on the test's loopback: the hosts reach it through a relay on the back network.
    let relay = Link::start_on(net.back_gateway.into(), postgres_address(&url).await).await;
    let redis = OwnRedis::start_at(net.redis.clone(), 6379);
    let timeout = DB_TIMEOUT.as_millis().to_string();
    let settings = [("HUB_DB_TIMEOUT_MS", timeout.as_str()), ("HUB_DB_POOL_SIZE", "4")];
    let mut cluster = Cluster::new(db, &with_host(&url, relay.addr), redis, &settings);
    for host in &net.hosts {
        let node = cluster.spawn_node_at(&host.place()).await;
        cluster.nodes.push(node);
    }

    // A user on host A and a user on host C each open a ticket; the agent, on host B, takes both.
    let (agent, _) = cluster.agent(1, "Ana").await;
    let user_a = cluster.sign_in(0, &phone(), "phone-a").await;
    let user_c = cluster.sign_in(C, &phone(), "phone-c").await;
    let t1 = open_ticket(&mut cluster.connect(0, &user_a, Encoding::Json).await).await;
    let t2 = open_ticket(&mut cluster.connect(C, &user_c, Encoding::Json).await).await;
    let mut console = cluster.connect(1, &agent, Encoding::Json).await;
    for t in [&t1, &t2] {
        let r = console.request(json!({"type": "ticket.claim", "ticket_id": t})).await;
        assert_eq!(r["type"], "ticket.update.ok", "{r}");
    }
    drop(console);

    // They write continuously: the user on A and the agent on B (to both tickets); on C the second
    // user, and a second socket of the agent that follows both tickets.
    let peers = [
        Peer::join(&cluster, 0, &user_a, Encoding::Json, "user@A", &[&t1], &[&t1]).await,
        Peer::join(&cluster, 1, &agent, Encoding::MsgPack, "agent@B", &[&t1, &t2], &[&t1, &t2]).await,
        Peer::join(&cluster, C, &user_c, Encoding::MsgPack, "user@C", &[&t2], &[&t2]).await,
        Peer::join(&cluster, C, &agent, Encoding::Json, "agent@C", &[&t1], &[&t1, &t2]).await,
    ];
    let logs: Vec<Arc<Mutex<Log>>> = peers.iter().map(|p| p.log.clone()).collect();
    let [on_a, on_b, user_on_c, agent_on_c] = [0, 1, 2, 3].map(|i| logs[i].clone());
    let (talking, listen) = watch::channel(true);
    let tasks: Vec<JoinHandle<Peer>> = peers.into_iter().map(|p| tokio::spawn(p.converse(listen.clone()))).collect();
    wait_for(&tasks, "three messages stored from every peer", || {
        logs.iter().all(|l| l.lock().unwrap().stored(began, None) >= 3)
    })
    .await;
    cluster.wait_ready(C, 200).await;

    // Host C loses Redis and Postgres; its clients' sockets stay up.
    net.cut(C);
    let cut_at = Instant::now();
    cluster.wait_ready(C, 503).await;
    let not_ready_after = cut_at.elapsed();
    let readyz = cluster.http.get(format!("{}/readyz", cluster.nodes[C].base)).send().await.unwrap();
    let body: Value = readyz.json().await.unwrap();
    assert_eq!(body, json!({"status": "unavailable", "down": "storage"}));
    for node in [0, 1] {
        assert_eq!(cluster.ready(node).await, 200, "host {node} is still ready");
    }
    // C's sockets get `unavailable` for their messages, and nothing stored; A and B go on, and
    // each side's messages reach the other live.
    let c_told = || {
        [&user_on_c, &agent_on_c]
            .iter()
            .all(|l| l.lock().unwrap().count(cut_at, None, |o| *o == Outcome::Refused("unavailable".into())) >= 2)
    };
    let arrived_live = |to: &Mutex<Log>, from: &Mutex<Log>| {
        let from = from.lock().unwrap();
        let sent_during: BTreeSet<&String> = from
            .attempts
            .iter()
            .filter(|a| a.sent >= cut_at && a.ticket == t1 && matches!(a.outcome, Outcome::Stored(_)))
            .map(|a| &a.cmid)
            .collect();
        to.lock().unwrap().arrivals.iter().any(|(body, _)| sent_during.contains(body))
    };
    wait_for(&tasks, "A and B converse while C is cut off, and C's sockets are told", || {
        c_told()
            && [&on_a, &on_b].iter().all(|l| l.lock().unwrap().stored(cut_at, None) >= 3)
            && arrived_live(&on_a, &on_b)
            && arrived_live(&on_b, &on_a)
    })
    .await;
    tokio::time::sleep_until((cut_at + CUT_FOR).into()).await;
    assert_eq!(cluster.ready(C).await, 503, "host C is not ready while cut off");
    let restore_at = Instant::now();
    net.restore(C);
    for (name, log) in [("user@C", &user_on_c), ("agent@C", &agent_on_c)] {
        let log = log.lock().unwrap();
        let during: Vec<&Attempt> =
            log.attempts.iter().filter(|a| a.sent >= cut_at && a.answered < restore_at).collect();
        assert!(
            !during.iter().any(|a| matches!(a.outcome, Outcome::Stored(_))),
            "{name} acknowledged while cut: {during:?}"
        );
        for a in &during {
            assert_eq!(a.outcome, Outcome::Refused("unavailable".into()), "{name}: {a:?}");
            assert!(a.answered - a.sent <= ANSWER_WITHIN, "{name} waited {:?} for {a:?}", a.answered - a.sent);
        }
    }

    // The link is back: C is ready again, and its sockets' messages are stored again.
    cluster.wait_ready(C, 200).await;
    let ready_after = restore_at.elapsed();
    wait_for(&tasks, "three messages stored from every peer after the link came back", || {
        logs.iter().all(|l| l.lock().unwrap().stored(restore_at, None) >= 3)
    })
    .await;

    // Everyone stops once their last message is stored.
    talking.send_replace(false);
    let mut peers = Vec::new();
    for task in tasks {
        peers.push(tokio::time::timeout(PATIENCE, task).await.expect("peers stop").expect("a peer failed"));
    }

    // What is stored, read through host A: each message once; each acknowledgement names the
    // stored message; each stored message was acknowledged.
    let mut truth = BTreeMap::new();
    for t in [&t1, &t2] {
        truth.insert(t.clone(), stored(&cluster, 0, &agent, t).await);
    }
    let mut acked: BTreeMap<&String, BTreeMap<&str, u64>> = BTreeMap::new();
    let all_logs: Vec<_> = logs.iter().map(|l| l.lock().unwrap()).collect();
    for a in all_logs.iter().flat_map(|l| &l.attempts) {
        if let Outcome::Stored(seq) = a.outcome {
            let at_seq = truth[&a.ticket].bodies.get(&seq);
            assert_eq!(at_seq, Some(&a.cmid), "{} was acknowledged as seq {seq} of its ticket", a.cmid);
            acked.entry(&a.ticket).or_default().insert(&a.cmid, seq);
        }
    }
    for (ticket, stream) in &truth {
        let mut bodies: Vec<&String> = stream.bodies.values().collect();
        bodies.sort();
        let all = bodies.len();
        bodies.dedup();
        assert_eq!(bodies.len(), all, "a message stored twice in {ticket}: {:?}", stream.bodies);
        // Beyond the opening (subject and first message), every stored message is a peer's.
        for (seq, body) in stream.bodies.range(3..) {
            assert_eq!(acked[ticket].get(body.as_str()), Some(seq), "stored but never acknowledged: {body}");
        }
    }
    drop(all_logs);

    // Every socket has every event of the tickets it follows, once and in order (checked as they
    // came), with the stored bodies.
    let last: BTreeMap<String, u64> = truth.iter().map(|(t, s)| (t.clone(), s.last_seq)).collect();
    for peer in peers {
        let peer = tokio::time::timeout(PATIENCE * 2, peer.drain(&last)).await.expect("drained");
        for (ticket, stream) in &peer.streams {
            assert_eq!(stream.bodies, truth[ticket].bodies, "{} sees {ticket} as stored", peer.name);
        }
    }

    let refused: usize = [&user_on_c, &agent_on_c]
        .iter()
        .map(|l| l.lock().unwrap().count(cut_at, Some(restore_at), |o| matches!(o, Outcome::Refused(_))))
        .sum();
    let closes: Vec<_> = logs.iter().map(|l| l.lock().unwrap().closes.clone()).collect();
    eprintln!(
        "cut for {:?}: not ready after {not_ready_after:?}, ready {ready_after:?} after the link came back; \
         {refused} sends refused on C; socket closes {closes:?}; messages stored {:?}; whole test {:?}",
        restore_at - cut_at,
        last,
        began.elapsed()
    );
}
