//! Checks of [`Accounts`](anapars_hub::ports::store::Accounts), [`HubKeys`](anapars_hub::ports::store::HubKeys) and
//! [`Health`](anapars_hub::ports::store::Health).

use super::{phone, race, user, MINUTE, RACERS};
use anapars_hub::error::Result;
use anapars_hub::model::account::Device;
use anapars_hub::model::ids::UserId;
use anapars_hub::model::time::now_ms;
use anapars_hub::ports::store::Store;
use std::sync::Arc;
use uuid::Uuid;

/// A number is registered once; later calls return the original user unchanged.
pub async fn register_user_creates_a_user_once(store: Arc<dyn Store>) -> Result<()> {
    let phone = phone();
    let now = now_ms();
    assert_eq!(store.user_by_phone(&phone).await?, None);
    let (user, created) = store.register_user(&phone, now).await?;
    assert!(created, "the first registration must report that it created the user");
    assert_eq!((&user.phone, user.registered_at), (&phone, now));
    let (again, created_again) = store.register_user(&phone, now + MINUTE).await?;
    assert!(!created_again, "a second registration must not report creating the user");
    assert_eq!(again, user, "a second registration must return the original user, registration time included");
    assert_eq!(store.user(user.id).await?, Some(user.clone()));
    assert_eq!(store.user_by_phone(&phone).await?, Some(user));
    assert_eq!(store.user(UserId::generate()).await?, None);
    Ok(())
}

/// Concurrent registrations of one number all get the same user, and exactly one created it.
pub async fn register_user_is_race_free(store: Arc<dyn Store>) -> Result<()> {
    let phone = phone();
    let now = now_ms();
    let results = race(|_| {
        let (store, phone) = (Arc::clone(&store), phone.clone());
        async move { store.register_user(&phone, now).await }
    })
    .await?;
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1, "exactly one call may create the user");
    let user = &results[0].0;
    assert!(results.iter().all(|(u, _)| u == user), "every caller must get the same user");
    assert_eq!(store.user_by_phone(&phone).await?.as_ref(), Some(user));
    Ok(())
}

/// A device is keyed by (user, client device id): a second sign-in renames it and moves its
/// last-seen time, keeping its id and creation time. Devices list oldest first, per user.
pub async fn upsert_device_creates_then_updates_in_place(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let stranger = user(&*store).await?;
    let t0 = now_ms();
    let a = store.upsert_device(owner.id, "install-a", "Pixel 8", t0).await?;
    assert_eq!((a.user_id, a.client_device_id.as_str(), a.name.as_str()), (owner.id, "install-a", "Pixel 8"));
    assert_eq!((a.created_at, a.last_seen_at), (t0, t0));
    // Names are user input: non-ASCII must round-trip exactly.
    let b = store.upsert_device(owner.id, "install-b", "گوشیِ من 📱", t0 + 1).await?;
    assert_eq!(b.name, "گوشیِ من 📱");
    let a2 = store.upsert_device(owner.id, "install-a", "Pixel 9", t0 + MINUTE).await?;
    assert_eq!(a2, Device { name: "Pixel 9".into(), last_seen_at: t0 + MINUTE, ..a.clone() });
    let foreign = store.upsert_device(stranger.id, "install-a", "Other", t0).await?;
    assert_ne!(foreign.id, a.id, "the same client device id under another user is another device");
    assert_eq!(store.devices(owner.id).await?, vec![a2, b]);
    assert_eq!(store.devices(stranger.id).await?, vec![foreign]);
    assert_eq!(store.devices(UserId::generate()).await?, vec![]);
    Ok(())
}

/// Concurrent sign-ins from one installation end up with one device record.
pub async fn upsert_device_is_race_free(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?.id;
    let now = now_ms();
    let results = race(|i| {
        let store = Arc::clone(&store);
        async move { store.upsert_device(owner, "install", &format!("name {i}"), now).await }
    })
    .await?;
    let id = results[0].id;
    assert!(results.iter().all(|d| d.id == id), "every caller must get the same device");
    let devices = store.devices(owner).await?;
    assert_eq!(devices.len(), 1);
    assert!(results.iter().any(|d| d.name == devices[0].name), "the stored name must be one that was written");
    Ok(())
}

/// The first stored key wins; its bytes (every byte value) come back exactly.
pub async fn key_or_insert_keeps_the_first_key(store: Arc<dyn Store>) -> Result<()> {
    let name = format!("conformance-{}", Uuid::new_v4().simple());
    let first: Vec<u8> = (0..=255).collect();
    assert_eq!(store.key_or_insert(&name, &first).await?, first);
    assert_eq!(store.key_or_insert(&name, b"second").await?, first);
    let other = format!("conformance-{}", Uuid::new_v4().simple());
    assert_eq!(store.key_or_insert(&other, b"other").await?, b"other");
    Ok(())
}

/// Nodes starting at once all end up with the same key, one of those offered.
pub async fn key_or_insert_races_agree_on_one_key(store: Arc<dyn Store>) -> Result<()> {
    let name = format!("conformance-{}", Uuid::new_v4().simple());
    let candidates: Vec<Vec<u8>> = (0..RACERS).map(|_| rand::random::<[u8; 32]>().to_vec()).collect();
    let results = race(|i| {
        let (store, name, candidate) = (Arc::clone(&store), name.clone(), candidates[i].clone());
        async move { store.key_or_insert(&name, &candidate).await }
    })
    .await?;
    assert!(candidates.contains(&results[0]));
    assert!(results.iter().all(|key| *key == results[0]), "racing nodes got different keys");
    assert_eq!(store.key_or_insert(&name, b"late").await?, results[0]);
    Ok(())
}

// ---- Health ----

/// The store answers a ping and names its backend.
pub async fn ping_answers_and_backend_is_named(store: Arc<dyn Store>) -> Result<()> {
    store.ping().await?;
    assert!(["sqlite", "postgres"].contains(&store.backend()), "unknown backend name {}", store.backend());
    Ok(())
}
