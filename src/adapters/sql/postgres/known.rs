//! The tickets as this node last stored or read them, so that a batch of messages to tickets it
//! knows can be planned without reading them first: one statement per batch instead of two.
//!
//! A state kept here may be stale (another node wrote to the ticket since). That is safe because
//! the batch's write applies a ticket's part only where the row's `last_seq` is still the one the
//! plan started from, and every change to a ticket moves its `last_seq`; a ticket whose part was
//! not written is read and planned again.
//!
//! In a cluster a ticket's user and agent are often connected to different nodes, and both nodes
//! write to it. Each node hears the other's changes (every change is announced with the ticket's
//! new state, `ticket.updated`, to the nodes of its participants) and takes the newer state in place
//! of what it knew, so that its next batch is still planned from the ticket as stored; the
//! cluster's sweep, which reads the tickets changed lately to find lost publications, hands over
//! what it reads the same way. A ticket that changed where this node neither saw nor heard it (a
//! publication lost or late) is kept out until the next state it hears: planned from what this
//! node knew, each batch to it would cost a write that fails, then the read and the write. Its
//! batches read it first, as every batch would without this.

use crate::model::ids::TicketId;
use crate::model::ticket::Ticket;
use crate::model::time::Millis;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// How many tickets are kept, and how many kept out: beyond either, an arbitrary one is dropped for
/// each one added. A kept ticket takes about 200 bytes with a short subject and up to about 1 KiB
/// with the longest (200 Persian characters), so at most about 16 MiB; a busy node's open
/// conversations fit.
pub(super) const KNOWN_TICKETS: usize = 16_384;

/// Tickets by id, as last stored or read by this node.
pub(super) struct KnownTickets {
    state: Mutex<State>,
    limit: usize,
}

#[derive(Default)]
struct State {
    tickets: HashMap<TicketId, Ticket>,
    /// Tickets that changed where this node did not see it: always read.
    shared: HashSet<TicketId>,
}

impl KnownTickets {
    pub(super) fn new(limit: usize) -> Self {
        Self { state: Mutex::new(State::default()), limit: limit.max(1) }
    }

    /// Every one of `ids`, if all are known and none is kept out; `None` otherwise.
    pub(super) fn all(&self, ids: &[TicketId]) -> Option<HashMap<TicketId, Ticket>> {
        let state = self.lock();
        ids.iter().map(|id| state.tickets.get(id).map(|t| (*id, t.clone()))).collect()
    }

    /// When `id` was opened, if this node knows the ticket (the time never changes, so what it
    /// knows is never out of date).
    pub(super) fn opened(&self, id: TicketId) -> Option<Millis> {
        self.lock().tickets.get(&id).map(|t| t.created_at)
    }

    /// Learns the state of each of `tickets` (stored or read just now), unless a newer one is
    /// known (heard meanwhile: every change moves `last_seq`); those kept out stay out.
    pub(super) fn learn<'a>(&self, tickets: impl IntoIterator<Item = &'a Ticket>) {
        let mut state = self.lock();
        for ticket in tickets {
            if !state.shared.contains(&ticket.id) {
                self.keep(&mut state, ticket);
            }
        }
    }

    /// `ticket` as stored, learnt outside this node's own writes and reads for batches (another
    /// node's announcement, or the cluster's sweep reading what changed): taken in place of an
    /// older state, and in place of nothing for a ticket kept out (its changes are heard of again).
    /// A ticket this node has neither stored nor read is left alone: a node that watches the queue
    /// hears of every ticket, and would fill its memory with tickets it never writes to.
    pub(super) fn stored_elsewhere(&self, ticket: &Ticket) {
        let mut state = self.lock();
        if state.shared.remove(&ticket.id) || state.tickets.contains_key(&ticket.id) {
            self.keep(&mut state, ticket);
        }
    }

    /// Keeps `ticket` unless a newer state of it is kept; makes room first.
    fn keep(&self, state: &mut State, ticket: &Ticket) {
        match state.tickets.get_mut(&ticket.id) {
            Some(known) if known.last_seq > ticket.last_seq => {}
            Some(known) => *known = ticket.clone(),
            None => {
                if state.tickets.len() >= self.limit {
                    if let Some(&other) = state.tickets.keys().next() {
                        state.tickets.remove(&other);
                    }
                }
                state.tickets.insert(ticket.id, ticket.clone());
            }
        }
    }

    /// A batch planned from `id` at `last_seq` found the ticket changed. If this node knows a newer
    /// state (another of its own batches, or a transition, stored it meanwhile), that stays; if not,
    /// the change was made elsewhere, and the ticket is kept out from now on.
    pub(super) fn changed(&self, id: TicketId, last_seq: u64) {
        let mut state = self.lock();
        if state.tickets.get(&id).is_some_and(|t| t.last_seq > last_seq) {
            return;
        }
        state.tickets.remove(&id);
        if state.shared.len() >= self.limit && !state.shared.contains(&id) {
            if let Some(&other) = state.shared.iter().next() {
                state.shared.remove(&other);
            }
        }
        state.shared.insert(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed in a way that matters:
        // every entry is a whole state, checked at the write.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::UserId;
    use crate::model::ticket::TicketStatus;

    fn ticket(last_seq: u64) -> Ticket {
        Ticket {
            id: TicketId::generate(),
            user_id: UserId::generate(),
            subject: "s".into(),
            status: TicketStatus::Open,
            agent_id: None,
            created_at: 1,
            updated_at: 1,
            queued_at: Some(1),
            last_seq,
        }
    }

    #[test]
    fn a_batch_is_known_only_when_every_one_of_its_tickets_is() {
        let known = KnownTickets::new(10);
        let (a, b) = (ticket(2), ticket(5));
        known.learn([&a]);
        assert_eq!(known.all(&[a.id]).unwrap()[&a.id].last_seq, 2);
        assert!(known.all(&[a.id, b.id]).is_none());
        known.learn([&b]);
        let both = known.all(&[a.id, b.id]).unwrap();
        assert_eq!((both[&a.id].last_seq, both[&b.id].last_seq), (2, 5));
    }

    #[test]
    fn a_newer_state_heard_from_another_node_replaces_what_was_known() {
        let known = KnownTickets::new(10);
        let (mut ticket, stranger) = (ticket(2), ticket(7));
        known.learn([&ticket]);
        ticket.last_seq = 4;
        known.stored_elsewhere(&ticket);
        assert_eq!(known.all(&[ticket.id]).unwrap()[&ticket.id].last_seq, 4);
        // An older state, heard late or stored by this node before it heard the newer one, does not
        // take its place.
        let mut older = ticket.clone();
        older.last_seq = 3;
        known.stored_elsewhere(&older);
        known.learn([&older]);
        assert_eq!(known.all(&[ticket.id]).unwrap()[&ticket.id].last_seq, 4);
        // A batch planned from 3 found it changed: the state heard since is newer, and stays.
        known.changed(ticket.id, 3);
        assert_eq!(known.all(&[ticket.id]).unwrap()[&ticket.id].last_seq, 4);
        // Kept out after a change it did not hear of, it is known again from the next state heard.
        known.changed(ticket.id, 4);
        assert!(known.all(&[ticket.id]).is_none());
        ticket.last_seq = 6;
        known.stored_elsewhere(&ticket);
        assert_eq!(known.all(&[ticket.id]).unwrap()[&ticket.id].last_seq, 6);
        // A ticket this node never stored nor read is not taken in.
        known.stored_elsewhere(&stranger);
        assert!(known.all(&[stranger.id]).is_none());
    }

    #[test]
    fn a_ticket_changed_elsewhere_is_kept_out_and_one_this_node_changed_stays() {
        let known = KnownTickets::new(10);
        let (mut mine, theirs) = (ticket(2), ticket(2));
        known.learn([&mine, &theirs]);
        // Another batch of this node stored `mine` at 3 while a batch planned from 2 was on its way.
        mine.last_seq = 3;
        known.learn([&mine]);
        known.changed(mine.id, 2);
        assert_eq!(known.all(&[mine.id]).unwrap()[&mine.id].last_seq, 3, "the newer state stays");
        // Nothing newer is known of `theirs`: it changed elsewhere, and stays out even once read.
        known.changed(theirs.id, 2);
        assert!(known.all(&[theirs.id]).is_none());
        known.learn([&theirs]);
        assert!(known.all(&[theirs.id]).is_none(), "a ticket kept out is read for every batch");
        assert!(known.all(&[mine.id, theirs.id]).is_none());
    }

    #[test]
    fn no_more_than_the_limit_is_kept_and_the_newest_is_among_them() {
        let known = KnownTickets::new(3);
        let tickets: Vec<Ticket> = (0..10).map(ticket).collect();
        for t in &tickets {
            known.learn([t]);
        }
        assert_eq!(known.lock().tickets.len(), 3);
        assert!(known.all(&[tickets[9].id]).is_some());
        for t in &tickets {
            known.changed(t.id, t.last_seq);
        }
        assert_eq!(known.lock().shared.len(), 3, "nor more kept out");
    }
}
