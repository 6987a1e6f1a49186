//! The rate-limit counters' conformance checks, against the in-process implementation always and
//! Redis when `TEST_REDIS_URL` is set.

mod common;
// The suite's checks are `pub` for the runner in this file, not a library API.
#[allow(unreachable_pub)]
#[path = "conformance/quota.rs"]
mod conformance;

use anapars_hub::adapters::memory::MemoryQuotas;
use anapars_hub::adapters::redis::RedisQuotas;
use anapars_hub::ports::quota::Quotas;
use common::hub::TestRedis;
use std::sync::Arc;

#[tokio::test]
async fn memory_quotas_conform() {
    conformance::run_all(|| Arc::new(MemoryQuotas::new()) as Arc<dyn Quotas>).await;
}

#[tokio::test]
async fn redis_quotas_conform() {
    let Some(redis) = TestRedis::from_env().await else {
        eprintln!("TEST_REDIS_URL not set: Redis quotas not tested here (CI sets it)");
        return;
    };
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let conn = redis::aio::ConnectionManager::new(client).await.unwrap();
    let quotas = RedisQuotas::new(conn, &redis.prefix);
    conformance::run_all(|| Arc::new(quotas.clone()) as Arc<dyn Quotas>).await;
    assert!(!redis.keys().await.is_empty(), "keys live under the test prefix");
}
