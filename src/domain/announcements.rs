//! Operator announcements ("maintenance tonight at 23:00"): one `announcement` event pushed to every
//! connected app and/or agent console, on every node. Encoded once per encoding and the same bytes
//! queued on every socket; not stored (apps offline at the time do not get it: what must reach
//! everyone belongs in the apps' own notices).

use crate::error::{Error, Result, SizeUnit};
use crate::model::event::Event;
use crate::model::time::now_ms;
use crate::ports::broker::{Audience, Broadcast, Broker};

/// Longest announcement text, in characters.
pub const MAX_TEXT_CHARS: usize = 1_000;

/// Checks `text` and pushes the announcement to `reach`; returns its id.
///
/// # Errors
/// `bad_request` for an empty (or only whitespace) text, `too_large` for one longer than
/// [`MAX_TEXT_CHARS`].
pub fn announce(broker: &dyn Broker, text: &str, reach: Broadcast) -> Result<uuid::Uuid> {
    if text.trim().is_empty() {
        return Err(Error::BadRequest("text must not be empty".into()));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(Error::TooLarge {
            what: "text",
            size: Some(chars),
            limit: MAX_TEXT_CHARS,
            unit: SizeUnit::Characters,
        });
    }
    let id = uuid::Uuid::now_v7();
    let event = Event::Announcement { id, text: text.to_owned(), sent_at: now_ms() };
    broker.publish(&Audience { broadcast: Some(reach), ..Audience::default() }, event);
    metrics::counter!(crate::metrics::ANNOUNCEMENTS).increment(1);
    tracing::info!(announcement_id = %id, ?reach, "announcement sent");
    Ok(id)
}
