//! What a run measures while it runs: latency histograms (HDR, microseconds), counters, errors by
//! key, and the once-a-second progress line with its timeline.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;

/// Largest latency recorded (one hour, in microseconds); anything above is clamped to it.
const MAX_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds with 3 significant digits.
#[derive(Clone, Debug)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, MAX_US, 3).expect("static bounds are valid"))
    }
}

impl Latency {
    /// Records one latency.
    pub fn record(&mut self, us: u64) {
        self.0.saturating_record(us.clamp(1, MAX_US));
    }

    /// The percentiles the report shows, in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1000.0;
        if self.0.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.0.len(),
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p90_ms: ms(self.0.value_at_quantile(0.90)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            p999_ms: ms(self.0.value_at_quantile(0.999)),
            max_ms: ms(self.0.max()),
            mean_ms: self.0.mean() / 1000.0,
        }
    }
}

/// Percentiles of one latency histogram, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// Wall-clock microseconds derived from one monotonic base, so that send times written into
/// message ids and receipt times compare exactly within the process (and closely across processes
/// on one machine).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base: Instant,
    base_wall_us: u64,
}

impl Default for Clock {
    fn default() -> Self {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
        Self { base: Instant::now(), base_wall_us: wall }
    }
}

impl Clock {
    /// Microseconds at `t`.
    pub fn at(&self, t: Instant) -> u64 {
        self.base_wall_us + t.saturating_duration_since(self.base).as_micros() as u64
    }

    /// Microseconds now.
    pub fn now(&self) -> u64 {
        self.at(Instant::now())
    }
}

/// The histograms shared by every socket task, behind one lock.
#[derive(Clone, Debug, Default)]
pub struct Histograms {
    /// A user's send to its `ticket.send.ok`.
    pub ack: Latency,
    /// An agent's reply to its `ticket.send.ok`.
    pub ack_agent: Latency,
    /// A user's send to the agent's receipt of its `ticket.event`.
    pub e2e_to_agent: Latency,
    /// An agent's reply to the user's receipt of its `ticket.event`.
    pub e2e_to_user: Latency,
    /// Connect + authenticate (idle).
    pub connect: Latency,
    /// A dropped socket's resume: reconnect, authenticate, subscribe again, resend (reconnect).
    pub resume: Latency,
    /// An operator's announcement POST to a socket's receipt (burst).
    pub delivery: Latency,
    /// An upload's first byte to the hub's acceptance of its last (chat with attachments).
    pub upload: Latency,
    /// A user's send of a message with an attachment to its `ticket.send.ok`.
    pub ack_attachment: Latency,
}

/// Counters and histograms shared by every task of a run.
#[derive(Debug, Default)]
pub struct Live {
    /// Sockets open now.
    pub sockets: AtomicI64,
    /// Requests of the load (messages, or idle sockets' frames) sent.
    pub sent: AtomicU64,
    /// Messages acknowledged (stored).
    pub acked: AtomicU64,
    /// Messages delivered to a subscriber.
    pub delivered: AtomicU64,
    /// Uploads the hub accepted (checked and stored).
    pub uploads: AtomicU64,
    /// Bytes of those uploads.
    pub upload_bytes: AtomicU64,
    /// Errors of every kind.
    pub errors: AtomicU64,
    /// Whether latencies are recorded now (false during warm-up and drain).
    pub measuring: AtomicBool,
    total: Mutex<Histograms>,
    interval: Mutex<Histograms>,
    error_keys: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not stop the report: take the data as it is.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Live {
    /// Records a latency into the run's totals (while measuring) and the current second.
    pub fn record(&self, pick: fn(&mut Histograms) -> &mut Latency, us: u64) {
        if self.measuring.load(Ordering::Relaxed) {
            pick(&mut lock(&self.total)).record(us);
        }
        pick(&mut lock(&self.interval)).record(us);
    }

    /// Records many latencies under one lock: each into the current second, and into the run's
    /// totals when its flag says it belongs to the measured window.
    pub fn record_batch(&self, pick: fn(&mut Histograms) -> &mut Latency, items: &[(u64, bool)]) {
        {
            let mut total = lock(&self.total);
            let h = pick(&mut total);
            for &(us, measured) in items {
                if measured {
                    h.record(us);
                }
            }
        }
        let mut interval = lock(&self.interval);
        let h = pick(&mut interval);
        for &(us, _) in items {
            h.record(us);
        }
    }

    /// Counts an error under `key`.
    pub fn error(&self, key: impl Into<String>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *lock(&self.error_keys).entry(key.into()).or_default() += 1;
    }

    /// Errors by key so far.
    pub fn errors_by_key(&self) -> BTreeMap<String, u64> {
        lock(&self.error_keys).clone()
    }

    /// The run's histograms.
    pub fn totals(&self) -> Histograms {
        lock(&self.total).clone()
    }

    /// Starts the measured window: earlier latencies are forgotten.
    pub fn start_measuring(&self) {
        *lock(&self.total) = Histograms::default();
        self.measuring.store(true, Ordering::Relaxed);
    }

    /// Takes the current second's histograms and starts a new second.
    pub fn take_interval(&self) -> Histograms {
        std::mem::take(&mut *lock(&self.interval))
    }
}

/// One second of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tick {
    /// Seconds since the load started.
    pub t: u64,
    /// Open sockets.
    pub sockets: i64,
    /// Requests sent in this second.
    pub sent: u64,
    /// Messages acknowledged in this second.
    pub acked: u64,
    /// Messages (chat) or announcements (burst) delivered to sockets in this second.
    pub delivered: u64,
    /// Uploads accepted in this second (chat with attachments).
    pub uploads: u64,
    /// Ack latency p99 in this second (ms).
    pub ack_p99_ms: f64,
    /// End-to-end p50 in this second (ms): user to agent (chat), POST to receipt (burst).
    pub e2e_p50_ms: f64,
    /// End-to-end p99 in this second (ms), as `e2e_p50_ms`.
    pub e2e_p99_ms: f64,
    /// End-to-end maximum in this second (ms), as `e2e_p50_ms`.
    pub e2e_max_ms: f64,
    /// Connect + auth p99 in this second (ms), for sockets that opened in it.
    pub connect_p99_ms: f64,
    /// Errors so far.
    pub errors: u64,
}

/// What the progress line shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Messages: rates and latencies.
    Chat,
    /// Messages, and uploads per second.
    ChatUploads,
    /// Sockets: opened and connect latency.
    Idle,
    /// Announcements: posted, deliveries and their latency.
    Burst,
}

impl Tick {
    /// The progress line printed each second.
    pub fn line(&self, style: Progress) -> String {
        if style == Progress::Burst {
            return format!(
                "[{:>4}s] sockets {:>6}  posted/s {:>5}  delivered/s {:>8}  delivery p50 {:>7.2} ms  p99 {:>8.2} ms  errors {}",
                self.t, self.sockets, self.sent, self.delivered, self.e2e_p50_ms, self.e2e_p99_ms, self.errors
            );
        }
        if style == Progress::Idle {
            return format!(
                "[{:>4}s] sockets {:>6}  opened/s {:>6}  connect+auth p99 {:>8.2} ms  errors {}",
                self.t, self.sockets, self.sent, self.connect_p99_ms, self.errors
            );
        }
        let uploads =
            if style == Progress::ChatUploads { format!("  uploads/s {:>4}", self.uploads) } else { String::new() };
        format!(
            "[{:>4}s] sockets {:>6}  sent/s {:>7}  acked/s {:>7}{uploads}  ack p99 {:>8.2} ms  e2e p99 {:>8.2} ms  errors {}",
            self.t, self.sockets, self.sent, self.acked, self.ack_p99_ms, self.e2e_p99_ms, self.errors
        )
    }
}

/// Turns counter snapshots into ticks.
#[derive(Debug, Default)]
pub struct Ticker {
    last_sent: u64,
    last_acked: u64,
    last_delivered: u64,
    last_uploads: u64,
    /// Every tick so far.
    pub timeline: Vec<Tick>,
}

impl Ticker {
    /// Reads `live` for second `t`, remembers the tick and returns it.
    pub fn tick(&mut self, t: u64, live: &Live, style: Progress) -> Tick {
        let sent = live.sent.load(Ordering::Relaxed);
        let acked = live.acked.load(Ordering::Relaxed);
        let delivered = live.delivered.load(Ordering::Relaxed);
        let uploads = live.uploads.load(Ordering::Relaxed);
        let h = live.take_interval();
        let e2e = if style == Progress::Burst { h.delivery.summary() } else { h.e2e_to_agent.summary() };
        let tick = Tick {
            t,
            sockets: live.sockets.load(Ordering::Relaxed),
            sent: sent - self.last_sent.min(sent),
            acked: acked - self.last_acked.min(acked),
            delivered: delivered - self.last_delivered.min(delivered),
            uploads: uploads - self.last_uploads.min(uploads),
            ack_p99_ms: h.ack.summary().p99_ms,
            e2e_p50_ms: e2e.p50_ms,
            e2e_p99_ms: e2e.p99_ms,
            e2e_max_ms: e2e.max_ms,
            connect_p99_ms: h.connect.summary().p99_ms,
            errors: live.errors.load(Ordering::Relaxed),
        };
        self.last_sent = sent;
        self.last_acked = acked;
        self.last_delivered = delivered;
        self.last_uploads = uploads;
        self.timeline.push(tick.clone());
        tick
    }
}

/// Prints the progress line to stderr every second until told to stop; returns the timeline.
pub fn spawn_progress(live: Arc<Live>, style: Progress) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Ticker>) {
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let mut ticker = Ticker::default();
        let start = tokio::time::Instant::now();
        let mut every = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
        every.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                _ = every.tick() => {
                    let t = start.elapsed().as_secs();
                    eprintln!("{}", ticker.tick(t, &live, style).line(style));
                }
            }
        }
        ticker
    });
    (stop_tx, handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_in_milliseconds() {
        let mut h = Latency::default();
        for us in 1..=1000 {
            h.record(us * 10);
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 5.0).abs() < 0.01, "{s:?}");
        assert!((s.p99_ms - 9.9).abs() < 0.01, "{s:?}");
        assert!((s.max_ms - 10.0).abs() < 0.01, "{s:?}");
        assert_eq!(Latency::default().summary(), LatencySummary::default());
        h.record(u64::MAX);
        assert!(h.summary().max_ms >= 3_600_000.0, "clamped, not dropped");
    }

    #[test]
    fn only_the_measured_window_reaches_the_totals() {
        let live = Live::default();
        live.record(|h| &mut h.ack, 500);
        assert_eq!(live.totals().ack.summary().count, 0, "warm-up is not measured");
        live.start_measuring();
        live.record(|h| &mut h.ack, 700);
        assert_eq!(live.totals().ack.summary().count, 1);
        assert_eq!(live.take_interval().ack.summary().count, 2, "the progress line sees everything");
        assert_eq!(live.take_interval().ack.summary().count, 0);
    }

    #[test]
    fn ticks_count_per_second_and_errors_by_key() {
        let live = Live::default();
        let mut ticker = Ticker::default();
        live.sent.store(10, Ordering::Relaxed);
        live.acked.store(8, Ordering::Relaxed);
        live.error("overloaded");
        live.error("overloaded");
        let t1 = ticker.tick(1, &live, Progress::Chat);
        live.sent.store(25, Ordering::Relaxed);
        live.delivered.store(7, Ordering::Relaxed);
        let t2 = ticker.tick(2, &live, Progress::Chat);
        assert_eq!((t1.sent, t1.acked, t2.sent, t2.acked, t2.errors), (10, 8, 15, 0, 2));
        assert_eq!(live.errors_by_key().get("overloaded"), Some(&2));
        assert!(t2.line(Progress::Chat).contains("sent/s      15"), "{}", t2.line(Progress::Chat));
        assert!(t2.line(Progress::Idle).contains("opened/s     15"), "{}", t2.line(Progress::Idle));
        assert_eq!(ticker.timeline.len(), 2);
        assert_eq!(t2.delivered, 7);
        live.uploads.store(4, Ordering::Relaxed);
        let t3 = ticker.tick(3, &live, Progress::ChatUploads);
        assert!(t3.line(Progress::ChatUploads).contains("uploads/s    4"), "{}", t3.line(Progress::ChatUploads));
        assert!(!t3.line(Progress::Chat).contains("uploads"));
        assert!(t2.line(Progress::Burst).contains("delivered/s        7"), "{}", t2.line(Progress::Burst));
    }

    #[test]
    fn a_batch_is_recorded_once_per_second_and_only_measured_ones_in_the_totals() {
        let live = Live::default();
        live.start_measuring();
        live.record_batch(|h| &mut h.delivery, &[(1000, true), (2000, false), (3000, true)]);
        assert_eq!(live.totals().delivery.summary().count, 2);
        let mut ticker = Ticker::default();
        let tick = ticker.tick(1, &live, Progress::Burst);
        assert!((tick.e2e_max_ms - 3.0).abs() < 0.01, "{tick:?}");
        assert!((tick.e2e_p50_ms - 2.0).abs() < 0.01, "{tick:?}");
    }

    #[test]
    fn the_clock_is_monotonic_and_in_microseconds() {
        let c = Clock::default();
        let t = Instant::now();
        let later = t + std::time::Duration::from_millis(3);
        assert_eq!(c.at(later) - c.at(t), 3000);
        assert!(c.now() >= c.at(t));
    }
}
