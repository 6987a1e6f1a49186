//! Rows of `ticket_ratings`, and the statements both backends run on them (`?N` placeholders;
//! Postgres spells them `$N`).

use crate::adapters::sql::rows::{seq, stored_seq};
use crate::error::{Error, Result};
use crate::model::ids::{AgentId, TicketId};
use crate::model::rating::Rating;
use crate::model::time::Millis;
use uuid::Uuid;

/// Rates resolution `?2` of ticket `?1` with score `?3`, comment `?4`, at `?5`, crediting the
/// agent who resolved it; nothing when the ticket is not resolved at that seq or the resolution
/// is rated already. Returns the stored row.
pub(in crate::adapters::sql) const RATE: &str = "INSERT INTO ticket_ratings \
     (ticket_id, resolution_seq, agent_id, score, comment, rated_at) \
     SELECT id, last_seq, agent_id, ?3, ?4, ?5 FROM tickets WHERE id = ?1 AND status = 'resolved' AND last_seq = ?2 \
     ON CONFLICT (ticket_id, resolution_seq) DO NOTHING \
     RETURNING ticket_id, resolution_seq, agent_id, score, comment, rated_at";

/// The rating of resolution `?2` of ticket `?1`.
pub(in crate::adapters::sql) const ONE: &str = "SELECT ticket_id, resolution_seq, agent_id, score, comment, rated_at \
     FROM ticket_ratings WHERE ticket_id = ?1 AND resolution_seq = ?2";

/// The ratings of some tickets: the backend appends its way of naming them.
pub(in crate::adapters::sql) const OF_TICKETS: &str =
    "SELECT ticket_id, resolution_seq, agent_id, score, comment, rated_at FROM ticket_ratings WHERE ticket_id ";

/// Follows [`OF_TICKETS`].
pub(in crate::adapters::sql) const OF_TICKETS_ORDER: &str = " ORDER BY ticket_id, resolution_seq";

/// User `?1`'s tickets resolved after `?2` whose latest resolution is unrated. A resolved ticket's
/// `updated_at` is its resolution's time (any later event reopens it).
pub(in crate::adapters::sql) const UNRATED: &str = "SELECT t.id, t.last_seq, t.updated_at FROM tickets t \
     WHERE t.user_id = ?1 AND t.status = 'resolved' AND t.updated_at > ?2 \
     AND NOT EXISTS (SELECT 1 FROM ticket_ratings r WHERE r.ticket_id = t.id AND r.resolution_seq = t.last_seq) \
     ORDER BY t.updated_at, t.id";

/// The arguments of [`RATE`], in order after the ticket: the seq, score, comment and time.
pub(in crate::adapters::sql) fn rate_args(rating: &Rating) -> (i64, i64, Option<&str>, Millis) {
    (stored_seq(rating.resolution_seq), i64::from(rating.score), rating.comment.as_deref(), rating.rated_at)
}

/// `ticket_ratings`: every column, as the statements here select them.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct RatingRow {
    ticket_id: Uuid,
    resolution_seq: i64,
    agent_id: Option<Uuid>,
    score: i64,
    comment: Option<String>,
    rated_at: Millis,
}

impl TryFrom<RatingRow> for Rating {
    type Error = Error;

    fn try_from(r: RatingRow) -> Result<Self> {
        Ok(Self {
            ticket_id: TicketId(r.ticket_id),
            resolution_seq: seq(r.resolution_seq, "ticket_ratings.resolution_seq")?,
            agent_id: r.agent_id.map(AgentId),
            score: u8::try_from(r.score)
                .map_err(|_| Error::Internal(format!("ticket_ratings.score out of range ({})", r.score)))?,
            comment: r.comment,
            rated_at: r.rated_at,
        })
    }
}

/// Unrated resolutions as read by [`UNRATED`].
pub(in crate::adapters::sql) fn unrated(rows: Vec<(Uuid, i64, Millis)>) -> Result<Vec<(TicketId, u64, Millis)>> {
    rows.into_iter().map(|(id, last, at)| Ok((TicketId(id), seq(last, "tickets.last_seq")?, at))).collect()
}
