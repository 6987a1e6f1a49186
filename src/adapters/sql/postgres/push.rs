//! [`Pushes`] on Postgres: a registration locks its session row (`FOR UPDATE`) while it checks and
//! stores, so a revocation waits and its trigger then removes the registration; claims take the due
//! notifications `FOR UPDATE SKIP LOCKED`, so the senders of several nodes never take the same one.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::push::{self as sql, QueuedRow, RegistrationRow, ReminderRow};
use crate::adapters::sql::statements::postgres;
use crate::error::Result;
use crate::model::ids::{AgentId, Principal, SessionId, TicketId, UserId};
use crate::model::push::{DueReminder, NewPush, NewReminder, PushRegistration, QueuedPush, ReminderOutcome};
use crate::model::time::Millis;
use crate::ports::store::push::Pushes;
use async_trait::async_trait;
use sqlx::Connection as _;

#[async_trait]
impl Pushes for PostgresStore {
    async fn register_push(&self, registration: &PushRegistration, now: Millis) -> Result<bool> {
        let address = sql::stored_address(&self.vault, registration);
        self.call(async |c| {
            let mut tx = c.begin().await?;
            let session = registration.session_id.0;
            let live = format!("{} FOR UPDATE", postgres(sql::LIVE_SESSION));
            if sqlx::query(&live).bind(session).bind(now).fetch_optional(&mut *tx).await?.is_none() {
                return Ok(false);
            }
            sqlx::query(&postgres(sql::DROP_QUEUED)).bind(session).execute(&mut *tx).await?;
            sql::bind_registration(sqlx::query(&postgres(sql::UPSERT_REGISTRATION)), registration, &address)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn unregister_push(&self, session: SessionId) -> Result<bool> {
        self.call(async |c| {
            let done = sqlx::query(&postgres(sql::DELETE_REGISTRATION)).bind(session.0).execute(c).await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn push_registrations(&self, who: &[Principal], now: Millis) -> Result<Vec<PushRegistration>> {
        let (users, agents) = sql::holders(who);
        let statement = format!(
            "{}s.expires_at > $1 AND (s.user_id = ANY($2) OR s.agent_id = ANY($3)){}",
            sql::registrations_where(),
            sql::REGISTRATIONS_ORDER
        );
        self.call(async |c| {
            let rows = sqlx::query_as::<_, RegistrationRow>(&statement)
                .bind(now)
                .bind(&users)
                .bind(&agents)
                .fetch_all(c)
                .await?;
            rows.into_iter().map(|r| r.open(&self.vault)).collect()
        })
        .await
    }

    async fn queue_pushes(&self, pushes: &[NewPush], reminders: &[NewReminder]) -> Result<()> {
        let (collapse, queue, plan) = (postgres(sql::COLLAPSE), postgres(sql::QUEUE), postgres(sql::PLAN_REMINDER));
        self.call(async |c| {
            let mut tx = c.begin().await?;
            for reminder in reminders {
                sql::bind_reminder(sqlx::query(&plan), reminder).execute(&mut *tx).await?;
            }
            for push in pushes {
                let collapsed = sql::bind_queued(sqlx::query(&collapse), push).execute(&mut *tx).await?;
                if collapsed.rows_affected() == 0 {
                    sql::bind_queued(sqlx::query(&queue), push)
                        .bind(push.due_at)
                        .bind(push.created_at)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn claim_pushes(&self, now: Millis, lease: Millis, limit: u32) -> Result<Vec<QueuedPush>> {
        let lease_due = postgres(&sql::lease_due("FOR UPDATE SKIP LOCKED"));
        let read = format!("{}= ANY($1) ORDER BY q.due_at, q.id", sql::queued_where());
        self.call(async |c| {
            let mut tx = c.begin().await?;
            let ids: Vec<i64> = sqlx::query_scalar(&lease_due)
                .bind(now)
                .bind(i64::from(limit))
                .bind(now + lease)
                .fetch_all(&mut *tx)
                .await?;
            let rows = if ids.is_empty() {
                Vec::new()
            } else {
                sqlx::query_as::<_, QueuedRow>(&read).bind(&ids).fetch_all(&mut *tx).await?
            };
            tx.commit().await?;
            rows.into_iter().map(|r| r.open(&self.vault)).collect()
        })
        .await
    }

    async fn finish_pushes(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let statement = format!("{}= ANY($1)", sql::FINISH);
        self.call(async |c| {
            sqlx::query(&statement).bind(ids).execute(c).await?;
            Ok(())
        })
        .await
    }

    async fn retry_push(&self, id: i64, due_at: Millis) -> Result<()> {
        self.call(async |c| {
            sqlx::query(&postgres(sql::RETRY)).bind(id).bind(due_at).execute(c).await?;
            Ok(())
        })
        .await
    }

    async fn registered_agents(&self, now: Millis) -> Result<Vec<AgentId>> {
        self.call(async |c| {
            let ids: Vec<uuid::Uuid> =
                sqlx::query_scalar(&postgres(sql::REGISTERED_AGENTS)).bind(now).fetch_all(c).await?;
            Ok(ids.into_iter().map(AgentId).collect())
        })
        .await
    }

    async fn unread_conversations(&self, user: UserId) -> Result<u32> {
        self.call(async |c| {
            let n: i64 = sqlx::query_scalar(&postgres(sql::UNREAD)).bind(user.0).fetch_one(c).await?;
            Ok(u32::try_from(n.max(0)).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn push_backlog(&self) -> Result<(u64, Option<Millis>)> {
        self.call(async |c| {
            let (count, oldest): (i64, Option<Millis>) = sqlx::query_as(sql::BACKLOG).fetch_one(c).await?;
            Ok((u64::try_from(count).unwrap_or(0), oldest))
        })
        .await
    }

    async fn claim_reminders(&self, now: Millis, lease: Millis, limit: u32) -> Result<Vec<DueReminder>> {
        let due = format!("{} FOR UPDATE SKIP LOCKED", postgres(sql::DUE_REMINDERS));
        let (lease_one, read_one) = (postgres(sql::LEASE_REMINDER), postgres(sql::DUE_REMINDER));
        self.call(async |c| {
            let mut tx = c.begin().await?;
            let tickets: Vec<uuid::Uuid> =
                sqlx::query_scalar(&due).bind(now).bind(i64::from(limit)).fetch_all(&mut *tx).await?;
            let mut claimed = Vec::with_capacity(tickets.len());
            for ticket in tickets {
                sqlx::query(&lease_one).bind(ticket).bind(now + lease).execute(&mut *tx).await?;
                let row =
                    sqlx::query_as::<_, ReminderRow>(&read_one).bind(ticket).bind(now).fetch_one(&mut *tx).await?;
                claimed.push(DueReminder::from(row));
            }
            tx.commit().await?;
            Ok(claimed)
        })
        .await
    }

    async fn settle_reminder(&self, ticket: TicketId, seq: u64, outcome: ReminderOutcome) -> Result<()> {
        let settle = postgres(sql::SETTLE_REMINDER);
        self.call(async |c| {
            sql::bind_settled(sqlx::query(&settle), ticket, seq, outcome).execute(c).await?;
            Ok(())
        })
        .await
    }
}
