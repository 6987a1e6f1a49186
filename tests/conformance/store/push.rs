//! Checks of the [`anapars_hub::ports::store::push::Pushes`] port: registrations live only while
//! their session does, and the push queue collapses, leases and hands each notification to one
//! sender.

use super::{device, race, session, ticket, user, HOUR, RACERS};
use anapars_hub::error::Result;
use anapars_hub::model::ids::{Principal, SessionId, TicketId};
use anapars_hub::model::language::Language;
use anapars_hub::model::push::{ApnsEnvironment, NewPush, PushKind, PushRegistration, PushTarget};
use anapars_hub::model::time::{now_ms, Millis};
use anapars_hub::ports::store::Store;
use std::collections::HashSet;
use std::sync::Arc;

/// The queue's window (February 1970): only the queue's check queues notifications, and it claims
/// with clocks in this window, so it sees only its own.
const PUSH_EPOCH: Millis = 3_000_000_000;

fn webpush(session: SessionId, holder: Principal, at: Millis) -> PushRegistration {
    PushRegistration {
        session_id: session,
        holder,
        target: PushTarget::WebPush {
            endpoint: format!("https://push.example/{}", session.0.simple()),
            p256dh: vec![4; 65],
            auth: vec![7; 16],
        },
        preview: false,
        language: Language::Persian,
        updated_at: at,
    }
}

/// A registration needs a live session, replaces the session's earlier one, is listed only while
/// the session is live, and goes with a revocation, an unregistration and the account.
pub async fn push_registrations_live_and_die_with_their_session(store: Arc<dyn Store>) -> Result<()> {
    let now = now_ms();
    let u = user(&*store).await?;
    let who = Principal::User(u.id);
    let d = device(&*store, u.id).await?;
    let (live, _) = session(&*store, &d, now, now + HOUR).await?;
    let (expired, _) = session(&*store, &d, now - 2 * HOUR, now - HOUR).await?;
    assert!(!store.register_push(&webpush(expired.id, who, now), now).await?, "an expired session registers nothing");
    assert!(!store.register_push(&webpush(SessionId::generate(), who, now), now).await?, "an unknown session");
    assert!(store.register_push(&webpush(live.id, who, now), now).await?);
    let apns = PushRegistration {
        target: PushTarget::Apns { token: "a1b2".repeat(16), environment: ApnsEnvironment::Sandbox },
        preview: true,
        language: Language::English,
        ..webpush(live.id, who, now + 1)
    };
    assert!(store.register_push(&apns, now + 1).await?, "a second registration replaces the first");
    assert_eq!(store.push_registrations(who, now).await?, std::slice::from_ref(&apns));
    let (other, _) = session(&*store, &d, now, now + HOUR).await?;
    let fcm = PushRegistration { target: PushTarget::Fcm { token: "f".repeat(140) }, ..webpush(other.id, who, now) };
    assert!(store.register_push(&fcm, now).await?);
    assert_eq!(store.push_registrations(who, now).await?.len(), 2);
    assert_eq!(
        store.push_registrations(who, now + 2 * HOUR).await?,
        [],
        "expired sessions' registrations are not used"
    );

    assert!(store.revoke_session(live.id, now).await?);
    assert_eq!(store.push_registrations(who, now).await?, std::slice::from_ref(&fcm), "revoked with its session");
    assert!(!store.unregister_push(live.id).await?, "the revocation removed it");
    assert!(store.unregister_push(other.id).await?);
    assert!(store.push_registrations(who, now).await?.is_empty());

    let (again, _) = session(&*store, &d, now, now + HOUR).await?;
    assert!(store.register_push(&webpush(again.id, who, now), now).await?);
    store.delete_account(u.id, &[]).await?.expect("deleted");
    assert!(store.push_registrations(who, now).await?.is_empty(), "gone with the account");
    Ok(())
}

/// Notifications for one registration and ticket collapse while they wait; a claim leases them to
/// one sender (concurrent claims never share one); a retry puts one back for later with one attempt
/// more; a lease that runs out frees it; finishing removes it; the backlog counts what waits.
pub async fn the_push_queue_collapses_and_gives_each_to_one_sender(store: Arc<dyn Store>) -> Result<()> {
    let t0 = PUSH_EPOCH;
    let u = user(&*store).await?;
    let who = Principal::User(u.id);
    let d = device(&*store, u.id).await?;
    let (s, _) = session(&*store, &d, t0, now_ms() + HOUR).await?;
    assert!(store.register_push(&webpush(s.id, who, t0), t0).await?);
    let (a, b) = (ticket(&*store, u.id, now_ms()).await?, ticket(&*store, u.id, now_ms()).await?);
    let push = |ticket: TicketId, kind: PushKind, preview: Option<&str>, due_at: Millis| NewPush {
        session_id: s.id,
        ticket_id: ticket,
        kind,
        preview: preview.map(str::to_owned),
        due_at,
        created_at: t0,
    };
    store.queue_push(&push(a.id, PushKind::Assigned, None, t0 + 1_000)).await?;
    store.queue_push(&push(a.id, PushKind::Message, Some("سلام"), t0 + 9_000)).await?;
    store.queue_push(&push(b.id, PushKind::Message, None, t0 + 2_000)).await?;
    assert_eq!(store.push_backlog().await?, (2, Some(t0)));
    assert!(store.claim_pushes(t0 + 500, 30_000, 10).await?.is_empty(), "nothing due yet");

    let first = store.claim_pushes(t0 + 1_000, 30_000, 10).await?;
    assert_eq!(first.len(), 1, "{first:?}");
    let collapsed = &first[0];
    assert_eq!((collapsed.ticket_id, collapsed.kind, collapsed.events), (a.id, PushKind::Message, 2));
    assert_eq!((collapsed.preview.as_deref(), collapsed.attempts), (Some("سلام"), 0));
    assert_eq!(collapsed.registration, webpush(s.id, who, t0), "kept its first time: due at t0 + 1 s");
    // Leased: a new event for the same ticket queues a new notification instead of joining it.
    store.queue_push(&push(a.id, PushKind::Resolved, None, t0 + 3_000)).await?;
    assert!(store.claim_pushes(t0 + 1_500, 30_000, 10).await?.is_empty(), "the lease holds");
    store.retry_push(collapsed.id, t0 + 5_000).await?;
    let second = store.claim_pushes(t0 + 3_000, 30_000, 10).await?;
    let kinds: HashSet<_> = second.iter().map(|p| (p.ticket_id, p.kind)).collect();
    assert_eq!(kinds, HashSet::from([(b.id, PushKind::Message), (a.id, PushKind::Resolved)]));
    let retried = store.claim_pushes(t0 + 5_000, 30_000, 10).await?;
    assert_eq!((retried.len(), retried[0].id, retried[0].attempts), (1, collapsed.id, 1));
    // Its sender died: the lease runs out and another takes it.
    let again = store.claim_pushes(t0 + 5_000 + 30_001, 30_000, 10).await?;
    assert!(again.iter().any(|p| p.id == collapsed.id), "a lapsed lease frees the notification");
    for p in second.iter().chain(&again) {
        store.finish_push(p.id).await?;
    }
    assert_eq!(store.push_backlog().await?, (0, None));

    // Many senders at once: each notification goes to exactly one.
    for _ in 0..40 {
        let t = ticket(&*store, u.id, now_ms()).await?;
        store.queue_push(&push(t.id, PushKind::Message, None, t0 + 60_000)).await?;
    }
    let claims = race(|_| {
        let store = Arc::clone(&store);
        async move { store.claim_pushes(t0 + 60_000, 30_000, 4).await }
    })
    .await?;
    let ids: Vec<i64> = claims.iter().flatten().map(|p| p.id).collect();
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "a notification went to two senders");
    assert!(ids.len() <= 40 && ids.len() >= RACERS.min(10), "claimed {}", ids.len());
    store.unregister_push(s.id).await?;
    assert_eq!(store.push_backlog().await?, (0, None), "the queue goes with its registration");
    Ok(())
}
