//! [`EventMonths`] on SQLite: its events are one table, with no months to prepare or drop (the
//! configuration refuses an event retention on SQLite).

use crate::adapters::sql::sqlite::SqliteStore;
use crate::error::Result;
use crate::model::time::Millis;
use crate::ports::store::history::EventMonths;
use async_trait::async_trait;

#[async_trait]
impl EventMonths for SqliteStore {
    async fn prepare_event_months(&self, _now: Millis, _ahead: u32) -> Result<u32> {
        Ok(0)
    }

    async fn drop_event_months(&self, _before: Millis) -> Result<u32> {
        Ok(0)
    }
}
