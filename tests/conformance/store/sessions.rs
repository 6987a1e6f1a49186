//! Checks of [`Sessions`](anapars_hub::ports::store::Sessions).

use super::{device, new_session, race, session, token, user, HOUR, MINUTE, PURGE_EPOCH, RACERS};
use anapars_hub::error::{Error, Result};
use anapars_hub::model::account::{Holder, NewSession, Session, TokenHash};
use anapars_hub::model::ids::{DeviceId, SessionId};
use anapars_hub::model::time::{now_ms, Millis};
use anapars_hub::ports::store::Store;
use std::sync::Arc;

/// A created session comes back field for field, by id and by token hash, and only by its own hash.
pub async fn sessions_round_trip_by_id_and_token(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let device = device(&*store, owner.id).await?;
    let now = now_ms();
    // The last millisecond of year 9999: times must keep their full range.
    let new = new_session(&device, now, 253_402_300_799_999);
    let expected = Session {
        id: new.id,
        holder: Holder::User { user: owner.id, device: device.id },
        created_at: now,
        expires_at: 253_402_300_799_999,
        revoked_at: None,
    };
    assert_eq!(store.create_session(&new).await?, expected);
    assert_eq!(store.session_by_token(&new.token_hash).await?, Some(expected.clone()));
    assert_eq!(store.session(new.id).await?, Some(expected));
    assert_eq!(store.session_by_token(&token()).await?, None);
    assert_eq!(store.session(SessionId::generate()).await?, None);
    Ok(())
}

/// A token hash identifies at most one session, and a session can only be bound to a device of
/// its own user.
pub async fn sessions_refuse_duplicate_tokens_and_foreign_devices(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let stranger = user(&*store).await?;
    let (mine, theirs) = (device(&*store, owner.id).await?, device(&*store, stranger.id).await?);
    let now = now_ms();
    let first = new_session(&mine, now, now + HOUR);
    store.create_session(&first).await?;
    let duplicate = NewSession { id: SessionId::generate(), ..first.clone() };
    assert!(store.create_session(&duplicate).await.is_err(), "a second session with the same token hash was stored");
    assert_eq!(store.session_by_token(&first.token_hash).await?.map(|s| s.id), Some(first.id));

    let hijack = NewSession {
        holder: Holder::User { user: owner.id, device: theirs.id },
        ..new_session(&mine, now, now + HOUR)
    };
    assert!(store.create_session(&hijack).await.is_err(), "a session was bound to another user's device");
    assert_eq!(store.session(hijack.id).await?, None);
    let orphan = NewSession {
        holder: Holder::User { user: owner.id, device: DeviceId::generate() },
        ..new_session(&mine, now, now + HOUR)
    };
    assert!(store.create_session(&orphan).await.is_err(), "a session was bound to a device that does not exist");
    Ok(())
}

/// Rotating a live session gives it the new token and expiry; the old token stops working.
pub async fn rotate_session_replaces_the_token(store: Arc<dyn Store>) -> Result<()> {
    let device = device(&*store, user(&*store).await?.id).await?;
    let now = now_ms();
    let (before, old_hash) = session(&*store, &device, now, now + HOUR).await?;
    let new_hash = token();
    assert!(store.rotate_session(before.id, &new_hash, now + 2 * HOUR, now + 1).await?);
    assert_eq!(store.session_by_token(&old_hash).await?, None, "the old token must stop working");
    let after = Session { expires_at: now + 2 * HOUR, ..before };
    assert_eq!(store.session_by_token(&new_hash).await?, Some(after.clone()));
    assert_eq!(store.session(after.id).await?, Some(after));
    assert!(!store.rotate_session(SessionId::generate(), &token(), now + HOUR, now).await?);
    Ok(())
}

/// Only a live session can be rotated: not a revoked one, not one whose expiry has come.
pub async fn rotate_session_refuses_sessions_that_are_not_live(store: Arc<dyn Store>) -> Result<()> {
    let device = device(&*store, user(&*store).await?.id).await?;
    let now = now_ms();

    let (expired, expired_hash) = session(&*store, &device, now - HOUR, now).await?;
    let attempt = token();
    // At its expiry instant a session is no longer live (`Session::is_live` is `now < expires_at`).
    assert!(!store.rotate_session(expired.id, &attempt, now + HOUR, now).await?);
    assert_eq!(store.session_by_token(&attempt).await?, None);
    assert_eq!(store.session_by_token(&expired_hash).await?, Some(expired));

    let (revoked, _) = session(&*store, &device, now, now + HOUR).await?;
    assert!(store.revoke_session(revoked.id, now).await?);
    let attempt = token();
    assert!(!store.rotate_session(revoked.id, &attempt, now + 2 * HOUR, now + 1).await?);
    assert_eq!(store.session_by_token(&attempt).await?, None);

    let (last_moment, _) = session(&*store, &device, now, now + 1).await?;
    assert!(
        store.rotate_session(last_moment.id, &token(), now + HOUR, now).await?,
        "one millisecond before expiry it is live"
    );
    Ok(())
}

/// Concurrent rotations of one session leave exactly one working token, and never the old one.
pub async fn rotate_session_races_leave_one_token(store: Arc<dyn Store>) -> Result<()> {
    let device = device(&*store, user(&*store).await?.id).await?;
    let now = now_ms();
    let (id, old_hash) = session(&*store, &device, now, now + HOUR).await.map(|(s, hash)| (s.id, hash))?;
    let hashes: Vec<TokenHash> = (0..RACERS).map(|_| token()).collect();
    let rotated = race(|i| {
        let (store, hash) = (Arc::clone(&store), hashes[i]);
        async move { store.rotate_session(id, &hash, now + 2 * HOUR, now + 1).await }
    })
    .await?;
    assert!(rotated.iter().all(|done| *done), "the session stays live, so every rotation must succeed: {rotated:?}");
    let mut working = 0;
    for hash in &hashes {
        working += usize::from(store.session_by_token(hash).await?.is_some());
    }
    assert_eq!(working, 1, "exactly one of the racing tokens must work");
    assert_eq!(store.session_by_token(&old_hash).await?, None);
    Ok(())
}

/// Revoking succeeds once; the session stays findable, with its revocation time.
pub async fn revoke_session_succeeds_once(store: Arc<dyn Store>) -> Result<()> {
    let device = device(&*store, user(&*store).await?.id).await?;
    let now = now_ms();
    let (session, hash) = session(&*store, &device, now, now + HOUR).await?;
    assert!(store.revoke_session(session.id, now + 5).await?);
    assert!(!store.revoke_session(session.id, now + 6).await?, "a second revocation must report false");
    let revoked = Session { revoked_at: Some(now + 5), ..session };
    assert_eq!(store.session_by_token(&hash).await?, Some(revoked.clone()));
    assert!(!revoked.is_live(now + 7));
    assert!(!store.revoke_session(SessionId::generate(), now).await?);
    Ok(())
}

/// Of concurrent revocations of one session, exactly one reports that it revoked it.
pub async fn revoke_session_races_have_one_winner(store: Arc<dyn Store>) -> Result<()> {
    let device = device(&*store, user(&*store).await?.id).await?;
    let now = now_ms();
    let id = session(&*store, &device, now, now + HOUR).await?.0.id;
    let results = race(|i| {
        let store = Arc::clone(&store);
        async move { store.revoke_session(id, now + i as Millis).await }
    })
    .await?;
    assert_eq!(results.iter().filter(|done| **done).count(), 1);
    Ok(())
}

/// "Sign out everywhere else" revokes exactly the user's live sessions other than `keep`, and leaves
/// revoked, expired and other users' sessions as they were.
pub async fn revoke_user_sessions_revokes_only_live_ones_except_keep(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let (handset, tablet) = (device(&*store, owner.id).await?, device(&*store, owner.id).await?);
    let stranger = device(&*store, user(&*store).await?.id).await?;
    let now = now_ms();
    let (live_handset, _) = session(&*store, &handset, now - MINUTE, now + HOUR).await?;
    let (live_tablet, _) = session(&*store, &tablet, now - MINUTE, now + HOUR).await?;
    let (keep, _) = session(&*store, &handset, now - MINUTE, now + HOUR).await?;
    let (revoked, _) = session(&*store, &tablet, now - HOUR, now + HOUR).await?;
    assert!(store.revoke_session(revoked.id, now - 10).await?);
    let (expired, _) = session(&*store, &handset, now - HOUR, now).await?;
    let (foreign, _) = session(&*store, &stranger, now - MINUTE, now + HOUR).await?;

    let mut revoked_now = store.revoke_user_sessions(owner.id, Some(keep.id), now).await?;
    revoked_now.sort();
    let mut expected = vec![live_handset.id, live_tablet.id];
    expected.sort();
    assert_eq!(revoked_now, expected);

    let revoked_at = async |id| Ok::<_, Error>(store.session(id).await?.and_then(|s| s.revoked_at));
    assert_eq!(revoked_at(live_handset.id).await?, Some(now));
    assert_eq!(revoked_at(live_tablet.id).await?, Some(now));
    assert_eq!(revoked_at(keep.id).await?, None);
    assert_eq!(revoked_at(revoked.id).await?, Some(now - 10), "an earlier revocation time must be kept");
    assert_eq!(revoked_at(expired.id).await?, None, "an expired session is not live and must be left alone");
    assert_eq!(revoked_at(foreign.id).await?, None);

    assert_eq!(store.revoke_user_sessions(owner.id, None, now + 1).await?, vec![keep.id]);
    assert_eq!(store.revoke_user_sessions(owner.id, None, now + 2).await?, vec![]);
    Ok(())
}

/// The purge deletes sessions that expired or were revoked strictly before the cut-off, and no other.
pub async fn purge_sessions_deletes_only_what_ended_before_the_cutoff(store: Arc<dyn Store>) -> Result<()> {
    let device = device(&*store, user(&*store).await?.id).await?;
    let (start, cutoff, future) = (PURGE_EPOCH, PURGE_EPOCH + HOUR, now_ms() + HOUR);
    let (expired_before, _) = session(&*store, &device, start, cutoff - 1).await?;
    let (expires_at_cutoff, _) = session(&*store, &device, start, cutoff).await?;
    let (revoked_before, _) = session(&*store, &device, start, future).await?;
    assert!(store.revoke_session(revoked_before.id, cutoff - 1).await?);
    let (revoked_at_cutoff, _) = session(&*store, &device, start, future).await?;
    assert!(store.revoke_session(revoked_at_cutoff.id, cutoff).await?);
    let (live, _) = session(&*store, &device, start, future).await?;

    assert_eq!(store.purge_sessions(cutoff).await?, 2);
    assert_eq!(store.session(expired_before.id).await?, None);
    assert_eq!(store.session(revoked_before.id).await?, None);
    for kept in [expires_at_cutoff.id, revoked_at_cutoff.id, live.id] {
        assert!(store.session(kept).await?.is_some(), "a session that ended at or after the cut-off was purged");
    }
    Ok(())
}

/// Of a list of user and agent session ids, the dead ones are exactly those revoked, expired or
/// unknown.
pub async fn dead_sessions_are_the_revoked_expired_and_unknown(store: Arc<dyn Store>) -> Result<()> {
    let owner = user(&*store).await?;
    let device = device(&*store, owner.id).await?;
    let now = now_ms();
    let (live, _) = session(&*store, &device, now, now + HOUR).await?;
    let (revoked, _) = session(&*store, &device, now, now + HOUR).await?;
    let (expired, _) = session(&*store, &device, now - HOUR, now - MINUTE).await?;
    store.revoke_session(revoked.id, now).await?;
    let helper = super::agent(&*store).await?;
    let agent_live = super::new_agent_session(helper.id, now, now + HOUR);
    let agent_revoked = super::new_agent_session(helper.id, now, now + HOUR);
    store.create_session(&agent_live).await?;
    store.create_session(&agent_revoked).await?;
    store.revoke_session(agent_revoked.id, now).await?;
    let unknown = SessionId::generate();

    let asked = [live.id, revoked.id, agent_live.id, expired.id, unknown, agent_revoked.id];
    assert_eq!(store.dead_sessions(&asked, now).await?, [revoked.id, expired.id, unknown, agent_revoked.id]);
    assert_eq!(store.dead_sessions(&[], now).await?, []);
    // Many at once (more than one SQLite chunk), in order.
    let many: Vec<SessionId> = (0..1000).map(|_| SessionId::generate()).chain([live.id]).collect();
    assert_eq!(store.dead_sessions(&many, now).await?, many[..1000]);
    Ok(())
}
