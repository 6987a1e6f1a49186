//! The node's live, authenticated sockets: by principal, by subscribed ticket, and the agents
//! watching the queue. On a single node it is the whole [`Broker`]; in a cluster it is the local half
//! of [`crate::gateway::cluster::Cluster`], which also learns from it which topics to follow in Redis.
//! Sharded (DashMap); no lock is held across an `.await`, and frames are pushed after the shard locks
//! are released.

use crate::gateway::session::outbox::{Outbound, Outbox};
use crate::model::account::RevokeReason;
use crate::model::event::Event;
use crate::model::ids::{AgentId, ConnId, Principal, SessionId, TicketId};
use crate::model::time::{now_ms, Millis};
use crate::ports::broker::{Audience, Broker, Topic};
use crate::protocol::{ServerFrame, SharedFrame};
use dashmap::DashMap;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// One registered socket.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The socket's id on this node.
    pub conn: ConnId,
    /// Whose socket it is.
    pub who: Principal,
    /// The session it authenticated with.
    pub session: SessionId,
    /// Its outbound queue.
    pub outbox: Arc<Outbox>,
}

/// What a cluster node needs to follow: topics whose local interest may have changed since the
/// link last looked. A set, so a burst of changes to one topic is one entry (bounded by the number of
/// topics, never by the number of changes).
#[derive(Default)]
struct Touched {
    topics: Mutex<HashSet<Topic>>,
    notify: Notify,
}

/// Live sockets.
#[derive(Default)]
pub struct Registry {
    principals: DashMap<Principal, Vec<Connection>>,
    tickets: DashMap<TicketId, Vec<Connection>>,
    queue: DashMap<ConnId, Connection>,
    /// Present in a cluster only: topic changes for the Redis link, and the last seq of each recently
    /// active ticket this node delivered (for the sweep that finds missed publications).
    cluster: Option<ClusterState>,
}

#[derive(Default)]
struct ClusterState {
    touched: Touched,
    known: DashMap<TicketId, (u64, Millis)>,
}

/// Removes `conn` from the key's list; true if the list became empty (and was removed).
fn remove_conn<K: std::hash::Hash + Eq + Clone>(map: &DashMap<K, Vec<Connection>>, key: &K, conn: ConnId) -> bool {
    if let dashmap::Entry::Occupied(mut entry) = map.entry(key.clone()) {
        let conns = entry.get_mut();
        conns.retain(|c| c.conn != conn);
        if conns.capacity() > 2 * conns.len() {
            conns.shrink_to_fit();
        }
        if conns.is_empty() {
            entry.remove();
            return true;
        }
    }
    false
}

/// Appends without the doubling of `Vec::push`, whose first allocation holds four: most people have
/// one socket and most tickets two followers, so the spare slots would cost up to 192 bytes a socket.
/// The lists stay short, so copying on each growth is cheap.
fn push_exact(conns: &mut Vec<Connection>, connection: Connection) {
    conns.reserve_exact(1);
    conns.push(connection);
}

impl Registry {
    /// An empty registry for a single node.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry that records what a cluster link needs.
    pub fn clustered() -> Self {
        Self { cluster: Some(ClusterState::default()), ..Self::default() }
    }

    fn touch(&self, topic: Topic) {
        if let Some(c) = &self.cluster {
            c.touched.topics.lock().unwrap_or_else(|p| p.into_inner()).insert(topic);
            c.touched.notify.notify_one();
        }
    }

    /// Adds an authenticated socket.
    pub fn insert(&self, who: Principal, connection: Connection) {
        let first = {
            let mut conns = self.principals.entry(who).or_default();
            push_exact(&mut conns, connection);
            conns.len() == 1
        };
        if first {
            self.touch(Topic::Principal(who));
        }
    }

    /// Removes a socket from everything it was registered in.
    pub fn remove(&self, who: Principal, conn: ConnId, tickets: impl IntoIterator<Item = TicketId>) {
        if remove_conn(&self.principals, &who, conn) {
            self.touch(Topic::Principal(who));
        }
        for t in tickets {
            if remove_conn(&self.tickets, &t, conn) {
                self.touch(Topic::Ticket(t));
            }
        }
        if self.queue.remove(&conn).is_some() && self.queue.is_empty() {
            self.touch(Topic::Queue);
        }
    }

    /// Live events of `ticket` go to this socket from now on.
    pub fn subscribe(&self, ticket: TicketId, connection: Connection) {
        let first = {
            let mut subs = self.tickets.entry(ticket).or_default();
            if !subs.iter().any(|c| c.conn == connection.conn) {
                push_exact(&mut subs, connection);
            }
            subs.len() == 1
        };
        if first {
            self.touch(Topic::Ticket(ticket));
        }
    }

    /// Stops the ticket's live events on this socket.
    pub fn unsubscribe(&self, ticket: TicketId, conn: ConnId) {
        if remove_conn(&self.tickets, &ticket, conn) {
            self.touch(Topic::Ticket(ticket));
        }
    }

    /// The socket receives queue changes from now on.
    pub fn watch_queue(&self, connection: Connection) {
        if self.queue.insert(connection.conn, connection).is_none() && self.queue.len() == 1 {
            self.touch(Topic::Queue);
        }
    }

    /// Agents with at least one live socket on this node.
    pub fn online_agents(&self) -> Vec<AgentId> {
        self.principals
            .iter()
            .filter_map(|e| match e.key() {
                Principal::Agent(a) => Some(*a),
                Principal::User(_) => None,
            })
            .collect()
    }

    /// Every session with a live socket on this node (once each).
    pub fn sessions(&self) -> Vec<(Principal, SessionId)> {
        let mut all: Vec<(Principal, SessionId)> = self
            .principals
            .iter()
            .flat_map(|e| e.value().iter().map(|c| (c.who, c.session)).collect::<Vec<_>>())
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Whether some socket on this node is reached through `topic`.
    pub fn follows(&self, topic: Topic) -> bool {
        match topic {
            Topic::Ticket(t) => self.tickets.contains_key(&t),
            Topic::Principal(p) => self.principals.contains_key(&p),
            Topic::Queue => !self.queue.is_empty(),
            Topic::Everyone => true,
        }
    }

    /// Every topic some socket on this node is reached through.
    pub fn topics(&self) -> Vec<Topic> {
        let mut all: Vec<Topic> = self.tickets.iter().map(|e| Topic::Ticket(*e.key())).collect();
        all.extend(self.principals.iter().map(|e| Topic::Principal(*e.key())));
        if !self.queue.is_empty() {
            all.push(Topic::Queue);
        }
        all.push(Topic::Everyone);
        all
    }

    /// The topics touched since the last call (cluster only).
    pub fn take_touched(&self) -> Vec<Topic> {
        match &self.cluster {
            Some(c) => c.touched.topics.lock().unwrap_or_else(|p| p.into_inner()).drain().collect(),
            None => Vec::new(),
        }
    }

    /// Waits until a topic is touched (cluster only; never returns on a single node).
    pub async fn touched(&self) {
        match &self.cluster {
            Some(c) => c.touched.notify.notified().await,
            None => std::future::pending().await,
        }
    }

    /// The last seq of the ticket this node delivered, if it delivered any lately (cluster only).
    pub fn known_seq(&self, ticket: TicketId) -> Option<u64> {
        self.cluster.as_ref().and_then(|c| c.known.get(&ticket).map(|e| e.0))
    }

    fn saw(&self, ticket: TicketId, seq: u64) {
        if let Some(c) = &self.cluster {
            let now = now_ms();
            let mut e = c.known.entry(ticket).or_insert((seq, now));
            e.0 = e.0.max(seq);
            e.1 = now;
        }
    }

    /// Forgets what was delivered of tickets quiet since `before`, so that the record stays as small
    /// as the set of recently active tickets.
    pub fn forget_known(&self, before: Millis) {
        if let Some(c) = &self.cluster {
            c.known.retain(|_, (_, at)| *at >= before);
        }
    }

    /// Whether a change of `ticket` concerns any socket on this node: its subscribers, the sockets of
    /// its user or agent, or queue watchers.
    pub fn cares_about(&self, ticket: &crate::model::ticket::Ticket) -> bool {
        self.tickets.contains_key(&ticket.id)
            || self.principals.contains_key(&Principal::User(ticket.user_id))
            || ticket.agent_id.is_some_and(|a| self.principals.contains_key(&Principal::Agent(a)))
            || !self.queue.is_empty()
    }

    /// Every subscriber of `ticket` reads the ticket's stream from its cursor up to the end: events
    /// were stored that this node never received.
    pub fn catch_up(&self, ticket: TicketId) {
        if let Some(subs) = self.tickets.get(&ticket) {
            for c in subs.iter() {
                c.outbox.push_control(Outbound::CatchUp(ticket));
            }
        }
    }

    fn each_of(&self, who: Principal, f: impl Fn(&Connection)) {
        if let Some(conns) = self.principals.get(&who) {
            conns.iter().for_each(f);
        }
    }

    /// The sessions of `who`'s sockets on this node, each once.
    pub fn sessions_of(&self, who: Principal) -> Vec<SessionId> {
        let mut sessions: Vec<SessionId> =
            self.principals.get(&who).map(|conns| conns.iter().map(|c| c.session).collect()).unwrap_or_default();
        sessions.sort_unstable();
        sessions.dedup();
        sessions
    }
}

impl Registry {
    /// Queues `frame` once on every socket of this node in `audience` (and records the seq of a
    /// ticket's event or summary as delivered, for the cluster's sweep).
    pub fn deliver(&self, audience: &Audience<'_>, frame: Arc<SharedFrame>) {
        if let Some((ticket, seq)) = frame.ticket_seq() {
            self.saw(ticket, seq);
        } else if let ServerFrame::TicketUpdated { ticket } = frame.frame() {
            self.saw(ticket.id, ticket.last_seq);
        }
        // Collect first, push after: encoding happens outside every shard lock.
        let mut targets: Vec<(ConnId, Arc<Outbox>)> = Vec::new();
        let wanted = |c: &Connection| audience.except != Some(c.who);
        let entry = |c: &Connection| (c.conn, c.outbox.clone());
        for ticket in audience.tickets {
            if let Some(subs) = self.tickets.get(ticket) {
                targets.extend(subs.iter().filter(|c| wanted(c)).map(entry));
            }
        }
        for who in audience.principals {
            if let Some(conns) = self.principals.get(who) {
                targets.extend(conns.iter().filter(|c| wanted(c)).map(entry));
            }
        }
        if audience.queue_watchers {
            targets.extend(self.queue.iter().filter(|c| wanted(c.value())).map(|c| entry(c.value())));
        }
        if let Some(broadcast) = audience.broadcast {
            for conns in self.principals.iter().filter(|e| broadcast.includes(*e.key())) {
                targets.extend(conns.iter().filter(|c| wanted(c)).map(entry));
            }
        }
        // A socket can be listed twice only when the audience names it in two ways (a ticket it
        // follows and its person, say); a list of one kind names each socket once, and sorting a
        // broadcast's every socket for nothing was a visible cost of a fan-out burst.
        let named = audience.tickets.len()
            + audience.principals.len()
            + usize::from(audience.queue_watchers)
            + usize::from(audience.broadcast.is_some());
        if named > 1 {
            targets.sort_unstable_by_key(|(conn, _)| *conn);
            targets.dedup_by_key(|(conn, _)| *conn);
        }
        for (_, outbox) in targets {
            // An overflowing socket closes itself as a slow consumer; the others go on.
            let _ = outbox.push_frame(&frame);
        }
    }
}

impl Broker for Registry {
    fn publish(&self, audience: &Audience<'_>, event: Event) {
        self.deliver(audience, crate::gateway::render::frame(&event));
    }

    fn tell_here(&self, audience: &Audience<'_>, event: Event) {
        self.publish(audience, event);
    }

    fn queue_changed(&self, _claims: u32) {}

    fn session_revoked(&self, who: Principal, session: SessionId, reason: RevokeReason) {
        self.each_of(who, |c| {
            if c.session == session {
                c.outbox.push_control(Outbound::Revoke(reason));
            }
        });
    }

    fn agent_disabled(&self, agent: AgentId) {
        self.each_of(Principal::Agent(agent), |c| c.outbox.push_control(Outbound::Revoke(RevokeReason::AgentDisabled)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::UserId;
    use crate::ports::broker::Broadcast;
    use crate::protocol::Encoding;

    fn socket(registry: &Registry, conn: u64, who: Principal) -> Connection {
        let connection = Connection {
            conn: ConnId(conn),
            who,
            session: SessionId::generate(),
            outbox: Arc::new(Outbox::new(Encoding::Json, 1 << 20)),
        };
        registry.insert(who, connection.clone());
        connection
    }

    fn received(c: &Connection) -> usize {
        let mut items = Vec::new();
        c.outbox.drain(&mut items);
        items.len()
    }

    fn frame() -> Event {
        Event::Announcement { id: uuid::Uuid::nil(), text: "t".into(), sent_at: 0 }
    }

    #[test]
    fn a_socket_reached_through_two_parts_of_an_audience_gets_one_copy() {
        let registry = Registry::new();
        let (owner, other) = (Principal::User(UserId::generate()), Principal::User(UserId::generate()));
        let (ticket, second) = (TicketId::generate(), TicketId::generate());
        let mine = socket(&registry, 1, owner);
        let theirs = socket(&registry, 2, other);
        for t in [ticket, second] {
            registry.subscribe(t, mine.clone());
        }
        registry.subscribe(ticket, theirs.clone());

        let tickets = [ticket, second];
        registry.publish(&Audience { tickets: &tickets, principals: &[owner], ..Audience::default() }, frame());
        assert_eq!((received(&mine), received(&theirs)), (1, 1));
        registry.publish(&Audience { tickets: &tickets, ..Audience::default() }, frame());
        assert_eq!((received(&mine), received(&theirs)), (1, 1), "two followed tickets of one audience");
        registry.publish(&Audience { broadcast: Some(Broadcast::Users), ..Audience::default() }, frame());
        assert_eq!((received(&mine), received(&theirs)), (1, 1));
    }
}
