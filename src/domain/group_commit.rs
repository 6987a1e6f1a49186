//! Group commit, for every desk that stores in batches (messages, telemetry): callers put items in a
//! bounded queue; one loop gathers what waits (up to `max_batch` items, or whatever is queued when
//! the queue is momentarily empty, after letting the tasks ready beside the first caller queue
//! theirs, and after [`BatchConfig::linger`] if one is set) and stores it with one call of the
//! desk's [`Flush`] (one transaction, one commit), up to `concurrency` batches at once, though a
//! batch takes a second writer only when it is full or has waited [`BatchConfig::spill_after`] for
//! the busy one; each caller is answered with its own item's result once its batch is done.
//!
//! - A full queue answers `overloaded` at once, with the batcher's retry hint; nothing was taken.
//! - A batch that fails or times out answers every item of it `unavailable` (storage unreachable or
//!   slow) or `internal`; nothing of it is acknowledged. A batcher can instead try a batch that
//!   storage refused (`internal`) again item by item, so that only the refused item fails.
//! - An item whose caller waits for it and that waited in the queue longer than a batch may take is
//!   answered `unavailable` without being stored: storage has been too slow for it, and its caller
//!   hears so then rather than after yet another batch; so every caller hears within about twice
//!   the batch timeout.
//! - With one batch at a time, batches are stored in the order their items were queued.
//! - Stopping (the token given to [`Batcher::start`]) closes the queue (later callers get
//!   `unavailable`), stores everything already accepted, and ends once the last batch is done:
//!   nothing accepted is dropped unanswered.

use crate::error::{Error, Result};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Where a batcher stores its batches, and what it counts.
pub trait Flush: Send + Sync + 'static {
    /// What callers queue.
    type Item: Send + Sync + 'static;
    /// What each item's caller gets once it is stored.
    type Output: Send + 'static;

    /// Stores `items` in one transaction: one output per item, in order.
    fn flush(&self, items: &[Self::Item]) -> impl Future<Output = Result<Vec<Self::Output>>> + Send;

    /// The outcome of one item, just before its caller hears it (for the desk's metrics and
    /// announcements): called for a batch's items one after another, in the batch's order.
    fn settled(&self, _item: &Self::Item, _outcome: &Result<Self::Output>) {}

    /// An item refused at the queue: `full`, or the batcher stopped (for the desk's metrics).
    fn refused(&self, _item: &Self::Item, _full: bool) {}
}

/// Tuning of a batcher.
#[derive(Clone, Copy, Debug)]
pub struct BatchConfig {
    /// The batch kind in logs ("message", "telemetry").
    pub name: &'static str,
    /// The histogram that records each batch's size.
    pub size_metric: &'static str,
    /// Items waiting for a batch before callers get `overloaded`.
    pub queue: usize,
    /// Most items in one batch.
    pub max_batch: usize,
    /// Batches being stored at once; with 1, batches are stored in queue order.
    pub concurrency: usize,
    /// While a batch is being stored, the next one waits for it (growing meanwhile, so that one
    /// commit carries more) and takes another of the `concurrency` writers only once it is full or
    /// its first item has waited this long: extra writers serve bursts and slow commits, and a
    /// steady load costs the database as few transactions as one writer would. Zero starts every
    /// batch as soon as a writer is free.
    pub spill_after: Duration,
    /// The most a batch waits after its first item for company before it takes even a free writer:
    /// a batch that waits carries more items per transaction (less database CPU per item), and each
    /// item waits up to this much longer. A batch waits only while the pace of the last batches
    /// brings a quarter of `linger_batch` within this wait (and its first item came within it of
    /// the last batch's start) but less than half of it while a batch is stored, and stops
    /// waiting once it holds `linger_batch` items: at a slow pace the wait would gather little and
    /// nothing waits; the faster the pace, the sooner a batch has its company; and where batches
    /// grow that large while the writer stores the one before (near the database's or the
    /// machine's limit), waiting would only lengthen every round, and nothing waits either. Zero
    /// starts a batch as soon as a writer is free. A busy writer's next batch waits for the longer
    /// of this and `spill_after`.
    pub linger: Duration,
    /// The size at which a waiting batch stops waiting (see `linger`).
    pub linger_batch: usize,
    /// A batch that takes longer than this is answered `unavailable`.
    pub timeout: Duration,
    /// The retry hint of `overloaded`.
    pub retry_after: Duration,
    /// Whether a batch that storage refuses (`internal`) is tried again item by item, so that one
    /// refused item does not fail the others with it.
    pub retry_refused_alone: bool,
}

/// An item in the queue, with the caller waiting for it (if any).
struct Pending<F: Flush> {
    item: F::Item,
    waiter: Option<Waiter<F::Output>>,
}

/// The caller waiting for an item, and when the item was queued: only such an item can be late
/// (see the module's notes), so only it reads the clock.
struct Waiter<T> {
    reply: oneshot::Sender<Result<T>>,
    queued: Instant,
}

/// The queueing side of a batcher; cheap to clone.
pub struct Batcher<F: Flush> {
    tx: mpsc::Sender<Pending<F>>,
    flush: Arc<F>,
    retry_after: Duration,
}

impl<F: Flush> Clone for Batcher<F> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone(), flush: self.flush.clone(), retry_after: self.retry_after }
    }
}

impl<F: Flush> Batcher<F> {
    /// Starts the batching loop over `flush` on `tasks` (its batches run there too); it stops once
    /// `stop` is cancelled and everything accepted is stored.
    pub fn start(flush: F, config: BatchConfig, tasks: &TaskTracker, stop: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let flush = Arc::new(flush);
        tasks.spawn(run(flush.clone(), rx, config, tasks.clone(), stop));
        Self { tx, flush, retry_after: config.retry_after }
    }

    /// Queues `item` for a batch without waiting; wait for its outcome with [`Queued::stored`].
    ///
    /// # Errors
    /// `overloaded` when the queue is full, `unavailable` when the batcher stopped.
    pub fn enqueue(&self, item: F::Item) -> Result<Queued<F::Output>> {
        let (reply, answer) = oneshot::channel();
        self.push(item, Some(Waiter { reply, queued: Instant::now() }))?;
        Ok(Queued { answer })
    }

    /// Queues `item` for a batch; nobody waits for its outcome.
    ///
    /// # Errors
    /// As [`Batcher::enqueue`]; the item is gone.
    pub fn enqueue_unanswered(&self, item: F::Item) -> Result<()> {
        self.push(item, None)
    }

    fn push(&self, item: F::Item, waiter: Option<Waiter<F::Output>>) -> Result<()> {
        self.tx.try_send(Pending { item, waiter }).map_err(|e| {
            let (full, pending) = match e {
                mpsc::error::TrySendError::Full(p) => (true, p),
                mpsc::error::TrySendError::Closed(p) => (false, p),
            };
            self.flush.refused(&pending.item, full);
            if full {
                Error::Overloaded { retry_after: self.retry_after }
            } else {
                Error::Unavailable
            }
        })
    }
}

/// An item in a batcher's queue.
pub struct Queued<T> {
    answer: oneshot::Receiver<Result<T>>,
}

impl<T> Queued<T> {
    /// The item's outcome, once its batch is stored (or failed).
    ///
    /// # Errors
    /// The item's own error; `unavailable` when storage failed or timed out.
    pub async fn stored(self) -> Result<T> {
        // No timer of its own: a batch has its timeout, an item that waited too long for one is
        // answered when it would join one, and an item dropped unanswered (its batch's task gone)
        // closes the channel.
        self.answer.await.unwrap_or(Err(Error::Unavailable))
    }
}

/// The batching loop: gathers batches and starts each on `tasks` once a writer may take it (see
/// [`BatchConfig::spill_after`]); after `stop`, drains the queue the same way and returns when the
/// last batch is done.
async fn run<F: Flush>(
    flush: Arc<F>,
    mut rx: mpsc::Receiver<Pending<F>>,
    config: BatchConfig,
    tasks: TaskTracker,
    stop: CancellationToken,
) {
    let concurrency = config.concurrency.max(1);
    let max_batch = config.max_batch.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    // Told each time a batch is done and its slot is free again.
    let finished = Arc::new(Notify::new());
    let (mut stopping, mut drained) = (false, false);
    // The batch being gathered, and since when (its first item's arrival).
    let mut pending: Vec<Pending<F>> = Vec::new();
    let mut since: Option<Instant> = None;
    // Whether the batch being gathered let the other ready tasks run once before it started.
    let mut yielded = false;
    // When the last batch started, the pace of the last batches, and how long the last one took to
    // store (microseconds, written by the batches' tasks).
    let mut last_start: Option<Instant> = None;
    let mut pace = Pace::default();
    let storing = Arc::new(AtomicU64::new(0));
    loop {
        // What waits joins the batch being gathered rather than queueing behind it.
        while pending.len() < max_batch {
            let Ok(p) = rx.try_recv() else { break };
            pending.push(p);
        }
        let gathering = !pending.is_empty();
        if !gathering && drained {
            break;
        }
        let busy = concurrency - slots.available_permits();
        let first_at = if gathering { *since.get_or_insert_with(Instant::now) } else { Instant::now() };
        // A batch lingers only while the pace brings it company (and its first item came within a
        // linger of the last batch's start: a lone item after a quiet spell goes at once), until it
        // has enough. Once stopping, nothing lingers.
        let flowing = last_start.is_some_and(|last| first_at.saturating_duration_since(last) <= config.linger);
        let lingering = flowing
            && !stopping
            && pace.waiting_gathers(
                config.linger,
                Duration::from_micros(storing.load(Ordering::Relaxed)),
                config.linger_batch,
            );
        let linger_at = if lingering { first_at + config.linger } else { first_at };
        // When a batch may take a writer: a free one after the linger (or once it has its company),
        // another one besides the busy ones after the spill wait too; a full batch takes any free
        // writer at once.
        let take_at = if busy == 0 { linger_at } else { linger_at.max(first_at + config.spill_after) };
        let enough = pending.len() >= max_batch || (lingering && busy == 0 && pending.len() >= config.linger_batch);
        let start = gathering && busy < concurrency && (enough || Instant::now() >= take_at);
        if start {
            if !yielded && pending.len() < max_batch {
                // The first item's caller woke this loop, and a woken task runs next on its worker,
                // ahead of the tasks already waiting there (other sockets read in the same poll, each
                // with an item for this batch): let those queue theirs first. They run for as long as
                // polling what is ready takes, so a batch starts a few microseconds later and carries
                // what arrived together instead of one item and then the rest.
                yielded = true;
                tokio::task::yield_now().await;
                continue;
            }
            yielded = false;
            if answer_late(&mut pending, flush.as_ref(), &config) {
                // Room in the batch for what waits behind them, which may be late too.
                if pending.is_empty() {
                    since = None;
                }
                continue;
            }
            let Ok(slot) = slots.clone().try_acquire_owned() else { break };
            let (items, replies): (Vec<_>, Vec<_>) =
                pending.drain(..).map(|p| (p.item, p.waiter.map(|w| w.reply))).unzip();
            since = None;
            let now = Instant::now();
            if let Some(last) = last_start {
                pace.record(items.len(), now.saturating_duration_since(last));
            }
            last_start = Some(now);
            let (flush, finished, storing) = (flush.clone(), finished.clone(), storing.clone());
            tasks.spawn(async move {
                let outcomes = store(flush.as_ref(), &items, &config).await;
                storing.store(u64::try_from(now.elapsed().as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
                for ((item, reply), outcome) in items.iter().zip(replies).zip(outcomes) {
                    flush.settled(item, &outcome);
                    if let Some(reply) = reply {
                        let _ = reply.send(outcome);
                    }
                }
                drop(slot);
                finished.notify_one();
            });
            continue;
        }
        // Nothing to store yet, or every writer this batch may take is busy: wait for an item, for
        // a writer to finish, or for the batch's first item to have waited long enough to take a
        // writer.
        tokio::select! {
            biased;
            () = stop.cancelled(), if !stopping => {
                // Refuse what comes from now on; what is queued is still stored.
                rx.close();
                stopping = true;
            }
            () = finished.notified(), if gathering => {}
            () = tokio::time::sleep_until(take_at), if gathering && busy < concurrency => {}
            next = rx.recv(), if pending.len() < max_batch && !drained => match next {
                Some(p) => pending.push(p),
                None => drained = true,
            },
        }
    }
    // Every slot back: the last batches are done.
    let _ = slots.acquire_many(u32::try_from(concurrency).unwrap_or(u32::MAX)).await;
}

/// Answers `unavailable` the items of `pending` that a caller waits for and that waited longer than
/// a batch may take (see the module's notes), and takes them out; whether there were any. Items
/// nobody waits for stay: they are stored however late.
fn answer_late<F: Flush>(pending: &mut Vec<Pending<F>>, flush: &F, config: &BatchConfig) -> bool {
    let now = Instant::now();
    let late =
        |p: &Pending<F>| p.waiter.as_ref().is_some_and(|w| now.saturating_duration_since(w.queued) > config.timeout);
    if !pending.iter().any(late) {
        return false;
    }
    let (late, on_time): (Vec<_>, Vec<_>) = pending.drain(..).partition(late);
    *pending = on_time;
    tracing::warn!(batch = config.name, late = late.len(), "items waited longer than a batch may take");
    for p in late {
        let outcome = Err(Error::Unavailable);
        flush.settled(&p.item, &outcome);
        if let Some(waiter) = p.waiter {
            let _ = waiter.reply.send(outcome);
        }
    }
    true
}

/// The pace at which items come: running averages of the last batches' sizes and of the time
/// between their starts (together, items per second, whatever the batches' sizes).
#[derive(Debug, Default)]
struct Pace {
    items: f64,
    secs: f64,
}

impl Pace {
    /// Weight of the newest batch in the averages: the last eight or so count.
    const WEIGHT: f64 = 0.125;
    /// Longest time between batches the averages take, so that a quiet hour is forgotten as soon
    /// as a quiet second.
    const LONGEST: Duration = Duration::from_secs(1);

    /// A batch of `items` started `since` after the one before it.
    fn record(&mut self, items: usize, since: Duration) {
        let (items, secs) = (items as f64, since.min(Self::LONGEST).as_secs_f64());
        if self.secs == 0.0 && self.items == 0.0 {
            (self.items, self.secs) = (items, secs);
        } else {
            self.items += Self::WEIGHT * (items - self.items);
            self.secs += Self::WEIGHT * (secs - self.secs);
        }
    }

    /// Whether a batch waiting up to `linger` for `batch` items gathers company it would not get
    /// anyway: items come fast enough that it gathers at least a quarter of `batch` (waiting for
    /// less costs its items the wait for little gain), yet fewer than half of `batch` come while a
    /// batch is stored (`storing`, the last one's time), during which the next gathers them
    /// unasked. Where that many come meanwhile, the writers are near their limit, and a wait only
    /// lengthens every round: larger batches take longer to store, and the next grows larger still.
    fn waiting_gathers(&self, linger: Duration, storing: Duration, batch: usize) -> bool {
        let batch = batch as f64;
        !linger.is_zero()
            && self.items > 0.0
            && self.items * linger.as_secs_f64() >= self.secs * batch / 4.0
            && self.items * storing.as_secs_f64() < self.secs * batch / 2.0
    }
}

/// One outcome per item of a batch.
async fn store<F: Flush>(flush: &F, items: &[F::Item], config: &BatchConfig) -> Vec<Result<F::Output>> {
    metrics::histogram!(config.size_metric).record(items.len() as f64);
    match store_once(flush, items, config).await {
        Ok(outputs) => outputs.into_iter().map(Ok).collect(),
        Err(Error::Internal(_)) if config.retry_refused_alone && items.len() > 1 => {
            let mut each = Vec::with_capacity(items.len());
            for item in items {
                let alone = store_once(flush, std::slice::from_ref(item), config).await;
                // One item in, one output out (checked by `store_once`).
                each.push(alone.and_then(|mut o| o.pop().ok_or(Error::Unavailable)));
            }
            each
        }
        Err(e) => items.iter().map(|_| Err(again(&e))).collect(),
    }
}

/// Stores `items` in one call within the timeout: one output per item, or the error of them all.
async fn store_once<F: Flush>(flush: &F, items: &[F::Item], config: &BatchConfig) -> Result<Vec<F::Output>> {
    match tokio::time::timeout(config.timeout, flush.flush(items)).await {
        Ok(Ok(outputs)) if outputs.len() == items.len() => Ok(outputs),
        Ok(Ok(_)) => {
            tracing::error!(batch = config.name, "storage answered a batch with the wrong number of results");
            Err(Error::Internal(format!("{} batch size mismatch", config.name)))
        }
        Ok(Err(e)) => {
            tracing::warn!(batch = config.name, error = %e, size = items.len(), "batch failed");
            Err(failed(&e, config))
        }
        Err(_) => {
            tracing::warn!(batch = config.name, size = items.len(), "batch timed out");
            Err(Error::Unavailable)
        }
    }
}

/// What the callers of a failed batch get: `unavailable` (try again) or `internal`.
fn failed(e: &Error, config: &BatchConfig) -> Error {
    match e {
        Error::Unavailable => Error::Unavailable,
        _ => Error::Internal(format!("{} batch failed", config.name)),
    }
}

/// The error of a failed batch again, for its next caller (it is one of [`failed`]'s, or the
/// timeout's or the size mismatch's).
fn again(e: &Error) -> Error {
    match e {
        Error::Internal(detail) => Error::Internal(detail.clone()),
        _ => Error::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// Item that storage refuses (`internal`) with any batch it is in.
    const REFUSED: u32 = 13;
    /// Item that finds storage unreachable.
    const UNREACHABLE: u32 = 99;
    /// Item that storage answers with one output too many.
    const MISCOUNTED: u32 = 77;

    /// Storage for the tests: each item's output is ten times the item; every batch waits at the
    /// gate (closed until a test opens it) and is recorded in the order it was stored.
    struct Numbers {
        gate: Semaphore,
        started: AtomicUsize,
        batches: Mutex<Vec<Vec<u32>>>,
        settled: Mutex<Vec<(u32, bool)>>,
        refused: Mutex<Vec<(u32, bool)>>,
    }

    impl Numbers {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                gate: Semaphore::new(0),
                started: AtomicUsize::new(0),
                batches: Mutex::new(Vec::new()),
                settled: Mutex::new(Vec::new()),
                refused: Mutex::new(Vec::new()),
            })
        }

        fn open(&self) {
            self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
        }

        /// Waits until `n` batches have reached the gate.
        async fn started(&self, n: usize) {
            let waited = tokio::time::timeout(Duration::from_secs(5), async {
                while self.started.load(Ordering::SeqCst) < n {
                    tokio::task::yield_now().await;
                }
            })
            .await;
            assert!(waited.is_ok(), "{n} batches never started");
        }

        fn batches(&self) -> Vec<Vec<u32>> {
            self.batches.lock().unwrap().clone()
        }
    }

    impl Flush for Arc<Numbers> {
        type Item = u32;
        type Output = u32;

        async fn flush(&self, items: &[u32]) -> Result<Vec<u32>> {
            self.started.fetch_add(1, Ordering::SeqCst);
            self.gate.acquire().await.expect("the gate stays open").forget();
            self.batches.lock().unwrap().push(items.to_vec());
            if items.contains(&UNREACHABLE) {
                return Err(Error::Unavailable);
            }
            if items.contains(&REFUSED) {
                return Err(Error::Internal("refused by a constraint".into()));
            }
            let mut out: Vec<u32> = items.iter().map(|i| i * 10).collect();
            if items.contains(&MISCOUNTED) {
                out.push(0);
            }
            Ok(out)
        }

        fn settled(&self, item: &u32, outcome: &Result<u32>) {
            self.settled.lock().unwrap().push((*item, outcome.is_ok()));
        }

        fn refused(&self, item: &u32, full: bool) {
            self.refused.lock().unwrap().push((*item, full));
        }
    }

    fn config(queue: usize, max_batch: usize, concurrency: usize) -> BatchConfig {
        BatchConfig {
            name: "test",
            size_metric: "test_batch_size",
            queue,
            max_batch,
            concurrency,
            spill_after: Duration::ZERO,
            linger: Duration::ZERO,
            linger_batch: 4,
            timeout: Duration::from_secs(5),
            retry_after: Duration::from_millis(321),
            retry_refused_alone: false,
        }
    }

    fn start(numbers: &Arc<Numbers>, config: BatchConfig) -> (Batcher<Arc<Numbers>>, TaskTracker, CancellationToken) {
        let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
        (Batcher::start(numbers.clone(), config, &tasks, stop.clone()), tasks, stop)
    }

    async fn outcomes(queued: Vec<Queued<u32>>) -> Vec<Result<u32>> {
        futures_util::future::join_all(queued.into_iter().map(Queued::stored)).await
    }

    fn codes(outcomes: &[Result<u32>]) -> Vec<std::result::Result<u32, &'static str>> {
        outcomes
            .iter()
            .map(|o| match o {
                Ok(v) => Ok(*v),
                Err(Error::Unavailable) => Err("unavailable"),
                Err(Error::Internal(_)) => Err("internal"),
                Err(Error::Overloaded { .. }) => Err("overloaded"),
                Err(_) => Err("other"),
            })
            .collect()
    }

    #[tokio::test]
    async fn batches_keep_queue_order_and_each_caller_gets_its_own_result() {
        let numbers = Numbers::new();
        let (batcher, _tasks, _stop) = start(&numbers, config(16, 4, 1));
        let queued: Vec<_> = (0..10).map(|i| batcher.enqueue(i).expect("room in the queue")).collect();
        numbers.open();
        let got = outcomes(queued).await;
        assert_eq!(codes(&got), (0..10).map(|i| Ok(i * 10)).collect::<Vec<_>>());
        let batches = numbers.batches();
        assert_eq!(batches.concat(), (0..10).collect::<Vec<_>>(), "stored out of queue order: {batches:?}");
        assert!(batches.iter().all(|b| b.len() <= 4), "a batch over max_batch: {batches:?}");
        assert!(batches.len() < 10, "nothing was batched: {batches:?}");
        assert_eq!(numbers.settled.lock().unwrap().len(), 10);
    }

    /// Callers that run one after the other on one worker (sockets read in the same poll) share a
    /// batch: the first one's item does not leave alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn items_of_callers_ready_together_go_in_one_batch() {
        let numbers = Numbers::new();
        numbers.open();
        let (batcher, _tasks, _stop) = start(&numbers, config(16, 16, 1));
        let callers: Vec<_> = (0..8)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.enqueue(i).expect("room in the queue").stored().await })
            })
            .collect();
        for caller in callers {
            assert!(caller.await.expect("caller").is_ok());
        }
        assert_eq!(numbers.batches(), vec![(0..8).collect::<Vec<_>>()]);
    }

    #[tokio::test]
    async fn what_waits_while_every_slot_is_busy_goes_in_one_batch() {
        let numbers = Numbers::new();
        let (batcher, _tasks, _stop) = start(&numbers, config(64, 64, 2));
        let first = batcher.enqueue(0).unwrap();
        numbers.started(1).await;
        let second = batcher.enqueue(1).unwrap();
        numbers.started(2).await;
        let rest: Vec<_> = (2..8).map(|i| batcher.enqueue(i).unwrap()).collect();
        numbers.open();
        assert_eq!(first.stored().await.unwrap(), 0);
        assert_eq!(second.stored().await.unwrap(), 10);
        assert_eq!(codes(&outcomes(rest).await), (2..8).map(|i| Ok(i * 10)).collect::<Vec<_>>());
        let mut batches = numbers.batches();
        batches.sort();
        assert_eq!(batches, vec![vec![0], vec![1], (2..8).collect::<Vec<_>>()]);
    }

    #[tokio::test]
    async fn the_next_batch_waits_for_the_busy_writer_until_it_is_full_or_has_waited_long_enough() {
        let numbers = Numbers::new();
        let spill_after = Duration::from_millis(300);
        let (batcher, _tasks, _stop) = start(&numbers, BatchConfig { spill_after, ..config(64, 4, 2) });
        let mut queued = vec![batcher.enqueue(0).unwrap()];
        numbers.started(1).await;
        // One writer busy, one free: a short batch waits for the busy one rather than taking it.
        queued.extend((1..3).map(|i| batcher.enqueue(i).unwrap()));
        tokio::time::sleep(spill_after / 3).await;
        assert_eq!(numbers.started.load(Ordering::SeqCst), 1, "a short batch took the second writer at once");
        // Full, it takes the free writer without waiting out the rest.
        queued.extend((3..5).map(|i| batcher.enqueue(i).unwrap()));
        numbers.started(2).await;
        numbers.open();
        assert_eq!(codes(&outcomes(queued).await), (0..5).map(|i| Ok(i * 10)).collect::<Vec<_>>());
        let mut batches = numbers.batches();
        batches.sort();
        assert_eq!(batches, vec![vec![0], vec![1, 2, 3, 4]]);

        // A short batch whose first item waited `spill_after` takes the free writer.
        let numbers = Numbers::new();
        let (batcher, _tasks, _stop) = start(&numbers, BatchConfig { spill_after, ..config(64, 4, 2) });
        let first = batcher.enqueue(0).unwrap();
        numbers.started(1).await;
        // The wait counts from the item's arrival, not from when the writer went idle for items.
        tokio::time::sleep(spill_after / 2).await;
        let asked = Instant::now();
        let second = batcher.enqueue(1).unwrap();
        numbers.started(2).await;
        let waited = asked.elapsed();
        assert!(waited >= spill_after && waited < spill_after * 3, "the second writer took it after {waited:?}");
        numbers.open();
        assert_eq!((first.stored().await.unwrap(), second.stored().await.unwrap()), (0, 10));
    }

    #[tokio::test]
    async fn a_batch_lingers_while_the_pace_brings_company_until_it_has_enough() {
        let numbers = Numbers::new();
        numbers.open();
        let linger = Duration::from_millis(200);
        let (batcher, _tasks, _stop) = start(&numbers, BatchConfig { linger, linger_batch: 3, ..config(64, 4, 2) });
        // The first item goes at once: there is no pace yet.
        let asked = Instant::now();
        assert_eq!(batcher.enqueue(0).unwrap().stored().await.unwrap(), 0);
        assert!(asked.elapsed() < linger / 2, "a lone item lingered for {:?}", asked.elapsed());
        // A full batch goes at once, and its items came fast.
        let asked = Instant::now();
        let queued: Vec<_> = (1..5).map(|i| batcher.enqueue(i).unwrap()).collect();
        assert_eq!(codes(&outcomes(queued).await), [Ok(10), Ok(20), Ok(30), Ok(40)]);
        assert!(asked.elapsed() < linger / 2, "a full batch lingered for {:?}", asked.elapsed());
        // At that pace the next batch waits for company, every writer free, and starts as soon as
        // it holds three items.
        let asked = Instant::now();
        let mut queued = vec![batcher.enqueue(5).unwrap()];
        for i in 6..8 {
            tokio::time::sleep(linger / 5).await;
            queued.push(batcher.enqueue(i).unwrap());
        }
        assert_eq!(codes(&outcomes(queued).await), [Ok(50), Ok(60), Ok(70)]);
        let waited = asked.elapsed();
        assert!(waited >= linger * 2 / 5 && waited < linger, "the batch started after {waited:?}");
        // A lone item waits the whole linger for company that does not come, and no longer.
        let asked = Instant::now();
        assert_eq!(batcher.enqueue(8).unwrap().stored().await.unwrap(), 80);
        let waited = asked.elapsed();
        assert!(waited >= linger && waited < linger * 3, "the lone item waited {waited:?}");
        // Quiet for longer than a linger: the next item goes at once again.
        tokio::time::sleep(linger * 2).await;
        let asked = Instant::now();
        assert_eq!(batcher.enqueue(9).unwrap().stored().await.unwrap(), 90);
        assert!(asked.elapsed() < linger / 2, "an item after a quiet spell lingered for {:?}", asked.elapsed());
        assert_eq!(numbers.batches(), vec![vec![0], vec![1, 2, 3, 4], vec![5, 6, 7], vec![8], vec![9]]);
    }

    #[test]
    fn the_pace_says_when_a_wait_gathers_company() {
        let (linger, quick) = (Duration::from_millis(2), Duration::from_micros(800));
        let mut pace = Pace::default();
        assert!(!pace.waiting_gathers(linger, quick, 16), "no pace yet");
        // 6,000 items a second in batches of 6: 12 within 2 ms, more than a quarter of 16.
        for _ in 0..20 {
            pace.record(6, Duration::from_millis(1));
        }
        assert!(pace.waiting_gathers(linger, quick, 16));
        assert!(!pace.waiting_gathers(Duration::ZERO, quick, 16), "no linger, no wait");
        assert!(!pace.waiting_gathers(linger, quick, 64), "12 is less than a quarter of 64");
        // Storing a batch takes 1.5 ms: 9 come meanwhile, and the next batch has more than half of
        // 16 unasked.
        assert!(!pace.waiting_gathers(linger, Duration::from_micros(1500), 16));
        // 1,000 a second: 2 within 2 ms.
        for _ in 0..40 {
            pace.record(1, Duration::from_millis(1));
        }
        assert!(!pace.waiting_gathers(linger, quick, 16));
        // After a quiet hour the pace is slow; back at 6,000 a second it is fast again within 40
        // batches, as after a quiet second.
        for _ in 0..40 {
            pace.record(6, Duration::from_millis(1));
        }
        pace.record(1, Duration::from_secs(3600));
        assert!(!pace.waiting_gathers(linger, quick, 16));
        for _ in 0..40 {
            pace.record(6, Duration::from_millis(1));
        }
        assert!(pace.waiting_gathers(linger, quick, 16), "{pace:?}");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_of_its_items_and_nothing_else() {
        let numbers = Numbers::new();
        let (batcher, _tasks, _stop) = start(&numbers, config(16, 3, 1));
        numbers.open();
        let queued: Vec<_> = [1, REFUSED, 2, 3, UNREACHABLE, 4, MISCOUNTED, 5, 6]
            .into_iter()
            .map(|i| batcher.enqueue(i).unwrap())
            .collect();
        let got = outcomes(queued).await;
        assert_eq!(numbers.batches(), vec![vec![1, REFUSED, 2], vec![3, UNREACHABLE, 4], vec![MISCOUNTED, 5, 6]]);
        let internal = Err("internal");
        let unavailable = Err("unavailable");
        assert_eq!(
            codes(&got),
            vec![internal, internal, internal, unavailable, unavailable, unavailable, internal, internal, internal]
        );
    }

    #[tokio::test]
    async fn a_refused_batch_can_be_tried_again_item_by_item() {
        let numbers = Numbers::new();
        let (batcher, _tasks, _stop) = start(&numbers, BatchConfig { retry_refused_alone: true, ..config(16, 3, 1) });
        numbers.open();
        let queued: Vec<_> =
            [1, REFUSED, 2, 3, UNREACHABLE, 4].into_iter().map(|i| batcher.enqueue(i).unwrap()).collect();
        let got = outcomes(queued).await;
        let unavailable = Err("unavailable");
        assert_eq!(codes(&got), vec![Ok(10), Err("internal"), Ok(20), unavailable, unavailable, unavailable]);
        assert_eq!(
            numbers.batches(),
            vec![vec![1, REFUSED, 2], vec![1], vec![REFUSED], vec![2], vec![3, UNREACHABLE, 4]],
            "only a refused batch is tried again, alone"
        );
        assert_eq!(
            numbers.settled.lock().unwrap().clone(),
            vec![(1, true), (REFUSED, false), (2, true), (3, false), (UNREACHABLE, false), (4, false)]
        );
    }

    #[tokio::test]
    async fn a_full_queue_answers_overloaded_at_once_with_the_hint() {
        let numbers = Numbers::new();
        let (batcher, _tasks, _stop) = start(&numbers, config(2, 8, 1));
        let first = batcher.enqueue(1).unwrap();
        numbers.started(1).await;
        let waiting = [batcher.enqueue(2).unwrap(), batcher.enqueue(3).unwrap()];
        match batcher.enqueue(4) {
            Err(Error::Overloaded { retry_after }) => assert_eq!(retry_after, Duration::from_millis(321)),
            other => panic!("a full queue took an item: {:?}", other.map(|_| ())),
        }
        assert!(batcher.enqueue_unanswered(5).is_err());
        assert_eq!(numbers.refused.lock().unwrap().clone(), vec![(4, true), (5, true)]);
        numbers.open();
        assert_eq!(first.stored().await.unwrap(), 10);
        assert_eq!(codes(&outcomes(waiting.into()).await), vec![Ok(20), Ok(30)]);
        assert_eq!(numbers.batches().concat(), vec![1, 2, 3], "a refused item was stored");
    }

    #[tokio::test]
    async fn stopping_stores_everything_accepted_then_refuses() {
        let numbers = Numbers::new();
        let (batcher, tasks, stop) = start(&numbers, config(16, 2, 1));
        let mut queued = vec![batcher.enqueue(0).unwrap()];
        numbers.started(1).await;
        queued.extend((1..7).map(|i| batcher.enqueue(i).unwrap()));
        batcher.enqueue_unanswered(7).unwrap();
        stop.cancel();
        tasks.close();
        assert!(
            tokio::time::timeout(Duration::from_millis(100), tasks.wait()).await.is_err(),
            "the batcher ended with a batch still being stored"
        );
        numbers.open();
        tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await.expect("the batcher stops once drained");
        assert_eq!(codes(&outcomes(queued).await), (0..7).map(|i| Ok(i * 10)).collect::<Vec<_>>());
        assert_eq!(numbers.batches().concat(), (0..8).collect::<Vec<_>>(), "an accepted item was dropped");
        assert!(matches!(batcher.enqueue(8), Err(Error::Unavailable)));
        assert_eq!(numbers.refused.lock().unwrap().clone(), vec![(8, false)]);
    }

    #[tokio::test]
    async fn an_item_that_waited_longer_than_a_batch_may_take_is_answered_without_being_stored() {
        let numbers = Numbers::new();
        let timeout = Duration::from_millis(200);
        let (batcher, _tasks, _stop) = start(&numbers, BatchConfig { timeout, ..config(16, 1, 1) });
        // Storage hangs: the first batch holds the only writer until its timeout.
        let first = batcher.enqueue(1).unwrap();
        numbers.started(1).await;
        tokio::time::sleep(timeout / 4).await;
        let second = batcher.enqueue(2).unwrap();
        tokio::time::sleep(timeout / 2).await;
        let asked = Instant::now();
        let third = batcher.enqueue(3).unwrap();
        batcher.enqueue_unanswered(4).unwrap();
        // The second joins a batch as the first times out (it waited less than a batch may take),
        // which times out too; by then the third has waited longer than a batch may take: it is
        // answered at once instead of holding the writer for one more timeout.
        assert!(matches!(first.stored().await, Err(Error::Unavailable)));
        assert!(matches!(second.stored().await, Err(Error::Unavailable)));
        assert!(matches!(third.stored().await, Err(Error::Unavailable)));
        let waited = asked.elapsed();
        assert!(waited > timeout && waited < timeout * 2, "the third was answered after {waited:?}");
        // The item nobody waits for is stored however late, once storage answers again.
        numbers.started(3).await;
        numbers.open();
        tokio::time::timeout(Duration::from_secs(5), async {
            while numbers.batches().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the unanswered item is stored");
        assert_eq!(numbers.batches(), vec![vec![4]]);
        assert_eq!(*numbers.settled.lock().unwrap(), [(1, false), (2, false), (3, false), (4, true)]);
    }

    #[tokio::test]
    async fn a_batch_over_the_timeout_is_answered_unavailable() {
        let numbers = Numbers::new();
        let timeout = Duration::from_millis(200);
        let (batcher, _tasks, _stop) = start(&numbers, BatchConfig { timeout, ..config(16, 4, 1) });
        let queued = batcher.enqueue(1).unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(queued.stored().await, Err(Error::Unavailable)));
        let waited = started.elapsed();
        assert!(waited >= timeout && waited < timeout * 2, "answered after {waited:?}");
    }
}
