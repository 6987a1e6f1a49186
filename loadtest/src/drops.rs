//! The drops of the `reconnect` scenario: a signal per socket task, the counters of what the
//! resumes did, and the task that picks a share of the sockets at random every few seconds and
//! tells them to drop. The `chat` socket tasks wait on these signals; outside `reconnect` there are
//! none.

use crate::report::ReconnectFigures;
use crate::stats::Live;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// When and how many sockets are dropped.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct DropPlan {
    /// Share of the sockets dropped at each round (0 to 1).
    #[arg(long, default_value_t = 0.1)]
    pub drop_share: f64,
    /// Seconds between two rounds of drops (during the load only).
    #[arg(long, default_value_t = 5.0)]
    pub drop_every: f64,
    /// Seed of the random choice of sockets (the same seed drops the same sockets).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The drop signals of every socket task and what the resumes did.
#[derive(Debug, Default)]
pub struct Drops {
    /// One signal per socket task (users first, then agent sockets).
    signals: Vec<Notify>,
    /// Sockets dropped by the harness.
    pub dropped: AtomicU64,
    /// Sockets that reconnected and resumed (subscribed again, resent what was unacknowledged).
    pub resumed: AtomicU64,
    /// Messages resent after a resume.
    pub resent: AtomicU64,
    /// Resent messages the hub had stored already (`"duplicate": true`): their reply was lost with
    /// the socket.
    pub resent_duplicates: AtomicU64,
}

impl Drops {
    /// Signals for `slots` socket tasks.
    pub fn new(slots: usize) -> Self {
        Self { signals: (0..slots).map(|_| Notify::new()).collect(), ..Self::default() }
    }

    /// Waits until socket task `slot` is told to drop (forever when it has no signal).
    pub async fn wait(&self, slot: usize) {
        match self.signals.get(slot) {
            Some(signal) => signal.notified().await,
            None => std::future::pending().await,
        }
    }

    /// Tells the tasks in `slots` to drop their socket (a task busy elsewhere drops at its next
    /// turn: the signal is kept).
    pub fn drop_sockets(&self, slots: &[usize]) {
        for &slot in slots {
            if let Some(signal) = self.signals.get(slot) {
                signal.notify_one();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The figures for the report.
    pub fn figures(&self) -> ReconnectFigures {
        ReconnectFigures {
            dropped: self.dropped.load(Ordering::Relaxed),
            resumed: self.resumed.load(Ordering::Relaxed),
            resent: self.resent.load(Ordering::Relaxed),
            resent_duplicates: self.resent_duplicates.load(Ordering::Relaxed),
            resume_latency: Default::default(),
        }
    }
}

/// A small deterministic random generator (xorshift64*), so that a seed replays the same drops.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// How many of `total` sockets one round drops: `share` of them, rounded, at least one when the
/// share is positive, at most all.
pub fn round_size(total: usize, share: f64) -> usize {
    if total == 0 || share <= 0.0 {
        return 0;
    }
    ((total as f64 * share).round() as usize).clamp(1, total)
}

/// `count` distinct slots out of `0..total`, at random (a partial Fisher-Yates shuffle).
pub fn pick(rng: &mut Rng, total: usize, count: usize) -> Vec<usize> {
    let count = count.min(total);
    let mut slots: Vec<usize> = (0..total).collect();
    for i in 0..count {
        let j = i + rng.below(total - i);
        slots.swap(i, j);
    }
    slots.truncate(count);
    slots
}

/// Drops a round of sockets every `every` until told to stop; returns the number of rounds.
pub fn spawn_dropper(
    drops: Arc<Drops>,
    live: Arc<Live>,
    slots: usize,
    plan: &DropPlan,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<u64>) {
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let every = Duration::from_secs_f64(plan.drop_every.max(0.1));
    let (share, seed) = (plan.drop_share, plan.seed);
    let handle = tokio::spawn(async move {
        let mut rng = Rng::new(seed);
        let mut rounds = 0;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                _ = ticker.tick() => {
                    let chosen = pick(&mut rng, slots, round_size(slots, share));
                    eprintln!("reconnect: dropping {} of {} sockets", chosen.len(), live.sockets.load(Ordering::Relaxed));
                    drops.drop_sockets(&chosen);
                    rounds += 1;
                }
            }
        }
        rounds
    });
    (stop_tx, handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_drops_the_share_rounded_at_least_one() {
        assert_eq!(round_size(1000, 0.1), 100);
        assert_eq!(round_size(5, 0.01), 1, "a positive share drops someone");
        assert_eq!(round_size(5, 0.0), 0);
        assert_eq!(round_size(0, 0.5), 0);
        assert_eq!(round_size(10, 3.0), 10, "never more than all");
        assert_eq!(round_size(10, 0.25), 3);
    }

    #[test]
    fn picks_are_distinct_in_range_and_replayable() {
        let mut rng = Rng::new(7);
        let mut chosen = pick(&mut rng, 50, 20);
        assert_eq!(chosen.len(), 20);
        assert!(chosen.iter().all(|&s| s < 50));
        chosen.sort_unstable();
        chosen.dedup();
        assert_eq!(chosen.len(), 20, "no socket twice in one round");
        assert_eq!(pick(&mut Rng::new(7), 50, 20), pick(&mut Rng::new(7), 50, 20), "same seed, same drops");
        assert_ne!(pick(&mut Rng::new(7), 50, 20), pick(&mut Rng::new(8), 50, 20));
        assert_eq!(pick(&mut rng, 3, 10).len(), 3);
        assert!(pick(&mut rng, 0, 10).is_empty());
    }

    #[test]
    fn every_slot_gets_picked_over_many_rounds() {
        let mut rng = Rng::new(0);
        let mut hit = [0u32; 10];
        for _ in 0..200 {
            for s in pick(&mut rng, 10, 2) {
                hit[s] += 1;
            }
        }
        assert!(hit.iter().all(|&h| h > 10), "{hit:?}");
    }

    #[tokio::test]
    async fn a_signal_sent_before_the_wait_is_kept() {
        let drops = Drops::new(3);
        drops.drop_sockets(&[1, 7]);
        assert_eq!(drops.dropped.load(Ordering::Relaxed), 1, "slot 7 does not exist");
        tokio::time::timeout(Duration::from_secs(1), drops.wait(1)).await.expect("kept");
        assert!(tokio::time::timeout(Duration::from_millis(20), drops.wait(0)).await.is_err());
    }
}
