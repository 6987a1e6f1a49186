//! The storage conformance suite against every backend, and Postgres' recovery from killed and hung
//! connections.
//!
//! `cargo test --test storage` tests SQLite; with `TEST_DATABASE_URL=postgres://…` it tests Postgres
//! as well (see `tests/common/mod.rs`).

mod common;
// The suite's checks are `pub` for the runner in this file, not a library API.
#[allow(unreachable_pub)]
#[path = "conformance/store/mod.rs"]
mod conformance;

use anapars_hub::config::Secret;
use anapars_hub::model::agent::NewAgent;
use anapars_hub::model::ids::{AgentId, TicketId, UserId};
use anapars_hub::model::phone::Phone;
use anapars_hub::model::profile::ProfileUpdate;
use anapars_hub::model::purchase::{PurchaseKind, PurchaseReport, PurchaseStatus};
use anapars_hub::model::ticket::{Appended, Author, EventKind, NewMessage, NewTicket, Page, TicketStatus, Transition};
use anapars_hub::model::time::now_ms;
use anapars_hub::ports::store::Store;
use anapars_hub::{Config, Error};
use common::relay::{postgres_address, with_host, Link};
use common::{migrate_up_to, postgres_or_skip, test_databases, with_database, TestDatabase};
use futures_util::future::join_all;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn open(config: &Config) -> Arc<dyn Store> {
    match anapars_hub::adapters::sql::connect(config).await {
        Ok(store) => store,
        Err(e) => panic!("cannot open the test database: {e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_backend_passes_the_conformance_suite() {
    let mut failures = Vec::new();
    for db in test_databases().await {
        let store = open(&db.config).await;
        assert_eq!(store.backend(), db.backend);
        let report = conformance::run_all(store).await;
        assert_eq!(report.passed.len() + report.failed.len(), conformance::CHECKS.len());
        eprintln!("{report}");
        if !report.failed.is_empty() {
            failures.push(report.to_string());
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_apply_once() {
    for db in test_databases().await {
        let phone = Phone::from_e164("+99900000000001");
        let user = open(&db.config).await.register_user(&phone, 1).await.expect("register").0;
        let store = open(&db.config).await;
        assert_eq!(store.user_by_phone(&phone).await.expect("lookup"), Some(user.clone()), "{}", db.backend);
        assert_eq!(store.register_user(&phone, 2).await.expect("register again"), (user, false), "{}", db.backend);
    }
}

/// Deleting a user deletes their tickets and everything under them (events, marks), whoever else
/// took part; other users' tickets and the agents stay. The store has no call that deletes a user, so
/// this deletes the row with plain SQL, as an operator or an erasure job would.
/// Sessions stored by a hub from before users' and agents' sessions shared one table: after the
/// upgrade's migrations, both kinds are found by their tokens, with their holders and times, so an
/// upgrade signs nobody out.
#[tokio::test]
async fn sessions_from_before_the_shared_sessions_table_survive_the_upgrade() {
    use anapars_hub::model::account::{Holder, TokenHash};
    use anapars_hub::model::ids::{DeviceId, SessionId};
    const LAST_BEFORE: i64 = 8;
    let (user, device, agent) = (UserId::generate(), DeviceId::generate(), AgentId::generate());
    let (user_session, agent_session) = (SessionId::generate(), SessionId::generate());
    let (user_hash, agent_hash) = ([7u8; 32], [9u8; 32]);
    // A statement (`?N` placeholders; Postgres spells them `$N`), its ids, then a token hash or NULL.
    type OldRow = (&'static str, Vec<uuid::Uuid>, Option<[u8; 32]>);
    let rows: [OldRow; 5] = [
        ("INSERT INTO users (id, phone, registered_at) VALUES (?1, '+989121234567', 1)", vec![user.0], None),
        (
            "INSERT INTO devices (id, user_id, client_device_id, name, created_at, last_seen_at)
             VALUES (?1, ?2, 'phone-1', 'Pixel', 1, 1)",
            vec![device.0, user.0],
            None,
        ),
        (
            "INSERT INTO sessions (id, user_id, device_id, created_at, expires_at, token_hash)
             VALUES (?1, ?2, ?3, 10, 253402300799999, ?4)",
            vec![user_session.0, user.0, device.0],
            Some(user_hash),
        ),
        (
            "INSERT INTO agents (id, email, name, password_hash, created_at) VALUES (?1, 'sara@x.ir', 'Sara', 'h', 1)",
            vec![agent.0],
            None,
        ),
        (
            "INSERT INTO agent_sessions (id, agent_id, created_at, expires_at, token_hash)
             VALUES (?1, ?2, 20, 253402300799999, ?3)",
            vec![agent_session.0, agent.0],
            Some(agent_hash),
        ),
    ];
    for db in test_databases().await {
        let backend = db.backend;
        match &db.config.database_url {
            Some(url) => {
                let mut conn = PgConnection::connect(&url.0).await.expect("connect to postgres");
                migrate_up_to(&mut conn, backend, LAST_BEFORE).await;
                for (sql, ids, hash) in &rows {
                    let sql = sql.replace('?', "$");
                    let mut q = sqlx::query(&sql);
                    for id in ids {
                        q = q.bind(*id);
                    }
                    q.bind(hash.map(|h| h.to_vec())).execute(&mut conn).await.expect("an old row");
                }
            }
            None => {
                std::fs::create_dir_all(db.config.sqlite_path.parent().expect("a folder")).expect("the folder");
                let options = SqliteConnectOptions::new()
                    .filename(&db.config.sqlite_path)
                    .create_if_missing(true)
                    .foreign_keys(true);
                let mut conn = SqliteConnection::connect_with(&options).await.expect("open the sqlite file");
                migrate_up_to(&mut conn, backend, LAST_BEFORE).await;
                for (sql, ids, hash) in &rows {
                    let mut q = sqlx::query(sql);
                    for id in ids {
                        q = q.bind(*id);
                    }
                    q.bind(hash.map(|h| h.to_vec())).execute(&mut conn).await.expect("an old row");
                }
            }
        }
        let store = open(&db.config).await;
        let found = store.session_by_token(&TokenHash(user_hash)).await.expect("lookup");
        assert_eq!(
            found.map(|s| (s.id, s.holder, s.created_at, s.revoked_at)),
            Some((user_session, Holder::User { user, device }, 10, None)),
            "{backend}: the user's session"
        );
        let found = store.session_by_token(&TokenHash(agent_hash)).await.expect("lookup");
        assert_eq!(
            found.map(|s| (s.id, s.holder, s.created_at, s.revoked_at)),
            Some((agent_session, Holder::Agent(agent), 20, None)),
            "{backend}: the agent's session"
        );
        assert!(store.disable_agent(agent, 30).await.expect("disable"), "{backend}");
        let after = store.session(agent_session).await.expect("lookup").and_then(|s| s.revoked_at);
        assert_eq!(after, Some(30), "{backend}: disabling reaches the moved session");
    }
}

#[tokio::test]
async fn deleting_a_user_deletes_their_tickets_with_events_and_marks() {
    for db in test_databases().await {
        let store = open(&db.config).await;
        let now = now_ms();
        let owner = store.register_user(&random_phone(), now).await.expect("register").0;
        let other = store.register_user(&random_phone(), now).await.expect("register").0;
        let agent = agent(&*store, now).await;
        let mut tickets = Vec::new();
        for user in [owner.id, other.id] {
            let id = store.open_ticket(&new_ticket(user, now)).await.expect("open").ticket.id;
            let claim = Transition {
                ticket_id: id,
                from: vec![TicketStatus::Open],
                holder: Some(None),
                to: TicketStatus::Assigned,
                agent_id: Some(agent.id),
                kind: EventKind::Claimed,
                actor: Author::Agent(agent.id),
                now,
            };
            assert!(store.transition(&claim).await.expect("claim").is_some());
            let reply = NewMessage {
                ticket_id: id,
                author: Author::Agent(agent.id),
                client_msg_id: "reply".into(),
                body: "hello".into(),
                attachments: Vec::new(),
                created_at: now,
            };
            store.append_messages(&[reply]).await.expect("append");
            store.mark(id, Author::User(user), 4, 4).await.expect("mark user");
            store.mark(id, Author::Agent(agent.id), 4, 3).await.expect("mark agent");
            tickets.push(id);
        }
        let (mine, theirs) = (tickets[0], tickets[1]);

        delete_user(&db, owner.id).await;
        let backend = db.backend;
        assert_eq!(store.user(owner.id).await.expect("user"), None, "{backend}");
        assert_eq!(store.ticket(mine).await.expect("ticket"), None, "{backend}: the ticket survived its user");
        assert!(
            store.events(mine, Page::After(0), 100).await.expect("events").is_empty(),
            "{backend}: events survived"
        );
        assert!(store.marks(mine).await.expect("marks").is_empty(), "{backend}: marks survived");
        assert!(store.user_tickets(owner.id, 10).await.expect("user tickets").is_empty(), "{backend}");
        assert_eq!(store.agent_tickets(agent.id).await.expect("agent tickets").len(), 1, "{backend}");

        assert_eq!(store.events(theirs, Page::After(0), 100).await.expect("events").len(), 4, "{backend}");
        assert_eq!(store.marks(theirs).await.expect("marks").len(), 2, "{backend}");
        assert_eq!(store.agent(agent.id).await.expect("agent"), Some(agent.clone()), "{backend}");
    }
}

/// A deleted account's messages and name leave none of their words in SQLite's search indexes:
/// without FTS5's secure-delete the words stay in the index's older segment, beside a marker that
/// hides them, until the segments are merged.
#[tokio::test]
async fn sqlite_a_deleted_accounts_words_leave_the_search_index() {
    let db = TestDatabase::sqlite();
    let store = open(&db.config).await;
    let now = now_ms();
    let user = store.register_user(&random_phone(), now).await.expect("register").0;
    let others = store.register_user(&random_phone(), now).await.expect("register").0;
    let word = format!("zq{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let mut mine = None;
    for owner in [user.id, others.id] {
        let ticket = store.open_ticket(&new_ticket(owner, now)).await.expect("open").ticket.id;
        let says = NewMessage {
            ticket_id: ticket,
            author: Author::User(owner),
            client_msg_id: "secret".into(),
            body: if owner == user.id { format!("my card {word}") } else { "another text".into() },
            attachments: Vec::new(),
            created_at: now,
        };
        store.append_messages(&[says]).await.expect("append");
        mine.get_or_insert(ticket);
    }
    let options = SqliteConnectOptions::new().filename(&db.config.sqlite_path);
    let mut conn = SqliteConnection::connect_with(&options).await.expect("open the sqlite file");
    let name = format!("{word}name");
    let named = ProfileUpdate { name: Some(Some(name.clone())), ..ProfileUpdate::default() };
    store.update_profile(user.id, &named).await.expect("name the user").expect("the user");
    // The name's first trigram, its space and first two letters: the smallest term of the names'
    // index, which starts its first page and so is written whole (later terms share their start
    // with the one before).
    let first_trigram = format!(" {}", &name[..2]);
    let mut blocks_with = async |table: &str, text: &str| -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE instr(block, CAST(?1 AS BLOB)) > 0"))
            .bind(text)
            .fetch_one(&mut conn)
            .await
            .expect("read the index")
    };
    assert!(blocks_with("ticket_search_data", &word).await > 0, "the word is indexed");
    assert!(blocks_with("customer_names_data", &first_trigram).await > 0, "the name is indexed");

    store.delete_account(user.id, &[]).await.expect("delete").expect("the account");
    assert_eq!(store.ticket(mine.expect("a ticket")).await.expect("ticket"), None);
    assert_eq!(blocks_with("ticket_search_data", &word).await, 0, "the deleted message's words left the index");
    assert_eq!(blocks_with("customer_names_data", &first_trigram).await, 0, "the deleted name left the index");
}

/// The policy: once an account is deleted, every fee paid with it (activations, subscriptions) is
/// deleted too; another user's purchases stay, and a later report for the gone account is `not_found`.
#[tokio::test]
async fn deleting_a_user_deletes_their_purchases() {
    for db in test_databases().await {
        let store = open(&db.config).await;
        let backend = db.backend;
        let now = now_ms();
        let mut users = Vec::new();
        for _ in 0..2 {
            let user = store.register_user(&random_phone(), now).await.expect("register").0;
            let report = PurchaseReport {
                reference: format!("inv-{}", uuid::Uuid::new_v4().simple()),
                user_id: user.id,
                product: "anapars-pro".into(),
                kind: PurchaseKind::Activation,
                amount_minor: 1_000,
                currency: "IRR".into(),
                purchased_at: now,
                expires_at: None,
                status: PurchaseStatus::Paid,
            };
            store.record_purchase(&report, now).await.expect("record");
            users.push((user.id, report));
        }
        let (gone, report) = &users[0];
        delete_user(&db, *gone).await;
        assert!(store.purchases(*gone).await.expect("purchases").is_empty(), "{backend}: purchases survived");
        let replay = store.record_purchase(report, now).await;
        assert!(matches!(replay, Err(Error::NotFound("user"))), "{backend}: {replay:?}");
        assert_eq!(store.purchases(users[1].0).await.expect("purchases").len(), 1, "{backend}");
    }
}

/// `DELETE FROM users WHERE id = ..` on the test database, outside the store.
async fn delete_user(db: &TestDatabase, user: UserId) {
    let deleted = match &db.config.database_url {
        Some(url) => {
            let mut conn = PgConnection::connect(&url.0).await.expect("connect to postgres");
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(user.0)
                .execute(&mut conn)
                .await
                .expect("delete")
                .rows_affected()
        }
        None => {
            // Foreign keys are enforced per connection in SQLite: this one must switch them on too.
            let options = SqliteConnectOptions::new().filename(&db.config.sqlite_path).foreign_keys(true);
            let mut conn = SqliteConnection::connect_with(&options).await.expect("open the sqlite file");
            sqlx::query("DELETE FROM users WHERE id = ?1")
                .bind(user.0)
                .execute(&mut conn)
                .await
                .expect("delete")
                .rows_affected()
        }
    };
    assert_eq!(deleted, 1, "{}: the user to delete was not there", db.backend);
}

/// Killing every connection of the pool (what a database restart or failover does to it) must not
/// fail more than one call; the pool heals by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_pool_recovers_after_its_connections_are_killed() {
    let Some(admin_url) = postgres_or_skip("postgres_pool_recovers_after_its_connections_are_killed") else {
        return;
    };
    let db = TestDatabase::postgres(&admin_url).await;
    let name = db.postgres_name().expect("a postgres database").to_owned();
    let store = open(&db.config).await;
    // Several calls at once, so that the pool holds several connections to kill.
    let phones: Vec<Phone> = (0..8).map(|_| random_phone()).collect();
    for result in join_all(phones.iter().map(|phone| store.register_user(phone, 1))).await {
        result.expect("warm-up call");
    }

    let killed = kill_connections(&admin_url, &name).await;
    assert!(killed >= 1, "the pool had no connection to kill");

    let mut outcomes = join_all((0..8).map(|_| store.ping())).await;
    for _ in 0..8 {
        outcomes.push(store.user_by_phone(&random_phone()).await.map(|_| ()));
    }
    let unavailable = outcomes.iter().filter(|o| matches!(o, Err(Error::Unavailable))).count();
    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(()) | Err(Error::Unavailable))),
        "unexpected error after the kill: {outcomes:?}"
    );
    assert!(unavailable <= 1, "{unavailable} calls failed after {killed} connections were killed");
    store.ping().await.expect("the pool must have healed");
    eprintln!(
        "killed {killed} pooled connections; {unavailable} of {} calls after it were unavailable",
        outcomes.len()
    );
}

/// A new agent with a fresh email.
async fn agent(store: &dyn Store, now: i64) -> anapars_hub::model::agent::Agent {
    let new_agent = NewAgent {
        id: AgentId::generate(),
        email: format!("{}@example.test", uuid::Uuid::new_v4().simple()),
        name: "Sam".into(),
        password_hash: "hash".into(),
        created_at: now,
    };
    store.create_agent(&new_agent).await.expect("create agent").expect("a fresh email")
}

/// A new ticket of `user`'s, its first message keyed `first`.
fn new_ticket(user: UserId, now: i64) -> NewTicket {
    NewTicket {
        id: TicketId::generate(),
        user_id: user,
        subject: "subject".into(),
        body: "body".into(),
        attachments: Vec::new(),
        client_msg_id: "first".into(),
        created_at: now,
    }
}

/// Terminates every connection to database `name` (what a restart or failover does to them) and
/// waits until their backends are gone; how many there were.
async fn kill_connections(admin_url: &str, name: &str) -> i64 {
    let mut admin = PgConnection::connect(admin_url).await.expect("admin connection");
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()) AS killed",
    )
    .bind(name)
    .fetch_one(&mut admin)
    .await
    .expect("terminate the connections");
    // pg_terminate_backend only signals: wait until the backends are really gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .expect("count backends");
        if left == 0 {
            return killed;
        }
        assert!(Instant::now() < deadline, "{left} killed backends are still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The message writer's connections, held beside the pool and handed out without a ping while in
/// use: killed under a conversation, they fail at most the one batch that was on its way (answered
/// `unavailable`, not stored, so the sender's retry stores it once); killed while idle, they are
/// found dead by the ping an idle connection gets, and no batch fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_message_batches_heal_after_the_writers_connections_are_killed() {
    let Some(admin_url) = postgres_or_skip("postgres_message_batches_heal_after_the_writers_connections_are_killed")
    else {
        return;
    };
    let db = TestDatabase::postgres(&admin_url).await;
    let name = db.postgres_name().expect("a postgres database").to_owned();
    let store = open(&db.config).await;
    let now = now_ms();
    let user = store.register_user(&random_phone(), now).await.expect("register").0.id;
    let ticket = store.open_ticket(&new_ticket(user, now)).await.expect("open").ticket.id;
    let message = |key: &str| NewMessage {
        ticket_id: ticket,
        author: Author::User(user),
        client_msg_id: key.into(),
        body: key.into(),
        attachments: Vec::new(),
        created_at: now_ms(),
    };
    let send = |key: String| {
        let store = store.clone();
        let message = message(&key);
        async move { store.append_messages(std::slice::from_ref(&message)).await.map(|mut r| r.remove(0)) }
    };
    assert!(matches!(send("warm".into()).await, Ok(Appended::Stored { .. })));

    // Killed right after a batch: the next batch may find its connection dead, no later one does.
    assert!(kill_connections(&admin_url, &name).await >= 1, "the writer held no connection to kill");
    let mut refused = Vec::new();
    for i in 0..4 {
        let key = format!("busy-{i}");
        match send(key.clone()).await {
            Ok(Appended::Stored { .. }) => {}
            Err(Error::Unavailable) => refused.push(key),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert!(refused.len() <= 1, "{refused:?} failed after the writer's connection was killed");
    for key in &refused {
        assert!(matches!(send(key.clone()).await, Ok(Appended::Stored { .. })), "{key} retried");
    }

    // Killed while idle: pinged before the next batch, replaced, nothing fails.
    kill_connections(&admin_url, &name).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(
        matches!(send("after-idle".into()).await, Ok(Appended::Stored { .. })),
        "the idle connection was not pinged"
    );

    let events = store.events(ticket, Page::After(0), 100).await.expect("history");
    let mut keys: Vec<&str> = events.iter().filter_map(|e| e.client_msg_id.as_deref()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["after-idle", "busy-0", "busy-1", "busy-2", "busy-3", "first", "warm"], "each message once");
}

/// Two stores (two nodes) on a fresh Postgres database, and a ticket opened through the first by
/// a new user.
async fn two_nodes_with_a_ticket(admin_url: &str) -> (TestDatabase, Arc<dyn Store>, Arc<dyn Store>, UserId, TicketId) {
    let db = TestDatabase::postgres(admin_url).await;
    let (a, b) = (open(&db.config).await, open(&db.config).await);
    let now = now_ms();
    let user = a.register_user(&random_phone(), now).await.expect("register").0.id;
    let ticket = a.open_ticket(&new_ticket(user, now)).await.expect("open").ticket.id;
    (db, a, b, user, ticket)
}

/// A message written now, its key as its text.
fn message(ticket_id: TicketId, author: Author, key: &str) -> NewMessage {
    NewMessage {
        ticket_id,
        author,
        client_msg_id: key.into(),
        body: key.into(),
        attachments: Vec::new(),
        created_at: now_ms(),
    }
}

/// Two nodes on one Postgres: each plans a batch from the tickets as it last stored or read them,
/// and those states go stale when the other node writes. A stale state must never decide a message:
/// not a refusal (the ticket was claimed elsewhere), not a seq (a message was stored elsewhere), not
/// a resend (its first copy was stored elsewhere, or by this node when it knew the ticket), and not a
/// ticket that is gone.
#[tokio::test]
async fn postgres_nodes_decide_messages_against_the_stored_ticket_not_the_one_they_knew() {
    let Some(admin_url) =
        postgres_or_skip("postgres_nodes_decide_messages_against_the_stored_ticket_not_the_one_they_knew")
    else {
        return;
    };
    let (db, a, b, user, ticket) = two_nodes_with_a_ticket(&admin_url).await;
    let now = now_ms();
    let agent = agent(&*a, now).await.id;
    let second = NewTicket { client_msg_id: "second".into(), ..new_ticket(user, now) };
    let alone = a.open_ticket(&second).await.expect("open").ticket.id;
    let send_to = async |store: &Arc<dyn Store>, ticket: TicketId, author: Author, key: &str| {
        let mut outcome = store.append_messages(&[message(ticket, author, key)]).await.expect("append");
        assert_eq!(outcome.len(), 1);
        outcome.remove(0)
    };
    let seq_of = |outcome: &Appended| match outcome {
        Appended::Stored { events, .. } => ("stored", events.last().map(|e| e.seq)),
        Appended::Duplicate(original) => ("duplicate", Some(original.seq)),
        other => panic!("neither stored nor a duplicate: {other:?}"),
    };
    let send = async |store: &Arc<dyn Store>, author: Author, key: &str| send_to(store, ticket, author, key).await;
    let (user, agent_author) = (Author::User(user), Author::Agent(agent));

    // A resend of what A itself stored, while A knows the ticket as it stored it.
    assert_eq!(seq_of(&send_to(&a, alone, user, "x-1").await), ("stored", Some(3)));
    assert_eq!(seq_of(&send_to(&a, alone, user, "x-1").await), ("duplicate", Some(3)));
    assert_eq!(seq_of(&send_to(&a, alone, user, "x-2").await), ("stored", Some(4)));

    // A knows the ticket open (seq 2); B claims it (seq 3): the agent's message through A is theirs.
    assert_eq!(seq_of(&send(&a, user, "u-1").await), ("stored", Some(3)));
    let claimed = b.transition(&Transition::claim(ticket, agent, agent_author, now_ms())).await.expect("claim");
    assert!(claimed.is_some(), "the claim did not apply");
    assert_eq!(seq_of(&send(&a, agent_author, "a-1").await), ("stored", Some(5)), "refused on a stale state");

    // B knew the ticket at seq 4; A stored seq 5 since: B's message takes 6, not 5.
    assert_eq!(seq_of(&send(&b, user, "u-2").await), ("stored", Some(6)));
    // A knew it at 5; its resend of B's message is found, not stored again; and again.
    assert_eq!(seq_of(&send(&a, user, "u-2").await), ("duplicate", Some(6)));
    assert_eq!(seq_of(&send(&a, user, "u-2").await), ("duplicate", Some(6)));
    assert_eq!(seq_of(&send(&a, user, "u-3").await), ("stored", Some(7)));
    assert_eq!(seq_of(&send(&a, user, "u-3").await), ("duplicate", Some(7)));
    assert_eq!(seq_of(&send(&a, agent_author, "a-1").await), ("duplicate", Some(5)));

    let events = a.events(ticket, Page::After(0), 100).await.expect("history");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>(), "each event once, without gaps");

    // The user is deleted with their tickets: A, which knew the ticket, finds none.
    let Author::User(user_id) = user else { unreachable!() };
    delete_user(&db, user_id).await;
    for ticket in [ticket, alone] {
        let gone = a.append_messages(&[message(ticket, user, "u-4")]).await.expect("append");
        assert!(matches!(&gone[..], [Appended::NoTicket]), "{gone:?}");
    }
}

/// Two nodes writing to one ticket (its user's phone and its user's laptop connected to different
/// nodes): each hears the state the other stored (`ticket.updated` through the cluster), and its
/// next batch is planned from that and written at once, not written against what it knew, refused
/// by the database, read and planned again; a change whose publication was lost is learnt from the
/// cluster's sweep as well. The replans are counted where the hub counts them.
#[tokio::test]
async fn postgres_a_node_plans_from_the_ticket_state_another_node_stored_and_it_heard() {
    let Some(admin_url) =
        postgres_or_skip("postgres_a_node_plans_from_the_ticket_state_another_node_stored_and_it_heard")
    else {
        return;
    };
    // This test's own recorder: the store counts its replans on this thread (a current-thread
    // runtime), apart from the tests running beside it.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let replans = || {
        let text = metrics.render();
        let line = text.lines().find(|l| l.starts_with("hub_message_replans_total{way=\"checked\"}"));
        line.and_then(|l| l.rsplit(' ').next()).map_or(0.0, |n| n.parse::<f64>().expect("a count"))
    };
    let (_db, a, b, user, ticket) = two_nodes_with_a_ticket(&admin_url).await;
    let send = async |store: &Arc<dyn Store>, key: &str| match store
        .append_messages(&[message(ticket, Author::User(user), key)])
        .await
        .expect("append")
        .remove(0)
    {
        Appended::Stored { events, ticket } => (events[0].seq, ticket),
        other => panic!("not stored: {other:?}"),
    };

    // B reads the ticket for its first message, and knows it from then on.
    let (seq, stored_by_b) = send(&b, "b-1").await;
    assert_eq!(seq, 3);
    a.stored_elsewhere(&stored_by_b);
    let before = replans();
    let (seq, stored_by_a) = send(&a, "a-1").await;
    assert_eq!((seq, replans() - before), (4, 0.0), "A planned from the state it opened the ticket in");
    b.stored_elsewhere(&stored_by_a);
    let (seq, _) = send(&b, "b-2").await;
    assert_eq!((seq, replans() - before), (5, 0.0), "B planned from the state it stored, not the one it heard");

    // Unheard (a lost publication), a change costs one replan, and the seqs stay right.
    let (seq, _) = send(&a, "a-2").await;
    assert_eq!((seq, replans() - before), (6, 1.0));
    // The cluster's sweep, which reads the tickets changed lately to find lost publications, tells
    // B of A's message: B plans from it.
    let changed = b.changed_since(now_ms() - 60_000, 100).await.expect("sweep");
    assert!(changed.iter().any(|t| t.id == ticket && t.last_seq == 6), "{changed:?}");
    let (seq, _) = send(&b, "b-3").await;
    assert_eq!((seq, replans() - before), (7, 1.0), "B planned from what the sweep read");
    let events = b.events(ticket, Page::After(0), 100).await.expect("history");
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());
}

/// A connection that hangs mid-call (a network partition: no reset, no answer) must not hang the
/// caller: the call ends as `unavailable` at the deadline, and the store works once the network does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_calls_on_a_hung_connection_end_as_unavailable_at_the_deadline() {
    let Some(admin_url) = postgres_or_skip("postgres_calls_on_a_hung_connection_end_as_unavailable_at_the_deadline")
    else {
        return;
    };
    let db = TestDatabase::postgres(&admin_url).await;
    let url = db.config.database_url.clone().expect("a postgres url").0;
    let link = Link::start(postgres_address(&url).await).await;
    let config =
        Config { database_url: Some(Secret(with_host(&url, link.addr))), db_timeout_ms: 500, ..db.config.clone() };
    let store = open(&config).await;
    store.ping().await.expect("ping through the link");

    link.cut();
    let started = Instant::now();
    let outcomes = join_all((0..3).map(|_| store.ping())).await;
    let waited = started.elapsed();
    assert!(outcomes.iter().all(|o| matches!(o, Err(Error::Unavailable))), "{outcomes:?}");
    assert!(waited >= Duration::from_millis(400), "gave up before the deadline: {waited:?}");
    assert!(waited < Duration::from_secs(2), "a hung connection held the caller for {waited:?}");

    link.heal();
    let mut unavailable = 0;
    for _ in 0..10 {
        match store.ping().await {
            Ok(()) => {}
            Err(Error::Unavailable) => unavailable += 1,
            Err(e) => panic!("unexpected error after the network came back: {e:?}"),
        }
    }
    assert!(unavailable <= 1, "{unavailable} calls failed after the network came back");
    store.ping().await.expect("the store must work again");
}

/// A statement stuck on the server (here: waiting for a lock) ends as `unavailable` at the caller's
/// deadline, and the abandoned connection is closed rather than returned to the pool: with a pool
/// of one, the next call gets a fresh connection at once instead of queueing behind the stuck one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_stalled_query_ends_as_unavailable_and_frees_its_connection() {
    let Some(admin_url) = postgres_or_skip("postgres_a_stalled_query_ends_as_unavailable_and_frees_its_connection")
    else {
        return;
    };
    let db = TestDatabase::postgres(&admin_url).await;
    let config = Config { db_pool_size: 1, db_timeout_ms: 500, ..db.config.clone() };
    let store = open(&config).await;
    store.ping().await.expect("first ping");

    let url = config.database_url.clone().expect("a postgres url").0;
    let mut locker = PgConnection::connect(&url).await.expect("locking connection");
    sqlx::query("BEGIN").execute(&mut locker).await.expect("begin");
    sqlx::query("LOCK TABLE hub_keys IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.expect("lock hub_keys");

    let started = Instant::now();
    let stalled = store.key_or_insert("stalled", b"key").await;
    let waited = started.elapsed();
    assert!(matches!(stalled, Err(Error::Unavailable)), "{stalled:?}");
    assert!(waited >= Duration::from_millis(400), "gave up before the deadline: {waited:?}");
    assert!(waited < Duration::from_secs(2), "a stalled statement held the caller for {waited:?}");

    // The lock is still held: this only works if the one pool slot was freed.
    store.ping().await.expect("the pool's only slot must be free again");

    sqlx::query("ROLLBACK").execute(&mut locker).await.expect("release the lock");
    assert_eq!(store.key_or_insert("stalled", b"key").await.expect("key after the stall"), b"key");
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
    assert_eq!(with_database("postgres://u:p@h", "x"), "postgres://u:p@h/x");
    assert_eq!(with_database("postgresql://h/db?sslmode=disable", "x"), "postgresql://h/x?sslmode=disable");
    assert_eq!(with_database("postgres:///db?host=/run/postgresql", "x"), "postgres:///x?host=/run/postgresql");
}

fn random_phone() -> Phone {
    Phone::from_e164(format!("+999{:011}", rand::random::<u64>() % 100_000_000_000))
}

#[test]
fn with_host_keeps_user_database_and_parameters() {
    let addr: SocketAddr = "127.0.0.1:9".parse().expect("an address");
    assert_eq!(with_host("postgres://u:p@db:5432/x?a=b", addr), "postgres://u:p@127.0.0.1:9/x?a=b");
    assert_eq!(with_host("postgres://db/x", addr), "postgres://127.0.0.1:9/x");
}
