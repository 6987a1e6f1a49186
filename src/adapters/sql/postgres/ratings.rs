//! [`Ratings`] on Postgres: a rating is one guarded `INSERT ... SELECT`.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::ratings::{self as sql, RatingRow};
use crate::adapters::sql::rows::stored_seq;
use crate::adapters::sql::statements::postgres;
use crate::error::Result;
use crate::model::ids::{TicketId, UserId};
use crate::model::rating::{Rated, Rating};
use crate::model::time::Millis;
use crate::ports::store::ratings::Ratings;
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl Ratings for PostgresStore {
    async fn rate(&self, rating: &Rating) -> Result<Rated> {
        let (rate, one) = (postgres(sql::RATE), postgres(sql::ONE));
        let (seq, score, comment, at) = sql::rate_args(rating);
        self.call(async |c| {
            let stored = sqlx::query_as::<_, RatingRow>(&rate)
                .bind(rating.ticket_id.0)
                .bind(seq)
                .bind(score)
                .bind(comment)
                .bind(at)
                .fetch_optional(&mut *c)
                .await?;
            if let Some(row) = stored {
                return Ok(Rated::Stored(Rating::try_from(row)?));
            }
            let earlier = sqlx::query_as::<_, RatingRow>(&one)
                .bind(rating.ticket_id.0)
                .bind(stored_seq(rating.resolution_seq))
                .fetch_optional(&mut *c)
                .await?;
            Ok(match earlier {
                Some(row) => Rated::Earlier(Rating::try_from(row)?),
                None => Rated::NotResolved,
            })
        })
        .await
    }

    async fn ratings(&self, tickets: &[TicketId]) -> Result<Vec<Rating>> {
        let ids: Vec<Uuid> = tickets.iter().map(|t| t.0).collect();
        let statement = format!("{}= ANY($1){}", sql::OF_TICKETS, sql::OF_TICKETS_ORDER);
        self.call(async |c| {
            let rows: Vec<RatingRow> = sqlx::query_as(&statement).bind(&ids).fetch_all(c).await?;
            rows.into_iter().map(Rating::try_from).collect()
        })
        .await
    }

    async fn unrated(&self, user: UserId, resolved_after: Millis) -> Result<Vec<(TicketId, u64, Millis)>> {
        let statement = postgres(sql::UNRATED);
        self.call(async |c| {
            let rows = sqlx::query_as(&statement).bind(user.0).bind(resolved_after).fetch_all(c).await?;
            sql::unrated(rows)
        })
        .await
    }
}
