//! Rows of `ticket_notes`, and the statements both backends run on them (`?N` placeholders;
//! Postgres spells them `$N`).

use crate::adapters::sql::rows::internal;
use crate::error::{Error, Result};
use crate::model::ids::{AgentId, NoteId, TicketId};
use crate::model::note::Note;
use crate::model::time::Millis;
use uuid::Uuid;

/// The columns [`NoteRow`] reads.
const COLUMNS: &str = "id, ticket_id, agent_id, body, mentions, client_msg_id, created_at";

/// Whether ticket `?1` exists (Postgres appends `FOR SHARE`, so it cannot go while the note is
/// stored).
pub(in crate::adapters::sql) const TICKET_EXISTS: &str = "SELECT id FROM tickets WHERE id = ?1";

/// Stores a note: `?1` id, `?2` ticket, `?3` agent, `?4` body, `?5` mentions, `?6` client_msg_id,
/// `?7` created_at; nothing when the same (ticket, agent, client_msg_id) is stored.
pub(in crate::adapters::sql) const INSERT: &str = "INSERT INTO ticket_notes \
     (id, ticket_id, agent_id, body, mentions, client_msg_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (ticket_id, agent_id, client_msg_id) DO NOTHING";

/// A statement of either backend, its arguments being bound.
type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>;

/// Binds [`INSERT`]'s `?1` to `?7` from `note`, on either backend.
pub(in crate::adapters::sql) fn bind_note<'q, DB>(query: Query<'q, DB>, note: &'q Note) -> Query<'q, DB>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(note.id.0)
        .bind(note.ticket_id.0)
        .bind(note.agent_id.0)
        .bind(note.body.as_str())
        .bind(stored_mentions(&note.mentions))
        .bind(note.client_msg_id.as_str())
        .bind(note.created_at)
}

/// The note stored under (`?1` ticket, `?2` agent, `?3` client_msg_id).
pub(in crate::adapters::sql) fn by_client_id() -> String {
    format!("SELECT {COLUMNS} FROM ticket_notes WHERE ticket_id = ?1 AND agent_id = ?2 AND client_msg_id = ?3")
}

/// Up to `?3` notes of ticket `?1` with ids below `?2` (NULL: any), newest first.
pub(in crate::adapters::sql) fn page() -> String {
    format!(
        "SELECT {COLUMNS} FROM ticket_notes WHERE ticket_id = ?1 AND (?2 IS NULL OR id < ?2) \
         ORDER BY id DESC LIMIT ?3"
    )
}

/// The mentions as the column stores them: a JSON array of ids.
pub(in crate::adapters::sql) fn stored_mentions(mentions: &[AgentId]) -> String {
    serde_json::to_string(mentions).unwrap_or_else(|_| "[]".to_owned())
}

/// `ticket_notes`: [`COLUMNS`].
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct NoteRow {
    id: Uuid,
    ticket_id: Uuid,
    agent_id: Uuid,
    body: String,
    mentions: String,
    client_msg_id: String,
    created_at: Millis,
}

impl TryFrom<NoteRow> for Note {
    type Error = Error;

    fn try_from(r: NoteRow) -> Result<Self> {
        let mentions = serde_json::from_str(&r.mentions).map_err(|_| internal("ticket_notes.mentions", &r.mentions))?;
        Ok(Self {
            id: NoteId(r.id),
            ticket_id: TicketId(r.ticket_id),
            agent_id: AgentId(r.agent_id),
            body: r.body,
            mentions,
            client_msg_id: r.client_msg_id,
            created_at: r.created_at,
        })
    }
}

/// Rows read newest first, as notes oldest first.
pub(in crate::adapters::sql) fn oldest_first(rows: Vec<NoteRow>) -> Result<Vec<Note>> {
    let mut notes = rows.into_iter().map(Note::try_from).collect::<Result<Vec<_>>>()?;
    notes.reverse();
    Ok(notes)
}
