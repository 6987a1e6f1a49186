//! Rows of `push_registrations` and `push_queue`, and the statements both backends run on them
//! (`?N` placeholders; Postgres spells them `$N`).

use crate::adapters::sql::rows::internal;
use crate::adapters::sql::rows::sealed::{self, StoredValue, PUSH_ADDRESSES};
use crate::adapters::vault::Vault;
use crate::error::{Error, Result};
use crate::model::ids::{AgentId, Principal, SessionId, TicketId, UserId};
use crate::model::language::Language;
use crate::model::push::{
    ApnsEnvironment, DueReminder, NewPush, NewReminder, PushKind, PushRegistration, PushTarget, QueuedPush,
    ReminderOutcome,
};
use crate::model::time::Millis;
use uuid::Uuid;

/// The columns [`RegistrationRow`] reads, the session's holder joined in (`r` the registration,
/// `s` its session).
const REGISTRATION_COLUMNS: &str = "r.session_id, s.user_id, s.agent_id, r.provider, r.environment, \
     r.address_sealed, r.address_key_id, r.preview, r.language, r.updated_at";

/// Whether session `?1` is live at `?2` (Postgres appends `FOR UPDATE`, so that a revocation
/// waits for the registration and its trigger then removes it).
pub(in crate::adapters::sql) const LIVE_SESSION: &str =
    "SELECT id FROM sessions WHERE id = ?1 AND revoked_at IS NULL AND expires_at > ?2";

/// Stores a registration, replacing the session's: `?1` session, `?2` its sealed address, `?3` the
/// key's id, `?4` provider, `?5` environment, `?6` preview, `?7` language, `?8` updated_at.
pub(in crate::adapters::sql) const UPSERT_REGISTRATION: &str = "INSERT INTO push_registrations \
     (session_id, address_sealed, address_key_id, provider, environment, preview, language, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
     ON CONFLICT (session_id) DO UPDATE SET address_sealed = excluded.address_sealed, \
     address_key_id = excluded.address_key_id, provider = excluded.provider, \
     environment = excluded.environment, preview = excluded.preview, language = excluded.language, \
     updated_at = excluded.updated_at";

/// What is queued for session `?1`.
pub(in crate::adapters::sql) const DROP_QUEUED: &str = "DELETE FROM push_queue WHERE session_id = ?1";

/// Removes session `?1`'s registration (its queue goes with it).
pub(in crate::adapters::sql) const DELETE_REGISTRATION: &str = "DELETE FROM push_registrations WHERE session_id = ?1";

/// The registrations on sessions not revoked; each backend appends the rest of the condition (the
/// holders, the expiry) and [`REGISTRATIONS_ORDER`].
pub(in crate::adapters::sql) fn registrations_where() -> String {
    format!(
        "SELECT {REGISTRATION_COLUMNS} FROM push_registrations r JOIN sessions s ON s.id = r.session_id \
         WHERE s.revoked_at IS NULL AND "
    )
}

/// The order registrations are listed in.
pub(in crate::adapters::sql) const REGISTRATIONS_ORDER: &str = " ORDER BY r.updated_at, r.session_id";

/// The user and agent ids among `who`, as the sessions' columns hold them.
pub(in crate::adapters::sql) fn holders(who: &[Principal]) -> (Vec<Uuid>, Vec<Uuid>) {
    let mut users = Vec::new();
    let mut agents = Vec::new();
    for w in who {
        match w {
            Principal::User(id) => users.push(id.0),
            Principal::Agent(id) => agents.push(id.0),
        }
    }
    (users, agents)
}

/// Folds a new notification into the one waiting for session `?1` and ticket `?2` (not claimed):
/// `?3` kind, `?4` preview, `?5` its events.
pub(in crate::adapters::sql) const COLLAPSE: &str =
    "UPDATE push_queue SET kind = ?3, preview = ?4, events = events + ?5 \
     WHERE session_id = ?1 AND ticket_id = ?2 AND leased_until IS NULL";

/// Queues a notification: `?1` session, `?2` ticket, `?3` kind, `?4` preview, `?5` events, `?6`
/// due_at, `?7` created_at.
pub(in crate::adapters::sql) const QUEUE: &str = "INSERT INTO push_queue \
     (session_id, ticket_id, kind, preview, events, attempts, due_at, leased_until, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, NULL, ?7)";

/// Leases up to `?2` notifications due at `?1` that no sender holds until `?3`, returning their
/// ids; `{lock}` is empty on SQLite (one writer) and `FOR UPDATE SKIP LOCKED` on Postgres, so
/// concurrent senders take different ones.
pub(in crate::adapters::sql) fn lease_due(lock: &str) -> String {
    format!(
        "UPDATE push_queue SET leased_until = ?3 WHERE id IN (SELECT id FROM push_queue \
         WHERE due_at <= ?1 AND (leased_until IS NULL OR leased_until < ?1) ORDER BY due_at, id LIMIT ?2 {lock}) \
         RETURNING id"
    )
}

/// Queued notifications with their registrations; each backend appends the list of ids.
pub(in crate::adapters::sql) fn queued_where() -> String {
    format!(
        "SELECT q.id, q.ticket_id, q.kind, q.preview AS preview_text, q.events, q.attempts, q.created_at, {REGISTRATION_COLUMNS}
         FROM push_queue q JOIN push_registrations r ON r.session_id = q.session_id
         JOIN sessions s ON s.id = r.session_id WHERE q.id "
    )
}

/// Removes notifications; each backend appends the list of ids.
pub(in crate::adapters::sql) const FINISH: &str = "DELETE FROM push_queue WHERE id ";

/// Puts notification `?1` back, due at `?2`, one attempt more.
pub(in crate::adapters::sql) const RETRY: &str =
    "UPDATE push_queue SET due_at = ?2, attempts = attempts + 1, leased_until = NULL WHERE id = ?1";

/// Agents with a registration on a session live at `?1`.
pub(in crate::adapters::sql) const REGISTERED_AGENTS: &str = "SELECT DISTINCT s.agent_id FROM push_registrations r \
     JOIN sessions s ON s.id = r.session_id \
     WHERE s.agent_id IS NOT NULL AND s.revoked_at IS NULL AND s.expires_at > ?1 ORDER BY s.agent_id";

/// User `?1`'s tickets with an event after the user's read mark.
pub(in crate::adapters::sql) const UNREAD: &str = "SELECT count(*) FROM tickets t \
     LEFT JOIN ticket_marks m ON m.ticket_id = t.id AND m.participant_kind = 'user' AND m.participant_id = t.user_id \
     WHERE t.user_id = ?1 AND t.last_seq > COALESCE(m.read_seq, 0)";

/// How many notifications wait and the oldest's queue time.
pub(in crate::adapters::sql) const BACKLOG: &str = "SELECT count(*), min(created_at) FROM push_queue";

/// Records an agent's reply for an SMS reminder: `?1` ticket, `?2` user, `?3` seq, `?4` due_at. A
/// reminder already waiting keeps its time; one claimed by a node meanwhile takes the new time (the
/// claim's outcome then leaves it, see [`SETTLE_REMINDER`]).
pub(in crate::adapters::sql) const PLAN_REMINDER: &str = "INSERT INTO sms_reminders \
     (ticket_id, user_id, seq, due_at, leased_until, attempts, sent_at) VALUES (?1, ?2, ?3, ?4, NULL, 0, NULL) \
     ON CONFLICT (ticket_id) DO UPDATE SET \
     seq = CASE WHEN excluded.seq > sms_reminders.seq THEN excluded.seq ELSE sms_reminders.seq END, \
     due_at = CASE WHEN sms_reminders.leased_until IS NULL THEN COALESCE(sms_reminders.due_at, excluded.due_at) \
     ELSE excluded.due_at END";

/// The tickets of up to `?2` reminders due at `?1` that no node holds (Postgres adds
/// `FOR UPDATE SKIP LOCKED`).
pub(in crate::adapters::sql) const DUE_REMINDERS: &str = "SELECT ticket_id FROM sms_reminders \
     WHERE due_at <= ?1 AND (leased_until IS NULL OR leased_until < ?1) ORDER BY due_at, ticket_id LIMIT ?2";

/// Marks ticket `?1`'s reminder claimed until `?2`.
pub(in crate::adapters::sql) const LEASE_REMINDER: &str =
    "UPDATE sms_reminders SET leased_until = ?2 WHERE ticket_id = ?1";

/// Ticket `?1`'s reminder with what decides it, registrations counted on sessions live at `?2`.
pub(in crate::adapters::sql) const DUE_REMINDER: &str = "SELECT r.ticket_id, r.user_id, r.seq, \
     COALESCE(m.read_seq, 0) AS read_seq, r.sent_at, r.attempts, COALESCE(c.sms_reminders, FALSE) AS consent, \
     EXISTS (SELECT 1 FROM push_registrations p JOIN sessions s ON s.id = p.session_id \
     WHERE s.user_id = r.user_id AND s.revoked_at IS NULL AND s.expires_at > ?2) AS registered \
     FROM sms_reminders r \
     LEFT JOIN ticket_marks m ON m.ticket_id = r.ticket_id AND m.participant_kind = 'user' AND m.participant_id = r.user_id \
     LEFT JOIN consent c ON c.user_id = r.user_id \
     WHERE r.ticket_id = ?1";

/// Ends the claim of ticket `?1`'s reminder taken at seq `?2`: `?3` the next time to look (NULL:
/// none; kept when a newer reply came meanwhile), `?4` the time one was sent (or NULL), `?5` whether
/// a send failed.
pub(in crate::adapters::sql) const SETTLE_REMINDER: &str = "UPDATE sms_reminders SET \
     due_at = CASE WHEN ?3 IS NULL AND seq > ?2 THEN due_at ELSE ?3 END, leased_until = NULL, \
     sent_at = COALESCE(?4, sent_at), attempts = CASE WHEN ?5 THEN attempts + 1 ELSE 0 END \
     WHERE ticket_id = ?1";

/// Binds [`SETTLE_REMINDER`]'s `?1` to `?5`, on either backend.
pub(in crate::adapters::sql) fn bind_settled<'q, DB>(
    query: Query<'q, DB>,
    ticket: TicketId,
    seq: u64,
    outcome: ReminderOutcome,
) -> Query<'q, DB>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let (due_at, sent_at, failed) = match outcome {
        ReminderOutcome::Sent(at) => (None, Some(at), false),
        ReminderOutcome::Dropped => (None, None, false),
        ReminderOutcome::Later { due_at, failed } => (Some(due_at), None, failed),
    };
    query.bind(ticket.0).bind(seq_column(seq)).bind(due_at).bind(sent_at).bind(failed)
}

/// Binds [`PLAN_REMINDER`]'s `?1` to `?4`, on either backend.
pub(in crate::adapters::sql) fn bind_reminder<'q, DB>(query: Query<'q, DB>, reminder: &NewReminder) -> Query<'q, DB>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query.bind(reminder.ticket_id.0).bind(reminder.user_id.0).bind(seq_column(reminder.seq)).bind(reminder.due_at)
}

/// A sequence number as its column holds it.
fn seq_column(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// `sms_reminders` with what decides a reminder: [`DUE_REMINDER`].
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct ReminderRow {
    ticket_id: Uuid,
    user_id: Uuid,
    seq: i64,
    read_seq: i64,
    sent_at: Option<Millis>,
    attempts: i64,
    consent: bool,
    registered: bool,
}

impl From<ReminderRow> for DueReminder {
    fn from(r: ReminderRow) -> Self {
        Self {
            ticket_id: TicketId(r.ticket_id),
            user_id: UserId(r.user_id),
            seq: u64::try_from(r.seq).unwrap_or(0),
            read_seq: u64::try_from(r.read_seq).unwrap_or(0),
            sent_at: r.sent_at,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            consent: r.consent,
            registered: r.registered,
        }
    }
}

/// A statement of either backend, its arguments being bound.
type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>;

/// What [`UPSERT_REGISTRATION`] stores of `registration`: its address sealed for its session.
pub(in crate::adapters::sql) fn stored_address(vault: &Vault, registration: &PushRegistration) -> StoredValue {
    PUSH_ADDRESSES.stored(vault, registration.session_id.0, &address_bytes(&registration.target))
}

/// Binds [`UPSERT_REGISTRATION`]'s `?1` to `?8` from `registration` and its `address` as
/// [`stored_address`] made it, on either backend.
pub(in crate::adapters::sql) fn bind_registration<'q, DB>(
    query: Query<'q, DB>,
    registration: &'q PushRegistration,
    address: &'q StoredValue,
) -> Query<'q, DB>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let environment = match &registration.target {
        PushTarget::Apns { environment, .. } => Some(environment.as_str()),
        PushTarget::Fcm { .. } | PushTarget::WebPush { .. } => None,
    };
    sealed::bind_value(query, registration.session_id.0, address)
        .bind(registration.target.provider())
        .bind(environment)
        .bind(registration.preview)
        .bind(registration.language.as_str())
        .bind(registration.updated_at)
}

/// Binds `push`'s `?1` session, `?2` ticket, `?3` kind, `?4` preview and `?5` events, on either
/// backend: all of [`COLLAPSE`]'s, and [`QUEUE`]'s first five (then `due_at` and `created_at`).
pub(in crate::adapters::sql) fn bind_queued<'q, DB>(query: Query<'q, DB>, push: &'q NewPush) -> Query<'q, DB>
where
    DB: sqlx::Database,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(push.session_id.0)
        .bind(push.ticket_id.0)
        .bind(push.kind.as_str())
        .bind(push.preview.as_deref())
        .bind(i64::from(push.events))
}

/// The value sealed for a target: an FCM or APNs token as its text, a Web Push subscription as
/// [`subscription_bytes`] lays it out.
fn address_bytes(target: &PushTarget) -> Vec<u8> {
    match target {
        PushTarget::Fcm { token } | PushTarget::Apns { token, .. } => token.as_bytes().to_vec(),
        PushTarget::WebPush { endpoint, p256dh, auth } => subscription_bytes(endpoint, p256dh, auth),
    }
}

/// A Web Push subscription as one value: the key's length (2 bytes, big-endian) and the key
/// (`p256dh`), the secret's length and the secret (`auth`), then the endpoint URL.
pub(in crate::adapters::sql) fn subscription_bytes(endpoint: &str, p256dh: &[u8], auth: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + p256dh.len() + auth.len() + endpoint.len());
    for part in [p256dh, auth] {
        // The gateway accepts keys of 65 bytes and secrets of 16; a longer part is cut, not wrapped.
        let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&part[..usize::from(len)]);
    }
    bytes.extend_from_slice(endpoint.as_bytes());
    bytes
}

/// The subscription [`subscription_bytes`] laid out: endpoint, p256dh, auth.
fn subscription(bytes: &[u8]) -> Option<(String, Vec<u8>, Vec<u8>)> {
    fn part(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
        let (len, rest) = bytes.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let (p256dh, rest) = part(bytes)?;
    let (auth, endpoint) = part(rest)?;
    Some((String::from_utf8(endpoint.to_vec()).ok()?, p256dh.to_vec(), auth.to_vec()))
}

/// `push_registrations` joined with its session: [`REGISTRATION_COLUMNS`].
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct RegistrationRow {
    session_id: Uuid,
    user_id: Option<Uuid>,
    agent_id: Option<Uuid>,
    provider: String,
    environment: Option<String>,
    address_sealed: Option<Vec<u8>>,
    address_key_id: Option<String>,
    preview: bool,
    language: String,
    updated_at: Millis,
}

impl RegistrationRow {
    /// The registration, its address opened.
    ///
    /// # Errors
    /// [`Error::Internal`] for a row that does not read (the message names an unknown key id).
    pub(in crate::adapters::sql) fn open(self, vault: &Vault) -> Result<PushRegistration> {
        let holder = match (self.user_id, self.agent_id) {
            (Some(user), None) => Principal::User(UserId(user)),
            (None, Some(agent)) => Principal::Agent(AgentId(agent)),
            _ => return Err(Error::Internal(format!("session {} has no single holder", self.session_id))),
        };
        let address = PUSH_ADDRESSES.open_row(vault, self.session_id, self.address_sealed, self.address_key_id)?;
        let token = || String::from_utf8(address.clone()).map_err(|_| internal("push_registrations.address", "token"));
        let target = match (self.provider.as_str(), self.environment) {
            ("fcm", None) => PushTarget::Fcm { token: token()? },
            ("apns", Some(env)) => PushTarget::Apns {
                token: token()?,
                environment: ApnsEnvironment::parse(&env)
                    .ok_or_else(|| internal("push_registrations.environment", &env))?,
            },
            ("webpush", None) => {
                let (endpoint, p256dh, auth) =
                    subscription(&address).ok_or_else(|| internal("push_registrations.address", "subscription"))?;
                PushTarget::WebPush { endpoint, p256dh, auth }
            }
            (provider, ..) => return Err(internal("push_registrations.provider", provider)),
        };
        Ok(PushRegistration {
            session_id: SessionId(self.session_id),
            holder,
            target,
            preview: self.preview,
            language: Language::parse(&self.language)
                .ok_or_else(|| internal("push_registrations.language", &self.language))?,
            updated_at: self.updated_at,
        })
    }
}

/// `push_queue` joined with its registration.
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct QueuedRow {
    id: i64,
    ticket_id: Uuid,
    kind: String,
    /// The queued preview text (`preview` is the registration's switch).
    preview_text: Option<String>,
    events: i64,
    attempts: i64,
    created_at: Millis,
    #[sqlx(flatten)]
    registration: RegistrationRow,
}

impl QueuedRow {
    /// The notification, its registration's address opened.
    ///
    /// # Errors
    /// As [`RegistrationRow::open`], and for an unknown kind.
    pub(in crate::adapters::sql) fn open(self, vault: &Vault) -> Result<QueuedPush> {
        let r = self;
        let count = |v: i64| u32::try_from(v.max(0)).unwrap_or(u32::MAX);
        Ok(QueuedPush {
            id: r.id,
            registration: r.registration.open(vault)?,
            ticket_id: TicketId(r.ticket_id),
            kind: PushKind::parse(&r.kind).ok_or_else(|| internal("push_queue.kind", &r.kind))?,
            preview: r.preview_text,
            events: count(r.events),
            attempts: count(r.attempts),
            created_at: r.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_reads_back_as_it_was_laid_out() {
        let (p256dh, auth) = ([4u8; 65], [7u8; 16]);
        let bytes = subscription_bytes("https://push.example/s/1", &p256dh, &auth);
        let (endpoint, key, secret) = subscription(&bytes).expect("reads");
        assert_eq!(
            (endpoint.as_str(), key.as_slice(), secret.as_slice()),
            ("https://push.example/s/1", &p256dh[..], &auth[..])
        );
        assert_eq!(subscription(&bytes[..3]), None, "cut short");
        assert_eq!(subscription(&[0, 200, 1]), None, "a length past the end");
    }
}
