//! [`Ratings`] on SQLite: a rating is one guarded `INSERT ... SELECT` on the writer.

use crate::adapters::sql::rows::ratings::{self as sql, RatingRow};
use crate::adapters::sql::rows::stored_seq;
use crate::adapters::sql::sqlite::{in_list, SqliteStore};
use crate::adapters::sql::statements::INSERT_CHUNK;
use crate::error::Result;
use crate::model::ids::{TicketId, UserId};
use crate::model::rating::{Rated, Rating};
use crate::model::time::Millis;
use crate::ports::store::ratings::Ratings;
use async_trait::async_trait;

#[async_trait]
impl Ratings for SqliteStore {
    async fn rate(&self, rating: &Rating) -> Result<Rated> {
        let (seq, score, comment, at) = sql::rate_args(rating);
        let stored = sqlx::query_as::<_, RatingRow>(sql::RATE)
            .bind(rating.ticket_id.0)
            .bind(seq)
            .bind(score)
            .bind(comment)
            .bind(at)
            .fetch_optional(&self.writer)
            .await?;
        if let Some(row) = stored {
            return Ok(Rated::Stored(Rating::try_from(row)?));
        }
        let earlier = sqlx::query_as::<_, RatingRow>(sql::ONE)
            .bind(rating.ticket_id.0)
            .bind(stored_seq(rating.resolution_seq))
            .fetch_optional(&self.writer)
            .await?;
        Ok(match earlier {
            Some(row) => Rated::Earlier(Rating::try_from(row)?),
            None => Rated::NotResolved,
        })
    }

    async fn ratings(&self, tickets: &[TicketId]) -> Result<Vec<Rating>> {
        let mut ratings = Vec::new();
        for chunk in tickets.chunks(INSERT_CHUNK) {
            let mut query = in_list(sql::OF_TICKETS, chunk.iter().map(|t| t.0), sql::OF_TICKETS_ORDER);
            for row in query.build_query_as::<RatingRow>().fetch_all(&self.readers).await? {
                ratings.push(Rating::try_from(row)?);
            }
        }
        Ok(ratings)
    }

    async fn unrated(&self, user: UserId, resolved_after: Millis) -> Result<Vec<(TicketId, u64, Millis)>> {
        let rows = sqlx::query_as(sql::UNRATED).bind(user.0).bind(resolved_after).fetch_all(&self.readers).await?;
        sql::unrated(rows)
    }
}
