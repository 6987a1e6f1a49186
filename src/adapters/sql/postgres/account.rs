//! [`AccountRecords`] on Postgres: the deletion is one transaction that first locks the user row,
//! so that it waits for (and is waited on by) every write that references the user.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::attachments::{self, to_attachments, AttachmentRow};
use crate::adapters::sql::rows::{
    self, ConnectionRow, PagedViewRow, SessionRow, TicketRow, CONNECTION_COLUMNS, VIEW_COLUMNS,
};
use crate::adapters::sql::statements::{
    delete_account_row_postgres, postgres, BUMP_COUNTER, DELETE_ACCOUNT_ROWS, DELETE_PHONE_ROWS, TICKETS_AFTER,
};
use crate::error::Result;
use crate::model::account::{PhoneKey, Session};
use crate::model::deletion::{DeletedAccount, DELETED_ACCOUNTS};
use crate::model::ids::{TicketId, UserId};
use crate::model::telemetry::{ConnectionRecord, StoredView};
use crate::model::ticket::Ticket;
use crate::model::time::Millis;
use crate::ports::store::account::AccountRecords;
use async_trait::async_trait;
use sqlx::Connection as _;
use uuid::Uuid;

#[async_trait]
impl AccountRecords for PostgresStore {
    async fn all_sessions(&self, user: UserId) -> Result<Vec<Session>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, SessionRow>(
                "SELECT id, user_id, device_id, agent_id, created_at, expires_at, revoked_at FROM sessions
                 WHERE user_id = $1 ORDER BY created_at, id",
            )
            .bind(user.0)
            .fetch_all(c)
            .await?;
            rows::to_sessions(rows)
        })
        .await
    }

    async fn views_after(&self, user: UserId, after: i64, limit: u32) -> Result<Vec<(i64, StoredView)>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, PagedViewRow>(&format!(
                "SELECT id, {VIEW_COLUMNS} FROM view_events WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            ))
            .bind(user.0)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await?;
            Ok(rows.into_iter().map(Into::into).collect())
        })
        .await
    }

    async fn connections_after(
        &self,
        user: UserId,
        after: Option<(Millis, Uuid)>,
        limit: u32,
    ) -> Result<Vec<ConnectionRecord>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, ConnectionRow>(&format!(
                "SELECT {CONNECTION_COLUMNS} FROM connections
                 WHERE user_id = $1 AND ($2::BIGINT IS NULL OR (connected_at, id) > ($2, $3))
                 ORDER BY connected_at, id LIMIT $4"
            ))
            .bind(user.0)
            .bind(after.map(|a| a.0))
            .bind(after.map(|a| a.1))
            .bind(i64::from(limit))
            .fetch_all(c)
            .await?;
            rows.into_iter().map(|r| r.open(&self.vault)).collect()
        })
        .await
    }

    async fn tickets_after(&self, user: UserId, after: Option<(Millis, TicketId)>, limit: u32) -> Result<Vec<Ticket>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, TicketRow>(&postgres(TICKETS_AFTER))
                .bind(user.0)
                .bind(after.map(|a| a.0))
                .bind(after.map(|a| a.1 .0))
                .bind(i64::from(limit))
                .fetch_all(c)
                .await?;
            rows.into_iter().map(Ticket::try_from).collect()
        })
        .await
    }

    async fn delete_account(&self, user: UserId, phone_keys: &[PhoneKey]) -> Result<Option<DeletedAccount>> {
        self.call(async |c| {
            let mut tx = c.begin().await?;
            // The row lock orders this deletion after writes that hold a key-share lock on the user
            // (every foreign-key check does), and those after it fail their check cleanly.
            let Some(image) =
                sqlx::query_scalar::<_, Option<String>>("SELECT image FROM users WHERE id = $1 FOR UPDATE")
                    .bind(user.0)
                    .fetch_optional(&mut *tx)
                    .await?
            else {
                return Ok(None);
            };
            // Locked too, so that a message batch racing the deletion either lands before it (and is
            // deleted with the ticket) or finds no ticket;
            // in id order, the order message batches lock them in, so the two cannot deadlock.
            sqlx::query("SELECT 1 FROM tickets WHERE user_id = $1 ORDER BY id FOR UPDATE")
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            let tickets = sqlx::query_as::<_, TicketRow>(&postgres(TICKETS_AFTER))
                .bind(user.0)
                .bind(None::<Millis>)
                .bind(None::<Uuid>)
                .bind(i64::MAX)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(Ticket::try_from)
                .collect::<Result<Vec<_>>>()?;
            let attachments = sqlx::query_as::<_, AttachmentRow>(&postgres(&attachments::of_account()))
                .bind(user.0)
                .fetch_all(&mut *tx)
                .await?;
            let attachments = to_attachments(attachments)?;
            for statement in DELETE_ACCOUNT_ROWS {
                sqlx::query(&delete_account_row_postgres(statement)).bind(user.0).execute(&mut *tx).await?;
            }
            for key in phone_keys {
                for statement in DELETE_PHONE_ROWS {
                    sqlx::query(&postgres(statement)).bind(&key.0).execute(&mut *tx).await?;
                }
            }
            sqlx::query(&postgres(BUMP_COUNTER)).bind(DELETED_ACCOUNTS).execute(&mut *tx).await?;
            let image_still_used = match &image {
                Some(path) => {
                    sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM users WHERE image = $1)")
                        .bind(path)
                        .fetch_one(&mut *tx)
                        .await?
                }
                None => false,
            };
            tx.commit().await?;
            Ok(Some(DeletedAccount { tickets, image, image_still_used, attachments }))
        })
        .await
    }

    async fn counter(&self, name: &str) -> Result<u64> {
        self.call(async |c| {
            let value = sqlx::query_scalar::<_, i64>("SELECT value FROM hub_counters WHERE name = $1")
                .bind(name)
                .fetch_optional(c)
                .await?;
            Ok(value.unwrap_or(0).max(0) as u64)
        })
        .await
    }
}
