//! Ratings: after each resolution of a ticket its user may say, once, how satisfied they were.
//!
//! A rating request is not stored: it is the ticket's latest resolution while the ticket stays
//! resolved and the request's time has not run out. A resolved ticket's last event is its
//! `resolved` event (only its user can add to it, and that reopens it), so the request is named by
//! the ticket and that event's seq.

use crate::model::ids::{AgentId, TicketId};
use crate::model::time::Millis;
use serde::{Deserialize, Serialize};

/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;
/// The scores a rating may give, worst to best.
pub const SCORES: std::ops::RangeInclusive<u8> = 1..=5;

/// A user's rating of one resolution of their ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The seq of the `resolved` event it rates.
    pub resolution_seq: u64,
    /// The agent who resolved the ticket then (credited with the rating).
    pub agent_id: Option<AgentId>,
    /// 1 (worst) to 5 (best).
    pub score: u8,
    /// The user's words, if any (trimmed, at most [`MAX_COMMENT_CHARS`]).
    pub comment: Option<String>,
    /// When it was given.
    pub rated_at: Millis,
}

/// A resolution its user may still rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingRequest {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The seq of its `resolved` event.
    pub resolution_seq: u64,
    /// When the request lapses.
    pub expires_at: Millis,
}

/// The outcome of storing a rating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rated {
    /// Stored now.
    Stored(Rating),
    /// That resolution was rated before: the rating stored then.
    Earlier(Rating),
    /// The ticket is gone, or no longer resolved at that seq (its user reopened it).
    NotResolved,
}
