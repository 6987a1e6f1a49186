//! Personal identifiers at rest: what a copied database shows of the people in it.
//!
//! The users' mobile numbers, their devices' push addresses and the IP addresses their sockets came
//! from are stored sealed under data keys kept outside the database, so the database files (every
//! page of SQLite's file, free ones included, and its WAL) and a full `pg_dump` hold no number in
//! any form people write one, no push token or subscription and no IP address; a database made
//! before sealing has its values sealed (and the plain columns dropped) when the hub next starts,
//! and every account still signs in with its number and gets its notifications.

mod common;

use anapars_hub::adapters::vault::Vault;
use anapars_hub::config::{Config, Secret};
use anapars_hub::model::ids::{Principal, UserId};
use anapars_hub::model::phone::Phone;
use anapars_hub::model::push::{ApnsEnvironment, PushTarget};
use anapars_hub::ports::store::{ResealPosition, Store};
use common::hub::{hubs, phone, TestHub};
use common::{test_databases, TestDatabase};
use serde_json::json;
use sqlx::Connection as _;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

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

fn holds(bytes: &[u8], text: impl AsRef<[u8]>) -> bool {
    memchr::memmem::find(bytes, text.as_ref()).is_some()
}

/// Signs in, moves a number, registers for push, connects from known addresses, talks: then no
/// form of any number, no push address and no IP address is in the files or the dump, while the
/// hub still shows each owner their number and keeps their connections' addresses.
#[tokio::test]
async fn no_number_push_address_or_ip_address_is_in_the_database_files_or_a_dump() {
    for hub in hubs(|c| c.trusted_proxies = "127.0.0.1".into()).await {
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

        let endpoint = format!("https://push.example/send/{}", uuid::Uuid::new_v4().simple());
        let auth: [u8; 16] = rand::random();
        let mut p256dh = vec![4u8];
        p256dh.extend(rand::random::<[u8; 32]>());
        p256dh.extend(rand::random::<[u8; 32]>());
        let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
        let subscription = json!({"provider": "webpush", "endpoint": endpoint,
            "keys": {"p256dh": b64(&p256dh), "auth": b64(&auth)}});
        let (status, body) = hub.http_put_json("/v1/push", &token, &subscription).await;
        assert_eq!(status, 200, "{label} {body}");

        let ips = [
            format!("198.51.100.{}", rand::random_range(1..255)),
            format!("2001:db8::{:x}", rand::random_range(1..=0xffff_u32)),
        ];
        let store = anapars_hub::adapters::sql::connect(&hub.database().config).await.expect("open the store");
        let user_id = UserId(me["user_id"].as_str().unwrap().parse().unwrap());
        for ip in &ips {
            let mut req = hub.ws_url.as_str().into_client_request().unwrap();
            req.headers_mut().insert("X-Forwarded-For", format!("{ip}, 127.0.0.1").parse().unwrap());
            req.headers_mut().insert("Authorization", format!("Bearer {token}").parse().unwrap());
            let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("connects");
            drop(ws);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let seen: Vec<String> = store.connections(user_id, 10).await.unwrap().into_iter().map(|c| c.ip).collect();
            if ips.iter().all(|ip| seen.contains(ip)) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{label}: the connections were not recorded: {seen:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let registered = store.push_registrations(&[anapars_hub::model::ids::Principal::User(user_id)], 0).await;
        assert_eq!(registered.unwrap().len(), 1, "{label}: the registration opens");

        let bytes = database_bytes(hub.database());
        assert!(holds(&bytes, &marker), "{label}: the scan reads the data (a message is there)");
        for number in [&first, &second, &moved_to] {
            for form in forms(number) {
                assert!(!holds(&bytes, &form), "{label}: {form:?} is in the database");
            }
        }
        for ip in &ips {
            assert!(!holds(&bytes, ip), "{label}: the IP address {ip} is in the database");
        }
        assert!(!holds(&bytes, &endpoint), "{label}: the push endpoint is in the database");
        assert!(!holds(&bytes, auth), "{label}: the push secret is in the database");
        assert!(!holds(&bytes, &p256dh), "{label}: the push key is in the database");
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert!(!holds(&bytes, hex(&auth)) && !holds(&bytes, hex(&p256dh)), "{label}: the push keys in hex (pg_dump)");
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
/// Of them, those with a push registration: more than one batch too.
const OLD_REGISTRATIONS: usize = 1_200;

/// An account of the previous release: its number, one device session, one connection and, for
/// the first [`OLD_REGISTRATIONS`], a push registration (FCM, APNs, Web Push in turn).
struct OldUser {
    id: uuid::Uuid,
    number: String,
    session: uuid::Uuid,
    ip: String,
    push: Option<OldPush>,
}

enum OldPush {
    Fcm(String),
    Apns(String),
    WebPush { endpoint: String, p256dh: Vec<u8>, auth: Vec<u8> },
}

impl OldPush {
    fn target(&self) -> PushTarget {
        match self {
            Self::Fcm(token) => PushTarget::Fcm { token: token.clone() },
            Self::Apns(token) => PushTarget::Apns { token: token.clone(), environment: ApnsEnvironment::Production },
            Self::WebPush { endpoint, p256dh, auth } => {
                PushTarget::WebPush { endpoint: endpoint.clone(), p256dh: p256dh.clone(), auth: auth.clone() }
            }
        }
    }
}

fn old_users() -> Vec<OldUser> {
    (0..OLD_USERS)
        .map(|i| {
            let push = (i < OLD_REGISTRATIONS).then(|| match i % 3 {
                0 => OldPush::Fcm(format!("fcm:{}", uuid::Uuid::new_v4().simple())),
                1 => OldPush::Apns(format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())),
                _ => OldPush::WebPush {
                    endpoint: format!("https://push.example/old/{}", uuid::Uuid::new_v4().simple()),
                    p256dh: std::iter::once(4).chain((0..64).map(|_| rand::random::<u8>())).collect(),
                    auth: rand::random::<[u8; 16]>().to_vec(),
                },
            });
            OldUser {
                id: uuid::Uuid::now_v7(),
                number: format!("+98935{:07}", 1_000_000 + i),
                session: uuid::Uuid::new_v4(),
                ip: format!("100.64.{}.{}", i / 250, i % 250 + 1),
                push,
            }
        })
        .collect()
}

/// The previous release's rows of `users` as SQL for `backend` (literals, no parameters).
fn old_rows_sql(backend: &str, users: &[OldUser]) -> String {
    let pg = backend == "postgres";
    let id = |u: &uuid::Uuid| if pg { format!("'{u}'::uuid") } else { format!("x'{}'", u.simple()) };
    let bytes = |b: &[u8]| {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        if pg {
            format!("'\\x{hex}'::bytea")
        } else {
            format!("x'{hex}'")
        }
    };
    let text = |t: Option<&str>| t.map_or("NULL".to_owned(), |t| format!("'{t}'"));
    let mut sql = String::new();
    for u in users {
        let device = uuid::Uuid::new_v4();
        let hash = [u.session.as_bytes().as_slice(), u.id.as_bytes()].concat();
        sql += &format!(
            "INSERT INTO users (id, phone, registered_at) VALUES ({}, '{}', 1);\n\
             INSERT INTO devices (id, user_id, client_device_id, name, created_at, last_seen_at) \
             VALUES ({}, {}, 'old-phone', 'Old phone', 1, 1);\n\
             INSERT INTO sessions (id, user_id, device_id, token_hash, created_at, expires_at) \
             VALUES ({}, {}, {}, {}, 1, 4000000000000);\n\
             INSERT INTO connections (id, user_id, device_id, ip, connected_at) VALUES ({}, {}, {}, '{}', 1);\n",
            id(&u.id),
            u.number,
            id(&device),
            id(&u.id),
            id(&u.session),
            id(&u.id),
            id(&device),
            bytes(&hash),
            id(&uuid::Uuid::new_v4()),
            id(&u.id),
            id(&device),
            u.ip,
        );
        let (provider, token, environment, endpoint, p256dh, auth) = match &u.push {
            None => continue,
            Some(OldPush::Fcm(t)) => ("fcm", Some(t.as_str()), None, None, None, None),
            Some(OldPush::Apns(t)) => ("apns", Some(t.as_str()), Some("production"), None, None, None),
            Some(OldPush::WebPush { endpoint, p256dh, auth }) => {
                ("webpush", None, None, Some(endpoint.as_str()), Some(bytes(p256dh)), Some(bytes(auth)))
            }
        };
        sql += &format!(
            "INSERT INTO push_registrations \
             (session_id, provider, token, environment, endpoint, p256dh, auth, preview, language, updated_at) \
             VALUES ({}, '{provider}', {}, {}, {}, {}, {}, {}, 'fa', 1);\n",
            id(&u.session),
            text(token),
            text(environment),
            text(endpoint),
            p256dh.unwrap_or("NULL".into()),
            auth.unwrap_or("NULL".into()),
            if pg { "FALSE" } else { "0" },
        );
    }
    sql
}

/// A database of the previous release (plain numbers, push addresses and IP addresses) is sealed
/// when the store opens: every number signs in to its own account, every registration and
/// connection reads as it was, the plain columns are gone, and the files hold none of the values.
/// Without the data keys the sealed database reveals nothing and cannot be opened by a hub.
#[tokio::test]
async fn a_previous_release_database_is_sealed_on_start_and_every_number_still_finds_its_account() {
    for db in test_databases().await {
        let backend = db.backend;
        let users = old_users();
        let rows = old_rows_sql(backend, &users);
        match &db.config.database_url {
            Some(url) => {
                let mut conn = sqlx::PgConnection::connect(&url.0).await.expect("connect to postgres");
                common::migrate_up_to(&mut conn, backend, LAST_PLAIN).await;
                sqlx::raw_sql(&rows).execute(&mut conn).await.expect("the old rows");
            }
            None => {
                std::fs::create_dir_all(db.config.sqlite_path.parent().expect("a folder")).expect("the folder");
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&db.config.sqlite_path)
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
                let mut conn = sqlx::SqliteConnection::connect_with(&options).await.expect("open the sqlite file");
                common::migrate_up_to(&mut conn, backend, LAST_PLAIN).await;
                sqlx::raw_sql(&format!("BEGIN;\n{rows}COMMIT;")).execute(&mut conn).await.expect("the old rows");
                conn.close().await.expect("close");
            }
        }
        let numbers: Vec<(uuid::Uuid, String)> = users.iter().map(|u| (u.id, u.number.clone())).collect();
        let before = database_bytes(&db);
        assert!(holds(&before, &numbers[7].1), "{backend}: the old database holds plain numbers");
        assert!(holds(&before, &users[7].ip), "{backend}: and plain IP addresses");
        let Some(OldPush::Fcm(token)) = &users[9].push else { panic!("user 9 has an FCM token") };
        assert!(holds(&before, token), "{backend}: and plain push tokens");

        let store: Arc<dyn Store> = anapars_hub::adapters::sql::connect(&db.config).await.expect("open and seal");
        for (id, number) in numbers.iter().step_by(97).chain(numbers.last()) {
            let user = store.user_by_phone(&Phone::from_e164(number.clone())).await.expect("lookup").expect("found");
            assert_eq!((user.id.0, user.phone.e164()), (*id, number.as_str()), "{backend}");
        }
        let (new_user, created) =
            store.register_user(&Phone::from_e164(numbers[0].1.clone()), 5).await.expect("register");
        assert_eq!((new_user.id.0, created), (numbers[0].0, false), "{backend}: the old account, not a new one");
        for u in users.iter().step_by(7) {
            let user = UserId(u.id);
            let connections = store.connections(user, 10).await.expect("connections");
            assert_eq!(connections.iter().map(|c| c.ip.as_str()).collect::<Vec<_>>(), [u.ip.as_str()], "{backend}");
            let registrations = store.push_registrations(&[Principal::User(user)], 2).await.expect("registrations");
            let targets: Vec<PushTarget> = registrations.into_iter().map(|r| r.target).collect();
            let expected: Vec<PushTarget> = u.push.iter().map(OldPush::target).collect();
            assert_eq!(targets, expected, "{backend}");
        }
        drop(store);
        let bytes = database_bytes(&db);
        for (_, number) in numbers.iter().step_by(13) {
            assert!(!holds(&bytes, number), "{backend}: {number} is still in the database");
        }
        for u in users.iter().step_by(13) {
            assert!(!holds(&bytes, &u.ip), "{backend}: {}", u.ip);
            match &u.push {
                Some(OldPush::Fcm(t) | OldPush::Apns(t)) => assert!(!holds(&bytes, t), "{backend}: {t}"),
                Some(OldPush::WebPush { endpoint, .. }) => assert!(!holds(&bytes, endpoint), "{backend}: {endpoint}"),
                None => {}
            }
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
        let err = store.user(UserId(numbers[1].0)).await.expect_err("cannot open");
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
        let mut reachable = Vec::new();
        {
            let store = anapars_hub::adapters::sql::connect(&with_keys(old_key.clone())).await.expect("open");
            for n in &numbers {
                ids.push(store.register_user(&Phone::from_e164(n.clone()), 1).await.expect("register").0.id);
            }
            for (i, user) in ids.iter().enumerate().take(REACHABLE) {
                reachable.push(reachable_user(&*store, *user, i).await);
            }
        }
        let store =
            anapars_hub::adapters::sql::connect(&with_keys(format!("{new_key}\n{old_key}"))).await.expect("open");
        assert_eq!(numbers_under(&*store).await, [("old".to_owned(), USERS as u64)], "{backend}");

        let rotation = {
            let store = store.clone();
            tokio::spawn(async move {
                let (mut rounds, mut at) = (0, Some(ResealPosition::default()));
                while let Some(from) = at {
                    let (n, next) = store.reseal(from, 25).await.expect("reseal");
                    rounds += usize::from(n > 0);
                    at = next;
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
        assert_eq!(numbers_under(&*store).await, [("new".to_owned(), (USERS + 50) as u64)], "{backend}");
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
        for (user, target, ip) in &reachable {
            let who = [Principal::User(*user)];
            let registrations = store.push_registrations(&who, 2).await.expect("registrations open");
            let targets: Vec<PushTarget> = registrations.into_iter().map(|r| r.target).collect();
            assert_eq!(targets, std::slice::from_ref(target), "{backend}");
            let connections = store.connections(*user, 10).await.expect("connections open");
            let ips: Vec<String> = connections.into_iter().map(|c| c.ip).collect();
            assert_eq!(ips, std::slice::from_ref(ip), "{backend}");
        }
        let counts = store.sealed_counts().await.expect("counts");
        for what in ["push addresses", "IP addresses"] {
            let under: Vec<_> =
                counts.iter().filter(|c| c.what == what).map(|c| (c.key_id.as_str(), c.values)).collect();
            assert_eq!(under, [("new", REACHABLE as u64)], "{backend}: {what}");
        }
    }
}

/// How many mobile numbers each key seals.
async fn numbers_under(store: &dyn Store) -> Vec<(String, u64)> {
    let counts = store.sealed_counts().await.expect("counts");
    counts.into_iter().filter(|c| c.what == "mobile numbers").map(|c| (c.key_id, c.values)).collect()
}

/// Users of the rotation test with a push registration and a connection record.
const REACHABLE: usize = 40;

/// Gives `user` a device session with a Web Push registration and a recorded connection; returns
/// what was stored.
async fn reachable_user(store: &dyn Store, user: UserId, i: usize) -> (UserId, PushTarget, String) {
    use anapars_hub::model::account::{Holder, NewSession, TokenHash};
    use anapars_hub::model::telemetry::{ConnectionRecord, TelemetryWrite};
    let device = store.upsert_device(user, &format!("device-{i}"), "Pixel 8", 1).await.expect("device");
    let session = NewSession {
        id: anapars_hub::model::ids::SessionId::generate(),
        holder: Holder::User { user, device: device.id },
        token_hash: TokenHash(rand::random()),
        created_at: 1,
        expires_at: 4_000_000_000_000,
    };
    store.create_session(&session).await.expect("session");
    let target = PushTarget::WebPush {
        endpoint: format!("https://push.example/rotate/{i}"),
        p256dh: [4u8; 65].to_vec(),
        auth: rand::random::<[u8; 16]>().to_vec(),
    };
    let registration = anapars_hub::model::push::PushRegistration {
        session_id: session.id,
        holder: Principal::User(user),
        target: target.clone(),
        preview: false,
        language: anapars_hub::model::language::Language::Persian,
        updated_at: 1,
    };
    assert!(store.register_push(&registration, 1).await.expect("register push"));
    let ip = format!("192.0.2.{}", i + 1);
    let connected = TelemetryWrite::Connected(ConnectionRecord {
        id: uuid::Uuid::new_v4(),
        user_id: user,
        device_id: device.id,
        ip: ip.clone(),
        user_agent: None,
        client_version: None,
        connected_at: 1,
        disconnected_at: None,
    });
    store.store_telemetry(&[connected], true).await.expect("connection");
    (user, target, ip)
}
