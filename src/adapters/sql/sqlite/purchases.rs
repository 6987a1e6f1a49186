//! [`Purchases`] on SQLite: a report is one `BEGIN IMMEDIATE` transaction on the writer, so the
//! read of the stored purchase and the write that follows from it cannot be split by another report.

use crate::adapters::sql::rows::{to_purchases, unknown_user, PurchaseRow, PURCHASE_COLUMNS};
use crate::adapters::sql::sqlite::SqliteStore;
use crate::error::Result;
use crate::model::ids::{PurchaseId, UserId};
use crate::model::purchase::{Purchase, PurchaseReport, Recorded};
use crate::model::time::Millis;
use crate::ports::store::purchases::Purchases;
use async_trait::async_trait;

#[async_trait]
impl Purchases for SqliteStore {
    async fn record_purchase(&self, report: &PurchaseReport, now: Millis) -> Result<Recorded> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let created = sqlx::query_as::<_, PurchaseRow>(&format!(
            "INSERT INTO purchases (id, user_id, reference, product, kind, amount_minor, currency, purchased_at,
                 expires_at, status, received_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
             ON CONFLICT (reference) DO NOTHING
             RETURNING {PURCHASE_COLUMNS}"
        ))
        .bind(PurchaseId::generate().0)
        .bind(report.user_id.0)
        .bind(&report.reference)
        .bind(&report.product)
        .bind(report.kind.as_str())
        .bind(report.amount_minor)
        .bind(&report.currency)
        .bind(report.purchased_at)
        .bind(report.expires_at)
        .bind(report.status.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unknown_user)?;
        if let Some(row) = created {
            let purchase = Purchase::try_from(row)?;
            tx.commit().await?;
            return Ok(Recorded::Created(purchase));
        }
        let stored =
            sqlx::query_as::<_, PurchaseRow>(&format!("SELECT {PURCHASE_COLUMNS} FROM purchases WHERE reference = ?1"))
                .bind(&report.reference)
                .fetch_one(&mut *tx)
                .await?;
        let stored = Purchase::try_from(stored)?;
        let Some(change) = crate::domain::billing::rules::decide(&stored, report)? else {
            return Ok(Recorded::Duplicate(stored));
        };
        let row = sqlx::query_as::<_, PurchaseRow>(&format!(
            "UPDATE purchases SET status = ?2, expires_at = ?3, updated_at = ?4 WHERE id = ?1
             RETURNING {PURCHASE_COLUMNS}"
        ))
        .bind(stored.id.0)
        .bind(change.status.as_str())
        .bind(change.expires_at)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let updated = Purchase::try_from(row)?;
        tx.commit().await?;
        Ok(Recorded::Updated(updated))
    }

    async fn purchases(&self, user: UserId) -> Result<Vec<Purchase>> {
        let rows = sqlx::query_as::<_, PurchaseRow>(&format!(
            "SELECT {PURCHASE_COLUMNS} FROM purchases WHERE user_id = ?1 ORDER BY purchased_at DESC, id DESC"
        ))
        .bind(user.0)
        .fetch_all(&self.readers)
        .await?;
        to_purchases(rows)
    }
}
