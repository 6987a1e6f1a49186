//! The SQL backends of the storage ports: SQLite (the embedded, zero-setup default) and Postgres
//! (production), with the row conversions they share.

pub mod postgres;
mod rows;
pub(crate) mod sqlite;
mod statements;

use crate::config::Config;
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
