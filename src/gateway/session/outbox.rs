//! A socket's outbound queue: what other tasks push to one socket (events, revocations). Bounded by
//! bytes: a socket that does not keep up overflows its budget and is closed as a slow consumer
//! (4008) instead of growing the hub's memory; the client then resumes from its cursor.
//!
//! Deliberately not a channel: an idle socket's queue is an empty `VecDeque` (no allocation), a
//! flag and the reader's waker, a few dozen bytes, which matters at 20,000 sockets.

use crate::model::account::RevokeReason;
use crate::model::ids::ConnId;
use crate::protocol::{Encoded, Encoding, SharedFrame};
use dashmap::DashMap;
use futures_util::task::AtomicWaker;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// One item for the socket's task.
#[derive(Debug)]
pub enum Outbound {
    /// An encoded frame to write.
    Frame {
        /// The frame's `type`, for metrics.
        kind: &'static str,
        /// Its bytes in the socket's encoding.
        bytes: Encoded,
        /// For `ticket.event`: the ticket and seq, to skip duplicates and fill gaps.
        ticket_seq: Option<(crate::model::ids::TicketId, u64)>,
    },
    /// The socket's session was revoked: tell the client and close (4003).
    Revoke(RevokeReason),
    /// Events of this ticket were stored that this node never received (a cluster node missed their
    /// publication): read the stream from the socket's cursor to its end.
    CatchUp(crate::model::ids::TicketId),
    /// The node is shutting down: write what is queued, then close (1012).
    Shutdown,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Outbound>,
    bytes: usize,
    overflowed: bool,
}

/// The queue. Shared between the socket's task (the only reader) and the registry (writers).
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    /// Set when an item made the queue non-empty, until the reader's [`Ready`] takes it.
    queued: AtomicBool,
    /// The reader, while a [`Ready`] waits.
    reader: AtomicWaker,
    budget: usize,
    encoding: Encoding,
}

/// The queue overflowed; the socket is being closed.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

impl Outbox {
    /// An empty queue for a socket speaking `encoding`, holding at most `budget` bytes of frames.
    pub fn new(encoding: Encoding, budget: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            queued: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            budget,
            encoding,
        }
    }

    /// The socket's encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent (each operation is a
        // single push or swap), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a shared event in this socket's encoding.
    ///
    /// # Errors
    /// [`Overflow`] if the frame does not fit the byte budget (the socket will be closed), or the
    /// queue already overflowed.
    pub fn push_frame(&self, frame: &SharedFrame) -> Result<(), Overflow> {
        let encoded = frame.encoded(self.encoding).map_err(|_| Overflow)?;
        let mut state = self.lock();
        if state.overflowed {
            return Err(Overflow);
        }
        if state.bytes + encoded.len() > self.budget {
            state.overflowed = true;
            drop(state);
            self.wake();
            return Err(Overflow);
        }
        state.bytes += encoded.len();
        let was_empty = state.queue.is_empty();
        state.queue.push_back(Outbound::Frame {
            kind: frame.frame().kind(),
            bytes: encoded,
            ticket_seq: frame.ticket_seq(),
        });
        drop(state);
        self.wake_if(was_empty);
        Ok(())
    }

    /// Queues a control item; these are tiny and never refused.
    pub fn push_control(&self, item: Outbound) {
        let mut state = self.lock();
        let was_empty = state.queue.is_empty();
        state.queue.push_back(item);
        drop(state);
        self.wake_if(was_empty);
    }

    /// Wakes the socket's task for the item that made the queue non-empty, and only for it: the
    /// task drains the whole queue after every wake, so a later item before that drain is taken
    /// with the first. A message stored usually queues two items to a socket (its event and the
    /// ticket's summary); waking for each would poll the socket's task once more for nothing.
    fn wake_if(&self, was_empty: bool) {
        if was_empty {
            self.wake();
        }
    }

    fn wake(&self) {
        self.queued.store(true, Ordering::Release);
        self.reader.wake();
    }

    /// Waits until something was queued since the last [`Outbox::drain`]. The reader drains after
    /// every wake: an item queued behind others not yet drained wakes nobody (see `wake_if`).
    pub fn ready(&self) -> Ready<'_> {
        Ready { outbox: self }
    }

    /// Moves everything queued into `into`; returns true if the queue overflowed.
    pub fn drain(&self, into: &mut Vec<Outbound>) -> bool {
        let mut state = self.lock();
        into.extend(state.queue.drain(..));
        state.bytes = 0;
        if state.queue.capacity() > 8 {
            // Give back a burst's memory: idle sockets should cost nothing here. An item is about
            // 90 bytes, so 64 of them kept per socket were 5.6 KiB of every idle socket after a
            // burst; 8 covers a conversation's usual one to three events per wake-up.
            state.queue.shrink_to_fit();
        }
        state.overflowed
    }
}

/// The future of [`Outbox::ready`]. It leaves the reader's waker only while it waits: the socket's
/// task makes one for each turn of its loop and drops it when another branch won, and an item
/// queued while the task is busy elsewhere then only sets the flag, which the next turn finds,
/// instead of waking the task for one turn more.
pub struct Ready<'a> {
    outbox: &'a Outbox,
}

impl Future for Ready<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let outbox = self.outbox;
        if outbox.queued.swap(false, Ordering::Acquire) {
            return Poll::Ready(());
        }
        outbox.reader.register(cx.waker());
        // An item queued between the look above and the registration woke no one: look again.
        if outbox.queued.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Ready<'_> {
    fn drop(&mut self) {
        drop(self.outbox.reader.take());
    }
}

/// Every open socket's outbox, authenticated or not: how shutdown reaches each socket's task.
///
/// Through its outbox, which the task waits on anyway, and not through a token that each task also
/// waits on: a token's wait takes the token's one lock on every turn of every socket's loop, and
/// with thousands of busy sockets that lock and its list of waiters were a visible part of the
/// hub's time per message.
#[derive(Default)]
pub struct Outboxes {
    open: DashMap<ConnId, Arc<Outbox>>,
    closing: AtomicBool,
}

impl Outboxes {
    /// Adds a socket's outbox. Once shutdown has begun, the outbox is told at once.
    pub fn open(&self, conn: ConnId, outbox: Arc<Outbox>) {
        self.open.insert(conn, outbox.clone());
        // Either `close_all` sees the outbox in the map or this sees its flag: the fences order
        // each side's write before its read.
        fence(Ordering::SeqCst);
        if self.closing.load(Ordering::SeqCst) {
            outbox.push_control(Outbound::Shutdown);
        }
    }

    /// Removes a socket's outbox as the socket ends.
    pub fn closed(&self, conn: ConnId) {
        self.open.remove(&conn);
    }

    /// Whether a socket's outbox is still here.
    #[cfg(test)]
    pub(crate) fn is_open(&self, conn: ConnId) -> bool {
        self.open.contains_key(&conn)
    }

    /// Tells every open socket, and every socket opened from now on, that the node is shutting down.
    pub fn close_all(&self) {
        self.closing.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        for entry in &self.open {
            entry.value().push_control(Outbound::Shutdown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ServerFrame;

    fn event() -> std::sync::Arc<SharedFrame> {
        SharedFrame::new(ServerFrame::SessionExpired {})
    }

    #[tokio::test]
    async fn overflow_past_the_byte_budget_is_sticky() {
        let len = event().encoded(Encoding::Json).unwrap().len();
        let outbox = Outbox::new(Encoding::Json, len * 3);
        for _ in 0..3 {
            outbox.push_frame(&event()).unwrap();
        }
        assert_eq!(outbox.push_frame(&event()), Err(Overflow));
        let mut items = Vec::new();
        assert!(outbox.drain(&mut items), "the reader learns of the overflow");
        assert_eq!(items.len(), 3);
        assert_eq!(outbox.push_frame(&event()), Err(Overflow), "an overflowed socket takes nothing more");
    }

    #[tokio::test]
    async fn draining_frees_the_budget_and_wakes_the_reader() {
        let len = event().encoded(Encoding::MsgPack).unwrap().len();
        let outbox = Outbox::new(Encoding::MsgPack, len * 2);
        outbox.push_frame(&event()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), outbox.ready()).await.unwrap();
        let mut items = Vec::new();
        assert!(!outbox.drain(&mut items));
        for _ in 0..2 {
            outbox.push_frame(&event()).unwrap();
        }
        outbox.push_control(Outbound::Revoke(RevokeReason::SignedOut));
        items.clear();
        outbox.drain(&mut items);
        assert!(matches!(items.last(), Some(Outbound::Revoke(RevokeReason::SignedOut))));
        assert!(matches!(&items[0], Outbound::Frame { bytes: Encoded::Binary(_), .. }));
    }

    #[tokio::test]
    async fn items_queued_before_a_drain_wake_the_reader_once_and_the_next_item_wakes_it_again() {
        use futures_util::FutureExt;
        let outbox = Outbox::new(Encoding::Json, 1 << 20);
        // The reader waits, as the socket's task does between wakes.
        let mut waiting = Box::pin(outbox.ready());
        assert!(waiting.as_mut().now_or_never().is_none());
        outbox.push_frame(&event()).unwrap();
        outbox.push_frame(&event()).unwrap();
        outbox.push_control(Outbound::Revoke(RevokeReason::SignedOut));
        assert!(waiting.now_or_never().is_some(), "the first item wakes the reader");
        let mut items = Vec::new();
        outbox.drain(&mut items);
        assert_eq!(items.len(), 3, "one drain takes all three");
        assert!(outbox.ready().now_or_never().is_none(), "no second wake for items already drained");
        outbox.push_frame(&event()).unwrap();
        assert!(outbox.ready().now_or_never().is_some(), "an item after the drain wakes the reader again");
    }

    #[tokio::test]
    async fn shutdown_reaches_the_sockets_open_before_it_and_those_opened_after() {
        use futures_util::FutureExt;
        let outboxes = Outboxes::default();
        let before = Arc::new(Outbox::new(Encoding::Json, 1 << 20));
        let gone = Arc::new(Outbox::new(Encoding::Json, 1 << 20));
        outboxes.open(ConnId(1), before.clone());
        outboxes.open(ConnId(2), gone.clone());
        outboxes.closed(ConnId(2));
        assert!(before.ready().now_or_never().is_none(), "nothing is queued before shutdown");
        outboxes.close_all();
        assert!(before.ready().now_or_never().is_some(), "an open socket is woken");
        let mut items = Vec::new();
        before.drain(&mut items);
        assert!(matches!(items[..], [Outbound::Shutdown]));
        items.clear();
        gone.drain(&mut items);
        assert!(items.is_empty(), "a socket that ended is not told");
        let after = Arc::new(Outbox::new(Encoding::Json, 1 << 20));
        outboxes.open(ConnId(3), after.clone());
        after.drain(&mut items);
        assert!(matches!(items[..], [Outbound::Shutdown]), "a socket opened during shutdown is told at once");
    }

    #[test]
    fn a_waiting_reader_is_woken_and_one_that_stopped_waiting_is_not() {
        use futures_util::task::{waker, ArcWake};
        use std::sync::atomic::AtomicUsize;
        struct Count(AtomicUsize);
        impl ArcWake for Count {
            fn wake_by_ref(me: &Arc<Self>) {
                me.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = waker(count.clone());
        let mut cx = Context::from_waker(&waker);
        let outbox = Outbox::new(Encoding::Json, 1 << 20);
        let mut waiting = Box::pin(outbox.ready());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        outbox.push_frame(&event()).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the waiting reader is woken");
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
        drop(waiting);
        outbox.drain(&mut Vec::new());
        // The reader waits, then does something else (another branch of its loop won).
        let mut waiting = Box::pin(outbox.ready());
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        drop(waiting);
        outbox.push_frame(&event()).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "a reader that stopped waiting is not woken");
        assert!(Box::pin(outbox.ready()).as_mut().poll(&mut cx).is_ready(), "it finds the item on its next turn");
    }
}
