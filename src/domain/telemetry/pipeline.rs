//! The telemetry pipeline: its own bounded queue and one writer task that stores what waits in
//! batches (one transaction per batch, multi-row inserts), beside and independent of the message
//! writer (`domain::tickets::writer`), so that a telemetry flood never takes a slot of the chat's
//! queue or transactions.
//!
//! A request is answered only after its batch committed. When the queue is full the request gets
//! `overloaded` at once (nothing was taken); connection records, which nobody waits for, are
//! dropped and counted. One writer keeps the writes in order (a socket's opening before its
//! closing, a device's reports in turn).

use crate::error::{Error, ErrorCode, Result};
use crate::model::telemetry::{TelemetryWrite, WriteOutcome};
use crate::ports::store::telemetry::Telemetry;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The retry hint of `overloaded` from the telemetry pipeline.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

struct Pending {
    write: TelemetryWrite,
    reply: Option<oneshot::Sender<Result<WriteOutcome>>>,
}

/// Tuning of the pipeline.
#[derive(Clone, Copy, Debug)]
pub struct PipelineConfig {
    /// Writes waiting before requests get `overloaded`.
    pub queue: usize,
    /// Most writes in one transaction.
    pub max_batch: usize,
    /// A batch that takes longer is answered `unavailable`.
    pub timeout: Duration,
    /// Analytics consent of users without a consent row.
    pub analytics_default: bool,
}

/// The metrics label of a write.
pub fn kind(write: &TelemetryWrite) -> &'static str {
    match write {
        TelemetryWrite::Device(_) => "device",
        TelemetryWrite::Views { .. } => "view",
        TelemetryWrite::Connected(_) | TelemetryWrite::Disconnected { .. } => "connection",
    }
}

/// Events a write counts as in the metrics (a closing updates its connection: no event).
fn events(write: &TelemetryWrite) -> u64 {
    match write {
        TelemetryWrite::Views { events, .. } => events.len() as u64,
        TelemetryWrite::Disconnected { .. } => 0,
        _ => 1,
    }
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct TelemetryPipeline {
    tx: mpsc::Sender<Pending>,
    timeout: Duration,
}

impl TelemetryPipeline {
    /// Starts the writer task over `store`.
    pub fn start(store: Arc<dyn Telemetry>, config: PipelineConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(run(store, rx, config));
        Self { tx, timeout: config.timeout }
    }

    /// Stores `write` with whatever else waits, and answers once its batch committed.
    ///
    /// # Errors
    /// `overloaded` when the queue is full, `unavailable` when storage failed or timed out.
    pub async fn store(&self, write: TelemetryWrite) -> Result<WriteOutcome> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(write, Some(reply))?;
        // The batch has its own timeout; this one only guards against a lost writer task.
        match tokio::time::timeout(self.timeout * 2, answer).await {
            Ok(Ok(result)) => result,
            _ => Err(Error::Unavailable),
        }
    }

    /// Queues `write` without waiting for it (connection records); false if it was dropped.
    pub fn record(&self, write: TelemetryWrite) -> bool {
        self.enqueue(write, None).is_ok()
    }

    fn enqueue(&self, write: TelemetryWrite, reply: Option<oneshot::Sender<Result<WriteOutcome>>>) -> Result<()> {
        self.tx.try_send(Pending { write, reply }).map_err(|e| {
            let (full, pending) = match e {
                mpsc::error::TrySendError::Full(p) => (true, p),
                mpsc::error::TrySendError::Closed(p) => (false, p),
            };
            let kind = kind(&pending.write);
            metrics::counter!(crate::metrics::TELEMETRY_DROPPED, "kind" => kind).increment(events(&pending.write));
            if full {
                tracing::debug!(kind, "telemetry queue full");
                Error::Overloaded { retry_after: RETRY_AFTER }
            } else {
                Error::Unavailable
            }
        })
    }
}

async fn run(store: Arc<dyn Telemetry>, mut rx: mpsc::Receiver<Pending>, config: PipelineConfig) {
    let mut batch = Vec::with_capacity(config.max_batch.min(1024));
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < config.max_batch {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (writes, replies): (Vec<TelemetryWrite>, Vec<_>) = batch.drain(..).map(|p| (p.write, p.reply)).unzip();
        metrics::histogram!(crate::metrics::TELEMETRY_BATCH_SIZE).record(writes.len() as f64);
        let outcomes = match store_batch(store.as_ref(), &writes, config).await {
            // A write the store refuses (one of an account deleted while its telemetry was queued
            // fails its foreign key) must not take the rest of the batch with it: the writes are
            // tried again one by one, and only the refused one fails.
            Err(Error::Internal(_)) if writes.len() > 1 => {
                let mut each = Vec::with_capacity(writes.len());
                for write in &writes {
                    each.push(
                        store_batch(store.as_ref(), std::slice::from_ref(write), config).await.map(|mut o| o.remove(0)),
                    );
                }
                each
            }
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(e) => writes.iter().map(|_| Err(copy(&e))).collect(),
        };
        for ((write, reply), outcome) in writes.iter().zip(replies).zip(outcomes) {
            if let Ok(outcome) = &outcome {
                let counter = match outcome {
                    WriteOutcome::Stored => crate::metrics::TELEMETRY_ACCEPTED,
                    WriteOutcome::ConsentOff => crate::metrics::TELEMETRY_REFUSED_CONSENT,
                };
                metrics::counter!(counter, "kind" => kind(write)).increment(events(write));
            }
            if let Some(reply) = reply {
                let _ = reply.send(outcome);
            }
        }
    }
}

/// The error a caller gets for a failed batch: `unavailable` (retry) or `internal`.
fn copy(e: &Error) -> Error {
    match e {
        Error::Unavailable => Error::Unavailable,
        _ => Error::Internal("telemetry batch failed".into()),
    }
}

/// Stores `writes` in one transaction within the timeout: one outcome per write, or the error
/// every write of it gets.
async fn store_batch(
    store: &dyn Telemetry,
    writes: &[TelemetryWrite],
    config: PipelineConfig,
) -> Result<Vec<WriteOutcome>> {
    match tokio::time::timeout(config.timeout, store.store_telemetry(writes, config.analytics_default)).await {
        Ok(Ok(outcomes)) if outcomes.len() == writes.len() => Ok(outcomes),
        Ok(Ok(_)) => {
            tracing::error!("storage answered a telemetry batch with the wrong number of outcomes");
            Err(Error::Internal("telemetry batch size mismatch".into()))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, size = writes.len(), "telemetry batch failed");
            Err(match e.code() {
                ErrorCode::Unavailable => Error::Unavailable,
                _ => Error::Internal("telemetry batch failed".into()),
            })
        }
        Err(_) => {
            tracing::warn!(size = writes.len(), "telemetry batch timed out");
            Err(Error::Unavailable)
        }
    }
}
