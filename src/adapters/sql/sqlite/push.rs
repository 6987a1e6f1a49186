//! [`Pushes`] on SQLite: a registration and a claim are each one `BEGIN IMMEDIATE` transaction on
//! the writer, so the check of the session (or of what is due) and the write that follows cannot be
//! split. SQLite serves one node, whose one sender claims.

use crate::adapters::sql::rows::attachments::uploader_columns;
use crate::adapters::sql::rows::push::{self as sql, QueuedRow, RegistrationRow};
use crate::adapters::sql::sqlite::SqliteStore;
use crate::error::Result;
use crate::model::ids::{AgentId, Principal, SessionId, UserId};
use crate::model::push::{NewPush, PushRegistration, QueuedPush};
use crate::model::time::Millis;
use crate::ports::store::push::Pushes;
use async_trait::async_trait;

#[async_trait]
impl Pushes for SqliteStore {
    async fn register_push(&self, registration: &PushRegistration, now: Millis) -> Result<bool> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let session = registration.session_id.0;
        if sqlx::query(sql::LIVE_SESSION).bind(session).bind(now).fetch_optional(&mut *tx).await?.is_none() {
            return Ok(false);
        }
        sqlx::query(sql::DROP_QUEUED).bind(session).execute(&mut *tx).await?;
        sql::bind_registration(sqlx::query(sql::UPSERT_REGISTRATION), registration).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn unregister_push(&self, session: SessionId) -> Result<bool> {
        let done = sqlx::query(sql::DELETE_REGISTRATION).bind(session.0).execute(&self.writer).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn push_registrations(&self, who: Principal, now: Millis) -> Result<Vec<PushRegistration>> {
        let (user, agent) = uploader_columns(who);
        let rows = sqlx::query_as::<_, RegistrationRow>(&sql::registrations_of())
            .bind(user)
            .bind(agent)
            .bind(now)
            .fetch_all(&self.readers)
            .await?;
        rows.into_iter().map(PushRegistration::try_from).collect()
    }

    async fn queue_push(&self, push: &NewPush) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let collapsed = sqlx::query(sql::COLLAPSE)
            .bind(push.session_id.0)
            .bind(push.ticket_id.0)
            .bind(push.kind.as_str())
            .bind(&push.preview)
            .execute(&mut *tx)
            .await?;
        if collapsed.rows_affected() == 0 {
            sql::bind_queued(sqlx::query(sql::QUEUE), push).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_pushes(&self, now: Millis, lease: Millis, limit: u32) -> Result<Vec<QueuedPush>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let ids: Vec<i64> = sqlx::query_scalar(sql::DUE).bind(now).bind(i64::from(limit)).fetch_all(&mut *tx).await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            sqlx::query(sql::LEASE).bind(id).bind(now + lease).execute(&mut *tx).await?;
            let row = sqlx::query_as::<_, QueuedRow>(&sql::queued_by_id()).bind(id).fetch_one(&mut *tx).await?;
            claimed.push(QueuedPush::try_from(row)?);
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn finish_push(&self, id: i64) -> Result<()> {
        sqlx::query(sql::FINISH).bind(id).execute(&self.writer).await?;
        Ok(())
    }

    async fn retry_push(&self, id: i64, due_at: Millis) -> Result<()> {
        sqlx::query(sql::RETRY).bind(id).bind(due_at).execute(&self.writer).await?;
        Ok(())
    }

    async fn registered_agents(&self, now: Millis) -> Result<Vec<AgentId>> {
        let ids: Vec<uuid::Uuid> =
            sqlx::query_scalar(sql::REGISTERED_AGENTS).bind(now).fetch_all(&self.readers).await?;
        Ok(ids.into_iter().map(AgentId).collect())
    }

    async fn unread_conversations(&self, user: UserId) -> Result<u32> {
        let n: i64 = sqlx::query_scalar(sql::UNREAD).bind(user.0).fetch_one(&self.readers).await?;
        Ok(u32::try_from(n.max(0)).unwrap_or(u32::MAX))
    }

    async fn push_backlog(&self) -> Result<(u64, Option<Millis>)> {
        let (count, oldest): (i64, Option<Millis>) = sqlx::query_as(sql::BACKLOG).fetch_one(&self.readers).await?;
        Ok((u64::try_from(count).unwrap_or(0), oldest))
    }
}
