//! [`Notes`] on SQLite: the check that the ticket exists and the insert are one `BEGIN IMMEDIATE`
//! transaction on the writer.

use crate::adapters::sql::rows::notes::{self as sql, NoteRow};
use crate::adapters::sql::sqlite::SqliteStore;
use crate::error::Result;
use crate::model::ids::{NoteId, TicketId};
use crate::model::note::{Note, NoteAdded};
use crate::ports::store::notes::Notes;
use async_trait::async_trait;

#[async_trait]
impl Notes for SqliteStore {
    async fn add_note(&self, note: &Note) -> Result<NoteAdded> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        if sqlx::query(sql::TICKET_EXISTS).bind(note.ticket_id.0).fetch_optional(&mut *tx).await?.is_none() {
            return Ok(NoteAdded::NoTicket);
        }
        let stored = sql::bind_note(sqlx::query(sql::INSERT), note).execute(&mut *tx).await?;
        let added = if stored.rows_affected() == 1 {
            NoteAdded::Stored(note.clone())
        } else {
            let row = sqlx::query_as::<_, NoteRow>(&sql::by_client_id())
                .bind(note.ticket_id.0)
                .bind(note.agent_id.0)
                .bind(&note.client_msg_id)
                .fetch_one(&mut *tx)
                .await?;
            NoteAdded::Duplicate(Note::try_from(row)?)
        };
        tx.commit().await?;
        Ok(added)
    }

    async fn notes(&self, ticket: TicketId, before: Option<NoteId>, limit: u32) -> Result<Vec<Note>> {
        let rows = sqlx::query_as::<_, NoteRow>(&sql::page())
            .bind(ticket.0)
            .bind(before.map(|id| id.0))
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await?;
        sql::oldest_first(rows)
    }
}
