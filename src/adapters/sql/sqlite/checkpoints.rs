//! Copying the WAL into the database file on a connection of its own.
//!
//! By default SQLite checkpoints on the connection that commits: once the WAL holds 1,000 pages, the
//! writer copies them into the database file and fsyncs it before it takes the next write. Under a
//! steady chat that was a fifth of the writer's time and a stall every second commit, and the writer
//! is the one thing every message waits for. Here a task copies committed pages in the background
//! every 250 ms (passive checkpoints never block the writer or readers), so the writer's own
//! checkpoint is only a backstop: it runs when the WAL passes [`WRITER_CHECKPOINT_PAGES`], which
//! happens when this task falls behind, and under a load without pauses, where the WAL can start
//! over only after a checkpoint that ends between two commits.
//!
//! A bigger WAL also means fewer copies: a page that many commits change (a ticket's row, the hot
//! leaves of the message indexes) is copied once per checkpoint, not once per commit.

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection as _, SqliteConnection};
use std::time::Duration;
use tokio_util::task::AbortOnDropHandle;

/// WAL pages after which the committing connection checkpoints by itself (SQLite's
/// `wal_autocheckpoint`; about 160 MB with 4 KiB pages, the most the WAL file grows to). A message
/// writes about four pages into the WAL, so at 8,000 messages a second a backstop of 10,000 pages
/// would fire several times a second, each time inside a batch that every waiting message waits
/// for, whenever this task's checkpoint falls behind the disk (at 10,000 user messages a second on
/// a slow disk: 6,300 to 6,900 messages a second stored with 10,000 pages, 8,600 to 9,700 with
/// 40,000).
pub(super) const WRITER_CHECKPOINT_PAGES: u32 = 40_000;

/// Pause between two checkpoints. Each copies what was committed before it started; under a
/// steady chat at 7,000 messages a second that left nothing behind (pages a reader's older snapshot
/// still needs wait for the next one anyway).
const PAUSE: Duration = Duration::from_millis(250);

/// Pause after a failed checkpoint (logged once per failure), so a broken disk does not flood the log.
const FAILED_PAUSE: Duration = Duration::from_secs(1);

/// Opens the checkpointing connection and starts its task, which stops when the handle is dropped.
///
/// # Errors
/// The connection cannot be opened.
pub(super) async fn start(options: &SqliteConnectOptions) -> sqlx::Result<AbortOnDropHandle<()>> {
    let conn = SqliteConnection::connect_with(options).await?;
    Ok(AbortOnDropHandle::new(tokio::spawn(run(conn))))
}

async fn run(mut conn: SqliteConnection) {
    loop {
        let pause = match checkpoint(&mut conn).await {
            Ok(pending) => {
                metrics::gauge!(crate::metrics::SQLITE_WAL_PENDING).set(pending as f64);
                PAUSE
            }
            Err(e) => {
                tracing::warn!(error = %e, "background checkpoint of the sqlite WAL failed; the writer checkpoints by itself");
                FAILED_PAUSE
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// Copies what it may of the WAL into the database file; the WAL pages it could not copy (those a
/// reader's older snapshot still needs, or committed while it ran).
async fn checkpoint(conn: &mut SqliteConnection) -> sqlx::Result<i64> {
    // (busy, pages in the WAL, pages copied into the database file)
    let (_, in_wal, copied) =
        sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(conn).await?;
    Ok(in_wal.saturating_sub(copied).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_a_reader_still_needs_stay_pending_until_its_snapshot_ends() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::adapters::sql::sqlite::tests::open(&dir).await;
        let path = dir.path().join("nested/folder/hub.sqlite");
        let mut own = SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.expect("connect");
        let mut reader = store.readers.acquire().await.expect("a reader");
        let pinned = sqlx::query("BEGIN; SELECT count(*) FROM hub_keys").execute(&mut *reader).await;
        assert!(pinned.is_ok(), "{pinned:?}");
        let written = sqlx::query("INSERT INTO hub_keys (name, value) VALUES ('k', randomblob(100000))")
            .execute(&store.writer)
            .await;
        assert!(written.is_ok(), "{written:?}");
        let pending = checkpoint(&mut own).await.expect("checkpoint");
        assert!(pending > 0, "the reader's snapshot let everything be copied");
        let ended = sqlx::query("COMMIT").execute(&mut *reader).await;
        assert!(ended.is_ok(), "{ended:?}");
        assert_eq!(checkpoint(&mut own).await.expect("checkpoint"), 0);
    }
}
