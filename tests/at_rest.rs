//! Personal identifiers at rest: what a copied database shows of the people in it.
//!
//! The users' mobile numbers are stored sealed under data keys kept outside the database, so the
//! database files (every page of SQLite's file, free ones included, and its WAL) and a full
//! `pg_dump` hold no number in any form people write one; a database made before numbers were
//! sealed has them sealed (and the plain column dropped) when the hub next starts, and every
//! account still signs in with its number.

mod common;

use anapars_hub::adapters::vault::Vault;
use anapars_hub::config::{Config, Secret};
use anapars_hub::model::phone::Phone;
use anapars_hub::ports::store::Store;
use common::hub::{hubs, phone, TestHub};
use common::{test_databases, TestDatabase};
use serde_json::json;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::Connection as _;
use std::sync::Arc;

/// Every form of `number` (E.164, `+98912...`) that might be written down: with and without the
/// country code, the national form, digits grouped, Persian digits.
fn forms(number: &str) -> Vec<String> {
    let national = format!("0{}", &number[3..]);
    let bare = &number[3..];
    let grouped = format!("{} {} {}", &national[..4], &national[4..7], &national[7..]);
    let persian: String = national.chars().map(|c| char::from_u32(0x06F0 + c.to_digit(10).unwrap()).unwrap()).collect();
    vec![number.to_owned(), number[1..].to_owned(), national, bare.to_owned(), grouped, persian]
}

/// The bytes a copy of the database would hold: SQLite's file and WAL as they are on disk, or a
/// full `pg_dump` of the Postgres database.
fn database_bytes(db: &TestDatabase) -> Vec<u8> {
    match db.postgres_name() {
        Some(_) => {
            let url = &db.config.database_url.as_ref().expect("a postgres url").0;
            let out = std::process::Command::new("pg_dump").arg(url).output().expect("pg_dump (postgresql-client)");
            assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
            out.stdout
        }
        None => {
            let mut bytes = std::fs::read(&db.config.sqlite_path).expect("the sqlite file");
            let mut wal = db.config.sqlite_path.clone().into_os_string();
            wal.push("-wal");
            bytes.extend(std::fs::read(&wal).unwrap_or_default());
            bytes
        }
    }
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

/// Signs in, moves a number, talks: then no form of any number is in the files or the dump, while
/// the hub still shows each owner their number.
#[tokio::test]
async fn no_number_is_in_the_database_files_or_a_dump() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let (first, second, moved_to) = (phone(), phone(), phone());
        let signed = hub.sign_in_on(&first, "phone-1").await;
        let token = signed["token"].as_str().unwrap().to_owned();
        hub.sign_in_on(&second, "phone-2").await;
        let (status, _) = hub_call(&hub, "/v1/me/phone/code", &token, json!({"phone": moved_to})).await;
        assert_eq!(status, 202, "{label}");
        let code = hub.last_code(&moved_to);
        let (status, _) = hub_call(&hub, "/v1/me/phone/verify", &token, json!({"phone": moved_to, "code": code})).await;
        assert_eq!(status, 200, "{label}");
        let marker = format!("marker-{}", uuid::Uuid::new_v4().simple());
        let mut user = hub.connect_as(anapars_hub::protocol::Encoding::Json, &token).await;
        let opened = user
            .request(json!({"type": "ticket.open", "subject": "card", "body": marker, "client_msg_id": "m-1"}))
            .await;
        assert_eq!(opened["type"], "ticket.open.ok", "{label}");
        let (_, me) = hub.get("/v1/me", Some(&token)).await;
        assert_eq!(me["phone"], json!(moved_to), "{label} the owner still sees their number");

        let bytes = database_bytes(hub.database());
        assert!(holds(&bytes, &marker), "{label}: the scan reads the data (a message is there)");
        for number in [&first, &second, &moved_to] {
            for form in forms(number) {
                assert!(!holds(&bytes, &form), "{label}: {form:?} is in the database");
            }
        }
    }
}

async fn hub_call(hub: &TestHub, path: &str, token: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let resp = hub.http.post(format!("{}{path}", hub.base)).bearer_auth(token).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// The last migration of the release before numbers were sealed.
const LAST_PLAIN: i64 = 18;
/// Users in the old database: more than one batch of sealing.
const OLD_USERS: usize = 2_500;

/// A database of the previous release (plain numbers) is sealed when the store opens: every
/// number signs in to its own account, the plain column is gone, and the files hold no number.
/// Without the data keys the sealed database reveals nothing and cannot be opened by a hub.
#[tokio::test]
async fn a_previous_release_database_is_sealed_on_start_and_every_number_still_finds_its_account() {
    for db in test_databases().await {
        let backend = db.backend;
        let migrator = Migrator::new(std::path::Path::new(&format!("migrations/{backend}"))).await.expect("migrations");
        let numbers: Vec<(uuid::Uuid, String)> =
            (0..OLD_USERS).map(|i| (uuid::Uuid::now_v7(), format!("+98935{:07}", 1_000_000 + i))).collect();
        match &db.config.database_url {
            Some(url) => {
                let mut conn = sqlx::PgConnection::connect(&url.0).await.expect("connect to postgres");
                conn.ensure_migrations_table().await.expect("migrations table");
                for m in migrator.iter().filter(|m| m.version <= LAST_PLAIN) {
                    conn.apply(m).await.expect("an earlier migration");
                }
                for (id, number) in &numbers {
                    sqlx::query("INSERT INTO users (id, phone, registered_at) VALUES ($1, $2, 1)")
                        .bind(id)
                        .bind(number)
                        .execute(&mut conn)
                        .await
                        .expect("an old user");
                }
            }
            None => {
                std::fs::create_dir_all(db.config.sqlite_path.parent().expect("a folder")).expect("the folder");
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&db.config.sqlite_path)
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
                let mut conn = sqlx::SqliteConnection::connect_with(&options).await.expect("open the sqlite file");
                conn.ensure_migrations_table().await.expect("migrations table");
                for m in migrator.iter().filter(|m| m.version <= LAST_PLAIN) {
                    conn.apply(m).await.expect("an earlier migration");
                }
                for (id, number) in &numbers {
                    sqlx::query("INSERT INTO users (id, phone, registered_at) VALUES (?1, ?2, 1)")
                        .bind(id)
                        .bind(number)
                        .execute(&mut conn)
                        .await
                        .expect("an old user");
                }
                conn.close().await.expect("close");
            }
        }
        assert!(holds(&database_bytes(&db), &numbers[7].1), "{backend}: the old database holds plain numbers");

        let store: Arc<dyn Store> = anapars_hub::adapters::sql::connect(&db.config).await.expect("open and seal");
        for (id, number) in numbers.iter().step_by(97).chain(numbers.last()) {
            let user = store.user_by_phone(&Phone::from_e164(number.clone())).await.expect("lookup").expect("found");
            assert_eq!((user.id.0, user.phone.e164()), (*id, number.as_str()), "{backend}");
        }
        let (new_user, created) =
            store.register_user(&Phone::from_e164(numbers[0].1.clone()), 5).await.expect("register");
        assert_eq!((new_user.id.0, created), (numbers[0].0, false), "{backend}: the old account, not a new one");
        drop(store);
        let bytes = database_bytes(&db);
        for (_, number) in numbers.iter().step_by(13) {
            assert!(!holds(&bytes, number), "{backend}: {number} is still in the database");
        }

        // The same database with other keys: nothing opens, and the hub says which key it lacks.
        let stranger = Config {
            data_keys: Some(Secret(Vault::generate_entry("other"))),
            data_keys_file: None,
            ..db.config.clone()
        };
        let store = anapars_hub::adapters::sql::connect(&stranger).await.expect("open");
        let none = store.user_by_phone(&Phone::from_e164(numbers[1].1.clone())).await.expect("lookup");
        assert!(none.is_none(), "{backend}: other keys find no number");
        let err = store.user(anapars_hub::model::ids::UserId(numbers[1].0)).await.expect_err("cannot open");
        match err {
            anapars_hub::error::Error::Internal(detail) => {
                assert!(detail.contains("which is not configured"), "{backend}: names the key: {detail}");
            }
            other => panic!("{backend}: {other:?}"),
        }
    }
}

/// A new current key: `reseal` moves every number under it in batches while users sign up and move
/// their numbers at the same time; nothing is lost, every number finds its account, and the old key
/// can then be retired.
#[tokio::test]
async fn rotating_the_data_key_under_writes_loses_nothing() {
    const USERS: usize = 300;
    for db in test_databases().await {
        let backend = db.backend;
        let (old_key, new_key) = (Vault::generate_entry("old"), Vault::generate_entry("new"));
        let with_keys = |keys: String| Config { data_keys: Some(Secret(keys)), ..db.config.clone() };
        let numbers: Vec<String> = (0..USERS).map(|i| format!("+98936{:07}", 2_000_000 + i)).collect();
        let mut ids = Vec::new();
        {
            let store = anapars_hub::adapters::sql::connect(&with_keys(old_key.clone())).await.expect("open");
            for n in &numbers {
                ids.push(store.register_user(&Phone::from_e164(n.clone()), 1).await.expect("register").0.id);
            }
        }
        let store =
            anapars_hub::adapters::sql::connect(&with_keys(format!("{new_key}\n{old_key}"))).await.expect("open");
        assert_eq!(store.sealed_counts().await.unwrap(), [("old".to_owned(), USERS as u64)], "{backend}");

        let rotation = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut rounds = 0;
                while store.reseal(25).await.expect("reseal") > 0 {
                    rounds += 1;
                }
                rounds
            })
        };
        let moved: Vec<(usize, String)> =
            (0..USERS).step_by(6).map(|i| (i, format!("+98937{:07}", 3_000_000 + i))).collect();
        let newcomers: Vec<String> = (0..50).map(|i| format!("+98938{:07}", 4_000_000 + i)).collect();
        for ((i, to), newcomer) in moved.iter().zip(newcomers.iter().cycle()) {
            assert!(store.change_phone(ids[*i], &Phone::from_e164(to.clone())).await.expect("move"), "{backend}");
            store.register_user(&Phone::from_e164(newcomer.clone()), 2).await.expect("sign up");
        }
        let rounds = rotation.await.unwrap();
        assert!(rounds >= USERS / 25, "{backend}: {rounds} batches");
        assert_eq!(store.sealed_counts().await.unwrap(), [("new".to_owned(), (USERS + 50) as u64)], "{backend}");
        drop(store);

        // The old key retired: every account opens and every number finds its own.
        let store = anapars_hub::adapters::sql::connect(&with_keys(new_key.clone())).await.expect("open");
        let find = |n: &String| {
            let store = store.clone();
            let n = n.clone();
            async move { store.user_by_phone(&Phone::from_e164(n)).await.expect("lookup").map(|u| u.id) }
        };
        for (i, n) in numbers.iter().enumerate() {
            let now = moved.iter().find(|(m, _)| *m == i).map(|(_, to)| to);
            match now {
                Some(to) => {
                    assert_eq!(find(to).await, Some(ids[i]), "{backend}: the moved number");
                    assert_eq!(find(n).await, None, "{backend}: the old number is free");
                }
                None => assert_eq!(find(n).await, Some(ids[i]), "{backend}: {n}"),
            }
            assert!(store.user(ids[i]).await.expect("opens").is_some());
        }
        for n in &newcomers {
            assert!(find(n).await.is_some(), "{backend}: {n}");
        }
    }
}
