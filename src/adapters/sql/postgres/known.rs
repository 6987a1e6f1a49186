//! The tickets as this node last stored or read them, so that a batch of messages to tickets it
//! knows can be planned without reading them first: one statement per batch instead of two.
//!
//! A state kept here may be stale (another node wrote to the ticket since). That is safe because
//! the batch's write applies a ticket's part only where the row's `last_seq` is still the one the
//! plan started from, and every change to a ticket moves its `last_seq`; a ticket whose part was
//! not written is read and planned again, and forgotten here until then.

use crate::model::ids::TicketId;
use crate::model::ticket::Ticket;
use std::collections::HashMap;
use std::sync::Mutex;

/// How many tickets are kept: beyond it, an arbitrary one is forgotten for each one learnt. About
/// 200 bytes each, so at most a few MiB; a busy node's open conversations fit.
pub(super) const KNOWN_TICKETS: usize = 16_384;

/// Tickets by id, as last stored or read by this node.
pub(super) struct KnownTickets {
    tickets: Mutex<HashMap<TicketId, Ticket>>,
    limit: usize,
}

impl KnownTickets {
    pub(super) fn new(limit: usize) -> Self {
        Self { tickets: Mutex::new(HashMap::new()), limit: limit.max(1) }
    }

    /// Every one of `ids`, if all are known; `None` if any is not.
    pub(super) fn all(&self, ids: &[TicketId]) -> Option<HashMap<TicketId, Ticket>> {
        let known = self.lock();
        ids.iter().map(|id| known.get(id).map(|t| (*id, t.clone()))).collect()
    }

    /// Learns the state of each of `tickets` (stored or read just now), in place of what was known.
    pub(super) fn learn<'a>(&self, tickets: impl IntoIterator<Item = &'a Ticket>) {
        let mut known = self.lock();
        for ticket in tickets {
            if known.len() >= self.limit && !known.contains_key(&ticket.id) {
                if let Some(&other) = known.keys().next() {
                    known.remove(&other);
                }
            }
            known.insert(ticket.id, ticket.clone());
        }
    }

    /// Forgets `id`: the next batch to it reads it first.
    pub(super) fn forget(&self, id: TicketId) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TicketId, Ticket>> {
        // A panic while holding the lock cannot leave the map half-changed in a way that matters:
        // every entry is a whole state, checked at the write.
        self.tickets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    fn a_state_learnt_again_replaces_the_old_one_and_a_forgotten_one_is_unknown() {
        let known = KnownTickets::new(10);
        let mut a = ticket(2);
        known.learn([&a]);
        a.last_seq = 3;
        known.learn([&a]);
        assert_eq!(known.all(&[a.id]).unwrap()[&a.id].last_seq, 3);
        known.forget(a.id);
        assert!(known.all(&[a.id]).is_none());
    }

    #[test]
    fn no_more_than_the_limit_is_kept_and_the_newest_is_among_them() {
        let known = KnownTickets::new(3);
        let tickets: Vec<Ticket> = (0..10).map(ticket).collect();
        for t in &tickets {
            known.learn([t]);
        }
        assert_eq!(known.lock().len(), 3);
        assert!(known.all(&[tickets[9].id]).is_some());
    }
}
