//! Group commit for messages: concurrent sends are gathered into batches and each batch is stored in
//! one transaction (`Tickets::append_messages`), so the database pays one commit (one fsync) for
//! many messages. A send is answered only after its batch committed and its events were announced
//! (in the batch's order, so each ticket's events go out in seq order); when storage fails or times out
//! the whole batch is answered `unavailable` and nothing of it is acknowledged. The queue in front of
//! the batches is bounded: when it is full the sender gets `overloaded` at once instead of waiting
//! without limit. The batching itself is the domain's [`group_commit`](crate::domain::group_commit).
//!
//! Batches run concurrently, so two messages to one ticket queued while neither is stored yet may
//! be stored in either order: a caller that needs its order waits for the first (the session keeps
//! one send per ticket in flight).

use crate::domain::group_commit::{self, BatchConfig, Batcher, Flush};
use crate::domain::tickets::announce::Announcer;
use crate::error::Result;
use crate::model::ticket::{Appended, NewMessage};
use crate::ports::store::tickets::Tickets;
use std::sync::Arc;
use std::time::Duration;

/// The retry hint of `overloaded` from the message writer.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// The size at which a batch waiting for company (`linger`) stops waiting. Shared by 16 messages,
/// a batch's own cost to Postgres (a round trip, a statement's start, a commit and its sync) comes
/// to about what each message's rows cost it, so a longer wait saves each message less than the
/// wait costs it.
const LINGER_BATCH: usize = 16;

/// The writer: messages in, their stored events (or why not) out; cheap to clone.
pub(crate) type MessageWriter = Batcher<MessageStore>;

/// A message in the writer's queue; [`group_commit::Queued::stored`] waits for its commit.
pub(crate) type Queued = group_commit::Queued<Appended>;

/// Where the writer's batches go: the tickets' storage; and who hears of what they stored.
pub struct MessageStore {
    /// The tickets' storage.
    pub tickets: Arc<dyn Tickets>,
    /// Tells of each stored message, in the batch's order (see [`announce`](super::announce)).
    pub announce: Announcer,
}

impl Flush for MessageStore {
    type Item = NewMessage;
    type Output = Appended;

    async fn flush(&self, items: &[NewMessage]) -> Result<Vec<Appended>> {
        self.tickets.append_messages(items).await
    }

    fn settled(&self, _item: &NewMessage, outcome: &Result<Appended>) {
        if let Ok(Appended::Stored { events, ticket }) = outcome {
            self.announce.message_stored(ticket, events);
        }
    }
}

/// The writer's tuning: `queue` messages wait at most, `max_batch` go in one transaction, and
/// `concurrency` transactions are in flight at once (on SQLite one is written while others wait
/// for their sync; Postgres writes a few at once), the next taking another writer only when full
/// or after `spill_after` (see [`BatchConfig::spill_after`]), and, while messages come fast, none
/// before `linger` unless it holds [`LINGER_BATCH`] (see [`BatchConfig::linger`]); a batch that
/// takes longer than `timeout` is answered
/// `unavailable`.
pub(crate) fn config(
    queue: usize,
    max_batch: usize,
    concurrency: usize,
    spill_after: Duration,
    linger: Duration,
    timeout: Duration,
) -> BatchConfig {
    BatchConfig {
        name: "message",
        size_metric: crate::metrics::BATCH_SIZE,
        queue,
        max_batch,
        concurrency,
        spill_after,
        linger,
        linger_batch: LINGER_BATCH,
        timeout,
        retry_after: RETRY_AFTER,
        retry_refused_alone: false,
    }
}
