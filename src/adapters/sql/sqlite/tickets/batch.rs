//! A batch of messages in two calls, whatever its size.
//!
//! sqlx runs each statement on the connection's own thread and hands the answer back: two thread
//! wake-ups per call, and for its own `BEGIN` and `COMMIT` the connection's thread also waits until
//! the answer is received. Every message waits for the one writer, so each hand-off is paid by all
//! of them. So a batch is two calls: one that opens the transaction and reads the batch's tickets and
//! the messages it may repeat, and one that inserts every event (the search index's trigger fires for
//! each), updates every ticket (the columns of its indexes only where they change, see [`store`]) and
//! commits. The rows go to SQLite as one JSON array per statement,
//! which `json_each` unpacks on SQLite's side. Ids travel as hex and are stored as the same 16-byte
//! blobs as everywhere else (`unhex`).
//!
//! sqlx does not know about a transaction opened this way, so the caller holds the connection in a
//! guard that closes it, rolling the transaction back, if the batch stops before its commit.

use crate::adapters::sql::rows::{self, EventRow, TicketRow};
use crate::domain::tickets::stream::{self, MessageKey};
use crate::error::{Error, Result};
use crate::model::ids::{AgentId, TicketId};
use crate::model::ticket::{NewMessage, Ticket, TicketEvent, TicketStatus};
use crate::model::time::Millis;
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::{FromRow as _, Row as _, Sqlite, SqliteConnection};
use std::collections::HashMap;
use uuid::fmt::Simple;
use uuid::Uuid;

/// The author id of the `system` author in the unique index of client message ids (see the
/// migration that creates it): the nil UUID.
const NO_AUTHOR: Uuid = Uuid::nil();

/// The writer's connection while a batch's transaction, which sqlx does not track, is open. Dropped
/// before [`Self::committed`] or a successful [`Self::roll_back`] (a batch that failed, or whose
/// caller gave up waiting), the connection is closed instead of going back to the pool: closing it
/// rolls the transaction back, where the next caller would otherwise write inside it.
pub(super) struct Writing {
    conn: PoolConnection<Sqlite>,
    ended: bool,
}

impl Writing {
    pub(super) fn new(conn: PoolConnection<Sqlite>) -> Self {
        Self { conn, ended: false }
    }

    pub(super) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// The batch's last call committed it: the connection goes back to the pool.
    pub(super) fn committed(mut self) {
        self.ended = true;
    }

    /// Rolls the batch back; the connection goes back to the pool if that worked.
    pub(super) async fn roll_back(mut self) {
        self.ended = sqlx::query("ROLLBACK").execute(&mut *self.conn).await.is_ok();
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if !self.ended {
            self.conn.close_on_drop();
        }
    }
}

/// What a batch reads before it is planned: its tickets that exist, by id, and the messages already
/// stored under any of its keys.
pub(super) struct Stored {
    pub(super) tickets: HashMap<TicketId, Ticket>,
    pub(super) messages: HashMap<MessageKey, TicketEvent>,
}

/// What the partial indexes of `tickets` hold a ticket by: its status, agent and place in the queue.
type Standing = (TicketStatus, Option<AgentId>, Option<Millis>);

/// Each ticket's [`Standing`] before the batch, to tell which of them the batch moves.
pub(super) struct Before(HashMap<TicketId, Standing>);

impl Before {
    pub(super) fn of(tickets: &HashMap<TicketId, Ticket>) -> Self {
        Self(tickets.values().map(|t| (t.id, standing(t))).collect())
    }

    /// Whether the batch changed `ticket`'s standing (a message to a resolved ticket reopens it).
    fn moved(&self, ticket: &Ticket) -> bool {
        self.0.get(&ticket.id) != Some(&standing(ticket))
    }
}

fn standing(t: &Ticket) -> Standing {
    (t.status, t.agent_id, t.queued_at)
}

/// Opens the batch's transaction (`BEGIN IMMEDIATE`, as every write that allocates seqs: the write
/// lock is taken before anything is read) and reads what the plan needs, all in one call: the
/// batch's tickets, and the messages stored under its keys. The author's id is compared the way the
/// unique index compares it, so that the index answers each key.
pub(super) async fn begin_and_read(conn: &mut SqliteConnection, batch: &[NewMessage]) -> Result<Stored> {
    let ids: Vec<Simple> = stream::ticket_ids(batch).iter().map(|id| id.0.simple()).collect();
    let keys: Vec<(Simple, &str, Simple, &str)> = stream::first_of_each_key(batch)
        .into_iter()
        .map(|m| {
            let (kind, id) = rows::stored_author(m.author);
            (m.ticket_id.0.simple(), kind, id.unwrap_or(NO_AUTHOR).simple(), m.client_msg_id.as_str())
        })
        .collect();
    // The keys' json_each comes first (CROSS JOIN keeps that order): one lookup in the unique index
    // per key. `part` tells the two selects' rows apart.
    let rows = sqlx::query(concat!(
        "BEGIN IMMEDIATE;
         SELECT 'ticket' AS part, ",
        ticket_columns!(),
        " FROM tickets WHERE id IN (SELECT unhex(value) FROM json_each(?1));
         SELECT 'message' AS part, e.ticket_id, e.seq, e.kind, e.author_kind, e.author_id, e.body,
                e.client_msg_id, e.agent_id, e.attachments, e.created_at
         FROM json_each(?2) AS k CROSS JOIN ticket_events AS e
         WHERE e.ticket_id = unhex(k.value ->> 0) AND e.author_kind = k.value ->> 1
           AND coalesce(e.author_id, x'00000000000000000000000000000000') = unhex(k.value ->> 2)
           AND e.client_msg_id = k.value ->> 3"
    ))
    .bind(json(&ids)?)
    .bind(json(&keys)?)
    .fetch_all(conn)
    .await?;
    let mut stored = Stored { tickets: HashMap::with_capacity(ids.len()), messages: HashMap::new() };
    for row in rows {
        if row.try_get::<&str, _>("part")? == "ticket" {
            let ticket = Ticket::try_from(TicketRow::from_row(&row)?)?;
            stored.tickets.insert(ticket.id, ticket);
        } else {
            let event = TicketEvent::try_from(EventRow::from_row(&row)?)?;
            let Some(client_msg_id) = event.client_msg_id.clone() else { continue };
            stored.messages.insert((event.ticket_id, event.author, client_msg_id), event);
        }
    }
    Ok(stored)
}

/// An event as [`store`] sends it: the columns of `ticket_events` in the statement's order.
type EventColumns<'a> = (
    Simple,
    i64,
    &'a str,
    &'a str,
    Option<Simple>,
    Option<&'a str>,
    Option<&'a str>,
    Option<Simple>,
    Option<String>,
    i64,
    Option<String>,
);

/// A ticket's new place in its stream as [`store`] sends it: `id, last_seq, updated_at`.
type AdvancedColumns = (Simple, i64, i64);

/// A moved ticket's new standing as [`store`] sends it: `id, status, agent_id, queued_at`.
type MovedColumns<'a> = (Simple, &'a str, Option<Simple>, Option<i64>);

/// Inserts `events` and writes the tickets' new states, in one call, which also commits the
/// transaction when `commit` is set. Every ticket's `last_seq` and `updated_at` are written, and
/// only for the tickets whose standing the batch changed (`before`), their status, agent and place
/// in the queue: SQLite rewrites the entries of every index that names a column an UPDATE sets, and
/// those columns are in the partial indexes of `tickets`.
///
/// # Errors
/// [`Error::Internal`] when SQLite changed another number of rows than it was given: a bug.
pub(super) async fn store(
    conn: &mut SqliteConnection,
    events: &[TicketEvent],
    tickets: &[Ticket],
    before: &Before,
    commit: bool,
) -> Result<()> {
    let event_rows: Vec<EventColumns<'_>> = events
        .iter()
        .map(|e| {
            let (author_kind, author_id) = rows::stored_author(e.author);
            (
                e.ticket_id.0.simple(),
                rows::stored_seq(e.seq),
                e.kind.as_str(),
                author_kind,
                author_id.map(|a| a.simple()),
                e.body.as_deref(),
                e.client_msg_id.as_deref(),
                e.agent_id.map(|a| a.0.simple()),
                rows::stored_attachments(&e.attachments),
                e.created_at,
                rows::search_text(e),
            )
        })
        .collect();
    let advanced: Vec<AdvancedColumns> =
        tickets.iter().map(|t| (t.id.0.simple(), rows::stored_seq(t.last_seq), t.updated_at)).collect();
    let moved: Vec<MovedColumns<'_>> = tickets
        .iter()
        .filter(|t| before.moved(t))
        .map(|t| (t.id.0.simple(), t.status.as_str(), t.agent_id.map(|a| a.0.simple()), t.queued_at))
        .collect();
    // Three statements in one call (four with the commit): sqlx binds `?1` to `?3` by number in each.
    let statements = if commit { STORE_AND_COMMIT } else { STORE };
    let done = sqlx::query(statements)
        .bind(json(&event_rows)?)
        .bind(json(&advanced)?)
        .bind(json(&moved)?)
        .execute(conn)
        .await?;
    // sqlx adds up each statement's count, and SQLite's count after a COMMIT is still the last
    // update's.
    let repeated = if commit { moved.len() } else { 0 };
    let expected = (events.len() + advanced.len() + moved.len() + repeated) as u64;
    if done.rows_affected() != expected {
        return Err(Error::Internal(format!(
            "a message batch changed {} rows instead of {expected}",
            done.rows_affected()
        )));
    }
    Ok(())
}

/// The batch's events and tickets: `?1` the events, `?2` every ticket's place in its stream, `?3`
/// the moved tickets' standing, as JSON arrays.
macro_rules! store_statements {
    () => {
        "INSERT INTO ticket_events (ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, agent_id,
                                    attachments, created_at, search_text)
         SELECT unhex(value ->> 0), value ->> 1, value ->> 2, value ->> 3, unhex(value ->> 4), value ->> 5,
                value ->> 6, unhex(value ->> 7), value ->> 8, value ->> 9, value ->> 10
         FROM json_each(?1);
         UPDATE tickets SET last_seq = t.value ->> 1, updated_at = t.value ->> 2
         FROM json_each(?2) AS t WHERE tickets.id = unhex(t.value ->> 0);
         UPDATE tickets SET status = t.value ->> 1, agent_id = unhex(t.value ->> 2), queued_at = t.value ->> 3
         FROM json_each(?3) AS t WHERE tickets.id = unhex(t.value ->> 0);"
    };
}

/// [`store`]'s statements.
const STORE: &str = store_statements!();

/// [`store`]'s statements, then the commit.
const STORE_AND_COMMIT: &str = concat!(store_statements!(), " COMMIT;");

/// `value` as the JSON text that `json_each` reads.
fn json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("cannot encode a message batch: {e}")))
}
