//! [`Tickets`] on SQLite.
//!
//! Every write that allocates seqs runs in one `BEGIN IMMEDIATE` transaction on the writer
//! connection: it takes SQLite's write lock before it reads the ticket, so no other writer (not even
//! another process on the same file) can come between the read of `last_seq` and the insert of the
//! events, and WAL readers see either none or all of the transaction.

use crate::adapters::sql::rows::attachments::{self as files, uploader_columns, AttachmentRow};
use crate::adapters::sql::rows::{self, EventRow, MarkRow, TicketRow};
use crate::adapters::sql::sqlite::SqliteStore;
use crate::domain::tickets::stream::{self, Placement, Uploads};
use crate::error::{Error, Result};
use crate::model::attachment::Attachment;
use crate::model::ids::{AgentId, TicketId, UserId};
use crate::model::ticket::{
    Appended, Author, NewMessage, NewTicket, Opened, Page, ReadMarks, Ticket, TicketEvent, TicketStatus, Transition,
};
use crate::model::time::Millis;
use crate::ports::store::tickets::Tickets;
use async_trait::async_trait;
use sqlx::SqliteConnection;
use uuid::Uuid;

/// Opens the transaction of a write that allocates seqs (see the module's doc).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// The columns of a [`TicketRow`], in its order (for `concat!`, here and in `batch`).
macro_rules! ticket_columns {
    () => {
        "id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq"
    };
}

/// `SELECT` [`ticket_columns`] `FROM tickets`, then the given clauses.
macro_rules! select_tickets {
    ($clauses:literal) => {
        concat!("SELECT ", ticket_columns!(), " FROM tickets ", $clauses)
    };
}

/// The columns of an [`EventRow`], in its order (for `concat!`, here and in `batch`).
macro_rules! event_columns {
    () => {
        "ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, agent_id, attachments, created_at"
    };
}

mod batch;

pub(super) use batch::BatchConnection;

// The lists of tickets, each read through an index: no index names `updated_at` outside resolved
// tickets (migration 0024 says why), so the short lists are read by another index and sorted.

/// A user's tickets: the unique index that starts with user_id, then sorted.
const USER_TICKETS: &str = select_tickets!("WHERE user_id = ?1 ORDER BY updated_at DESC, id DESC LIMIT ?2");

/// The queue, oldest first, in its partial index's order. Each status has a query of its own with
/// the literal status its partial index names: SQLite uses a partial index only for a query whose
/// WHERE implies the index's.
const QUEUED: &str = select_tickets!("WHERE status = 'open' ORDER BY queued_at, id LIMIT ?1");

/// Held tickets, few (agents times their capacity): their partial index, then sorted.
const ASSIGNED: &str = select_tickets!("WHERE status = 'assigned' ORDER BY updated_at DESC, id DESC LIMIT ?1");

/// Resolved tickets, which only grow: their own partial index, in this order.
const RESOLVED: &str = select_tickets!("WHERE status = 'resolved' ORDER BY updated_at DESC, id DESC LIMIT ?1");

/// Tickets changed lately (the cluster sweep): every change to a ticket appends an event whose time
/// is the ticket's new updated_at, and the events' times have an index.
const CHANGED_SINCE: &str = select_tickets!(
    "WHERE updated_at >= ?1 AND id IN (SELECT ticket_id FROM ticket_events WHERE created_at >= ?1)
     ORDER BY updated_at, id LIMIT ?2"
);

#[async_trait]
impl Tickets for SqliteStore {
    async fn open_ticket(&self, new: &NewTicket) -> Result<Opened> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        // DO NOTHING on any conflict: a repeated request (same user and client_msg_id) finds the
        // ticket below, even when it reuses the ticket id too.
        let created = sqlx::query_as::<_, TicketRow>(concat!(
            "INSERT INTO tickets (id, user_id, subject, status, agent_id, open_client_msg_id, created_at,
                                  updated_at, queued_at, last_seq)
             VALUES (?1, ?2, ?3, 'open', NULL, ?4, ?5, ?5, ?5, 2)
             ON CONFLICT DO NOTHING
             RETURNING ",
            ticket_columns!()
        ))
        .bind(new.id.0)
        .bind(new.user_id.0)
        .bind(&new.subject)
        .bind(&new.client_msg_id)
        .bind(new.created_at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = created else {
            let row = sqlx::query_as::<_, TicketRow>(select_tickets!("WHERE user_id = ?1 AND open_client_msg_id = ?2"))
                .bind(new.user_id.0)
                .bind(&new.client_msg_id)
                .fetch_optional(&mut *tx)
                .await?;
            let ticket = Ticket::try_from(row.ok_or_else(|| Error::Internal("ticket id is taken".into()))?)?;
            let events = events_after(&mut tx, ticket.id, 0, 2).await?;
            tx.commit().await?;
            return Ok(Opened { ticket, events, created: false });
        };
        let uploads = read_uploads(&mut tx, &stream::upload_ids(&new.attachments)).await?;
        // A refusal returns before the commit: dropping the transaction takes the ticket back.
        let (events, placements) = stream::opening_events(new, &uploads)?;
        for event in &events {
            insert_event(&mut tx, event).await?;
        }
        place(&mut tx, &placements).await?;
        tx.commit().await?;
        Ok(Opened { ticket: Ticket::try_from(row)?, events, created: true })
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        let mut conn = self.readers.acquire().await?;
        select_ticket(&mut conn, id).await
    }

    async fn user_tickets(&self, user: UserId, limit: u32) -> Result<Vec<Ticket>> {
        let rows =
            sqlx::query_as::<_, TicketRow>(USER_TICKETS).bind(user.0).bind(limit).fetch_all(&self.readers).await?;
        rows.into_iter().map(Ticket::try_from).collect()
    }

    async fn tickets_with_status(&self, status: TicketStatus, limit: u32) -> Result<Vec<Ticket>> {
        // Each status has a query of its own (see `QUEUED`).
        let query = match status {
            TicketStatus::Open => sqlx::query_as::<_, TicketRow>(QUEUED),
            TicketStatus::Assigned => sqlx::query_as::<_, TicketRow>(ASSIGNED),
            TicketStatus::Resolved => sqlx::query_as::<_, TicketRow>(RESOLVED),
        }
        .bind(limit);
        let rows = query.fetch_all(&self.readers).await?;
        rows.into_iter().map(Ticket::try_from).collect()
    }

    async fn agent_tickets(&self, agent: AgentId) -> Result<Vec<Ticket>> {
        let rows = sqlx::query_as::<_, TicketRow>(select_tickets!(
            "WHERE agent_id = ?1 AND status = 'assigned' ORDER BY created_at, id"
        ))
        .bind(agent.0)
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(Ticket::try_from).collect()
    }

    async fn queue_length(&self) -> Result<u64> {
        let (n,) = sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM tickets WHERE status = 'open'")
            .fetch_one(&self.readers)
            .await?;
        Ok(n.unsigned_abs())
    }

    async fn assigned_counts(&self) -> Result<Vec<(AgentId, u32)>> {
        let counts = sqlx::query_as::<_, (Uuid, i64)>(
            "SELECT agent_id, count(*) FROM tickets WHERE status = 'assigned' GROUP BY agent_id ORDER BY agent_id",
        )
        .fetch_all(&self.readers)
        .await?;
        Ok(rows::assigned_counts(counts))
    }

    async fn changed_since(&self, since: Millis, limit: u32) -> Result<Vec<Ticket>> {
        let rows =
            sqlx::query_as::<_, TicketRow>(CHANGED_SINCE).bind(since).bind(limit).fetch_all(&self.readers).await?;
        rows.into_iter().map(Ticket::try_from).collect()
    }

    async fn append_messages(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // The batch is written on a connection of its own (see `batch`); the writer connection is
        // the queue for SQLite's write lock, held and not used until the batch is committed. The
        // next batch may be written while this one's sync runs.
        let committed = {
            let _turn = self.writer.acquire().await?;
            self.batches.append(batch).await?
        };
        committed.durable().await
    }

    async fn transition(&self, t: &Transition) -> Result<Option<(Ticket, TicketEvent)>> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        // Unlisted statuses bind NULL, which `IN` never matches.
        let from = |s: TicketStatus| t.from.contains(&s).then_some(s.as_str());
        let row = sqlx::query_as::<_, TicketRow>(concat!(
            "UPDATE tickets SET status = ?2, agent_id = ?3,
                 queued_at = CASE WHEN ?2 <> 'open' THEN NULL WHEN status = 'open' THEN queued_at ELSE ?4 END,
                 last_seq = last_seq + 1, updated_at = ?4
             WHERE id = ?1 AND status IN (?5, ?6, ?7) AND (NOT ?8 OR agent_id IS ?9)
             RETURNING ",
            ticket_columns!()
        ))
        .bind(t.ticket_id.0)
        .bind(t.to.as_str())
        .bind(t.agent_id.map(|a| a.0))
        .bind(t.now)
        .bind(from(TicketStatus::Open))
        .bind(from(TicketStatus::Assigned))
        .bind(from(TicketStatus::Resolved))
        .bind(t.holder.is_some())
        .bind(t.holder.flatten().map(|a| a.0))
        .fetch_optional(&mut *tx)
        .await?;
        // No match: nothing was written, and dropping the transaction rolls it back.
        let Some(row) = row else { return Ok(None) };
        let ticket = Ticket::try_from(row)?;
        let event = stream::transition_event(t, ticket.last_seq);
        insert_event(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(Some((ticket, event)))
    }

    async fn events(&self, ticket: TicketId, page: Page, limit: u32) -> Result<Vec<TicketEvent>> {
        let mut conn = self.readers.acquire().await?;
        match page {
            Page::After(seq) => events_after(&mut conn, ticket, seq, limit).await,
            Page::Before(seq) => {
                let rows = sqlx::query_as::<_, EventRow>(concat!(
                    "SELECT ",
                    event_columns!(),
                    " FROM ticket_events WHERE ticket_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
                ))
                .bind(ticket.0)
                .bind(rows::stored_seq(seq))
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
                rows.into_iter().rev().map(TicketEvent::try_from).collect()
            }
        }
    }

    async fn mark(&self, ticket: TicketId, who: Author, delivered_seq: u64, read_seq: u64) -> Result<ReadMarks> {
        let (kind, id) = rows::stored_participant(who)?;
        let (delivered, read) = sqlx::query_as::<_, (i64, i64)>(
            "INSERT INTO ticket_marks (ticket_id, participant_kind, participant_id, delivered_seq, read_seq)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (ticket_id, participant_kind, participant_id) DO UPDATE SET
                 delivered_seq = max(delivered_seq, excluded.delivered_seq),
                 read_seq = max(read_seq, excluded.read_seq)
             RETURNING delivered_seq, read_seq",
        )
        .bind(ticket.0)
        .bind(kind)
        .bind(id)
        .bind(rows::stored_seq(delivered_seq))
        .bind(rows::stored_seq(read_seq))
        .fetch_one(&self.writer)
        .await?;
        rows::marks(delivered, read)
    }

    async fn marks(&self, ticket: TicketId) -> Result<Vec<(Author, ReadMarks)>> {
        let rows = sqlx::query_as::<_, MarkRow>(
            "SELECT participant_kind, participant_id, delivered_seq, read_seq FROM ticket_marks
             WHERE ticket_id = ?1 ORDER BY participant_kind, participant_id",
        )
        .bind(ticket.0)
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(<(Author, ReadMarks)>::try_from).collect()
    }
}

async fn select_ticket(conn: &mut SqliteConnection, id: TicketId) -> Result<Option<Ticket>> {
    let row = sqlx::query_as::<_, TicketRow>(select_tickets!("WHERE id = ?1")).bind(id.0).fetch_optional(conn).await?;
    row.map(Ticket::try_from).transpose()
}

async fn events_after(conn: &mut SqliteConnection, ticket: TicketId, seq: u64, limit: u32) -> Result<Vec<TicketEvent>> {
    let rows = sqlx::query_as::<_, EventRow>(concat!(
        "SELECT ",
        event_columns!(),
        " FROM ticket_events WHERE ticket_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    ))
    .bind(ticket.0)
    .bind(rows::stored_seq(seq))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(TicketEvent::try_from).collect()
}

/// The uploads with these ids that exist (the write lock of the caller's transaction keeps them as
/// read until it ends).
async fn read_uploads(conn: &mut SqliteConnection, ids: &[crate::model::ids::AttachmentId]) -> Result<Uploads> {
    let mut uploads = Uploads::with_capacity(ids.len());
    for id in ids {
        let row = sqlx::query_as::<_, AttachmentRow>(&files::by_id()).bind(id.0).fetch_optional(&mut *conn).await?;
        if let Some(row) = row {
            uploads.insert(*id, Attachment::try_from(row)?);
        }
    }
    Ok(uploads)
}

/// Marks placed uploads attached to their tickets.
///
/// # Errors
/// [`Error::Internal`] when one is no longer stored and its uploader's: the plan checked it under
/// the same lock, so that is a bug.
async fn place(conn: &mut SqliteConnection, placements: &[Placement]) -> Result<()> {
    for p in placements {
        let (user, agent) = uploader_columns(p.uploader);
        let placed = sqlx::query(&files::attach())
            .bind(p.id.0)
            .bind(p.ticket.0)
            .bind(user)
            .bind(agent)
            .fetch_optional(&mut *conn)
            .await?;
        if placed.is_none() {
            return Err(Error::Internal(format!("attachment {} changed under the write lock", p.id)));
        }
    }
    Ok(())
}

/// Inserts one event (a ticket's opening, first message or transition) with the statement and
/// column order of the message batches.
async fn insert_event(conn: &mut SqliteConnection, event: &TicketEvent) -> Result<()> {
    let (author_kind, author_id) = rows::stored_author(event.author);
    sqlx::query(&batch::insert_statement(1))
        .bind(event.ticket_id.0)
        .bind(rows::stored_seq(event.seq))
        .bind(event.kind.as_str())
        .bind(author_kind)
        .bind(author_id)
        .bind(&event.body)
        .bind(&event.client_msg_id)
        .bind(event.agent_id.map(|a| a.0))
        .bind(rows::stored_attachments(&event.attachments))
        .bind(event.created_at)
        .bind(rows::search_text(event))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store on a new database in a folder of its own (deleted with the returned handle).
    async fn fresh_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::adapters::sql::sqlite::tests::open(&dir).await;
        (dir, store)
    }

    #[tokio::test]
    async fn every_list_of_tickets_is_read_through_an_index() {
        let (_dir, store) = fresh_store().await;
        for query in [USER_TICKETS, QUEUED, ASSIGNED, RESOLVED, CHANGED_SINCE] {
            // (id, parent, unused, what the step does)
            let plan: Vec<String> =
                sqlx::query_as::<_, (i64, i64, i64, String)>(&format!("EXPLAIN QUERY PLAN {query}"))
                    .bind(1_i64)
                    .bind(1_i64)
                    .fetch_all(&store.readers)
                    .await
                    .expect("plan")
                    .into_iter()
                    .map(|(_, _, _, step)| step)
                    .collect();
            let read: Vec<&String> =
                plan.iter().filter(|step| step.starts_with("SCAN") || step.starts_with("SEARCH")).collect();
            assert!(!read.is_empty(), "{query}: {plan:?}");
            for step in read {
                assert!(step.contains(" USING "), "{query} reads a whole table: {plan:?}");
            }
        }
    }

    /// A fresh store with one user's ticket, opened with seq 1 and 2.
    async fn store_with_a_ticket() -> (tempfile::TempDir, SqliteStore, Opened) {
        use crate::model::phone::Phone;
        use crate::ports::store::Accounts as _;
        let (dir, store) = fresh_store().await;
        let (user, _) = store.register_user(&Phone::from_e164("+989121234567"), 1).await.expect("register");
        let opened = store
            .open_ticket(&NewTicket {
                id: TicketId::generate(),
                user_id: user.id,
                subject: "پرداخت".into(),
                body: "سلام".into(),
                attachments: Vec::new(),
                client_msg_id: "open".into(),
                created_at: 5,
            })
            .await
            .expect("open");
        (dir, store, opened)
    }

    /// `count` messages from the ticket's user, with client ids `{tag}-0`, `{tag}-1`, ...
    fn messages(ticket: &Ticket, tag: &str, count: usize) -> Vec<NewMessage> {
        (0..count)
            .map(|i| NewMessage {
                ticket_id: ticket.id,
                author: Author::User(ticket.user_id),
                client_msg_id: format!("{tag}-{i}"),
                body: format!("پیام {i}"),
                attachments: Vec::new(),
                created_at: 10 + i as Millis,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_batch_whose_caller_stops_waiting_is_stored_whole_and_the_next_continues_its_seqs() {
        let (_dir, store, opened) = store_with_a_ticket().await;
        // Polled once (the batch goes to its thread), then dropped: the caller stopped waiting.
        let first = messages(&opened.ticket, "first", 100);
        // (A zero timeout is no single poll: its timer may wait for the next tick, and poll again.)
        let polled = futures_util::FutureExt::now_or_never(store.batches.append(&first));
        assert!(polled.is_none(), "the batch was stored before its first poll returned");
        let next = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            store.append_messages(&messages(&opened.ticket, "next", 2)),
        )
        .await
        .expect("the next batch waits for no stopped one")
        .expect("the next batch");
        let seqs: Vec<u64> = next
            .iter()
            .map(|a| match a {
                Appended::Stored { events, .. } => events[0].seq,
                other => panic!("not stored: {other:?}"),
            })
            .collect();
        // seq 1 and 2 are the opening; the stopped batch took 3 to 102.
        assert_eq!(seqs, [103, 104]);
        let stored = store.events(opened.ticket.id, Page::After(0), 200).await.expect("history");
        let ids: Vec<&str> = stored.iter().filter_map(|e| e.client_msg_id.as_deref()).collect();
        assert_eq!(ids.len(), 103);
        assert!(ids[1..101].iter().zip(&first).all(|(id, m)| *id == m.client_msg_id), "{ids:?}");
        assert!(stored.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    }

    #[tokio::test]
    async fn a_repeated_message_is_answered_with_the_stored_one_and_stores_nothing() {
        let (_dir, store, opened) = store_with_a_ticket().await;
        let batch = messages(&opened.ticket, "m", 3);
        let first = store.append_messages(&batch).await.expect("first");
        let again = store.append_messages(&batch[1..]).await.expect("again");
        for (a, b) in first[1..].iter().zip(&again) {
            match (a, b) {
                (Appended::Stored { events, .. }, Appended::Duplicate(original)) => {
                    assert_eq!(events[0].seq, original.seq)
                }
                other => panic!("{other:?}"),
            }
        }
        let stored = store.events(opened.ticket.id, Page::After(0), 100).await.expect("history");
        assert_eq!(stored.len(), 5);
        let ticket = store.ticket(opened.ticket.id).await.expect("read").expect("ticket");
        assert_eq!(ticket.last_seq, 5);
    }
}
