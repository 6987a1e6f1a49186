//! Queued events delivered against the socket's per-ticket cursors: what it already sent is
//! dropped, a gap is filled from storage, and a subscription's resume reads the stream from the
//! client's cursor.

use super::commands::Transport;
use super::outbox::Outbound;
use super::write::to_message;
use super::{Exit, Socket};
use crate::model::ids::TicketId;
use crate::protocol::CloseCode;
use crate::protocol::{self, ServerFrame};
use tokio_tungstenite::tungstenite::Message;

/// Frames written, by type, counted into `hub_frames_out_total` once per type of a flush (on drop;
/// a fifth type counts the four before it first): a busy socket's flush alternates `ticket.event`
/// and `ticket.updated`, and a counter lookup per frame costs a tenth of the hub's time in a
/// fan-out burst.
#[derive(Default)]
struct FrameCount {
    kinds: [(&'static str, u64); 4],
}

impl FrameCount {
    fn add(&mut self, kind: &'static str) {
        let slot = match self.kinds.iter().position(|(k, n)| *n == 0 || *k == kind) {
            Some(slot) => slot,
            None => {
                self.flush();
                0
            }
        };
        self.kinds[slot].0 = kind;
        self.kinds[slot].1 += 1;
    }

    fn flush(&mut self) {
        for (kind, n) in &mut self.kinds {
            if *n > 0 {
                crate::metrics::frames_out(kind, *n);
                *n = 0;
            }
        }
    }
}

impl Drop for FrameCount {
    fn drop(&mut self) {
        self.flush();
    }
}

impl<S: Transport> Socket<S> {
    /// Writes everything queued by other tasks. Ticket events are checked against this socket's
    /// cursor: what it already sent is dropped, and a gap (an event published out of order, or one
    /// this node never received) is filled from storage first, so the client sees every event of a
    /// subscribed ticket exactly once and in order.
    pub(super) async fn flush_outbox(&mut self) -> Result<(), Exit> {
        let held = self.take_held();
        self.flush_outbox_after(Vec::new(), held).await
    }

    /// [`Self::flush_outbox`], with `replies` written first in the same write, then the items
    /// `held` for them, then the outbox. From the first event of a ticket that still has a send in
    /// flight on, the items wait for that send's reply (see `InFlight`).
    pub(super) async fn flush_outbox_after(
        &mut self,
        replies: Vec<Message>,
        mut items: Vec<Outbound>,
    ) -> Result<(), Exit> {
        let overflowed = self.outbox.drain(&mut items);
        self.hold_waiting(&mut items);
        let mut revoked = None;
        let mut shutdown = false;
        let mut catch_up = Vec::new();
        // The replies among `messages` (they lead it until a gap makes an early write).
        let mut answered = replies.len();
        let mut messages = replies;
        messages.reserve(items.len());
        let mut counted = FrameCount::default();
        for item in items {
            match item {
                Outbound::Frame { kind, bytes, ticket_seq } => {
                    if let Some((ticket, seq)) = ticket_seq {
                        let Some(&sent) = self.cursors.get(&ticket) else { continue };
                        if seq <= sent {
                            continue;
                        }
                        if seq > sent + 1 {
                            metrics::counter!(crate::metrics::STREAM_GAPS).increment(1);
                            self.write(std::mem::take(&mut messages)).await?;
                            answered = 0;
                            self.send_events(ticket, sent, Some(seq - 1)).await?;
                        }
                        self.cursors.insert(ticket, seq);
                    }
                    counted.add(kind);
                    messages.push(to_message(bytes));
                }
                Outbound::Revoke(reason) => revoked = Some(reason),
                Outbound::CatchUp(ticket) => catch_up.push(ticket),
                Outbound::Shutdown => shutdown = true,
            }
        }
        if overflowed {
            tracing::info!(conn = %self.conn, "outbound queue overflowed: closing slow consumer");
            return Err(Exit::Close(CloseCode::SlowConsumer));
        }
        if let Some(reason) = revoked {
            // Pending events are moot once the session is gone; only the replies (when they were
            // still here) and the revocation are sent.
            messages.truncate(answered);
            self.write(messages).await?;
            self.send(&ServerFrame::SessionRevoked { reason }).await?;
            return Err(Exit::Close(CloseCode::SessionRevoked));
        }
        self.write(messages).await?;
        if shutdown {
            // What was queued before is written (the sender's replies and echoes among it), the
            // stored events it missed are the client's to resume.
            return Err(Exit::Close(CloseCode::ServiceRestart));
        }
        for ticket in catch_up {
            if let Some(&sent) = self.cursors.get(&ticket) {
                self.send_events(ticket, sent, None).await?;
            }
        }
        Ok(())
    }

    /// Sends the stored events of `ticket` after `after` (up to `until`, or all) as `ticket.event`
    /// frames, page by page, and moves the cursor.
    pub(super) async fn send_events(&mut self, ticket: TicketId, after: u64, until: Option<u64>) -> Result<(), Exit> {
        const PAGE: u32 = 200;
        let mut cursor = after;
        loop {
            if until.is_some_and(|u| cursor >= u) {
                return Ok(());
            }
            let events = match self.hub.tickets.events_after(ticket, cursor, PAGE).await {
                Ok(e) => e,
                // Storage is down: close so the client resumes from its cursor later, rather than
                // carry on with a hole in the stream.
                Err(_) => return Err(Exit::Close(CloseCode::ServiceRestart)),
            };
            let mut messages = Vec::with_capacity(events.len());
            for e in events.iter().filter(|e| until.is_none_or(|u| e.seq <= u)) {
                let frame = ServerFrame::TicketEvent { event: crate::protocol::event_view(e) };
                let bytes =
                    protocol::encode(self.encoding, &frame).map_err(|_| Exit::Close(CloseCode::InternalError))?;
                crate::metrics::frames_out("ticket.event", 1);
                messages.push(to_message(bytes));
                cursor = e.seq;
            }
            self.cursors.insert(ticket, cursor);
            self.write(messages).await?;
            if (events.len() as u32) < PAGE {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FrameCount;

    #[test]
    fn frames_are_counted_by_type_however_their_types_alternate() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        let _recorder = metrics::set_default_local_recorder(&recorder);
        // Kinds counted through the macros, which count into this test's own recorder (those of a
        // conversation go to handles found in the process's recorder once).
        let kinds = ["ticket.typing", "presence", "ticket.typing", "presence", "ticket.typing"];
        let mut counted = FrameCount::default();
        for kind in kinds.iter().chain(&["a", "b", "c", "ticket.typing"]) {
            counted.add(kind);
        }
        drop(counted);
        let text = metrics.render();
        let count = |kind: &str| {
            let line = text.lines().find(|l| l.starts_with(&format!("hub_frames_out_total{{type=\"{kind}\"}}")));
            line.and_then(|l| l.rsplit(' ').next()).map_or(0, |n| n.parse::<u64>().expect("a count"))
        };
        assert_eq!(count("ticket.typing"), 4);
        assert_eq!(count("presence"), 2);
        assert_eq!((count("a"), count("b"), count("c")), (1, 1, 1), "{text}");
    }
}
