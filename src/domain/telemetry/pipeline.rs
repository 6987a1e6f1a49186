//! The telemetry pipeline: its own bounded queue and batches stored one at a time (one transaction
//! per batch, multi-row inserts), beside and independent of the message writer
//! (`domain::tickets::writer`), so that a telemetry flood never takes a slot of the chat's queue or
//! transactions. The batching itself is the domain's [`group_commit`](crate::domain::group_commit).
//!
//! A request is answered only after its batch committed. When the queue is full the request gets
//! `overloaded` at once (nothing was taken); connection records, which nobody waits for, are
//! dropped and counted. One batch at a time keeps the writes in order (a socket's opening before
//! its closing, a device's reports in turn). A write the store refuses (one of an account deleted
//! while its telemetry was queued fails its foreign key) does not take the rest of its batch with
//! it: the batch is tried again write by write, and only the refused one fails.

use crate::domain::group_commit::{BatchConfig, Batcher, Flush};
use crate::error::Result;
use crate::model::telemetry::{TelemetryWrite, WriteOutcome};
use crate::ports::store::telemetry::Telemetry;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The retry hint of `overloaded` from the telemetry pipeline.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

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

/// Where the pipeline's batches go, and what it counts.
struct TelemetryStore {
    store: Arc<dyn Telemetry>,
    analytics_default: bool,
}

impl Flush for TelemetryStore {
    type Item = TelemetryWrite;
    type Output = WriteOutcome;

    async fn flush(&self, items: &[TelemetryWrite]) -> Result<Vec<WriteOutcome>> {
        self.store.store_telemetry(items, self.analytics_default).await
    }

    fn settled(&self, write: &TelemetryWrite, outcome: &Result<WriteOutcome>) {
        let counter = match outcome {
            Ok(WriteOutcome::Stored) => crate::metrics::TELEMETRY_ACCEPTED,
            Ok(WriteOutcome::ConsentOff) => crate::metrics::TELEMETRY_REFUSED_CONSENT,
            Err(_) => return,
        };
        metrics::counter!(counter, "kind" => kind(write)).increment(events(write));
    }

    fn refused(&self, write: &TelemetryWrite, full: bool) {
        let kind = kind(write);
        metrics::counter!(crate::metrics::TELEMETRY_DROPPED, "kind" => kind).increment(events(write));
        if full {
            tracing::debug!(kind, "telemetry queue full");
        }
    }
}

/// The queueing side; cheap to clone.
#[derive(Clone)]
pub struct TelemetryPipeline(Batcher<TelemetryStore>);

impl TelemetryPipeline {
    /// Starts the pipeline over `store` on `tasks`; it stops once `stop` is cancelled and what it
    /// accepted is stored.
    pub fn start(
        store: Arc<dyn Telemetry>,
        config: PipelineConfig,
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> Self {
        let batches = BatchConfig {
            name: "telemetry",
            size_metric: crate::metrics::TELEMETRY_BATCH_SIZE,
            queue: config.queue,
            max_batch: config.max_batch,
            concurrency: 1,
            spill_after: Duration::ZERO,
            linger: Duration::ZERO,
            linger_batch: 0,
            timeout: config.timeout,
            retry_after: RETRY_AFTER,
            retry_refused_alone: true,
        };
        let sink = TelemetryStore { store, analytics_default: config.analytics_default };
        Self(Batcher::start(sink, batches, tasks, stop))
    }

    /// Stores `write` with whatever else waits, and answers once its batch committed.
    ///
    /// # Errors
    /// `overloaded` when the queue is full, `unavailable` when storage failed or timed out.
    pub async fn store(&self, write: TelemetryWrite) -> Result<WriteOutcome> {
        self.0.enqueue(write)?.stored().await
    }

    /// Queues `write` without waiting for it (connection records); false if it was dropped.
    pub fn record(&self, write: TelemetryWrite) -> bool {
        self.0.enqueue_unanswered(write).is_ok()
    }
}
