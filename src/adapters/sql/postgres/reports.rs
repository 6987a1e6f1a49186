//! [`Reports`] on Postgres.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::reports as sql;
use crate::adapters::sql::rows::EventRow;
use crate::adapters::sql::statements::postgres;
use crate::error::Result;
use crate::model::ticket::TicketEvent;
use crate::ports::store::reports::{ReportScope, Reports};
use async_trait::async_trait;

#[async_trait]
impl Reports for PostgresStore {
    async fn report_events(&self, scope: ReportScope) -> Result<Vec<TicketEvent>> {
        let (statement, since, ticket) = match scope {
            ReportScope::Since(since) => {
                (postgres(&sql::events(sql::SINCE, sql::FIRST_RESPONSE_POSTGRES)), Some(since), None)
            }
            ReportScope::Ticket(id) => {
                (postgres(&sql::events("SELECT ?1::uuid", sql::FIRST_RESPONSE_POSTGRES)), None, Some(id.0))
            }
        };
        self.call(async |c| {
            let query = sqlx::query_as::<_, EventRow>(&statement);
            let query = match (since, ticket) {
                (Some(since), _) => query.bind(since),
                (None, ticket) => query.bind(ticket),
            };
            let rows = query.fetch_all(c).await?;
            Ok(sql::in_order(rows.into_iter().map(TicketEvent::try_from).collect::<Result<_>>()?))
        })
        .await
    }
}
