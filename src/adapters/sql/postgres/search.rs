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

/// The longest word a `tsvector` holds (Postgres refuses a longer one, where `to_tsvector` skips it).
const MAX_WORD_BYTES: usize = 2047;
/// The last position a `tsvector` tells apart (Postgres stores larger ones as this).
const MAX_POSITION: usize = 16_383;

/// The `tsvector` (as text, for Postgres to read) of a [`search_text`](crate::adapters::sql::rows::search_text):
/// its [`words`](crate::model::text::words) with their positions. The hub splits the words, as
/// it splits the queries ([`ts_query`]), instead of leaving it to `to_tsvector`: Postgres' parser
/// makes one word of an address or a number (`a.b@example.com`, `1234.56`) and a negative number of
/// the `-99` in `TX-99`, which a query split into `tx` and `99` does not find. SQLite's index
/// splits the texts this way too.
pub(super) fn search_vector(search_text: &str) -> String {
    use std::fmt::Write as _;
    let mut vector = String::with_capacity(search_text.len() + search_text.len() / 2);
    let mut position = 0;
    for word in crate::model::text::words(search_text) {
        position += 1;
        if word.len() > MAX_WORD_BYTES {
            continue;
        }
        if !vector.is_empty() {
            vector.push(' ');
        }
        push_lexeme(&mut vector, word);
        // Writing to a `String` cannot fail.
        let _ = write!(vector, ":{}", position.min(MAX_POSITION));
    }
    vector
}

/// Sets event (`$1` ticket, `$2` seq, stored at `$3`: its month)'s search vector `$4` (see
/// [`search_vector`]) and folded text `$5`.
const SET_SEARCH: &str = "UPDATE ticket_events SET search_vector = $4::tsvector, search_text = $5
     WHERE ticket_id = $1 AND seq = $2 AND created_at = $3";

/// Appends `word` quoted as a `tsvector` or `tsquery` lexeme: in single quotes, with a quote or a
/// backslash in it doubled. Words are letters and digits, so the doubling never happens; the
/// quotes keep a word that reads like an operator a word.
fn push_lexeme(out: &mut String, word: &str) {
    out.push('\'');
    for c in word.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
}

/// The `tsquery` of `words`: each a quoted prefix, all required.
fn ts_query(words: &[String]) -> String {
    let mut query = String::new();
    for word in words {
        if !query.is_empty() {
            query.push_str(" & ");
        }
        push_lexeme(&mut query, word);
        query.push_str(":*");
    }
    query
}

/// The months of `ticket_events` (see the migration that partitions it), each as the bounds
/// `low` (inclusive) and `high` (exclusive) of its partition, read from the catalog: the months
/// that exist, however far back, and none that do not.
const MONTHS: &str =
    "SELECT substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \\(''?(-?[0-9]+)''?\\)')::BIGINT AS low,
            substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''?(-?[0-9]+)''?\\)')::BIGINT AS high
     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'ticket_events'::regclass";

/// Customers' names: the users' own column, which a trigram index of `' ' || search_name` serves
/// where `pg_trgm` could be installed (see the migration that makes it).
const NAMES: sql::Names = sql::Names { from: "users u", name: "(' ' || u.search_name)", escape: true };

/// Appends the newest matches of `query` in `events` (the events' table or one of its partitions),
/// those within `bounds` (an SQL condition on `e.created_at`), newest first, at most
/// `query.ranked`.
fn push_newest<'a>(
    q: &mut QueryBuilder<'a, Postgres>,
    query: &'a SearchQuery,
    tsquery: &'a str,
    events: &str,
    bounds: &str,
) {
    q.push(format!(
        "SELECT e.ticket_id, e.seq, e.body, e.created_at, e.search_vector \
         FROM {events} e JOIN tickets t ON t.id = e.ticket_id \
         WHERE e.search_vector @@ to_tsquery('simple', "
    ));
    q.push_bind(tsquery).push(")").push(bounds);
    sql::push_subject(q, query);
    sql::push_filters(q, query, "e.created_at");
    q.push(" ORDER BY e.created_at DESC LIMIT ").push_bind(i64::from(query.ranked));
}

#[async_trait]
impl Search for PostgresStore {
    /// The newest matches (see [`SearchQuery::ranked`]) are read month by month, newest month
    /// first, each month's own newest first, until there are enough: a month is one partition, read
    /// through its text index, and the months after the one that completes the set are not read
    /// at all. A common word thus costs what its matches in the last month or two cost, not what
    /// its matches in the whole history do; a rare one still looks in every month's index. The
    /// events outside every month (`ticket_events_default`: a clock far off) come last. Only those
    /// matches are ranked and paged.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        let tsquery = ts_query(&query.words);
        self.call(async |c| {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "WITH months AS MATERIALIZED ({MONTHS}), newest AS ( \
                 (SELECT m.* FROM (SELECT low, high FROM months WHERE high IS NOT NULL ORDER BY high DESC) AS r, LATERAL ("
            ));
            push_newest(&mut q, query, &tsquery, "ticket_events", " AND e.created_at >= r.low AND e.created_at < r.high");
            q.push(") AS m) UNION ALL (");
            push_newest(&mut q, query, &tsquery, "ticket_events_default", "");
            q.push(") LIMIT ").push_bind(i64::from(query.ranked));
            q.push(format!(") SELECT {} FROM newest e JOIN tickets t ON t.id = e.ticket_id", sql::HIT_COLUMNS));
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
            let rows = sql::customers::<Postgres>(query, &NAMES).build_query_as::<HitRow>().fetch_all(c).await?;
            sql::customer_hits(rows)
        })
        .await
    }

    async fn index_unsearched(&self, limit: u32) -> Result<u64> {
        let unsearched = postgres(sql::UNSEARCHED) + sql::SKIP_LOCKED;
        let unsearched_names = postgres(sql::UNSEARCHED_NAMES) + sql::SKIP_LOCKED;
        let set_name = postgres(sql::SET_SEARCH_NAME);
        self.call(async |c| {
            let mut tx = c.begin().await?;
            let rows: Vec<(Uuid, i64, i64, String)> =
                sqlx::query_as(&unsearched).bind(i64::from(limit)).fetch_all(&mut *tx).await?;
            let names: Vec<(Uuid, String)> =
                sqlx::query_as(&unsearched_names).bind(i64::from(limit)).fetch_all(&mut *tx).await?;
            for (ticket, seq, at, body) in &rows {
                let text = crate::model::text::fold(body);
                sqlx::query(SET_SEARCH)
                    .bind(ticket)
                    .bind(seq)
                    .bind(at)
                    .bind(search_vector(&text))
                    .bind(text)
                    .execute(&mut *tx)
                    .await?;
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
    fn a_text_is_indexed_by_the_words_a_query_is_split_into() {
        assert_eq!(
            super::search_vector("refund tx-99, a.b@example.com"),
            "'refund':1 'tx':2 '99':3 'a':4 'b':5 'example':6 'com':7"
        );
        assert_eq!(super::search_vector("کارت بانکی ۱۲۳"), "'کارت':1 'بانکی':2 '۱۲۳':3");
        assert_eq!(super::search_vector(" ؟! "), "");
        let long = format!("{} next", "x".repeat(super::MAX_WORD_BYTES + 1));
        assert_eq!(super::search_vector(&long), "'next':2", "a word too long for Postgres is left out");
        let many = "w ".repeat(super::MAX_POSITION + 5);
        assert!(super::search_vector(&many).ends_with("'w':16383"));
    }

    #[test]
    fn words_are_quoted_prefixes() {
        assert_eq!(super::ts_query(&["کارت".into(), "o'k".into()]), "'کارت':* & 'o''k':*");
    }
}
