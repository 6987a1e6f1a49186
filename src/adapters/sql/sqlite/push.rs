//! [`Pushes`] on SQLite: a registration and a claim are each one `BEGIN IMMEDIATE` transaction on
//! the writer, so the check of the session (or of what is due) and the write that follows cannot be
//! split. SQLite serves one node, whose one sender claims.

use crate::adapters::sql::rows::push::{self as sql, QueuedRow, RegistrationRow, ReminderRow};
use crate::adapters::sql::sqlite::{in_list, SqliteStore};
use crate::adapters::sql::statements::INSERT_CHUNK;
use crate::error::Result;
use crate::model::ids::{AgentId, Principal, SessionId, TicketId, UserId};
use crate::model::push::{DueReminder, NewPush, NewReminder, PushRegistration, QueuedPush, ReminderOutcome};
use crate::model::time::Millis;
use crate::ports::store::push::Pushes;
use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};

#[async_trait]
impl Pushes for SqliteStore {
    async fn register_push(&self, registration: &PushRegistration, now: Millis) -> Result<bool> {
        let address = sql::stored_address(&self.vault, registration);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let session = registration.session_id.0;
        if sqlx::query(sql::LIVE_SESSION).bind(session).bind(now).fetch_optional(&mut *tx).await?.is_none() {
            return Ok(false);
        }
        sqlx::query(sql::DROP_QUEUED).bind(session).execute(&mut *tx).await?;
        sql::bind_registration(sqlx::query(sql::UPSERT_REGISTRATION), registration, &address).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn unregister_push(&self, session: SessionId) -> Result<bool> {
        let done = sqlx::query(sql::DELETE_REGISTRATION).bind(session.0).execute(&self.writer).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn push_registrations(&self, who: &[Principal], now: Millis) -> Result<Vec<PushRegistration>> {
        // SQLite has no arrays: one statement per chunk, well under its bound-parameter limit.
        let mut found = Vec::new();
        for chunk in who.chunks(INSERT_CHUNK) {
            let (users, agents) = sql::holders(chunk);
            let mut query = QueryBuilder::<Sqlite>::new(sql::registrations_where());
            query.push("s.expires_at > ").push_bind(now).push(" AND (s.user_id IN (");
            let mut list = query.separated(", ");
            for id in users {
                list.push_bind(id);
            }
            query.push(") OR s.agent_id IN (");
            let mut list = query.separated(", ");
            for id in agents {
                list.push_bind(id);
            }
            query.push("))").push(sql::REGISTRATIONS_ORDER);
            for row in query.build_query_as::<RegistrationRow>().fetch_all(&self.readers).await? {
                found.push(row.open(&self.vault)?);
            }
        }
        Ok(found)
    }

    async fn queue_pushes(&self, pushes: &[NewPush], reminders: &[NewReminder]) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for reminder in reminders {
            sql::bind_reminder(sqlx::query(sql::PLAN_REMINDER), reminder).execute(&mut *tx).await?;
        }
        for push in pushes {
            let collapsed = sql::bind_queued(sqlx::query(sql::COLLAPSE), push).execute(&mut *tx).await?;
            if collapsed.rows_affected() == 0 {
                sql::bind_queued(sqlx::query(sql::QUEUE), push)
                    .bind(push.due_at)
                    .bind(push.created_at)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_pushes(&self, now: Millis, lease: Millis, limit: u32) -> Result<Vec<QueuedPush>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let ids: Vec<i64> = sqlx::query_scalar(&sql::lease_due(""))
            .bind(now)
            .bind(i64::from(limit))
            .bind(now + lease)
            .fetch_all(&mut *tx)
            .await?;
        let mut claimed = Vec::with_capacity(ids.len());
        if !ids.is_empty() {
            let mut query = in_list(&sql::queued_where(), ids.iter().copied(), " ORDER BY q.due_at, q.id");
            for row in query.build_query_as::<QueuedRow>().fetch_all(&mut *tx).await? {
                claimed.push(row.open(&self.vault)?);
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn finish_pushes(&self, ids: &[i64]) -> Result<()> {
        for chunk in ids.chunks(INSERT_CHUNK) {
            in_list(sql::FINISH, chunk.iter().copied(), "").build().execute(&self.writer).await?;
        }
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

    async fn claim_reminders(&self, now: Millis, lease: Millis, limit: u32) -> Result<Vec<DueReminder>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let tickets: Vec<uuid::Uuid> =
            sqlx::query_scalar(sql::DUE_REMINDERS).bind(now).bind(i64::from(limit)).fetch_all(&mut *tx).await?;
        let mut claimed = Vec::with_capacity(tickets.len());
        for ticket in tickets {
            sqlx::query(sql::LEASE_REMINDER).bind(ticket).bind(now + lease).execute(&mut *tx).await?;
            let row =
                sqlx::query_as::<_, ReminderRow>(sql::DUE_REMINDER).bind(ticket).bind(now).fetch_one(&mut *tx).await?;
            claimed.push(DueReminder::from(row));
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn settle_reminder(&self, ticket: TicketId, seq: u64, outcome: ReminderOutcome) -> Result<()> {
        sql::bind_settled(sqlx::query(sql::SETTLE_REMINDER), ticket, seq, outcome).execute(&self.writer).await?;
        Ok(())
    }
}
