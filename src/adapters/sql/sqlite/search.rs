//! [`Search`] on SQLite: an FTS5 index (unicode61 words) over the folded texts, ranked by BM25.

use crate::adapters::sql::rows::search::{self as sql, HitRow};
use crate::adapters::sql::sqlite::SqliteStore;
use crate::error::Result;
use crate::model::search::{SearchHit, SearchQuery};
use crate::ports::store::search::Search;
use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

/// The FTS5 query of `words`: each a quoted prefix, all required.
fn fts_query(words: &[String]) -> String {
    words.iter().map(|w| format!("\"{}\"*", w.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
}

/// Customers' names: the FTS5 trigram table the users' triggers keep (`customer_names`, each
/// name with a space before it, under its user's rowid), whose index answers `LIKE` patterns of
/// three characters or more; it takes no `ESCAPE` clause.
const NAMES: sql::Names =
    sql::Names { from: "customer_names n JOIN users u ON u.rowid = n.rowid", name: "n.name", escape: false };

#[async_trait]
impl Search for SqliteStore {
    /// The newest matches (see [`SearchQuery::ranked`]) are read from the index newest first (by
    /// rowid, the order the events were stored in, which FTS5 reads its lists in) until there are
    /// enough; only those are ranked and paged.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "WITH newest AS (SELECT s.rowid AS event, bm25(ticket_search) AS rank FROM ticket_search s \
             JOIN ticket_events e ON e.rowid = s.rowid JOIN tickets t ON t.id = e.ticket_id WHERE ticket_search MATCH ",
        );
        q.push_bind(fts_query(&query.words));
        sql::push_subject(&mut q, query);
        sql::push_filters(&mut q, query, "e.created_at");
        q.push(" ORDER BY s.rowid DESC LIMIT ").push_bind(i64::from(query.ranked));
        q.push(format!(
            ") SELECT {} FROM newest n JOIN ticket_events e ON e.rowid = n.event JOIN tickets t ON t.id = e.ticket_id \
             ORDER BY n.rank, e.created_at DESC, e.ticket_id, e.seq",
            sql::HIT_COLUMNS
        ));
        sql::push_page(&mut q, query);
        let rows = q.build_query_as::<HitRow>().fetch_all(&self.readers).await?;
        rows.into_iter().map(SearchHit::try_from).collect()
    }

    async fn search_customers(&self, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        let rows = sql::customers::<Sqlite>(query, &NAMES).build_query_as::<HitRow>().fetch_all(&self.readers).await?;
        sql::customer_hits(rows)
    }

    async fn index_unsearched(&self, limit: u32) -> Result<u64> {
        let rows: Vec<(Uuid, i64, i64, String)> =
            sqlx::query_as(sql::UNSEARCHED).bind(i64::from(limit)).fetch_all(&self.readers).await?;
        let names: Vec<(Uuid, String)> =
            sqlx::query_as(sql::UNSEARCHED_NAMES).bind(i64::from(limit)).fetch_all(&self.readers).await?;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // One table, not months: the key alone finds the row.
        for (ticket, seq, _at, body) in &rows {
            sqlx::query(sql::SET_SEARCH_TEXT)
                .bind(ticket)
                .bind(seq)
                .bind(crate::model::text::fold(body))
                .execute(&mut *tx)
                .await?;
        }
        for (user, name) in &names {
            sqlx::query(sql::SET_SEARCH_NAME).bind(user).bind(crate::model::text::fold(name)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok((rows.len() + names.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn words_are_quoted_prefixes() {
        assert_eq!(super::fts_query(&["کارت".into(), "tx\"1".into()]), "\"کارت\"* \"tx\"\"1\"*");
    }
}
