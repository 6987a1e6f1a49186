//! Connections held for the message writer, beside the pool.
//!
//! The pool pings a connection when it hands it out and again when it takes it back: two round
//! trips around every call. A message batch is itself two statements, so through the pool each
//! batch costs Postgres and the hub twice the round trips (and wakeups) its work needs. The writer
//! sends its batches one after another over at most `message_writers` connections, so those are
//! held here instead:
//!
//! - handed out without a ping unless idle for [`PING_AFTER_IDLE`] or more: one that answered a
//!   moment ago is taken as alive. One that died since fails the batch it carries (answered
//!   `unavailable`, nothing of it acknowledged, so its senders retry), and is dropped;
//! - dropped after any failed or timed-out call, as the pool drops them;
//! - replaced after [`MAX_LIFETIME`], as the pool replaces its own;
//! - at most `keep` kept idle; a call that finds none idle opens one (within its deadline);
//! - planned for lookups by key: the writer's statements find each ticket and each earlier copy of
//!   a message through an index, so these connections never scan a table whole
//!   (`enable_seqscan=off`) and keep one generic plan per statement (`plan_cache_mode`), planned
//!   once instead of per batch. Without the first, a plan made while a month's table was nearly
//!   empty (a new month, a new database) scans it whole, and goes on doing so once it has grown,
//!   until the table is next analyzed. A statement added to the writer's path must find its rows
//!   by key as well.

use super::{timed_out, MAX_LIFETIME};
use crate::error::Result;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection as _;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// A held connection idle this long is pinged before its next call.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The message writer's connections (see the module's doc).
pub(super) struct HeldConnections {
    options: PgConnectOptions,
    idle: Mutex<Vec<Held>>,
    keep: usize,
}

/// A connection and its times.
struct Held {
    conn: PgConnection,
    opened: Instant,
    idle_since: Instant,
}

impl HeldConnections {
    /// Holds up to `keep` idle connections opened with `options` (none until the first call).
    pub(super) fn new(options: PgConnectOptions, keep: usize) -> Self {
        let options = options.options([("enable_seqscan", "off"), ("plan_cache_mode", "force_generic_plan")]);
        Self { options, idle: Mutex::new(Vec::new()), keep: keep.max(1) }
    }

    /// Runs `op` on a held connection by `deadline`; a connection whose call failed or ran out of
    /// time is dropped, one whose call succeeded is kept for the next.
    pub(super) async fn call<T>(
        &self,
        deadline: Instant,
        op: impl AsyncFnOnce(&mut PgConnection) -> Result<T>,
    ) -> Result<T> {
        let mut held = self.take(deadline).await?;
        match timeout_at(deadline, op(&mut held.conn)).await {
            Ok(Ok(value)) => {
                held.idle_since = Instant::now();
                self.put_back(held);
                Ok(value)
            }
            // Dropped: its state is unknown, and a graceful close would wait on it.
            Ok(Err(e)) => Err(e),
            Err(_) => Err(timed_out("query")),
        }
    }

    /// An idle connection that is young enough and, if it was idle long, answers a ping; else a new one.
    async fn take(&self, deadline: Instant) -> Result<Held> {
        loop {
            let Some(mut held) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) else {
                return self.open(deadline).await;
            };
            if held.opened.elapsed() >= MAX_LIFETIME {
                close(held);
                continue;
            }
            if held.idle_since.elapsed() < PING_AFTER_IDLE {
                return Ok(held);
            }
            match timeout_at(deadline, held.conn.ping()).await {
                Ok(Ok(())) => return Ok(held),
                Ok(Err(_)) => continue,
                Err(_) => return Err(timed_out("connection")),
            }
        }
    }

    async fn open(&self, deadline: Instant) -> Result<Held> {
        match timeout_at(deadline, PgConnection::connect_with(&self.options)).await {
            Ok(conn) => {
                let now = Instant::now();
                Ok(Held { conn: conn?, opened: now, idle_since: now })
            }
            Err(_) => Err(timed_out("connection")),
        }
    }

    fn put_back(&self, held: Held) {
        let Ok(mut idle) = self.idle.lock() else { return };
        if idle.len() < self.keep {
            idle.push(held);
        } else {
            drop(idle);
            close(held);
        }
    }
}

/// Closes a healthy connection politely, in the background.
fn close(held: Held) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = held.conn.close().await;
        });
    }
}
