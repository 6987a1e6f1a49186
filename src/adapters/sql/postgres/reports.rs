//! [`Reports`] on Postgres.
//!
//! `ticket_events` is partitioned by month, and a report reads a few events of each of its tickets
//! (their state changes, and the first answer after each opening). Joined to its tickets as one set
//! without a bound in time, that read hashes every month's state changes, or probes every month's
//! index for every ticket: work that grows with the history kept rather than with the report. Every
//! event of a ticket is stamped from [`CLOCK_SKEW_MS`] before its opening on (the bound the
//! conversation reads use), so:
//! - one ticket's events are looked up through its key from that bound, bound as a value, so that
//!   the planner leaves the earlier months out of the plan;
//! - a report since a date reads the tickets opened within [`REACH_MS`] before it (nearly all of
//!   them) as one set, joined to the state changes of the months from then on, and the few opened
//!   earlier (held for long, or reopened long after) one by one, each from its own bound. One by one
//!   costs a lookup per ticket and month after its opening, cheaper than the set's join for a few
//!   tickets and far dearer for thousands.

use crate::adapters::sql::postgres::tickets::{events_since, CLOCK_SKEW_MS};
use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::reports::{self as sql, COLUMNS};
use crate::adapters::sql::rows::EventRow;
use crate::adapters::sql::statements::postgres;
use crate::error::Result;
use crate::model::ticket::TicketEvent;
use crate::model::time::Millis;
use crate::ports::store::reports::{ReportScope, Reports};
use async_trait::async_trait;
use std::sync::LazyLock;

/// How long before a report's start a ticket may have been opened and still be read with the set
/// of its tickets (see the module's docs): a month, longer than nearly every ticket stays open.
const REACH_MS: Millis = 31 * 24 * 3600 * 1000;

/// One ticket's events: `$1` the ticket, `$2` the earliest time one can be stamped with.
static TICKET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH bounded (ticket_id, since) AS NOT MATERIALIZED (SELECT $1::uuid, $2::bigint) {}",
        one_by_one("bounded")
    )
});

/// The events of the tickets a report since `$1` covers ([`sql::SINCE`]), `$2` being
/// [`CLOCK_SKEW_MS`] and `$3` [`REACH_MS`].
static SINCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH covered (ticket_id, opened) AS MATERIALIZED (
             SELECT t.id, t.created_at FROM tickets t WHERE t.id IN ({candidates})
         ), recent (ticket_id) AS MATERIALIZED (
             SELECT ticket_id FROM covered WHERE opened >= $1 - $3
         ), early (ticket_id, since) AS MATERIALIZED (
             SELECT ticket_id, opened - $2 FROM covered WHERE opened < $1 - $3
         ) {} UNION ALL {}",
        together("recent", "$1 - $3 - $2"),
        one_by_one("early"),
        candidates = postgres(sql::SINCE),
    )
});

#[async_trait]
impl Reports for PostgresStore {
    async fn report_events(&self, scope: ReportScope) -> Result<Vec<TicketEvent>> {
        let known = match scope {
            ReportScope::Ticket(id) => self.known.opened(id),
            ReportScope::Since(_) => None,
        };
        self.call(async |c| {
            let rows: Vec<EventRow> = match scope {
                ReportScope::Since(since) => {
                    sqlx::query_as(&SINCE).bind(since).bind(CLOCK_SKEW_MS).bind(REACH_MS).fetch_all(c).await?
                }
                ReportScope::Ticket(id) => {
                    // No ticket, no events: they go with it.
                    let Some(since) = events_since(c, id, known).await? else { return Ok(Vec::new()) };
                    sqlx::query_as(&TICKET).bind(id.0).bind(since).fetch_all(c).await?
                }
            };
            Ok(sql::in_order(rows.into_iter().map(TicketEvent::try_from).collect::<Result<_>>()?))
        })
        .await
    }
}

/// The events reports read (see [`Reports::report_events`]), as `ticket_events` rows without text
/// in no order and possibly twice, of the tickets in `tickets` (a `ticket_id` column), all of whose
/// events are stamped at or after `bound`: the state changes of the months from `bound` on, joined
/// to the tickets, and after each opening the first answer, looked up through its key.
fn together(tickets: &str, bound: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM ticket_events e JOIN {tickets} c ON c.ticket_id = e.ticket_id \
         WHERE e.kind <> 'message' AND e.created_at >= {bound} \
         UNION ALL \
         SELECT {COLUMNS} FROM ticket_events o JOIN {tickets} c ON c.ticket_id = o.ticket_id \
         CROSS JOIN LATERAL (SELECT * FROM ticket_events x \
             WHERE x.ticket_id = o.ticket_id AND x.created_at >= {bound} AND x.seq > o.seq \
               AND x.kind = 'message' AND x.author_kind = 'agent' \
             ORDER BY x.seq LIMIT 1) e \
         WHERE o.kind IN ('opened', 'reopened') AND o.created_at >= {bound}"
    )
}

/// The same for the tickets in `tickets` (`ticket_id`, and `since`: the earliest time one of its
/// events can be stamped with), each ticket's events looked up through its key from its own bound.
/// `OFFSET 0` keeps the planner from turning the lookups back into one join of the tickets with
/// every month's events.
fn one_by_one(tickets: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM {tickets} c \
         CROSS JOIN LATERAL (SELECT * FROM ticket_events e \
             WHERE e.ticket_id = c.ticket_id AND e.created_at >= c.since AND e.kind <> 'message' OFFSET 0) e \
         UNION ALL \
         SELECT {COLUMNS} FROM {tickets} c \
         CROSS JOIN LATERAL (SELECT o.seq FROM ticket_events o \
             WHERE o.ticket_id = c.ticket_id AND o.created_at >= c.since AND o.kind IN ('opened', 'reopened') \
             OFFSET 0) o \
         CROSS JOIN LATERAL (SELECT * FROM ticket_events x \
             WHERE x.ticket_id = c.ticket_id AND x.created_at >= c.since AND x.seq > o.seq \
               AND x.kind = 'message' AND x.author_kind = 'agent' \
             ORDER BY x.seq LIMIT 1) e"
    )
}
