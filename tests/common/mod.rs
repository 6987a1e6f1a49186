//! Shared by the integration tests: a fresh, throw-away database per test, on every backend.
//!
//! SQLite is always tested. Postgres is tested when `TEST_DATABASE_URL` names a server (any database
//! on it: each test creates its own `hub_test_<uuid>` database there and drops it afterwards). If
//! the variable is set but the server cannot be reached, the tests panic: a Postgres run that quietly
//! tested only SQLite would be worse than a failed one.
// Not every test file uses every helper, and `pub` here is the helpers' surface for the test
// files, not a library API.
#![allow(dead_code, unreachable_pub)]

use anapars_hub::config::Secret;
use anapars_hub::Config;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use std::time::Duration;

/// The variable naming the Postgres server to test against.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";
/// The data keys of every Postgres test database (SQLite ones keep theirs beside the file).
pub const TEST_DATA_KEYS: &str = "test:dGVzdCBkYXRhIGtleSAtIG5ldmVyIGluIHVzZSEhISE=";

/// How long creating or dropping a test database may take before the test gives up.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);

/// A fresh database and a [`Config`] pointing at it. Dropping it deletes the database.
pub struct TestDatabase {
    /// `sqlite` or `postgres`, as [`anapars_hub::ports::store::Store::backend`] names it.
    pub backend: &'static str,
    /// `Config::default()` with `sqlite_path` or `database_url` set to this database.
    pub config: Config,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The temp dir holding the SQLite file; deleted when dropped.
    Sqlite(tempfile::TempDir),
    /// The database `name` on the server of `admin_url`.
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A new SQLite database in a temp dir of its own. The file does not exist yet, in a folder
    /// that does not exist either: connecting must create both.
    pub fn sqlite() -> Self {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("cannot create a temp dir for the test database: {e}"),
        };
        let config = Config { sqlite_path: dir.path().join("data").join("hub.sqlite"), ..Config::default() };
        Self { backend: "sqlite", config, cleanup: Cleanup::Sqlite(dir) }
    }

    /// A new, empty database `hub_test_<uuid>` on the server of `admin_url`.
    ///
    /// # Panics
    /// The server cannot be reached or refuses to create the database.
    pub async fn postgres(admin_url: &str) -> Self {
        let name = format!("hub_test_{}", uuid::Uuid::new_v4().simple());
        let created = tokio::time::timeout(ADMIN_TIMEOUT, async {
            let mut admin = PgConnection::connect(admin_url).await?;
            admin.execute(format!(r#"CREATE DATABASE "{name}""#).as_str()).await?;
            admin.close().await
        })
        .await;
        match created {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!(
                "\n\n{TEST_DATABASE_URL} is set, but creating a test database on that Postgres server failed: {e}\n\
                 Start Postgres (or fix the URL), or unset {TEST_DATABASE_URL} to test SQLite only.\n\n"
            ),
            Err(_) => panic!(
                "\n\n{TEST_DATABASE_URL} is set, but the Postgres server did not answer within {ADMIN_TIMEOUT:?}.\n\
                 Start Postgres (or fix the URL), or unset {TEST_DATABASE_URL} to test SQLite only.\n\n"
            ),
        }
        let config = Config {
            database_url: Some(Secret(with_database(admin_url, &name))),
            data_keys: Some(Secret(TEST_DATA_KEYS.to_owned())),
            ..Config::default()
        };
        Self { backend: "postgres", config, cleanup: Cleanup::Postgres { admin_url: admin_url.to_owned(), name } }
    }

    /// The name of the Postgres database, if this is one.
    pub fn postgres_name(&self) -> Option<&str> {
        match &self.cleanup {
            Cleanup::Postgres { name, .. } => Some(name),
            Cleanup::Sqlite(_) => None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            return; // The TempDir deletes itself.
        };
        // Drop cannot await, and the test's runtime may be the one running this drop: a thread with a
        // runtime of its own does the async work. FORCE ends connections a leaked pool still holds.
        let (admin_url, drop_sql) = (admin_url.clone(), format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#));
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let work = async {
                    let mut admin = PgConnection::connect(&admin_url).await?;
                    admin.execute(drop_sql.as_str()).await?;
                    admin.close().await
                };
                match tokio::time::timeout(ADMIN_TIMEOUT, work).await {
                    Ok(outcome) => outcome.map_err(|e| e.to_string()),
                    Err(_) => Err("timed out".to_owned()),
                }
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {name}: {e}"),
            Err(_) => eprintln!("warning: the thread dropping test database {name} panicked"),
        }
    }
}

/// The Postgres server to test against, if `TEST_DATABASE_URL` is set (and not empty).
pub fn postgres_admin_url() -> Option<String> {
    std::env::var(TEST_DATABASE_URL).ok().filter(|url| !url.trim().is_empty())
}

/// The Postgres server to test against, or `None` (with a note) when `TEST_DATABASE_URL` is unset.
pub fn postgres_or_skip(test: &str) -> Option<String> {
    let url = postgres_admin_url();
    if url.is_none() {
        eprintln!("{test}: skipped, {TEST_DATABASE_URL} is not set");
    }
    url
}

/// Applies `backend`'s migrations up to `version` on `conn`: the database as the release whose last
/// migration that was left it.
pub async fn migrate_up_to<C: sqlx::migrate::Migrate>(conn: &mut C, backend: &str, version: i64) {
    let path = format!("migrations/{backend}");
    let migrator = sqlx::migrate::Migrator::new(std::path::Path::new(&path)).await.expect("migrations");
    conn.ensure_migrations_table().await.expect("migrations table");
    for m in migrator.iter().filter(|m| m.version <= version) {
        conn.apply(m).await.expect("an earlier migration");
    }
}

/// Every backend to test: SQLite always, Postgres when `TEST_DATABASE_URL` is set, each a fresh
/// database.
///
/// # Panics
/// `TEST_DATABASE_URL` is set but its server cannot be reached.
pub async fn test_databases() -> Vec<TestDatabase> {
    let mut databases = vec![TestDatabase::sqlite()];
    if let Some(url) = postgres_admin_url() {
        databases.push(TestDatabase::postgres(&url).await);
    }
    databases
}

/// `url` with its database (the path) replaced by `name`, keeping user, host, port and parameters.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}
/// Deletes the account of `token` through the hub at `base` with its two steps (the notice, then
/// the confirmation it carries); the confirmation's HTTP status.
pub async fn delete_account(http: &reqwest::Client, base: &str, token: &str) -> u16 {
    let notice: serde_json::Value =
        http.post(format!("{base}/v1/me/deletion")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    let done = http
        .post(format!("{base}/v1/me/deletion/confirm"))
        .bearer_auth(token)
        .json(&serde_json::json!({"confirmation": notice["confirmation"]}))
        .send()
        .await
        .unwrap();
    done.status().as_u16()
}

pub mod cluster;
pub mod hub;
pub mod netns;
pub mod push;
pub mod redis_cluster;
pub mod relay;
pub mod s3;
pub mod webpush;
