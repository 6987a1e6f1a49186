//! Pipelined `ticket.send`s: queued for storage as they are read, answered in request order as
//! their commits come back.

use super::commands::Transport;
use super::outbox::Outbound;
use super::{Exit, Socket, MAX_SENDS_IN_FLIGHT};
use crate::model::ids::{Principal, TicketId};
use crate::protocol::{self, ServerFrame};
use futures_util::{FutureExt, StreamExt};

/// The reply of a pipelined request, once it is ready.
type PendingReply = futures_util::future::BoxFuture<'static, (protocol::RequestId, crate::Result<ServerFrame>)>;

/// A socket's `ticket.send`s that are queued for storage and not yet answered, oldest first.
///
/// An agent's console writes to many tickets: waiting for each message's commit before reading the
/// next request would make its sends queue behind each other. Sends are therefore pipelined: each is
/// queued for the writer as it is read, and the replies leave as the commits come back, in request
/// order (`FuturesOrdered`). At most one send per ticket is in flight, so that a sender's messages to a
/// ticket are stored in the order it sent them, and at most [`MAX_SENDS_IN_FLIGHT`] in all. Any
/// other request first waits for these replies, so that every reply still leaves in request order.
/// Created with the first send and dropped with the last reply: an idle socket pays nothing.
///
/// While a send to a ticket is in flight, the events of that ticket queued to this socket (its echo
/// among them) wait in `held` for its reply, so that the sender always reads a send's
/// `ticket.send.ok` before its echo: the writer announces a stored message before it answers its
/// sender, and this socket's task may run in between.
#[derive(Default)]
pub(super) struct InFlight {
    replies: futures_util::stream::FuturesOrdered<PendingReply>,
    tickets: std::collections::VecDeque<TicketId>,
    held: Vec<Outbound>,
}

/// The most queued items a socket holds back for its sends' replies; past it they are written
/// at once, echoes ahead of their acks if need be, rather than held without bound.
const MAX_HELD: usize = 1_024;

impl InFlight {
    /// Moves into `held`, in order, the items of `items` from the first event of a ticket with a
    /// send in flight on: what came before it leaves now, and nothing overtakes what waits. A
    /// revocation or the node's shutdown among them ends the session at once instead, and past
    /// [`MAX_HELD`] nothing more is held.
    fn hold_waiting(&mut self, items: &mut Vec<Outbound>) {
        let waits = |item: &Outbound| matches!(item, Outbound::Frame { ticket_seq: Some((ticket, _)), .. } if self.tickets.contains(ticket));
        let Some(at) = items.iter().position(waits) else { return };
        let closing = items[at..].iter().any(|item| matches!(item, Outbound::Revoke(_) | Outbound::Shutdown));
        if closing || self.held.len() + (items.len() - at) > MAX_HELD {
            return;
        }
        self.held.extend(items.drain(at..));
    }
}

impl<S: Transport> Socket<S> {
    /// Queues a `ticket.send` for storage and returns without waiting for it (see [`InFlight`]);
    /// waits first for an earlier send to the same ticket, or for the oldest one when
    /// [`MAX_SENDS_IN_FLIGHT`] are in flight.
    pub(super) async fn pipeline_send(
        &mut self,
        id: protocol::RequestId,
        who: Principal,
        ticket_id: TicketId,
        client_msg_id: String,
        body: String,
        attachments: Vec<crate::model::ids::AttachmentId>,
    ) -> Result<(), Exit> {
        while let Some(in_flight) = self.sends.as_mut() {
            if !in_flight.tickets.contains(&ticket_id) && in_flight.tickets.len() < MAX_SENDS_IN_FLIGHT {
                break;
            }
            let Some((reply_id, result)) = in_flight.replies.next().await else { break };
            self.on_send_stored(reply_id, result).await?;
        }
        let support = self.hub.tickets.clone();
        let started = std::time::Instant::now();
        let reply: PendingReply = match support.queue_send(who, ticket_id, &client_msg_id, &body, &attachments) {
            Ok(queued) => Box::pin(async move {
                let sent = support.finish_send(queued).await;
                crate::metrics::request_took("ticket.send", started.elapsed());
                (id, sent.map(|s| ServerFrame::TicketSendOk { id, ticket_id, seq: s.seq, duplicate: s.duplicate }))
            }),
            // Refused before queueing: answered now, unless earlier replies must go first.
            Err(e) => {
                crate::metrics::request_took("ticket.send", started.elapsed());
                if self.sends.is_none() {
                    return self.reply_error(Some(id), e).await;
                }
                Box::pin(std::future::ready((id, Err(e))))
            }
        };
        let in_flight = self.sends.get_or_insert_with(Box::default);
        in_flight.replies.push_back(reply);
        in_flight.tickets.push_back(ticket_id);
        Ok(())
    }

    /// Writes the reply of the oldest pipelined send, which has just been stored (or refused), in
    /// one write with the replies of the sends stored since (still in request order) and whatever
    /// the outbox holds, the events these sends published to this very socket among it: a sender's
    /// ack and its own echo leave in one system call, not two.
    pub(super) async fn on_send_stored(
        &mut self,
        id: protocol::RequestId,
        result: crate::Result<ServerFrame>,
    ) -> Result<(), Exit> {
        // Taken before the replies are popped: the last reply drops the in-flight state.
        let held = self.take_held();
        let mut replies = vec![self.reply_message(id, result)?];
        self.pop_send();
        while let Some(in_flight) = self.sends.as_mut() {
            // Polled once without waiting; the session loop polls the rest with its own waker.
            let Some(Some((id, result))) = in_flight.replies.next().now_or_never() else { break };
            replies.push(self.reply_message(id, result)?);
            self.pop_send();
        }
        self.flush_outbox_after(replies, held).await
    }

    /// The items held back for the sends in flight (see [`InFlight`]), to be written first.
    pub(super) fn take_held(&mut self) -> Vec<Outbound> {
        self.sends.as_mut().map(|in_flight| std::mem::take(&mut in_flight.held)).unwrap_or_default()
    }

    /// Holds back, out of `items`, what must wait for the replies of the sends in flight (see
    /// [`InFlight::hold_waiting`]).
    pub(super) fn hold_waiting(&mut self, items: &mut Vec<Outbound>) {
        if let Some(in_flight) = self.sends.as_mut() {
            in_flight.hold_waiting(items);
        }
    }

    /// Forgets the oldest pipelined send, whose reply is being written.
    fn pop_send(&mut self) {
        if let Some(in_flight) = self.sends.as_mut() {
            in_flight.tickets.pop_front();
            if in_flight.tickets.is_empty() {
                self.sends = None;
            }
        }
    }

    /// Writes the replies of every pipelined send, in order, before another reply may leave.
    pub(super) async fn answer_sends(&mut self) -> Result<(), Exit> {
        while let Some(in_flight) = self.sends.as_mut() {
            let Some((id, result)) = in_flight.replies.next().await else {
                self.sends = None;
                break;
            };
            self.on_send_stored(id, result).await?;
        }
        Ok(())
    }
}

/// The next pipelined reply to be ready (in request order); pending forever when none is in flight
/// (the `select!` branch is disabled then anyway).
pub(super) async fn next_reply(
    sends: &mut Option<Box<InFlight>>,
) -> Option<(protocol::RequestId, crate::Result<ServerFrame>)> {
    match sends {
        Some(in_flight) => in_flight.replies.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::account::RevokeReason;
    use crate::protocol::Encoded;

    fn event(ticket: TicketId, seq: u64) -> Outbound {
        Outbound::Frame {
            kind: "ticket.event",
            bytes: Encoded::Text(seq.to_string().into()),
            ticket_seq: Some((ticket, seq)),
        }
    }

    fn summary() -> Outbound {
        Outbound::Frame { kind: "ticket.updated", bytes: Encoded::Text("s".into()), ticket_seq: None }
    }

    fn seqs(items: &[Outbound]) -> Vec<Option<u64>> {
        items
            .iter()
            .map(|item| match item {
                Outbound::Frame { ticket_seq, .. } => ticket_seq.map(|(_, seq)| seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn from_the_first_event_of_a_ticket_in_flight_everything_waits_in_order() {
        let (sent_to, other) = (TicketId::generate(), TicketId::generate());
        let mut in_flight = InFlight::default();
        in_flight.tickets.push_back(sent_to);
        let mut items = vec![event(other, 7), event(sent_to, 3), summary(), event(other, 8)];
        in_flight.hold_waiting(&mut items);
        assert_eq!(seqs(&items), [Some(7)], "what came before the echo leaves now");
        assert_eq!(seqs(&in_flight.held), [Some(3), None, Some(8)], "the echo and all after it wait");
        // The next flush, with the reply not yet in: what is new queues behind what waits.
        let mut next = std::mem::take(&mut in_flight.held);
        next.push(event(other, 9));
        in_flight.hold_waiting(&mut next);
        assert!(next.is_empty());
        assert_eq!(seqs(&in_flight.held), [Some(3), None, Some(8), Some(9)]);
    }

    #[test]
    fn nothing_waits_without_a_send_to_its_ticket_nor_past_a_revocation_or_the_limit() {
        let (sent_to, other) = (TicketId::generate(), TicketId::generate());
        let mut in_flight = InFlight::default();
        in_flight.tickets.push_back(sent_to);
        let mut items = vec![event(other, 1), summary()];
        in_flight.hold_waiting(&mut items);
        assert_eq!(items.len(), 2, "no event of a ticket in flight");

        let mut items = vec![event(sent_to, 2), Outbound::Revoke(RevokeReason::SignedOut)];
        in_flight.hold_waiting(&mut items);
        assert_eq!(items.len(), 2, "a revocation is not held back");

        let mut items: Vec<Outbound> = (1..=MAX_HELD as u64 + 1).map(|seq| event(sent_to, seq)).collect();
        in_flight.hold_waiting(&mut items);
        assert_eq!(items.len(), MAX_HELD + 1, "more than the limit is written at once");
        assert!(in_flight.held.is_empty());
    }
}
