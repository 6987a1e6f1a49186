//! The Postgres backend: the production store, shared by every node of a cluster.
//!
//! Concurrency is the database's job: every read-modify-write is one statement (`ON CONFLICT`
//! upserts, `UPDATE .. SET x = x + 1 .. RETURNING`, conditional `UPDATE`s whose row count says who
//! won), so the default READ COMMITTED isolation suffices and no application lock is taken.
//! Where several rows must change together (a ticket and its events, an agent and their sessions),
//! a transaction takes row locks (`FOR UPDATE`, or the guarded `UPDATE` itself) before it decides.
//!
//! This file holds the pool and its deadline, the hub's keys and the health check. The ports live
//! in `postgres/`, a file per area: users, devices and sessions (`sessions.rs`), sign-in codes
//! (`codes.rs`), agents, tickets (`tickets.rs` explains how seqs are allocated), profiles,
//! purchases, telemetry, and the account records of users' rights (`account.rs`).
//!
//! Every call has one deadline (`db_timeout_ms`) covering both the wait for a pooled connection
//! and its queries; past it the caller gets [`Error::Unavailable`]. The server enforces a slightly
//! longer `statement_timeout`, so that it stops working for a caller that has given up.

mod account;
mod agents;
mod attachments;
mod audit;
mod codes;
mod held;
mod history;
mod known;
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
use crate::adapters::sql::statements::postgres;
use crate::adapters::vault::Vault;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ports::store::{Health, HubKeys, ResealPosition, SealedCount, SealedData, Store};
use anyhow::Context as _;
use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection as _;
use std::str::FromStr;
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// Whether table `$1` has column `$2`: a plain column not yet dropped.
const HAS_PLAIN: &str = "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
     WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2)";

/// Seals the values a database made before sealing holds in plain (numbers, push addresses, IP
/// addresses), in batches (each one transaction, so an interrupted start resumes where it
/// stopped), then drops the plain columns. Nodes starting together take turns through an advisory
/// lock; those after the first find nothing left to do.
async fn seal_plain_values(conn: &mut PgConnection, vault: &Vault) -> anyhow::Result<()> {
    const LOCK: &str = "SELECT pg_advisory_lock(hashtext('anapars-hub: sealing numbers'))";
    const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtext('anapars-hub: sealing numbers'))";
    let mut plain = Vec::new();
    for column in sealed::COLUMNS {
        let found = sqlx::query_scalar::<_, bool>(HAS_PLAIN)
            .bind(column.table())
            .bind(column.plain_marker())
            .fetch_one(&mut *conn)
            .await?;
        if found {
            plain.push(column);
        }
    }
    if plain.is_empty() {
        return Ok(());
    }
    sqlx::query(LOCK).execute(&mut *conn).await?;
    let mut dropped = Vec::new();
    let mut outcome = Ok(());
    for column in plain {
        match seal_plain_column(conn, vault, column).await {
            Ok(true) => dropped.push(column.table()),
            Ok(false) => {}
            Err(e) => {
                outcome = Err(e.context(format!("sealing the {}", column.what)));
                break;
            }
        }
    }
    sqlx::query(UNLOCK).execute(&mut *conn).await?;
    outcome?;
    for table in dropped {
        // A dropped column's values stay in the table's pages until they are rewritten.
        sqlx::query(&format!("VACUUM FULL {table}"))
            .execute(&mut *conn)
            .await
            .with_context(|| format!("rewriting the table {table}"))?;
    }
    Ok(())
}

/// [`seal_plain_values`] for one column, under the lock; whether this node dropped its plain
/// columns (another node may have sealed it first).
async fn seal_plain_column(conn: &mut PgConnection, vault: &Vault, column: &SealedColumn) -> anyhow::Result<bool> {
    let (what, select, seal) = (column.what, postgres(column.plain_rows()), postgres(&column.seal_plain()));
    let mut done = 0u64;
    loop {
        let plain = sqlx::query_scalar::<_, bool>(HAS_PLAIN)
            .bind(column.table())
            .bind(column.plain_marker())
            .fetch_one(&mut *conn)
            .await?;
        if !plain {
            return Ok(false);
        }
        let mut tx = conn.begin().await?;
        let rows: Vec<PlainRow> = sqlx::query_as(&select).bind(sealed::SEAL_BATCH).fetch_all(&mut *tx).await?;
        for row in &rows {
            let value = column.stored(vault, row.owner, &row.value()?);
            sealed::bind_stored(sqlx::query(&seal), row.owner, &value).execute(&mut *tx).await?;
        }
        if rows.is_empty() {
            for statement in column.drop_plain(false) {
                sqlx::query(&statement).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        if rows.is_empty() {
            if done > 0 {
                tracing::info!(sealed = done, what, "sealed the plain values and dropped them");
            }
            return Ok(true);
        }
        done += rows.len() as u64;
        tracing::info!(sealed = done, what, "sealing plain values");
    }
}

/// The schema, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// How much longer than the caller's deadline the server lets a statement run.
const SERVER_TIMEOUT_MARGIN_MS: u64 = 1_000;
/// How long an idle pooled connection is kept before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Pooled connections are replaced after this long, so that a connection still pinned to a server
/// that was failed over (behind a proxy or a DNS name), or one whose backend grew large, is recycled.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The settings of every connection the store reads and writes through: the server gives up on a
/// statement `limit` ms after it started, and on a transaction idle that long; and it never compiles
/// a plan to machine code (`jit`). The hub's statements find their rows through keys and run in
/// milliseconds, but on `ticket_events`, partitioned by month, a statement's plan holds one node per
/// month: once a plan's estimated cost passes Postgres's threshold (a report's, a search's), its
/// compilation takes hundreds of milliseconds to seconds with a few years of months, longer than
/// running it.
fn session_options(base: &PgConnectOptions, limit: &str) -> PgConnectOptions {
    base.clone().options([("statement_timeout", limit), ("idle_in_transaction_session_timeout", limit), ("jit", "off")])
}

/// The Postgres store: a pool of `db_pool_size` connections, and up to `message_writers` more
/// held for the message writer's batches ([`held`]).
///
/// The pool heals itself. Each pooled connection is pinged before it is handed out
/// (`test_before_acquire`), so one that died while idle (database restarted, backend killed with
/// `pg_terminate_backend`, failover) is discarded and replaced instead of failing a call. A call
/// that was already running on a connection when it died fails with [`Error::Unavailable`], and
/// the connection is dropped rather than returned to the pool. While the database is down every call
/// gets `unavailable` within the deadline; once it is back, calls succeed again without a restart.
pub struct PostgresStore {
    pool: PgPool,
    /// The message writer's connections, beside the pool (see [`held`]).
    writers: held::HeldConnections,
    /// The tickets as this node last stored or read them, which a batch of messages is planned
    /// from without reading them first (see [`known`]).
    known: known::KnownTickets,
    /// The deadline of one call (`db_timeout_ms`).
    timeout: Duration,
    /// Seals and opens the users' numbers.
    vault: std::sync::Arc<crate::adapters::vault::Vault>,
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
        let vault = std::sync::Arc::new(crate::adapters::vault::load(config, None)?);
        Self::migrate(&base, timeout, &vault).await?;

        // The server gives up on a statement soon after its caller did (Postgres does not notice a
        // closed socket while a statement runs), and releases the locks of a transaction whose
        // client vanished. Later than the caller's own deadline, so that the caller always sees its
        // own timer's `unavailable`, not the server's cancel arriving first as a different error.
        let limit = (config.db_timeout_ms + SERVER_TIMEOUT_MARGIN_MS).to_string();
        let options = session_options(&base, &limit);
        let writers = held::HeldConnections::new(options.clone(), config.message_writers);
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
        Ok(Self { pool, writers, known: known::KnownTickets::new(known::KNOWN_TICKETS), timeout, vault })
    }

    /// Runs pending migrations on a connection of its own, without the pool's `statement_timeout`:
    /// a schema change may take longer than a request may. Concurrent starts are safe: the migrator
    /// holds an advisory lock while it works.
    async fn migrate(
        base: &PgConnectOptions,
        timeout: Duration,
        vault: &crate::adapters::vault::Vault,
    ) -> anyhow::Result<()> {
        let mut conn = tokio::time::timeout(timeout, PgConnection::connect_with(base))
            .await
            .map_err(|_| anyhow::anyhow!("postgres did not answer within {} ms", timeout.as_millis()))?
            .context("cannot connect to postgres")?;
        MIGRATOR.run(&mut conn).await.context("postgres migration failed")?;
        seal_plain_values(&mut conn, vault).await?;
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

    /// Runs the call `make` makes on one of the message writer's connections within the call's
    /// deadline (see [`held`], which may make it twice).
    async fn write_call<T, Op>(&self, make: impl Fn() -> Op) -> Result<T>
    where
        Op: AsyncFnOnce(&mut PgConnection) -> Result<T>,
    {
        self.writers.call(Instant::now() + self.timeout, make).await
    }
}

/// Logs a missed deadline and turns it into the client's answer.
fn timed_out(waiting_for: &'static str) -> Error {
    tracing::warn!(waiting_for, "postgres call timed out");
    Error::Unavailable
}

#[async_trait]
impl SealedData for PostgresStore {
    async fn sealed_counts(&self) -> Result<Vec<SealedCount>> {
        self.call(async |c| {
            let mut found = Vec::new();
            for column in sealed::COLUMNS {
                let rows = sqlx::query_as(&column.counts()).fetch_all(&mut *c).await?;
                found.extend(sealed::counts(column, rows));
            }
            Ok(found)
        })
        .await
    }

    async fn reseal(&self, from: ResealPosition, limit: u32) -> Result<(u64, Option<ResealPosition>)> {
        self.call(async |c| {
            let mut at = from;
            while let Some(column) = sealed::COLUMNS.get(at.kind) {
                let old: Vec<OldValue> = sqlx::query_as(&postgres(&column.not_under()))
                    .bind(self.vault.current())
                    .bind(i64::from(limit))
                    .bind(at.after)
                    .fetch_all(&mut *c)
                    .await?;
                let Some(&(last, ..)) = old.last() else {
                    at = at.next_kind();
                    continue;
                };
                let values = old.iter().map(|o| column.resealed(&self.vault, o)).collect::<Result<Vec<_>>>()?;
                // One statement for the batch: a round trip per row would cost more than the update.
                let owners: Vec<uuid::Uuid> = old.iter().map(|o| o.0).collect();
                let old_sealed: Vec<&[u8]> = old.iter().map(|o| o.1.as_slice()).collect();
                let old_keys: Vec<&str> = old.iter().map(|o| o.2.as_str()).collect();
                let new_sealed: Vec<&[u8]> = values.iter().map(|v| v.sealed.as_slice()).collect();
                let new_keys: Vec<&str> = values.iter().map(|v| v.key_id.as_str()).collect();
                let hashes: Vec<&[u8]> = values.iter().filter_map(|v| v.hash.as_deref()).collect();
                let statement = column.reseal_batch_postgres();
                let query = sqlx::query(&statement)
                    .bind(&owners)
                    .bind(&new_sealed)
                    .bind(&new_keys)
                    .bind(&old_sealed)
                    .bind(&old_keys);
                let query = if hashes.is_empty() { query } else { query.bind(&hashes) };
                query.execute(&mut *c).await?;
                // Rows changed since they were read count as done: they are under the current key now.
                return Ok((old.len() as u64, Some(ResealPosition { kind: at.kind, after: last })));
            }
            Ok((0, None))
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

    /// Every connection of the store runs without JIT compilation and with the server's own
    /// deadline (see [`session_options`]).
    #[tokio::test]
    async fn the_store_connections_run_without_jit_and_with_a_deadline() {
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!("SKIPPED: TEST_DATABASE_URL is not set");
            return;
        };
        let base: PgConnectOptions = url.parse().expect("TEST_DATABASE_URL");
        let mut c = PgConnection::connect_with(&session_options(&base, "4321")).await.expect("connect");
        let settings: (String, String, String) =
            sqlx::query_as("SELECT current_setting('jit'), current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout')")
                .fetch_one(&mut c)
                .await
                .expect("read the settings");
        assert_eq!(settings, ("off".into(), "4321ms".into(), "4321ms".into()));
    }

    #[tokio::test]
    async fn a_malformed_url_is_a_config_error() {
        let outcome = PostgresStore::connect("postgres://[not-a-host", &Config::default()).await;
        let message = outcome.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("database_url"), "{message}");
    }
}
