//! The [`AccountRecords`] port: what the users' rights need of the store. Changing the mobile
//! number, reading everything kept about an account page by page (the export streams it), and
//! deleting all of it in one transaction.
//!
//! Every table that holds personal data is keyed by `user_id`; deleting an account names each of
//! them explicitly (rather than trusting `ON DELETE CASCADE` alone), so that a table added later
//! without the cascade is caught by the conformance check that looks for traces in every table.

use crate::error::Result;
use crate::model::account::{PhoneKey, Session};
use crate::model::deletion::DeletedAccount;
use crate::model::ids::{TicketId, UserId};
use crate::model::telemetry::{ConnectionRecord, StoredView};
use crate::model::ticket::Ticket;
use crate::model::time::Millis;
use async_trait::async_trait;
use uuid::Uuid;

/// Changing, reading out and deleting an account.
#[async_trait]
pub trait AccountRecords: Send + Sync {
    /// Every session of the user, live, expired or revoked (until purged), oldest first.
    async fn all_sessions(&self, user: UserId) -> Result<Vec<Session>>;
    /// The user's view events whose storage id is greater than `after`, oldest first, with that
    /// id (the cursor of the next page).
    async fn views_after(&self, user: UserId, after: i64, limit: u32) -> Result<Vec<(i64, StoredView)>>;
    /// The user's connection records after the cursor `(connected_at, id)`, oldest first.
    async fn connections_after(
        &self,
        user: UserId,
        after: Option<(Millis, Uuid)>,
        limit: u32,
    ) -> Result<Vec<ConnectionRecord>>;
    /// The user's tickets after the cursor `(created_at, id)`, oldest first.
    async fn tickets_after(&self, user: UserId, after: Option<(Millis, TicketId)>, limit: u32) -> Result<Vec<Ticket>>;
    /// Deletes the account and everything kept about it in one transaction: the user row (number,
    /// profile), devices and their reports, sessions, connection records, view events, settings,
    /// consent, purchases (paid activations and subscriptions), tickets with their events and
    /// marks, and the sign-in codes and lock-outs stored under `phone_keys`. Adds one to the
    /// [`crate::model::deletion::DELETED_ACCOUNTS`] counter in the same transaction. `None` when
    /// there is no such user (deleted already).
    async fn delete_account(&self, user: UserId, phone_keys: &[PhoneKey]) -> Result<Option<DeletedAccount>>;
    /// A counter of the hub's own (`DELETED_ACCOUNTS`); 0 before its first increment.
    async fn counter(&self, name: &str) -> Result<u64>;
}
