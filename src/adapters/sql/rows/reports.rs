//! What the stores' report statements share (`?N` placeholders; Postgres spells them `$N`).

use crate::model::ticket::TicketEvent;

/// The candidates of [`ReportScope::Since`](crate::ports::store::reports::ReportScope::Since)
/// `?1`: tickets with a state change at or after it (through the partial index of such events),
/// and the tickets assigned now.
pub(in crate::adapters::sql) const SINCE: &str = "SELECT ticket_id FROM ticket_events \
     WHERE kind <> 'message' AND created_at >= ?1 \
     UNION SELECT id FROM tickets WHERE status = 'assigned'";

/// The columns of an event as reports read it: a `ticket_events` row without text.
pub(in crate::adapters::sql) const COLUMNS: &str = "e.ticket_id, e.seq, e.kind, e.author_kind, e.author_id, \
     CAST(NULL AS TEXT) AS body, CAST(NULL AS TEXT) AS client_msg_id, e.agent_id, \
     CAST(NULL AS TEXT) AS attachments, e.created_at";

/// The events by ticket and seq, each once. Sorting here rather than in SQL keeps the database
/// from spilling a sort of wide rows to disk.
pub(in crate::adapters::sql) fn in_order(mut events: Vec<TicketEvent>) -> Vec<TicketEvent> {
    events.sort_unstable_by_key(|e| (e.ticket_id, e.seq));
    events.dedup_by(|a, b| (a.ticket_id, a.seq) == (b.ticket_id, b.seq));
    events
}
