//! Tickets' history by month on Postgres: the upgrade to a partitioned `ticket_events` keeps every
//! event where conversations, resuming and duplicate checks find it; the months ahead are prepared
//! at start; an event stamped outside every month is stored anyway and moves into its month later;
//! old months go only when a retention is configured, and then only those wholly past it.
//!
//! Postgres only: each test says so and passes without `TEST_DATABASE_URL`. The months are worked
//! out here with the civil calendar, not with the database's date functions the hub uses.

mod common;

use anapars_hub::model::agent::NewAgent;
use anapars_hub::model::ids::{AgentId, TicketId, UserId};
use anapars_hub::model::phone::Phone;
use anapars_hub::model::ticket::{Appended, Author, EventKind, NewMessage, NewTicket, Page, TicketEvent, Transition};
use anapars_hub::model::time::{now_ms, Millis};
use anapars_hub::ports::store::reports::ReportScope;
use anapars_hub::ports::store::Store;
use anapars_hub::protocol::Encoding;
use anapars_hub::Config;
use common::hub::{Client, TestHub};
use common::{postgres_or_skip, TestDatabase};
use serde_json::{json, Value};
use sqlx::postgres::PgConnection;
use sqlx::Connection;
use std::sync::Arc;

const DAY: Millis = 86_400_000;
/// 2025-02-01 00:30 UTC: half an hour into a month, so that a clock 90 minutes behind stamps the
/// month before.
const FEBRUARY_1_2025: Millis = 1_738_369_800_000;

/// The UTC calendar month `(year, month)` holding `at` (days to civil date, proleptic Gregorian).
fn month_of(at: Millis) -> (i64, i64) {
    let z = at.div_euclid(DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month)
}

/// The month `n` months after `(year, month)`.
fn months_after((year, month): (i64, i64), n: i64) -> (i64, i64) {
    let index = year * 12 + (month - 1) + n;
    (index.div_euclid(12), index.rem_euclid(12) + 1)
}

/// The partition that holds the events of `(year, month)`.
fn partition((year, month): (i64, i64)) -> String {
    format!("ticket_events_{year:04}_{month:02}")
}

async fn sql(config: &Config) -> PgConnection {
    let url = &config.database_url.as_ref().expect("a postgres test database").0;
    PgConnection::connect(url).await.expect("connect to the test database")
}

/// The partitions of `ticket_events`, by name.
async fn partitions(c: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'ticket_events'::regclass ORDER BY 1",
    )
    .fetch_all(c)
    .await
    .expect("list the partitions")
}

/// Where each event of `ticket` is stored: (seq, partition), by seq.
async fn placed(c: &mut PgConnection, ticket: uuid::Uuid) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT seq, tableoid::regclass::text FROM ticket_events WHERE ticket_id = $1 ORDER BY seq")
        .bind(ticket)
        .fetch_all(c)
        .await
        .expect("read the events' partitions")
}

async fn open(store: &Arc<dyn Store>, user: UserId, at: Millis) -> TicketId {
    let new = NewTicket {
        id: TicketId::generate(),
        user_id: user,
        subject: "subject".into(),
        body: format!("opened at {at}"),
        attachments: Vec::new(),
        client_msg_id: uuid::Uuid::new_v4().to_string(),
        created_at: at,
    };
    store.open_ticket(&new).await.expect("open a ticket").ticket.id
}

/// A store, and a user of it.
async fn store_with_user(config: &Config) -> (Arc<dyn Store>, UserId) {
    let store = store_of(config).await;
    let user = store.register_user(&Phone::from_e164("+989121234567"), now_ms()).await.expect("register").0.id;
    (store, user)
}

/// A store over a database whose months go back half a year, a user, and a ticket of theirs opened
/// now (the time returned).
async fn opened_now_beside_older_months(db: &TestDatabase) -> (Arc<dyn Store>, UserId, TicketId, Millis) {
    let (store, user) = store_with_user(&db.config).await;
    let now = now_ms();
    store.prepare_event_months(now - 200 * DAY, 9).await.expect("prepare the months");
    let ticket = open(&store, user, now).await;
    (store, user, ticket, now)
}

/// A connection holding `month`'s partition locked, as an `ALTER` or a `DROP` of it would, until
/// it rolls back.
async fn lock_month(config: &Config, month: &str) -> PgConnection {
    let mut locker = sql(config).await;
    sqlx::query("BEGIN").execute(&mut locker).await.expect("begin");
    sqlx::query(&format!("LOCK TABLE {month} IN ACCESS EXCLUSIVE MODE")).execute(&mut locker).await.expect("lock");
    locker
}

/// A message of `author` to `ticket` under `key`, written at `at`.
fn says(ticket: TicketId, author: Author, key: &str, body: &str, at: Millis) -> NewMessage {
    NewMessage {
        ticket_id: ticket,
        author,
        client_msg_id: key.into(),
        body: body.into(),
        attachments: Vec::new(),
        created_at: at,
    }
}

/// A new agent.
async fn agent(store: &Arc<dyn Store>, at: Millis) -> AgentId {
    let new = NewAgent {
        id: AgentId::generate(),
        email: format!("{}@example.test", uuid::Uuid::new_v4().simple()),
        name: "Sam".into(),
        password_hash: "hash".into(),
        created_at: at,
    };
    store.create_agent(&new).await.expect("create an agent").expect("a fresh email").id
}

/// `ticket` claimed by `agent` at `at`, who answers at `answered`: the events a report measures.
async fn claim_and_answer(store: &Arc<dyn Store>, ticket: TicketId, agent: AgentId, at: Millis, answered: Millis) {
    store.transition(&Transition::claim(ticket, agent, Author::Agent(agent), at)).await.expect("claim").expect("open");
    let answer = says(ticket, Author::Agent(agent), "answer", "answer", answered);
    let stored = store.append_messages(&[answer]).await.expect("append");
    assert!(matches!(&stored[..], [Appended::Stored { .. }]), "{stored:?}");
}

/// A report's events as (seq, kind).
fn measured(events: Vec<TicketEvent>) -> Vec<(u64, EventKind)> {
    events.into_iter().map(|e| (e.seq, e.kind)).collect()
}

async fn store_of(config: &Config) -> Arc<dyn Store> {
    anapars_hub::adapters::sql::connect(config).await.expect("open the test database")
}

/// The seqs and bodies of a `ticket.history` answer.
fn page(answer: &Value) -> Vec<(u64, String)> {
    let events = answer["events"].as_array().unwrap_or_else(|| panic!("no events in {answer}"));
    events.iter().map(|e| (e["seq"].as_u64().unwrap(), e["body"].as_str().unwrap_or_default().to_owned())).collect()
}

async fn history(agent: &mut Client, ticket: uuid::Uuid, extra: Value) -> Vec<(u64, String)> {
    let mut frame = json!({"type": "ticket.history", "ticket_id": ticket.to_string()});
    for (k, v) in extra.as_object().unwrap() {
        frame[k] = v.clone();
    }
    page(&agent.request(frame).await)
}

/// A database made by the release before partitions, with a conversation over three months (its
/// texts not yet folded for search, as a database from before search had them), then upgraded by
/// starting the hub: every event is in its month's partition, an agent reads the whole
/// conversation, a page before a seq and the events after one (what a reconnecting client asks
/// for), new events land in this month, and a resent message is still found as a duplicate.
#[tokio::test]
async fn the_upgrade_keeps_every_event_in_its_month() {
    let Some(url) = postgres_or_skip("the_upgrade_keeps_every_event_in_its_month") else { return };
    const LAST_BEFORE: i64 = 22;
    let db = TestDatabase::postgres(&url).await;
    let (user, ticket) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let (jan, feb, mar) = (1_736_942_400_000_i64, 1_739_620_800_000_i64, 1_742_040_000_000_i64);
    // seq, kind, time, body, client_msg_id
    let events: [(i64, &str, Millis, &str, Option<&str>); 6] = [
        (1, "opened", jan, "card charged twice", None),
        (2, "message", jan, "first", Some("c-1")),
        (3, "message", feb, "second", Some("c-2")),
        (4, "message", feb + 60_000, "third", Some("c-3")),
        (5, "message", mar, "fourth", Some("c-4")),
        (6, "message", mar + 60_000, "fifth", Some("c-5")),
    ];
    {
        let mut conn = sql(&db.config).await;
        common::migrate_up_to(&mut conn, "postgres", LAST_BEFORE).await;
        sqlx::query("INSERT INTO users (id, registered_at) VALUES ($1, $2)")
            .bind(user)
            .bind(jan)
            .execute(&mut conn)
            .await
            .expect("an old user");
        sqlx::query(
            "INSERT INTO tickets (id, user_id, subject, status, open_client_msg_id, created_at, updated_at, queued_at,
                                  last_seq)
             VALUES ($1, $2, 'card charged twice', 'open', 'c-1', $3, $4, $3, 6)",
        )
        .bind(ticket)
        .bind(user)
        .bind(jan)
        .bind(mar + 60_000)
        .execute(&mut conn)
        .await
        .expect("an old ticket");
        for (seq, kind, at, body, cmid) in events {
            sqlx::query(
                "INSERT INTO ticket_events (ticket_id, seq, kind, author_kind, author_id, body, client_msg_id,
                                            created_at)
                 VALUES ($1, $2, $3, 'user', $4, $5, $6, $7)",
            )
            .bind(ticket)
            .bind(seq)
            .bind(kind)
            .bind(user)
            .bind(body)
            .bind(cmid)
            .bind(at)
            .execute(&mut conn)
            .await
            .expect("an old event");
        }
    }
    let hub = TestHub::start(db, None, |_| {}).await;
    let mut conn = sql(&hub.database().config).await;
    let kind: String = sqlx::query_scalar("SELECT relkind::text FROM pg_class WHERE relname = 'ticket_events'")
        .fetch_one(&mut conn)
        .await
        .expect("the table");
    assert_eq!(kind, "p", "ticket_events is partitioned");
    let expected: Vec<(i64, String)> = events.iter().map(|e| (e.0, partition(month_of(e.2)))).collect();
    assert_eq!(placed(&mut conn, ticket).await, expected, "each event in its month");

    let (token, _) = hub.agent("Sara").await;
    let mut agent = hub.connect_agent(Encoding::Json, &token).await;
    let whole = history(&mut agent, ticket, json!({})).await;
    let bodies: Vec<(u64, String)> = events.iter().map(|e| (e.0 as u64, e.3.to_owned())).collect();
    assert_eq!(whole, bodies, "the whole conversation");
    assert_eq!(history(&mut agent, ticket, json!({"after_seq": 3})).await, bodies[3..].to_vec(), "resuming after 3");
    assert_eq!(
        history(&mut agent, ticket, json!({"before_seq": 5, "limit": 2})).await,
        bodies[2..4].to_vec(),
        "the page before 5"
    );

    let claimed = agent.request(json!({"type": "ticket.claim", "ticket_id": ticket.to_string()})).await;
    assert_eq!(claimed["ticket"]["last_seq"], 7, "{claimed}");
    let send = json!({"type": "ticket.send", "ticket_id": ticket.to_string(), "client_msg_id": "a-1", "body": "on it"});
    let first = agent.request(send.clone()).await;
    let again = agent.request(send).await;
    assert_eq!((first["seq"].as_u64(), first["duplicate"].as_bool()), (Some(8), Some(false)), "{first}");
    assert_eq!((again["seq"].as_u64(), again["duplicate"].as_bool()), (Some(8), Some(true)), "{again}");
    let now = partition(month_of(now_ms()));
    let newest: Vec<(i64, String)> = placed(&mut conn, ticket).await.split_off(6);
    assert_eq!(newest, [(7, now.clone()), (8, now)], "new events in this month");

    // The user's app resends a message of February from its outbox: found, not stored again.
    let store = &hub.running.as_ref().expect("running").hub.store;
    let resent = says(TicketId(ticket), Author::User(UserId(user)), "c-3", "third", now_ms());
    let outcome = store.append_messages(&[resent]).await.expect("append");
    assert!(matches!(&outcome[..], [Appended::Duplicate(e)] if e.seq == 4), "{outcome:?}");
}

/// The hub prepares this month's partition and the three after it at start, whatever the database
/// had (here: the months ahead that the migration made are gone); messages land in this month's;
/// preparing again creates only what is missing.
#[tokio::test]
async fn the_months_ahead_are_prepared_at_start() {
    let Some(url) = postgres_or_skip("the_months_ahead_are_prepared_at_start") else { return };
    let db = TestDatabase::postgres(&url).await;
    let this = month_of(now_ms());
    let ahead = anapars_hub::domain::tickets::history::MONTHS_AHEAD as i64;
    let mut expected: Vec<String> = (0..=ahead).map(|n| partition(months_after(this, n))).collect();
    expected.push("ticket_events_default".into());
    expected.sort();
    let months = anapars_hub::domain::tickets::history::MONTHS_AHEAD;
    let mut conn = sql(&db.config).await;

    // Preparing creates only what is missing (no hub running: nothing else prepares meanwhile).
    {
        let store = store_of(&db.config).await;
        let last = partition(months_after(this, ahead));
        sqlx::query(&format!("DROP TABLE {last}")).execute(&mut conn).await.expect("drop a month ahead");
        assert_eq!(store.prepare_event_months(now_ms(), months).await.expect("prepare"), 1, "only the missing month");
        assert_eq!(store.prepare_event_months(now_ms(), months).await.expect("prepare again"), 0);
        assert_eq!(partitions(&mut conn).await, expected);
    }

    // The hub prepares them at start.
    for n in 1..=ahead {
        let month = partition(months_after(this, n));
        sqlx::query(&format!("DROP TABLE {month}")).execute(&mut conn).await.expect("drop a month ahead");
    }
    assert_eq!(partitions(&mut conn).await.len(), 2, "this month and the default left");
    let hub = TestHub::start(db, None, |_| {}).await;
    assert_eq!(partitions(&mut conn).await, expected, "prepared by the hub at start");

    let token = hub.token(&common::hub::phone()).await;
    let mut user = hub.connect_as(Encoding::Json, &token).await;
    let opened =
        user.request(json!({"type": "ticket.open", "subject": "s", "body": "hello", "client_msg_id": "o-1"})).await;
    let ticket: uuid::Uuid = opened["ticket"]["id"].as_str().expect("a ticket id").parse().unwrap();
    let month = partition(this);
    assert_eq!(placed(&mut conn, ticket).await, [(1, month.clone()), (2, month)]);
}

/// An event stamped in a month without a partition (far past or far future: a node's clock far
/// off) is stored in the default partition and read like any other; preparing its month moves it
/// there. Nodes preparing the same months at once create each once, and neither fails.
#[tokio::test]
async fn an_event_outside_every_month_is_stored_and_moves_into_its_month() {
    let Some(url) = postgres_or_skip("an_event_outside_every_month_is_stored_and_moves_into_its_month") else {
        return;
    };
    let db = TestDatabase::postgres(&url).await;
    let (store, user) = store_with_user(&db.config).await;
    let (future, past) = (now_ms() + 700 * DAY, 978_350_400_000); // about two years on; 2001-01-01
    let (later, earlier) = (open(&store, user, future).await, open(&store, user, past).await);
    let mut conn = sql(&db.config).await;
    for ticket in [later, earlier] {
        assert_eq!(
            placed(&mut conn, ticket.0).await,
            [(1, "ticket_events_default".into()), (2, "ticket_events_default".into())]
        );
        assert_eq!(store.events(ticket, Page::After(0), 10).await.expect("read").len(), 2);
    }

    assert_eq!(store.prepare_event_months(future, 0).await.expect("prepare"), 1);
    let month = partition(month_of(future));
    assert_eq!(placed(&mut conn, later.0).await, [(1, month.clone()), (2, month)], "moved into its month");
    assert_eq!(placed(&mut conn, earlier.0).await[0].1, "ticket_events_default", "the other stays");
    let read = store.events(later, Page::After(1), 10).await.expect("read");
    assert_eq!(
        read.iter().map(|e| e.body.clone().unwrap_or_default()).collect::<Vec<_>>(),
        [format!("opened at {future}")]
    );
    let searchable: Option<bool> = sqlx::query_scalar(
        "SELECT search_vector @@ to_tsquery('simple', 'opened') FROM ticket_events WHERE ticket_id = $1 AND seq = 2",
    )
    .bind(later.0)
    .fetch_one(&mut conn)
    .await
    .expect("the moved event");
    assert_eq!(searchable, Some(true), "its search vector moved with it");

    let other = store_of(&db.config).await;
    let far = future + 400 * DAY;
    let (a, b) = tokio::join!(store.prepare_event_months(far, 2), other.prepare_event_months(far, 2));
    assert_eq!(a.expect("one node") + b.expect("another node"), 3, "three months, each created once");
}

/// A conversation is read whole across months, whatever the clocks of the nodes that stored it: a
/// message stamped by a node whose clock is behind, in the month before the ticket was opened, is
/// stored in that month and is in every page of the conversation, and so are the later ones. A
/// read that started at the ticket's opening, without the day of clock skew the hub allows, would
/// miss it.
#[tokio::test]
async fn a_conversation_is_read_from_every_month_its_events_can_be_in() {
    let Some(url) = postgres_or_skip("a_conversation_is_read_from_every_month_its_events_can_be_in") else {
        return;
    };
    let db = TestDatabase::postgres(&url).await;
    let (store, user) = store_with_user(&db.config).await;
    // The months from December 2024 to March 2025 exist.
    let opened = FEBRUARY_1_2025;
    store.prepare_event_months(opened - 60 * DAY, 3).await.expect("prepare the months");
    let ticket = open(&store, user, opened).await;
    let message = |key: &str, at: Millis| says(ticket, Author::User(user), key, key, at);
    // Another node's clock was 90 minutes behind: January 31, 23:00.
    let behind = message("behind", opened - 90 * 60_000);
    let after = message("after", opened + 60_000);
    for m in [behind, after] {
        let stored = store.append_messages(&[m]).await.expect("append");
        assert!(matches!(&stored[..], [Appended::Stored { .. }]), "{stored:?}");
    }
    let mut conn = sql(&db.config).await;
    let months: Vec<String> = placed(&mut conn, ticket.0).await.into_iter().map(|(_, month)| month).collect();
    assert_eq!(
        months,
        ["ticket_events_2025_02", "ticket_events_2025_02", "ticket_events_2025_01", "ticket_events_2025_02"]
    );

    let bodies = |events: Vec<anapars_hub::model::ticket::TicketEvent>| -> Vec<(u64, String)> {
        events.into_iter().map(|e| (e.seq, e.body.unwrap_or_default())).collect()
    };
    let whole = bodies(store.events(ticket, Page::After(0), 10).await.expect("read after"));
    assert_eq!(whole.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(whole[2], (3, "behind".into()));
    assert_eq!(bodies(store.events(ticket, Page::After(2), 10).await.expect("resume")), whole[2..]);
    assert_eq!(bodies(store.events(ticket, Page::Before(5), 2).await.expect("read before")), whole[2..]);
    assert_eq!(bodies(store.events(ticket, Page::Before(4), 10).await.expect("read before")), whole[..3]);
}

/// A conversation's pages and a resume read only the months from a day before the ticket was
/// opened: with a month of half a year ago locked by another transaction (as an `ALTER` or a
/// `DROP` of it would), reading a ticket opened now neither waits for it nor fails, whether the
/// store knows the ticket (it opened it) or reads its opening from the row. Reading every month,
/// as a store without the bound does, waits on the lock until the call's deadline.
#[tokio::test]
async fn a_recent_conversation_is_read_without_touching_older_months() {
    let Some(url) = postgres_or_skip("a_recent_conversation_is_read_without_touching_older_months") else {
        return;
    };
    let db = TestDatabase::postgres(&url).await;
    let (store, user, ticket, now) = opened_now_beside_older_months(&db).await;
    let sent = says(ticket, Author::User(user), "m", "m", now);
    let stored = store.append_messages(&[sent]).await.expect("append");
    assert!(matches!(&stored[..], [Appended::Stored { .. }]), "{stored:?}");

    let mut locker = lock_month(&db.config, &partition(months_after(month_of(now), -6))).await;

    let reads = |store: Arc<dyn Store>| async move {
        let after = store.events(ticket, Page::After(0), 10).await.expect("read after");
        let before = store.events(ticket, Page::Before(3), 10).await.expect("read before");
        (after.len(), before.len())
    };
    let known = tokio::time::timeout(std::time::Duration::from_secs(3), reads(store.clone())).await;
    assert_eq!(known.expect("a read waited on a month before the ticket"), (3, 2));
    // A store that has not seen the ticket reads its opening from the row.
    let fresh = store_of(&db.config).await;
    let unknown = tokio::time::timeout(std::time::Duration::from_secs(3), reads(fresh)).await;
    assert_eq!(unknown.expect("a read waited on a month before the ticket"), (3, 2));
    sqlx::query("ROLLBACK").execute(&mut locker).await.expect("rollback");
}

/// A ticket's report (read on every claim and resolution for the support-time histograms) reads
/// only the months from a day before the ticket was opened: with a month of half a year ago locked
/// by another transaction, it neither waits nor fails, whether the store knows the ticket (it opened
/// it) or reads its opening from the row. A report that reads every month waits on the lock until
/// the call's deadline.
#[tokio::test]
async fn a_recent_ticket_is_reported_without_touching_older_months() {
    let Some(url) = postgres_or_skip("a_recent_ticket_is_reported_without_touching_older_months") else {
        return;
    };
    let db = TestDatabase::postgres(&url).await;
    let (store, _, ticket, now) = opened_now_beside_older_months(&db).await;
    claim_and_answer(&store, ticket, agent(&store, now).await, now + 1, now + 2).await;

    let mut locker = lock_month(&db.config, &partition(months_after(month_of(now), -6))).await;

    let expected = [(1, EventKind::Opened), (3, EventKind::Claimed), (4, EventKind::Message)];
    for store in [store.clone(), store_of(&db.config).await] {
        let report =
            tokio::time::timeout(std::time::Duration::from_secs(3), store.report_events(ReportScope::Ticket(ticket)))
                .await
                .expect("a report waited on a month before the ticket");
        assert_eq!(measured(report.expect("report")), expected);
    }
    sqlx::query("ROLLBACK").execute(&mut locker).await.expect("rollback");
    let gone = store.report_events(ReportScope::Ticket(TicketId::generate())).await.expect("report");
    assert!(gone.is_empty(), "{gone:?}");
}

/// A search takes its newest matches month by month, newest first, the events outside every month
/// last: with matches this month, three months ago, half a year ago and ten years ago (before
/// every month, so in the default partition), each larger set adds the next older ones, and the
/// best match, the oldest, is first once it is among them.
#[tokio::test]
async fn a_search_takes_the_newest_matches_month_by_month() {
    let Some(url) = postgres_or_skip("a_search_takes_the_newest_matches_month_by_month") else {
        return;
    };
    let db = TestDatabase::postgres(&url).await;
    let (store, user, ticket, now) = opened_now_beside_older_months(&db).await;
    let tag = format!("z{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let user_says =
        |ticket, body: &str, at| says(ticket, Author::User(user), &uuid::Uuid::new_v4().to_string(), body, at);
    let (months_ago_3, months_ago_6, years_ago_10) = (now - 90 * DAY, now - 180 * DAY, now - 3650 * DAY);
    for at in [years_ago_10, months_ago_6, months_ago_3] {
        let earlier = open(&store, user, at).await;
        let body = if at == years_ago_10 { format!("{tag} {tag} {tag}") } else { format!("{tag} then") };
        store.append_messages(&[user_says(earlier, &body, at + 1)]).await.expect("append");
    }
    for at in now + 1..=now + 3 {
        store.append_messages(&[user_says(ticket, &format!("{tag} now"), at)]).await.expect("append");
    }
    let search = async |ranked| {
        let query = anapars_hub::model::search::SearchQuery {
            words: anapars_hub::domain::tickets::search::query_words(&tag),
            limit: 50,
            ranked,
            ..Default::default()
        };
        store.search(&query).await.expect("search").iter().map(|h| h.at).collect::<Vec<_>>()
    };

    let this_month = [now + 3, now + 2, now + 1];
    assert_eq!(search(3).await, this_month);
    assert_eq!(search(4).await, [&this_month[..], &[months_ago_3 + 1]].concat());
    assert_eq!(search(5).await, [&this_month[..], &[months_ago_3 + 1, months_ago_6 + 1]].concat());
    assert_eq!(
        search(6).await,
        [&[years_ago_10 + 1], &this_month[..], &[months_ago_3 + 1, months_ago_6 + 1]].concat(),
        "the best match, outside every month, comes last and ranks first"
    );
}

/// Customers' names are found through the names' trigram index, not by reading every user's row:
/// among 200,000 customers (fewer fit in so few pages that reading them all is cheaper), the one
/// named so is found, and the index's count of scans grows.
#[tokio::test]
async fn customers_are_found_by_name_through_the_index() {
    let Some(url) = postgres_or_skip("customers_are_found_by_name_through_the_index") else {
        return;
    };
    let db = TestDatabase::postgres(&url).await;
    let (store, user) = store_with_user(&db.config).await;
    let ticket = open(&store, user, now_ms()).await;
    let mut c = sql(&db.config).await;
    for statement in [
        "INSERT INTO users (id, registered_at, name, search_name, hide_last_seen)
         SELECT gen_random_uuid(), 0, 'Customer ' || g, 'customer ' || g, false FROM generate_series(1, 200000) AS g",
        "ANALYZE users",
    ] {
        sqlx::query(statement).execute(&mut c).await.expect(statement);
    }
    sqlx::query("UPDATE users SET name = 'زهرا کریمی', search_name = 'زهرا کریمی' WHERE id = $1")
        .bind(user.0)
        .execute(&mut c)
        .await
        .expect("name the customer");
    let scans = async |c: &mut PgConnection| -> i64 {
        sqlx::query_scalar("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'users_search_name_trgm'")
            .fetch_one(c)
            .await
            .expect("the names' index")
    };
    let before = scans(&mut c).await;

    let query = anapars_hub::model::search::SearchQuery {
        words: anapars_hub::domain::tickets::search::query_words("كريمي"),
        limit: 10,
        ..Default::default()
    };
    let found = store.search_customers(&query).await.expect("search the names");
    assert_eq!(found.iter().map(|h| h.ticket.id).collect::<Vec<_>>(), [ticket]);
    // A connection reports its counts when it closes (or once idle, within ten seconds).
    drop(store);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while scans(&mut c).await == before {
        assert!(std::time::Instant::now() < deadline, "the names were read without their index");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A report reads each ticket's events from every month they can be in: an agent's first answer
/// stamped by a node whose clock is behind, before the ticket was opened (in the month before), is
/// measured by the ticket's own report and by a report since a date, for a ticket opened the day
/// before the report's start, one opened 31 days before that (the earliest a report reads with the
/// set of its tickets) and one of two years before (assigned all along, read on its own). A read
/// that started at each ticket's opening, without the day of clock skew the hub allows, would miss
/// the answers.
#[tokio::test]
async fn a_report_reads_each_ticket_from_every_month_its_events_can_be_in() {
    let Some(url) = postgres_or_skip("a_report_reads_each_ticket_from_every_month_its_events_can_be_in") else {
        return;
    };
    let db = TestDatabase::postgres(&url).await;
    let (store, user) = store_with_user(&db.config).await;
    // The report starts a day before; the months from January 2023 on exist.
    let opened = FEBRUARY_1_2025;
    let since = opened - DAY;
    let (edge_opened, old_opened) = (since - 31 * DAY, opened - 730 * DAY);
    let agent = agent(&store, old_opened - DAY).await;
    store.prepare_event_months(old_opened - 31 * DAY, 27).await.expect("prepare the months");
    let mut tickets = Vec::new();
    for at in [opened, edge_opened, old_opened] {
        let ticket = open(&store, user, at).await;
        // Another node's clock was 90 minutes behind when the agent answered.
        claim_and_answer(&store, ticket, agent, at + 1, at - 90 * 60_000).await;
        tickets.push(ticket);
    }
    let mut conn = sql(&db.config).await;
    assert_eq!(placed(&mut conn, tickets[0].0).await[3], (4, "ticket_events_2025_01".to_string()));

    let expected = vec![(1, EventKind::Opened), (3, EventKind::Claimed), (4, EventKind::Message)];
    for ticket in &tickets {
        let one = store.report_events(ReportScope::Ticket(*ticket)).await.expect("the ticket's report");
        assert_eq!(measured(one), expected);
    }
    let report = store.report_events(ReportScope::Since(since)).await.expect("a report since a date");
    let mut by_ticket: std::collections::HashMap<TicketId, Vec<(u64, EventKind)>> = Default::default();
    for event in report {
        by_ticket.entry(event.ticket_id).or_default().push((event.seq, event.kind));
    }
    let expected: std::collections::HashMap<TicketId, Vec<(u64, EventKind)>> =
        tickets.iter().map(|t| (*t, expected.clone())).collect();
    assert_eq!(by_ticket, expected);
}

/// Months that ended before the retention go at start (and on each purge round) only when
/// `ticket_history_retention_secs` is set: unset, a hub keeps a month of two years ago; set to a
/// year, it drops that month's partition and keeps last month's. The dropped month's ticket stays,
/// with no events left.
#[tokio::test]
async fn retention_drops_whole_old_months_only_when_configured() {
    let Some(url) = postgres_or_skip("retention_drops_whole_old_months_only_when_configured") else { return };
    let db = TestDatabase::postgres(&url).await;
    let (store, user) = store_with_user(&db.config).await;
    let (old, recent) = (now_ms() - 730 * DAY, now_ms() - 40 * DAY);
    let mut prepared = 0;
    for at in [old, recent] {
        prepared += store.prepare_event_months(at, 0).await.expect("prepare");
    }
    assert_eq!(prepared, 2);
    let (gone, kept) = (open(&store, user, old).await, open(&store, user, recent).await);
    let (old_month, recent_month) = (partition(month_of(old)), partition(month_of(recent)));
    drop(store);

    let dir = tempfile::tempdir().expect("a temp dir");
    let unset = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        media_dir: dir.path().join("media"),
        attachments_dir: dir.path().join("attachments"),
        ..db.config.clone()
    };
    anapars_hub::server::start(unset).await.expect("a hub without retention starts").shutdown().await;
    let mut conn = sql(&db.config).await;
    assert!(partitions(&mut conn).await.contains(&old_month), "kept without a retention");
    assert_eq!(placed(&mut conn, gone.0).await.len(), 2);

    let hub = TestHub::start(db, None, |c| c.ticket_history_retention_secs = 365 * 24 * 3600).await;
    let names = partitions(&mut conn).await;
    assert!(!names.contains(&old_month), "{old_month} dropped: {names:?}");
    assert!(names.contains(&recent_month), "{recent_month} kept: {names:?}");
    assert!(names.contains(&partition(month_of(now_ms()))), "this month kept: {names:?}");
    assert!(names.contains(&"ticket_events_default".to_owned()));
    assert!(placed(&mut conn, gone.0).await.is_empty(), "the old month's events are gone");
    assert_eq!(placed(&mut conn, kept.0).await.len(), 2, "last month's events stay");

    let (token, _) = hub.agent("Sara").await;
    let mut agent = hub.connect_agent(Encoding::Json, &token).await;
    assert!(history(&mut agent, gone.0, json!({})).await.is_empty(), "the ticket stays, without history");
    assert_eq!(history(&mut agent, kept.0, json!({})).await.len(), 2);
    let store = &hub.running.as_ref().expect("running").hub.store;
    assert!(store.ticket(gone).await.expect("read").is_some(), "the ticket itself stays");
}

/// A retention is refused where it cannot work (SQLite) or is likely a mistake of units.
#[test]
fn a_history_retention_needs_postgres_and_at_least_thirty_days() {
    let year = 365 * 24 * 3600;
    let on_sqlite = Config { ticket_history_retention_secs: year, ..Config::default() };
    let refused = on_sqlite.validate().expect_err("refused on SQLite").to_string();
    assert!(refused.contains("ticket_history_retention_secs"), "{refused}");
    let postgres = Config {
        database_url: Some(anapars_hub::config::Secret("postgres://hub@db.example/hub".into())),
        ..Config::default()
    };
    let short = Config { ticket_history_retention_secs: 24 * 3600, ..postgres.clone() };
    assert!(short.validate().is_err(), "a day is refused");
    assert!(Config { ticket_history_retention_secs: year, ..postgres.clone() }.validate().is_ok());
    assert!(Config { ticket_history_retention_secs: 0, ..postgres }.validate().is_ok(), "0 keeps forever");
}

/// Texts and customers' names stored before they were searchable are indexed in the background by
/// every node at start, through an index that holds only them: nodes doing it at once share the
/// rows (each indexed once, not once per node), and what they indexed is found.
#[tokio::test]
async fn texts_stored_before_search_are_indexed_once_by_nodes_starting_together() {
    let Some(url) = postgres_or_skip("texts_stored_before_search_are_indexed_once_by_nodes_starting_together") else {
        return;
    };
    let db = TestDatabase::postgres(&url).await;
    let (first, second) = (store_of(&db.config).await, store_of(&db.config).await);
    let mut conn = sql(&db.config).await;
    let tag = format!("z{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let at = now_ms();
    const TEXTS: i64 = 40;
    const NAMES: usize = 10;
    let mut users = Vec::new();
    for i in 0..NAMES {
        let user = uuid::Uuid::new_v4();
        sqlx::query("INSERT INTO users (id, registered_at, name) VALUES ($1, $2, $3)")
            .bind(user)
            .bind(at)
            .bind(format!("Customer {tag}n {i}"))
            .execute(&mut conn)
            .await
            .expect("a user named before names were searchable");
        users.push(user);
    }
    let ticket = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO tickets (id, user_id, subject, status, open_client_msg_id, created_at, updated_at, queued_at,
                              last_seq)
         VALUES ($1, $2, 'old', 'open', 'c-0', $3, $3, $3, $4)",
    )
    .bind(ticket)
    .bind(users[0])
    .bind(at)
    .bind(TEXTS)
    .execute(&mut conn)
    .await
    .expect("a ticket");
    for seq in 1..=TEXTS {
        sqlx::query(
            "INSERT INTO ticket_events (ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, created_at)
             VALUES ($1, $2, 'message', 'user', $3, $4, $5, $6)",
        )
        .bind(ticket)
        .bind(seq)
        .bind(users[0])
        .bind(format!("text {tag} number {seq}"))
        .bind(format!("c-{seq}"))
        .bind(at + seq)
        .execute(&mut conn)
        .await
        .expect("a text stored before texts were searchable");
    }

    let (mut indexed, mut rounds) = (0, 0);
    loop {
        let (a, b) = tokio::join!(first.index_unsearched(7), second.index_unsearched(7));
        let (a, b) = (a.expect("first node's round"), b.expect("second node's round"));
        indexed += a + b;
        if a == 0 && b == 0 {
            break;
        }
        rounds += 1;
        assert!(rounds < 50, "rounds never ran out");
    }
    assert_eq!(indexed, TEXTS as u64 + NAMES as u64, "each text and name indexed once, by one of the nodes");

    let query = |words: &str| anapars_hub::model::search::SearchQuery {
        words: anapars_hub::domain::tickets::search::query_words(words),
        limit: 100,
        ..Default::default()
    };
    let texts = first.search(&query(&format!("{tag} number"))).await.expect("search the texts");
    assert_eq!(texts.len(), TEXTS as usize, "every old text is found");
    let names = second.search_customers(&query(&format!("customer {tag}n"))).await.expect("search the names");
    assert_eq!(names.len(), 1, "the named customer with a ticket is found: {names:?}");
}
