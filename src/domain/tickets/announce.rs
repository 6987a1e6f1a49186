//! Who hears of a ticket's stored events: its subscribers (each event), the people of the ticket and
//! the agents watching the queue (a `ticket.updated` summary) through the broker, and the push desk
//! (for people whose app is closed).
//!
//! The message writer announces a batch's events in the batch's order, once it is committed and
//! before any of its senders is answered, so that each ticket's events go out in seq order: a socket
//! that saw seq 7 before seq 6 would read the ticket's stream from storage to fill the gap.

use crate::domain::push::PushTrigger;
use crate::domain::tickets::queue::Queue;
use crate::model::event::Event;
use crate::model::ids::Principal;
use crate::model::ticket::{Author, EventKind, Ticket, TicketEvent};
use crate::ports::broker::{Audience, Broker};
use std::sync::Arc;

/// Announces stored events; cheap to clone.
#[derive(Clone)]
pub struct Announcer {
    broker: Arc<dyn Broker>,
    push: PushTrigger,
    queue: Arc<Queue>,
}

impl Announcer {
    /// An announcer publishing through `broker`, handing events to `push`, and waking `queue` when
    /// a message reopens a ticket.
    pub fn new(broker: Arc<dyn Broker>, push: PushTrigger, queue: Arc<Queue>) -> Self {
        Self { broker, push, queue }
    }

    /// Tells everyone entitled to `ticket` of its new `events` (in seq order) and its state after them.
    pub(crate) fn stored(&self, ticket: &Ticket, events: &[TicketEvent]) {
        self.push.events(ticket, events);
        for e in events {
            self.broker
                .publish(&Audience { tickets: &[ticket.id], ..Audience::default() }, Event::TicketEvent(e.clone()));
        }
        let mut principals = vec![Principal::User(ticket.user_id)];
        principals.extend(ticket.agent_id.map(Principal::Agent));
        // A transfer also tells the agent who gave the ticket away.
        principals.extend(events.iter().filter_map(|e| match e.author {
            Author::Agent(a) if Some(a) != ticket.agent_id => Some(Principal::Agent(a)),
            _ => None,
        }));
        self.broker.publish(
            &Audience { tickets: &[ticket.id], principals: &principals, queue_watchers: true, ..Audience::default() },
            Event::TicketUpdated(ticket.clone()),
        );
    }

    /// A stored message's events: announced, and the queue woken when they reopened the ticket.
    pub(crate) fn message_stored(&self, ticket: &Ticket, events: &[TicketEvent]) {
        crate::metrics::message_stored();
        self.stored(ticket, events);
        if events.iter().any(|e| e.kind == EventKind::Reopened) {
            self.queue.changed();
        }
    }
}
