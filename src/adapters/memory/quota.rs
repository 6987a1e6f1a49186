//! In-process counters for a single node.

use crate::error::Result;
use crate::ports::quota::{Quotas, Reach, Window};
use async_trait::async_trait;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Most keys kept at once. Windows are short (at most a day) and expired keys are swept, so this is
/// only reached by a flood of distinct keys; past it, new keys count as over every limit (fail
/// closed: an SMS not sent is cheaper than one sent to an attacker).
const MAX_KEYS: usize = 200_000;
/// Sweep expired keys every this many hits.
const SWEEP_EVERY: u64 = 4096;

/// Counters in a sharded map.
#[derive(Default)]
pub struct MemoryQuotas {
    windows: DashMap<String, (Instant, u64)>,
    hits: AtomicU64,
}

impl MemoryQuotas {
    /// An empty set of counters.
    pub fn new() -> Self {
        Self::default()
    }

    fn sweep(&self, now: Instant) {
        self.windows.retain(|_, (ends, _)| *ends > now);
    }
}

#[async_trait]
impl Quotas for MemoryQuotas {
    async fn hit(&self, key: &str, window: Duration) -> Result<Window> {
        let now = Instant::now();
        if self.hits.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == 0 {
            self.sweep(now);
        }
        if self.windows.len() >= MAX_KEYS && !self.windows.contains_key(key) {
            self.sweep(now);
            if self.windows.len() >= MAX_KEYS {
                tracing::warn!("rate-limit table full: refusing new keys until windows expire");
                return Ok(Window { count: u64::MAX, resets_in: window });
            }
        }
        let mut entry = self.windows.entry(key.to_owned()).or_insert((now + window, 0));
        let (ends, count) = entry.value_mut();
        if *ends <= now {
            *ends = now + window;
            *count = 0;
        }
        *count += 1;
        Ok(Window { count: *count, resets_in: ends.saturating_duration_since(now) })
    }

    async fn forget(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            self.windows.remove(key);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<Reach> {
        Ok(Reach::All)
    }
}
