//! The statement reports read events with (`?N` placeholders; Postgres spells them `$N`).

use crate::model::ticket::TicketEvent;

/// The candidates of [`ReportScope::Since`](crate::ports::store::reports::ReportScope::Since)
/// `?1`: tickets with a state change at or after it (through the partial index of such events),
/// and the tickets assigned now.
pub(in crate::adapters::sql) const SINCE: &str = "SELECT ticket_id FROM ticket_events \
     WHERE kind <> 'message' AND created_at >= ?1 \
     UNION SELECT id FROM tickets WHERE status = 'assigned'";

/// The columns of an event as reports read it: a `ticket_events` row without text.
const COLUMNS: &str = "e.ticket_id, e.seq, e.kind, e.author_kind, e.author_id, \
     CAST(NULL AS TEXT) AS body, CAST(NULL AS TEXT) AS client_msg_id, e.agent_id, \
     CAST(NULL AS TEXT) AS attachments, e.created_at";

/// The first agent message after each opening `o` (the join that follows `FROM ticket_events o JOIN
/// candidates c ON c.ticket_id = o.ticket_id`), as row `e`. SQLite runs the subquery once per
/// opening and finds the row by its primary key.
pub(in crate::adapters::sql) const FIRST_RESPONSE_SQLITE: &str = "JOIN ticket_events e ON e.ticket_id = o.ticket_id \
     AND e.seq = (SELECT x.seq FROM ticket_events x \
         WHERE x.ticket_id = o.ticket_id AND x.seq > o.seq AND x.kind = 'message' AND x.author_kind = 'agent' \
         ORDER BY x.seq LIMIT 1)";

/// The same for Postgres, as a lateral subquery: written as SQLite's join, Postgres's planner hashes
/// the whole events table to join it.
pub(in crate::adapters::sql) const FIRST_RESPONSE_POSTGRES: &str = "CROSS JOIN LATERAL (SELECT * FROM ticket_events x \
     WHERE x.ticket_id = o.ticket_id AND x.seq > o.seq AND x.kind = 'message' AND x.author_kind = 'agent' \
     ORDER BY x.seq LIMIT 1) e";

/// The events reports read, of the tickets `candidates` selects (one column, `ticket_id`): every
/// state change, and after each opening or reopening the first agent message (through
/// `first_response`), as `ticket_events` rows without text, in no order and possibly twice (a
/// message can be the first after two openings): [`in_order`] sorts them out.
pub(in crate::adapters::sql) fn events(candidates: &str, first_response: &str) -> String {
    format!(
        "WITH candidates (ticket_id) AS ({candidates}) \
         SELECT {COLUMNS} FROM ticket_events e JOIN candidates c ON c.ticket_id = e.ticket_id \
         WHERE e.kind <> 'message' \
         UNION ALL \
         SELECT {COLUMNS} FROM ticket_events o JOIN candidates c ON c.ticket_id = o.ticket_id {first_response} \
         WHERE o.kind IN ('opened', 'reopened')"
    )
}

/// The events by ticket and seq, each once. Sorting here rather than in SQL keeps the database
/// from spilling a sort of wide rows to disk.
pub(in crate::adapters::sql) fn in_order(mut events: Vec<TicketEvent>) -> Vec<TicketEvent> {
    events.sort_unstable_by_key(|e| (e.ticket_id, e.seq));
    events.dedup_by(|a, b| (a.ticket_id, a.seq) == (b.ticket_id, b.seq));
    events
}
