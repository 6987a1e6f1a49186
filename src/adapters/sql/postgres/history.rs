//! [`EventMonths`] on Postgres: `ticket_events` is partitioned by month, and the functions that add
//! and drop its partitions live in the schema (migration 0023), beside the table they shape, so that
//! the migration and the hub name and bound a month the same way.

use crate::adapters::sql::postgres::PostgresStore;
use crate::error::Result;
use crate::model::time::Millis;
use crate::ports::store::history::EventMonths;
use async_trait::async_trait;
use sqlx::Connection as _;

/// Adding or dropping a partition locks the whole table for a moment, and waits for every reader
/// and writer of it to finish first; meanwhile new ones queue behind it. Past this wait it gives up
/// (and tries again on the next round) rather than hold the messages up.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '2s'";

#[async_trait]
impl EventMonths for PostgresStore {
    async fn prepare_event_months(&self, now: Millis, ahead: u32) -> Result<u32> {
        let ahead = i32::try_from(ahead).unwrap_or(i32::MAX);
        self.call(async |c| {
            let mut tx = c.begin().await?;
            sqlx::query(LOCK_TIMEOUT).execute(&mut *tx).await?;
            let created: i32 = sqlx::query_scalar("SELECT ticket_events_add_months($1, $2)")
                .bind(now)
                .bind(ahead)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(created.unsigned_abs())
        })
        .await
    }

    async fn drop_event_months(&self, before: Millis) -> Result<u32> {
        self.call(async |c| {
            let mut tx = c.begin().await?;
            sqlx::query(LOCK_TIMEOUT).execute(&mut *tx).await?;
            let dropped: Vec<String> =
                sqlx::query_scalar("SELECT ticket_events_drop_months($1)").bind(before).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            for month in &dropped {
                tracing::info!(partition = %month, "dropped a month of ticket events past its retention");
            }
            Ok(u32::try_from(dropped.len()).unwrap_or(u32::MAX))
        })
        .await
    }
}
