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
use crate::model::phone::Phone;
use crate::model::telemetry::{ConnectionRecord, StoredView};
use crate::model::ticket::Ticket;
use crate::model::time::Millis;
use async_trait::async_trait;
use uuid::Uuid;

/// Changing, reading out and deleting an account.
#[async_trait]
pub trait AccountRecords: Send + Sync {
    /// Moves the account to `phone`: from now on only `phone` signs in to it. `Conflict` when
    /// another account holds `phone`; false when the user does not exist.
    async fn change_phone(&self, user: UserId, phone: &Phone) -> Result<bool>;
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
    /// consent, purchases (paid activations and subscriptions), tickets with their events and marks, and the sign-in codes and
    /// lock-outs stored under `phone_keys`. Adds one to the [`crate::model::deletion::DELETED_ACCOUNTS`] counter in the
    /// same transaction. `None` when there is no such user (deleted already).
    async fn delete_account(&self, user: UserId, phone_keys: &[PhoneKey]) -> Result<Option<DeletedAccount>>;
    /// A counter of the hub's own (`DELETED_ACCOUNTS`); 0 before its first increment.
    async fn counter(&self, name: &str) -> Result<u64>;
}

/// The statements that delete an account's rows, children before parents, written once for both
/// backends (`?1` is the user id; Postgres spells it `$1`). Every table keyed by a user is named
/// here, including those whose foreign key would cascade anyway.
pub(crate) const DELETE_ACCOUNT_ROWS: &[&str] = &[
    "DELETE FROM ticket_marks WHERE ticket_id IN (SELECT id FROM tickets WHERE user_id = ?1)",
    "DELETE FROM ticket_marks WHERE participant_kind = 'user' AND participant_id = ?1",
    "DELETE FROM ticket_events WHERE ticket_id IN (SELECT id FROM tickets WHERE user_id = ?1)",
    "DELETE FROM tickets WHERE user_id = ?1",
    "DELETE FROM view_events WHERE user_id = ?1",
    "DELETE FROM connections WHERE user_id = ?1",
    "DELETE FROM device_info_history WHERE user_id = ?1",
    "DELETE FROM device_info WHERE user_id = ?1",
    "DELETE FROM user_settings WHERE user_id = ?1",
    "DELETE FROM consent WHERE user_id = ?1",
    "DELETE FROM purchases WHERE user_id = ?1",
    "DELETE FROM sessions WHERE user_id = ?1",
    "DELETE FROM devices WHERE user_id = ?1",
    "DELETE FROM users WHERE id = ?1",
];

/// Deletes the sign-in codes and lock-outs of one number (`?1` is its keyed hash).
pub(crate) const DELETE_PHONE_ROWS: &[&str] =
    &["DELETE FROM sign_in_codes WHERE phone_key = ?1", "DELETE FROM phone_guards WHERE phone_key = ?1"];

/// Adds one to a counter (`?1` its name).
pub(crate) const BUMP_COUNTER: &str = "INSERT INTO hub_counters (name, value) VALUES (?1, 1)
     ON CONFLICT (name) DO UPDATE SET value = hub_counters.value + 1";

/// The tickets of a user after a `(created_at, id)` cursor (`?2`, `?3`; `?2` NULL for the first
/// page), oldest first, at most `?4`.
pub(crate) const TICKETS_AFTER: &str = "SELECT id, user_id, subject, status, agent_id, created_at, updated_at, \
     queued_at, last_seq FROM tickets WHERE user_id = ?1 AND (?2 IS NULL OR (created_at, id) > (?2, ?3)) \
     ORDER BY created_at, id LIMIT ?4";

/// The same statement for Postgres: `?N` becomes `$N`.
pub(crate) fn postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn postgres_placeholders_are_numbered_dollars() {
        assert_eq!(
            super::postgres("a = ?1 AND (?2 IS NULL OR x > ?12) AND y = '?'"),
            "a = $1 AND ($2 IS NULL OR x > $12) AND y = '?'"
        );
    }
}
