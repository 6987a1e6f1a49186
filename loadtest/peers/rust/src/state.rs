//! The peer's shared state, all in memory: tickets (with every event, encoded once, for replays on
//! `ticket.subscribe`, and their subscribers), the authenticated sockets (for announcements) and
//! the agents watching the queue. Maps are sharded and no lock is held across an `.await`: every
//! push is a `try_send` into a socket's bounded outbox.

use crate::Config;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Frames queued for one socket before it counts as a slow consumer and is closed (4008).
pub const OUTBOX_FRAMES: usize = 2048;

const SHARDS: usize = 16;

/// Authenticated sockets by connection number: whether an agent, and the outbox.
type Sockets = HashMap<u64, (bool, Arc<Outbox>)>;

/// Who a socket authenticated as. Tokens are not checked: the id is read from the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// `true` for an agent (`agt_` token), `false` for an app user.
    pub agent: bool,
    /// The user's or agent's id.
    pub id: Arc<str>,
}

impl Principal {
    /// The principal a token stands for: `agt_<id>` is an agent, `usr_<id>` (or anything else) a user.
    pub fn from_token(token: &str) -> Self {
        match token.strip_prefix("agt_") {
            Some(id) => Self { agent: true, id: id.into() },
            None => Self { agent: false, id: token.strip_prefix("usr_").unwrap_or(token).into() },
        }
    }

    fn author(&self) -> Value {
        json!({"kind": if self.agent { "agent" } else { "user" }, "id": &*self.id})
    }
}

/// One socket's queue of pre-encoded frames. Pushing never waits: a full queue marks the socket
/// slow, and its task closes it.
#[derive(Debug)]
pub struct Outbox {
    /// The socket's connection number.
    pub conn: u64,
    tx: mpsc::Sender<Utf8Bytes>,
    slow: AtomicBool,
}

impl Outbox {
    /// An outbox for connection `conn` and the receiving end its task reads.
    pub fn new(conn: u64) -> (Arc<Self>, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(OUTBOX_FRAMES);
        (Arc::new(Self { conn, tx, slow: AtomicBool::new(false) }), rx)
    }

    /// Queues `frame` (a cheap clone of shared bytes).
    pub fn push(&self, frame: &Utf8Bytes) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(frame.clone()) {
            self.slow.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a push found the queue full.
    pub fn is_slow(&self) -> bool {
        self.slow.load(Ordering::Relaxed)
    }
}

/// A refused request: the error code and message of the wire's `error` frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code (`not_found`, `wrong_state`, ...).
    pub code: &'static str,
    /// Lower-case English.
    pub message: &'static str,
}

const NOT_FOUND: Refusal = Refusal { code: "not_found", message: "ticket not found" };

struct Ticket {
    id: Arc<str>,
    user_id: Arc<str>,
    subject: String,
    status: &'static str,
    agent_id: Option<Arc<str>>,
    created_at: u64,
    updated_at: u64,
    /// Every event, encoded once: `events[seq - 1]`.
    events: Vec<Utf8Bytes>,
    subscribers: Vec<Arc<Outbox>>,
}

impl Ticket {
    fn view(&self) -> Value {
        json!({
            "id": &*self.id, "user_id": &*self.user_id, "subject": self.subject, "status": self.status,
            "agent_id": self.agent_id.as_deref(), "created_at": self.created_at, "updated_at": self.updated_at,
            "last_seq": self.events.len(),
        })
    }

    /// Appends an event and pushes it to the subscribers; returns its seq.
    fn append(&mut self, mut event: Value, at: u64) -> u64 {
        let seq = self.events.len() as u64 + 1;
        self.updated_at = at;
        if let Value::Object(fields) = &mut event {
            fields.insert("ticket_id".into(), Value::from(&*self.id));
            fields.insert("seq".into(), Value::from(seq));
            fields.insert("at".into(), Value::from(at));
        }
        let frame = encode(&json!({"type": "ticket.event", "event": event}));
        for outbox in &self.subscribers {
            outbox.push(&frame);
        }
        self.events.push(frame);
        seq
    }
}

/// Everything the sockets and HTTP routes share.
pub struct Peer {
    /// The peer's settings.
    pub config: Config,
    tickets: Vec<Mutex<HashMap<Arc<str>, Ticket>>>,
    sockets: Vec<Mutex<Sockets>>,
    queue: RwLock<HashMap<u64, Arc<Outbox>>>,
    agents: Mutex<HashMap<String, Arc<str>>>,
    /// Open WebSocket connections.
    pub connections: AtomicI64,
    next_conn: AtomicU64,
    next_id: AtomicU64,
    seed: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A JSON frame as a shareable text message payload.
pub fn encode(value: &Value) -> Utf8Bytes {
    value.to_string().into()
}

fn shard_of(key: &str) -> usize {
    // FNV-1a: ids are random-looking already, any cheap mix will do.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (hash % SHARDS as u64) as usize
}

impl Peer {
    /// An empty peer.
    pub fn new(config: Config) -> Self {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Self {
            config,
            tickets: (0..SHARDS).map(|_| Mutex::default()).collect(),
            sockets: (0..SHARDS).map(|_| Mutex::default()).collect(),
            queue: RwLock::default(),
            agents: Mutex::default(),
            connections: AtomicI64::new(0),
            next_conn: AtomicU64::new(1),
            next_id: AtomicU64::new(1),
            seed,
        }
    }

    /// A fresh id shaped like the hub's UUIDv7 strings (so frames have the hub's sizes).
    pub fn new_id(&self) -> Arc<str> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let s = self.seed;
        format!(
            "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
            (s >> 32) as u32,
            (s >> 16) as u16,
            s & 0xfff,
            0x8000 | ((n >> 48) & 0x3fff),
            n & 0xffff_ffff_ffff
        )
        .into()
    }

    /// A number for a new connection.
    pub fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The id of the agent signing in with `email` (the same one on every login).
    pub fn agent_id(&self, email: &str) -> Arc<str> {
        let mut agents = lock(&self.agents);
        if let Some(id) = agents.get(email) {
            return id.clone();
        }
        let id = self.new_id();
        agents.insert(email.to_owned(), id.clone());
        id
    }

    /// Records an authenticated socket, for announcements.
    pub fn register(&self, who: &Principal, outbox: &Arc<Outbox>) {
        let shard = outbox.conn as usize % SHARDS;
        lock(&self.sockets[shard]).insert(outbox.conn, (who.agent, outbox.clone()));
    }

    /// Forgets a socket that closed, and its subscriptions.
    pub fn unregister(&self, conn: u64, subscriptions: &[Arc<str>]) {
        lock(&self.sockets[conn as usize % SHARDS]).remove(&conn);
        self.queue.write().unwrap_or_else(|e| e.into_inner()).remove(&conn);
        for id in subscriptions {
            if let Some(t) = lock(&self.tickets[shard_of(id)]).get_mut(id) {
                t.subscribers.retain(|o| o.conn != conn);
            }
        }
    }

    /// Pushes one `announcement`, encoded once, to every authenticated socket in `audience`
    /// (`users`, `agents` or `everyone`); returns its id and how many sockets it was queued for.
    pub fn announce(&self, text: &str, audience: &str) -> (Arc<str>, usize) {
        let id = self.new_id();
        let frame =
            encode(&json!({"type": "announcement", "announcement_id": &*id, "text": text, "sent_at": now_ms()}));
        let mut queued = 0;
        for shard in &self.sockets {
            for (agent, outbox) in lock(shard).values() {
                if audience == "everyone" || (audience == "agents") == *agent {
                    outbox.push(&frame);
                    queued += 1;
                }
            }
        }
        (id, queued)
    }

    /// `ticket.open`: a new ticket with its `opened` and first `message` events; returns its view.
    pub fn open(&self, who: &Principal, actor: &Arc<Outbox>, subject: &str, body: &str, client_msg_id: &str) -> Value {
        let now = now_ms();
        let id = self.new_id();
        let mut t = Ticket {
            id: id.clone(),
            user_id: who.id.clone(),
            subject: subject.trim().to_owned(),
            status: "open",
            agent_id: None,
            created_at: now,
            updated_at: now,
            events: Vec::new(),
            subscribers: Vec::new(),
        };
        t.append(json!({"kind": "opened", "author": who.author(), "body": t.subject}), now);
        t.append(json!({"kind": "message", "author": who.author(), "body": body, "client_msg_id": client_msg_id}), now);
        let view = t.view();
        self.updated(&t, actor);
        lock(&self.tickets[shard_of(&id)]).insert(id, t);
        view
    }

    /// `ticket.claim`: an open ticket becomes the caller's; returns its view.
    ///
    /// # Errors
    /// `not_found`, or `wrong_state` when the ticket is not open.
    pub fn claim(&self, who: &Principal, actor: &Arc<Outbox>, ticket_id: &str) -> Result<Value, Refusal> {
        let mut shard = lock(&self.tickets[shard_of(ticket_id)]);
        let t = shard.get_mut(ticket_id).ok_or(NOT_FOUND)?;
        if t.status != "open" {
            return Err(Refusal { code: "wrong_state", message: "the ticket is already assigned" });
        }
        t.status = "assigned";
        t.agent_id = Some(who.id.clone());
        t.append(json!({"kind": "claimed", "author": who.author(), "agent_id": &*who.id}), now_ms());
        self.updated(t, actor);
        Ok(t.view())
    }

    /// `ticket.subscribe`: the events after `after_seq` (to be written before the reply, ahead of
    /// any live event, which goes to the outbox from now on) and the ticket's view.
    ///
    /// # Errors
    /// `not_found`, or `bad_request` for an `after_seq` beyond the ticket's last seq.
    pub fn subscribe(
        &self,
        outbox: &Arc<Outbox>,
        ticket_id: &str,
        after_seq: u64,
    ) -> Result<(Arc<str>, Vec<Utf8Bytes>, Value), Refusal> {
        let mut shard = lock(&self.tickets[shard_of(ticket_id)]);
        let t = shard.get_mut(ticket_id).ok_or(NOT_FOUND)?;
        let Some(missed) = t.events.get(after_seq as usize..) else {
            return Err(Refusal { code: "bad_request", message: "after_seq is beyond the ticket's last seq" });
        };
        let missed = missed.to_vec();
        if !t.subscribers.iter().any(|o| o.conn == outbox.conn) {
            t.subscribers.push(outbox.clone());
        }
        Ok((t.id.clone(), missed, t.view()))
    }

    /// `ticket.send`: appends a message and pushes it; returns its seq.
    ///
    /// # Errors
    /// `not_found`.
    pub fn send(
        &self,
        who: &Principal,
        actor: &Arc<Outbox>,
        ticket_id: &str,
        client_msg_id: &str,
        body: &str,
    ) -> Result<u64, Refusal> {
        let mut shard = lock(&self.tickets[shard_of(ticket_id)]);
        let t = shard.get_mut(ticket_id).ok_or(NOT_FOUND)?;
        let event = json!({"kind": "message", "author": who.author(), "body": body, "client_msg_id": client_msg_id});
        let seq = t.append(event, now_ms());
        self.updated(t, actor);
        Ok(seq)
    }

    /// `queue.subscribe`: the socket receives `ticket.updated` for every ticket from now on.
    pub fn watch_queue(&self, outbox: &Arc<Outbox>) {
        self.queue.write().unwrap_or_else(|e| e.into_inner()).insert(outbox.conn, outbox.clone());
    }

    /// `ticket.updated`, encoded once, to the ticket's subscribers, the queue watchers and the
    /// acting socket, each once (the hub sends it to the same sockets in the harness's scenarios).
    fn updated(&self, t: &Ticket, actor: &Arc<Outbox>) {
        let frame = encode(&json!({"type": "ticket.updated", "ticket": t.view()}));
        let subscribed = |conn: u64| t.subscribers.iter().any(|o| o.conn == conn);
        for outbox in &t.subscribers {
            outbox.push(&frame);
        }
        let queue = self.queue.read().unwrap_or_else(|e| e.into_inner());
        for outbox in queue.values().filter(|o| !subscribed(o.conn)) {
            outbox.push(&frame);
        }
        if !subscribed(actor.conn) && !queue.contains_key(&actor.conn) {
            actor.push(&frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(m: &Utf8Bytes) -> Value {
        serde_json::from_str(m.as_str()).unwrap()
    }

    #[test]
    fn tokens_name_their_principal() {
        assert_eq!(Principal::from_token("agt_a1"), Principal { agent: true, id: "a1".into() });
        assert_eq!(Principal::from_token("usr_u1"), Principal { agent: false, id: "u1".into() });
        assert_eq!(Principal::from_token("opaque").id.as_ref(), "opaque");
    }

    #[test]
    fn a_ticket_numbers_its_events_and_replays_them_to_a_late_subscriber() {
        let peer = Peer::new(Config::default());
        let user = Principal::from_token("usr_u");
        let agent = Principal::from_token("agt_a");
        let (u_box, mut u_rx) = Outbox::new(1);
        let (a_box, mut a_rx) = Outbox::new(2);
        let view = peer.open(&user, &u_box, "subject", "first", "c1");
        let id = view["id"].as_str().unwrap().to_owned();
        assert_eq!(view["last_seq"], 2);
        assert_eq!(frame(&u_rx.try_recv().unwrap())["type"], "ticket.updated");
        assert_eq!(peer.claim(&agent, &a_box, &id).unwrap()["status"], "assigned");
        assert_eq!(peer.claim(&agent, &a_box, &id).unwrap_err().code, "wrong_state");
        let (_, missed, view) = peer.subscribe(&a_box, &id, 1).unwrap();
        assert_eq!(missed.iter().map(|m| frame(m)["event"]["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(view["last_seq"], 3);
        assert!(peer.subscribe(&a_box, &id, 4).is_err());
        while a_rx.try_recv().is_ok() {}
        assert_eq!(peer.send(&user, &u_box, &id, "m1", "hello").unwrap(), 4);
        let event = frame(&a_rx.try_recv().unwrap());
        assert_eq!(
            (event["event"]["seq"].as_u64(), event["event"]["author"]["kind"].as_str()),
            (Some(4), Some("user"))
        );
        assert_eq!(peer.send(&user, &u_box, "nope", "m2", "x").unwrap_err().code, "not_found");
    }

    #[test]
    fn announcements_reach_their_audience_and_a_full_outbox_marks_the_socket_slow() {
        let peer = Peer::new(Config::default());
        let (u_box, mut u_rx) = Outbox::new(1);
        let (a_box, _a_rx) = Outbox::new(2);
        peer.register(&Principal::from_token("usr_u"), &u_box);
        peer.register(&Principal::from_token("agt_a"), &a_box);
        assert_eq!(peer.announce("hi", "everyone").1, 2);
        assert_eq!(peer.announce("hi", "users").1, 1);
        assert_eq!(frame(&u_rx.try_recv().unwrap())["text"], "hi");
        for _ in 0..OUTBOX_FRAMES {
            peer.announce("flood", "agents");
        }
        assert!(a_box.is_slow() && !u_box.is_slow());
        peer.unregister(1, &[]);
        assert_eq!(peer.announce("hi", "users").1, 0);
        assert_ne!(peer.new_id(), peer.new_id());
        assert_eq!(peer.new_id().len(), 36);
    }
}
