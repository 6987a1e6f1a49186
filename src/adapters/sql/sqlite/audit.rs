//! [`Audit`] on SQLite.

use crate::adapters::sql::rows::audit::{self as sql, AuditRow};
use crate::adapters::sql::sqlite::SqliteStore;
use crate::error::Result;
use crate::model::audit::AuditEntry;
use crate::model::ids::UserId;
use crate::model::time::Millis;
use crate::ports::store::audit::Audit;
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl Audit for SqliteStore {
    async fn record(&self, entry: &AuditEntry) -> Result<()> {
        sqlx::query(sql::INSERT)
            .bind(entry.id)
            .bind(entry.at)
            .bind(entry.actor.as_str())
            .bind(entry.actor_id)
            .bind(&entry.action)
            .bind(entry.object_id)
            .bind(entry.user_id)
            .bind(sql::detail_text(entry))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn audit_entries(
        &self,
        from: Millis,
        to: Millis,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query_as::<_, AuditRow>(&sql::page())
            .bind(from)
            .bind(to)
            .bind(after.unwrap_or(Uuid::nil()))
            .bind(limit)
            .fetch_all(&self.readers)
            .await?;
        rows.into_iter().map(AuditEntry::try_from).collect()
    }

    async fn user_audit_entries(&self, user: UserId) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query_as::<_, AuditRow>(&sql::of_user()).bind(user.0).fetch_all(&self.readers).await?;
        rows.into_iter().map(AuditEntry::try_from).collect()
    }

    async fn forget_user_audit(&self, user: UserId) -> Result<u64> {
        Ok(sqlx::query(sql::FORGET_USER).bind(user.0).execute(&self.writer).await?.rows_affected())
    }

    async fn purge_audit(&self, before: Millis) -> Result<u64> {
        Ok(sqlx::query(sql::PURGE).bind(before).execute(&self.writer).await?.rows_affected())
    }
}
