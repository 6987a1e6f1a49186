//! Group commit for messages: concurrent sends are gathered into batches and each batch is stored in
//! one transaction, so the database pays one commit (one fsync) for many messages. A send is
//! answered only after its batch committed; when storage fails or times out the whole batch is
//! answered `unavailable` and nothing of it is acknowledged.
//!
//! The queue in front of the batches is bounded: when it is full the sender gets `overloaded`
//! at once instead of waiting without limit.

use crate::error::{Error, Result};
use crate::model::ticket::{Appended, NewMessage};
use crate::ports::store::tickets::Tickets;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

struct Pending {
    message: NewMessage,
    reply: oneshot::Sender<Result<Appended>>,
}

/// Tuning of the group commit.
#[derive(Clone, Copy, Debug)]
pub struct WriterConfig {
    /// Messages waiting for a batch before senders get `overloaded`.
    pub queue: usize,
    /// Most messages in one transaction.
    pub max_batch: usize,
    /// Transactions in flight at once (SQLite has one writer; Postgres benefits from a few).
    pub concurrency: usize,
    /// A batch that takes longer than this is answered `unavailable`.
    pub timeout: Duration,
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct MessageWriter {
    tx: mpsc::Sender<Pending>,
    timeout: Duration,
}

impl MessageWriter {
    /// Starts the batching task over `store`.
    pub fn start(store: Arc<dyn Tickets>, config: WriterConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(run(store, rx, config));
        Self { tx, timeout: config.timeout }
    }

    /// Queues one message for a batch without waiting; wait for the outcome with
    /// [`Queued::stored`]. Batches run concurrently on Postgres, so two messages to one ticket
    /// queued while neither is stored yet may be stored in either order: a caller that needs its
    /// order waits for the first (the session keeps one send per ticket in flight).
    ///
    /// # Errors
    /// `overloaded` when the queue is full, `unavailable` when the writer stopped.
    pub fn enqueue(&self, message: NewMessage) -> Result<Queued> {
        let (reply, answer) = oneshot::channel();
        self.tx.try_send(Pending { message, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Overloaded { retry_after: Duration::from_millis(200) },
            mpsc::error::TrySendError::Closed(_) => Error::Unavailable,
        })?;
        Ok(Queued { answer, timeout: self.timeout })
    }
}

/// A message in the writer's queue.
pub struct Queued {
    answer: oneshot::Receiver<Result<Appended>>,
    timeout: Duration,
}

impl Queued {
    /// The outcome, once the message's batch committed (or failed).
    ///
    /// # Errors
    /// `unavailable` when storage failed or timed out.
    pub async fn stored(self) -> Result<Appended> {
        // The batch has its own timeout; this one only guards against a lost batch task.
        match tokio::time::timeout(self.timeout * 2, self.answer).await {
            Ok(Ok(result)) => result,
            _ => Err(Error::Unavailable),
        }
    }
}

async fn run(store: Arc<dyn Tickets>, mut rx: mpsc::Receiver<Pending>, config: WriterConfig) {
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    while let Some(first) = rx.recv().await {
        // A slot first, then the batch: what arrives while every slot is busy joins this batch
        // rather than waiting behind it.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let mut batch = vec![first];
        while batch.len() < config.max_batch {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let (messages, replies): (Vec<NewMessage>, Vec<_>) =
                batch.into_iter().map(|p| (p.message, p.reply)).unzip();
            let stored = tokio::time::timeout(config.timeout, store.append_messages(&messages)).await;
            metrics::histogram!(crate::metrics::BATCH_SIZE).record(messages.len() as f64);
            match stored {
                Ok(Ok(results)) if results.len() == replies.len() => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(Ok(result));
                    }
                }
                Ok(Ok(_)) => {
                    tracing::error!("storage answered a batch with the wrong number of results");
                    replies.into_iter().for_each(|r| drop(r.send(Err(Error::Internal("batch size mismatch".into())))));
                }
                Ok(Err(e)) => {
                    let code = e.code();
                    tracing::warn!(error = %e, size = replies.len(), "message batch failed");
                    for reply in replies {
                        let _ = reply.send(Err(match code {
                            crate::error::ErrorCode::Unavailable => Error::Unavailable,
                            _ => Error::Internal("message batch failed".into()),
                        }));
                    }
                }
                Err(_) => {
                    tracing::warn!(size = replies.len(), "message batch timed out");
                    replies.into_iter().for_each(|r| drop(r.send(Err(Error::Unavailable))));
                }
            }
        });
    }
}
