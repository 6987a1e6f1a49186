//! Checks of the [`anapars_hub::ports::store::push::Pushes`] port: registrations live only while
//! their session does, and the push queue collapses, leases and hands each notification to one
//! sender.

use super::{device, race, session, ticket, user, FAR_FUTURE, HOUR, RACERS};
use anapars_hub::error::Result;
use anapars_hub::model::ids::{Principal, SessionId, TicketId};
use anapars_hub::model::language::Language;
use anapars_hub::model::push::{
    ApnsEnvironment, DueReminder, NewPush, NewReminder, PushKind, PushRegistration, PushTarget, ReminderOutcome,
};
use anapars_hub::model::telemetry::{ConsentChange, ConsentDefaults};
use anapars_hub::model::ticket::Author;
use anapars_hub::model::time::{now_ms, Millis};
use anapars_hub::ports::store::Store;
use std::collections::HashSet;
use std::sync::Arc;

/// The reminders' window (early February 1970), apart from the queue's.
const REMINDER_EPOCH: Millis = 2_900_000_000;

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
    assert_eq!(store.push_registrations(&[who], now).await?, std::slice::from_ref(&apns));
    let (other, _) = session(&*store, &d, now, now + HOUR).await?;
    let fcm = PushRegistration { target: PushTarget::Fcm { token: "f".repeat(140) }, ..webpush(other.id, who, now) };
    assert!(store.register_push(&fcm, now).await?);
    assert_eq!(store.push_registrations(&[who], now).await?.len(), 2);
    let other_user = user(&*store).await?;
    let someone = Principal::User(other_user.id);
    let (theirs, _) = session(&*store, &device(&*store, other_user.id).await?, now, now + HOUR).await?;
    assert!(store.register_push(&webpush(theirs.id, someone, now), now).await?);
    assert_eq!(store.push_registrations(&[someone, who], now).await?.len(), 3, "several people at once");
    assert_eq!(store.push_registrations(&[someone], now).await?, [webpush(theirs.id, someone, now)]);
    assert!(store.push_registrations(&[], now).await?.is_empty());
    assert_eq!(
        store.push_registrations(&[who], now + 2 * HOUR).await?,
        [],
        "expired sessions' registrations are not used"
    );

    assert!(store.revoke_session(live.id, now).await?);
    assert_eq!(store.push_registrations(&[who], now).await?, std::slice::from_ref(&fcm), "revoked with its session");
    assert!(!store.unregister_push(live.id).await?, "the revocation removed it");
    assert!(store.unregister_push(other.id).await?);
    assert!(store.push_registrations(&[who], now).await?.is_empty());

    let (again, _) = session(&*store, &d, now, now + HOUR).await?;
    assert!(store.register_push(&webpush(again.id, who, now), now).await?);
    store.delete_account(u.id, &[]).await?.expect("deleted");
    assert!(store.push_registrations(&[who], now).await?.is_empty(), "gone with the account");
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
        events: 1,
        due_at,
        created_at: t0,
    };
    store.queue_pushes(&[push(a.id, PushKind::Assigned, None, t0 + 1_000)], &[]).await?;
    let folded = NewPush { events: 2, ..push(a.id, PushKind::Message, Some("سلام"), t0 + 9_000) };
    store.queue_pushes(&[folded, push(b.id, PushKind::Message, None, t0 + 2_000)], &[]).await?;
    assert_eq!(store.push_backlog().await?, (2, Some(t0)));
    assert!(store.claim_pushes(t0 + 500, 30_000, 10).await?.is_empty(), "nothing due yet");

    let first = store.claim_pushes(t0 + 1_000, 30_000, 10).await?;
    assert_eq!(first.len(), 1, "{first:?}");
    let collapsed = &first[0];
    assert_eq!((collapsed.ticket_id, collapsed.kind, collapsed.events), (a.id, PushKind::Message, 3));
    assert_eq!((collapsed.preview.as_deref(), collapsed.attempts), (Some("سلام"), 0));
    assert_eq!(collapsed.registration, webpush(s.id, who, t0), "kept its first time: due at t0 + 1 s");
    // Leased: a new event for the same ticket queues a new notification instead of joining it.
    store.queue_pushes(&[push(a.id, PushKind::Resolved, None, t0 + 3_000)], &[]).await?;
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
    let finished: Vec<i64> = second.iter().chain(&again).map(|p| p.id).collect();
    store.finish_pushes(&finished).await?;
    store.finish_pushes(&[]).await?;
    assert_eq!(store.push_backlog().await?, (0, None));

    // Many senders at once: each notification goes to exactly one.
    let mut many = Vec::new();
    for _ in 0..40 {
        let t = ticket(&*store, u.id, now_ms()).await?;
        many.push(push(t.id, PushKind::Message, None, t0 + 60_000));
    }
    store.queue_pushes(&many, &[]).await?;
    assert_eq!(store.push_backlog().await?, (40, Some(t0)), "one call queues them all");
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

/// A reminder per ticket: later replies keep its time and raise its `seq`; a claim leases it to one
/// node with what decides it (the user's read mark, consent, registrations, the last send); a reply
/// during the claim keeps it waiting past a drop; sent, it waits for the next reply; failures count.
pub async fn sms_reminders_wait_per_ticket_and_go_to_one_node(store: Arc<dyn Store>) -> Result<()> {
    let r0 = REMINDER_EPOCH;
    let u = user(&*store).await?;
    let t = ticket(&*store, u.id, now_ms()).await?;
    let reply = |seq: u64, due_at: Millis| NewReminder { ticket_id: t.id, user_id: u.id, seq, due_at };
    store.queue_pushes(&[], &[reply(2, r0 + 1_000)]).await?;
    store.queue_pushes(&[], &[reply(3, r0 + 5_000)]).await?;
    assert!(store.claim_reminders(r0 + 999, 30_000, 10).await?.is_empty(), "not due yet");
    let first = store.claim_reminders(r0 + 1_000, 30_000, 10).await?;
    let expected = DueReminder {
        ticket_id: t.id,
        user_id: u.id,
        seq: 3,
        read_seq: 0,
        sent_at: None,
        attempts: 0,
        consent: false,
        registered: false,
    };
    assert_eq!(first, std::slice::from_ref(&expected), "the first reply's time, the newest reply");
    assert!(store.claim_reminders(r0 + 2_000, 30_000, 10).await?.is_empty(), "the lease holds");

    // A reply during the claim: dropping the claimed one leaves the new one waiting.
    store.queue_pushes(&[], &[reply(4, r0 + 9_000)]).await?;
    store.settle_reminder(t.id, 3, ReminderOutcome::Dropped).await?;
    assert!(store.claim_reminders(r0 + 8_999, 30_000, 10).await?.is_empty());
    let again = store.claim_reminders(r0 + 9_000, 30_000, 10).await?;
    assert_eq!(again, [DueReminder { seq: 4, ..expected.clone() }]);
    store.settle_reminder(t.id, 4, ReminderOutcome::Sent(r0 + 9_000)).await?;
    assert!(store.claim_reminders(r0 + HOUR, 30_000, 10).await?.is_empty(), "sent: nothing waits");

    // What decides the next one is read with it.
    store.mark(t.id, Author::User(u.id), 4, 4).await?;
    let defaults = ConsentDefaults { analytics: true, personalisation: true };
    let on = ConsentChange { sms_reminders: Some(true), ..Default::default() };
    store.set_consent(u.id, on, defaults, now_ms()).await?;
    let d = device(&*store, u.id).await?;
    let (s, _) = session(&*store, &d, now_ms(), now_ms() + HOUR).await?;
    assert!(store.register_push(&webpush(s.id, Principal::User(u.id), now_ms()), now_ms()).await?);
    store.queue_pushes(&[], &[reply(6, r0 + 20_000)]).await?;
    let third = store.claim_reminders(r0 + 20_000, 30_000, 10).await?;
    let decided = DueReminder {
        seq: 6,
        read_seq: 4,
        sent_at: Some(r0 + 9_000),
        consent: true,
        registered: true,
        ..expected.clone()
    };
    assert_eq!(third, std::slice::from_ref(&decided));
    store.settle_reminder(t.id, 6, ReminderOutcome::Later { due_at: r0 + 30_000, failed: true }).await?;
    let retried = store.claim_reminders(r0 + 30_000, 30_000, 10).await?;
    assert_eq!(retried, [DueReminder { attempts: 1, ..decided.clone() }], "a failed send counts");
    // Its node died: the lease runs out and another takes it.
    let taken = store.claim_reminders(r0 + 60_001, 30_000, 10).await?;
    assert_eq!(taken.len(), 1);
    store.settle_reminder(t.id, 6, ReminderOutcome::Later { due_at: r0 + 70_000, failed: false }).await?;
    assert_eq!(store.claim_reminders(r0 + 70_000, 30_000, 10).await?[0].attempts, 0, "a try without failure resets");
    store.settle_reminder(t.id, 6, ReminderOutcome::Dropped).await?;
    assert!(store.claim_reminders(FAR_FUTURE, 30_000, 10).await?.is_empty());
    store.delete_account(u.id, &[]).await?.expect("deleted");
    Ok(())
}
