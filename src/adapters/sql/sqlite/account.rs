//! [`AccountRecords`] on SQLite: the deletion is one `BEGIN IMMEDIATE` transaction on the writer.

use crate::adapters::sql::rows::attachments::{self, to_attachments, AttachmentRow};
use crate::adapters::sql::rows::{
    self, ConnectionRow, PagedViewRow, SessionRow, TicketRow, CONNECTION_COLUMNS, VIEW_COLUMNS,
};
use crate::adapters::sql::sqlite::SqliteStore;
use crate::adapters::sql::statements::{BUMP_COUNTER, DELETE_ACCOUNT_ROWS, DELETE_PHONE_ROWS, TICKETS_AFTER};
use crate::error::Result;
use crate::model::account::{PhoneKey, Session};
use crate::model::deletion::{DeletedAccount, DELETED_ACCOUNTS};
use crate::model::ids::{TicketId, UserId};
use crate::model::telemetry::{ConnectionRecord, StoredView};
use crate::model::ticket::Ticket;
use crate::model::time::Millis;
use crate::ports::store::account::AccountRecords;
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl AccountRecords for SqliteStore {
    async fn all_sessions(&self, user: UserId) -> Result<Vec<Session>> {
        let rows = sqlx::query_as::<_, SessionRow>(
            "SELECT id, user_id, device_id, agent_id, created_at, expires_at, revoked_at FROM sessions
             WHERE user_id = ?1 ORDER BY created_at, id",
        )
        .bind(user.0)
        .fetch_all(&self.readers)
        .await?;
        rows::to_sessions(rows)
    }

    async fn views_after(&self, user: UserId, after: i64, limit: u32) -> Result<Vec<(i64, StoredView)>> {
        let rows = sqlx::query_as::<_, PagedViewRow>(&format!(
            "SELECT id, {VIEW_COLUMNS} FROM view_events WHERE user_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ))
        .bind(user.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn connections_after(
        &self,
        user: UserId,
        after: Option<(Millis, Uuid)>,
        limit: u32,
    ) -> Result<Vec<ConnectionRecord>> {
        let rows = sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections
             WHERE user_id = ?1 AND (?2 IS NULL OR (connected_at, id) > (?2, ?3))
             ORDER BY connected_at, id LIMIT ?4"
        ))
        .bind(user.0)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(|r| r.open(&self.vault)).collect()
    }

    async fn tickets_after(&self, user: UserId, after: Option<(Millis, TicketId)>, limit: u32) -> Result<Vec<Ticket>> {
        let rows = sqlx::query_as::<_, TicketRow>(TICKETS_AFTER)
            .bind(user.0)
            .bind(after.map(|a| a.0))
            .bind(after.map(|a| a.1 .0))
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await?;
        rows.into_iter().map(Ticket::try_from).collect()
    }

    async fn delete_account(&self, user: UserId, phone_keys: &[PhoneKey]) -> Result<Option<DeletedAccount>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(image) = sqlx::query_scalar::<_, Option<String>>("SELECT image FROM users WHERE id = ?1")
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let tickets = sqlx::query_as::<_, TicketRow>(TICKETS_AFTER)
            .bind(user.0)
            .bind(None::<Millis>)
            .bind(None::<Uuid>)
            .bind(i64::MAX)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(Ticket::try_from)
            .collect::<Result<Vec<_>>>()?;
        let attachments =
            sqlx::query_as::<_, AttachmentRow>(&attachments::of_account()).bind(user.0).fetch_all(&mut *tx).await?;
        let attachments = to_attachments(attachments)?;
        for statement in DELETE_ACCOUNT_ROWS {
            sqlx::query(statement).bind(user.0).execute(&mut *tx).await?;
        }
        for key in phone_keys {
            for statement in DELETE_PHONE_ROWS {
                sqlx::query(statement).bind(&key.0).execute(&mut *tx).await?;
            }
        }
        sqlx::query(BUMP_COUNTER).bind(DELETED_ACCOUNTS).execute(&mut *tx).await?;
        let image_still_used = match &image {
            Some(path) => {
                sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM users WHERE image = ?1)")
                    .bind(path)
                    .fetch_one(&mut *tx)
                    .await?
            }
            None => false,
        };
        tx.commit().await?;
        Ok(Some(DeletedAccount { tickets, image, image_still_used, attachments }))
    }

    async fn counter(&self, name: &str) -> Result<u64> {
        let value = sqlx::query_scalar::<_, i64>("SELECT value FROM hub_counters WHERE name = ?1")
            .bind(name)
            .fetch_optional(&self.readers)
            .await?;
        Ok(value.unwrap_or(0).max(0) as u64)
    }
}
