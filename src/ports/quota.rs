//! Fixed-window counters for rate limits and budgets (codes per number, per IP, SMS per hour).
//!
//! Behind one narrow trait with two implementations: [`crate::adapters::memory::MemoryQuotas`] for
//! a single node, and [`crate::adapters::redis::RedisQuotas`] when `REDIS_URL` is set, so that
//! every node of a cluster counts against the same limits. Both pass the conformance checks in
//! `tests/conformance/quota.rs`.

use crate::error::Result;
use async_trait::async_trait;
use std::time::Duration;

/// The state of one counter's current window after a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Hits in the current window, this one included.
    pub count: u64,
    /// Time until the window ends and the count starts again from zero.
    pub resets_in: Duration,
}

/// Fixed-window counters.
#[async_trait]
pub trait Quotas: Send + Sync {
    /// Counts one hit on `key` in its current window of length `window` (the window starts at the
    /// first hit) and returns the window's state.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the backing store does not answer.
    async fn hit(&self, key: &str, window: Duration) -> Result<Window>;

    /// Forgets these counters (an account's, when it is deleted): their next hit starts afresh.
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when the backing store does not answer.
    async fn forget(&self, keys: &[String]) -> Result<()>;

    /// How much of the backing store answers (for readiness).
    ///
    /// # Errors
    /// [`crate::Error::Unavailable`] when none of it answers.
    async fn ping(&self) -> Result<Reach>;
}

/// How much of a backing store answers a ping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// All of it.
    All,
    /// Part of it: a sharded store (a Redis Cluster) with a shard that does not answer, as while a
    /// replica takes over from a master that died.
    Part,
}

/// Checks a hit against `limit`, turning an exceeded window into [`crate::Error::RateLimited`].
///
/// # Errors
/// `rate_limited` with the window's reset time, or the store's own error.
pub async fn check(quotas: &dyn Quotas, key: &str, window: Duration, limit: u64) -> Result<Window> {
    let w = quotas.hit(key, window).await?;
    if w.count > limit {
        return Err(crate::Error::RateLimited { retry_after: w.resets_in });
    }
    Ok(w)
}
