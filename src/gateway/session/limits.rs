//! The limits a socket lives within: the frame-rate budget, the bad-frame allowance, and the
//! timer (authentication deadline, pings and their pong timeout, session expiry).

use super::auth::EXPIRY_WARNING;
use super::commands::Transport;
use super::{Exit, Socket};
use crate::error::Error;
use crate::model::time::{now_ms, Millis};
use crate::protocol;
use crate::protocol::{CloseCode, WireError};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// A token bucket: `rate` frames per second sustained, `burst` at once (both from the
/// configuration, passed in rather than kept: every byte of a socket counts at 20,000 sockets).
pub(super) struct FrameBudget {
    pub(super) tokens: f64,
    pub(super) last: Instant,
}

impl FrameBudget {
    /// Takes one frame's token; false when the budget is spent.
    pub(super) fn take(&mut self, now: Instant, rate: f64, burst: f64) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl<S: Transport> Socket<S> {
    /// The earliest moment the timer has something to do.
    pub(super) fn next_deadline(&mut self) -> Instant {
        let cfg = &self.hub.config;
        let next = match self.ping_sent {
            Some(sent) => sent + Duration::from_millis(cfg.pong_timeout_ms),
            None => self.next_ping,
        };
        let Some(a) = &self.authed else {
            return next.min(self.opened + Duration::from_millis(cfg.auth_timeout_ms));
        };
        let warn_at = if a.warned { a.expires_at } else { a.expires_at - crate::model::time::ms(EXPIRY_WARNING) };
        let check = match self.expiry_check {
            Some((wall, at)) if wall == warn_at => at,
            _ => {
                let at = wall_to_instant(warn_at);
                self.expiry_check = Some((warn_at, at));
                at
            }
        };
        next.min(check)
    }

    /// The timer's work: the authentication deadline, the ping and its pong timeout, the session's
    /// expiry.
    pub(super) async fn on_timer(&mut self) -> Result<(), Exit> {
        let now = Instant::now();
        // Converted again after this round: a far-off expiry is capped (see `wall_to_instant`), so
        // the instant it was given may have come without the expiry having come.
        self.expiry_check = None;
        let cfg = &self.hub.config;
        if self.authed.is_none() && now >= self.opened + Duration::from_millis(cfg.auth_timeout_ms) {
            return Err(Exit::Close(CloseCode::AuthTimeout));
        }
        if let Some(sent) = self.ping_sent {
            if now >= sent + Duration::from_millis(cfg.pong_timeout_ms) {
                return Err(Exit::Close(CloseCode::PingTimeout));
            }
        } else if now >= self.next_ping {
            self.ping_sent = Some(now);
            self.next_ping = now + Duration::from_millis(cfg.ping_interval_ms);
            self.write(std::iter::once(Message::Ping(Default::default()))).await?;
        }
        self.check_expiry().await
    }

    /// Replies to a malformed frame and counts it towards the protocol-abuse limit.
    pub(super) async fn reply_bad(&mut self, id: Option<protocol::RequestId>, error: Error) -> Result<(), Exit> {
        let now = Instant::now();
        if now.duration_since(self.bad_window) >= Duration::from_secs(60) {
            self.bad_window = now;
            self.bad_frames = 0;
        }
        self.bad_frames += 1;
        if self.bad_frames > self.hub.config.max_bad_frames_per_min {
            error.observe();
            return Err(Exit::Close(CloseCode::ProtocolAbuse));
        }
        self.reply_error(id, error).await
    }
}

/// The monotonic instant of a wall-clock time (past times map to now).
fn wall_to_instant(at: Millis) -> Instant {
    let delta = at.saturating_sub(now_ms()).max(0) as u64;
    // Cap far-future times (30-day sessions) so the arithmetic never overflows.
    Instant::now() + Duration::from_millis(delta.min(86_400_000))
}
