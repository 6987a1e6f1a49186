//! The storage port for the audit log.

use crate::error::Result;
use crate::model::audit::AuditEntry;
use crate::model::ids::UserId;
use crate::model::time::Millis;
use async_trait::async_trait;
use uuid::Uuid;

/// The audit log: entries appended, read by time, kept for a while.
#[async_trait]
pub trait Audit: Send + Sync {
    /// Appends an entry.
    async fn record(&self, entry: &AuditEntry) -> Result<()>;
    /// Entries from `from` (inclusive) to `to` (exclusive) in id order, after the entry `after` when
    /// given (the previous page's last), at most `limit`.
    async fn audit_entries(&self, from: Millis, to: Millis, after: Option<Uuid>, limit: u32)
        -> Result<Vec<AuditEntry>>;
    /// Every entry the user made or that concerns them, oldest first.
    async fn user_audit_entries(&self, user: UserId) -> Result<Vec<AuditEntry>>;
    /// Deletes every entry the user made or that concerns them (their account is being deleted).
    async fn forget_user_audit(&self, user: UserId) -> Result<u64>;
    /// Deletes the entries older than `before`.
    async fn purge_audit(&self, before: Millis) -> Result<u64>;
}
