//! The storage port for purchases and subscriptions, as the group's billing system reports them.
//!
//! Billing may send a report more than once (its retries, a replayed request) and out of order (a
//! renewal overtaking the purchase, a refund racing a retry of the original report). So a report is
//! applied as a step of a monotone state machine keyed by the billing system's `reference`: what was
//! bought never changes, the status only leaves `paid`, and the expiry only moves later. Applying
//! the same reports in any order, any number of times, ends in the same row. The decision is made
//! once for both backends, in [`decide`]; each backend only makes reading and writing the row one
//! atomic step.

use crate::error::{Error, Result};
use crate::ids::{PurchaseId, UserId};
use crate::time::Millis;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Why a report is refused whose reference is stored with other terms.
pub const REFERENCE_REUSED: &str = "reference already used for a different purchase";

/// What was bought.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseKind {
    /// The activation of an application: permanent unless it has an expiry.
    Activation,
    /// A subscription, until its expiry (renewals move it later).
    Subscription,
}

impl PurchaseKind {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activation => "activation",
            Self::Subscription => "subscription",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "activation" => Some(Self::Activation),
            "subscription" => Some(Self::Subscription),
            _ => None,
        }
    }
}

/// Where a payment stands. `refunded` and `cancelled` are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatus {
    /// Paid: the purchase counts while it has not expired.
    Paid,
    /// The money went back to the buyer.
    Refunded,
    /// Cancelled by billing (a chargeback, a cancelled subscription).
    Cancelled,
}

impl PurchaseStatus {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Refunded => "refunded",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "paid" => Some(Self::Paid),
            "refunded" => Some(Self::Refunded),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A validated report from the billing system (the HTTP body is checked by `src/billing/report.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurchaseReport {
    /// The billing system's id of the purchase: 1 to 128 printable ASCII characters.
    pub reference: String,
    /// The buyer.
    pub user_id: UserId,
    /// The product bought (the billing system's name for it).
    pub product: String,
    /// Activation or subscription.
    pub kind: PurchaseKind,
    /// The price in minor currency units (rials, cents), at least 0.
    pub amount_minor: i64,
    /// ISO 4217 code: three upper-case letters.
    pub currency: String,
    /// When it was bought, by billing's clock.
    pub purchased_at: Millis,
    /// When it stops counting; `None`: never (activations only).
    pub expires_at: Option<Millis>,
    /// Where the payment stands now.
    pub status: PurchaseStatus,
}

/// A stored purchase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purchase {
    /// The hub's id.
    pub id: PurchaseId,
    /// The buyer.
    pub user_id: UserId,
    /// The billing system's id.
    pub reference: String,
    /// The product bought.
    pub product: String,
    /// Activation or subscription.
    pub kind: PurchaseKind,
    /// The price in minor currency units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// When it was bought, by billing's clock.
    pub purchased_at: Millis,
    /// When it stops counting; `None`: never.
    pub expires_at: Option<Millis>,
    /// Where the payment stands.
    pub status: PurchaseStatus,
    /// When the hub first heard of it.
    pub received_at: Millis,
    /// When a report last changed it.
    pub updated_at: Millis,
}

impl Purchase {
    /// Whether the purchase counts at `now`: paid, and not expired.
    pub fn is_active(&self, now: Millis) -> bool {
        self.status == PurchaseStatus::Paid && self.expires_at.is_none_or(|end| end > now)
    }
}

/// What recording a report did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The reference was new: the purchase was stored.
    Created(Purchase),
    /// The report moved the stored purchase on (a refund, a cancellation, a renewal).
    Updated(Purchase),
    /// Nothing changed: a repeated or older report.
    Duplicate(Purchase),
}

impl Recorded {
    /// The purchase as stored after the report.
    pub fn purchase(&self) -> &Purchase {
        match self {
            Self::Created(p) | Self::Updated(p) | Self::Duplicate(p) => p,
        }
    }

    /// `created`, `updated` or `duplicate`: the wire outcome and the metrics label.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Created(_) => "created",
            Self::Updated(_) => "updated",
            Self::Duplicate(_) => "duplicate",
        }
    }
}

/// Purchases and subscriptions.
#[async_trait]
pub trait Purchases: Send + Sync {
    /// Records a billing report, idempotent on `reference` (race-free under concurrency on both
    /// backends): a new reference is stored; a known one moves by the rules of [`decide`].
    ///
    /// # Errors
    /// `not_found` ("user") for a new reference of a user who does not exist; `conflict` for a
    /// known reference whose terms differ; `unavailable`.
    async fn record_purchase(&self, report: &PurchaseReport, now: Millis) -> Result<Recorded>;
    /// The user's purchases, newest purchased_at first.
    async fn purchases(&self, user: UserId) -> Result<Vec<Purchase>>;
}

/// A change of a stored purchase: its new status and expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Change {
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
pub(super) fn decide(stored: &Purchase, report: &PurchaseReport) -> Result<Option<Change>> {
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

/// The error for inserting a purchase: a user who does not exist (never registered, or deleted)
/// breaks the foreign key, which is `not_found`, so that billing learns the account is gone.
pub(super) fn unknown_user(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation => {
            Error::NotFound("user")
        }
        _ => Error::from(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
