//! Wall-clock time as the hub stores and sends it: milliseconds since the Unix epoch (UTC).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch. One integer type on the wire, in SQLite and in Postgres,
/// so that every backend and both encodings agree to the millisecond.
pub type Millis = i64;

/// The current wall-clock time in [`Millis`].
pub fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
}

/// A [`Duration`] as [`Millis`], saturating instead of overflowing.
pub fn ms(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}
