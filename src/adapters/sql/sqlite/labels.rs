//! [`Labels`] on SQLite: putting a label on a ticket checks both and writes in one `BEGIN
//! IMMEDIATE` transaction on the writer.

use crate::adapters::sql::rows::labels::{self as sql, LabelRow};
use crate::adapters::sql::sqlite::{in_list, SqliteStore};
use crate::adapters::sql::statements::INSERT_CHUNK;
use crate::adapters::sql::unless_taken;
use crate::error::Result;
use crate::model::ids::{AgentId, LabelId, TicketId};
use crate::model::label::{Label, LabelWrite, TicketLabelled, TicketLabels};
use crate::model::time::Millis;
use crate::ports::store::labels::Labels;
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl Labels for SqliteStore {
    async fn create_label(&self, label: &Label, name_key: &str) -> Result<LabelWrite> {
        let stored = sqlx::query(sql::INSERT)
            .bind(label.id.0)
            .bind(&label.name)
            .bind(name_key)
            .bind(&label.color)
            .bind(label.created_at)
            .execute(&self.writer)
            .await;
        Ok(unless_taken(stored)?.map_or(LabelWrite::NameTaken, |_| LabelWrite::Stored(label.clone())))
    }

    async fn update_label(&self, label: &Label, name_key: &str) -> Result<LabelWrite> {
        let stored = sqlx::query(sql::UPDATE)
            .bind(label.id.0)
            .bind(&label.name)
            .bind(name_key)
            .bind(&label.color)
            .execute(&self.writer)
            .await;
        Ok(match unless_taken(stored)? {
            None => LabelWrite::NameTaken,
            Some(done) if done.rows_affected() == 0 => LabelWrite::NotFound,
            Some(_) => LabelWrite::Stored(label.clone()),
        })
    }

    async fn delete_label(&self, id: LabelId) -> Result<bool> {
        Ok(sqlx::query(sql::DELETE).bind(id.0).execute(&self.writer).await?.rows_affected() == 1)
    }

    async fn labels(&self) -> Result<Vec<Label>> {
        let rows = sqlx::query_as::<_, LabelRow>(sql::ALL).fetch_all(&self.readers).await?;
        Ok(rows.into_iter().map(Label::from).collect())
    }

    async fn label_ticket(
        &self,
        ticket: TicketId,
        label: LabelId,
        on: bool,
        agent: AgentId,
        at: Millis,
    ) -> Result<TicketLabelled> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        if sqlx::query(sql::TICKET_EXISTS).bind(ticket.0).fetch_optional(&mut *tx).await?.is_none() {
            return Ok(TicketLabelled::NoTicket);
        }
        if sqlx::query(sql::LABEL_EXISTS).bind(label.0).fetch_optional(&mut *tx).await?.is_none() {
            return Ok(TicketLabelled::NoLabel);
        }
        if on {
            sqlx::query(sql::PUT_ON).bind(ticket.0).bind(label.0).bind(agent.0).bind(at).execute(&mut *tx).await?;
        } else {
            sqlx::query(sql::TAKE_OFF).bind(ticket.0).bind(label.0).execute(&mut *tx).await?;
        }
        let pairs: Vec<(Uuid, Uuid)> = sqlx::query_as(&format!("{}= ?1{}", sql::OF_TICKETS, sql::OF_TICKETS_ORDER))
            .bind(ticket.0)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(TicketLabelled::Labels(pairs.into_iter().map(|(_, label)| LabelId(label)).collect()))
    }

    async fn ticket_labels(&self, tickets: &[TicketId]) -> Result<Vec<TicketLabels>> {
        let mut pairs = Vec::new();
        for chunk in tickets.chunks(INSERT_CHUNK) {
            let mut query = in_list(sql::OF_TICKETS, chunk.iter().map(|t| t.0), sql::OF_TICKETS_ORDER);
            pairs.extend(query.build_query_as::<(Uuid, Uuid)>().fetch_all(&self.readers).await?);
        }
        Ok(sql::grouped(pairs))
    }
}
