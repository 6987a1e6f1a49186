//! What a billing report does to a stored purchase: a monotone state machine keyed by the billing
//! system's `reference`, decided here once for both storage backends.

use crate::error::{Error, Result};
use crate::model::purchase::{Purchase, PurchaseReport, PurchaseStatus, REFERENCE_REUSED};
use crate::model::time::Millis;

/// A change of a stored purchase: its new status and expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    /// The status after the report.
    pub status: PurchaseStatus,
    /// The expiry after the report.
    pub expires_at: Option<Millis>,
}

/// What a report of a stored purchase's reference does to it; `None` when nothing changes.
///
/// The terms (buyer, product, kind, amount, currency, purchase time) must be the stored ones: a
/// reference names one purchase for good. The status may leave `paid` once; `refunded` and
/// `cancelled` are final, so a replayed older `paid` cannot revive a refunded purchase. The expiry
/// only moves later (no expiry counts as the latest), so a replayed older renewal cannot shorten
/// a newer one. Both rules are monotone: the order in which reports arrive does not matter.
///
/// # Errors
/// [`Error::Conflict`] when the terms differ.
pub(crate) fn decide(stored: &Purchase, report: &PurchaseReport) -> Result<Option<Change>> {
    let same_terms = stored.user_id == report.user_id
        && stored.product == report.product
        && stored.kind == report.kind
        && stored.amount_minor == report.amount_minor
        && stored.currency == report.currency
        && stored.purchased_at == report.purchased_at;
    if !same_terms {
        return Err(Error::Conflict(REFERENCE_REUSED));
    }
    let status = match stored.status {
        PurchaseStatus::Paid => report.status,
        last => last,
    };
    let expires_at = match (stored.expires_at, report.expires_at) {
        (Some(stored), Some(reported)) => Some(stored.max(reported)),
        (None, _) | (_, None) => None,
    };
    let change = Change { status, expires_at };
    Ok((status != stored.status || expires_at != stored.expires_at).then_some(change))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::{PurchaseId, UserId};
    use crate::model::purchase::PurchaseKind;

    fn stored(status: PurchaseStatus, expires_at: Option<Millis>) -> Purchase {
        Purchase {
            id: PurchaseId::generate(),
            user_id: UserId(uuid::Uuid::from_u128(1)),
            reference: "inv-1".into(),
            product: "pro".into(),
            kind: PurchaseKind::Subscription,
            amount_minor: 1_500_000,
            currency: "IRR".into(),
            purchased_at: 1_000,
            expires_at,
            status,
            received_at: 2_000,
            updated_at: 2_000,
        }
    }

    fn report_of(p: &Purchase, status: PurchaseStatus, expires_at: Option<Millis>) -> PurchaseReport {
        PurchaseReport {
            reference: p.reference.clone(),
            user_id: p.user_id,
            product: p.product.clone(),
            kind: p.kind,
            amount_minor: p.amount_minor,
            currency: p.currency.clone(),
            purchased_at: p.purchased_at,
            expires_at,
            status,
        }
    }

    #[test]
    fn active_means_paid_and_not_expired() {
        assert!(stored(PurchaseStatus::Paid, None).is_active(i64::MAX));
        assert!(stored(PurchaseStatus::Paid, Some(10)).is_active(9));
        assert!(!stored(PurchaseStatus::Paid, Some(10)).is_active(10), "expired at its expiry");
        assert!(!stored(PurchaseStatus::Refunded, None).is_active(0));
        assert!(!stored(PurchaseStatus::Cancelled, Some(10)).is_active(0));
    }

    #[test]
    fn status_leaves_paid_once_and_stays() {
        use PurchaseStatus::*;
        let paid = stored(Paid, Some(5_000));
        let to = |status| decide(&paid, &report_of(&paid, status, Some(5_000))).ok().flatten().map(|c| c.status);
        assert_eq!((to(Paid), to(Refunded), to(Cancelled)), (None, Some(Refunded), Some(Cancelled)));
        for last in [Refunded, Cancelled] {
            let done = stored(last, Some(5_000));
            for status in [Paid, Refunded, Cancelled] {
                assert_eq!(decide(&done, &report_of(&done, status, Some(5_000))).ok(), Some(None), "{last:?}");
            }
        }
    }

    #[test]
    fn expiry_only_moves_later_and_none_is_the_latest() {
        let p = stored(PurchaseStatus::Paid, Some(5_000));
        let expiry = |e| decide(&p, &report_of(&p, PurchaseStatus::Paid, e)).ok().flatten().map(|c| c.expires_at);
        assert_eq!(expiry(Some(9_000)), Some(Some(9_000)), "renewal");
        assert_eq!(expiry(Some(4_000)), None, "an older report does not shorten it");
        assert_eq!(expiry(None), Some(None), "no expiry is later than any");
        let forever = stored(PurchaseStatus::Paid, None);
        assert_eq!(decide(&forever, &report_of(&forever, PurchaseStatus::Paid, Some(9_000))).ok(), Some(None));
    }

    #[test]
    fn other_terms_under_a_known_reference_conflict() {
        let p = stored(PurchaseStatus::Paid, Some(5_000));
        let base = report_of(&p, PurchaseStatus::Paid, Some(5_000));
        let changed: [fn(&mut PurchaseReport); 6] = [
            |r| r.user_id = UserId(uuid::Uuid::from_u128(2)),
            |r| r.product = "basic".into(),
            |r| r.kind = PurchaseKind::Activation,
            |r| r.amount_minor += 1,
            |r| r.currency = "USD".into(),
            |r| r.purchased_at += 1,
        ];
        for change in changed {
            let mut r = base.clone();
            change(&mut r);
            assert!(matches!(decide(&p, &r), Err(Error::Conflict(REFERENCE_REUSED))), "{r:?}");
        }
    }
}
