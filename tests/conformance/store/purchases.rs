//! Checks of the [`anapars_hub::ports::store::purchases::Purchases`] port: idempotent reports, the monotone
//! status and expiry, conflicts, unknown users, races and the listing order.

use super::{race, user, RACERS};
use anapars_hub::error::{Error, Result};
use anapars_hub::model::ids::UserId;
use anapars_hub::model::purchase::{
    Purchase, PurchaseKind, PurchaseReport, PurchaseStatus, Recorded, REFERENCE_REUSED,
};
use anapars_hub::model::time::{now_ms, Millis};
use anapars_hub::ports::store::Store;
use std::sync::Arc;
use uuid::Uuid;

const DAY: Millis = 86_400_000;

/// A paid 30-day subscription of `user` bought at `at`, under a reference no other check uses.
pub(super) fn subscription(user: UserId, at: Millis) -> PurchaseReport {
    PurchaseReport {
        reference: format!("inv-{}", Uuid::new_v4().simple()),
        user_id: user,
        product: "anapars-pro".into(),
        kind: PurchaseKind::Subscription,
        amount_minor: 4_900_000,
        currency: "IRR".into(),
        purchased_at: at,
        expires_at: Some(at + 30 * DAY),
        status: PurchaseStatus::Paid,
    }
}

fn created(recorded: Recorded) -> Purchase {
    match recorded {
        Recorded::Created(p) => p,
        other => panic!("expected a new purchase, got {other:?}"),
    }
}

/// A new reference is stored with every field of the report and the hub's times; the same report
/// again changes nothing and answers the stored purchase.
pub async fn record_purchase_stores_a_report_once(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let now = now_ms();
    let report = subscription(u.id, now - DAY);
    let p = created(store.record_purchase(&report, now).await?);
    let expected = Purchase {
        id: p.id,
        user_id: u.id,
        reference: report.reference.clone(),
        product: report.product.clone(),
        kind: report.kind,
        amount_minor: report.amount_minor,
        currency: report.currency.clone(),
        purchased_at: report.purchased_at,
        expires_at: report.expires_at,
        status: PurchaseStatus::Paid,
        received_at: now,
        updated_at: now,
    };
    assert_eq!(p, expected);
    assert!(p.is_active(now));
    let again = store.record_purchase(&report, now + 1).await?;
    assert_eq!(again, Recorded::Duplicate(expected.clone()), "a repeated report changes nothing, not even updated_at");
    assert_eq!(store.purchases(u.id).await?, vec![expected]);
    Ok(())
}

/// The status leaves `paid` once: refunded and cancelled are final, a later `paid` is ignored.
pub async fn purchase_status_only_leaves_paid(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let now = now_ms();
    for last in [PurchaseStatus::Refunded, PurchaseStatus::Cancelled] {
        let report = subscription(u.id, now);
        let p = created(store.record_purchase(&report, now).await?);
        let end = PurchaseReport { status: last, ..report.clone() };
        let Recorded::Updated(ended) = store.record_purchase(&end, now + 1).await? else {
            panic!("{last:?} of a paid purchase must update it");
        };
        assert_eq!((ended.id, ended.status, ended.updated_at, ended.received_at), (p.id, last, now + 1, now));
        assert!(!ended.is_active(now + 1));
        for status in [PurchaseStatus::Paid, PurchaseStatus::Refunded, PurchaseStatus::Cancelled] {
            let replay = PurchaseReport { status, ..report.clone() };
            let answer = store.record_purchase(&replay, now + 2).await?;
            assert_eq!(answer, Recorded::Duplicate(ended.clone()), "{last:?} is final: {status:?} changes nothing");
        }
    }
    Ok(())
}

/// The expiry only moves later (a renewal); an older report does not shorten it, and an
/// activation without expiry is permanent.
pub async fn purchase_expiry_only_moves_later(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let now = now_ms();
    let first = subscription(u.id, now);
    created(store.record_purchase(&first, now).await?);
    let renewed = PurchaseReport { expires_at: Some(now + 60 * DAY), ..first.clone() };
    let Recorded::Updated(p) = store.record_purchase(&renewed, now + 1).await? else {
        panic!("a renewal must update the purchase");
    };
    assert_eq!(p.expires_at, Some(now + 60 * DAY));
    let answer = store.record_purchase(&first, now + 2).await?;
    assert_eq!(answer, Recorded::Duplicate(p), "the older expiry is ignored");

    let activation = PurchaseReport { kind: PurchaseKind::Activation, expires_at: None, ..subscription(u.id, now) };
    let forever = created(store.record_purchase(&activation, now).await?);
    assert!(forever.expires_at.is_none() && forever.is_active(Millis::MAX));
    let limited = PurchaseReport { expires_at: Some(now + DAY), ..activation };
    assert_eq!(store.record_purchase(&limited, now + 1).await?, Recorded::Duplicate(forever));
    Ok(())
}

/// A known reference with other terms (buyer, product, kind, amount, currency, purchase time) is a
/// conflict, and the stored purchase stays as it was.
pub async fn record_purchase_refuses_a_reused_reference(store: Arc<dyn Store>) -> Result<()> {
    let (u, other) = (user(&*store).await?, user(&*store).await?);
    let now = now_ms();
    let report = subscription(u.id, now);
    let p = created(store.record_purchase(&report, now).await?);
    let reused = [
        PurchaseReport { user_id: other.id, ..report.clone() },
        PurchaseReport { product: "anapars-basic".into(), ..report.clone() },
        PurchaseReport { kind: PurchaseKind::Activation, ..report.clone() },
        PurchaseReport { amount_minor: report.amount_minor + 1, ..report.clone() },
        PurchaseReport { currency: "USD".into(), ..report.clone() },
        PurchaseReport { purchased_at: now - 1, ..report.clone() },
    ];
    for r in &reused {
        let outcome = store.record_purchase(r, now + 1).await;
        assert!(matches!(outcome, Err(Error::Conflict(REFERENCE_REUSED))), "{r:?}: {outcome:?}");
    }
    assert_eq!(store.purchases(u.id).await?, vec![p]);
    assert!(store.purchases(other.id).await?.is_empty());
    Ok(())
}

/// A new reference of a user who does not exist is `not_found` ("user"), and nothing is stored.
pub async fn record_purchase_of_an_unknown_user_is_not_found(store: Arc<dyn Store>) -> Result<()> {
    let nobody = UserId::generate();
    let outcome = store.record_purchase(&subscription(nobody, now_ms()), now_ms()).await;
    assert!(matches!(outcome, Err(Error::NotFound("user"))), "{outcome:?}");
    assert!(store.purchases(nobody).await?.is_empty());
    Ok(())
}

/// Concurrent reports of one reference store one row: one call creates it, the others see it. With
/// half of them refunds, the end is refunded whatever the order (the rules are monotone).
pub async fn record_purchase_races_store_one_row(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let now = now_ms();
    let report = subscription(u.id, now);
    let results = race(|i| {
        let store = Arc::clone(&store);
        let r = PurchaseReport {
            status: if i % 2 == 0 { PurchaseStatus::Paid } else { PurchaseStatus::Refunded },
            ..report.clone()
        };
        async move { store.record_purchase(&r, now).await }
    })
    .await?;
    let creations = results.iter().filter(|r| matches!(r, Recorded::Created(_))).count();
    let updates = results.iter().filter(|r| matches!(r, Recorded::Updated(_))).count();
    assert_eq!(creations, 1, "{results:?}");
    assert!(updates <= 1, "only one report can move paid to refunded: {results:?}");
    assert_eq!(results.len(), RACERS);
    let ids: std::collections::HashSet<_> = results.iter().map(|r| r.purchase().id).collect();
    assert_eq!(ids.len(), 1, "every call answers the same purchase");
    let stored = store.purchases(u.id).await?;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, PurchaseStatus::Refunded);
    Ok(())
}

/// A user's purchases are theirs only, newest `purchased_at` first.
pub async fn purchases_are_the_users_own_newest_first(store: Arc<dyn Store>) -> Result<()> {
    let (u, other) = (user(&*store).await?, user(&*store).await?);
    let now = now_ms();
    for at in [now - 2 * DAY, now, now - DAY] {
        store.record_purchase(&subscription(u.id, at), now).await?;
    }
    store.record_purchase(&subscription(other.id, now + DAY), now).await?;
    let times: Vec<Millis> = store.purchases(u.id).await?.iter().map(|p| p.purchased_at).collect();
    assert_eq!(times, vec![now, now - DAY, now - 2 * DAY]);
    assert_eq!(store.purchases(other.id).await?.len(), 1);
    Ok(())
}
