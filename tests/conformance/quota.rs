//! The conformance checks every [`Quotas`] implementation passes (run by `tests/quota.rs` against
//! memory always and Redis when `TEST_REDIS_URL` is set). Each check uses its own random keys.

use anapars_hub::error::Error;
use anapars_hub::ports::quota::{check, Quotas};
use std::sync::Arc;
use std::time::Duration;

fn key(name: &str) -> String {
    format!("{name}:{}", uuid::Uuid::new_v4().simple())
}

/// Hits in one window count up from one; another key counts on its own.
pub async fn counts_per_key(q: Arc<dyn Quotas>) {
    let (a, b) = (key("a"), key("b"));
    for expected in 1..=3 {
        assert_eq!(q.hit(&a, Duration::from_secs(60)).await.unwrap().count, expected);
    }
    assert_eq!(q.hit(&b, Duration::from_secs(60)).await.unwrap().count, 1);
}

/// A window ends on time and the count starts again.
pub async fn windows_expire(q: Arc<dyn Quotas>) {
    let k = key("expire");
    let w = q.hit(&k, Duration::from_millis(300)).await.unwrap();
    assert!(w.resets_in <= Duration::from_millis(300) && w.resets_in > Duration::ZERO, "{w:?}");
    assert_eq!(q.hit(&k, Duration::from_millis(300)).await.unwrap().count, 2);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(q.hit(&k, Duration::from_millis(300)).await.unwrap().count, 1);
}

/// `check` refuses past the limit with the time left in the window.
pub async fn check_refuses_over_the_limit(q: Arc<dyn Quotas>) {
    let k = key("limit");
    for _ in 0..2 {
        check(q.as_ref(), &k, Duration::from_secs(30), 2).await.unwrap();
    }
    match check(q.as_ref(), &k, Duration::from_secs(30), 2).await {
        Err(Error::RateLimited { retry_after }) => {
            assert!(retry_after > Duration::from_secs(25) && retry_after <= Duration::from_secs(30))
        }
        other => panic!("expected rate_limited, got {other:?}"),
    }
}

/// Concurrent hits are all counted exactly once.
pub async fn concurrent_hits_are_all_counted(q: Arc<dyn Quotas>) {
    let k = key("concurrent");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (q, k) = (q.clone(), k.clone());
            tokio::spawn(async move { q.hit(&k, Duration::from_secs(60)).await.unwrap().count })
        })
        .collect();
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=50).collect::<Vec<u64>>());
}

/// A forgotten counter starts again from one; others are untouched.
pub async fn forget_resets_only_the_named_counters(q: Arc<dyn Quotas>) {
    let (a, b) = (key("forget-a"), key("forget-b"));
    for _ in 0..3 {
        q.hit(&a, Duration::from_secs(60)).await.unwrap();
        q.hit(&b, Duration::from_secs(60)).await.unwrap();
    }
    q.forget(std::slice::from_ref(&a)).await.unwrap();
    q.forget(&[]).await.unwrap();
    assert_eq!(q.hit(&a, Duration::from_secs(60)).await.unwrap().count, 1);
    assert_eq!(q.hit(&b, Duration::from_secs(60)).await.unwrap().count, 4);
}

/// Every check, for a test file to run against one implementation.
pub async fn run_all(make: impl Fn() -> Arc<dyn Quotas>) {
    counts_per_key(make()).await;
    windows_expire(make()).await;
    check_refuses_over_the_limit(make()).await;
    concurrent_hits_are_all_counted(make()).await;
    forget_resets_only_the_named_counters(make()).await;
}
