//! Pipelined `ticket.send`s: queued for storage as they are read, answered in request order as
//! their commits come back.

use super::commands::Transport;
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
#[derive(Default)]
pub(super) struct InFlight {
    replies: futures_util::stream::FuturesOrdered<PendingReply>,
    tickets: std::collections::VecDeque<TicketId>,
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
                metrics::histogram!(crate::metrics::WS_LATENCY, "type" => "ticket.send")
                    .record(started.elapsed().as_secs_f64());
                (id, sent.map(|s| ServerFrame::TicketSendOk { id, ticket_id, seq: s.seq, duplicate: s.duplicate }))
            }),
            // Refused before queueing: answered now, unless earlier replies must go first.
            Err(e) => {
                metrics::histogram!(crate::metrics::WS_LATENCY, "type" => "ticket.send")
                    .record(started.elapsed().as_secs_f64());
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
        let mut replies = vec![self.reply_message(id, result)?];
        self.pop_send();
        while let Some(in_flight) = self.sends.as_mut() {
            // Polled once without waiting; the session loop polls the rest with its own waker.
            let Some(Some((id, result))) = in_flight.replies.next().now_or_never() else { break };
            replies.push(self.reply_message(id, result)?);
            self.pop_send();
        }
        self.flush_outbox_after(replies).await
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
