//! The storage port for push notifications: device sessions' registrations, the durable queue
//! that every node's sender takes notifications from, and the SMS reminders of unread replies.

use crate::error::Result;
use crate::model::ids::{AgentId, Principal, SessionId, TicketId, UserId};
use crate::model::push::{DueReminder, NewPush, NewReminder, PushRegistration, QueuedPush, ReminderOutcome};
use crate::model::time::Millis;
use async_trait::async_trait;

/// Registrations and the push queue.
#[async_trait]
pub trait Pushes: Send + Sync {
    /// Stores `registration` for its session, replacing the session's previous one (and dropping
    /// what was queued for that). False, storing nothing, when the session is not live at `now`.
    async fn register_push(&self, registration: &PushRegistration, now: Millis) -> Result<bool>;

    /// Removes the session's registration and what is queued for it. False when it had none.
    async fn unregister_push(&self, session: SessionId) -> Result<bool>;

    /// The registrations of the people in `who` whose sessions are live at `now`.
    async fn push_registrations(&self, who: &[Principal], now: Millis) -> Result<Vec<PushRegistration>>;

    /// Queues notifications and SMS reminders, in order, in one transaction. A notification still
    /// waiting (not claimed by a sender) for the same registration and ticket absorbs a new one
    /// instead: it takes the new kind and preview, counts its events, and keeps its time, so a
    /// burst of events is one notification, on time. A reminder waiting for the same ticket keeps
    /// its time and takes the newer `seq`.
    async fn queue_pushes(&self, pushes: &[NewPush], reminders: &[NewReminder]) -> Result<()>;

    /// Claims up to `limit` notifications due at `now` and not claimed by another sender (or whose
    /// claim ran out), for `lease` ms: no other sender takes them meanwhile. Oldest due first.
    async fn claim_pushes(&self, now: Millis, lease: Millis, limit: u32) -> Result<Vec<QueuedPush>>;

    /// Removes notifications from the queue (sent, or given up), in one statement.
    async fn finish_pushes(&self, ids: &[i64]) -> Result<()>;

    /// Puts a claimed notification back, due at `due_at`, with one attempt more.
    async fn retry_push(&self, id: i64, due_at: Millis) -> Result<()>;

    /// Agents with a registration on a session live at `now`.
    async fn registered_agents(&self, now: Millis) -> Result<Vec<AgentId>>;

    /// The user's tickets with an event after the user's read mark: the app's badge.
    async fn unread_conversations(&self, user: UserId) -> Result<u32>;

    /// How many notifications wait, and when the oldest was queued.
    async fn push_backlog(&self) -> Result<(u64, Option<Millis>)>;

    /// Claims up to `limit` reminders due at `now` and not claimed by another node (or whose
    /// claim ran out), for `lease` ms. Oldest due first.
    async fn claim_reminders(&self, now: Millis, lease: Millis, limit: u32) -> Result<Vec<DueReminder>>;

    /// Records what became of the ticket's reminder claimed at `seq`, ending the claim. A reminder
    /// that is no longer needed stays waiting when a newer reply came during the claim.
    async fn settle_reminder(&self, ticket: TicketId, seq: u64, outcome: ReminderOutcome) -> Result<()>;
}
