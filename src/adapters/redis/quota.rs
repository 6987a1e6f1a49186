//! Counters in Redis, shared by every node of a cluster.

use super::Connection;
use crate::error::Result;
use crate::ports::quota::{Quotas, Reach, Window};
use async_trait::async_trait;
use std::time::Duration;

/// INCR and set the expiry on the first hit, in one round trip and atomically (a crash between the
/// two commands must not leave a counter that never expires).
const HIT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// Counters under `<prefix>quota:<key>`, one key each (so on a cluster each counter's script
/// touches one slot).
#[derive(Clone)]
pub struct RedisQuotas {
    conn: Connection,
    prefix: String,
    script: redis::Script,
}

impl RedisQuotas {
    /// Counters on `conn`, with every key under `prefix`.
    pub fn new(conn: Connection, prefix: &str) -> Self {
        Self { conn, prefix: format!("{prefix}quota:"), script: redis::Script::new(HIT_SCRIPT) }
    }
}

#[async_trait]
impl Quotas for RedisQuotas {
    async fn hit(&self, key: &str, window: Duration) -> Result<Window> {
        let mut conn = self.conn.clone();
        let window_ms = window.as_millis().max(1) as u64;
        let (count, ttl): (u64, i64) =
            self.script.key(format!("{}{key}", self.prefix)).arg(window_ms).invoke_async(&mut conn).await?;
        Ok(Window { count, resets_in: Duration::from_millis(ttl.max(0) as u64) })
    }

    async fn forget(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let keys: Vec<String> = keys.iter().map(|k| format!("{}{k}", self.prefix)).collect();
        let _: u64 = redis::cmd("DEL").arg(keys).query_async(&mut conn).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<Reach> {
        self.conn.reach().await
    }
}
