//! The node's live, authenticated sockets: by principal, by subscribed ticket, and the agents
//! watching the queue. It is the single-node [`Broker`]. Sharded (DashMap); no lock is held across an
//! `.await`, and frames are pushed after the shard locks are released.

use crate::auth::RevokeReason;
use crate::broker::{Audience, Broker};
use crate::codec::SharedFrame;
use crate::ids::{AgentId, ConnId, Principal, SessionId, TicketId};
use crate::session::outbox::{Outbound, Outbox};
use dashmap::DashMap;
use std::sync::Arc;

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

/// Live sockets.
#[derive(Default)]
pub struct Registry {
    principals: DashMap<Principal, Vec<Connection>>,
    tickets: DashMap<TicketId, Vec<Connection>>,
    queue: DashMap<ConnId, Connection>,
}

fn remove_conn<K: std::hash::Hash + Eq + Clone>(map: &DashMap<K, Vec<Connection>>, key: &K, conn: ConnId) {
    if let dashmap::Entry::Occupied(mut entry) = map.entry(key.clone()) {
        entry.get_mut().retain(|c| c.conn != conn);
        if entry.get().is_empty() {
            entry.remove();
        }
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an authenticated socket.
    pub fn insert(&self, who: Principal, connection: Connection) {
        self.principals.entry(who).or_default().push(connection);
    }

    /// Removes a socket from everything it was registered in.
    pub fn remove(&self, who: Principal, conn: ConnId, tickets: impl IntoIterator<Item = TicketId>) {
        remove_conn(&self.principals, &who, conn);
        for t in tickets {
            remove_conn(&self.tickets, &t, conn);
        }
        self.queue.remove(&conn);
    }

    /// Live events of `ticket` go to this socket from now on.
    pub fn subscribe(&self, ticket: TicketId, connection: Connection) {
        let mut subs = self.tickets.entry(ticket).or_default();
        if !subs.iter().any(|c| c.conn == connection.conn) {
            subs.push(connection);
        }
    }

    /// Stops the ticket's live events on this socket.
    pub fn unsubscribe(&self, ticket: TicketId, conn: ConnId) {
        remove_conn(&self.tickets, &ticket, conn);
    }

    /// The socket receives queue changes from now on.
    pub fn watch_queue(&self, connection: Connection) {
        self.queue.insert(connection.conn, connection);
    }

    /// How many sockets the principal has on this node.
    pub fn sockets_of(&self, who: Principal) -> usize {
        self.principals.get(&who).map_or(0, |c| c.len())
    }

    fn each_of(&self, who: Principal, f: impl Fn(&Connection)) {
        if let Some(conns) = self.principals.get(&who) {
            conns.iter().for_each(f);
        }
    }
}

impl Broker for Registry {
    fn publish(&self, audience: &Audience<'_>, frame: Arc<SharedFrame>) {
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
        targets.sort_unstable_by_key(|(conn, _)| *conn);
        targets.dedup_by_key(|(conn, _)| *conn);
        for (_, outbox) in targets {
            // An overflowing socket closes itself as a slow consumer; the others go on.
            let _ = outbox.push_frame(&frame);
        }
    }

    fn online_agents(&self) -> Vec<AgentId> {
        self.principals
            .iter()
            .filter_map(|e| match e.key() {
                Principal::Agent(a) => Some(*a),
                Principal::User(_) => None,
            })
            .collect()
    }

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
