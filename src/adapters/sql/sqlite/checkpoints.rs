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
//!
//! SQLite reuses the `-wal` file from its start once everything in it is copied, but never makes it
//! smaller: after a busy spell it would keep the size that spell grew it to (up to about 160 MB)
//! for good. So once nothing was written for [`QUIET_ROUNDS`] rounds and everything is copied, the
//! task empties the file (`TRUNCATE`). It does that without waiting for anyone: with no busy
//! handler on its connection, a checkpoint that would have to wait for a reader or a writer gives
//! up at once and is tried again after the next quiet spell, so it never holds the hub's writer
//! back.

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

/// Rounds in a row with nothing new in the WAL and nothing left to copy after which the `-wal` file
/// is emptied: a second of quiet.
const QUIET_ROUNDS: u32 = 4;

/// Opens the checkpointing connection and starts its task, which stops when the handle is dropped.
///
/// # Errors
/// The connection cannot be opened.
pub(super) async fn start(options: &SqliteConnectOptions) -> sqlx::Result<AbortOnDropHandle<()>> {
    // Never waits: see the module's docs.
    let conn = SqliteConnection::connect_with(&options.clone().busy_timeout(Duration::ZERO)).await?;
    Ok(AbortOnDropHandle::new(tokio::spawn(run(conn))))
}

async fn run(mut conn: SqliteConnection) {
    let mut quiet = Quiet::default();
    loop {
        let pause = match round(&mut conn, &mut quiet).await {
            Ok(()) => PAUSE,
            Err(e) => {
                tracing::warn!(error = %e, "background checkpoint of the sqlite WAL failed; the writer checkpoints by itself");
                FAILED_PAUSE
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// One round: a passive checkpoint, then, after a quiet spell, emptying the `-wal` file.
async fn round(conn: &mut SqliteConnection, quiet: &mut Quiet) -> sqlx::Result<()> {
    let wal = checkpoint(conn).await?;
    metrics::gauge!(crate::metrics::SQLITE_WAL_PENDING).set(wal.pending() as f64);
    if quiet.after(wal) {
        // Busy (a reader's snapshot, a writer that just began) is not a failure: the next quiet
        // spell tries again.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *conn).await {
            tracing::debug!(error = %e, "the sqlite WAL was not emptied; trying again after the next quiet spell");
        }
    }
    Ok(())
}

/// What a passive checkpoint left: the frames in the WAL and how many of them are copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wal {
    frames: i64,
    copied: i64,
}

impl Wal {
    /// The frames it could not copy (those a reader's older snapshot still needs, or committed
    /// while it ran).
    fn pending(self) -> i64 {
        self.frames.saturating_sub(self.copied).max(0)
    }
}

/// Counts the rounds in a row that found the WAL unchanged and wholly copied.
#[derive(Default)]
struct Quiet {
    last: Option<Wal>,
    rounds: u32,
}

impl Quiet {
    /// Notes a round's checkpoint; true when the `-wal` file is to be emptied now.
    fn after(&mut self, wal: Wal) -> bool {
        let unchanged = self.last == Some(wal) && wal.frames > 0 && wal.pending() == 0;
        self.last = Some(wal);
        self.rounds = if unchanged { self.rounds + 1 } else { 0 };
        if self.rounds >= QUIET_ROUNDS {
            // Emptied, the next round sees no frames and counts from nothing again.
            self.rounds = 0;
            return true;
        }
        false
    }
}

/// Copies what it may of the WAL into the database file.
async fn checkpoint(conn: &mut SqliteConnection) -> sqlx::Result<Wal> {
    // (busy, frames in the WAL, frames copied into the database file)
    let (_, frames, copied) =
        sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(conn).await?;
    Ok(Wal { frames, copied })
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
        let pending = checkpoint(&mut own).await.expect("checkpoint").pending();
        assert!(pending > 0, "the reader's snapshot let everything be copied");
        let ended = sqlx::query("COMMIT").execute(&mut *reader).await;
        assert!(ended.is_ok(), "{ended:?}");
        assert_eq!(checkpoint(&mut own).await.expect("checkpoint").pending(), 0);
    }

    #[test]
    fn the_file_is_emptied_after_a_quiet_second_and_not_while_anything_changes() {
        let mut quiet = Quiet::default();
        let busy = [Wal { frames: 10, copied: 10 }, Wal { frames: 20, copied: 15 }, Wal { frames: 30, copied: 30 }];
        assert!(busy.into_iter().all(|wal| !quiet.after(wal)), "emptied while writes came");
        let still = Wal { frames: 30, copied: 30 };
        let rounds: Vec<bool> = (0..QUIET_ROUNDS).map(|_| quiet.after(still)).collect();
        assert_eq!(rounds.iter().filter(|&&emptied| emptied).count(), 1);
        assert_eq!(rounds.last(), Some(&true), "emptied once the quiet spell was long enough");
        // A reader's snapshot keeps frames uncopied: nothing to empty however long it lasts.
        let held = Wal { frames: 30, copied: 25 };
        assert!((0..10).all(|_| !quiet.after(held)));
        // An empty WAL has nothing to empty.
        let empty = Wal { frames: 0, copied: 0 };
        assert!((0..10).all(|_| !quiet.after(empty)));
    }

    #[tokio::test]
    async fn a_quiet_store_empties_its_wal_file_and_keeps_what_was_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::adapters::sql::sqlite::tests::open(&dir).await;
        let path = dir.path().join("nested/folder/hub.sqlite");
        let wal_file = dir.path().join("nested/folder/hub.sqlite-wal");
        for i in 0..20 {
            let written = sqlx::query("INSERT INTO hub_keys (name, value) VALUES (?1, randomblob(100000))")
                .bind(format!("k{i}"))
                .execute(&store.writer)
                .await;
            assert!(written.is_ok(), "{written:?}");
        }
        let grown = std::fs::metadata(&wal_file).expect("the -wal file").len();
        assert!(grown > 1_000_000, "the WAL did not grow: {grown} bytes");
        let mut own = SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.expect("connect");
        let mut quiet = Quiet::default();
        for _ in 0..=QUIET_ROUNDS {
            round(&mut own, &mut quiet).await.expect("a round");
        }
        assert_eq!(std::fs::metadata(&wal_file).expect("the -wal file").len(), 0, "not emptied");
        let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM hub_keys WHERE name LIKE 'k%'")
            .fetch_one(&store.writer)
            .await
            .expect("count");
        assert_eq!(kept, 20);
    }
}
