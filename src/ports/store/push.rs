//! The storage port for push notifications: device sessions' registrations, and the durable queue
//! that every node's sender takes notifications from.

use crate::error::Result;
use crate::model::ids::{AgentId, Principal, SessionId, UserId};
use crate::model::push::{NewPush, PushRegistration, QueuedPush};
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

    /// The registrations of `who` whose sessions are live at `now`.
    async fn push_registrations(&self, who: Principal, now: Millis) -> Result<Vec<PushRegistration>>;

    /// Queues a notification. One still waiting (not claimed by a sender) for the same
    /// registration and ticket absorbs it instead: it takes the new kind and preview, counts one
    /// event more, and keeps its time, so a burst of events is one notification, on time.
    async fn queue_push(&self, push: &NewPush) -> Result<()>;

    /// Claims up to `limit` notifications due at `now` and not claimed by another sender (or whose
    /// claim ran out), for `lease` ms: no other sender takes them meanwhile. Oldest due first.
    async fn claim_pushes(&self, now: Millis, lease: Millis, limit: u32) -> Result<Vec<QueuedPush>>;

    /// Removes a notification from the queue (sent, or given up).
    async fn finish_push(&self, id: i64) -> Result<()>;

    /// Puts a claimed notification back, due at `due_at`, with one attempt more.
    async fn retry_push(&self, id: i64, due_at: Millis) -> Result<()>;

    /// Agents with a registration on a session live at `now`.
    async fn registered_agents(&self, now: Millis) -> Result<Vec<AgentId>>;

    /// The user's tickets with an event after the user's read mark: the app's badge.
    async fn unread_conversations(&self, user: UserId) -> Result<u32>;

    /// How many notifications wait, and when the oldest was queued.
    async fn push_backlog(&self) -> Result<(u64, Option<Millis>)>;
}
