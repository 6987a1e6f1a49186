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
    let conn = anapars_hub::adapters::redis::connect(&redis.url).await.expect("redis answers").conn;
    let quotas = RedisQuotas::new(conn, &redis.prefix);
    conformance::run_all(|| Arc::new(quotas.clone()) as Arc<dyn Quotas>).await;
    assert!(!redis.keys().await.is_empty(), "keys live under the test prefix");
}

#[tokio::test]
async fn redis_quotas_conform_on_a_redis_cluster() {
    if std::env::var_os(common::hub::TEST_REDIS_URL).is_none() {
        eprintln!("TEST_REDIS_URL not set: Redis Cluster quotas not tested here (CI sets it)");
        return;
    }
    let Some(cluster) = common::redis_cluster::start(3).await else { return };
    let conn = anapars_hub::adapters::redis::connect(&cluster.url()).await.expect("the cluster answers").conn;
    assert!(conn.is_cluster());
    let quotas = RedisQuotas::new(conn, "test:");
    conformance::run_all(|| Arc::new(quotas.clone()) as Arc<dyn Quotas>).await;
    // Thirty counters: every shard holds some (all on fewer shards: odds about 1 in 60,000).
    for i in 0..30 {
        quotas.hit(&format!("spread-{i}"), std::time::Duration::from_secs(60)).await.unwrap();
    }
    let masters_with_keys = {
        let mut n = 0;
        for port in cluster.masters().await {
            let out = tokio::process::Command::new("redis-cli")
                .args(["-p", &port.to_string(), "dbsize"])
                .output()
                .await
                .unwrap();
            n += usize::from(String::from_utf8_lossy(&out.stdout).trim() != "0");
        }
        n
    };
    assert_eq!(masters_with_keys, 3, "counters spread over the shards");
}
