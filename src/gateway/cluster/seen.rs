//! Which envelopes of one sending node this node has delivered.
//!
//! An envelope goes to the channel of each topic in its audience, and a node subscribed to several
//! of them receives it several times. On one Redis a node's envelopes arrive in the order they were
//! numbered; on a Redis Cluster those channels live on different shards, whose connections each
//! keep their own order, so a later number can arrive before an earlier one. Kept: the highest
//! number and which of the [`WINDOW`] numbers below it arrived. A number further back than that
//! counts as seen: it is dropped, and the storage sweep delivers its ticket events.

/// How far behind the highest number an envelope may arrive and still be told apart.
const WINDOW: u64 = 1_024;
const WORDS: usize = (WINDOW / 64) as usize;

/// The numbers seen from one sending node.
#[derive(Default)]
pub(super) struct Seen {
    highest: u64,
    bits: [u64; WORDS],
}

impl Seen {
    /// Records `number`; whether it is the first time.
    pub(super) fn first_time(&mut self, number: u64) -> bool {
        if number > self.highest {
            if number - self.highest >= WINDOW {
                self.bits = [0; WORDS];
            } else {
                for n in self.highest + 1..number {
                    self.set(n, false);
                }
            }
            self.highest = number;
            self.set(number, true);
            return true;
        }
        if self.highest - number >= WINDOW || self.get(number) {
            return false;
        }
        self.set(number, true);
        true
    }

    fn get(&self, n: u64) -> bool {
        let i = n % WINDOW;
        self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, n: u64, on: bool) {
        let i = n % WINDOW;
        let word = &mut self.bits[(i / 64) as usize];
        if on {
            *word |= 1 << (i % 64);
        } else {
            *word &= !(1 << (i % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_each_number_once() {
        let mut seen = Seen::default();
        for n in 1..5_000 {
            assert!(seen.first_time(n));
            assert!(!seen.first_time(n));
        }
    }

    #[test]
    fn out_of_order_within_the_window_is_delivered_once() {
        let mut seen = Seen::default();
        assert!(seen.first_time(10));
        assert!(seen.first_time(7), "an earlier envelope through a slower shard");
        assert!(!seen.first_time(7));
        assert!(!seen.first_time(10));
        assert!(seen.first_time(9));
        assert!(seen.first_time(8));
        assert!(seen.first_time(11));
        assert!(!seen.first_time(8));
    }

    #[test]
    fn numbers_skipped_by_a_jump_are_not_taken_for_seen() {
        let mut seen = Seen::default();
        assert!(seen.first_time(5));
        // The bit positions of 5 + WINDOW and 5 are the same: a jump must clear them.
        assert!(seen.first_time(5 + WINDOW - 1));
        assert!(seen.first_time(5 + WINDOW));
        assert!(seen.first_time(6 + WINDOW));
        assert!(seen.first_time(3 * WINDOW));
        assert!(seen.first_time(3 * WINDOW - 1));
        assert!(!seen.first_time(3 * WINDOW - 1));
    }

    #[test]
    fn too_far_behind_counts_as_seen() {
        let mut seen = Seen::default();
        assert!(seen.first_time(2 * WINDOW));
        assert!(!seen.first_time(WINDOW), "beyond the window: dropped, the sweep delivers it");
        assert!(seen.first_time(WINDOW + 1));
    }
}
