//! The storage port for where tickets' events are kept over time: by calendar month (UTC), so that
//! the months to come have their place before their events arrive, and a month past its retention
//! goes at once instead of row by row.

use crate::error::Result;
use crate::model::time::Millis;
use async_trait::async_trait;

/// Tickets' events by month. A backend that keeps them in one table (SQLite) prepares nothing and
/// drops nothing; the configuration refuses an event retention there.
#[async_trait]
pub trait EventMonths: Send + Sync {
    /// Makes room for the events of the month holding `now` and of the `ahead` months after it,
    /// creating what is missing; how many months it created. Idempotent, and safe while other
    /// nodes do the same. An event stamped outside every prepared month is still stored (in a
    /// place for strays, whose events move into their month when it is prepared), so a failed call
    /// costs speed, never an event.
    ///
    /// # Errors
    /// [`Error::Unavailable`](crate::error::Error::Unavailable) when the store is busy past the
    /// call's deadline (creating a month waits for a moment without readers or writers).
    async fn prepare_event_months(&self, now: Millis, ahead: u32) -> Result<u32>;

    /// Deletes the events of every prepared month that ended at or before `before`, a month at a
    /// time; how many months went. Their tickets stay, with what is left of their history.
    ///
    /// # Errors
    /// As [`Self::prepare_event_months`].
    async fn drop_event_months(&self, before: Millis) -> Result<u32>;
}
