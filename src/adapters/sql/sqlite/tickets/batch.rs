//! A batch of messages in a fixed number of statements, whatever its size.
//!
//! sqlx runs each statement on the connection's own thread and hands the answer back: two thread
//! wake-ups per statement, which cost as much CPU as SQLite's own work on a message. So the batch's
//! rows go to SQLite as one JSON array per statement, which `json_each` unpacks on SQLite's side: one read of
//! the batch's tickets, one of the messages it may repeat, and one call that inserts every event
//! (the search index's trigger fires for each) and updates every ticket. Ids travel as hex and are
//! stored as the same 16-byte blobs as everywhere else (`unhex`).

use crate::adapters::sql::rows::{self, EventRow, TicketRow};
use crate::domain::tickets::stream::MessageKey;
use crate::error::{Error, Result};
use crate::model::ids::TicketId;
use crate::model::ticket::{Ticket, TicketEvent};
use serde::Serialize;
use sqlx::SqliteConnection;
use std::collections::HashMap;
use uuid::fmt::Simple;
use uuid::Uuid;

/// The author id of the `system` author in the unique index of client message ids (see the
/// migration that creates it): the nil UUID.
const NO_AUTHOR: Uuid = Uuid::nil();

/// The batch's tickets that exist, by id.
pub(super) async fn tickets(conn: &mut SqliteConnection, ids: &[TicketId]) -> Result<HashMap<TicketId, Ticket>> {
    let ids: Vec<Simple> = ids.iter().map(|id| id.0.simple()).collect();
    let rows = sqlx::query_as::<_, TicketRow>(
        "SELECT id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq
         FROM tickets WHERE id IN (SELECT unhex(value) FROM json_each(?1))",
    )
    .bind(json(&ids)?)
    .fetch_all(conn)
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let ticket = Ticket::try_from(row)?;
        found.insert(ticket.id, ticket);
    }
    Ok(found)
}

/// The messages already stored under any of `keys`. The author's id is compared the way the unique
/// index compares it, so that the index answers each key.
pub(super) async fn messages(
    conn: &mut SqliteConnection,
    keys: &[MessageKey],
) -> Result<HashMap<MessageKey, TicketEvent>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let keys: Vec<(Simple, &str, Simple, &str)> = keys
        .iter()
        .map(|(ticket, author, client_msg_id)| {
            let (kind, id) = rows::stored_author(*author);
            (ticket.0.simple(), kind, id.unwrap_or(NO_AUTHOR).simple(), client_msg_id.as_str())
        })
        .collect();
    // json_each first (CROSS JOIN keeps that order): one lookup in the unique index per key.
    let rows = sqlx::query_as::<_, EventRow>(
        "SELECT e.ticket_id, e.seq, e.kind, e.author_kind, e.author_id, e.body, e.client_msg_id, e.agent_id,
                e.attachments, e.created_at
         FROM json_each(?1) AS k CROSS JOIN ticket_events AS e
         WHERE e.ticket_id = unhex(k.value ->> 0) AND e.author_kind = k.value ->> 1
           AND coalesce(e.author_id, x'00000000000000000000000000000000') = unhex(k.value ->> 2)
           AND e.client_msg_id = k.value ->> 3",
    )
    .bind(json(&keys)?)
    .fetch_all(conn)
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let event = TicketEvent::try_from(row)?;
        let Some(client_msg_id) = event.client_msg_id.clone() else { continue };
        found.insert((event.ticket_id, event.author, client_msg_id), event);
    }
    Ok(found)
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

/// A ticket's new state as [`store`] sends it: `id, status, agent_id, queued_at, last_seq,
/// updated_at`.
type TicketColumns<'a> = (Simple, &'a str, Option<Simple>, Option<i64>, i64, i64);

/// Inserts `events` and writes the tickets' new states, in one call.
///
/// # Errors
/// [`Error::Internal`] when SQLite changed another number of rows than it was given: a bug.
pub(super) async fn store(conn: &mut SqliteConnection, events: &[TicketEvent], tickets: &[Ticket]) -> Result<()> {
    if events.is_empty() && tickets.is_empty() {
        return Ok(());
    }
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
    let ticket_rows: Vec<TicketColumns<'_>> = tickets
        .iter()
        .map(|t| {
            (
                t.id.0.simple(),
                t.status.as_str(),
                t.agent_id.map(|a| a.0.simple()),
                t.queued_at,
                rows::stored_seq(t.last_seq),
                t.updated_at,
            )
        })
        .collect();
    // Two statements in one call: sqlx binds `?1` and `?2` by number in each.
    let done = sqlx::query(
        "INSERT INTO ticket_events (ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, agent_id,
                                    attachments, created_at, search_text)
         SELECT unhex(value ->> 0), value ->> 1, value ->> 2, value ->> 3, unhex(value ->> 4), value ->> 5,
                value ->> 6, unhex(value ->> 7), value ->> 8, value ->> 9, value ->> 10
         FROM json_each(?1);
         UPDATE tickets SET status = t.value ->> 1, agent_id = unhex(t.value ->> 2), queued_at = t.value ->> 3,
                            last_seq = t.value ->> 4, updated_at = t.value ->> 5
         FROM json_each(?2) AS t WHERE tickets.id = unhex(t.value ->> 0)",
    )
    .bind(json(&event_rows)?)
    .bind(json(&ticket_rows)?)
    .execute(conn)
    .await?;
    let expected = (events.len() + tickets.len()) as u64;
    if done.rows_affected() != expected {
        return Err(Error::Internal(format!(
            "a message batch changed {} rows instead of {expected}",
            done.rows_affected()
        )));
    }
    Ok(())
}

/// `value` as the JSON text that `json_each` reads.
fn json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("cannot encode a message batch: {e}")))
}
