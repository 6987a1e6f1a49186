//! Tickets' history over time: the months ahead prepared before their events arrive, and, when a
//! retention is configured, the months past it deleted whole. Run at start and on every purge
//! round of every node; each step is idempotent, so nodes running it at once do no harm.

use crate::model::time::Millis;
use crate::ports::store::history::EventMonths;
use std::time::Duration;

/// Months prepared after the current one: a node that is down (or whose rounds fail) this long
/// still finds its month ready when it comes back.
pub const MONTHS_AHEAD: u32 = 3;

/// One round at `now`: prepares the current month and [`MONTHS_AHEAD`] more, then deletes the
/// months that ended at least `retention` ago (none when `retention` is `None`). Failures are
/// logged and left to the next round: an event outside every prepared month is still stored.
pub async fn keep_months(months: &dyn EventMonths, now: Millis, retention: Option<Duration>) {
    match months.prepare_event_months(now, MONTHS_AHEAD).await {
        Ok(0) => {}
        Ok(created) => tracing::info!(months = created, "prepared months of ticket history"),
        Err(e) => tracing::warn!(error = %e, "preparing months of ticket history failed; retrying next round"),
    }
    let Some(retention) = retention else { return };
    let before = now.saturating_sub(crate::model::time::ms(retention));
    match months.drop_event_months(before).await {
        Ok(0) => {}
        Ok(dropped) => tracing::info!(months = dropped, "deleted months of ticket history past their retention"),
        Err(e) => tracing::warn!(error = %e, "deleting old months of ticket history failed; retrying next round"),
    }
}
