//! Agents' private notes on tickets: what one agent leaves for the others about a customer. Only
//! agents see them; the customer's export includes them (they are information about the customer).

use crate::model::ids::{AgentId, NoteId, TicketId};
use crate::model::time::Millis;
use serde::{Deserialize, Serialize};

/// Agents one note may name.
pub const MAX_MENTIONS: usize = 10;

/// A stored note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Its id (time-ordered: notes are listed by it).
    pub id: NoteId,
    /// The ticket it is about.
    pub ticket_id: TicketId,
    /// Who wrote it.
    pub agent_id: AgentId,
    /// The text.
    pub body: String,
    /// The agents it names, who are told of it.
    pub mentions: Vec<AgentId>,
    /// The writer's own id for it, for idempotent resends.
    pub client_msg_id: String,
    /// When it was stored.
    pub created_at: Millis,
}

/// The outcome of storing a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoteAdded {
    /// Stored now.
    Stored(Note),
    /// The same (ticket, agent, client_msg_id) was stored before: that note, unchanged.
    Duplicate(Note),
    /// There is no such ticket.
    NoTicket,
}
