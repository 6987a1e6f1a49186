//! Message batches on a connection and a thread of their own.
//!
//! A batch reads its tickets, the messages it may repeat and the uploads it names, is planned
//! (`stream::plan`), and writes its events and tickets, all in one `BEGIN IMMEDIATE` transaction.
//! Through sqlx each call is a hand-off to the connection's worker thread and back, and keeping the
//! calls few means packing rows into JSON that SQLite parses again; every message waits for the one
//! writer, so each hand-off and each parse is paid by all of them. Here the whole batch runs on one
//! thread from its `BEGIN` to its `COMMIT`, with cached prepared statements bound column by column
//! (`rusqlite`, over the same SQLite library as sqlx): one hand-off in, one answer out.
//!
//! SQLite has one write lock per file. The store's sqlx writer connection stays the one queue for
//! it: the caller holds that connection while this thread writes (see
//! [`Tickets::append_messages`](crate::ports::store::tickets::Tickets::append_messages)), so the
//! two connections do not meet in SQLite's busy handler. A caller that stops waiting does not stop
//! its batch: the thread commits it, or rolls it back on an error, before it takes the next one.
//!
//! A commit here does not wait for the disk (`synchronous=NORMAL`); a thread of its own then syncs
//! the `-wal` file, once for every batch committed since its last sync, and only then are those
//! batches answered. So a batch's caller hears of it only once it is on disk, as with
//! `synchronous=FULL`, while the next batch is already being written instead of waiting behind the
//! sync. What this allows: another connection may read a committed batch a few milliseconds before
//! it is on disk, and a power cut in that window takes back what it read (a process that dies
//! loses nothing: the operating system still writes the file). A sync that fails is answered
//! `unavailable`, and so is every batch after it until the hub restarts: after a failed sync the
//! operating system no longer says which writes reached the disk.
//!
//! The events go in last, with one multi-row `INSERT` per [`EVENT_CHUNK`] events. The search
//! index's trigger fires for each row, and FTS5 writes out its pending terms whenever a statement
//! opens a savepoint after it has some: one statement per event would cost that once per message,
//! and any statement after the events once more.

use crate::adapters::sql::rows::attachments::{self as files, uploader_columns, AttachmentRow};
use crate::adapters::sql::rows::{self, EventRow, TicketRow};
use crate::adapters::sql::sqlite::checkpoints::WRITER_CHECKPOINT_PAGES;
use crate::domain::tickets::stream::{self, MessageKey, Placement, Uploads};
use crate::error::{Error, Result};
use crate::model::attachment::Attachment;
use crate::model::ids::{AgentId, AttachmentId, TicketId};
use crate::model::ticket::{Appended, NewMessage, Ticket, TicketEvent, TicketStatus};
use crate::model::time::Millis;
use rusqlite::{params, Connection, OptionalExtension as _, Transaction, TransactionBehavior};
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as sync_queue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// The author id of the `system` author in the unique index of client message ids (see the
/// migration that creates it): the nil UUID.
const NO_AUTHOR: Uuid = Uuid::nil();

/// Events per `INSERT`: 704 parameters, far below SQLite's limit, and batches of up to this many
/// (all but the largest) take one statement.
const EVENT_CHUNK: usize = 64;

/// The columns of `ticket_events` an insert sets, in the order [`insert_events`] binds them.
const EVENT_COLUMNS: [&str; 11] = [
    "ticket_id",
    "seq",
    "kind",
    "author_kind",
    "author_id",
    "body",
    "client_msg_id",
    "agent_id",
    "attachments",
    "created_at",
    "search_text",
];

/// Batches that may wait for the thread. One is sent at a time by the caller holding the writer
/// connection; a caller that stopped waiting has let the next one send while its own batch is still
/// queued or being stored, and a full queue makes the next caller wait (within the writer's timeout)
/// instead of queueing without bound behind a stuck disk.
const QUEUED_BATCHES: usize = 4;

/// Committed batches that may wait for their sync. A disk that stops answering fills this queue,
/// which stops the batches' thread, which fills [`QUEUED_BATCHES`]: callers then wait within the
/// writer's timeout rather than queue without bound.
const UNSYNCED_BATCHES: usize = 16;

/// Prepared statements the connection keeps: one insert per number of events up to
/// [`EVENT_CHUNK`], and the few others a batch runs.
const CACHED_STATEMENTS: usize = EVENT_CHUNK + 16;

/// The connection that stores message batches, and the threads it runs on. The threads end,
/// closing the connection and the `-wal` file, once this handle is dropped and the batches they hold
/// are done.
pub(in crate::adapters::sql::sqlite) struct BatchConnection {
    jobs: mpsc::Sender<Job>,
    /// Set for good when a sync of the `-wal` file failed.
    sync_failed: Arc<AtomicBool>,
}

/// A batch to store and where its outcome goes.
struct Job {
    batch: Vec<NewMessage>,
    answer: oneshot::Sender<Result<Committed>>,
}

/// A batch committed and waiting for the sync that puts it on disk.
pub(in crate::adapters::sql::sqlite) struct Committed {
    synced: oneshot::Receiver<Result<Vec<Appended>>>,
}

impl Committed {
    /// The batch's outcome once it is on disk.
    ///
    /// # Errors
    /// `unavailable` when the sync failed (now or earlier: see the module's docs).
    pub(in crate::adapters::sql::sqlite) async fn durable(self) -> Result<Vec<Appended>> {
        self.synced.await.map_err(|_| stopped())?
    }
}

/// A committed batch's outcome, for the sync thread to hand over once it is on disk.
struct Unsynced {
    results: Vec<Appended>,
    answer: oneshot::Sender<Result<Vec<Appended>>>,
}

impl BatchConnection {
    /// Opens a connection to the database at `path`, which exists and is in WAL mode, with the
    /// writer's settings but for the commits' sync, opens its `-wal` file, and starts the threads.
    /// `busy_timeout` bounds the wait for a write lock held by another process.
    ///
    /// # Errors
    /// The database or its `-wal` file cannot be opened, or a thread cannot be started.
    pub(in crate::adapters::sql::sqlite) fn open(path: &Path, busy_timeout: Duration) -> anyhow::Result<Self> {
        let conn = connect(path, busy_timeout)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        // Kept open for the life of the threads: closing a descriptor of a file drops every POSIX
        // lock this process holds on it, so it is opened once. Syncing through it syncs the file,
        // whoever wrote it.
        let wal = File::open(&wal)?;
        let sync_failed = Arc::new(AtomicBool::new(false));
        let unsynced = spawn_sync(move || wal.sync_data(), sync_failed.clone())?;
        let (jobs, queue) = mpsc::channel(QUEUED_BATCHES);
        std::thread::Builder::new().name("sqlite-batches".into()).spawn(move || run(conn, queue, unsynced))?;
        Ok(Self { jobs, sync_failed })
    }

    /// Whether a sync of the `-wal` file has failed: message batches are answered `unavailable`
    /// until the hub restarts, and the store reports itself down so that `/readyz` says so.
    pub(in crate::adapters::sql::sqlite) fn sync_failed(&self) -> bool {
        self.sync_failed.load(Ordering::Relaxed)
    }

    /// Commits `batch` as [`Tickets::append_messages`](crate::ports::store::tickets::Tickets::append_messages)
    /// says; [`Committed::durable`] gives its outcome once it is on disk. The caller holds the
    /// writer connection until this returns, and need not hold it for the sync.
    pub(in crate::adapters::sql::sqlite) async fn append(&self, batch: &[NewMessage]) -> Result<Committed> {
        let (answer, answered) = oneshot::channel();
        self.jobs.send(Job { batch: batch.to_vec(), answer }).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// The connection, with the settings of the store's writer connection (zeroed deletes, statement
/// journals in memory, the same backstop checkpoint) except for its commits, which do not sync the
/// `-wal` file: the sync thread does (see the module's docs). A checkpoint still syncs the `-wal`
/// file before it copies pages into the database, and the database after.
fn connect(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
    conn.set_prepared_statement_cache_capacity(CACHED_STATEMENTS);
    Ok(conn)
}

/// Starts the sync thread: it waits for a committed batch, takes every other one committed by
/// then, runs `sync` once (each of them was written before it started), and answers them in their
/// order. After a failed sync it sets `sync_failed`, syncs no more and answers every batch
/// `unavailable`.
fn spawn_sync<S>(mut sync: S, sync_failed: Arc<AtomicBool>) -> std::io::Result<sync_queue::SyncSender<Unsynced>>
where
    S: FnMut() -> std::io::Result<()> + Send + 'static,
{
    let (unsynced, queue) = sync_queue::sync_channel::<Unsynced>(UNSYNCED_BATCHES);
    std::thread::Builder::new().name("sqlite-wal-sync".into()).spawn(move || {
        while let Ok(first) = queue.recv() {
            let group: Vec<Unsynced> = std::iter::once(first).chain(queue.try_iter()).collect();
            if !sync_failed.load(Ordering::Relaxed) {
                if let Err(e) = sync() {
                    tracing::error!(error = %e, "syncing the sqlite -wal file failed: message batches are \
                                                   answered unavailable until the hub restarts");
                    sync_failed.store(true, Ordering::Relaxed);
                }
            }
            let failed = sync_failed.load(Ordering::Relaxed);
            for batch in group {
                // The caller may have stopped waiting; the batch is on disk (or not) all the same.
                let _ = batch.answer.send(if failed { Err(Error::Unavailable) } else { Ok(batch.results) });
            }
        }
    })?;
    Ok(unsynced)
}

/// The batches' thread stopped: only a bug (a panic while storing a batch) ends it early.
fn stopped() -> Error {
    Error::Internal("the sqlite connection for message batches stopped".into())
}

fn run(mut conn: Connection, mut queue: mpsc::Receiver<Job>, unsynced: sync_queue::SyncSender<Unsynced>) {
    while let Some(job) = queue.blocking_recv() {
        let committed = append(&mut conn, &job.batch).and_then(|results| {
            let (answer, synced) = oneshot::channel();
            unsynced.send(Unsynced { results, answer }).map_err(|_| stopped())?;
            Ok(Committed { synced })
        });
        // The caller may have stopped waiting; the batch is done all the same.
        let _ = job.answer.send(committed);
    }
}

/// The batch, from `BEGIN` to `COMMIT`; an error drops the transaction, which rolls it back.
fn append(conn: &mut Connection, batch: &[NewMessage]) -> Result<Vec<Appended>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let tickets = read_tickets(&tx, &stream::ticket_ids(batch))?;
    let messages = read_messages(&tx, batch)?;
    let before = Before::of(&tickets);
    let named = batch.iter().filter(|m| tickets.contains_key(&m.ticket_id)).flat_map(|m| &m.attachments);
    let uploads = read_uploads(&tx, &stream::upload_ids(named))?;
    let plan = stream::plan(batch, tickets, messages, &uploads);
    update_tickets(&tx, &plan.tickets, &before)?;
    place(&tx, &plan.placements)?;
    insert_events(&tx, &plan.events)?;
    tx.commit()?;
    Ok(plan.results)
}

/// The tickets with these ids that exist, by id.
fn read_tickets(tx: &Transaction<'_>, ids: &[TicketId]) -> Result<HashMap<TicketId, Ticket>> {
    let mut select = tx.prepare_cached(select_tickets!("WHERE id = ?1"))?;
    let mut tickets = HashMap::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = select.query_row([id.0], TicketRow::read).optional()? {
            let ticket = Ticket::try_from(row)?;
            tickets.insert(ticket.id, ticket);
        }
    }
    Ok(tickets)
}

/// The messages already stored under the batch's keys. The author's id is compared the way the
/// unique index compares it, so that the index answers each key.
fn read_messages(tx: &Transaction<'_>, batch: &[NewMessage]) -> Result<HashMap<MessageKey, TicketEvent>> {
    let mut select = tx.prepare_cached(concat!(
        "SELECT ",
        event_columns!(),
        " FROM ticket_events
         WHERE ticket_id = ?1 AND author_kind = ?2
           AND coalesce(author_id, x'00000000000000000000000000000000') = ?3 AND client_msg_id = ?4"
    ))?;
    let mut messages = HashMap::new();
    for m in stream::first_of_each_key(batch) {
        let (kind, id) = rows::stored_author(m.author);
        let found = select
            .query_row(params![m.ticket_id.0, kind, id.unwrap_or(NO_AUTHOR), m.client_msg_id], EventRow::read)
            .optional()?;
        if let Some(row) = found {
            let event = TicketEvent::try_from(row)?;
            if let Some(client_msg_id) = event.client_msg_id.clone() {
                messages.insert((event.ticket_id, event.author, client_msg_id), event);
            }
        }
    }
    Ok(messages)
}

/// The uploads with these ids that exist (the write lock keeps them as read until the commit).
fn read_uploads(tx: &Transaction<'_>, ids: &[AttachmentId]) -> Result<Uploads> {
    let mut uploads = Uploads::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(uploads);
    }
    let mut select = tx.prepare_cached(&files::by_id())?;
    for id in ids {
        if let Some(row) = select.query_row([id.0], AttachmentRow::read).optional()? {
            uploads.insert(*id, Attachment::try_from(row)?);
        }
    }
    Ok(uploads)
}

/// What the partial indexes of `tickets` hold a ticket by: its status, agent and place in the queue.
type Standing = (TicketStatus, Option<AgentId>, Option<Millis>);

/// Each ticket's [`Standing`] before the batch, to tell which of them the batch moves.
struct Before(HashMap<TicketId, Standing>);

impl Before {
    fn of(tickets: &HashMap<TicketId, Ticket>) -> Self {
        Self(tickets.values().map(|t| (t.id, standing(t))).collect())
    }

    /// Whether the batch changed `ticket`'s standing (a message to a resolved ticket reopens it).
    fn moved(&self, ticket: &Ticket) -> bool {
        self.0.get(&ticket.id) != Some(&standing(ticket))
    }
}

fn standing(t: &Ticket) -> Standing {
    (t.status, t.agent_id, t.queued_at)
}

/// Writes each ticket's new place in its stream, and for the tickets whose standing the batch
/// changed (`before`), their status, agent and place in the queue too: SQLite rewrites the entries
/// of every index that names a column an UPDATE sets, and those columns are in the partial indexes
/// of `tickets`.
///
/// # Errors
/// [`Error::Internal`] when a ticket read under the write lock is gone: a bug.
fn update_tickets(tx: &Transaction<'_>, tickets: &[Ticket], before: &Before) -> Result<()> {
    let mut advance = tx.prepare_cached("UPDATE tickets SET last_seq = ?2, updated_at = ?3 WHERE id = ?1")?;
    let mut moved = tx.prepare_cached(
        "UPDATE tickets SET last_seq = ?2, updated_at = ?3, status = ?4, agent_id = ?5, queued_at = ?6 WHERE id = ?1",
    )?;
    for t in tickets {
        let (id, seq) = (t.id.0, rows::stored_seq(t.last_seq));
        let changed = if before.moved(t) {
            moved.execute(params![id, seq, t.updated_at, t.status.as_str(), t.agent_id.map(|a| a.0), t.queued_at])?
        } else {
            advance.execute(params![id, seq, t.updated_at])?
        };
        if changed != 1 {
            return Err(Error::Internal(format!("ticket {} changed under the write lock", t.id)));
        }
    }
    Ok(())
}

/// Marks placed uploads attached to their tickets.
///
/// # Errors
/// [`Error::Internal`] when one is no longer stored and its uploader's: the plan checked it under
/// the same lock, so that is a bug.
fn place(tx: &Transaction<'_>, placements: &[Placement]) -> Result<()> {
    if placements.is_empty() {
        return Ok(());
    }
    let mut attach = tx.prepare_cached(&files::attach())?;
    for p in placements {
        let (user, agent) = uploader_columns(p.uploader);
        let placed = attach.query_row(params![p.id.0, p.ticket.0, user, agent], |_| Ok(())).optional()?;
        if placed.is_none() {
            return Err(Error::Internal(format!("attachment {} changed under the write lock", p.id)));
        }
    }
    Ok(())
}

/// Inserts `events`, [`EVENT_CHUNK`] to a statement.
///
/// # Errors
/// [`Error::Internal`] when SQLite inserted another number of rows than it was given: a bug.
fn insert_events(tx: &Transaction<'_>, events: &[TicketEvent]) -> Result<()> {
    for chunk in events.chunks(EVENT_CHUNK) {
        let mut insert = tx.prepare_cached(&insert_statement(chunk.len()))?;
        let mut at = 0;
        let mut bind = |value: &dyn rusqlite::ToSql| {
            at += 1;
            insert.raw_bind_parameter(at, value)
        };
        for e in chunk {
            let (author_kind, author_id) = rows::stored_author(e.author);
            bind(&e.ticket_id.0)?;
            bind(&rows::stored_seq(e.seq))?;
            bind(&e.kind.as_str())?;
            bind(&author_kind)?;
            bind(&author_id)?;
            bind(&e.body)?;
            bind(&e.client_msg_id)?;
            bind(&e.agent_id.map(|a| a.0))?;
            bind(&rows::stored_attachments(&e.attachments))?;
            bind(&e.created_at)?;
            bind(&rows::search_text(e))?;
        }
        let inserted = insert.raw_execute()?;
        if inserted != chunk.len() {
            return Err(Error::Internal(format!(
                "a message batch inserted {inserted} events instead of {}",
                chunk.len()
            )));
        }
    }
    Ok(())
}

/// `INSERT INTO ticket_events` of `rows` rows of [`EVENT_COLUMNS`], with numberless parameters in
/// that order (also the single inserts of `tickets`).
pub(super) fn insert_statement(rows: usize) -> String {
    let row = format!("({})", vec!["?"; EVENT_COLUMNS.len()].join(", "));
    format!("INSERT INTO ticket_events ({}) VALUES {}", EVENT_COLUMNS.join(", "), vec![row; rows].join(", "))
}

/// What a storage failure on this connection means for a client: SQLite still busy or locked after
/// its busy timeout (another process holding the file's write lock) is `unavailable`, as on the
/// sqlx connections; anything else an internal error.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                tracing::warn!(error = %e, "storage unavailable");
                Self::Unavailable
            }
            _ => Self::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn an_insert_names_every_column_once_and_binds_each_row() {
        let statement = insert_statement(3);
        assert!(statement.starts_with(
            "INSERT INTO ticket_events (ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, \
             agent_id, attachments, created_at, search_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), ("
        ));
        assert_eq!(statement.matches('?').count(), 3 * EVENT_COLUMNS.len());
    }

    /// The two sides of a gate in a sync: the sync says it has begun, then waits to be let through.
    struct Gate {
        begun: std::sync::mpsc::Sender<()>,
        through: std::sync::mpsc::Receiver<()>,
    }

    /// A sync function that counts its calls and, with a gate, tells each call's start and waits
    /// for the test to let it through.
    fn counted_sync(
        gate: Option<Gate>,
        outcome: fn() -> std::io::Result<()>,
    ) -> (Arc<AtomicUsize>, impl FnMut() -> std::io::Result<()> + Send + 'static) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let sync = move || {
            if let Some(gate) = &gate {
                gate.begun.send(()).expect("the test waits for the sync");
                gate.through.recv().expect("the test opens the gate");
            }
            counted.fetch_add(1, Ordering::SeqCst);
            outcome()
        };
        (calls, sync)
    }

    fn committed(unsynced: &sync_queue::SyncSender<Unsynced>) -> oneshot::Receiver<Result<Vec<Appended>>> {
        let (answer, synced) = oneshot::channel();
        unsynced.send(Unsynced { results: vec![Appended::NotClaimed], answer }).expect("the sync thread runs");
        synced
    }

    #[tokio::test]
    async fn a_batch_is_answered_after_a_sync_that_began_after_its_commit_and_waiting_ones_share_the_next() {
        let ((open, through), (begun, began)) = (std::sync::mpsc::channel(), std::sync::mpsc::channel());
        let (calls, sync) = counted_sync(Some(Gate { begun, through }), || Ok(()));
        let unsynced = spawn_sync(sync, Arc::default()).expect("sync thread");
        let mut first = committed(&unsynced);
        began.recv().expect("the first sync begins");
        // The thread is in a sync that has not returned; these two wait for the next one.
        let (mut second, third) = (committed(&unsynced), committed(&unsynced));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(first.try_recv().is_err(), "answered before its sync returned");
        open.send(()).expect("gate");
        assert!(matches!(first.await, Ok(Ok(r)) if matches!(r[..], [Appended::NotClaimed])));
        began.recv().expect("the second sync begins");
        assert!(second.try_recv().is_err(), "answered by a sync that began before it was committed");
        open.send(()).expect("gate");
        assert!(matches!(second.await, Ok(Ok(_))));
        assert!(matches!(third.await, Ok(Ok(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the waiting two share one sync");
    }

    #[tokio::test]
    async fn after_a_failed_sync_every_batch_is_answered_unavailable_without_syncing_again() {
        let (calls, sync) = counted_sync(None, || Err(std::io::Error::other("the disk went away")));
        let failed = Arc::new(AtomicBool::new(false));
        let unsynced = spawn_sync(sync, failed.clone()).expect("sync thread");
        assert!(matches!(committed(&unsynced).await, Ok(Err(Error::Unavailable))));
        assert!(failed.load(Ordering::Relaxed), "the failure is told to the store");
        assert!(matches!(committed(&unsynced).await, Ok(Err(Error::Unavailable))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_connection_commits_like_the_writer_but_leaves_the_sync_to_its_thread() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hub.sqlite");
        Connection::open(&path).and_then(|c| c.pragma_update(None, "journal_mode", "WAL")).expect("a WAL database");
        let conn = connect(&path, Duration::from_millis(1234)).expect("connect");
        let pragma = |name: &str| conn.pragma_query_value(None, name, |row| row.get::<_, i64>(0)).expect(name);
        // 1 is NORMAL: the commit does not sync; the sync thread does before anyone hears of it.
        assert_eq!(pragma("synchronous"), 1);
        assert_eq!(pragma("foreign_keys"), 1);
        assert_eq!(pragma("secure_delete"), 1);
        // 2 is MEMORY.
        assert_eq!(pragma("temp_store"), 2);
        assert_eq!(pragma("busy_timeout"), 1234);
        assert_eq!(pragma("wal_autocheckpoint"), i64::from(WRITER_CHECKPOINT_PAGES));
    }
}
