//! Push notifications: registrations, which ticket events reach whom when their app is closed, and
//! the sender that delivers the durable push queue.
//!
//! The ticket desk hands every event it stores on this node to [`PushTrigger`] (never to the
//! events other nodes relayed, so a cluster queues each notification once). [`PushDesk::queue`]
//! picks the people the event is for whose app holds no socket on any node, and queues one
//! notification per registration, due after the collapse window: events of one ticket within the
//! window become one notification. Every node runs [`PushDesk::run`], which claims due
//! notifications (a lease: no other node takes them meanwhile), checks again that the app is still
//! closed, and sends through the provider port; a provider's retry answer puts the notification back
//! with backoff (or the provider's `Retry-After`), a dead target removes its registration, and a
//! notification older than the give-up age is dropped.

use crate::error::{Error, Result};
use crate::model::ids::{Principal, SessionId, TicketId};
use crate::model::language::Language;
use crate::model::push::{
    NewPush, NewReminder, PushKind, PushRegistration, PushTarget, QueuedPush, MAX_ENDPOINT_BYTES, MAX_TOKEN_BYTES,
};
use crate::model::ticket::{Author, EventKind, Ticket, TicketEvent};
use crate::model::time::{ms, now_ms, Millis};
use crate::ports::push::{Delivery, Notification, PushSender};
use crate::ports::store::push::Pushes;
use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::BinaryHeap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

pub mod reminders;

/// Characters of message text a preview carries at most.
pub const PREVIEW_CHARS: usize = 80;
/// Notifications one sender claims at once.
const CLAIM: u32 = 32;
/// How long a claim holds before another node may take the notification.
const LEASE: Duration = Duration::from_secs(60);
/// How often an idle sender looks for due notifications it was not told of (other nodes', retries).
/// Those this node queues wake it when they are due.
const POLL: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Batches of events waiting for the push desk; beyond it, new ones are dropped (and counted).
const TRIGGER_QUEUE: usize = 4096;
/// How long past a notification's due time the sender waits for others coming due, so that one
/// claim takes several: at low rates that halves the sender's transactions for a few ms of latency.
const GATHER: Duration = Duration::from_millis(20);
/// Due times a node keeps for its sender.
const KNOWN_DUES: usize = 65_536;
/// Batches of events queued in one round (one transaction).
const ROUND: usize = 256;

/// How pushes behave.
#[derive(Clone, Copy, Debug)]
pub struct PushPolicy {
    /// Events of one ticket within this window become one notification.
    pub collapse_window: Duration,
    /// A notification not delivered by this age is dropped.
    pub give_up_after: Duration,
    /// Whether Web Push endpoints may be `http://` (local receivers in tests and development).
    pub allow_http_endpoints: bool,
    /// How long an agent's reply may stay unread before its SMS reminder; `None`: no reminders.
    pub remind_after: Option<Duration>,
}

/// Where a device's notifications should go, as its app asked.
#[derive(Clone, Debug)]
pub struct RegistrationRequest {
    /// The target.
    pub target: PushTarget,
    /// Whether notifications may show the beginning of the message text.
    pub preview: bool,
    /// The language of the fixed text; Persian when not given.
    pub language: Option<Language>,
}

/// Stored ticket events on their way from the ticket desk to the push desk.
pub type PushEvents = mpsc::Receiver<(Ticket, Vec<TicketEvent>)>;

/// Hands stored ticket events to the push desk without waiting (the ticket desk's side).
#[derive(Clone)]
pub struct PushTrigger(mpsc::Sender<(Ticket, Vec<TicketEvent>)>);

impl PushTrigger {
    /// Passes the events on, unless the push desk is behind by [`TRIGGER_QUEUE`] batches: then
    /// they are dropped and counted (the people see them in the app; only the notification is lost).
    pub fn events(&self, ticket: &Ticket, events: &[TicketEvent]) {
        if self.0.try_send((ticket.clone(), events.to_vec())).is_err() {
            metrics::counter!(crate::metrics::PUSH_FAILED, "provider" => "any", "reason" => "trigger_full")
                .increment(1);
        }
    }
}

/// The kind of notification an event makes (every event makes one; who gets it is
/// [`PushDesk::queue`]'s choice): a message; the ticket taken or transferred; resolved; opened or
/// reopened, for agents.
fn pushed_kind(e: &TicketEvent) -> PushKind {
    match e.kind {
        EventKind::Message => PushKind::Message,
        EventKind::Claimed | EventKind::Transferred => PushKind::Assigned,
        EventKind::Resolved => PushKind::Resolved,
        EventKind::Opened | EventKind::Reopened => PushKind::Queued,
    }
}

/// Registrations, notifications and their delivery.
pub struct PushDesk {
    store: Arc<dyn Pushes>,
    presence: Arc<crate::domain::presence::Presence>,
    sender: Arc<dyn PushSender>,
    policy: PushPolicy,
    /// When the notifications this node queued come due (one time per round, at most
    /// [`KNOWN_DUES`]; the sender's look once a second covers what does not fit).
    dues: Mutex<BinaryHeap<Reverse<Millis>>>,
    /// Tells the sender of a new earliest time.
    queued: Notify,
}

impl PushDesk {
    /// The desk, and the trigger the ticket desk hands events to; [`PushDesk::take_events`]
    /// consumes what the trigger passes on.
    pub fn new(
        store: Arc<dyn Pushes>,
        presence: Arc<crate::domain::presence::Presence>,
        sender: Arc<dyn PushSender>,
        policy: PushPolicy,
    ) -> (Arc<Self>, PushTrigger, PushEvents) {
        let (tx, rx) = mpsc::channel(TRIGGER_QUEUE);
        let desk = Self { store, presence, sender, policy, dues: Mutex::default(), queued: Notify::new() };
        (Arc::new(desk), PushTrigger(tx), rx)
    }

    /// Registers the device session's push target, replacing its earlier one.
    ///
    /// # Errors
    /// `bad_request` for a target that cannot be right (see PROTOCOL.md), `unauthorized` when the
    /// session ended meanwhile, `unavailable`.
    pub async fn register(
        &self,
        who: Principal,
        session: SessionId,
        request: RegistrationRequest,
    ) -> Result<PushRegistration> {
        let provider = request.target.provider();
        if !self.sender.accepts(provider) {
            return Err(Error::BadRequest(format!("this hub does not deliver through {provider}")));
        }
        self.check_target(&request.target)?;
        let registration = PushRegistration {
            session_id: session,
            holder: who,
            target: request.target,
            preview: request.preview,
            language: request.language.unwrap_or(Language::Persian),
            updated_at: now_ms(),
        };
        if !self.store.register_push(&registration, registration.updated_at).await? {
            return Err(Error::Unauthorized);
        }
        metrics::counter!(crate::metrics::PUSH_REGISTRATIONS, "provider" => registration.target.provider())
            .increment(1);
        Ok(registration)
    }

    fn check_target(&self, target: &PushTarget) -> Result<()> {
        let bad = |what: &str| Err(Error::BadRequest(what.to_owned()));
        match target {
            PushTarget::Fcm { token } | PushTarget::Apns { token, .. }
                if token.is_empty() || token.len() > MAX_TOKEN_BYTES || token.chars().any(char::is_whitespace) =>
            {
                bad(&format!("token must be 1 to {MAX_TOKEN_BYTES} bytes without spaces"))
            }
            PushTarget::Apns { token, .. } if !token.bytes().all(|b| b.is_ascii_hexdigit()) => {
                bad("an APNs device token is hexadecimal")
            }
            PushTarget::WebPush { endpoint, p256dh, auth } => {
                let secure = endpoint.starts_with("https://");
                let allowed = secure || (self.policy.allow_http_endpoints && endpoint.starts_with("http://"));
                if !allowed || endpoint.len() > MAX_ENDPOINT_BYTES || endpoint_host(endpoint).is_none() {
                    return bad(&format!("endpoint must be an https:// URL of at most {MAX_ENDPOINT_BYTES} bytes"));
                }
                if p256dh.len() != 65 || p256dh[0] != 4 {
                    return bad("keys.p256dh must be an uncompressed P-256 point (65 bytes, base64url)");
                }
                if auth.len() != 16 {
                    return bad("keys.auth must be 16 bytes (base64url)");
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Removes the device session's registration. False when it had none.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn unregister(&self, session: SessionId) -> Result<bool> {
        self.store.unregister_push(session).await
    }

    /// Consumes what the trigger passes on until `stop`, queueing the notifications: whatever
    /// waits (up to [`ROUND`] batches) is one round, with one look-up of registrations, one of
    /// presence and one transaction, so the queue keeps up with the messages.
    pub async fn take_events(self: Arc<Self>, mut events: PushEvents, stop: CancellationToken) {
        let mut round = Vec::with_capacity(ROUND);
        loop {
            round.clear();
            let taken = tokio::select! {
                _ = stop.cancelled() => return,
                taken = events.recv_many(&mut round, ROUND) => taken,
            };
            if taken == 0 {
                return;
            }
            if let Err(e) = self.queue(&round).await {
                let lost: usize = round.iter().map(|(_, batch)| batch.len()).sum();
                metrics::counter!(crate::metrics::PUSH_FAILED, "provider" => "any", "reason" => "not_queued")
                    .increment(lost as u64);
                tracing::warn!(events = lost, error = %e, "could not queue push notifications");
            }
        }
    }

    /// Queues the notifications a round of events makes, for the people they concern whose app is
    /// closed.
    async fn queue(&self, round: &[(Ticket, Vec<TicketEvent>)]) -> Result<()> {
        let now = now_ms();
        let mut agents: Option<Vec<Principal>> = None;
        let mut wanted = Vec::new();
        let mut reminders: Vec<NewReminder> = Vec::new();
        for (ticket, batch) in round {
            for event in batch {
                let kind = pushed_kind(event);
                if let (Some(after), PushKind::Message, Author::Agent(_)) =
                    (self.policy.remind_after, kind, event.author)
                {
                    remind(
                        &mut reminders,
                        NewReminder {
                            ticket_id: ticket.id,
                            user_id: ticket.user_id,
                            seq: event.seq,
                            due_at: now + ms(after),
                        },
                    );
                }
                let recipients: Vec<Principal> = match (kind, event.author) {
                    // The user's own message: the agent holding the ticket.
                    (PushKind::Message, Author::User(_)) => ticket.agent_id.map(Principal::Agent).into_iter().collect(),
                    // Support wrote, took or closed the ticket: its user.
                    (PushKind::Message | PushKind::Assigned | PushKind::Resolved, _) => {
                        vec![Principal::User(ticket.user_id)]
                    }
                    // A ticket in the queue: every agent with a registration.
                    (PushKind::Queued, _) => match &agents {
                        Some(agents) => agents.clone(),
                        None => agents.insert(self.registered_agents().await?).clone(),
                    },
                };
                wanted.push((ticket, event, kind, recipients));
            }
        }
        let pushes = self.pushes(wanted, now).await?;
        if pushes.is_empty() && reminders.is_empty() {
            return Ok(());
        }
        self.store.queue_pushes(&pushes, &reminders).await?;
        if let Some(due) = pushes.iter().map(|p| p.due_at).min() {
            let earlier = {
                let mut dues = self.dues.lock().unwrap_or_else(PoisonError::into_inner);
                let earlier = dues.peek().is_none_or(|Reverse(first)| due < *first);
                if dues.len() < KNOWN_DUES {
                    dues.push(Reverse(due));
                }
                earlier
            };
            if earlier {
                self.queued.notify_one();
            }
        }
        Ok(())
    }

    /// The notifications of a round's events (each with its kind and recipients), for those
    /// recipients whose app is closed, folded per registration and ticket.
    async fn pushes(
        &self,
        wanted: Vec<(&Ticket, &TicketEvent, PushKind, Vec<Principal>)>,
        now: Millis,
    ) -> Result<Vec<NewPush>> {
        let mut people: Vec<Principal> = wanted.iter().flat_map(|w| w.3.iter().copied()).collect();
        people.sort_unstable();
        people.dedup();
        if people.is_empty() {
            return Ok(Vec::new());
        }
        // Presence first: it is memory (or one Redis call), and people in a conversation mostly
        // have their app open.
        let online = self.presence.connected_now(&people).await;
        let closed: Vec<Principal> =
            people.into_iter().zip(online).filter(|(_, online)| !online).map(|(who, _)| who).collect();
        if closed.is_empty() {
            return Ok(Vec::new());
        }
        let registrations = self.store.push_registrations(&closed, now).await?;
        let mut targets: HashMap<Principal, Vec<&PushRegistration>> = HashMap::new();
        for registration in &registrations {
            targets.entry(registration.holder).or_default().push(registration);
        }
        let mut pushes = Collapsed::default();
        for (ticket, event, kind, recipients) in wanted {
            for registration in recipients.iter().filter_map(|who| targets.get(who)).flatten() {
                let preview = (registration.preview && kind == PushKind::Message)
                    .then(|| event.body.as_deref().map(preview_of))
                    .flatten();
                pushes.add(NewPush {
                    session_id: registration.session_id,
                    ticket_id: ticket.id,
                    kind,
                    preview,
                    events: 1,
                    due_at: now + ms(self.policy.collapse_window),
                    created_at: now,
                });
            }
        }
        Ok(pushes.list)
    }

    /// Agents with a registration: those a new ticket in the queue may reach.
    async fn registered_agents(&self) -> Result<Vec<Principal>> {
        Ok(self.store.registered_agents(now_ms()).await?.into_iter().map(Principal::Agent).collect())
    }

    /// The node's sender: delivers due notifications until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut backlog_at = tokio::time::Instant::now();
        loop {
            if backlog_at.elapsed() >= Duration::from_secs(5) {
                backlog_at = tokio::time::Instant::now();
                if let Ok((depth, oldest)) = self.store.push_backlog().await {
                    metrics::gauge!(crate::metrics::PUSH_QUEUE_DEPTH).set(depth as f64);
                    let age = oldest.map_or(0, |at| (now_ms() - at).max(0));
                    metrics::gauge!(crate::metrics::PUSH_QUEUE_OLDEST).set(age as f64 / 1000.0);
                }
            }
            self.forget_dues(now_ms());
            let claimed = match self.store.claim_pushes(now_ms(), ms(LEASE), CLAIM).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim push notifications");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                let next = self.dues.lock().unwrap_or_else(PoisonError::into_inner).peek().map(|Reverse(at)| *at);
                let wait = next.map_or(POLL, |at| {
                    (Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)) + GATHER).min(POLL)
                });
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = self.queued.notified() => continue,
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
            let sends = claimed.into_iter().map(|push| self.deliver(push));
            let finished: Vec<i64> = futures_util::future::join_all(sends).await.into_iter().flatten().collect();
            if let Err(e) = self.store.finish_pushes(&finished).await {
                tracing::warn!(error = %e, "could not record push deliveries (their lease runs out and they are tried again)");
            }
            if stop.is_cancelled() {
                return;
            }
        }
    }

    /// Forgets the due times a claim at `now` covers.
    fn forget_dues(&self, now: Millis) {
        let mut dues = self.dues.lock().unwrap_or_else(PoisonError::into_inner);
        while dues.peek().is_some_and(|Reverse(at)| *at <= now) {
            dues.pop();
        }
    }

    /// Delivers one claimed notification. Its id when it is done with (sent, or dropped), for the
    /// caller to remove with the others of the claim; other outcomes are recorded here.
    async fn deliver(&self, push: QueuedPush) -> Option<i64> {
        let provider = push.registration.target.provider();
        let outcome = self.try_deliver(&push).await;
        let recorded = match outcome {
            Ok(Some(Delivery::Sent)) => {
                metrics::counter!(crate::metrics::PUSH_SENT, "provider" => provider).increment(1);
                return Some(push.id);
            }
            // The app is open again: the person sees the event there.
            Ok(None) => return Some(push.id),
            Ok(Some(Delivery::Gone)) => {
                metrics::counter!(crate::metrics::PUSH_FAILED, "provider" => provider, "reason" => "gone").increment(1);
                tracing::info!(provider, "push target gone: registration removed");
                self.store.unregister_push(push.registration.session_id).await.map(drop)
            }
            Ok(Some(Delivery::Failed { reason })) => {
                metrics::counter!(crate::metrics::PUSH_FAILED, "provider" => provider, "reason" => reason.clone())
                    .increment(1);
                tracing::warn!(provider, reason, "push refused by the provider: dropped");
                return Some(push.id);
            }
            Ok(Some(Delivery::Retry { after, reason })) => {
                metrics::counter!(crate::metrics::PUSH_FAILED, "provider" => provider, "reason" => reason).increment(1);
                let now = now_ms();
                if now - push.created_at >= ms(self.policy.give_up_after) {
                    metrics::counter!(crate::metrics::PUSH_FAILED, "provider" => provider, "reason" => "expired")
                        .increment(1);
                    return Some(push.id);
                } else {
                    let wait = after.unwrap_or_else(|| backoff(push.attempts)).min(MAX_BACKOFF);
                    self.store.retry_push(push.id, now + ms(wait)).await
                }
            }
            Err(e) => {
                tracing::warn!(provider, error = %e, "push delivery failed before sending; retrying");
                self.store.retry_push(push.id, now_ms() + ms(backoff(push.attempts))).await
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "could not record a push delivery (its lease runs out and it is tried again)");
        }
        None
    }

    /// `None` when the notification is no longer needed (the app is open).
    async fn try_deliver(&self, push: &QueuedPush) -> Result<Option<Delivery>> {
        let who = push.registration.holder;
        if self.presence.connected_now(&[who]).await.first().copied().unwrap_or(false) {
            return Ok(None);
        }
        let badge = match who {
            Principal::User(user) => self.store.unread_conversations(user).await?,
            Principal::Agent(_) => 0,
        };
        let notification = Notification {
            ticket_id: push.ticket_id,
            kind: push.kind,
            language: push.registration.language,
            preview: push.preview.clone(),
            badge,
            to_agent: matches!(who, Principal::Agent(_)),
        };
        Ok(Some(self.sender.send(&push.registration.target, &notification).await))
    }
}

/// A round's notifications, those for the same registration and ticket folded into one (the
/// later kind and preview, the events counted), as the queue folds them into one still waiting.
#[derive(Default)]
struct Collapsed {
    list: Vec<NewPush>,
    at: HashMap<(SessionId, TicketId), usize>,
}

impl Collapsed {
    fn add(&mut self, push: NewPush) {
        match self.at.entry((push.session_id, push.ticket_id)) {
            Entry::Occupied(at) => {
                let earlier = &mut self.list[*at.get()];
                earlier.kind = push.kind;
                earlier.preview = push.preview;
                earlier.events += push.events;
            }
            Entry::Vacant(at) => {
                at.insert(self.list.len());
                self.list.push(push);
            }
        }
    }
}

/// Adds a reply's reminder to a round's, one per ticket: the newest reply, the earliest time.
fn remind(reminders: &mut Vec<NewReminder>, reminder: NewReminder) {
    match reminders.iter_mut().find(|r| r.ticket_id == reminder.ticket_id) {
        Some(earlier) => earlier.seq = earlier.seq.max(reminder.seq),
        None => reminders.push(reminder),
    }
}

/// The wait before try `attempts + 2`: 2 s doubling, at most [`MAX_BACKOFF`].
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(attempts.min(16) + 1)).min(MAX_BACKOFF)
}

/// The beginning of a message's text, for a preview.
fn preview_of(body: &str) -> String {
    let mut out: String = body.chars().take(PREVIEW_CHARS).collect();
    if body.chars().nth(PREVIEW_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// The host (with its port) of an `http(s)://host[:port]/...` URL, if it has one and no
/// credentials: what a registration's endpoint must have, and what VAPID names as its audience.
pub fn endpoint_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty() && !host.contains('@')).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(0), Duration::from_secs(2));
        assert_eq!(backoff(1), Duration::from_secs(4));
        assert_eq!(backoff(7), Duration::from_secs(256));
        assert_eq!(backoff(8), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn a_rounds_notifications_fold_per_registration_and_ticket() {
        let (s1, s2) = (SessionId::generate(), SessionId::generate());
        let (t1, t2) = (TicketId::generate(), TicketId::generate());
        let push = |session, ticket, kind, preview: Option<&str>, at| NewPush {
            session_id: session,
            ticket_id: ticket,
            kind,
            preview: preview.map(str::to_owned),
            events: 1,
            due_at: at + 200,
            created_at: at,
        };
        let mut round = Collapsed::default();
        round.add(push(s1, t1, PushKind::Assigned, None, 10));
        round.add(push(s2, t1, PushKind::Message, Some("a"), 11));
        round.add(push(s1, t2, PushKind::Message, Some("b"), 12));
        round.add(push(s1, t1, PushKind::Message, Some("c"), 13));
        round.add(push(s1, t1, PushKind::Resolved, None, 14));
        let expected = [
            NewPush { events: 3, ..push(s1, t1, PushKind::Resolved, None, 10) },
            push(s2, t1, PushKind::Message, Some("a"), 11),
            push(s1, t2, PushKind::Message, Some("b"), 12),
        ];
        assert_eq!(round.list, expected, "first time kept, last kind and preview, events counted");
    }

    #[test]
    fn previews_are_cut_by_characters() {
        assert_eq!(preview_of("سلام"), "سلام");
        let long = "ی".repeat(100);
        let cut = preview_of(&long);
        assert_eq!(cut.chars().count(), PREVIEW_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn endpoints_need_a_host_without_credentials() {
        assert_eq!(endpoint_host("https://push.example:8443/x/y"), Some("push.example:8443"));
        assert_eq!(endpoint_host("https:///x"), None);
        assert_eq!(endpoint_host("https://user@evil/x"), None);
    }
}
