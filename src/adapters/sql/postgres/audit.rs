//! [`Audit`] on Postgres.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::audit::{self as sql, AuditRow};
use crate::adapters::sql::statements::postgres;
use crate::error::Result;
use crate::model::audit::AuditEntry;
use crate::model::ids::UserId;
use crate::model::time::Millis;
use crate::ports::store::audit::Audit;
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl Audit for PostgresStore {
    async fn record(&self, entry: &AuditEntry) -> Result<()> {
        let insert = postgres(sql::INSERT);
        self.call(async |c| {
            sqlx::query(&insert)
                .bind(entry.id)
                .bind(entry.at)
                .bind(entry.actor.as_str())
                .bind(entry.actor_id)
                .bind(&entry.action)
                .bind(entry.object_id)
                .bind(entry.user_id)
                .bind(sql::detail_text(entry))
                .execute(c)
                .await?;
            Ok(())
        })
        .await
    }

    async fn audit_entries(
        &self,
        from: Millis,
        to: Millis,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let page = postgres(&sql::page());
        self.call(async |c| {
            let rows = sqlx::query_as::<_, AuditRow>(&page)
                .bind(from)
                .bind(to)
                .bind(after.unwrap_or(Uuid::nil()))
                .bind(i64::from(limit))
                .fetch_all(c)
                .await?;
            rows.into_iter().map(AuditEntry::try_from).collect()
        })
        .await
    }

    async fn user_audit_entries(&self, user: UserId) -> Result<Vec<AuditEntry>> {
        let of_user = postgres(&sql::of_user());
        self.call(async |c| {
            let rows = sqlx::query_as::<_, AuditRow>(&of_user).bind(user.0).fetch_all(c).await?;
            rows.into_iter().map(AuditEntry::try_from).collect()
        })
        .await
    }

    async fn forget_user_audit(&self, user: UserId) -> Result<u64> {
        let forget = postgres(sql::FORGET_USER);
        self.call(async |c| Ok(sqlx::query(&forget).bind(user.0).execute(c).await?.rows_affected())).await
    }

    async fn purge_audit(&self, before: Millis) -> Result<u64> {
        let purge = postgres(sql::PURGE);
        self.call(async |c| Ok(sqlx::query(&purge).bind(before).execute(c).await?.rows_affected())).await
    }
}
