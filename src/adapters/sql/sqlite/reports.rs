//! [`Reports`] on SQLite, from the read pool.

use crate::adapters::sql::rows::reports as sql;
use crate::adapters::sql::rows::EventRow;
use crate::adapters::sql::sqlite::SqliteStore;
use crate::error::Result;
use crate::model::ticket::TicketEvent;
use crate::ports::store::reports::{ReportScope, Reports};
use async_trait::async_trait;

#[async_trait]
impl Reports for SqliteStore {
    async fn report_events(&self, scope: ReportScope) -> Result<Vec<TicketEvent>> {
        let rows: Vec<EventRow> = match scope {
            ReportScope::Since(since) => {
                sqlx::query_as(&sql::events(sql::SINCE, sql::FIRST_RESPONSE_SQLITE))
                    .bind(since)
                    .fetch_all(&self.readers)
                    .await?
            }
            ReportScope::Ticket(id) => {
                sqlx::query_as(&sql::events("SELECT ?1", sql::FIRST_RESPONSE_SQLITE))
                    .bind(id.0)
                    .fetch_all(&self.readers)
                    .await?
            }
        };
        Ok(sql::in_order(rows.into_iter().map(TicketEvent::try_from).collect::<Result<_>>()?))
    }
}
