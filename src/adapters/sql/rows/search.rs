//! The search statements of both backends: the matching rows with their tickets, and the filters,
//! which both append alike.

use crate::adapters::sql::rows::TicketRow;
use crate::error::{Error, Result};
use crate::model::search::{SearchHit, SearchQuery};
use crate::model::ticket::Ticket;
use crate::model::time::Millis;
use sqlx::QueryBuilder;
use uuid::Uuid;

/// The columns of a hit: its ticket ([`TicketRow`]) and the matching event.
pub(in crate::adapters::sql) const HIT_COLUMNS: &str = "t.id, t.user_id, t.subject, t.status, t.agent_id, \
     t.created_at, t.updated_at, t.queued_at, t.last_seq, e.seq AS hit_seq, e.body AS hit_body, e.created_at AS hit_at";

/// Texts stored before the index existed, up to `?1`: `(ticket_id, seq, body)`.
pub(in crate::adapters::sql) const UNSEARCHED: &str =
    "SELECT ticket_id, seq, body FROM ticket_events WHERE search_text IS NULL AND body IS NOT NULL LIMIT ?1";

/// Sets event (`?1` ticket, `?2` seq)'s folded text `?3`.
pub(in crate::adapters::sql) const SET_SEARCH_TEXT: &str =
    "UPDATE ticket_events SET search_text = ?3 WHERE ticket_id = ?1 AND seq = ?2";

/// A matching event with its ticket.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct HitRow {
    #[sqlx(flatten)]
    ticket: TicketRow,
    hit_seq: i64,
    hit_body: Option<String>,
    hit_at: Millis,
}

impl TryFrom<HitRow> for SearchHit {
    type Error = Error;

    fn try_from(r: HitRow) -> Result<Self> {
        Ok(Self {
            ticket: Ticket::try_from(r.ticket)?,
            seq: u64::try_from(r.hit_seq).unwrap_or(0),
            body: r.hit_body.unwrap_or_default(),
            at: r.hit_at,
        })
    }
}

/// Appends `query`'s filters (each ` AND ...`), on either backend.
pub(in crate::adapters::sql) fn push_filters<'a, DB>(q: &mut QueryBuilder<'a, DB>, query: &SearchQuery)
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(ticket) = query.ticket {
        q.push(" AND t.id = ").push_bind(ticket.0);
    }
    let f = &query.filters;
    if let Some(status) = f.status {
        q.push(" AND t.status = ").push_bind(status.as_str());
    }
    if let Some(agent) = f.agent {
        q.push(" AND t.agent_id = ").push_bind(agent.0);
    }
    if let Some(label) = f.label {
        q.push(" AND EXISTS (SELECT 1 FROM ticket_labels tl WHERE tl.ticket_id = t.id AND tl.label_id = ")
            .push_bind(label.0)
            .push(")");
    }
    if let Some(from) = f.from {
        q.push(" AND e.created_at >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        q.push(" AND e.created_at < ").push_bind(to);
    }
}

/// Appends the page: ` LIMIT ... OFFSET ...`.
pub(in crate::adapters::sql) fn push_page<'a, DB>(q: &mut QueryBuilder<'a, DB>, query: &SearchQuery)
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push(" LIMIT ").push_bind(i64::from(query.limit)).push(" OFFSET ").push_bind(i64::from(query.offset));
}
