//! Product events rendered into the frames clients receive: the one place where what the domain
//! published becomes protocol. Each event is rendered once per publication, and its frame encoded
//! at most once per encoding, whatever the number of sockets.

use crate::model::event::Event;
use crate::model::ticket::Author;
use crate::protocol::{
    consent_view, event_view, participant, profile_view, purchase_view, ticket_view, ServerFrame, SharedFrame,
};
use std::sync::Arc;

/// The frame of `event`, ready to be queued on any number of sockets.
pub(crate) fn frame(event: &Event) -> Arc<SharedFrame> {
    match event {
        Event::TicketEvent(e) => {
            SharedFrame::ticket_event(ServerFrame::TicketEvent { event: event_view(e) }, e.ticket_id, e.seq)
        }
        Event::TicketUpdated(ticket) => SharedFrame::new(ServerFrame::TicketUpdated { ticket: ticket_view(ticket) }),
        Event::TicketDeleted(ticket_id) => SharedFrame::new(ServerFrame::TicketDeleted { ticket_id: *ticket_id }),
        Event::LabelsUpdated(labels) => {
            SharedFrame::new(ServerFrame::LabelsUpdated { labels: crate::protocol::label_views(labels) })
        }
        Event::TicketLabels(labels) => {
            SharedFrame::new(ServerFrame::TicketLabels { labels: crate::protocol::ticket_labels_view(labels) })
        }
        Event::RatingRequested(request) => {
            SharedFrame::new(ServerFrame::RatingRequest { request: crate::protocol::rating_request_view(request) })
        }
        Event::TicketRated(rating) => {
            SharedFrame::new(ServerFrame::TicketRated { rating: crate::protocol::rating_view(rating) })
        }
        Event::TicketNote(note) => SharedFrame::new(ServerFrame::TicketNote { note: crate::protocol::note_view(note) }),
        Event::QueuePosition { ticket_id, position, estimated_wait_ms } => SharedFrame::new(ServerFrame::TicketQueue {
            ticket_id: *ticket_id,
            position: *position,
            estimated_wait_ms: *estimated_wait_ms,
        }),
        Event::Receipt { ticket_id, by, delivered_seq, read_seq } => SharedFrame::new(ServerFrame::TicketReceipt {
            ticket_id: *ticket_id,
            participant: participant(*by),
            delivered_seq: *delivered_seq,
            read_seq: *read_seq,
        }),
        Event::Typing { ticket_id, by } => {
            SharedFrame::new(ServerFrame::TicketTyping { ticket_id: *ticket_id, participant: participant(*by) })
        }
        Event::Presence { who, online, last_seen_at } => SharedFrame::new(ServerFrame::Presence {
            participant: participant(Author::from(*who)),
            online: *online,
            last_seen_at: *last_seen_at,
        }),
        Event::ProfileUpdated(profile) => {
            SharedFrame::new(ServerFrame::ProfileUpdated { profile: profile_view(profile) })
        }
        Event::PurchaseUpdated { purchase, at } => {
            SharedFrame::new(ServerFrame::PurchaseUpdated { purchase: purchase_view(purchase, *at) })
        }
        Event::ConsentUpdated(consent) => {
            SharedFrame::new(ServerFrame::ConsentUpdated { consent: consent_view(consent) })
        }
        Event::SettingsUpdated { settings, updated_at } => {
            SharedFrame::new(ServerFrame::SettingsUpdated { settings: settings.clone(), updated_at: *updated_at })
        }
        Event::Announcement { id, text, sent_at } => {
            SharedFrame::new(ServerFrame::Announcement { announcement_id: *id, text: text.clone(), sent_at: *sent_at })
        }
    }
}
