//! The Postgres backend: the production store, shared by every node of a cluster.
//!
//! Concurrency is the database's job: every read-modify-write is one statement (`ON CONFLICT`
//! upserts, `UPDATE .. SET x = x + 1 .. RETURNING`, conditional `UPDATE`s whose row count says who
//! won), so the default READ COMMITTED isolation suffices and no application lock is taken.
//! Where several rows must change together (a ticket and its events, an agent and their sessions),
//! a transaction takes row locks (`FOR UPDATE`, or the guarded `UPDATE` itself) before it decides.
//!
//! The agents' and the tickets' ports live in `postgres/agents.rs` and `postgres/tickets.rs` (which
//! explains how seqs are allocated).
//!
//! Every call has one deadline (`db_timeout_ms`) covering both the wait for a pooled connection
//! and its queries; past it the caller gets [`Error::Unavailable`]. The server enforces a slightly
//! longer `statement_timeout`, so that it stops working for a caller that has given up.

mod account;
mod agents;
mod profiles;
mod purchases;
mod telemetry;
mod tickets;

use crate::adapters::sql::rows::{self, CodeRow, DeviceRow, GuardRow, SessionRow, UserRow};
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
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection as _;
use std::str::FromStr;
use std::time::Duration;
use tokio::time::{timeout_at, Instant};
use uuid::Uuid;

/// The schema, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// How much longer than the caller's deadline the server lets a statement run.
const SERVER_TIMEOUT_MARGIN_MS: u64 = 1_000;
/// How long an idle pooled connection is kept before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Pooled connections are replaced after this long, so that a connection still pinned to a server
/// that was failed over (behind a proxy or a DNS name), or one whose backend grew large, is recycled.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The Postgres store: a pool of `db_pool_size` connections.
///
/// The pool heals itself. Each pooled connection is pinged before it is handed out
/// (`test_before_acquire`), so one that died while idle (database restarted, backend killed with
/// `pg_terminate_backend`, failover) is discarded and replaced instead of failing a call. A call
/// that was already running on a connection when it died fails with [`Error::Unavailable`], and
/// the connection is dropped rather than returned to the pool. While the database is down every call
/// gets `unavailable` within the deadline; once it is back, calls succeed again without a restart.
pub struct PostgresStore {
    pool: PgPool,
    /// The deadline of one call (`db_timeout_ms`).
    timeout: Duration,
}

impl PostgresStore {
    /// Connects to `url`, runs pending migrations and opens the pool.
    ///
    /// # Errors
    /// The URL is malformed, the server is unreachable or refuses the login within `db_timeout_ms`,
    /// or a migration fails.
    pub async fn connect(url: &str, config: &Config) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(config.db_timeout_ms);
        let base = PgConnectOptions::from_str(url)
            .context("database_url is not a valid postgres URL")?
            .application_name("anapars-hub");
        Self::migrate(&base, timeout).await?;

        // The server gives up on a statement soon after its caller did (Postgres does not notice a
        // closed socket while a statement runs), and releases the locks of a transaction whose
        // client vanished. Later than the caller's own deadline, so that the caller always sees its
        // own timer's `unavailable`, not the server's cancel arriving first as a different error.
        let limit = (config.db_timeout_ms + SERVER_TIMEOUT_MARGIN_MS).to_string();
        let options = base
            .options([("statement_timeout", limit.as_str()), ("idle_in_transaction_session_timeout", limit.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(config.db_pool_size.max(1))
            .acquire_timeout(timeout)
            // The default, but load-bearing (see the type's doc): a connection that died while idle
            // costs one extra round trip here instead of a failed call.
            .test_before_acquire(true)
            .idle_timeout(IDLE_TIMEOUT)
            .max_lifetime(MAX_LIFETIME)
            .connect_with(options)
            .await
            .context("cannot connect to postgres")?;
        Ok(Self { pool, timeout })
    }

    /// Runs pending migrations on a connection of its own, without the pool's `statement_timeout`:
    /// a schema change may take longer than a request may. Concurrent starts are safe: the migrator
    /// holds an advisory lock while it works.
    async fn migrate(base: &PgConnectOptions, timeout: Duration) -> anyhow::Result<()> {
        let mut conn = tokio::time::timeout(timeout, PgConnection::connect_with(base))
            .await
            .map_err(|_| anyhow::anyhow!("postgres did not answer within {} ms", timeout.as_millis()))?
            .context("cannot connect to postgres")?;
        MIGRATOR.run(&mut conn).await.context("postgres migration failed")?;
        conn.close().await.context("closing the migration connection")?;
        Ok(())
    }

    /// Runs `op` on a pooled connection within the call's deadline.
    ///
    /// The deadline covers the wait for a connection (including its liveness ping) and all of `op`'s
    /// queries, so a hung TCP connection or a stalled server cannot hold a client longer than
    /// `db_timeout_ms`. A connection abandoned mid-query is closed, never returned to the pool: its
    /// state is unknown and it may be the hung one.
    async fn call<T>(&self, op: impl AsyncFnOnce(&mut PgConnection) -> Result<T>) -> Result<T> {
        let deadline = Instant::now() + self.timeout;
        let mut conn = match timeout_at(deadline, self.pool.acquire()).await {
            Ok(conn) => conn?,
            Err(_) => return Err(timed_out("connection")),
        };
        match timeout_at(deadline, op(&mut conn)).await {
            Ok(result) => result,
            Err(_) => {
                // Detached and dropped: its socket closes at once and its pool slot is free for the
                // next caller. A graceful close would first wait on the very connection that stalled.
                drop(conn.detach());
                Err(timed_out("query"))
            }
        }
    }
}

/// Logs a missed deadline and turns it into the client's answer.
fn timed_out(waiting_for: &'static str) -> Error {
    tracing::warn!(waiting_for, "postgres call timed out");
    Error::Unavailable
}

#[async_trait]
impl Accounts for PostgresStore {
    async fn user(&self, id: UserId) -> Result<Option<User>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, UserRow>("SELECT id, phone, registered_at FROM users WHERE id = $1")
                .bind(id.0)
                .fetch_optional(c)
                .await?;
            Ok(row.map(User::from))
        })
        .await
    }

    async fn user_by_phone(&self, phone: &Phone) -> Result<Option<User>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, UserRow>("SELECT id, phone, registered_at FROM users WHERE phone = $1")
                .bind(phone.e164())
                .fetch_optional(c)
                .await?;
            Ok(row.map(User::from))
        })
        .await
    }

    async fn register_user(&self, phone: &Phone, now: Millis) -> Result<(User, bool)> {
        self.call(async |c| {
            // Exactly one concurrent insert wins the unique index; the others wait for it to commit
            // and do nothing. Their next statement gets a fresh snapshot and so sees the winner.
            let created = sqlx::query_as::<_, UserRow>(
                "INSERT INTO users (id, phone, registered_at) VALUES ($1, $2, $3)
                 ON CONFLICT (phone) DO NOTHING
                 RETURNING id, phone, registered_at",
            )
            .bind(UserId::generate().0)
            .bind(phone.e164())
            .bind(now)
            .fetch_optional(&mut *c)
            .await?;
            if let Some(row) = created {
                return Ok((User::from(row), true));
            }
            let existing = sqlx::query_as::<_, UserRow>("SELECT id, phone, registered_at FROM users WHERE phone = $1")
                .bind(phone.e164())
                .fetch_optional(&mut *c)
                .await?;
            // Only a user deleted between the two statements gets here; the caller may retry.
            existing
                .map(|row| (User::from(row), false))
                .ok_or_else(|| Error::Internal("user vanished while registering".into()))
        })
        .await
    }

    async fn upsert_device(&self, user: UserId, client_device_id: &str, name: &str, now: Millis) -> Result<Device> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, DeviceRow>(
                "INSERT INTO devices (id, user_id, client_device_id, name, created_at, last_seen_at)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (user_id, client_device_id)
                 DO UPDATE SET name = EXCLUDED.name, last_seen_at = EXCLUDED.last_seen_at
                 RETURNING id, user_id, client_device_id, name, created_at, last_seen_at",
            )
            .bind(DeviceId::generate().0)
            .bind(user.0)
            .bind(client_device_id)
            .bind(name)
            .bind(now)
            .fetch_one(c)
            .await?;
            Ok(Device::from(row))
        })
        .await
    }

    async fn devices(&self, user: UserId) -> Result<Vec<Device>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, DeviceRow>(
                "SELECT id, user_id, client_device_id, name, created_at, last_seen_at
                 FROM devices WHERE user_id = $1 ORDER BY created_at, id",
            )
            .bind(user.0)
            .fetch_all(c)
            .await?;
            Ok(rows.into_iter().map(Device::from).collect())
        })
        .await
    }
}

#[async_trait]
impl Sessions for PostgresStore {
    async fn create_session(&self, new: &NewSession) -> Result<Session> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, SessionRow>(
                "INSERT INTO sessions (id, user_id, device_id, token_hash, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 RETURNING id, user_id, device_id, created_at, expires_at, revoked_at",
            )
            .bind(new.id.0)
            .bind(new.user_id.0)
            .bind(new.device_id.0)
            .bind(&new.token_hash.0[..])
            .bind(new.created_at)
            .bind(new.expires_at)
            .fetch_one(c)
            .await?;
            Ok(Session::from(row))
        })
        .await
    }

    async fn session_by_token(&self, hash: &TokenHash) -> Result<Option<Session>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, SessionRow>(
                "SELECT id, user_id, device_id, created_at, expires_at, revoked_at
                 FROM sessions WHERE token_hash = $1",
            )
            .bind(&hash.0[..])
            .fetch_optional(c)
            .await?;
            Ok(row.map(Session::from))
        })
        .await
    }

    async fn session(&self, id: SessionId) -> Result<Option<Session>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, SessionRow>(
                "SELECT id, user_id, device_id, created_at, expires_at, revoked_at FROM sessions WHERE id = $1",
            )
            .bind(id.0)
            .fetch_optional(c)
            .await?;
            Ok(row.map(Session::from))
        })
        .await
    }

    async fn rotate_session(
        &self,
        id: SessionId,
        new_hash: &TokenHash,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool> {
        self.call(async |c| {
            // Liveness is part of the WHERE, so a concurrent revoke either happens first (no row
            // matches) or after (it revokes the rotated session): a revoked session never gets a token.
            let done = sqlx::query(
                "UPDATE sessions SET token_hash = $2, expires_at = $3
                 WHERE id = $1 AND revoked_at IS NULL AND expires_at > $4",
            )
            .bind(id.0)
            .bind(&new_hash.0[..])
            .bind(expires_at)
            .bind(now)
            .execute(c)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn revoke_session(&self, id: SessionId, now: Millis) -> Result<bool> {
        self.call(async |c| {
            let done = sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.0)
                .bind(now)
                .execute(c)
                .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn revoke_user_sessions(&self, user: UserId, keep: Option<SessionId>, now: Millis) -> Result<Vec<SessionId>> {
        self.call(async |c| {
            let ids = sqlx::query_scalar::<_, Uuid>(
                "UPDATE sessions SET revoked_at = $3
                 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $3 AND id IS DISTINCT FROM $2
                 RETURNING id",
            )
            .bind(user.0)
            .bind(keep.map(|k| k.0))
            .bind(now)
            .fetch_all(c)
            .await?;
            Ok(rows::session_ids(ids))
        })
        .await
    }

    async fn purge_sessions(&self, before: Millis) -> Result<u64> {
        self.call(async |c| {
            let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1")
                .bind(before)
                .execute(c)
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn dead_sessions(&self, ids: &[SessionId], now: Millis) -> Result<Vec<SessionId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        let live = self
            .call(async |c| {
                Ok(sqlx::query_scalar::<_, Uuid>(
                    "SELECT id FROM sessions WHERE id = ANY($1) AND revoked_at IS NULL AND expires_at > $2
                     UNION ALL
                     SELECT id FROM agent_sessions WHERE id = ANY($1) AND revoked_at IS NULL AND expires_at > $2",
                )
                .bind(&wanted)
                .bind(now)
                .fetch_all(c)
                .await?)
            })
            .await?;
        Ok(super::statements::not_among(ids, live))
    }
}

#[async_trait]
impl SignInCodes for PostgresStore {
    async fn put_code(&self, code: &SignInCode) -> Result<()> {
        self.call(async |c| {
            // The number's previous code, used or not, is overwritten in the same statement: there is
            // never a moment with two codes, even when two resends race.
            sqlx::query(
                "INSERT INTO sign_in_codes (id, phone_key, code_hash, created_at, expires_at, attempts, consumed)
                 VALUES ($1, $2, $3, $4, $5, $6, FALSE)
                 ON CONFLICT (phone_key) DO UPDATE SET
                     id = EXCLUDED.id, code_hash = EXCLUDED.code_hash, created_at = EXCLUDED.created_at,
                     expires_at = EXCLUDED.expires_at, attempts = EXCLUDED.attempts, consumed = FALSE",
            )
            .bind(code.id.0)
            .bind(&code.phone_key.0)
            .bind(&code.code_hash)
            .bind(code.created_at)
            .bind(code.expires_at)
            .bind(rows::stored_count(code.attempts))
            .execute(c)
            .await?;
            Ok(())
        })
        .await
    }

    async fn current_code(&self, phone: &PhoneKey) -> Result<Option<SignInCode>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, CodeRow>(
                "SELECT id, phone_key, code_hash, created_at, expires_at, attempts FROM sign_in_codes
                 WHERE phone_key = $1 AND NOT consumed
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .bind(&phone.0)
            .fetch_optional(c)
            .await?;
            row.map(SignInCode::try_from).transpose()
        })
        .await
    }

    async fn count_attempt(&self, id: CodeId) -> Result<Option<u32>> {
        self.call(async |c| {
            let attempts = sqlx::query_scalar::<_, i32>(
                "UPDATE sign_in_codes SET attempts = attempts + 1 WHERE id = $1 AND NOT consumed RETURNING attempts",
            )
            .bind(id.0)
            .fetch_optional(c)
            .await?;
            attempts.map(|n| rows::count(n, "sign_in_codes.attempts")).transpose()
        })
        .await
    }

    async fn consume_code(&self, id: CodeId) -> Result<bool> {
        self.call(async |c| {
            // A racing second UPDATE waits for the first, re-reads the row, finds it consumed and
            // matches nothing: exactly one caller sees a row count of one.
            let done = sqlx::query("UPDATE sign_in_codes SET consumed = TRUE WHERE id = $1 AND NOT consumed")
                .bind(id.0)
                .execute(c)
                .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn purge_codes(&self, before: Millis) -> Result<u64> {
        self.call(async |c| {
            let done = sqlx::query("DELETE FROM sign_in_codes WHERE expires_at < $1").bind(before).execute(c).await?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn phone_guard(&self, phone: &PhoneKey) -> Result<PhoneGuard> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, GuardRow>(
                "SELECT failures, lockouts, locked_until FROM phone_guards WHERE phone_key = $1",
            )
            .bind(&phone.0)
            .fetch_optional(c)
            .await?;
            row.map_or(Ok(PhoneGuard::default()), PhoneGuard::try_from)
        })
        .await
    }

    // The time is not stored: a guard needs none of its own (a lock-out carries its end).
    async fn add_failure(&self, phone: &PhoneKey, _now: Millis) -> Result<PhoneGuard> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, GuardRow>(
                "INSERT INTO phone_guards (phone_key, failures) VALUES ($1, 1)
                 ON CONFLICT (phone_key) DO UPDATE SET failures = phone_guards.failures + 1
                 RETURNING failures, lockouts, locked_until",
            )
            .bind(&phone.0)
            .fetch_one(c)
            .await?;
            PhoneGuard::try_from(row)
        })
        .await
    }

    async fn lock_phone(&self, phone: &PhoneKey, until: Millis) -> Result<PhoneGuard> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, GuardRow>(
                "INSERT INTO phone_guards (phone_key, failures, lockouts, locked_until) VALUES ($1, 0, 1, $2)
                 ON CONFLICT (phone_key) DO UPDATE SET
                     failures = 0, lockouts = phone_guards.lockouts + 1, locked_until = EXCLUDED.locked_until
                 RETURNING failures, lockouts, locked_until",
            )
            .bind(&phone.0)
            .bind(until)
            .fetch_one(c)
            .await?;
            PhoneGuard::try_from(row)
        })
        .await
    }

    async fn clear_guard(&self, phone: &PhoneKey) -> Result<()> {
        self.call(async |c| {
            sqlx::query("DELETE FROM phone_guards WHERE phone_key = $1").bind(&phone.0).execute(c).await?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl HubKeys for PostgresStore {
    async fn key_or_insert(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>> {
        self.call(async |c| {
            // Two statements on purpose: a single `WITH ins AS (INSERT ..) SELECT ..` would read with
            // the snapshot taken before a racing winner committed and could find no key at all. Here
            // the losing INSERT waits for the winner's commit and the SELECT's fresh snapshot sees it.
            sqlx::query("INSERT INTO hub_keys (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(candidate)
                .execute(&mut *c)
                .await?;
            let value = sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM hub_keys WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *c)
                .await?;
            value.ok_or_else(|| Error::Internal("hub key vanished after insert".into()))
        })
        .await
    }
}

#[async_trait]
impl Health for PostgresStore {
    async fn ping(&self) -> Result<()> {
        self.call(async |c| {
            sqlx::query("SELECT 1").execute(c).await?;
            Ok(())
        })
        .await
    }
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that accepts TCP connections and never says a word: the start-up must give up
    /// within the deadline instead of hanging the hub forever.
    #[tokio::test]
    async fn connect_gives_up_on_a_silent_server_within_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let config = Config { db_timeout_ms: 300, ..Config::default() };
        let started = std::time::Instant::now();
        let outcome = PostgresStore::connect(&format!("postgres://hub@{addr}/hub"), &config).await;
        assert!(outcome.is_err(), "connected to a server that never answered");
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        hold.abort();
    }

    #[tokio::test]
    async fn a_malformed_url_is_a_config_error() {
        let outcome = PostgresStore::connect("postgres://[not-a-host", &Config::default()).await;
        let message = outcome.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("database_url"), "{message}");
    }
}
