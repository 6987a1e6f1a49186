//! [`Search`] on Postgres: the stored `simple` text search vectors of the folded texts (a GIN
//! index), ranked by `ts_rank`.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::search::{self as sql, HitRow};
use crate::adapters::sql::statements::postgres;
use crate::error::Result;
use crate::model::search::{SearchHit, SearchQuery};
use crate::ports::store::search::Search;
use async_trait::async_trait;
use sqlx::{Connection as _, Postgres, QueryBuilder};
use uuid::Uuid;

/// The `tsquery` of `words`: each a quoted prefix, all required.
fn ts_query(words: &[String]) -> String {
    words.iter().map(|w| format!("'{}':*", w.replace('\\', "\\\\").replace('\'', "''"))).collect::<Vec<_>>().join(" & ")
}

#[async_trait]
impl Search for PostgresStore {
    async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        let tsquery = ts_query(&query.words);
        self.call(async |c| {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "SELECT {} FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id \
                 WHERE e.search_vector @@ to_tsquery('simple', ",
                sql::HIT_COLUMNS
            ));
            q.push_bind(tsquery.as_str()).push(")");
            sql::push_filters(&mut q, query, "e.created_at");
            q.push(" ORDER BY ts_rank(e.search_vector, to_tsquery('simple', ")
                .push_bind(tsquery.as_str())
                .push(")) DESC, e.created_at DESC, e.ticket_id, e.seq");
            sql::push_page(&mut q, query);
            let rows = q.build_query_as::<HitRow>().fetch_all(c).await?;
            rows.into_iter().map(SearchHit::try_from).collect()
        })
        .await
    }

    async fn search_customers(&self, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        self.call(async |c| {
            let rows = sql::customers::<Postgres>(query).build_query_as::<HitRow>().fetch_all(c).await?;
            sql::customer_hits(rows)
        })
        .await
    }

    async fn index_unsearched(&self, limit: u32) -> Result<u64> {
        let (unsearched, set) = (postgres(sql::UNSEARCHED), postgres(sql::SET_SEARCH_TEXT));
        let (unsearched_names, set_name) = (postgres(sql::UNSEARCHED_NAMES), postgres(sql::SET_SEARCH_NAME));
        self.call(async |c| {
            let rows: Vec<(Uuid, i64, String)> =
                sqlx::query_as(&unsearched).bind(i64::from(limit)).fetch_all(&mut *c).await?;
            let names: Vec<(Uuid, String)> =
                sqlx::query_as(&unsearched_names).bind(i64::from(limit)).fetch_all(&mut *c).await?;
            let mut tx = c.begin().await?;
            for (ticket, seq, body) in &rows {
                sqlx::query(&set).bind(ticket).bind(seq).bind(crate::model::text::fold(body)).execute(&mut *tx).await?;
            }
            for (user, name) in &names {
                sqlx::query(&set_name).bind(user).bind(crate::model::text::fold(name)).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok((rows.len() + names.len()) as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn words_are_quoted_prefixes() {
        assert_eq!(super::ts_query(&["کارت".into(), "o'k".into()]), "'کارت':* & 'o''k':*");
    }
}
