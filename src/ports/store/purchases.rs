//! The storage port for purchases and subscriptions, as the group's billing system reports them.
//!
//! Billing may send a report more than once (its retries, a replayed request) and out of order (a
//! renewal overtaking the purchase, a refund racing a retry of the original report). So a report is
//! applied as a step of a monotone state machine keyed by the billing system's `reference`: what was
//! bought never changes, the status only leaves `paid`, and the expiry only moves later. Applying
//! the same reports in any order, any number of times, ends in the same row. The decision is made
//! once for both backends, in [`crate::domain::billing::rules::decide`]; each backend only makes
//! reading and writing the row one atomic step.

use crate::error::Result;
use crate::model::ids::UserId;
use crate::model::purchase::{Purchase, PurchaseReport, Recorded};
use crate::model::time::Millis;
use async_trait::async_trait;

/// Purchases and subscriptions.
#[async_trait]
pub trait Purchases: Send + Sync {
    /// Records a billing report, idempotent on `reference` (race-free under concurrency on both
    /// backends): a new reference is stored; a known one moves by the rules of
    /// [`crate::domain::billing::rules::decide`].
    ///
    /// # Errors
    /// `not_found` ("user") for a new reference of a user who does not exist; `conflict` for a
    /// known reference whose terms differ; `unavailable`.
    async fn record_purchase(&self, report: &PurchaseReport, now: Millis) -> Result<Recorded>;
    /// The user's purchases, newest purchased_at first.
    async fn purchases(&self, user: UserId) -> Result<Vec<Purchase>>;
}
