//! Rows of `tickets`, `ticket_events` and `ticket_marks`, and how authors and seqs are stored.

use crate::adapters::sql::rows::internal;
use crate::error::{Error, Result};
use crate::model::attachment::MessageAttachment;
use crate::model::ids::{AgentId, TicketId, UserId};
use crate::model::ticket::{Author, EventKind, ReadMarks, Ticket, TicketEvent, TicketStatus};
use crate::model::time::Millis;
use uuid::Uuid;

/// `tickets`: `id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq`.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct TicketRow {
    id: Uuid,
    user_id: Uuid,
    subject: String,
    status: String,
    agent_id: Option<Uuid>,
    created_at: Millis,
    updated_at: Millis,
    queued_at: Option<Millis>,
    last_seq: i64,
}

impl TicketRow {
    /// A row of the columns above, in their order, on the SQLite connection of message batches.
    pub(in crate::adapters::sql) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            user_id: row.get(1)?,
            subject: row.get(2)?,
            status: row.get(3)?,
            agent_id: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
            queued_at: row.get(7)?,
            last_seq: row.get(8)?,
        })
    }
}

impl TryFrom<TicketRow> for Ticket {
    type Error = Error;

    fn try_from(row: TicketRow) -> Result<Self> {
        Ok(Self {
            id: TicketId(row.id),
            user_id: UserId(row.user_id),
            subject: row.subject,
            status: TicketStatus::parse(&row.status).ok_or_else(|| internal("tickets.status", &row.status))?,
            agent_id: row.agent_id.map(AgentId),
            created_at: row.created_at,
            updated_at: row.updated_at,
            queued_at: row.queued_at,
            last_seq: seq(row.last_seq, "tickets.last_seq")?,
        })
    }
}

/// `ticket_events`: `ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, agent_id,
/// attachments, created_at`.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct EventRow {
    ticket_id: Uuid,
    seq: i64,
    kind: String,
    author_kind: String,
    author_id: Option<Uuid>,
    body: Option<String>,
    client_msg_id: Option<String>,
    agent_id: Option<Uuid>,
    attachments: Option<String>,
    created_at: Millis,
}

impl EventRow {
    /// A row of the columns above, in their order, on the SQLite connection of message batches.
    pub(in crate::adapters::sql) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            ticket_id: row.get(0)?,
            seq: row.get(1)?,
            kind: row.get(2)?,
            author_kind: row.get(3)?,
            author_id: row.get(4)?,
            body: row.get(5)?,
            client_msg_id: row.get(6)?,
            agent_id: row.get(7)?,
            attachments: row.get(8)?,
            created_at: row.get(9)?,
        })
    }
}

impl TryFrom<EventRow> for TicketEvent {
    type Error = Error;

    fn try_from(row: EventRow) -> Result<Self> {
        Ok(Self {
            ticket_id: TicketId(row.ticket_id),
            seq: seq(row.seq, "ticket_events.seq")?,
            kind: EventKind::parse(&row.kind).ok_or_else(|| internal("ticket_events.kind", &row.kind))?,
            author: author(&row.author_kind, row.author_id, "ticket_events.author_kind")?,
            body: row.body,
            client_msg_id: row.client_msg_id,
            agent_id: row.agent_id.map(AgentId),
            attachments: match row.attachments {
                // The column holds file names: the error names the column, never its content.
                Some(json) => serde_json::from_str(&json)
                    .map_err(|_| Error::Internal("ticket_events.attachments is not a list of attachments".into()))?,
                None => Vec::new(),
            },
            created_at: row.created_at,
        })
    }
}

/// A row of the read before a message batch is planned: one of the batch's tickets (`status` is set,
/// `seq` is its `last_seq`) or a message stored before under one of the batch's keys (`kind` is
/// set); the other side's columns are NULL. Both come from one statement, so from one snapshot.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct BatchReadRow {
    ticket_id: Uuid,
    seq: i64,
    agent_id: Option<Uuid>,
    created_at: Millis,
    user_id: Option<Uuid>,
    subject: Option<String>,
    status: Option<String>,
    updated_at: Option<Millis>,
    queued_at: Option<Millis>,
    kind: Option<String>,
    author_kind: Option<String>,
    author_id: Option<Uuid>,
    body: Option<String>,
    client_msg_id: Option<String>,
    attachments: Option<String>,
}

/// What a [`BatchReadRow`] holds.
pub(in crate::adapters::sql) enum BatchRead {
    /// A ticket of the batch, as stored.
    Ticket(Ticket),
    /// A message stored before under one of the batch's keys.
    Stored(TicketEvent),
}

impl TryFrom<BatchReadRow> for BatchRead {
    type Error = Error;

    fn try_from(row: BatchReadRow) -> Result<Self> {
        let missing = |column: &str| Error::Internal(format!("batch read: a ticket row without {column}"));
        if let Some(status) = row.status {
            return Ok(Self::Ticket(Ticket::try_from(TicketRow {
                id: row.ticket_id,
                user_id: row.user_id.ok_or_else(|| missing("user_id"))?,
                subject: row.subject.ok_or_else(|| missing("subject"))?,
                status,
                agent_id: row.agent_id,
                created_at: row.created_at,
                updated_at: row.updated_at.ok_or_else(|| missing("updated_at"))?,
                queued_at: row.queued_at,
                last_seq: row.seq,
            })?));
        }
        let missing = |column: &str| Error::Internal(format!("batch read: an event row without {column}"));
        Ok(Self::Stored(TicketEvent::try_from(EventRow {
            ticket_id: row.ticket_id,
            seq: row.seq,
            kind: row.kind.ok_or_else(|| missing("kind"))?,
            author_kind: row.author_kind.ok_or_else(|| missing("author_kind"))?,
            author_id: row.author_id,
            body: row.body,
            client_msg_id: row.client_msg_id,
            agent_id: row.agent_id,
            attachments: row.attachments,
            created_at: row.created_at,
        })?))
    }
}

/// What the search index holds of an event: its text folded (messages, and the subject of
/// `opened`); `NULL` for events without text.
pub(in crate::adapters::sql) fn search_text(event: &TicketEvent) -> Option<String> {
    event.body.as_deref().map(crate::model::text::fold)
}

/// A message's attachments as the `attachments` column stores them: a JSON array, `NULL` for none.
pub(in crate::adapters::sql) fn stored_attachments(attachments: &[MessageAttachment]) -> Option<String> {
    // Serialising plain data with string keys cannot fail.
    (!attachments.is_empty()).then(|| serde_json::to_string(attachments).unwrap_or_default())
}

/// `ticket_marks`: `participant_kind, participant_id, delivered_seq, read_seq`.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct MarkRow {
    participant_kind: String,
    participant_id: Uuid,
    delivered_seq: i64,
    read_seq: i64,
}

impl TryFrom<MarkRow> for (Author, ReadMarks) {
    type Error = Error;

    fn try_from(row: MarkRow) -> Result<Self> {
        let who = author(&row.participant_kind, Some(row.participant_id), "ticket_marks.participant_kind")?;
        Ok((who, marks(row.delivered_seq, row.read_seq)?))
    }
}

/// The stored marks as the model's.
///
/// # Errors
/// [`Error::Internal`] for a negative value.
pub(in crate::adapters::sql) fn marks(delivered_seq: i64, read_seq: i64) -> Result<ReadMarks> {
    Ok(ReadMarks {
        delivered_seq: seq(delivered_seq, "ticket_marks.delivered_seq")?,
        read_seq: seq(read_seq, "ticket_marks.read_seq")?,
    })
}

/// `agent_id, count(*)` rows as the per-agent counts. A count is never negative; one beyond `u32`
/// (four billion tickets) saturates.
pub(in crate::adapters::sql) fn assigned_counts(rows: Vec<(Uuid, i64)>) -> Vec<(AgentId, u32)> {
    rows.into_iter().map(|(agent, n)| (AgentId(agent), u32::try_from(n.max(0)).unwrap_or(u32::MAX))).collect()
}

/// An author as the `author_kind, author_id` columns store it.
pub(in crate::adapters::sql) fn stored_author(author: Author) -> (&'static str, Option<Uuid>) {
    match author {
        Author::User(id) => ("user", Some(id.0)),
        Author::Agent(id) => ("agent", Some(id.0)),
        Author::System => ("system", None),
    }
}

/// A participant as the `participant_kind, participant_id` columns of `ticket_marks` store it.
///
/// # Errors
/// [`Error::Internal`] for [`Author::System`]: the hub itself reads nothing, so asking to mark for
/// it is a bug of the caller.
pub(in crate::adapters::sql) fn stored_participant(who: Author) -> Result<(&'static str, Uuid)> {
    match stored_author(who) {
        (kind, Some(id)) => Ok((kind, id)),
        (_, None) => Err(Error::Internal("the system author has no read marks".into())),
    }
}

/// The author named by a kind and an id column.
fn author(kind: &str, id: Option<Uuid>, column: &'static str) -> Result<Author> {
    match (kind, id) {
        ("user", Some(id)) => Ok(Author::User(UserId(id))),
        ("agent", Some(id)) => Ok(Author::Agent(AgentId(id))),
        ("system", None) => Ok(Author::System),
        _ => Err(internal(column, kind)),
    }
}

/// A seq column as the models' `u64`. Both schemas forbid negative seqs with a CHECK.
///
/// # Errors
/// [`Error::Internal`] for a negative value.
pub(in crate::adapters::sql) fn seq(value: i64, column: &'static str) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::Internal(format!("{column} is negative ({value})")))
}

/// A model's seq (or page bound) as the columns compare it. Seqs count events one by one, so they
/// never get near `i64::MAX`; saturating keeps the conversion total, and a bound of `u64::MAX`
/// still means "beyond every event".
pub(in crate::adapters::sql) fn stored_seq(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_round_trip_through_their_columns() {
        let (user, agent) = (Author::User(UserId(Uuid::now_v7())), Author::Agent(AgentId(Uuid::now_v7())));
        for who in [user, agent, Author::System] {
            let (kind, id) = stored_author(who);
            assert_eq!(author(kind, id, "x").ok(), Some(who));
        }
        assert!(author("user", None, "x").is_err(), "a user author without an id must not decode");
        assert!(author("system", Some(Uuid::nil()), "x").is_err());
        assert!(author("robot", Some(Uuid::nil()), "x").is_err());
        assert!(stored_participant(Author::System).is_err());
        assert_eq!(stored_participant(user).ok().map(|(kind, _)| kind), Some("user"));
    }

    #[test]
    fn seqs_refuse_negative_values_and_bounds_saturate() {
        assert_eq!(seq(3, "x").ok(), Some(3));
        assert!(seq(-1, "x").is_err());
        assert_eq!(stored_seq(7), 7);
        assert_eq!(stored_seq(u64::MAX), i64::MAX);
    }
}
