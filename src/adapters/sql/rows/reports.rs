//! The statement reports read events with (`?N` placeholders; Postgres spells them `$N`).

/// The candidates of [`ReportScope::Since`](crate::ports::store::reports::ReportScope::Since)
/// `?1`: tickets with a state change at or after it (through the partial index of such events),
/// and the tickets assigned now.
pub(in crate::adapters::sql) const SINCE: &str = "SELECT ticket_id FROM ticket_events \
     WHERE kind <> 'message' AND created_at >= ?1 \
     UNION SELECT id FROM tickets WHERE status = 'assigned'";

/// The events reports read, of the tickets `candidates` selects (one column, `ticket_id`): every
/// state change, and after each opening or reopening the first agent message (found through the
/// primary key, stopping at the first), as `ticket_events` rows without text.
pub(in crate::adapters::sql) fn events(candidates: &str) -> String {
    const COLUMNS: &str = "e.ticket_id, e.seq, e.kind, e.author_kind, e.author_id, \
         CAST(NULL AS TEXT) AS body, CAST(NULL AS TEXT) AS client_msg_id, e.agent_id, \
         CAST(NULL AS TEXT) AS attachments, e.created_at";
    format!(
        "WITH candidates (ticket_id) AS ({candidates}) \
         SELECT {COLUMNS} FROM ticket_events e JOIN candidates c ON c.ticket_id = e.ticket_id \
         WHERE e.kind <> 'message' \
         UNION \
         SELECT {COLUMNS} FROM ticket_events o JOIN candidates c ON c.ticket_id = o.ticket_id \
         JOIN ticket_events e ON e.ticket_id = o.ticket_id AND e.seq = ( \
             SELECT x.seq FROM ticket_events x \
             WHERE x.ticket_id = o.ticket_id AND x.seq > o.seq AND x.kind = 'message' AND x.author_kind = 'agent' \
             ORDER BY x.seq LIMIT 1) \
         WHERE o.kind IN ('opened', 'reopened') \
         ORDER BY 1, 2"
    )
}
