//! The SQLite backend: the embedded default, one file, nothing to install.
//!
//! SQLite lets one connection write at a time. Rather than let several pooled connections collide on
//! the write lock and spin in its busy handler, every write queues for a pool of exactly one
//! connection, whose queue orders writers fairly; reads use a small pool of their own, which WAL lets
//! run beside the writer. Message batches, the bulk of the writes, hold that connection as their turn
//! and run on a connection and thread of their own (see `tickets::batch`). Read-modify-writes
//! are single statements (upserts, `RETURNING`), so they are atomic without explicit transactions,
//! except where several rows change together (a ticket and its events, an agent and their
//! sessions): those are `BEGIN IMMEDIATE` transactions.
//!
//! Each port's implementation lives in a file of its own under `sqlite/`, as under `postgres/`.
//!
//! The journal is a WAL with `synchronous=FULL`: a write the hub has acknowledged survives a power
//! cut, not only a crash of the process. Message batches reach the same end another way: their
//! commits leave the sync to a thread that answers them once it has synced (see `tickets::batch`).
//! A connection of its own copies the WAL into the database file (see `checkpoints`), so the writer
//! seldom does.

mod account;
mod agents;
mod attachments;
mod audit;
mod checkpoints;
mod codes;
mod history;
mod labels;
mod notes;
mod profiles;
mod purchases;
mod push;
mod ratings;
mod reports;
mod search;
mod sessions;
mod telemetry;
mod tickets;

use crate::adapters::sql::rows::sealed::{self, OldValue, PlainRow, SealedColumn};
use crate::adapters::vault::Vault;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ports::store::{Health, HubKeys, ResealPosition, SealedCount, SealedData, Store};
use anyhow::Context as _;
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;

/// `head`, then `IN (...)` with each of `values` bound, then `tail`: the statement for a list of
/// ids (SQLite has no array parameter; callers keep lists within `INSERT_CHUNK`).
fn in_list<'q, T>(head: &str, values: impl IntoIterator<Item = T>, tail: &str) -> sqlx::QueryBuilder<'q, sqlx::Sqlite>
where
    T: 'q + sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send,
{
    let mut query = sqlx::QueryBuilder::new(head);
    query.push("IN (");
    let mut list = query.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    query.push(")").push(tail);
    query
}

/// The schema, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// Upper bound of the read pool. Readers do not block each other under WAL, but a query is CPU work on
/// this node, so connections beyond a few only add open files and page caches.
const MAX_READERS: u32 = 4;

/// The SQLite store: one writer connection and a few read-only ones on the same file.
pub(crate) struct SqliteStore {
    /// The only connection that writes (and runs migrations). Writes queue for it in order.
    writer: SqlitePool,
    /// Connections with `query_only` on, for the reads that need no write lock.
    readers: SqlitePool,
    /// The connection that stores message batches, on a thread of its own (see `tickets::batch`).
    batches: tickets::BatchConnection,
    /// Seals and opens the users' numbers.
    vault: std::sync::Arc<crate::adapters::vault::Vault>,
    /// The background checkpoints, which stop with the store.
    _checkpoints: tokio_util::task::AbortOnDropHandle<()>,
}

impl SqliteStore {
    /// Opens (creating it and its folder if missing) the database at `path`, runs pending migrations
    /// and opens the pools. `db_timeout_ms` bounds both the wait for a pooled connection and the wait
    /// for SQLite's write lock held by another process; `db_pool_size` caps the readers.
    ///
    /// # Errors
    /// The folder or file cannot be created or opened, or a migration fails.
    pub(crate) async fn connect(path: &Path, config: &Config) -> anyhow::Result<Self> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(folder)
                .await
                .with_context(|| format!("cannot create the folder of the sqlite database {}", path.display()))?;
        }
        let timeout = Duration::from_millis(config.db_timeout_ms);
        let base = SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Full)
            // What is deleted (an account, a sealed number's plain form) is overwritten with zeros,
            // not left in free pages of the file.
            .pragma("secure_delete", "ON")
            // Another process (an operator's sqlite3 shell, a second hub on the same file) may hold the
            // write lock; wait for it as long as a caller may wait at all.
            .busy_timeout(timeout);

        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(timeout)
            // A local file cannot drop a connection the way a network can: the ping would only cost a
            // round trip to SQLite's worker thread on every call.
            .test_before_acquire(false)
            // Kept open for the life of the store: it holds the WAL open and keeps its page cache warm.
            .idle_timeout(None)
            .max_lifetime(None)
            // A statement that changes many rows (a batch of messages) keeps the pages it may have to put
            // back in a statement journal; in memory it costs a copy per page rather than a temporary
            // file's writes.
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .pragma("temp_store", "MEMORY")
                    .pragma("wal_autocheckpoint", checkpoints::WRITER_CHECKPOINT_PAGES.to_string()),
            )
            .await
            .with_context(|| format!("cannot open the sqlite database {}", path.display()))?;
        migrate(&base).await?;
        let vault = std::sync::Arc::new(crate::adapters::vault::load(config, Some(path))?);
        seal_plain_values(&writer, &vault).await?;
        let batches = tickets::BatchConnection::open(path, timeout)
            .with_context(|| format!("cannot open the sqlite database {}", path.display()))?;
        let checkpoints = checkpoints::start(&base)
            .await
            .with_context(|| format!("cannot open the sqlite database {}", path.display()))?;

        // Opened after the writer switched the file to WAL (a persistent setting), so readers need not
        // touch the journal mode, which would take a lock.
        let readers = SqlitePoolOptions::new()
            .max_connections(config.db_pool_size.clamp(1, MAX_READERS))
            .acquire_timeout(timeout)
            .test_before_acquire(false)
            .connect_with(base.pragma("query_only", "ON"))
            .await
            .with_context(|| format!("cannot open the sqlite database {}", path.display()))?;
        Ok(Self { writer, readers, batches, vault, _checkpoints: checkpoints })
    }
}

/// Runs pending migrations on a connection of its own with foreign keys off, so that a migration
/// may rebuild a table others reference (SQLite alters little in place) without the old table's
/// drop cascading; then checks every foreign key.
async fn migrate(base: &SqliteConnectOptions) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect_with(&base.clone().foreign_keys(false))
        .await
        .context("cannot open the sqlite database to migrate it")?;
    MIGRATOR.run(&mut conn).await.context("sqlite migration failed")?;
    let broken = sqlx::query("PRAGMA foreign_key_check").fetch_all(&mut conn).await?;
    anyhow::ensure!(broken.is_empty(), "after migrating, {} rows break a foreign key", broken.len());
    conn.close().await?;
    Ok(())
}

/// Seals the values a database made before sealing holds in plain (numbers, push addresses, IP
/// addresses), in batches (each one transaction, so an interrupted start resumes where it
/// stopped), then drops the plain columns.
async fn seal_plain_values(writer: &SqlitePool, vault: &Vault) -> anyhow::Result<()> {
    let mut dropped = false;
    for column in sealed::COLUMNS {
        dropped |=
            seal_plain_column(writer, vault, column).await.with_context(|| format!("sealing the {}", column.what))?;
    }
    if dropped {
        // Deleted content is zeroed (`secure_delete`), so after the checkpoint neither the file nor
        // the WAL keeps a plain value.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(writer).await?;
    }
    Ok(())
}

/// [`seal_plain_values`] for one column; whether it had plain columns to drop.
async fn seal_plain_column(writer: &SqlitePool, vault: &Vault, column: &SealedColumn) -> anyhow::Result<bool> {
    let has_plain: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2")
        .bind(column.table())
        .bind(column.plain_marker())
        .fetch_one(writer)
        .await?;
    if has_plain == 0 {
        return Ok(false);
    }
    let (what, seal) = (column.what, column.seal_plain());
    let mut done = 0u64;
    loop {
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
        let plain: Vec<PlainRow> =
            sqlx::query_as(column.plain_rows()).bind(sealed::SEAL_BATCH).fetch_all(&mut *tx).await?;
        for row in &plain {
            let value = column.stored(vault, row.owner, &row.value()?);
            sealed::bind_stored(sqlx::query(&seal), row.owner, &value).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if plain.is_empty() {
            break;
        }
        done += plain.len() as u64;
        tracing::info!(sealed = done, what, "sealing plain values");
    }
    let mut conn = writer.acquire().await?;
    for statement in column.drop_plain(true) {
        sqlx::query(&statement).execute(&mut *conn).await?;
    }
    if done > 0 {
        tracing::info!(sealed = done, what, "sealed the plain values and dropped them");
    }
    Ok(true)
}

#[async_trait]
impl SealedData for SqliteStore {
    async fn sealed_counts(&self) -> Result<Vec<SealedCount>> {
        let mut found = Vec::new();
        for column in sealed::COLUMNS {
            let rows = sqlx::query_as(&column.counts()).fetch_all(&self.readers).await?;
            found.extend(sealed::counts(column, rows));
        }
        Ok(found)
    }

    async fn reseal(&self, from: ResealPosition, limit: u32) -> Result<(u64, Option<ResealPosition>)> {
        let mut at = from;
        while let Some(column) = sealed::COLUMNS.get(at.kind) {
            let old: Vec<OldValue> = sqlx::query_as(&column.not_under())
                .bind(self.vault.current())
                .bind(i64::from(limit))
                .bind(at.after)
                .fetch_all(&self.readers)
                .await?;
            let Some(&(last, ..)) = old.last() else {
                at = at.next_kind();
                continue;
            };
            let values = old.iter().map(|o| column.resealed(&self.vault, o)).collect::<Result<Vec<_>>>()?;
            let reseal = column.reseal();
            let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
            for (old, value) in old.iter().zip(&values) {
                sealed::bind_reseal(sqlx::query(&reseal), old, value).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            // Rows changed since they were read count as done: they are under the current key now.
            return Ok((old.len() as u64, Some(ResealPosition { kind: at.kind, after: last })));
        }
        Ok((0, None))
    }
}

#[async_trait]
impl HubKeys for SqliteStore {
    async fn key_or_insert(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>> {
        let mut conn = self.writer.acquire().await?;
        sqlx::query("INSERT INTO hub_keys (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&mut *conn)
            .await?;
        let value = sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM hub_keys WHERE name = ?1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
        value.ok_or_else(|| Error::Internal("hub key vanished after insert".into()))
    }
}

#[async_trait]
impl Health for SqliteStore {
    async fn ping(&self) -> Result<()> {
        // A failed sync of the message batches' writes leaves the store unable to acknowledge
        // messages until the hub restarts (see `tickets::batch`).
        if self.batches.sync_failed() {
            return Err(Error::Unavailable);
        }
        // Through the writer: it is the connection every change depends on.
        sqlx::query("SELECT 1").execute(&self.writer).await?;
        Ok(())
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store on a new database at `nested/folder/hub.sqlite` under `dir` (the folders are made by
    /// the store); for the tests of the store's modules too.
    pub(super) async fn open(dir: &tempfile::TempDir) -> SqliteStore {
        let path = dir.path().join("nested").join("folder").join("hub.sqlite");
        match SqliteStore::connect(&path, &Config::default()).await {
            Ok(store) => store,
            Err(e) => panic!("cannot open the test database: {e:#}"),
        }
    }

    async fn pragma<T>(pool: &SqlitePool, name: &str) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + Unpin,
    {
        match sqlx::query_scalar::<_, T>(&format!("PRAGMA {name}")).fetch_one(pool).await {
            Ok(value) => value,
            Err(e) => panic!("PRAGMA {name}: {e}"),
        }
    }

    #[tokio::test]
    async fn creates_the_folder_and_sets_durable_pragmas_on_every_connection() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(&dir).await;
        for pool in [&store.writer, &store.readers] {
            assert_eq!(pragma::<String>(pool, "journal_mode").await, "wal");
            // 2 is FULL: an acknowledged commit has been fsynced.
            assert_eq!(pragma::<i64>(pool, "synchronous").await, 2);
            assert_eq!(pragma::<i64>(pool, "foreign_keys").await, 1);
            assert_eq!(pragma::<i64>(pool, "busy_timeout").await, 5000);
        }
        // 2 is MEMORY: the writer's statement journals stay off the disk.
        assert_eq!(pragma::<i64>(&store.writer, "temp_store").await, 2);
        assert!(dir.path().join("nested/folder/hub.sqlite").exists());
    }

    #[tokio::test]
    async fn committed_pages_reach_the_database_file_while_the_writer_leaves_the_wal_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(&dir).await;
        assert_eq!(
            pragma::<i64>(&store.writer, "wal_autocheckpoint").await,
            i64::from(checkpoints::WRITER_CHECKPOINT_PAGES)
        );
        let file = dir.path().join("nested/folder/hub.sqlite");
        let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let before = size();
        // 2 MiB: about 520 pages, far below the writer's own checkpoint.
        for i in 0..8 {
            let written = sqlx::query("INSERT INTO hub_keys (name, value) VALUES (?1, randomblob(262144))")
                .bind(format!("filler-{i}"))
                .execute(&store.writer)
                .await;
            assert!(written.is_ok(), "insert: {written:?}");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // Pages freed by the migrations are reused first, so the file grows by less than was written.
        while size() < before + 1024 * 1024 {
            assert!(std::time::Instant::now() < deadline, "the database file is still {} bytes", size());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn readers_cannot_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(&dir).await;
        let outcome =
            sqlx::query("INSERT INTO hub_keys (name, value) VALUES ('x', x'00')").execute(&store.readers).await;
        assert!(outcome.is_err(), "a reader connection accepted a write");
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_does_not_rerun_migrations() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = open(&dir).await.key_or_insert("k", b"first").await.ok();
        let second = open(&dir).await.key_or_insert("k", b"second").await.ok();
        assert_eq!(first.as_deref(), Some(&b"first"[..]));
        assert_eq!(second, first);
    }
}
