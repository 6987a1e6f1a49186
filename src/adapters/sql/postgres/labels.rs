//! [`Labels`] on Postgres: putting a label on a ticket holds both rows `FOR SHARE` while it writes,
//! so neither can be deleted in between.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::labels::{self as sql, LabelRow};
use crate::adapters::sql::statements::postgres;
use crate::adapters::sql::unless_taken;
use crate::error::Result;
use crate::model::ids::{AgentId, LabelId, TicketId};
use crate::model::label::{Label, LabelWrite, TicketLabelled, TicketLabels};
use crate::model::time::Millis;
use crate::ports::store::labels::Labels;
use async_trait::async_trait;
use sqlx::Connection as _;
use uuid::Uuid;

#[async_trait]
impl Labels for PostgresStore {
    async fn create_label(&self, label: &Label, name_key: &str) -> Result<LabelWrite> {
        let insert = postgres(sql::INSERT);
        self.call(async |c| {
            let stored = sqlx::query(&insert)
                .bind(label.id.0)
                .bind(&label.name)
                .bind(name_key)
                .bind(&label.color)
                .bind(label.created_at)
                .execute(c)
                .await;
            Ok(unless_taken(stored)?.map_or(LabelWrite::NameTaken, |_| LabelWrite::Stored(label.clone())))
        })
        .await
    }

    async fn update_label(&self, label: &Label, name_key: &str) -> Result<LabelWrite> {
        let update = postgres(sql::UPDATE);
        self.call(async |c| {
            let stored = sqlx::query(&update)
                .bind(label.id.0)
                .bind(&label.name)
                .bind(name_key)
                .bind(&label.color)
                .execute(c)
                .await;
            Ok(match unless_taken(stored)? {
                None => LabelWrite::NameTaken,
                Some(done) if done.rows_affected() == 0 => LabelWrite::NotFound,
                Some(_) => LabelWrite::Stored(label.clone()),
            })
        })
        .await
    }

    async fn delete_label(&self, id: LabelId) -> Result<bool> {
        let delete = postgres(sql::DELETE);
        self.call(async |c| Ok(sqlx::query(&delete).bind(id.0).execute(c).await?.rows_affected() == 1)).await
    }

    async fn labels(&self) -> Result<Vec<Label>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, LabelRow>(sql::ALL).fetch_all(c).await?;
            Ok(rows.into_iter().map(Label::from).collect())
        })
        .await
    }

    async fn label_ticket(
        &self,
        ticket: TicketId,
        label: LabelId,
        on: bool,
        agent: AgentId,
        at: Millis,
    ) -> Result<TicketLabelled> {
        let ticket_exists = format!("{} FOR SHARE", postgres(sql::TICKET_EXISTS));
        let label_exists = format!("{} FOR SHARE", postgres(sql::LABEL_EXISTS));
        let (put_on, take_off) = (postgres(sql::PUT_ON), postgres(sql::TAKE_OFF));
        let labels_of = format!("{}= $1{}", sql::OF_TICKETS, sql::OF_TICKETS_ORDER);
        self.call(async |c| {
            let mut tx = c.begin().await?;
            if sqlx::query(&ticket_exists).bind(ticket.0).fetch_optional(&mut *tx).await?.is_none() {
                return Ok(TicketLabelled::NoTicket);
            }
            if sqlx::query(&label_exists).bind(label.0).fetch_optional(&mut *tx).await?.is_none() {
                return Ok(TicketLabelled::NoLabel);
            }
            if on {
                sqlx::query(&put_on).bind(ticket.0).bind(label.0).bind(agent.0).bind(at).execute(&mut *tx).await?;
            } else {
                sqlx::query(&take_off).bind(ticket.0).bind(label.0).execute(&mut *tx).await?;
            }
            let pairs: Vec<(Uuid, Uuid)> = sqlx::query_as(&labels_of).bind(ticket.0).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            Ok(TicketLabelled::Labels(pairs.into_iter().map(|(_, label)| LabelId(label)).collect()))
        })
        .await
    }

    async fn ticket_labels(&self, tickets: &[TicketId]) -> Result<Vec<TicketLabels>> {
        let ids: Vec<Uuid> = tickets.iter().map(|t| t.0).collect();
        let statement = format!("{}= ANY($1){}", sql::OF_TICKETS, sql::OF_TICKETS_ORDER);
        self.call(async |c| {
            let pairs: Vec<(Uuid, Uuid)> = sqlx::query_as(&statement).bind(&ids).fetch_all(c).await?;
            Ok(sql::grouped(pairs))
        })
        .await
    }
}
