//! [`Tickets`] on Postgres (one file: the message batch, the statement it runs and the reads that
//! share its row shapes belong together).
//!
//! Seqs are allocated from the ticket's `last_seq`, which every writer of an event moves in the
//! transaction that stores the event: a transition increments it in its guarded `UPDATE`; a batch of
//! messages writes each ticket's new `last_seq` only where the row still holds the one the batch was
//! planned with, so two writers never hand out one seq, and a plan made against a ticket that changed
//! since is made again.
//!
//! `ticket_events` is partitioned by month (migration 0023), and a partitioned table's unique keys
//! must hold the month's column: the database does not refuse a second event with one seq, or a
//! second message with one client id, in another month. The check on `last_seq` is what keeps both
//! unique: a message stored by someone else since the batch looked for its duplicates moved its
//! ticket's `last_seq`. Reads by ticket and seq (a conversation's pages, resuming, exports) cannot
//! name a month; they probe each month's primary key index, which finds nothing at once in the months
//! without the ticket.
//!
//! A batch without uploads is two statements whatever its size, each its own transaction (so its
//! own round trip, the commit included): one read of the tickets and of the messages stored before
//! under the batch's keys, then one write of every new event and changed ticket. When the node
//! knows every ticket of the batch from its last batch (see [`known`](super::known)), the read is
//! left out and the write looks for the stored messages itself: one statement. A batch that
//! carries uploads, and the messages of a ticket that kept changing under a batch, are stored in one
//! transaction that locks the tickets (`FOR UPDATE`) and the uploads first. Every statement takes
//! its rows as arrays (`UNNEST`), and the decisions in between are made in memory by
//! [`stream::plan`].

use crate::adapters::sql::postgres::known::KnownTickets;
use crate::adapters::sql::postgres::search::search_vector;
use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::attachments::{self as files, uploader_columns, AttachmentRow};
use crate::adapters::sql::rows::{self, BatchRead, BatchReadRow, EventRow, MarkRow, TicketRow};
use crate::adapters::sql::statements::postgres;
use crate::domain::tickets::stream::{self, MessageKey, Placement, Uploads};
use crate::error::{Error, Result};
use crate::model::attachment::Attachment;
use crate::model::ids::AttachmentId;
use crate::model::ids::{AgentId, TicketId, UserId};
use crate::model::ticket::{
    Appended, Author, NewMessage, NewTicket, Opened, Page, ReadMarks, Ticket, TicketEvent, TicketStatus, Transition,
};
use crate::model::time::Millis;
use crate::ports::store::tickets::Tickets;
use async_trait::async_trait;
use sqlx::postgres::PgConnection;
use sqlx::{Connection as _, Row as _};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

#[async_trait]
impl Tickets for PostgresStore {
    async fn open_ticket(&self, new: &NewTicket) -> Result<Opened> {
        self.call(async |c| {
            let mut tx = c.begin().await?;
            // DO NOTHING on any conflict: a racing repeat of the request waits for the first one's
            // commit and then does nothing; its next statement sees the committed ticket. A repeat
            // that reuses the ticket id too is found the same way.
            let created = sqlx::query_as::<_, TicketRow>(
                "INSERT INTO tickets (id, user_id, subject, status, agent_id, open_client_msg_id, created_at,
                                      updated_at, queued_at, last_seq)
                 VALUES ($1, $2, $3, 'open', NULL, $4, $5, $5, $5, 2)
                 ON CONFLICT DO NOTHING
                 RETURNING id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq",
            )
            .bind(new.id.0)
            .bind(new.user_id.0)
            .bind(&new.subject)
            .bind(&new.client_msg_id)
            .bind(new.created_at)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = created else {
                let row = sqlx::query_as::<_, TicketRow>(
                    "SELECT id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq
                     FROM tickets WHERE user_id = $1 AND open_client_msg_id = $2",
                )
                .bind(new.user_id.0)
                .bind(&new.client_msg_id)
                .fetch_optional(&mut *tx)
                .await?;
                let ticket = Ticket::try_from(row.ok_or_else(|| Error::Internal("ticket id is taken".into()))?)?;
                let since = ticket.created_at.saturating_sub(CLOCK_SKEW_MS);
                let events = events_page(&mut tx, ticket.id, Page::After(0), since, 2).await?;
                tx.commit().await?;
                return Ok(Opened { ticket, events, created: false });
            };
            let uploads = lock_uploads(&mut tx, &stream::upload_ids(&new.attachments)).await?;
            // A refusal returns before the commit: dropping the transaction takes the ticket back.
            let (events, placements) = stream::opening_events(new, &uploads)?;
            insert_events(&mut tx, &events).await?;
            place(&mut tx, &placements).await?;
            tx.commit().await?;
            let ticket = Ticket::try_from(row)?;
            self.known.learn([&ticket]);
            Ok(Opened { ticket, events, created: true })
        })
        .await
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, TicketRow>(
                "SELECT id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq
                 FROM tickets WHERE id = $1",
            )
            .bind(id.0)
            .fetch_optional(c)
            .await?;
            row.map(Ticket::try_from).transpose()
        })
        .await
    }

    async fn user_tickets(&self, user: UserId, limit: u32) -> Result<Vec<Ticket>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, TicketRow>(
                "SELECT id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq
                 FROM tickets WHERE user_id = $1 ORDER BY updated_at DESC, id DESC LIMIT $2",
            )
            .bind(user.0)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await?;
            rows.into_iter().map(Ticket::try_from).collect()
        })
        .await
    }

    async fn tickets_with_status(&self, status: TicketStatus, limit: u32) -> Result<Vec<Ticket>> {
        self.call(async |c| {
            // The queue has a query of its own, with the literal status that its partial index names
            // (a bound parameter would not match the index's predicate in a generic plan).
            let query = match status {
                TicketStatus::Open => sqlx::query_as::<_, TicketRow>(
                    "SELECT id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq
                     FROM tickets WHERE status = 'open' ORDER BY queued_at, id LIMIT $1",
                )
                .bind(i64::from(limit)),
                // Held tickets are few (agents times their capacity): their partial index, then sorted.
                TicketStatus::Assigned => sqlx::query_as::<_, TicketRow>(
                    "SELECT id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq
                     FROM tickets WHERE status = 'assigned' ORDER BY updated_at DESC, id DESC LIMIT $1",
                )
                .bind(i64::from(limit)),
                // Resolved tickets only grow: their own index, by resolved_at, which equals updated_at
                // while a ticket is resolved (migration 0008 says why updated_at has no index).
                TicketStatus::Resolved => sqlx::query_as::<_, TicketRow>(
                    "SELECT id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq
                     FROM tickets WHERE status = 'resolved' ORDER BY resolved_at DESC, id DESC LIMIT $1",
                )
                .bind(i64::from(limit)),
            };
            let rows = query.fetch_all(c).await?;
            rows.into_iter().map(Ticket::try_from).collect()
        })
        .await
    }

    async fn agent_tickets(&self, agent: AgentId) -> Result<Vec<Ticket>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, TicketRow>(
                "SELECT id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq
                 FROM tickets WHERE agent_id = $1 AND status = 'assigned' ORDER BY created_at, id",
            )
            .bind(agent.0)
            .fetch_all(c)
            .await?;
            rows.into_iter().map(Ticket::try_from).collect()
        })
        .await
    }

    async fn queue_length(&self) -> Result<u64> {
        self.call(async |c| {
            let (n,) =
                sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM tickets WHERE status = 'open'").fetch_one(c).await?;
            Ok(n.unsigned_abs())
        })
        .await
    }

    async fn assigned_counts(&self) -> Result<Vec<(AgentId, u32)>> {
        self.call(async |c| {
            let counts = sqlx::query_as::<_, (Uuid, i64)>(
                "SELECT agent_id, count(*) FROM tickets WHERE status = 'assigned' GROUP BY agent_id ORDER BY agent_id",
            )
            .fetch_all(c)
            .await?;
            Ok(rows::assigned_counts(counts))
        })
        .await
    }

    async fn changed_since(&self, since: Millis, limit: u32) -> Result<Vec<Ticket>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, TicketRow>(
                // Every change to a ticket appends an event whose time is the ticket's new updated_at,
                // and the events' times have a BRIN index, where an index on updated_at would cost
                // every message batch an index write per ticket (migration 0008). So the events of
                // the window name the tickets, each then looked up by its key through `LATERAL`:
                // written as `id IN (events)`, Postgres plans a scan of every ticket ever opened once
                // the window holds tens of thousands of events (60 ms a page with a million
                // tickets, every second on every node), where this costs what the window holds.
                "SELECT t.id, t.user_id, t.subject, t.status, t.agent_id, t.created_at, t.updated_at, t.queued_at,
                        t.last_seq
                 FROM (SELECT DISTINCT ticket_id FROM ticket_events WHERE created_at >= $1) AS e,
                      LATERAL (SELECT id, user_id, subject, status, agent_id, created_at, updated_at, queued_at,
                                      last_seq
                               FROM tickets WHERE id = e.ticket_id AND updated_at >= $1 LIMIT 1) AS t
                 ORDER BY t.updated_at, t.id LIMIT $2",
            )
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await?;
            let tickets: Vec<Ticket> = rows.into_iter().map(Ticket::try_from).collect::<Result<_>>()?;
            // The cluster's sweep reads these after a lost publication: the states the node did not
            // hear of, as stored.
            for ticket in &tickets {
                self.known.stored_elsewhere(ticket);
            }
            Ok(tickets)
        })
        .await
    }

    async fn append_messages(&self, batch: &[NewMessage]) -> Result<Vec<Appended>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        if batch.iter().any(|m| !m.attachments.is_empty()) {
            return self.write_call(|| async |c: &mut PgConnection| append_locked(c, batch).await).await;
        }
        self.write_call(|| async |c: &mut PgConnection| append_checked(c, batch, &self.known).await).await
    }

    async fn transition(&self, t: &Transition) -> Result<Option<(Ticket, TicketEvent)>> {
        let from: Vec<&str> = t.from.iter().map(|s| s.as_str()).collect();
        self.call(async |c| {
            let mut tx = c.begin().await?;
            // The guard is the WHERE: a racing transition waits for this row lock, re-checks the
            // guard against the committed row, and matches nothing if this one changed it.
            let row = sqlx::query_as::<_, TicketRow>(
                "UPDATE tickets SET status = $2, agent_id = $3,
                     queued_at = CASE WHEN $2 <> 'open' THEN NULL WHEN status = 'open' THEN queued_at ELSE $4 END,
                     resolved_at = CASE WHEN $2 = 'resolved' THEN $4 END,
                     last_seq = last_seq + 1, updated_at = $4
                 WHERE id = $1 AND status = ANY($5) AND (NOT $6 OR agent_id IS NOT DISTINCT FROM $7)
                 RETURNING id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq",
            )
            .bind(t.ticket_id.0)
            .bind(t.to.as_str())
            .bind(t.agent_id.map(|a| a.0))
            .bind(t.now)
            .bind(&from)
            .bind(t.holder.is_some())
            .bind(t.holder.flatten().map(|a| a.0))
            .fetch_optional(&mut *tx)
            .await?;
            // No match: nothing was written, and dropping the transaction rolls it back.
            let Some(row) = row else { return Ok(None) };
            let ticket = Ticket::try_from(row)?;
            let event = stream::transition_event(t, ticket.last_seq);
            insert_events(&mut tx, std::slice::from_ref(&event)).await?;
            tx.commit().await?;
            self.known.learn([&ticket]);
            Ok(Some((ticket, event)))
        })
        .await
    }

    /// Reads only the months from a day before the ticket was opened (see [`CLOCK_SKEW_MS`]):
    /// a conversation's page or a resume otherwise probes every month kept, 41 partitions after
    /// three years (see the README's *Ticket history by month*). The opening time never changes, so
    /// it comes from the tickets this node knows, else from the ticket's row.
    async fn events(&self, ticket: TicketId, page: Page, limit: u32) -> Result<Vec<TicketEvent>> {
        let known = self.known.opened(ticket);
        self.call(async |c| {
            // No ticket, no events: they go with it.
            let Some(since) = events_since(c, ticket, known).await? else { return Ok(Vec::new()) };
            events_page(c, ticket, page, since, limit).await
        })
        .await
    }

    async fn mark(&self, ticket: TicketId, who: Author, delivered_seq: u64, read_seq: u64) -> Result<ReadMarks> {
        let (kind, id) = rows::stored_participant(who)?;
        self.call(async |c| {
            let (delivered, read) = sqlx::query_as::<_, (i64, i64)>(
                "INSERT INTO ticket_marks (ticket_id, participant_kind, participant_id, delivered_seq, read_seq)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (ticket_id, participant_kind, participant_id) DO UPDATE SET
                     delivered_seq = GREATEST(ticket_marks.delivered_seq, EXCLUDED.delivered_seq),
                     read_seq = GREATEST(ticket_marks.read_seq, EXCLUDED.read_seq)
                 RETURNING delivered_seq, read_seq",
            )
            .bind(ticket.0)
            .bind(kind)
            .bind(id)
            .bind(rows::stored_seq(delivered_seq))
            .bind(rows::stored_seq(read_seq))
            .fetch_one(c)
            .await?;
            rows::marks(delivered, read)
        })
        .await
    }

    async fn marks(&self, ticket: TicketId) -> Result<Vec<(Author, ReadMarks)>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, MarkRow>(
                "SELECT participant_kind, participant_id, delivered_seq, read_seq FROM ticket_marks
                 WHERE ticket_id = $1 ORDER BY participant_kind, participant_id",
            )
            .bind(ticket.0)
            .fetch_all(c)
            .await?;
            rows.into_iter().map(<(Author, ReadMarks)>::try_from).collect()
        })
        .await
    }

    fn stored_elsewhere(&self, ticket: &Ticket) {
        self.known.stored_elsewhere(ticket);
    }
}

/// A page of `ticket`'s events (the first `limit` after a seq, or the last `limit` before one, in
/// seq order), among those stamped at or after `since`, which prunes the months before it.
async fn events_page(
    c: &mut PgConnection,
    ticket: TicketId,
    page: Page,
    since: Millis,
    limit: u32,
) -> Result<Vec<TicketEvent>> {
    macro_rules! select_events {
        ($rest:literal) => {
            concat!(
                "SELECT ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, agent_id, attachments,
                        created_at
                 FROM ticket_events WHERE ticket_id = $1 AND created_at >= $4 AND ",
                $rest
            )
        };
    }
    let (sql, seq) = match page {
        Page::After(seq) => (select_events!("seq > $2 ORDER BY seq LIMIT $3"), seq),
        Page::Before(seq) => (select_events!("seq < $2 ORDER BY seq DESC LIMIT $3"), seq),
    };
    let rows = sqlx::query_as::<_, EventRow>(sql)
        .bind(ticket.0)
        .bind(rows::stored_seq(seq))
        .bind(i64::from(limit))
        .bind(since)
        .fetch_all(c)
        .await?;
    let mut events = rows.into_iter().map(TicketEvent::try_from).collect::<Result<Vec<_>>>()?;
    if matches!(page, Page::Before(_)) {
        events.reverse();
    }
    Ok(events)
}

/// How many times a batch is read, planned and written with its tickets checked before the
/// messages of tickets that changed every time are stored under row locks instead.
const CHECKED_ROUNDS: usize = 3;

/// Stores a batch without uploads in two statements, each its own transaction: one read of its
/// tickets and of the messages stored before under its keys (one snapshot), then one write of the
/// planned events and ticket states that applies a ticket's part only where the ticket's `last_seq`
/// is still the one read. Every event a writer adds to a ticket moves its `last_seq` in the same
/// transaction, so an unchanged `last_seq` means the plan (seqs, duplicates, who may write) still
/// holds for that ticket. The messages of tickets that changed are read and planned again.
///
/// When every ticket of the batch is [`known`](super::known) and the plan from those states stores
/// every message, the read is left out: the write itself looks for messages stored before under the
/// batch's keys, and leaves a ticket with one unwritten, like a ticket that changed. A refusal is
/// never answered from a known state (the write would not check it): such a batch is read first.
async fn append_checked(c: &mut PgConnection, batch: &[NewMessage], known: &KnownTickets) -> Result<Vec<Appended>> {
    let mut results: Vec<Option<Appended>> = vec![None; batch.len()];
    let mut pending: Vec<usize> = (0..batch.len()).collect();
    for round in 0..CHECKED_ROUNDS {
        if round > 0 {
            metrics::counter!(crate::metrics::MESSAGE_REPLANS, "way" => "checked").increment(pending.len() as u64);
        }
        let retried: Vec<NewMessage>;
        let messages = if pending.len() == batch.len() {
            batch
        } else {
            retried = pending.iter().map(|&i| batch[i].clone()).collect();
            &retried
        };
        let from_known = (round == 0)
            .then(|| known.all(&stream::ticket_ids(messages)))
            .flatten()
            .map(|tickets| stream::plan(messages, tickets, HashMap::new(), &Uploads::new()))
            .filter(|plan| plan.results.iter().all(|r| matches!(r, Appended::Stored { .. })));
        let (plan, keys) = match from_known {
            Some(plan) => {
                let keys = Keys::Unchecked { since: oldest(&plan.tickets), until: latest(messages) };
                (plan, keys)
            }
            None => {
                let (tickets, stored) = read_batch(c, messages).await?;
                known.learn(tickets.values());
                (stream::plan(messages, tickets, stored, &Uploads::new()), Keys::Checked)
            }
        };
        let planned: HashSet<TicketId> = plan.tickets.iter().map(|t| t.id).collect();
        let written = store_batch(c, &plan.events, &plan.tickets, keys).await?;
        known.learn(plan.tickets.iter().filter(|t| written.contains(&t.id)));
        if written.len() < plan.tickets.len() {
            for (ticket, from) in plan.tickets.iter().zip(planned_from(&plan.tickets, &plan.events)) {
                if !written.contains(&ticket.id) {
                    known.changed(ticket.id, from);
                }
            }
        }
        let mut changed = Vec::new();
        for ((&i, message), result) in pending.iter().zip(messages).zip(plan.results) {
            if planned.contains(&message.ticket_id) && !written.contains(&message.ticket_id) {
                changed.push(i);
            } else {
                results[i] = Some(result);
            }
        }
        pending = changed;
        if pending.is_empty() {
            break;
        }
    }
    if !pending.is_empty() {
        metrics::counter!(crate::metrics::MESSAGE_REPLANS, "way" => "locked").increment(pending.len() as u64);
        let rest: Vec<NewMessage> = pending.iter().map(|&i| batch[i].clone()).collect();
        for (i, result) in pending.into_iter().zip(append_locked(c, &rest).await?) {
            results[i] = Some(result);
        }
    }
    results
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::Internal("a message of a batch went unanswered".into()))
}

/// Stores a batch in one transaction that locks its tickets first (`FOR UPDATE`, in id order, so that
/// two batches sharing tickets queue behind each other instead of deadlocking), then makes the same
/// read as [`append_checked`] (a statement after the lock sees what the lock waited for) and locks
/// the uploads the batch names. Batches that carry uploads go this way (their placing is checked
/// against the locked uploads), and so do the messages of tickets too busy for [`append_checked`].
async fn append_locked(c: &mut PgConnection, batch: &[NewMessage]) -> Result<Vec<Appended>> {
    let ids: Vec<Uuid> = stream::ticket_ids(batch).into_iter().map(|id| id.0).collect();
    let mut tx = c.begin().await?;
    sqlx::query("SELECT id FROM tickets WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    let (tickets, stored) = read_batch(&mut tx, batch).await?;
    let named = batch.iter().filter(|m| tickets.contains_key(&m.ticket_id)).flat_map(|m| &m.attachments);
    let uploads = lock_uploads(&mut tx, &stream::upload_ids(named)).await?;
    let plan = stream::plan(batch, tickets, stored, &uploads);
    let written = store_batch(&mut tx, &plan.events, &plan.tickets, Keys::Checked).await?;
    if written.len() != plan.tickets.len() {
        return Err(Error::Internal("a locked ticket changed under its row lock".into()));
    }
    place(&mut tx, &plan.placements).await?;
    tx.commit().await?;
    Ok(plan.results)
}

/// How far apart the clocks of two nodes may be: a message stored by one node is never stamped
/// earlier than this before its ticket was opened by another.
pub(super) const CLOCK_SKEW_MS: i64 = 24 * 3600 * 1000;

/// The earliest time an event of `ticket` can be stamped with ([`CLOCK_SKEW_MS`] before its
/// opening), from its opening time if `known` (it never changes), else from its row; `None` when
/// the ticket is not stored.
pub(super) async fn events_since(
    c: &mut PgConnection,
    ticket: TicketId,
    known: Option<Millis>,
) -> Result<Option<Millis>> {
    let opened = match known {
        Some(at) => Some(at),
        None => {
            sqlx::query_scalar("SELECT created_at FROM tickets WHERE id = $1").bind(ticket.0).fetch_optional(c).await?
        }
    };
    Ok(opened.map(|at: Millis| at.saturating_sub(CLOCK_SKEW_MS)))
}

/// The read before a batch is planned: the tickets `$1` (`last_seq` as `seq`), then the messages
/// stored under the keys `$2` to `$5` (at most one each), with the author's id compared the way the
/// index compares it so that the index answers. Each row is looked up through its key by a
/// `LATERAL` subquery (the `LIMIT` keeps the planner from turning the lookups back into a join): a
/// join may be planned as a hash join over a whole month's table, which a plan made while that
/// table was small (a new month, a new database) would go on doing once it has grown. On the
/// writer's connections, which do not scan tables whole ([`held`](super::held)), a lookup
/// inside `LATERAL` can only be an index scan.
///
/// The events are partitioned by month, and the lookup is bounded in time so that a batch looks in
/// one or two months' indexes, not in every month's: from `$6` ([`CLOCK_SKEW_MS`]) before the
/// earliest of the tickets was opened, up to `$7`. The statement is planned once with every month
/// (the writer's connections keep one generic plan per statement); the months after `$7` are left
/// out before it starts, and those before the lower bound, which depends on the tickets it reads
/// (a subquery), as it runs.
const READ_BATCH: &str = "
    WITH batch AS MATERIALIZED (
         SELECT t.* FROM UNNEST($1::uuid[]) AS k (id),
              LATERAL (SELECT id, last_seq, agent_id, created_at, user_id, subject, status, updated_at, queued_at
                       FROM tickets WHERE id = k.id LIMIT 1) AS t
     )
     SELECT id AS ticket_id, last_seq AS seq, agent_id, created_at, user_id, subject, status, updated_at,
            queued_at, NULL::text AS kind, NULL::text AS author_kind, NULL::uuid AS author_id, NULL::text AS body,
            NULL::text AS client_msg_id, NULL::text AS attachments
     FROM batch
     UNION ALL
     SELECT e.ticket_id, e.seq, e.agent_id, e.created_at, NULL, NULL, NULL, NULL, NULL, e.kind, e.author_kind,
            e.author_id, e.body, e.client_msg_id, e.attachments
     FROM UNNEST($2::uuid[], $3::text[], $4::uuid[], $5::text[]) AS k (ticket_id, author_kind, author_id, client_msg_id),
          LATERAL (SELECT ticket_id, seq, agent_id, created_at, kind, author_kind, author_id, body, client_msg_id,
                          attachments
                   FROM ticket_events
                   WHERE ticket_id = k.ticket_id AND author_kind = k.author_kind
                     AND COALESCE(author_id, '00000000-0000-0000-0000-000000000000'::uuid)
                         = COALESCE(k.author_id, '00000000-0000-0000-0000-000000000000'::uuid)
                     AND client_msg_id = k.client_msg_id AND client_msg_id IS NOT NULL
                     AND created_at >= (SELECT min(created_at) FROM batch) - $6
                     AND created_at <= $7::bigint
                   LIMIT 1) AS e";

/// The latest time a message stored before under one of the batch's keys can have: a node's clock
/// may be [`CLOCK_SKEW_MS`] ahead of this one's.
fn latest(batch: &[NewMessage]) -> Millis {
    batch.iter().map(|m| m.created_at).max().unwrap_or(0).saturating_add(CLOCK_SKEW_MS)
}

/// The earliest time a message stored before on one of `tickets` can have: [`CLOCK_SKEW_MS`]
/// before the earliest of them was opened.
fn oldest(tickets: &[Ticket]) -> Millis {
    tickets.iter().map(|t| t.created_at).min().unwrap_or(0).saturating_sub(CLOCK_SKEW_MS)
}

/// Whether a batch's write must look for messages stored before under its keys.
#[derive(Clone, Copy)]
enum Keys {
    /// The plan was made from a read that looked for them.
    Checked,
    /// The plan was made from known states: the write looks for them between these times (see
    /// [`latest`] and [`oldest`]) and leaves a ticket with one unwritten.
    Unchecked { since: Millis, until: Millis },
}

/// The batch's tickets that exist, and the messages stored before under its keys, in one statement.
async fn read_batch(
    c: &mut PgConnection,
    batch: &[NewMessage],
) -> Result<(HashMap<TicketId, Ticket>, HashMap<MessageKey, TicketEvent>)> {
    let ids: Vec<Uuid> = stream::ticket_ids(batch).into_iter().map(|id| id.0).collect();
    let (mut key_tickets, mut author_kinds, mut author_ids, mut client_msg_ids) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for message in stream::first_of_each_key(batch) {
        let (kind, id) = rows::stored_author(message.author);
        key_tickets.push(message.ticket_id.0);
        author_kinds.push(kind);
        author_ids.push(id);
        client_msg_ids.push(message.client_msg_id.as_str());
    }
    let rows = sqlx::query_as::<_, BatchReadRow>(READ_BATCH)
        .bind(&ids)
        .bind(&key_tickets)
        .bind(&author_kinds)
        .bind(&author_ids)
        .bind(&client_msg_ids)
        .bind(CLOCK_SKEW_MS)
        .bind(latest(batch))
        .fetch_all(c)
        .await?;
    let mut tickets = HashMap::with_capacity(ids.len());
    let mut stored = HashMap::new();
    for row in rows {
        match BatchRead::try_from(row)? {
            BatchRead::Ticket(ticket) => {
                tickets.insert(ticket.id, ticket);
            }
            BatchRead::Stored(event) => {
                if let Some(client_msg_id) = &event.client_msg_id {
                    stored.insert((event.ticket_id, event.author, client_msg_id.clone()), event);
                }
            }
        }
    }
    Ok((tickets, stored))
}

/// The uploads with these ids that exist, locked until the caller's transaction ends; no query
/// for none (most messages carry no attachment).
async fn lock_uploads(c: &mut PgConnection, ids: &[AttachmentId]) -> Result<Uploads> {
    if ids.is_empty() {
        return Ok(Uploads::new());
    }
    let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    let rows = sqlx::query_as::<_, AttachmentRow>(&postgres(&files::locked_any())).bind(&ids).fetch_all(c).await?;
    let mut uploads = Uploads::with_capacity(rows.len());
    for row in rows {
        let upload = Attachment::try_from(row)?;
        uploads.insert(upload.id, upload);
    }
    Ok(uploads)
}

/// Marks placed uploads attached to their tickets.
///
/// # Errors
/// [`Error::Internal`] when one is no longer stored and its uploader's: the plan checked the rows
/// this transaction locked, so that is a bug.
async fn place(c: &mut PgConnection, placements: &[Placement]) -> Result<()> {
    for p in placements {
        let (user, agent) = uploader_columns(p.uploader);
        let placed = sqlx::query(&postgres(&files::attach()))
            .bind(p.id.0)
            .bind(p.ticket.0)
            .bind(user)
            .bind(agent)
            .fetch_optional(&mut *c)
            .await?;
        if placed.is_none() {
            return Err(Error::Internal(format!("attachment {} changed under its row lock", p.id)));
        }
    }
    Ok(())
}

/// The statement that inserts the events bound as `$1` to `$11` and their search vectors bound as
/// the parameter numbered `$vectors` (see [`EventColumns`]), each row named `e`; a macro so that
/// [`STORE_BATCH`] embeds the same text.
macro_rules! insert_events_sql {
    ($vectors:literal) => {
        concat!(
            "INSERT INTO ticket_events (ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, agent_id,
                                    attachments, created_at, search_text, search_vector)
         SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::uuid[], $6::text[],
                              $7::text[], $8::uuid[], $9::text[], $10::bigint[], $11::text[], $",
            $vectors,
            "::text[]::tsvector[])
                       AS e (ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, agent_id,
                             attachments, created_at, search_text, search_vector)"
        )
    };
}

/// Inserts the events bound as `$1` to `$12`.
const INSERT_EVENTS: &str = insert_events_sql!("12");

/// A batch's ticket states and events in one statement. The tickets bound as `$12` to `$18` (see
/// [`TicketColumns`], in id order) are locked one by one in that order, so that two batches sharing
/// tickets queue behind each other instead of deadlocking; one that waited reads the row as the
/// other committed it. Those whose `last_seq` is still the one the plan read are updated (found by
/// the locked row's address), and only their events (bound as in [`INSERT_EVENTS`], their search
/// vectors as `$22`) are inserted;
/// the ids of the updated tickets come back. Each ticket is looked up through its key by a
/// `LATERAL` subquery, which keeps the planner from scanning a small `tickets` table whole. A
/// data-modifying `WITH` runs whether or not the rest reads it.
///
/// With `$19` true (see [`Keys::Unchecked`]) a ticket is also left unwritten when a message stored
/// before, between `$20` and `$21`, has the key of one of its new messages, looked up as
/// [`READ_BATCH`] does: through `LATERAL` and `LIMIT`, without which a plan made while the tables
/// were empty looks through a whole month by time instead of through the key's index, for every
/// batch from then on. The statement's snapshot may miss a message committed while it waited for
/// a lock, but such a message moved its ticket's `last_seq`, which the lock reads as committed. With
/// `$19` false that lookup is not run at all.
const STORE_BATCH: &str = concat!(
    "WITH locked AS (
         SELECT t.ctid AS address, t.id, t.last_seq
         FROM UNNEST($12::uuid[]) AS k (id),
              LATERAL (SELECT ctid, id, last_seq FROM tickets WHERE id = k.id FOR UPDATE) AS t
     ), stored AS (
         SELECT DISTINCT k.ticket_id
         FROM UNNEST($1::uuid[], $4::text[], $5::uuid[], $7::text[]) AS k (ticket_id, author_kind, author_id, client_msg_id),
              LATERAL (SELECT 1 FROM ticket_events AS s
                       WHERE s.ticket_id = k.ticket_id AND s.author_kind = k.author_kind
                         AND COALESCE(s.author_id, '00000000-0000-0000-0000-000000000000'::uuid)
                             = COALESCE(k.author_id, '00000000-0000-0000-0000-000000000000'::uuid)
                         AND s.client_msg_id = k.client_msg_id AND s.client_msg_id IS NOT NULL
                         AND s.created_at >= $20::bigint AND s.created_at <= $21::bigint
                       LIMIT 1) AS s
         WHERE $19::boolean AND k.client_msg_id IS NOT NULL
     ), written AS (
         UPDATE tickets AS t
         SET status = u.status, agent_id = u.agent_id, queued_at = u.queued_at, last_seq = u.last_seq,
             updated_at = u.updated_at, resolved_at = CASE WHEN u.status = 'resolved' THEN t.resolved_at END
         FROM locked AS l
              JOIN UNNEST($12::uuid[], $13::text[], $14::uuid[], $15::bigint[], $16::bigint[], $17::bigint[],
                          $18::bigint[])
                   AS u (id, status, agent_id, queued_at, last_seq, updated_at, read_seq)
                ON u.id = l.id AND u.read_seq = l.last_seq
         WHERE t.ctid = l.address AND u.id NOT IN (SELECT ticket_id FROM stored)
         RETURNING t.id
     ), inserted AS (",
    insert_events_sql!("22"),
    " WHERE e.ticket_id IN (SELECT id FROM written)
     )
     SELECT id FROM written"
);

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Events as the column arrays that `UNNEST` takes: `$1` to `$11` bound by [`EventColumns::bind`],
/// the search vectors (text for Postgres to read as `tsvector`) bound by the caller where its
/// statement numbers them.
struct EventColumns<'a> {
    tickets: Vec<Uuid>,
    seqs: Vec<i64>,
    kinds: Vec<&'static str>,
    author_kinds: Vec<&'static str>,
    author_ids: Vec<Option<Uuid>>,
    bodies: Vec<Option<&'a str>>,
    client_msg_ids: Vec<Option<&'a str>>,
    agents: Vec<Option<Uuid>>,
    attachments: Vec<Option<String>>,
    times: Vec<i64>,
    search_texts: Vec<Option<String>>,
    search_vectors: Vec<Option<String>>,
}

impl<'a> EventColumns<'a> {
    fn new(events: &'a [TicketEvent]) -> Self {
        let n = events.len();
        let mut c = Self {
            tickets: Vec::with_capacity(n),
            seqs: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
            author_kinds: Vec::with_capacity(n),
            author_ids: Vec::with_capacity(n),
            bodies: Vec::with_capacity(n),
            client_msg_ids: Vec::with_capacity(n),
            agents: Vec::with_capacity(n),
            attachments: Vec::with_capacity(n),
            times: Vec::with_capacity(n),
            search_texts: Vec::with_capacity(n),
            search_vectors: Vec::with_capacity(n),
        };
        for event in events {
            let (author_kind, author_id) = rows::stored_author(event.author);
            c.tickets.push(event.ticket_id.0);
            c.seqs.push(rows::stored_seq(event.seq));
            c.kinds.push(event.kind.as_str());
            c.author_kinds.push(author_kind);
            c.author_ids.push(author_id);
            c.bodies.push(event.body.as_deref());
            c.client_msg_ids.push(event.client_msg_id.as_deref());
            c.agents.push(event.agent_id.map(|a| a.0));
            c.attachments.push(rows::stored_attachments(&event.attachments));
            c.times.push(event.created_at);
            let text = rows::search_text(event);
            c.search_vectors.push(text.as_deref().map(search_vector));
            c.search_texts.push(text);
        }
        c
    }

    fn bind<'q>(&'q self, q: PgQuery<'q>) -> PgQuery<'q> {
        q.bind(&self.tickets)
            .bind(&self.seqs)
            .bind(&self.kinds)
            .bind(&self.author_kinds)
            .bind(&self.author_ids)
            .bind(&self.bodies)
            .bind(&self.client_msg_ids)
            .bind(&self.agents)
            .bind(&self.attachments)
            .bind(&self.times)
            .bind(&self.search_texts)
    }
}

/// Ticket states as the column arrays that `UNNEST` takes, in the order given (the plan's: by id,
/// which is the order Postgres sorts `uuid`s in).
struct TicketColumns {
    ids: Vec<Uuid>,
    statuses: Vec<&'static str>,
    agents: Vec<Option<Uuid>>,
    queued: Vec<Option<i64>>,
    seqs: Vec<i64>,
    updated: Vec<i64>,
    read_seqs: Vec<i64>,
}

/// The `last_seq` each of the planned `tickets` had when the plan started from it (read, or known),
/// in their order: each of the ticket's new `events` took the next seq.
fn planned_from(tickets: &[Ticket], events: &[TicketEvent]) -> Vec<u64> {
    let mut added: HashMap<TicketId, u64> = HashMap::with_capacity(tickets.len());
    for event in events {
        *added.entry(event.ticket_id).or_default() += 1;
    }
    tickets.iter().map(|t| t.last_seq.saturating_sub(added.get(&t.id).copied().unwrap_or(0))).collect()
}

impl TicketColumns {
    /// `tickets` as planned, each with the `last_seq` the plan started from (see [`planned_from`]).
    fn new(tickets: &[Ticket], events: &[TicketEvent]) -> Self {
        Self {
            ids: tickets.iter().map(|t| t.id.0).collect(),
            statuses: tickets.iter().map(|t| t.status.as_str()).collect(),
            agents: tickets.iter().map(|t| t.agent_id.map(|a| a.0)).collect(),
            queued: tickets.iter().map(|t| t.queued_at).collect(),
            seqs: tickets.iter().map(|t| rows::stored_seq(t.last_seq)).collect(),
            updated: tickets.iter().map(|t| t.updated_at).collect(),
            read_seqs: planned_from(tickets, events).into_iter().map(rows::stored_seq).collect(),
        }
    }

    fn bind<'q>(&'q self, q: PgQuery<'q>) -> PgQuery<'q> {
        q.bind(&self.ids)
            .bind(&self.statuses)
            .bind(&self.agents)
            .bind(&self.queued)
            .bind(&self.seqs)
            .bind(&self.updated)
            .bind(&self.read_seqs)
    }
}

/// Inserts `events` in one statement.
async fn insert_events(c: &mut PgConnection, events: &[TicketEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let columns = EventColumns::new(events);
    columns.bind(sqlx::query(INSERT_EVENTS)).bind(&columns.search_vectors).execute(c).await?;
    Ok(())
}

/// Stores a batch's planned `events` and the new state of its `tickets` with [`STORE_BATCH`], each
/// ticket's part only if its `last_seq` is still the one the plan read (and, with `keys` unchecked,
/// none of its new messages was stored before); the tickets whose part was stored. Every ticket with
/// a new state has a new event, and the reverse.
async fn store_batch(
    c: &mut PgConnection,
    events: &[TicketEvent],
    tickets: &[Ticket],
    keys: Keys,
) -> Result<HashSet<TicketId>> {
    if events.is_empty() && tickets.is_empty() {
        return Ok(HashSet::new());
    }
    let (tickets, events) = (TicketColumns::new(tickets, events), EventColumns::new(events));
    let (look, since, until) = match keys {
        Keys::Checked => (false, 0, 0),
        Keys::Unchecked { since, until } => (true, since, until),
    };
    let query = tickets
        .bind(events.bind(sqlx::query(STORE_BATCH)))
        .bind(look)
        .bind(since)
        .bind(until)
        .bind(&events.search_vectors);
    let written = query.fetch_all(c).await?;
    written.iter().map(|row| Ok(TicketId(row.try_get(0)?))).collect()
}
