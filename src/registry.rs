//! The node's live, authenticated sockets, by user: how events reach a person's sockets and how a
//! revoked session's sockets are found. Sharded (DashMap); no lock is held across an `.await`.

use crate::auth::{RevokeReason, SessionEvents};
use crate::codec::SharedFrame;
use crate::ids::{ConnId, SessionId, UserId};
use crate::session::outbox::{Outbound, Outbox};
use dashmap::DashMap;
use std::sync::Arc;

/// One registered socket.
#[derive(Clone, Debug)]
pub struct Connection {
    /// The socket's id on this node.
    pub conn: ConnId,
    /// The session it authenticated with.
    pub session: SessionId,
    /// Its outbound queue.
    pub outbox: Arc<Outbox>,
}

/// Live sockets by user.
#[derive(Default)]
pub struct Registry {
    users: DashMap<UserId, Vec<Connection>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an authenticated socket.
    pub fn insert(&self, user: UserId, connection: Connection) {
        self.users.entry(user).or_default().push(connection);
    }

    /// Removes a socket; the user's entry goes with its last socket.
    pub fn remove(&self, user: UserId, conn: ConnId) {
        if let dashmap::Entry::Occupied(mut entry) = self.users.entry(user) {
            entry.get_mut().retain(|c| c.conn != conn);
            if entry.get().is_empty() {
                entry.remove();
            }
        }
    }

    /// How many sockets the user has on this node.
    pub fn sockets_of(&self, user: UserId) -> usize {
        self.users.get(&user).map_or(0, |c| c.len())
    }

    /// Queues `frame` to every socket of `user`; sockets whose queue overflows close themselves.
    /// Returns how many sockets took it.
    pub fn send_to_user(&self, user: UserId, frame: &SharedFrame) -> usize {
        // Clone the outboxes out so the shard lock is not held while encoding.
        let outboxes: Vec<Arc<Outbox>> = match self.users.get(&user) {
            Some(conns) => conns.iter().map(|c| c.outbox.clone()).collect(),
            None => return 0,
        };
        outboxes.iter().filter(|o| o.push_frame(frame).is_ok()).count()
    }
}

impl SessionEvents for Registry {
    fn session_revoked(&self, user: UserId, session: SessionId, reason: RevokeReason) {
        if let Some(conns) = self.users.get(&user) {
            for c in conns.iter().filter(|c| c.session == session) {
                c.outbox.push_control(Outbound::Revoke(reason));
            }
        }
    }
}
