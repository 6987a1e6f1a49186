//! The SQLite backend: the embedded default, one file, nothing to install.
//!
//! SQLite lets one connection write at a time. Rather than let several pooled connections collide on
//! the write lock and spin in its busy handler, every write goes through a pool of exactly one
//! connection, whose queue orders writers fairly; reads use a small pool of their own, which WAL lets
//! run beside the writer. Read-modify-writes are single statements (upserts, `RETURNING`), so they are
//! atomic without explicit transactions, except where several rows change together (a ticket and its
//! events, an agent and their sessions): those are `BEGIN IMMEDIATE` transactions.
//!
//! The agents' and the tickets' ports live in `sqlite/agents.rs` and `sqlite/tickets.rs`.
//!
//! The journal is a WAL with `synchronous=FULL`: a write the hub has acknowledged survives a power
//! cut, not only a crash of the process.

mod account;
mod agents;
mod profiles;
mod purchases;
mod telemetry;
mod tickets;

use crate::adapters::sql::rows::{self, CodeRow, DeviceRow, GuardRow, SessionRow, UserRow, SESSION_COLUMNS};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::account::{Device, NewSession, PhoneGuard, PhoneKey, Session, SignInCode, TokenHash, User};
use crate::model::ids::{CodeId, DeviceId, SessionId, UserId};
use crate::model::phone::Phone;
use crate::model::time::Millis;
use crate::ports::store::{Accounts, Health, HubKeys, Sessions, SignInCodes, Store};
use anyhow::Context as _;
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

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
            .connect_with(base.clone().create_if_missing(true).journal_mode(SqliteJournalMode::Wal))
            .await
            .with_context(|| format!("cannot open the sqlite database {}", path.display()))?;
        MIGRATOR.run(&writer).await.context("sqlite migration failed")?;

        // Opened after the writer switched the file to WAL (a persistent setting), so readers need not
        // touch the journal mode, which would take a lock.
        let readers = SqlitePoolOptions::new()
            .max_connections(config.db_pool_size.clamp(1, MAX_READERS))
            .acquire_timeout(timeout)
            .test_before_acquire(false)
            .connect_with(base.pragma("query_only", "ON"))
            .await
            .with_context(|| format!("cannot open the sqlite database {}", path.display()))?;
        Ok(Self { writer, readers })
    }
}

#[async_trait]
impl Accounts for SqliteStore {
    async fn user(&self, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query_as::<_, UserRow>("SELECT id, phone, registered_at FROM users WHERE id = ?1")
            .bind(id.0)
            .fetch_optional(&self.readers)
            .await?;
        Ok(row.map(User::from))
    }

    async fn user_by_phone(&self, phone: &Phone) -> Result<Option<User>> {
        let row = sqlx::query_as::<_, UserRow>("SELECT id, phone, registered_at FROM users WHERE phone = ?1")
            .bind(phone.e164())
            .fetch_optional(&self.readers)
            .await?;
        Ok(row.map(User::from))
    }

    async fn register_user(&self, phone: &Phone, now: Millis) -> Result<(User, bool)> {
        // Both statements run on the one writer connection, so no other write can come between them.
        let mut conn = self.writer.acquire().await?;
        let created = sqlx::query_as::<_, UserRow>(
            "INSERT INTO users (id, phone, registered_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (phone) DO NOTHING
             RETURNING id, phone, registered_at",
        )
        .bind(UserId::generate().0)
        .bind(phone.e164())
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = created {
            return Ok((User::from(row), true));
        }
        let existing = sqlx::query_as::<_, UserRow>("SELECT id, phone, registered_at FROM users WHERE phone = ?1")
            .bind(phone.e164())
            .fetch_optional(&mut *conn)
            .await?;
        existing
            .map(|row| (User::from(row), false))
            .ok_or_else(|| Error::Internal("user vanished while registering".into()))
    }

    async fn upsert_device(&self, user: UserId, client_device_id: &str, name: &str, now: Millis) -> Result<Device> {
        let row = sqlx::query_as::<_, DeviceRow>(
            "INSERT INTO devices (id, user_id, client_device_id, name, created_at, last_seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (user_id, client_device_id)
             DO UPDATE SET name = excluded.name, last_seen_at = excluded.last_seen_at
             RETURNING id, user_id, client_device_id, name, created_at, last_seen_at",
        )
        .bind(DeviceId::generate().0)
        .bind(user.0)
        .bind(client_device_id)
        .bind(name)
        .bind(now)
        .fetch_one(&self.writer)
        .await?;
        Ok(Device::from(row))
    }

    async fn devices(&self, user: UserId) -> Result<Vec<Device>> {
        let rows = sqlx::query_as::<_, DeviceRow>(
            "SELECT id, user_id, client_device_id, name, created_at, last_seen_at
             FROM devices WHERE user_id = ?1 ORDER BY created_at, id",
        )
        .bind(user.0)
        .fetch_all(&self.readers)
        .await?;
        Ok(rows.into_iter().map(Device::from).collect())
    }

    async fn change_phone(&self, user: UserId, phone: &Phone) -> Result<bool> {
        let changed = sqlx::query("UPDATE users SET phone = ?2 WHERE id = ?1")
            .bind(user.0)
            .bind(phone.e164())
            .execute(&self.writer)
            .await
            .map_err(crate::adapters::sql::number_taken_or)?;
        Ok(changed.rows_affected() > 0)
    }
}

#[async_trait]
impl Sessions for SqliteStore {
    async fn create_session(&self, new: &NewSession) -> Result<Session> {
        // An agent's session only while the agent is enabled: the one writer connection orders this
        // against `disable_agent`, so a session is either revoked by the disabling or never stored.
        let (user, device, agent) = rows::holder_columns(new.holder);
        let row = sqlx::query_as::<_, SessionRow>(&format!(
            "INSERT INTO sessions (id, user_id, device_id, agent_id, token_hash, created_at, expires_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
             WHERE ?4 IS NULL OR EXISTS (SELECT 1 FROM agents WHERE id = ?4 AND disabled_at IS NULL)
             RETURNING {SESSION_COLUMNS}"
        ))
        .bind(new.id.0)
        .bind(user)
        .bind(device)
        .bind(agent)
        .bind(&new.token_hash.0[..])
        .bind(new.created_at)
        .bind(new.expires_at)
        .fetch_optional(&self.writer)
        .await?;
        row.map(Session::try_from).transpose()?.ok_or(Error::Forbidden)
    }

    async fn session_by_token(&self, hash: &TokenHash) -> Result<Option<Session>> {
        let row =
            sqlx::query_as::<_, SessionRow>(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1"))
                .bind(&hash.0[..])
                .fetch_optional(&self.readers)
                .await?;
        row.map(Session::try_from).transpose()
    }

    async fn session(&self, id: SessionId) -> Result<Option<Session>> {
        let row = sqlx::query_as::<_, SessionRow>(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"))
            .bind(id.0)
            .fetch_optional(&self.readers)
            .await?;
        row.map(Session::try_from).transpose()
    }

    async fn rotate_session(
        &self,
        id: SessionId,
        new_hash: &TokenHash,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET token_hash = ?2, expires_at = ?3
             WHERE id = ?1 AND revoked_at IS NULL AND expires_at > ?4",
        )
        .bind(id.0)
        .bind(&new_hash.0[..])
        .bind(expires_at)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_session(&self, id: SessionId, now: Millis) -> Result<bool> {
        let done = sqlx::query("UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
            .bind(id.0)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_user_sessions(&self, user: UserId, keep: Option<SessionId>, now: Millis) -> Result<Vec<SessionId>> {
        // `IS NOT` is SQLite's null-safe inequality: with no session to keep, it matches every row.
        let ids = sqlx::query_scalar::<_, Uuid>(
            "UPDATE sessions SET revoked_at = ?3
             WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?3 AND id IS NOT ?2
             RETURNING id",
        )
        .bind(user.0)
        .bind(keep.map(|k| k.0))
        .bind(now)
        .fetch_all(&self.writer)
        .await?;
        Ok(rows::session_ids(ids))
    }

    async fn purge_sessions(&self, before: Millis) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < ?1 OR revoked_at < ?1")
            .bind(before)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn dead_sessions(&self, ids: &[SessionId], now: Millis) -> Result<Vec<SessionId>> {
        // SQLite has no arrays: one statement per chunk, well under its bound-parameter limit.
        let mut live = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(400) {
            let mut query =
                sqlx::QueryBuilder::new("SELECT id FROM sessions WHERE revoked_at IS NULL AND expires_at > ");
            query.push_bind(now).push(" AND id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id.0);
            }
            query.push(")");
            live.extend(query.build_query_scalar::<Uuid>().fetch_all(&self.readers).await?);
        }
        Ok(super::statements::not_among(ids, live))
    }

    async fn live_sessions(&self, user: UserId, now: Millis) -> Result<Vec<Session>> {
        let rows = sqlx::query_as::<_, SessionRow>(
            "SELECT id, user_id, device_id, agent_id, created_at, expires_at, revoked_at FROM sessions
             WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2
             ORDER BY created_at DESC, id DESC",
        )
        .bind(user.0)
        .bind(now)
        .fetch_all(&self.readers)
        .await?;
        rows::to_sessions(rows)
    }

    async fn revoke_device_sessions(&self, user: UserId, device: DeviceId, now: Millis) -> Result<Vec<SessionId>> {
        let ids = sqlx::query_scalar::<_, Uuid>(
            "UPDATE sessions SET revoked_at = ?3
             WHERE user_id = ?1 AND device_id = ?2 AND revoked_at IS NULL AND expires_at > ?3
             RETURNING id",
        )
        .bind(user.0)
        .bind(device.0)
        .bind(now)
        .fetch_all(&self.writer)
        .await?;
        Ok(rows::session_ids(ids))
    }
}

#[async_trait]
impl SignInCodes for SqliteStore {
    async fn put_code(&self, code: &SignInCode) -> Result<()> {
        // The number's previous code, used or not, is overwritten in the same statement.
        sqlx::query(
            "INSERT INTO sign_in_codes (id, phone_key, code_hash, created_at, expires_at, attempts, consumed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
             ON CONFLICT (phone_key) DO UPDATE SET
                 id = excluded.id, code_hash = excluded.code_hash, created_at = excluded.created_at,
                 expires_at = excluded.expires_at, attempts = excluded.attempts, consumed = 0",
        )
        .bind(code.id.0)
        .bind(&code.phone_key.0)
        .bind(&code.code_hash)
        .bind(code.created_at)
        .bind(code.expires_at)
        .bind(rows::stored_count(code.attempts))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn current_code(&self, phone: &PhoneKey) -> Result<Option<SignInCode>> {
        let row = sqlx::query_as::<_, CodeRow>(
            "SELECT id, phone_key, code_hash, created_at, expires_at, attempts FROM sign_in_codes
             WHERE phone_key = ?1 AND consumed = 0
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(&phone.0)
        .fetch_optional(&self.readers)
        .await?;
        row.map(SignInCode::try_from).transpose()
    }

    async fn count_attempt(&self, id: CodeId) -> Result<Option<u32>> {
        let attempts = sqlx::query_scalar::<_, i32>(
            "UPDATE sign_in_codes SET attempts = attempts + 1 WHERE id = ?1 AND consumed = 0 RETURNING attempts",
        )
        .bind(id.0)
        .fetch_optional(&self.writer)
        .await?;
        attempts.map(|n| rows::count(n, "sign_in_codes.attempts")).transpose()
    }

    async fn consume_code(&self, id: CodeId) -> Result<bool> {
        let done = sqlx::query("UPDATE sign_in_codes SET consumed = 1 WHERE id = ?1 AND consumed = 0")
            .bind(id.0)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_codes(&self, before: Millis) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM sign_in_codes WHERE expires_at < ?1").bind(before).execute(&self.writer).await?;
        Ok(done.rows_affected())
    }

    async fn phone_guard(&self, phone: &PhoneKey) -> Result<PhoneGuard> {
        let row = sqlx::query_as::<_, GuardRow>(
            "SELECT failures, lockouts, locked_until FROM phone_guards WHERE phone_key = ?1",
        )
        .bind(&phone.0)
        .fetch_optional(&self.readers)
        .await?;
        row.map_or(Ok(PhoneGuard::default()), PhoneGuard::try_from)
    }

    // The time is not stored: a guard needs none of its own (a lock-out carries its end).
    async fn add_failure(&self, phone: &PhoneKey, _now: Millis) -> Result<PhoneGuard> {
        let row = sqlx::query_as::<_, GuardRow>(
            "INSERT INTO phone_guards (phone_key, failures) VALUES (?1, 1)
             ON CONFLICT (phone_key) DO UPDATE SET failures = failures + 1
             RETURNING failures, lockouts, locked_until",
        )
        .bind(&phone.0)
        .fetch_one(&self.writer)
        .await?;
        PhoneGuard::try_from(row)
    }

    async fn lock_phone(&self, phone: &PhoneKey, until: Millis) -> Result<PhoneGuard> {
        let row = sqlx::query_as::<_, GuardRow>(
            "INSERT INTO phone_guards (phone_key, failures, lockouts, locked_until) VALUES (?1, 0, 1, ?2)
             ON CONFLICT (phone_key) DO UPDATE SET
                 failures = 0, lockouts = lockouts + 1, locked_until = excluded.locked_until
             RETURNING failures, lockouts, locked_until",
        )
        .bind(&phone.0)
        .bind(until)
        .fetch_one(&self.writer)
        .await?;
        PhoneGuard::try_from(row)
    }

    async fn clear_guard(&self, phone: &PhoneKey) -> Result<()> {
        sqlx::query("DELETE FROM phone_guards WHERE phone_key = ?1").bind(&phone.0).execute(&self.writer).await?;
        Ok(())
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

    async fn open(dir: &tempfile::TempDir) -> SqliteStore {
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
        assert!(dir.path().join("nested/folder/hub.sqlite").exists());
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
