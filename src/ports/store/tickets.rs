//! The storage port for support tickets and their event streams.
//!
//! Each ticket has one stream of events numbered 1, 2, 3, ... without gaps: the opening, every
//! message, and every state change. The numbering is allocated inside the transaction that stores
//! the event (the ticket row is locked), so every reader sees the same order, and an event is
//! acknowledged to its sender only after that transaction committed. With a history retention
//! ([`EventMonths`](super::history::EventMonths)), the oldest events of a stream may be gone: it
//! then starts at a later seq, and the numbers of the events left never change.

use crate::error::Result;
use crate::model::ids::{AgentId, TicketId, UserId};
use crate::model::ticket::{
    Appended, Author, NewMessage, NewTicket, Opened, Page, ReadMarks, Ticket, TicketEvent, TicketStatus, Transition,
};
use crate::model::time::Millis;
use async_trait::async_trait;

/// Tickets and their streams.
#[async_trait]
pub trait Tickets: Send + Sync {
    /// Opens a ticket (status open, queued at `created_at`) with events `opened` (seq 1, body = subject)
    /// and `message` (seq 2), in one transaction. Idempotent on (user, client_msg_id).
    async fn open_ticket(&self, new: &NewTicket) -> Result<Opened>;
    /// The ticket with this id.
    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>>;
    /// The user's tickets, most recently updated first, at most `limit`.
    async fn user_tickets(&self, user: UserId, limit: u32) -> Result<Vec<Ticket>>;
    /// Tickets in `status`, at most `limit`: open ones in queue order (oldest `queued_at` first),
    /// others most recently updated first.
    async fn tickets_with_status(&self, status: TicketStatus, limit: u32) -> Result<Vec<Ticket>>;
    /// Tickets currently assigned to the agent, oldest first.
    async fn agent_tickets(&self, agent: AgentId) -> Result<Vec<Ticket>>;
    /// How many tickets wait in the queue (status open).
    async fn queue_length(&self) -> Result<u64>;
    /// How many tickets each agent holds (status assigned); agents with none are absent.
    async fn assigned_counts(&self) -> Result<Vec<(AgentId, u32)>>;
    /// Tickets updated (a new event) at or after `since`, least recently updated first, at most
    /// `limit`. A cluster node compares their `last_seq` with what it delivered, to find events whose
    /// publication it missed.
    async fn changed_since(&self, since: Millis, limit: u32) -> Result<Vec<Ticket>>;
    /// Appends a batch of messages in one transaction (group commit), each with the next seq of its
    /// ticket. Results are in the order of `batch`. A resolved ticket written to by its user is
    /// reopened first (back in the queue, no agent). Idempotent on (ticket, author, client_msg_id),
    /// also within one batch.
    async fn append_messages(&self, batch: &[NewMessage]) -> Result<Vec<Appended>>;
    /// Applies a guarded state change and appends its event; `None` if the ticket does not exist or
    /// does not match the guard (someone else changed it first).
    async fn transition(&self, t: &Transition) -> Result<Option<(Ticket, TicketEvent)>>;
    /// A page of the ticket's stream, at most `limit` events, oldest first.
    async fn events(&self, ticket: TicketId, page: Page, limit: u32) -> Result<Vec<TicketEvent>>;
    /// Raises the participant's marks (never lowers them) and returns the stored marks.
    ///
    /// # Errors
    /// [`Error::Internal`](crate::error::Error::Internal) for [`Author::System`], which reads nothing.
    async fn mark(&self, ticket: TicketId, who: Author, delivered_seq: u64, read_seq: u64) -> Result<ReadMarks>;
    /// Every participant's marks on the ticket.
    async fn marks(&self, ticket: TicketId) -> Result<Vec<(Author, ReadMarks)>>;
    /// `ticket` as another node of the cluster just stored it (its `ticket.updated` heard through
    /// Redis). A store that plans message batches from the states it last stored or read takes a
    /// newer one in place of what it knew; others ignore it. Reads and writes nothing.
    fn stored_elsewhere(&self, _ticket: &Ticket) {}
}
