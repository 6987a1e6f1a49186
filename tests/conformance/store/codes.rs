//! Checks of [`SignInCodes`](anapars_hub::ports::store::SignInCodes): codes and per-number lock-outs.

use super::{code, one_to_racers, phone_key, race, HOUR, MINUTE, PURGE_EPOCH, RACERS};
use anapars_hub::error::Result;
use anapars_hub::model::account::{PhoneGuard, SignInCode};
use anapars_hub::model::ids::CodeId;
use anapars_hub::model::time::now_ms;
use anapars_hub::ports::store::Store;
use std::sync::Arc;

/// A new code replaces the number's earlier one: only the newest code can be tried or used.
pub async fn put_code_keeps_only_the_newest_code(store: Arc<dyn Store>) -> Result<()> {
    let (key, other_key) = (phone_key(), phone_key());
    let now = now_ms();
    assert_eq!(store.current_code(&key).await?, None);
    let other = code(&other_key, now, now + 5 * MINUTE);
    store.put_code(&other).await?;
    let first = code(&key, now, now + 5 * MINUTE);
    store.put_code(&first).await?;
    assert_eq!(store.current_code(&key).await?, Some(first.clone()));
    assert_eq!(store.count_attempt(first.id).await?, Some(1));

    let second = code(&key, now + 1, now + 5 * MINUTE + 1);
    store.put_code(&second).await?;
    assert_eq!(store.current_code(&key).await?, Some(second.clone()), "the new code starts with no attempts");
    assert_eq!(store.count_attempt(first.id).await?, None, "the replaced code must be gone");
    assert!(!store.consume_code(first.id).await?, "the replaced code must not be usable");
    assert_eq!(store.current_code(&other_key).await?, Some(other), "another number's code was touched");
    Ok(())
}

/// Racing resends to one number leave exactly one code that works.
pub async fn put_code_races_leave_one_working_code(store: Arc<dyn Store>) -> Result<()> {
    let key = phone_key();
    let now = now_ms();
    let codes: Vec<SignInCode> = (0..RACERS).map(|_| code(&key, now, now + 5 * MINUTE)).collect();
    race(|i| {
        let (store, code) = (Arc::clone(&store), codes[i].clone());
        async move { store.put_code(&code).await }
    })
    .await?;
    let current = store.current_code(&key).await?;
    assert!(current.as_ref().is_some_and(|c| codes.contains(c)), "the current code must be one of those sent");
    let mut working = 0;
    for code in &codes {
        working += usize::from(store.count_attempt(code.id).await?.is_some());
    }
    assert_eq!(working, 1, "exactly one of the racing codes may still work");
    Ok(())
}

/// The current code is the newest unused one, expired or not; a used code is never current.
pub async fn current_code_skips_used_codes_but_not_expired_ones(store: Arc<dyn Store>) -> Result<()> {
    let key = phone_key();
    let now = now_ms();
    let expired = code(&key, now - 10 * MINUTE, now - 5 * MINUTE);
    store.put_code(&expired).await?;
    assert_eq!(store.current_code(&key).await?, Some(expired.clone()), "expiry is the caller's to check");
    assert!(store.consume_code(expired.id).await?);
    assert_eq!(store.current_code(&key).await?, None);
    let fresh = code(&key, now, now + 5 * MINUTE);
    store.put_code(&fresh).await?;
    assert_eq!(store.current_code(&key).await?, Some(fresh));
    Ok(())
}

/// Concurrent tries are each counted once: the counts returned are exactly 1..=N.
pub async fn count_attempt_counts_every_try_atomically(store: Arc<dyn Store>) -> Result<()> {
    let key = phone_key();
    let now = now_ms();
    let sent = code(&key, now, now + 5 * MINUTE);
    store.put_code(&sent).await?;
    let id = sent.id;
    let mut counts = race(|_| {
        let store = Arc::clone(&store);
        async move { store.count_attempt(id).await }
    })
    .await?;
    counts.sort();
    assert_eq!(counts, one_to_racers().into_iter().map(Some).collect::<Vec<_>>());
    assert_eq!(store.current_code(&key).await?.map(|c| c.attempts), Some(RACERS as u32));
    assert!(store.consume_code(sent.id).await?);
    assert_eq!(store.count_attempt(sent.id).await?, None, "a used code must not be tried");
    assert_eq!(store.count_attempt(CodeId::generate()).await?, None);
    Ok(())
}

/// A code signs in exactly one caller, however many race for it.
pub async fn consume_code_succeeds_for_exactly_one_caller(store: Arc<dyn Store>) -> Result<()> {
    let key = phone_key();
    let now = now_ms();
    let sent = code(&key, now, now + 5 * MINUTE);
    store.put_code(&sent).await?;
    let id = sent.id;
    let results = race(|_| {
        let store = Arc::clone(&store);
        async move { store.consume_code(id).await }
    })
    .await?;
    assert_eq!(results.iter().filter(|won| **won).count(), 1);
    assert!(!store.consume_code(sent.id).await?);
    assert_eq!(store.current_code(&key).await?, None);
    assert!(!store.consume_code(CodeId::generate()).await?);
    Ok(())
}

/// The purge deletes codes that expired strictly before the cut-off, used or not, and no other.
pub async fn purge_codes_deletes_only_codes_expired_before_the_cutoff(store: Arc<dyn Store>) -> Result<()> {
    let cutoff = PURGE_EPOCH + HOUR;
    let expired = code(&phone_key(), PURGE_EPOCH, cutoff - 1);
    let used = code(&phone_key(), PURGE_EPOCH, cutoff - 1);
    let at_cutoff = code(&phone_key(), PURGE_EPOCH, cutoff);
    let later = code(&phone_key(), PURGE_EPOCH, cutoff + 1);
    for code in [&expired, &used, &at_cutoff, &later] {
        store.put_code(code).await?;
    }
    assert!(store.consume_code(used.id).await?);
    assert_eq!(store.purge_codes(cutoff).await?, 2);
    assert_eq!(store.current_code(&expired.phone_key).await?, None);
    assert_eq!(store.current_code(&at_cutoff.phone_key).await?, Some(at_cutoff));
    assert_eq!(store.current_code(&later.phone_key).await?, Some(later));
    Ok(())
}

// ---- Lock-outs ----

/// Wrong tries count up per number; a lock-out sets the lock, counts itself and resets the tries.
pub async fn phone_guard_counts_failures_and_lockouts(store: Arc<dyn Store>) -> Result<()> {
    let (key, bystander) = (phone_key(), phone_key());
    let now = now_ms();
    let guard = |failures, lockouts, locked_until| PhoneGuard { failures, lockouts, locked_until };
    assert_eq!(store.phone_guard(&key).await?, PhoneGuard::default());
    store.add_failure(&bystander, now).await?;
    assert_eq!(store.add_failure(&key, now).await?, guard(1, 0, None));
    assert_eq!(store.add_failure(&key, now).await?, guard(2, 0, None));
    assert_eq!(store.lock_phone(&key, now + 15 * MINUTE).await?, guard(0, 1, Some(now + 15 * MINUTE)));
    assert_eq!(store.phone_guard(&key).await?, guard(0, 1, Some(now + 15 * MINUTE)));
    assert_eq!(store.add_failure(&key, now).await?, guard(1, 1, Some(now + 15 * MINUTE)));
    assert_eq!(store.lock_phone(&key, now + 30 * MINUTE).await?, guard(0, 2, Some(now + 30 * MINUTE)));
    assert_eq!(store.phone_guard(&bystander).await?, guard(1, 0, None));
    let fresh = phone_key();
    assert_eq!(store.lock_phone(&fresh, now + MINUTE).await?, guard(0, 1, Some(now + MINUTE)));
    Ok(())
}

/// Concurrent wrong tries are each counted once.
pub async fn add_failure_is_atomic(store: Arc<dyn Store>) -> Result<()> {
    let key = phone_key();
    let now = now_ms();
    let guards = race(|_| {
        let (store, key) = (Arc::clone(&store), key.clone());
        async move { store.add_failure(&key, now).await }
    })
    .await?;
    let mut failures: Vec<u32> = guards.iter().map(|g| g.failures).collect();
    failures.sort();
    assert_eq!(failures, one_to_racers());
    assert_eq!(store.phone_guard(&key).await?.failures, RACERS as u32);
    Ok(())
}

/// A successful sign-in forgets the number's history, and only that number's.
pub async fn clear_guard_forgets_the_number(store: Arc<dyn Store>) -> Result<()> {
    let (key, bystander) = (phone_key(), phone_key());
    let now = now_ms();
    store.add_failure(&key, now).await?;
    store.lock_phone(&key, now + MINUTE).await?;
    store.add_failure(&bystander, now).await?;
    store.clear_guard(&key).await?;
    assert_eq!(store.phone_guard(&key).await?, PhoneGuard::default());
    assert_eq!(store.phone_guard(&bystander).await?.failures, 1);
    store.clear_guard(&phone_key()).await?;
    Ok(())
}
