//! Support tickets: users and agents talking in ticket conversations.
//!
//! The rules live here: who may read and write which ticket, which state changes are allowed, and
//! what is published to whom after each change. Messages are stored through the group-commit
//! [`writer`] and acknowledged only once committed; every stored event is then published to the
//! ticket's subscribers (each socket drops what it already has and fills gaps from storage, see
//! the session), and a `ticket.updated` summary goes to the owner, the holding agent and the
//! agents watching the queue.

pub mod announce;
pub mod history;
pub mod labels;
pub mod notes;
pub(crate) mod queue;
pub mod ratings;
pub mod reports;
pub mod search;
pub(crate) mod stream;
pub(crate) mod writer;

use crate::error::{Error, Result, SizeUnit};
use crate::model::audit::{ActorKind, AuditAction, AuditEntry};
use crate::model::event::Event;
use crate::model::ids::{AgentId, AttachmentId, Principal, TicketId, UserId};
use crate::model::ticket::{
    Appended, Author, EventKind, NewMessage, NewTicket, Page, ReadMarks, Ticket, TicketEvent, TicketStatus, Transition,
};
use crate::model::time::now_ms;
use crate::ports::broker::{Audience, Broker};
use crate::ports::store::agents::Agents;
use crate::ports::store::audit::Audit;
use crate::ports::store::labels::Labels;
use crate::ports::store::notes::Notes;
use crate::ports::store::ratings::Ratings;
use crate::ports::store::reports::Reports;
use crate::ports::store::search::Search;
use crate::ports::store::tickets::Tickets;
use std::sync::Arc;
use writer::{MessageWriter, Queued};

/// Longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest client message id, in characters.
pub const MAX_CLIENT_MSG_ID_CHARS: usize = 64;
/// Most tickets in one list.
pub const MAX_LIST: u32 = 500;
/// Most events in one history page.
pub const MAX_PAGE: u32 = 100;

/// The result of a send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The message's seq.
    pub seq: u64,
    /// Whether it had been stored before (a resend).
    pub duplicate: bool,
}

/// Tickets, their conversations and the queue.
pub struct TicketDesk {
    tickets: Arc<dyn Tickets>,
    agents: Arc<dyn Agents>,
    notes: Arc<dyn Notes>,
    labels: Arc<dyn Labels>,
    search_index: Arc<dyn Search>,
    ratings: Arc<dyn Ratings>,
    reports: Arc<dyn Reports>,
    audit: Arc<dyn Audit>,
    /// How long after a resolution its user may rate it, in ms; `None`: ratings are off.
    rating_window: Option<u64>,
    writer: MessageWriter,
    broker: Arc<dyn Broker>,
    queue: Arc<queue::Queue>,
    limits: MessageLimits,
    announce: announce::Announcer,
}

/// The storage ports the desk works with.
pub struct TicketStores {
    /// Tickets and their events.
    pub tickets: Arc<dyn Tickets>,
    /// Agents (who may be named, assigned).
    pub agents: Arc<dyn Agents>,
    /// Agents' private notes.
    pub notes: Arc<dyn Notes>,
    /// Labels and the tickets they are on.
    pub labels: Arc<dyn Labels>,
    /// The search index.
    pub search: Arc<dyn Search>,
    /// Users' ratings of resolutions.
    pub ratings: Arc<dyn Ratings>,
    /// What reports read.
    pub reports: Arc<dyn Reports>,
    /// The audit log: claims, transfers and resolutions are written to it.
    pub audit: Arc<dyn Audit>,
}

/// How large a message may be, and how long a resolution may be rated.
#[derive(Clone, Copy, Debug)]
pub struct MessageLimits {
    /// Longest text, in characters.
    pub max_body_chars: usize,
    /// Most files on one message.
    pub max_attachments: usize,
    /// How long after a resolution its user may rate it; `None`: ratings are off.
    pub rating_window: Option<std::time::Duration>,
}

fn check_client_msg_id(id: &str) -> Result<()> {
    let n = id.chars().count();
    if n == 0 || n > MAX_CLIENT_MSG_ID_CHARS {
        return Err(Error::BadRequest(format!("client_msg_id must be 1 to {MAX_CLIENT_MSG_ID_CHARS} characters")));
    }
    Ok(())
}

impl TicketDesk {
    /// The desk over these ports. `queue` decides assignments and queue positions; `announce` tells
    /// of every stored event (the message writer's announcer too).
    pub fn new(
        TicketStores { tickets, agents, notes, labels, search, ratings, reports, audit }: TicketStores,
        writer: MessageWriter,
        broker: Arc<dyn Broker>,
        queue: Arc<queue::Queue>,
        limits: MessageLimits,
        announce: announce::Announcer,
    ) -> Self {
        let rating_window = limits.rating_window.map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX));
        Self {
            tickets,
            agents,
            notes,
            labels,
            search_index: search,
            ratings,
            reports,
            audit,
            rating_window,
            writer,
            broker,
            queue,
            limits,
            announce,
        }
    }

    /// Something changed that may let the queue move (an agent connected or changed status).
    pub fn queue_changed(&self) {
        self.queue.changed();
    }

    /// The places of `user`'s waiting tickets, for a socket of theirs that just connected: see
    /// [`queue::Queue::places_of`].
    pub fn queue_places(&self, user: UserId, tell: impl FnMut(Event)) {
        self.queue.places_of(user, tell);
    }

    /// Checks a message's text and the files it names: text may be empty only when files carry
    /// the message; at most `max_attachments` files, each named once.
    fn check_message(&self, body: &str, attachments: &[AttachmentId]) -> Result<()> {
        if attachments.len() > self.limits.max_attachments {
            return Err(Error::TooLarge {
                what: "attachments",
                size: Some(attachments.len()),
                limit: self.limits.max_attachments,
                unit: SizeUnit::Files,
            });
        }
        if attachments.iter().enumerate().any(|(i, id)| attachments[..i].contains(id)) {
            return Err(Error::BadRequest("an attachment is named twice".into()));
        }
        if attachments.is_empty() || !body.is_empty() {
            self.check_body(body)?;
        }
        Ok(())
    }

    fn check_body(&self, body: &str) -> Result<()> {
        crate::model::text::check_body(body, self.limits.max_body_chars)
    }

    /// The ticket, if `who` may see it: its owner, or any agent.
    ///
    /// # Errors
    /// `not_found`, `forbidden` (another user's ticket), `unavailable`.
    pub async fn visible_ticket(&self, who: Principal, id: TicketId) -> Result<Ticket> {
        let ticket = self.tickets.ticket(id).await?.ok_or(Error::NotFound("ticket"))?;
        match who {
            Principal::User(u) if ticket.user_id != u => Err(Error::Forbidden),
            _ => Ok(ticket),
        }
    }

    /// Opens a ticket with its first message (users only), which may carry the user's uploads.
    ///
    /// # Errors
    /// `forbidden` for agents, `bad_request`, `empty_body`, `too_large`, `not_found` and
    /// `wrong_state` (attachments), `unavailable`.
    pub async fn open(
        &self,
        who: Principal,
        subject: &str,
        body: &str,
        attachments: &[AttachmentId],
        client_msg_id: &str,
    ) -> Result<Ticket> {
        let Principal::User(user) = who else { return Err(Error::Forbidden) };
        let subject = subject.trim();
        if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(Error::BadRequest(format!("subject must be 1 to {MAX_SUBJECT_CHARS} characters")));
        }
        crate::model::text::refuse_nul("subject", subject)?;
        self.check_message(body, attachments)?;
        check_client_msg_id(client_msg_id)?;
        let opened = self
            .tickets
            .open_ticket(&NewTicket {
                id: TicketId::generate(),
                user_id: user,
                subject: subject.to_owned(),
                body: body.to_owned(),
                attachments: attachments.to_vec(),
                client_msg_id: client_msg_id.to_owned(),
                created_at: now_ms(),
            })
            .await?;
        if opened.created {
            metrics::counter!(crate::metrics::TICKETS_OPENED).increment(1);
            tracing::info!(ticket_id = %opened.ticket.id, user_id = %user, "ticket opened");
            self.publish_events(&opened.ticket, &opened.events);
            self.queue.changed();
        }
        Ok(opened.ticket)
    }

    /// Tickets `who` may list: a user's own; for agents, by status (default open and assigned) or
    /// only their own.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn list(&self, who: Principal, status: Option<TicketStatus>, mine: bool) -> Result<Vec<Ticket>> {
        match who {
            Principal::User(u) => {
                let mut tickets = self.tickets.user_tickets(u, MAX_LIST).await?;
                if let Some(s) = status {
                    tickets.retain(|t| t.status == s);
                }
                Ok(tickets)
            }
            Principal::Agent(a) if mine => {
                let mut tickets = self.tickets.agent_tickets(a).await?;
                if let Some(s) = status {
                    tickets.retain(|t| t.status == s);
                }
                Ok(tickets)
            }
            Principal::Agent(_) => match status {
                Some(s) => self.tickets.tickets_with_status(s, MAX_LIST).await,
                None => {
                    let mut tickets = self.tickets.tickets_with_status(TicketStatus::Open, MAX_LIST).await?;
                    tickets.extend(self.tickets.tickets_with_status(TicketStatus::Assigned, MAX_LIST).await?);
                    Ok(tickets)
                }
            },
        }
    }

    /// A page of the ticket's stream, for someone who may see it. Returns the events and whether
    /// there are more in that direction.
    ///
    /// # Errors
    /// As [`TicketDesk::visible_ticket`], and `bad_request` for a limit outside 1..=100.
    pub async fn history(
        &self,
        who: Principal,
        id: TicketId,
        page: Page,
        limit: u32,
    ) -> Result<(Vec<TicketEvent>, bool)> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(Error::BadRequest(format!("limit must be 1 to {MAX_PAGE}")));
        }
        self.visible_ticket(who, id).await?;
        let mut events = self.tickets.events(id, page, limit + 1).await?;
        let more = events.len() > limit as usize;
        if more {
            match page {
                // Newest-of-older page: the extra one is the oldest.
                Page::Before(_) => {
                    events.remove(0);
                }
                Page::After(_) => {
                    events.truncate(limit as usize);
                }
            }
        }
        Ok((events, more))
    }

    /// Events after `after` without authorisation (the caller already checked), for resuming.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn events_after(&self, id: TicketId, after: u64, limit: u32) -> Result<Vec<TicketEvent>> {
        self.tickets.events(id, Page::After(after), limit).await
    }

    /// The first half of sending a message, without waiting: checks the message and queues it for
    /// the writer. The ticket's user may write to it in any state (a resolved ticket reopens); an
    /// agent only to a ticket they hold, which the writer checks against the locked row.
    /// A socket that queues several sends in a row has them stored in that order
    /// (it keeps at most one in flight per ticket, see `session`).
    ///
    /// # Errors
    /// `empty_body`, `too_large`, `bad_request`, `overloaded`, `unavailable`.
    pub fn queue_send(
        &self,
        who: Principal,
        id: TicketId,
        client_msg_id: &str,
        body: &str,
        attachments: &[AttachmentId],
    ) -> Result<Queued> {
        self.check_message(body, attachments)?;
        check_client_msg_id(client_msg_id)?;
        // Who may write to the ticket is checked by the store against the locked row (see
        // `stream`), in the same transaction as the write.
        self.writer.enqueue(NewMessage {
            ticket_id: id,
            author: Author::from(who),
            client_msg_id: client_msg_id.to_owned(),
            body: body.to_owned(),
            attachments: attachments.to_vec(),
            created_at: now_ms(),
        })
    }

    /// The second half of sending a message: waits for the queued message's commit, by which time
    /// the writer has told everyone entitled to the ticket.
    ///
    /// # Errors
    /// `not_found` (the ticket, or an attachment), `forbidden`, `wrong_state`, `unavailable`.
    pub async fn finish_send(&self, queued: Queued) -> Result<Sent> {
        match queued.stored().await? {
            // The writer announced the events, in its batch's order, before answering (see `announce`).
            Appended::Stored { events, ticket } => {
                Ok(Sent { seq: events.last().map_or(ticket.last_seq, |e| e.seq), duplicate: false })
            }
            // Nothing new was stored, so nothing is published (PROTOCOL.md): a message whose first
            // try was answered `unavailable` after it committed reaches followers with the ticket's
            // next event, whose gap each socket fills from storage.
            Appended::Duplicate(event) => Ok(Sent { seq: event.seq, duplicate: true }),
            Appended::NoTicket => Err(Error::NotFound("ticket")),
            Appended::NotAllowed => Err(Error::Forbidden),
            Appended::NotClaimed => Err(Error::WrongState("claim the ticket before writing to it")),
            Appended::Resolved => Err(Error::WrongState("the ticket is resolved")),
            Appended::AttachmentRefused(refusal) => Err(refusal.into()),
        }
    }

    /// An agent takes an open ticket.
    ///
    /// # Errors
    /// `forbidden` for users, `not_found`, `wrong_state` (already assigned, or resolved), `unavailable`.
    pub async fn claim(&self, who: Principal, id: TicketId) -> Result<Ticket> {
        let Principal::Agent(agent) = who else { return Err(Error::Forbidden) };
        self.apply(Transition::claim(id, agent, Author::Agent(agent), now_ms())).await
    }

    /// An agent gives a ticket they hold to another enabled agent.
    ///
    /// # Errors
    /// `forbidden` (users, or a ticket held by someone else), `not_found` (ticket or target agent),
    /// `wrong_state`, `bad_request` (transfer to oneself), `unavailable`.
    pub async fn transfer(&self, who: Principal, id: TicketId, to: AgentId) -> Result<Ticket> {
        let Principal::Agent(agent) = who else { return Err(Error::Forbidden) };
        if to == agent {
            return Err(Error::BadRequest("the ticket is yours already".into()));
        }
        match self.agents.agent(to).await? {
            Some(target) if target.disabled_at.is_none() => {}
            _ => return Err(Error::NotFound("agent")),
        }
        self.apply(Transition::transfer(id, agent, to, now_ms())).await
    }

    /// An agent resolves a ticket they hold.
    ///
    /// # Errors
    /// `forbidden` (users, or a ticket held by someone else), `not_found`, `wrong_state`, `unavailable`.
    pub async fn resolve(&self, who: Principal, id: TicketId) -> Result<Ticket> {
        let Principal::Agent(agent) = who else { return Err(Error::Forbidden) };
        let ticket = self.apply(Transition::resolve(id, agent, now_ms())).await?;
        self.ask_for_rating(&ticket);
        Ok(ticket)
    }

    /// Applies a guarded change; when the guard fails, explains why from the ticket's current state.
    pub(crate) async fn apply(&self, t: Transition) -> Result<Ticket> {
        let actor = t.actor;
        match self.tickets.transition(&t).await? {
            Some((ticket, event)) => {
                self.publish_events(&ticket, std::slice::from_ref(&event));
                if event.kind == EventKind::Claimed {
                    self.queue.claimed();
                }
                self.observe_support_times(ticket.id, event.kind);
                self.queue.changed();
                self.audit_transition(&t, &ticket).await;
                Ok(ticket)
            }
            None => {
                let current = self.tickets.ticket(t.ticket_id).await?.ok_or(Error::NotFound("ticket"))?;
                Err(match (current.status, actor) {
                    (TicketStatus::Resolved, _) => Error::WrongState("the ticket is resolved"),
                    (TicketStatus::Open, _) => Error::WrongState("the ticket is not assigned: claim it first"),
                    (TicketStatus::Assigned, Author::Agent(a)) if current.agent_id == Some(a) => {
                        Error::WrongState("the ticket is yours already")
                    }
                    (TicketStatus::Assigned, _) if t.from.contains(&TicketStatus::Open) => {
                        Error::WrongState("the ticket is already assigned")
                    }
                    (TicketStatus::Assigned, _) => Error::Forbidden,
                })
            }
        }
    }

    /// Writes a claim, transfer or resolution to the audit log.
    async fn audit_transition(&self, t: &Transition, ticket: &Ticket) {
        let action = match t.kind {
            EventKind::Claimed => AuditAction::TicketClaimed,
            EventKind::Transferred => AuditAction::TicketTransferred,
            EventKind::Resolved => AuditAction::TicketResolved,
            _ => return,
        };
        let (actor, actor_id) = match t.actor {
            Author::Agent(a) => (ActorKind::Agent, Some(a.0)),
            Author::User(u) => (ActorKind::User, Some(u.0)),
            Author::System => (ActorKind::System, None),
        };
        let mut entry = AuditEntry::new(t.now, actor, actor_id, action, Some(ticket.id.0)).concerning(ticket.user_id.0);
        if let (EventKind::Claimed | EventKind::Transferred, Some(agent)) = (t.kind, t.agent_id) {
            entry.detail = Some(serde_json::json!({"agent_id": agent}));
        }
        crate::domain::audit::record(self.audit.as_ref(), &entry).await;
    }

    /// Records delivery or reading marks and tells the ticket's subscribers.
    ///
    /// # Errors
    /// As [`TicketDesk::visible_ticket`], and `bad_request` for a seq beyond the ticket's last.
    pub async fn mark(&self, who: Principal, id: TicketId, delivered: u64, read: u64) -> Result<ReadMarks> {
        let ticket = self.visible_ticket(who, id).await?;
        if delivered.max(read) > ticket.last_seq {
            return Err(Error::BadRequest("seq is beyond the ticket's last event".into()));
        }
        let author = Author::from(who);
        let marks = self.tickets.mark(id, author, delivered.max(read), read).await?;
        let event =
            Event::Receipt { ticket_id: id, by: author, delivered_seq: marks.delivered_seq, read_seq: marks.read_seq };
        self.broker.publish(&Audience { tickets: &[id], ..Audience::default() }, event);
        Ok(marks)
    }

    /// Every participant's marks on a ticket `who` may read.
    ///
    /// # Errors
    /// As [`TicketDesk::visible_ticket`].
    pub async fn marks(&self, who: Principal, id: TicketId) -> Result<Vec<(Author, ReadMarks)>> {
        self.visible_ticket(who, id).await?;
        self.tickets.marks(id).await
    }

    /// Tells the ticket's subscribers that `who` is typing. Nothing is stored.
    ///
    /// # Errors
    /// As [`TicketDesk::visible_ticket`].
    pub async fn typing(&self, who: Principal, id: TicketId) -> Result<()> {
        self.visible_ticket(who, id).await?;
        let audience = Audience { tickets: &[id], except: Some(who), ..Audience::default() };
        self.broker.publish(&audience, Event::Typing { ticket_id: id, by: Author::from(who) });
        Ok(())
    }

    /// The queue (open tickets, oldest first) followed by the tickets being handled.
    ///
    /// # Errors
    /// `forbidden` for users, `unavailable`.
    pub async fn queue_snapshot(&self, who: Principal) -> Result<Vec<Ticket>> {
        if !matches!(who, Principal::Agent(_)) {
            return Err(Error::Forbidden);
        }
        self.list(who, None, false).await
    }

    /// Tells everyone who could see these tickets that they are gone (their user deleted the
    /// account): their followers, their agents and the queue watchers get `ticket.deleted`, and the
    /// queue recounts the waiting users' positions.
    pub fn tickets_deleted(&self, tickets: &[Ticket]) {
        for ticket in tickets {
            let principals: Vec<Principal> = ticket.agent_id.map(Principal::Agent).into_iter().collect();
            self.broker.publish(
                &Audience {
                    tickets: &[ticket.id],
                    principals: &principals,
                    queue_watchers: true,
                    ..Audience::default()
                },
                Event::TicketDeleted(ticket.id),
            );
        }
        if tickets.iter().any(|t| t.status == TicketStatus::Open) {
            self.queue.changed();
        }
    }

    /// Publishes stored events: each to the ticket's subscribers, then one summary of the ticket to
    /// its owner, its agent and the queue watchers.
    fn publish_events(&self, ticket: &Ticket, events: &[TicketEvent]) {
        self.announce.stored(ticket, events);
    }
}
