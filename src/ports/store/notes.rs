//! The storage port for agents' private notes on tickets.

use crate::error::Result;
use crate::model::ids::{NoteId, TicketId};
use crate::model::note::{Note, NoteAdded};
use async_trait::async_trait;

/// Notes, a stream of their own per ticket.
#[async_trait]
pub trait Notes: Send + Sync {
    /// Stores `note`, unless its (ticket, agent, client_msg_id) was stored before (that note is
    /// answered) or the ticket does not exist.
    async fn add_note(&self, note: &Note) -> Result<NoteAdded>;

    /// Up to `limit` notes of the ticket, before `before` when given (else the newest), oldest
    /// first.
    async fn notes(&self, ticket: TicketId, before: Option<NoteId>, limit: u32) -> Result<Vec<Note>>;
}
