//! [`Notes`] on Postgres: the ticket's row is held `FOR SHARE` while the note is stored, so an
//! account deletion cannot remove the ticket in between.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::notes::{self as sql, NoteRow};
use crate::adapters::sql::statements::postgres;
use crate::error::Result;
use crate::model::ids::{NoteId, TicketId};
use crate::model::note::{Note, NoteAdded};
use crate::ports::store::notes::Notes;
use async_trait::async_trait;
use sqlx::Connection as _;

#[async_trait]
impl Notes for PostgresStore {
    async fn add_note(&self, note: &Note) -> Result<NoteAdded> {
        let exists = format!("{} FOR SHARE", postgres(sql::TICKET_EXISTS));
        let (insert, by_client_id) = (postgres(sql::INSERT), postgres(&sql::by_client_id()));
        self.call(async |c| {
            let mut tx = c.begin().await?;
            if sqlx::query(&exists).bind(note.ticket_id.0).fetch_optional(&mut *tx).await?.is_none() {
                return Ok(NoteAdded::NoTicket);
            }
            let stored = sql::bind_note(sqlx::query(&insert), note).execute(&mut *tx).await?;
            let added = if stored.rows_affected() == 1 {
                NoteAdded::Stored(note.clone())
            } else {
                let row = sqlx::query_as::<_, NoteRow>(&by_client_id)
                    .bind(note.ticket_id.0)
                    .bind(note.agent_id.0)
                    .bind(&note.client_msg_id)
                    .fetch_one(&mut *tx)
                    .await?;
                NoteAdded::Duplicate(Note::try_from(row)?)
            };
            tx.commit().await?;
            Ok(added)
        })
        .await
    }

    async fn notes(&self, ticket: TicketId, before: Option<NoteId>, limit: u32) -> Result<Vec<Note>> {
        let page = postgres(&sql::page());
        self.call(async |c| {
            let rows = sqlx::query_as::<_, NoteRow>(&page)
                .bind(ticket.0)
                .bind(before.map(|id| id.0))
                .bind(i64::from(limit))
                .fetch_all(c)
                .await?;
            sql::oldest_first(rows)
        })
        .await
    }
}
