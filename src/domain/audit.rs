//! Writing to the audit log, and reading it for supervisors.
//!
//! An entry is written after the change it records has committed, in a statement of its own: a
//! failure to write it is logged (`audit entry not written`) and does not undo or fail the change.

use crate::error::{Error, Result};
use crate::model::audit::AuditEntry;
use crate::model::ids::Principal;
use crate::model::time::Millis;
use crate::ports::store::agents::Agents;
use crate::ports::store::audit::Audit;
use uuid::Uuid;

/// Most entries one page of [`page`] returns.
pub const MAX_PAGE: u32 = 1000;

/// Appends `entry`; a failure is logged.
pub async fn record(audit: &dyn Audit, entry: &AuditEntry) {
    if let Err(e) = audit.record(entry).await {
        tracing::warn!(error = %e, action = %entry.action, "audit entry not written");
    }
}

/// A page of the log for supervisor `who`: entries from `from` to `to` (ms), after `after`.
///
/// # Errors
/// `forbidden` (not a supervisor), `bad_request` for a range that ends before it starts or a
/// limit outside 1..=1000, `unavailable`.
pub async fn page(
    audit: &dyn Audit,
    agents: &dyn Agents,
    who: Principal,
    from: Millis,
    to: Millis,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    crate::domain::agents::require_supervisor(agents, who).await?;
    if to < from {
        return Err(Error::BadRequest("`to` is before `from`".into()));
    }
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::BadRequest(format!("limit must be 1 to {MAX_PAGE}")));
    }
    audit.audit_entries(from, to, after, limit).await
}
