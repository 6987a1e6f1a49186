//! Rows of `purchases`.

use crate::adapters::sql::rows::internal;
use crate::error::{Error, Result};
use crate::model::ids::{PurchaseId, UserId};
use crate::model::purchase::{Purchase, PurchaseKind, PurchaseStatus};
use crate::model::time::Millis;
use uuid::Uuid;

/// The columns of `purchases` that [`PurchaseRow`] reads.
pub(in crate::adapters::sql) const PURCHASE_COLUMNS: &str = "id, user_id, reference, product, kind, amount_minor, \
     currency, purchased_at, expires_at, status, received_at, updated_at";

/// `purchases`: [`PURCHASE_COLUMNS`].
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct PurchaseRow {
    id: Uuid,
    user_id: Uuid,
    reference: String,
    product: String,
    kind: String,
    amount_minor: i64,
    currency: String,
    purchased_at: Millis,
    expires_at: Option<Millis>,
    status: String,
    received_at: Millis,
    updated_at: Millis,
}

impl TryFrom<PurchaseRow> for Purchase {
    type Error = Error;

    fn try_from(r: PurchaseRow) -> Result<Self> {
        Ok(Self {
            id: PurchaseId(r.id),
            user_id: UserId(r.user_id),
            kind: PurchaseKind::parse(&r.kind).ok_or_else(|| internal("purchases.kind", &r.kind))?,
            status: PurchaseStatus::parse(&r.status).ok_or_else(|| internal("purchases.status", &r.status))?,
            reference: r.reference,
            product: r.product,
            amount_minor: r.amount_minor,
            currency: r.currency,
            purchased_at: r.purchased_at,
            expires_at: r.expires_at,
            received_at: r.received_at,
            updated_at: r.updated_at,
        })
    }
}

/// Rows as purchases, in their order.
///
/// # Errors
/// [`Error::Internal`] for a row with an unknown kind or status.
pub(in crate::adapters::sql) fn to_purchases(rows: Vec<PurchaseRow>) -> Result<Vec<Purchase>> {
    rows.into_iter().map(Purchase::try_from).collect()
}

/// The error for inserting a purchase: a user who does not exist (never registered, or deleted)
/// breaks the foreign key, which is `not_found`, so that billing learns the account is gone.
pub(in crate::adapters::sql) fn unknown_user(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation => {
            Error::NotFound("user")
        }
        _ => Error::from(e),
    }
}
