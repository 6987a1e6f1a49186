//! The search statements of both backends: the matching rows with their tickets, and the filters,
//! which both append alike.

use crate::adapters::sql::rows::TicketRow;
use crate::error::{Error, Result};
use crate::model::search::{Matched, SearchHit, SearchQuery};
use crate::model::ticket::Ticket;
use crate::model::time::Millis;
use sqlx::QueryBuilder;
use uuid::Uuid;

/// The columns of a hit: its ticket ([`TicketRow`]) and the matching event.
pub(in crate::adapters::sql) const HIT_COLUMNS: &str = "t.id, t.user_id, t.subject, t.status, t.agent_id, \
     t.created_at, t.updated_at, t.queued_at, t.last_seq, e.seq AS hit_seq, e.body AS hit_body, e.created_at AS hit_at";

/// The columns of a customer's hit: the ticket, and the name in the place of the text.
const CUSTOMER_COLUMNS: &str = "t.id, t.user_id, t.subject, t.status, t.agent_id, \
     t.created_at, t.updated_at, t.queued_at, t.last_seq, CAST(1 AS BIGINT) AS hit_seq, u.name AS hit_body, t.updated_at AS hit_at";

/// Customers' names set before names were searchable, up to `?1`: `(id, name)`, found through
/// `users_unsearched_idx`. Postgres locks them ([`SKIP_LOCKED`]); SQLite's one writer needs not.
pub(in crate::adapters::sql) const UNSEARCHED_NAMES: &str =
    "SELECT id, name FROM users WHERE search_name IS NULL AND name IS NOT NULL LIMIT ?1";

/// Sets user `?1`'s folded name `?2`.
pub(in crate::adapters::sql) const SET_SEARCH_NAME: &str = "UPDATE users SET search_name = ?2 WHERE id = ?1";

/// Where a backend's customers' search reads names, and how it matches them: each word of the
/// query at the start of a word of the folded name, as `LIKE '% word%'` over the name with a space
/// before it.
pub(in crate::adapters::sql) struct Names {
    /// The `FROM` items, the users as `u` among them.
    pub from: &'static str,
    /// The name as matched: a space, then the folded name.
    pub name: &'static str,
    /// Whether the patterns escape `LIKE`'s own characters (with `\`). Words are letters and
    /// digits, which never are; a backend whose index takes no `ESCAPE` clause (FTS5) goes without.
    pub escape: bool,
}

/// The `LIKE` pattern finding `word` at the start of a word of a name prefixed with a space,
/// `\` escaping the pattern's own characters when `escape`.
fn name_pattern(word: &str, escape: bool) -> String {
    if !escape {
        return format!("% {word}%");
    }
    let escaped = word.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("% {escaped}%")
}

/// The customers' search, on either backend: tickets of users whose name (read as `names` says)
/// has every word.
pub(in crate::adapters::sql) fn customers<'a, DB>(query: &'a SearchQuery, names: &Names) -> QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut q = QueryBuilder::new(format!(
        "SELECT {CUSTOMER_COLUMNS} FROM {} JOIN tickets t ON t.user_id = u.id WHERE u.search_name IS NOT NULL",
        names.from
    ));
    for word in &query.words {
        q.push(format!(" AND {} LIKE ", names.name)).push_bind(name_pattern(word, names.escape));
        if names.escape {
            q.push(" ESCAPE '\\'");
        }
    }
    push_filters(&mut q, query, "t.updated_at");
    q.push(" ORDER BY t.updated_at DESC, t.id LIMIT ").push_bind(i64::from(query.limit));
    q
}

/// Texts stored before the index existed, up to `?1`: `(ticket_id, seq, created_at, body)`, found
/// through `ticket_events_unsearched_idx`, locked on Postgres as [`UNSEARCHED_NAMES`].
pub(in crate::adapters::sql) const UNSEARCHED: &str = "SELECT ticket_id, seq, created_at, body FROM ticket_events
     WHERE search_text IS NULL AND body IS NOT NULL LIMIT ?1";

/// What Postgres appends to [`UNSEARCHED`] and [`UNSEARCHED_NAMES`]: the rows are locked, and
/// those another node's round holds are skipped, so that nodes starting together index different
/// rows instead of each the same ones.
pub(in crate::adapters::sql) const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";

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

/// Hits read with [`CUSTOMER_COLUMNS`].
pub(in crate::adapters::sql) fn customer_hits(rows: Vec<HitRow>) -> Result<Vec<SearchHit>> {
    rows.into_iter()
        .map(|r| SearchHit::try_from(r).map(|h| SearchHit { matched: Matched::CustomerName, ..h }))
        .collect()
}

impl TryFrom<HitRow> for SearchHit {
    type Error = Error;

    fn try_from(r: HitRow) -> Result<Self> {
        Ok(Self {
            ticket: Ticket::try_from(r.ticket)?,
            seq: u64::try_from(r.hit_seq).unwrap_or(0),
            body: r.hit_body.unwrap_or_default(),
            at: r.hit_at,
            matched: Matched::Text,
        })
    }
}

/// Appends the condition of `query`'s ticket, if any, on the matching event `e`: that ticket's
/// subject only (see [`SearchQuery::ticket`]).
pub(in crate::adapters::sql) fn push_subject<'a, DB>(q: &mut QueryBuilder<'a, DB>, query: &SearchQuery)
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    if let Some(ticket) = query.ticket {
        q.push(" AND e.seq = 1 AND e.ticket_id = ").push_bind(ticket.0);
    }
}

/// Appends `query`'s filters (each ` AND ...`), on either backend; `from` and `to` bound the
/// column `time`.
pub(in crate::adapters::sql) fn push_filters<'a, DB>(q: &mut QueryBuilder<'a, DB>, query: &SearchQuery, time: &str)
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
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
        q.push(format!(" AND {time} >= ")).push_bind(from);
    }
    if let Some(to) = f.to {
        q.push(format!(" AND {time} < ")).push_bind(to);
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
