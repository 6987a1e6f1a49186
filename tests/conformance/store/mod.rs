//! The one conformance suite: every behaviour the hub relies on from its store, written once and run
//! against every backend. `tests/storage.rs` runs [`CHECKS`] against SQLite always and against
//! Postgres when `TEST_DATABASE_URL` is set.
//!
//! The checks live in one file per port beside this one (`accounts.rs`, `sessions.rs`, `codes.rs`,
//! `agents.rs`, `tickets.rs`, `telemetry.rs`, `purchases.rs`, `account.rs`, `attachments.rs`,
//! `push.rs`, `ratings.rs`, `reports.rs`); this file holds what they
//! share, the list and the runner. To add a check, write `pub async fn name(store: Arc<dyn Store>) ->
//! Result<()>` in the file of its port and add its name to the `checks!` list below; every backend then runs it.
//!
//! Checks share one database, so each one works only on data it created itself (random numbers,
//! phone keys, emails, key names and ids) and never asserts on anything global, with two exceptions.
//! The purges delete across a whole table: their checks work in the first weeks of 1970, which no
//! other check touches (all others use the current time), and assert exact counts there; so does
//! the expired attachments' list, in a window of its own (`EXPIRY_EPOCH`, late January 1970). The ticket
//! lists (the queue, the lists by status) span every ticket: their check queues its tickets in 1971
//! (`QUEUE_EPOCH`), before any other check's (the reports' check writes in 1972, after it), and updates them in the year 3000 (`FAR_FUTURE`), after
//! any other check's, so that its tickets head those lists.
//!
//! A violated expectation panics (`assert!`); a storage error is returned as `Err`. Both fail the check.

use anapars_hub::error::{Error, Result};
use anapars_hub::model::account::Device;
use anapars_hub::model::account::{Holder, NewSession, PhoneKey, Session, SignInCode, TokenHash, User};
use anapars_hub::model::agent::{Agent, NewAgent};
use anapars_hub::model::ids::{AgentId, CodeId, SessionId, TicketId, UserId};
use anapars_hub::model::phone::Phone;
use anapars_hub::model::ticket::{Author, EventKind, NewMessage, NewTicket, Ticket, TicketStatus, Transition};
use anapars_hub::model::time::{now_ms, Millis};
use anapars_hub::ports::store::Store;
use futures_util::future::BoxFuture;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Barrier;
use uuid::Uuid;

mod account;
mod accounts;
mod agents;
mod attachments;
mod codes;
mod labels;
mod notes;
mod purchases;
mod push;
mod ratings;
mod reports;
mod search;
mod sessions;
mod telemetry;
mod tickets;

pub use account::*;
pub use accounts::*;
pub use agents::*;
pub use attachments::*;
pub use codes::*;
pub use labels::*;
pub use notes::*;
pub use purchases::*;
pub use push::*;
pub use ratings::*;
pub use reports::*;
pub use search::*;
pub use sessions::*;
pub use telemetry::*;
pub use tickets::*;

/// Tasks started at once by the concurrency checks.
const RACERS: usize = 16;
const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
/// The purge checks' window: 1970-01-12, long before anything another check writes.
const PURGE_EPOCH: Millis = 1_000_000_000;
/// The ticket lists' check queues its tickets from here (1971-01-01), after the purges' window and
/// before anything another check writes.
const QUEUE_EPOCH: Millis = 31_536_000_000;
/// ...and updates them from here (3000-01-01), after anything another check writes.
const FAR_FUTURE: Millis = 32_503_680_000_000;

// ---- Fresh data ----

/// A number no other check (and no real phone: country code 999 is unassigned) uses.
fn phone() -> Phone {
    Phone::from_e164(format!("+999{:011}", rand::random::<u64>() % 100_000_000_000))
}

/// A phone key shaped like the real ones (64 hex digits).
fn phone_key() -> PhoneKey {
    PhoneKey(format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()))
}

/// A token hash no other session has.
fn token() -> TokenHash {
    TokenHash(rand::random())
}

/// A newly registered user.
async fn user(store: &dyn Store) -> Result<User> {
    Ok(store.register_user(&phone(), now_ms()).await?.0)
}

/// A new device of `user`.
async fn device(store: &dyn Store, user: UserId) -> Result<Device> {
    store.upsert_device(user, &Uuid::new_v4().simple().to_string(), "Pixel 8", now_ms()).await
}

/// A session to create on `device`, with a fresh id and token.
fn new_session(device: &Device, created_at: Millis, expires_at: Millis) -> NewSession {
    NewSession {
        id: SessionId::generate(),
        holder: Holder::User { user: device.user_id, device: device.id },
        token_hash: token(),
        created_at,
        expires_at,
    }
}

/// Creates a session and returns it with the hash of its token.
async fn session(
    store: &dyn Store,
    device: &Device,
    created_at: Millis,
    expires_at: Millis,
) -> Result<(Session, TokenHash)> {
    let new = new_session(device, created_at, expires_at);
    Ok((store.create_session(&new).await?, new.token_hash))
}

/// A fresh, untried code for `phone_key`.
fn code(phone_key: &PhoneKey, created_at: Millis, expires_at: Millis) -> SignInCode {
    SignInCode {
        id: CodeId::generate(),
        phone_key: phone_key.clone(),
        code_hash: rand::random::<[u8; 32]>().to_vec(),
        created_at,
        expires_at,
        attempts: 0,
    }
}

/// An agent to create, with an email no other agent has.
fn new_agent() -> NewAgent {
    NewAgent {
        id: AgentId::generate(),
        email: format!("agent-{}@example.test", Uuid::new_v4().simple()),
        name: "Sam".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        created_at: now_ms(),
    }
}

/// A newly created agent.
async fn agent(store: &dyn Store) -> Result<Agent> {
    let new = new_agent();
    let created = store.create_agent(&new).await?;
    Ok(created.unwrap_or_else(|| panic!("creating an agent with the fresh email {} was refused", new.email)))
}

/// An agent session to create, with a fresh id and token.
fn new_agent_session(agent: AgentId, created_at: Millis, expires_at: Millis) -> NewSession {
    NewSession { id: SessionId::generate(), holder: Holder::Agent(agent), token_hash: token(), created_at, expires_at }
}

/// A ticket of `user` to open at `at`, with a fresh client_msg_id.
fn new_ticket(user: UserId, at: Millis) -> NewTicket {
    let client_msg_id = Uuid::new_v4().to_string();
    NewTicket {
        id: TicketId::generate(),
        user_id: user,
        subject: "The parcel did not arrive".into(),
        body: format!("first message {client_msg_id}"),
        attachments: Vec::new(),
        client_msg_id,
        created_at: at,
    }
}

/// A newly opened ticket of `user`.
async fn ticket(store: &dyn Store, user: UserId, at: Millis) -> Result<Ticket> {
    Ok(store.open_ticket(&new_ticket(user, at)).await?.ticket)
}

/// A message to append, with a fresh client_msg_id (which its body repeats, to tell messages apart).
fn message(ticket: TicketId, author: Author, at: Millis) -> NewMessage {
    let client_msg_id = Uuid::new_v4().to_string();
    NewMessage {
        ticket_id: ticket,
        author,
        body: format!("text of {client_msg_id}"),
        attachments: Vec::new(),
        client_msg_id,
        created_at: at,
    }
}

/// Agent `agent` takes the open ticket nobody holds.
fn claim(ticket: TicketId, agent: AgentId, now: Millis) -> Transition {
    Transition {
        ticket_id: ticket,
        from: vec![TicketStatus::Open],
        holder: Some(None),
        to: TicketStatus::Assigned,
        agent_id: Some(agent),
        kind: EventKind::Claimed,
        actor: Author::Agent(agent),
        now,
    }
}

/// Agent `agent`, holding the ticket, resolves it.
fn resolve(ticket: TicketId, agent: AgentId, now: Millis) -> Transition {
    Transition {
        ticket_id: ticket,
        from: vec![TicketStatus::Assigned],
        holder: Some(Some(agent)),
        to: TicketStatus::Resolved,
        agent_id: Some(agent),
        kind: EventKind::Resolved,
        actor: Author::Agent(agent),
        now,
    }
}

/// Applies a transition that must apply.
async fn apply(store: &dyn Store, t: &Transition) -> Result<Ticket> {
    match store.transition(t).await? {
        Some((ticket, _)) => Ok(ticket),
        None => panic!("the transition {:?} of ticket {} did not apply", t.kind, t.ticket_id),
    }
}

/// Runs `RACERS` copies of an operation as separate tasks released together by a barrier, so that
/// on a multi-threaded runtime they really overlap, and returns every result in task order.
async fn race<T, Fut>(make: impl Fn(usize) -> Fut) -> Result<Vec<T>>
where
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let start = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let run = make(i);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                run.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(RACERS);
    for task in tasks {
        match task.await {
            Ok(result) => results.push(result?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => return Err(Error::Internal(format!("racing task did not finish: {e}"))),
        }
    }
    Ok(results)
}

/// What `RACERS` atomic increments from zero must have returned, sorted.
fn one_to_racers() -> Vec<u32> {
    (1..=RACERS as u32).collect()
}

// ---- The list ----

/// One named check of the suite.
#[derive(Clone, Copy)]
pub struct Check {
    /// The check function's name.
    pub name: &'static str,
    /// Runs the check against a store.
    pub run: fn(Arc<dyn Store>) -> BoxFuture<'static, Result<()>>,
}

macro_rules! checks {
    ($($name:ident),+ $(,)?) => {
        /// Every check of the suite, in the order [`run_all`] runs them.
        pub const CHECKS: &[Check] = &[$(Check { name: stringify!($name), run: |store| Box::pin($name(store)) }),+];
    };
}

checks![
    register_user_creates_a_user_once,
    register_user_is_race_free,
    upsert_device_creates_then_updates_in_place,
    upsert_device_is_race_free,
    sessions_round_trip_by_id_and_token,
    sessions_refuse_duplicate_tokens_and_foreign_devices,
    rotate_session_replaces_the_token,
    rotate_session_refuses_sessions_that_are_not_live,
    rotate_session_races_leave_one_token,
    revoke_session_succeeds_once,
    revoke_session_races_have_one_winner,
    revoke_user_sessions_revokes_only_live_ones_except_keep,
    purge_sessions_deletes_only_what_ended_before_the_cutoff,
    dead_sessions_are_the_revoked_expired_and_unknown,
    put_code_keeps_only_the_newest_code,
    put_code_races_leave_one_working_code,
    current_code_skips_used_codes_but_not_expired_ones,
    count_attempt_counts_every_try_atomically,
    consume_code_succeeds_for_exactly_one_caller,
    purge_codes_deletes_only_codes_expired_before_the_cutoff,
    phone_guard_counts_failures_and_lockouts,
    add_failure_is_atomic,
    clear_guard_forgets_the_number,
    key_or_insert_keeps_the_first_key,
    key_or_insert_races_agree_on_one_key,
    ping_answers_and_backend_is_named,
    create_agent_refuses_a_taken_email_in_any_case,
    create_agent_races_have_one_winner,
    set_agent_status_changes_status_and_capacity,
    disable_agent_revokes_every_live_session,
    disable_agent_races_with_new_sessions_leave_none_live,
    agent_sessions_rotate_and_revoke,
    canned_replies_belong_to_their_agent,
    open_ticket_stores_the_ticket_and_its_first_two_events,
    open_ticket_races_create_one_ticket,
    append_messages_numbers_concurrent_appends_without_gaps,
    append_batches_over_shared_tickets_do_not_deadlock,
    append_messages_answers_in_batch_order,
    append_messages_store_a_client_msg_id_once,
    append_messages_races_on_one_client_msg_id_store_it_once,
    messages_racing_transitions_are_decided_against_the_stored_ticket,
    a_user_message_reopens_a_resolved_ticket,
    messages_to_a_resolved_ticket_from_anyone_but_its_user_are_refused,
    messages_from_who_may_not_write_are_refused,
    a_mixed_batch_stores_each_new_message_once_and_refuses_only_the_refused,
    transition_applies_only_when_the_guard_matches,
    concurrent_claims_have_one_winner,
    events_page_forward_and_backward,
    marks_never_go_down,
    concurrent_marks_keep_the_highest,
    ticket_lists_follow_queue_and_update_order,
    assigned_tickets_are_listed_and_counted_per_agent,
    changed_since_lists_tickets_by_their_last_change,
    store_telemetry_stores_a_mixed_batch_in_order,
    store_telemetry_refuses_views_without_analytics_consent,
    device_history_records_changes_only_and_is_bounded,
    latest_device_report_is_the_newest_of_any_device,
    consent_changes_purge_what_they_cover,
    purge_telemetry_deletes_only_what_is_past_its_window,
    change_phone_moves_the_account_and_refuses_a_taken_number,
    account_pages_list_everything_once_in_order,
    delete_account_leaves_nothing_of_the_account,
    record_purchase_stores_a_report_once,
    purchase_status_only_leaves_paid,
    purchase_expiry_only_moves_later,
    record_purchase_refuses_a_reused_reference,
    record_purchase_of_an_unknown_user_is_not_found,
    record_purchase_races_store_one_row,
    purchases_are_the_users_own_newest_first,
    create_attachment_starts_an_upload,
    advance_upload_moves_only_from_the_stored_offset,
    finish_upload_stores_the_content_of_a_complete_upload,
    upload_limits_hold_under_concurrency,
    messages_carry_their_authors_uploads_all_or_none,
    expired_attachments_are_the_unattached_past_their_time,
    delete_attachment_returns_the_record_once,
    uploaded_by_lists_the_uploaders_own_oldest_first,
    deleting_an_account_deletes_its_attachments,
    push_registrations_live_and_die_with_their_session,
    the_push_queue_collapses_and_gives_each_to_one_sender,
    sms_reminders_wait_per_ticket_and_go_to_one_node,
    notes_are_a_stream_of_their_own_per_ticket,
    labels_are_unique_by_key_and_go_on_and_off_tickets,
    ratings_are_one_per_resolution_of_a_resolved_ticket,
    ratings_go_with_their_ticket,
    reports_read_state_changes_and_first_responses_and_add_them_up,
    search_finds_folded_words_with_filters_and_pages,
    search_finds_the_words_inside_codes_amounts_and_addresses,
    search_ranks_only_the_newest_matches,
    search_finds_customers_by_folded_name,
];

/// The outcome of the suite against one store.
#[derive(Debug)]
pub struct Report {
    /// The store's [`Store::backend`].
    pub backend: &'static str,
    /// Names of the checks that passed.
    pub passed: Vec<&'static str>,
    /// Names of the checks that failed, each with its panic message or error.
    pub failed: Vec<(&'static str, String)>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.passed.len() + self.failed.len();
        write!(f, "{}: {} of {total} conformance checks passed", self.backend, self.passed.len())?;
        for (name, why) in &self.failed {
            write!(f, "\n  FAILED {name}: {why}")?;
        }
        Ok(())
    }
}

/// Runs every check in [`CHECKS`] against `store`. Checks run one after another (the concurrency
/// lives inside them), each in its own task, so that a failed assertion is reported against its
/// check and the remaining checks still run. Call it on a multi-threaded runtime so that the racing
/// tasks really run in parallel.
pub async fn run_all(store: Arc<dyn Store>) -> Report {
    let mut report = Report { backend: store.backend(), passed: Vec::new(), failed: Vec::new() };
    for check in CHECKS {
        let outcome = match tokio::spawn((check.run)(Arc::clone(&store))).await {
            Ok(Ok(())) => Ok(()),
            // Debug, not Display: the test log should show an internal error's detail.
            Ok(Err(e)) => Err(format!("storage error: {e:?}")),
            Err(e) if e.is_panic() => Err(panic_message(e.into_panic())),
            Err(e) => Err(format!("the check's task did not finish: {e}")),
        };
        match outcome {
            Ok(()) => report.passed.push(check.name),
            Err(why) => report.failed.push((check.name, why)),
        }
    }
    report
}

/// The text of a panic (an `assert!` message), whichever string type it carried.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(|| "panicked".to_owned(), |s| (*s).to_owned()),
    }
}
