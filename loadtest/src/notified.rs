//! Which agent message each push notification answered (`offline`). The hub makes one
//! notification of a ticket's events within its collapse window, and the payload is encrypted for
//! the app, so a push cannot be paired with one message. Instead each push that arrives for a
//! ticket is matched to the earliest message of that ticket not yet notified, and counts as
//! notifying every message of the ticket written to the socket before it arrived. Its latency runs
//! from that earliest message: the longest any of them waited.
//!
//! The one approximation: a message written after the hub claimed a notification and before that
//! notification arrived counts as notified by it, though the hub sends it in the next one; that
//! next push then finds nothing waiting and counts as *unmatched*. So unmatched pushes bound the
//! error (they also count a notification the hub sent twice, which its at-least-once delivery
//! allows).

use crate::stats::Latency;

/// One agent message the hub stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// When the harness meant to send it (open loop: a stalled socket counts as latency), µs.
    pub at_us: u64,
    /// When it was written to the socket, µs: a push that arrived earlier cannot be for it.
    pub written_us: u64,
    /// When its `ticket.send.ok` arrived, µs.
    pub acked_us: u64,
}

/// One push, matched to the message it notified first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notified {
    /// When the push arrived, µs.
    pub arrived_us: u64,
    /// The earliest message it notified.
    pub first: Sent,
    /// Messages it notified (more than 1: collapsed).
    pub messages: u64,
}

/// The pushes of one ticket matched to its messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TicketPushes {
    /// Pushes that notified at least one message, in arrival order.
    pub notified: Vec<Notified>,
    /// Pushes that found no message waiting.
    pub unmatched: u64,
    /// Messages no push followed.
    pub waiting: u64,
}

/// Matches the pushes of one ticket (`arrivals`, µs) to its messages.
pub fn match_ticket(sent: &[Sent], arrivals: &[u64]) -> TicketPushes {
    let mut sent = sent.to_vec();
    sent.sort_unstable_by_key(|s| (s.written_us, s.at_us));
    let mut arrivals = arrivals.to_vec();
    arrivals.sort_unstable();
    let mut out = TicketPushes::default();
    let mut next = 0;
    for arrived_us in arrivals {
        let first = next;
        while next < sent.len() && sent[next].written_us <= arrived_us {
            next += 1;
        }
        if next == first {
            out.unmatched += 1;
        } else {
            out.notified.push(Notified { arrived_us, first: sent[first], messages: (next - first) as u64 });
        }
    }
    out.waiting = (sent.len() - next) as u64;
    out
}

/// Messages of every ticket that no push has followed yet (`sent` and `arrivals` indexed by
/// ticket).
pub fn waiting(sent: &[Vec<Sent>], arrivals: &[Vec<u64>]) -> u64 {
    let none = Vec::new();
    sent.iter().enumerate().map(|(t, s)| match_ticket(s, arrivals.get(t).unwrap_or(&none)).waiting).sum()
}

/// What the pushes of a run came to.
#[derive(Clone, Debug, Default)]
pub struct PushTally {
    /// Messages acknowledged (over the whole run).
    pub messages: u64,
    /// Pushes received (over the whole run).
    pub pushes: u64,
    /// Pushes that arrived in the measured window.
    pub arrived_in_window: u64,
    /// Pushes whose first message was scheduled in the window: the latencies below.
    pub measured: u64,
    /// Messages those pushes notified.
    pub measured_messages: u64,
    /// Most messages one push notified.
    pub most_collapsed: u64,
    /// Pushes that found no message waiting.
    pub unmatched: u64,
    /// Messages no push followed.
    pub waiting: u64,
    /// The first message's scheduled send to the push's arrival, for the measured pushes.
    pub after_send: Latency,
    /// The first message's `ticket.send.ok` to the push's arrival, for the measured pushes.
    pub after_ack: Latency,
    /// Every matched push, (arrived, latency after the scheduled send) in µs, for the timeline.
    pub arrivals: Vec<(u64, u64)>,
}

impl PushTally {
    /// Matches every ticket's pushes (`sent` and `arrivals` indexed by ticket) and measures the
    /// pushes whose first message was scheduled in `[window_start_us, window_end_us)`.
    pub fn new(sent: &[Vec<Sent>], arrivals: &[Vec<u64>], window_start_us: u64, window_end_us: u64) -> Self {
        let mut out = Self::default();
        let none = Vec::new();
        let in_window = |us: u64| (window_start_us..window_end_us).contains(&us);
        for (t, arrived) in arrivals.iter().enumerate() {
            out.pushes += arrived.len() as u64;
            out.arrived_in_window += arrived.iter().filter(|&&a| in_window(a)).count() as u64;
            if t >= sent.len() {
                out.unmatched += arrived.len() as u64;
            }
        }
        for (t, s) in sent.iter().enumerate() {
            out.messages += s.len() as u64;
            let matched = match_ticket(s, arrivals.get(t).unwrap_or(&none));
            out.unmatched += matched.unmatched;
            out.waiting += matched.waiting;
            for n in matched.notified {
                let latency = n.arrived_us.saturating_sub(n.first.at_us);
                out.arrivals.push((n.arrived_us, latency));
                out.most_collapsed = out.most_collapsed.max(n.messages);
                if in_window(n.first.at_us) {
                    out.measured += 1;
                    out.measured_messages += n.messages;
                    out.after_send.record(latency);
                    out.after_ack.record(n.arrived_us.saturating_sub(n.first.acked_us));
                }
            }
        }
        out.arrivals.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(at_us: u64) -> Sent {
        Sent { at_us, written_us: at_us + 10, acked_us: at_us + 1_000 }
    }

    #[test]
    fn each_push_notifies_the_messages_written_before_it() {
        // One message, one push.
        let one = match_ticket(&[sent(1_000)], &[300_000]);
        assert_eq!(one.notified, [Notified { arrived_us: 300_000, first: sent(1_000), messages: 1 }]);
        assert_eq!((one.unmatched, one.waiting), (0, 0));
        // Three messages within the collapse window, one push: its latency runs from the first.
        let burst = match_ticket(&[sent(2_000), sent(1_000), sent(3_000)], &[250_000]);
        assert_eq!(burst.notified.len(), 1);
        assert_eq!((burst.notified[0].first, burst.notified[0].messages), (sent(1_000), 3));
        // A message written after the push arrived waits for the next one.
        let later = match_ticket(&[sent(1_000), sent(400_000)], &[300_000, 700_000]);
        assert_eq!(later.notified[1].first, sent(400_000));
        assert_eq!(later.notified.iter().map(|n| n.messages).sum::<u64>(), 2);
    }

    #[test]
    fn pushes_without_a_message_and_messages_without_a_push_are_counted() {
        // A push before any message (and a second for the same one) finds nothing waiting.
        let m = match_ticket(&[sent(100_000)], &[50_000, 300_000, 310_000]);
        assert_eq!((m.notified.len(), m.unmatched, m.waiting), (1, 2, 0));
        // The last message had no push yet.
        let m = match_ticket(&[sent(1_000), sent(500_000)], &[300_000]);
        assert_eq!((m.notified.len(), m.unmatched, m.waiting), (1, 0, 1));
        assert_eq!(waiting(&[vec![sent(1_000), sent(500_000)], vec![sent(1)]], &[vec![300_000]]), 2);
        // The written time decides, not the scheduled one: a message scheduled before the push but
        // held back (its socket at the in-flight limit) until after it is not notified by it.
        let held = Sent { at_us: 1_000, written_us: 400_000, acked_us: 401_000 };
        assert_eq!(match_ticket(&[held], &[300_000]).waiting, 1);
    }

    #[test]
    fn only_pushes_whose_first_message_was_in_the_window_are_measured() {
        let sent = vec![vec![sent(500), sent(1_500)], vec![sent(2_500)], vec![]];
        let arrivals = vec![vec![1_000, 1_800], vec![2_900, 3_100], vec![1_200]];
        let t = PushTally::new(&sent, &arrivals, 1_000, 2_000);
        assert_eq!((t.messages, t.pushes, t.arrived_in_window), (3, 5, 3));
        // 500 is before the window, 2_500 after it: only the push of 1_500 is measured.
        assert_eq!((t.measured, t.measured_messages), (1, 1));
        assert_eq!(t.after_send.summary().count, 1);
        assert!((t.after_send.summary().max_ms - 0.3).abs() < 0.01, "{:?}", t.after_send.summary());
        // The second push of ticket 1 and the push of ticket 2 (no message) are unmatched.
        assert_eq!((t.unmatched, t.waiting, t.most_collapsed), (2, 0, 1));
        assert_eq!(t.arrivals, vec![(1_000, 500), (1_800, 300), (2_900, 400)]);
        // Arrivals for a ticket with no messages at all are unmatched too.
        let t = PushTally::new(&[], &[vec![5]], 0, 10);
        assert_eq!((t.pushes, t.unmatched), (1, 1));
    }
}
