//! Purchases and subscriptions as the billing system reports them.

use crate::model::ids::{PurchaseId, UserId};
use crate::model::time::Millis;
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
