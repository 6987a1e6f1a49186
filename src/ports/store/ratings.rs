//! The storage port for users' ratings of their tickets' resolutions.

use crate::error::Result;
use crate::model::ids::{TicketId, UserId};
use crate::model::rating::{Rated, Rating};
use crate::model::time::Millis;
use async_trait::async_trait;

/// Ratings, one per resolution of a ticket.
#[async_trait]
pub trait Ratings: Send + Sync {
    /// Stores `rating` (its `agent_id` is taken from the ticket: the agent who resolved it) if the
    /// ticket is still resolved at `rating.resolution_seq`; the rating stored before when that
    /// resolution was rated already.
    async fn rate(&self, rating: &Rating) -> Result<Rated>;

    /// The ratings of these tickets, by ticket and resolution.
    async fn ratings(&self, tickets: &[TicketId]) -> Result<Vec<Rating>>;

    /// The user's tickets resolved after `resolved_after` whose latest resolution is not rated:
    /// (ticket, the seq of its `resolved` event, when it was resolved), oldest first.
    async fn unrated(&self, user: UserId, resolved_after: Millis) -> Result<Vec<(TicketId, u64, Millis)>>;
}
