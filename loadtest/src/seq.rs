//! The exactly-once, in-order check of one ticket's stream on one receiving socket: every seq from
//! the first expected one on must arrive once, in order. A jump ahead is a gap (remembered as a
//! range), a seq that fills a gap later is a reorder, any other repeat is a duplicate, and whatever
//! is still missing at the end, up to the last acknowledged seq, is lost.

use std::collections::BTreeMap;

/// What one observed seq was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The next one expected.
    InOrder,
    /// Ahead of the next expected one: this many seqs were skipped (so far).
    Gap(u64),
    /// A skipped seq arriving late.
    Reordered,
    /// Already received.
    Duplicate,
}

/// The check for one ticket on one socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqChecker {
    next: u64,
    /// Skipped ranges, start -> end (inclusive), not yet filled.
    missing: BTreeMap<u64, u64>,
    /// Events received (including duplicates).
    pub received: u64,
    /// Seqs received twice or more.
    pub duplicates: u64,
    /// Seqs received after a later one.
    pub reorders: u64,
}

impl SeqChecker {
    /// A checker for a subscription made with `after_seq`: the first event expected is `after + 1`.
    pub fn after(after: u64) -> Self {
        Self { next: after + 1, missing: BTreeMap::new(), received: 0, duplicates: 0, reorders: 0 }
    }

    /// Records one received seq.
    pub fn observe(&mut self, seq: u64) -> Seen {
        self.received += 1;
        if seq == self.next {
            self.next += 1;
            return Seen::InOrder;
        }
        if seq > self.next {
            let skipped = seq - self.next;
            self.missing.insert(self.next, seq - 1);
            self.next = seq + 1;
            return Seen::Gap(skipped);
        }
        // Below the next expected: either it fills a gap, or it is a repeat.
        let hole = self.missing.range(..=seq).next_back().map(|(&s, &e)| (s, e));
        match hole {
            Some((start, end)) if seq <= end => {
                self.missing.remove(&start);
                if start < seq {
                    self.missing.insert(start, seq - 1);
                }
                if seq < end {
                    self.missing.insert(seq + 1, end);
                }
                self.reorders += 1;
                Seen::Reordered
            }
            _ => {
                self.duplicates += 1;
                Seen::Duplicate
            }
        }
    }

    /// The highest seq received so far (or the subscription's `after_seq`).
    pub fn highest(&self) -> u64 {
        self.next - 1
    }

    /// Seqs up to `acked` (the last one the hub acknowledged for this ticket) never received:
    /// unfilled gaps plus the tail not yet delivered.
    pub fn lost(&self, acked: u64) -> u64 {
        let holes: u64 = self.missing.iter().map(|(s, e)| e - s + 1).sum();
        holes + acked.saturating_sub(self.highest())
    }

    /// Whether everything up to `acked` arrived (there may be more: events that were not acks,
    /// such as another socket's messages, are fine).
    pub fn caught_up(&self, acked: u64) -> bool {
        self.highest() >= acked
    }
}

/// The delivery check summed over every ticket and socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryCheck {
    /// Ticket streams checked (one per ticket and receiving socket).
    pub streams: u64,
    /// Events received.
    pub events: u64,
    /// Acknowledged seqs never received.
    pub lost: u64,
    /// Seqs received more than once.
    pub duplicates: u64,
    /// Seqs received out of order.
    pub reorders: u64,
    /// Streams not judged because their socket failed before the end (the failure is counted
    /// among the errors; an app would have resumed from its cursor).
    pub abandoned: u64,
}

impl DeliveryCheck {
    /// Adds one stream's result, `acked` being the ticket's last acknowledged seq.
    pub fn add(&mut self, checker: &SeqChecker, acked: u64) {
        self.streams += 1;
        self.events += checker.received;
        self.lost += checker.lost(acked);
        self.duplicates += checker.duplicates;
        self.reorders += checker.reorders;
    }

    /// True when nothing was lost, duplicated or reordered.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.reorders == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ordered_stream_passes() {
        let mut c = SeqChecker::after(0);
        for s in 1..=5 {
            assert_eq!(c.observe(s), Seen::InOrder);
        }
        assert_eq!((c.highest(), c.lost(5), c.caught_up(5), c.caught_up(6)), (5, 0, true, false));
        let mut sum = DeliveryCheck::default();
        sum.add(&c, 5);
        assert!(sum.ok());
        assert_eq!(sum.events, 5);
    }

    #[test]
    fn a_resumed_subscription_starts_after_its_cursor() {
        let mut c = SeqChecker::after(3);
        assert_eq!(c.observe(4), Seen::InOrder);
        assert_eq!(c.observe(3), Seen::Duplicate, "below the cursor is a repeat, not a late event");
    }

    #[test]
    fn gaps_are_lost_unless_filled_and_fills_are_reorders() {
        let mut c = SeqChecker::after(0);
        c.observe(1);
        assert_eq!(c.observe(5), Seen::Gap(3));
        assert_eq!(c.lost(5), 3);
        assert_eq!(c.observe(3), Seen::Reordered);
        assert_eq!(c.lost(5), 2, "2 and 4 still missing");
        assert_eq!(c.observe(3), Seen::Duplicate);
        assert_eq!(c.observe(2), Seen::Reordered);
        assert_eq!(c.observe(4), Seen::Reordered);
        assert_eq!(c.lost(5), 0);
        assert_eq!((c.reorders, c.duplicates, c.received), (3, 1, 6));
        let mut sum = DeliveryCheck::default();
        sum.add(&c, 5);
        assert!(!sum.ok());
    }

    #[test]
    fn an_undelivered_tail_is_lost() {
        let mut c = SeqChecker::after(0);
        c.observe(1);
        c.observe(2);
        assert_eq!(c.lost(4), 2);
        assert!(!c.caught_up(4));
    }

    #[test]
    fn duplicates_of_the_last_seq_are_caught() {
        let mut c = SeqChecker::after(0);
        c.observe(1);
        assert_eq!(c.observe(1), Seen::Duplicate);
        assert_eq!(c.duplicates, 1);
    }
}
