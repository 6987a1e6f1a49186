//! [`Reports`] on SQLite, from the read pool.

use crate::adapters::sql::rows::reports::{self as sql, COLUMNS};
use crate::adapters::sql::rows::EventRow;
use crate::adapters::sql::sqlite::SqliteStore;
use crate::error::Result;
use crate::model::ticket::TicketEvent;
use crate::ports::store::reports::{ReportScope, Reports};
use async_trait::async_trait;

#[async_trait]
impl Reports for SqliteStore {
    async fn report_events(&self, scope: ReportScope) -> Result<Vec<TicketEvent>> {
        let rows: Vec<EventRow> = match scope {
            ReportScope::Since(since) => {
                sqlx::query_as(&events(sql::SINCE)).bind(since).fetch_all(&self.readers).await?
            }
            ReportScope::Ticket(id) => sqlx::query_as(&events("SELECT ?1")).bind(id.0).fetch_all(&self.readers).await?,
        };
        Ok(sql::in_order(rows.into_iter().map(TicketEvent::try_from).collect::<Result<_>>()?))
    }
}

/// The first agent message after each opening `o` (the join that follows `FROM ticket_events o JOIN
/// candidates c ON c.ticket_id = o.ticket_id`), as row `e`. SQLite runs the subquery once per
/// opening and finds the row by its primary key.
const FIRST_RESPONSE: &str = "JOIN ticket_events e ON e.ticket_id = o.ticket_id \
     AND e.seq = (SELECT x.seq FROM ticket_events x \
         WHERE x.ticket_id = o.ticket_id AND x.seq > o.seq AND x.kind = 'message' AND x.author_kind = 'agent' \
         ORDER BY x.seq LIMIT 1)";

/// The events reports read, of the tickets `candidates` selects (one column, `ticket_id`): every
/// state change, and after each opening or reopening the first agent message (through
/// [`FIRST_RESPONSE`]), as `ticket_events` rows without text, in no order and possibly twice (a
/// message can be the first after two openings): [`sql::in_order`] sorts them out.
fn events(candidates: &str) -> String {
    format!(
        "WITH candidates (ticket_id) AS ({candidates}) \
         SELECT {COLUMNS} FROM ticket_events e JOIN candidates c ON c.ticket_id = e.ticket_id \
         WHERE e.kind <> 'message' \
         UNION ALL \
         SELECT {COLUMNS} FROM ticket_events o JOIN candidates c ON c.ticket_id = o.ticket_id {FIRST_RESPONSE} \
         WHERE o.kind IN ('opened', 'reopened')"
    )
}
