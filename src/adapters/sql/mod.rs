//! The SQL backends of the storage ports: SQLite (the embedded, zero-setup default) and Postgres
//! (production), with the row conversions they share.

pub mod postgres;
mod rows;
pub(crate) mod sqlite;
mod statements;

use crate::config::Config;
use crate::error::Error;
use crate::ports::store::Store;
use std::sync::Arc;

/// Connects to the configured backend (Postgres when `database_url` is set, else SQLite at
/// `sqlite_path`, creating the file and its folder) and runs pending migrations.
///
/// # Errors
/// The backend is unreachable, or a migration fails.
pub async fn connect(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    match &config.database_url {
        Some(url) => Ok(Arc::new(postgres::PostgresStore::connect(&url.0, config).await?)),
        None => Ok(Arc::new(sqlite::SqliteStore::connect(&config.sqlite_path, config).await?)),
    }
}

/// The data keys of the configured backend (see [`crate::adapters::vault::load`]).
///
/// # Errors
/// As [`crate::adapters::vault::load`].
pub fn vault(config: &Config) -> anyhow::Result<crate::adapters::vault::Vault> {
    let sqlite = config.database_url.is_none().then_some(config.sqlite_path.as_path());
    crate::adapters::vault::load(config, sqlite)
}

/// Another account holds the number.
const NUMBER_TAKEN: Error = Error::Conflict("the number belongs to another account");

/// A write that failed because another account holds the number is `conflict`; any other failure
/// as [`From<sqlx::Error>`] says.
fn number_taken_or(e: sqlx::Error) -> Error {
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => NUMBER_TAKEN,
        _ => Error::from(e),
    }
}

/// The outcome of a write, or `None` when it broke a unique constraint (a name already taken).
fn unless_taken<T>(result: std::result::Result<T, sqlx::Error>) -> crate::error::Result<Option<T>> {
    match result {
        Ok(done) => Ok(Some(done)),
        Err(e) if e.as_database_error().is_some_and(|db| db.is_unique_violation()) => Ok(None),
        Err(e) => Err(Error::from(e)),
    }
}

/// What a storage failure means for a client: the backend out of reach (a pool timeout, a dropped
/// or terminated connection, a statement timeout, SQLite still busy) is `unavailable`, anything
/// else an internal error.
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => {
                tracing::warn!(error = %e, "storage unavailable");
                Self::Unavailable
            }
            other => {
                // A terminated backend (admin shutdown, failover) surfaces as a database error
                // with a connection-class SQLSTATE (08xxx, 57Pxx): that is unavailability, not a bug.
                // So is a statement cut by the server's timeout (57014), a lock not granted within its
                // lock_timeout (55P03), and SQLite still busy or locked after its busy timeout
                // (primary result codes 5 and 6; SQLite's codes are short numbers, Postgres's are five
                // characters).
                if let sqlx::Error::Database(db) = &other {
                    if let Some(code) = db.code() {
                        let sqlite_busy =
                            code.len() < 5 && code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6));
                        if code.starts_with("08")
                            || code.starts_with("57P")
                            || ["57014", "55P03"].contains(&code.as_ref())
                            || sqlite_busy
                        {
                            tracing::warn!(error = %other, "storage unavailable");
                            return Self::Unavailable;
                        }
                    }
                }
                Self::Internal(other.to_string())
            }
        }
    }
}
