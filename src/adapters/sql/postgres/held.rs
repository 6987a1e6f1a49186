//! Connections held for the message writer, beside the pool.
//!
//! The pool pings a connection when it hands it out and again when it takes it back: two round
//! trips around every call. A message batch is itself two statements, so through the pool each
//! batch costs Postgres and the hub twice the round trips (and wakeups) its work needs. The writer
//! sends its batches one after another over at most `message_writers` connections, so those are
//! held here instead:
//!
//! - handed out without a ping unless idle for [`PING_AFTER_IDLE`] or more: one that answered a
//!   moment ago is taken as alive. One that died since (a restarted or failed-over Postgres, a
//!   terminated backend) fails the call it carries; it is then pinged, and when that fails too the
//!   call runs once more on a new connection within its deadline, so that a restart costs no
//!   batch its answer. A batch is safe to run again: one that committed before its answer was lost
//!   finds its messages stored under their keys, and answers with their seqs;
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
use tokio::time::error::Elapsed;
use tokio::time::{timeout_at, Instant};

/// A held connection idle this long is pinged before its next call.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How long a connection whose call failed has to answer a ping before the call is taken to have
/// failed on a dead connection. A live one answers in well under a millisecond on a local network;
/// a dead one mostly fails at once (its socket is closed or reset).
const PING_AFTER_FAILURE: Duration = Duration::from_millis(250);

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

    /// Runs the call `make` makes on a held connection by `deadline`; a connection whose call
    /// failed or ran out of time is dropped, one whose call succeeded is kept for the next. A call
    /// that failed on a connection handed out without a ping, which then does not answer one, is
    /// made again and runs once more on a new connection.
    pub(super) async fn call<T, Op>(&self, deadline: Instant, make: impl Fn() -> Op) -> Result<T>
    where
        Op: AsyncFnOnce(&mut PgConnection) -> Result<T>,
    {
        let (mut held, pinged) = self.take(deadline).await?;
        match timeout_at(deadline, make()(&mut held.conn)).await {
            Ok(Err(e)) if !pinged && !answers(&mut held.conn, deadline).await => {
                tracing::info!(error = %e, "a held postgres connection died; running the call again on a new one");
                drop(held);
                let mut fresh = self.open(deadline).await?;
                let outcome = timeout_at(deadline, make()(&mut fresh.conn)).await;
                self.settle(fresh, outcome)
            }
            outcome => self.settle(held, outcome),
        }
    }

    /// The answer of a call on `held`: a connection whose call succeeded is kept for the next, one
    /// whose call failed or ran out of time is dropped (its state is unknown, and a graceful close
    /// would wait on it).
    fn settle<T>(&self, mut held: Held, outcome: std::result::Result<Result<T>, Elapsed>) -> Result<T> {
        match outcome {
            Ok(Ok(value)) => {
                held.idle_since = Instant::now();
                self.put_back(held);
                Ok(value)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(timed_out("query")),
        }
    }

    /// An idle connection that is young enough and, if it was idle long, answers a ping; else a new
    /// one. With it, whether it answered just now (a ping, or opened for this call).
    async fn take(&self, deadline: Instant) -> Result<(Held, bool)> {
        loop {
            let Some(mut held) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) else {
                return Ok((self.open(deadline).await?, true));
            };
            if held.opened.elapsed() >= MAX_LIFETIME {
                close(held);
                continue;
            }
            if held.idle_since.elapsed() < PING_AFTER_IDLE {
                return Ok((held, false));
            }
            match timeout_at(deadline, held.conn.ping()).await {
                Ok(Ok(())) => return Ok((held, true)),
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

/// Whether a connection whose call failed still answers a ping, within [`PING_AFTER_FAILURE`] and
/// `deadline`: if not, it was dead, not the call wrong.
async fn answers(conn: &mut PgConnection, deadline: Instant) -> bool {
    let by = deadline.min(Instant::now() + PING_AFTER_FAILURE);
    matches!(timeout_at(by, conn.ping()).await, Ok(Ok(())))
}

/// Closes a healthy connection politely, in the background.
fn close(held: Held) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = held.conn.close().await;
        });
    }
}
