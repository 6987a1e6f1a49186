//! Ratings: when an agent resolves a ticket its user's apps are asked how satisfied the user was;
//! the user answers 1 to 5 with an optional comment, once per resolution, until the request lapses
//! (`rating_expiry_secs` after the resolution) or the user reopens the ticket. A ticket resolved
//! again asks again. Agents see every rating of a ticket; reports credit it to the agent who
//! resolved the ticket.

use super::TicketDesk;
use crate::error::{Error, Result, SizeUnit};
use crate::model::event::Event;
use crate::model::ids::{Principal, TicketId};
use crate::model::rating::{Rated, Rating, RatingRequest, MAX_COMMENT_CHARS, SCORES};
use crate::model::ticket::{Ticket, TicketStatus};
use crate::model::time::{now_ms, Millis};
use crate::ports::broker::{Audience, Broadcast};

impl TicketDesk {
    /// The request that resolving `ticket` makes, when ratings are on.
    fn rating_request(&self, ticket: &Ticket) -> Option<RatingRequest> {
        let window = self.rating_window?;
        (ticket.status == TicketStatus::Resolved).then(|| RatingRequest {
            ticket_id: ticket.id,
            resolution_seq: ticket.last_seq,
            expires_at: expiry(ticket.updated_at, window),
        })
    }

    /// Asks the user's apps to rate the resolution `ticket` has just had (when ratings are on).
    pub(super) fn ask_for_rating(&self, ticket: &Ticket) {
        if let Some(request) = self.rating_request(ticket) {
            let principals = [Principal::User(ticket.user_id)];
            self.broker
                .publish(&Audience { principals: &principals, ..Audience::default() }, Event::RatingRequested(request));
        }
    }

    /// The user rates resolution `resolution_seq` of their ticket: `score` 1 to 5, a comment of at
    /// most 1000 characters (blank: none). Sending the same rating again answers the stored one;
    /// a different one for a rated resolution is refused. Every agent's console and the user's
    /// other apps are told.
    ///
    /// # Errors
    /// `forbidden` (agents, another user's ticket), `bad_request` (score), `too_large` (comment),
    /// `not_found`, `wrong_state` (ratings off, not resolved at that seq, expired, rated
    /// differently), `unavailable`.
    pub async fn rate(
        &self,
        who: Principal,
        id: TicketId,
        resolution_seq: u64,
        score: u8,
        comment: Option<&str>,
    ) -> Result<Rating> {
        let Principal::User(_) = who else { return Err(Error::Forbidden) };
        if !SCORES.contains(&score) {
            return Err(Error::BadRequest("score must be 1 to 5".into()));
        }
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        crate::model::text::refuse_nul("comment", comment.unwrap_or_default())?;
        if let Some(n) = comment.map(|c| c.chars().count()).filter(|n| *n > MAX_COMMENT_CHARS) {
            return Err(Error::TooLarge {
                what: "comment",
                size: Some(n),
                limit: MAX_COMMENT_CHARS,
                unit: SizeUnit::Characters,
            });
        }
        let ticket = self.visible_ticket(who, id).await?;
        let Some(window) = self.rating_window else { return Err(Error::WrongState("ratings are off")) };
        if ticket.status != TicketStatus::Resolved || ticket.last_seq != resolution_seq {
            return Err(Error::WrongState("that resolution can no longer be rated"));
        }
        let now = now_ms();
        if now >= expiry(ticket.updated_at, window) {
            return Err(Error::WrongState("the rating request has expired"));
        }
        let rating = Rating {
            ticket_id: id,
            resolution_seq,
            agent_id: ticket.agent_id,
            score,
            comment: comment.map(str::to_owned),
            rated_at: now,
        };
        match self.ratings.rate(&rating).await? {
            Rated::Stored(rating) => {
                metrics::counter!(crate::metrics::RATINGS, "score" => score.to_string()).increment(1);
                let principals = [Principal::User(ticket.user_id)];
                let audience =
                    Audience { principals: &principals, broadcast: Some(Broadcast::Agents), ..Audience::default() };
                self.broker.publish(&audience, Event::TicketRated(rating.clone()));
                Ok(rating)
            }
            Rated::Earlier(earlier) if earlier.score == score && earlier.comment.as_deref() == comment => Ok(earlier),
            Rated::Earlier(_) => Err(Error::WrongState("that resolution is rated already")),
            Rated::NotResolved => Err(Error::WrongState("that resolution can no longer be rated")),
        }
    }

    /// The resolutions the user may still rate, oldest first (an app asks on start, so a request
    /// made while it was closed is not missed).
    ///
    /// # Errors
    /// `forbidden` for agents, `unavailable`.
    pub async fn rating_requests(&self, who: Principal) -> Result<Vec<RatingRequest>> {
        let Principal::User(user) = who else { return Err(Error::Forbidden) };
        let Some(window) = self.rating_window else { return Ok(Vec::new()) };
        let now = now_ms();
        let after = now.saturating_sub(i64::try_from(window).unwrap_or(i64::MAX));
        let unrated = self.ratings.unrated(user, after).await?;
        Ok(unrated
            .into_iter()
            .map(|(ticket_id, resolution_seq, resolved_at)| RatingRequest {
                ticket_id,
                resolution_seq,
                expires_at: expiry(resolved_at, window),
            })
            .filter(|r| r.expires_at > now)
            .collect())
    }

    /// Every rating of a ticket, by resolution: for agents, and for the ticket's user.
    ///
    /// # Errors
    /// As [`TicketDesk::visible_ticket`].
    pub async fn ticket_ratings(&self, who: Principal, id: TicketId) -> Result<Vec<Rating>> {
        self.visible_ticket(who, id).await?;
        self.ratings.ratings(&[id]).await
    }
}

/// When a request made at `resolved_at` lapses, `window` ms later.
fn expiry(resolved_at: Millis, window: u64) -> Millis {
    resolved_at.saturating_add(i64::try_from(window).unwrap_or(i64::MAX))
}
