//! Users' rights over real HTTP and sockets, on every backend (SQLite; Postgres with Redis in CI):
//! the number change, every correction path seen through the export, the export containing every
//! kind of data, and the account deletion leaving no trace in any table, in Redis or on disk.

mod common;

use anapars_hub::model::deletion::DELETED_ACCOUNTS;
use anapars_hub::model::time::now_ms;
use anapars_hub::protocol::Encoding;
use common::hub::{hubs, phone, Client, TestHub};
use serde_json::{json, Value};

fn png(w: u32, h: u32, shade: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([shade, 30, 30]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// A request with the bearer `token` (if any) and a JSON body (if any); status and JSON body.
async fn call(hub: &TestHub, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", hub.base);
    let mut req = match method {
        "GET" => hub.http.get(url),
        "POST" => hub.http.post(url),
        "PUT" => hub.http.put(url),
        "DELETE" => hub.http.delete(url),
        other => panic!("method {other}"),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn code_of(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

async fn upload_image(hub: &TestHub, token: &str, bytes: Vec<u8>) -> String {
    let resp = hub.http.put(format!("{}/v1/me/image", hub.base)).bearer_auth(token).body(bytes).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", hub.label());
    let body: Value = resp.json().await.unwrap();
    body["profile"]["image"].as_str().unwrap().to_owned()
}

fn media_file(hub: &TestHub, image: &str) -> std::path::PathBuf {
    let dir = &hub.running.as_ref().unwrap().hub.config.media_dir;
    dir.join(image.trim_start_matches("/v1/media/"))
}

/// The export as parsed JSON, after checking its headers.
async fn export(hub: &TestHub, token: &str) -> Value {
    let resp = hub.http.get(format!("{}/v1/me/export", hub.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", hub.label());
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(resp.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    let doc: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).expect("the export is one JSON document");
    assert_eq!((doc["format"].as_str(), doc["version"].as_u64()), (Some("anapars-export"), Some(1)));
    assert_eq!(doc["complete"], true, "{} the export says it is complete", hub.label());
    doc
}

/// A user with data in every table: profile (name, image, hidden last seen), two devices with
/// reports, sessions (one revoked), connection records, view events (more than one page),
/// settings, consent, a ticket answered by an agent with marks. Returns the user's socket, token,
/// sign-in answer and the agent's socket (subscribed to the ticket) and the ticket id.
struct Loaded {
    number: String,
    token: String,
    user_id: String,
    user: Client,
    agent: Client,
    watcher: Client,
    ticket_id: String,
    image: String,
}

async fn loaded_user(hub: &TestHub) -> Loaded {
    let number = phone();
    // An older device whose session ends when the second one signs in (max_devices 1).
    let first = hub.sign_in_on(&number, "old-phone").await;
    let old_token = first["token"].as_str().unwrap().to_owned();
    let mut old = hub.connect_as(Encoding::Json, &old_token).await;
    let r = old.request(json!({"type": "telemetry.device", "device": {"os": "android", "os_version": "13"}})).await;
    assert_eq!(r["type"], "ok", "{r}");
    let signed = hub.sign_in_on_after_cooldown(&number, "new-phone").await;
    assert_eq!(old.closed().await, Some(4003), "the old phone is signed out");
    let token = signed["token"].as_str().unwrap().to_owned();
    let user_id = signed["user_id"].as_str().unwrap().to_owned();
    let mut user = hub.connect_as(Encoding::MsgPack, &token).await;
    for version in ["14", "15"] {
        let report = json!({"os": "android", "os_version": version, "model": "Pixel 8", "locale": "fa-IR"});
        assert_eq!(user.request(json!({"type": "telemetry.device", "device": report})).await["type"], "ok");
    }
    for batch in 0..6 {
        let events: Vec<Value> = (0..100)
            .map(|i| json!({"kind": "screen", "screen": format!("screen-{batch}-{i}"), "at": now_ms() - 1000}))
            .collect();
        let r = user.request(json!({"type": "telemetry.views", "events": events})).await;
        assert_eq!(r["type"], "ok", "{r}");
    }
    let r = user.request(json!({"type": "settings.put", "settings": {"theme": "dark", "font": 3}})).await;
    assert_eq!(r["type"], "settings.ok", "{r}");
    let r = user.request(json!({"type": "consent.set", "analytics": true})).await;
    assert_eq!(r["type"], "consent.ok", "{r}");
    let r = user.request(json!({"type": "profile.update", "name": "Sara", "hide_last_seen": true})).await;
    assert_eq!(r["type"], "profile.ok", "{r}");
    let image = upload_image(hub, &token, png(20, 20, 7)).await;
    record_purchases(hub, &user_id).await;

    let r = user
        .request(json!({"type": "ticket.open", "subject": "Refund", "body": "my parcel never came",
                        "client_msg_id": "m1"}))
        .await;
    assert_eq!(r["type"], "ticket.open.ok", "{r}");
    let ticket_id = r["ticket"]["id"].as_str().unwrap().to_owned();
    let (agent_token, _) = hub.agent("Reza").await;
    let mut agent = hub.connect_agent(Encoding::Json, &agent_token).await;
    let r = agent.request(json!({"type": "ticket.claim", "ticket_id": ticket_id})).await;
    assert_eq!(r["type"], "ticket.update.ok", "{r}");
    let r = agent.request(json!({"type": "ticket.subscribe", "ticket_id": ticket_id, "after_seq": 0})).await;
    assert_eq!(r["type"], "ticket.subscribe.ok", "{r}");
    let r = agent
        .request(
            json!({"type": "ticket.send", "ticket_id": ticket_id, "client_msg_id": "a1", "body": "sorry, refunding"}),
        )
        .await;
    assert_eq!(r["type"], "ticket.send.ok", "{r}");
    let r = user.request(json!({"type": "ticket.read", "ticket_id": ticket_id, "seq": 4})).await;
    assert_eq!(r["type"], "ok", "{r}");
    let (watcher_token, _) = hub.agent("Nima").await;
    let mut watcher = hub.connect_agent(Encoding::Json, &watcher_token).await;
    let r = watcher.request(json!({"type": "queue.subscribe"})).await;
    assert_eq!(r["type"], "queue.subscribe.ok", "{r}");
    Loaded { number, token, user_id, user, agent, watcher, ticket_id, image }
}

/// What billing reported for the user: a running subscription, a permanent activation and a
/// refunded purchase (straight into the store: the signed endpoint has tests/billing.rs).
async fn record_purchases(hub: &TestHub, user_id: &str) {
    use anapars_hub::model::purchase::{PurchaseKind, PurchaseReport, PurchaseStatus};
    let store = &hub.running.as_ref().unwrap().hub.store;
    let now = now_ms();
    let report = |reference: &str, kind, expires_at, status| PurchaseReport {
        reference: format!("{reference}-{}", uuid::Uuid::new_v4().simple()),
        user_id: anapars_hub::model::ids::UserId(user_id.parse().unwrap()),
        product: "anapars-pro".into(),
        kind,
        amount_minor: 4_900_000,
        currency: "IRR".into(),
        purchased_at: now - 1000,
        expires_at,
        status,
    };
    for r in [
        report("sub", PurchaseKind::Subscription, Some(now + 86_400_000), PurchaseStatus::Paid),
        report("act", PurchaseKind::Activation, None, PurchaseStatus::Paid),
        report("old", PurchaseKind::Activation, None, PurchaseStatus::Refunded),
    ] {
        store.record_purchase(&r, now).await.unwrap();
    }
}

#[tokio::test]
async fn the_number_changes_with_a_code_to_the_new_number() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let (old, new, taken) = (phone(), phone(), phone());
        let signed = hub.sign_in_on(&old, "phone-1").await;
        let token = signed["token"].as_str().unwrap().to_owned();
        let user_id = signed["user_id"].clone();
        hub.sign_in_on(&taken, "phone-2").await;

        let (status, body) = call(&hub, "POST", "/v1/me/phone/code", None, Some(json!({"phone": new}))).await;
        assert_eq!((status, code_of(&body)), (401, "unauthenticated"), "{label}");
        let (agent_token, _) = hub.agent("Ali").await;
        let (status, _) =
            call(&hub, "POST", "/v1/me/phone/code", Some(&agent_token), Some(json!({"phone": new}))).await;
        assert_eq!(status, 403, "{label} agents have no number");
        let (status, body) = call(&hub, "POST", "/v1/me/phone/code", Some(&token), Some(json!({"phone": old}))).await;
        assert_eq!((status, code_of(&body)), (400, "bad_request"), "{label} the same number");
        let (status, body) = call(&hub, "POST", "/v1/me/phone/code", Some(&token), Some(json!({"phone": "12"}))).await;
        assert_eq!((status, code_of(&body)), (400, "invalid_phone"), "{label}");

        let (status, body) = call(&hub, "POST", "/v1/me/phone/code", Some(&token), Some(json!({"phone": new}))).await;
        assert_eq!(status, 202, "{label} {body}");
        let code = hub.last_code(&new);
        // The change's code signs nobody in: it is bound to the account and the change.
        let (status, body) =
            hub.post("/v1/auth/verify", json!({"phone": new, "code": code, "device": {"id": "thief"}})).await;
        assert_eq!((status, code_of(&body)), (422, "code_expired"), "{label}");
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let (status, body) =
            call(&hub, "POST", "/v1/me/phone/verify", Some(&token), Some(json!({"phone": new, "code": wrong}))).await;
        assert_eq!((status, code_of(&body)), (422, "code_invalid"), "{label}");
        let (status, body) =
            call(&hub, "POST", "/v1/me/phone/verify", Some(&token), Some(json!({"phone": new, "code": code}))).await;
        assert_eq!(status, 200, "{label} {body}");
        assert_eq!((&body["phone"], &body["user_id"]), (&json!(new), &user_id), "{label}");
        let (_, me) = hub.get("/v1/me", Some(&token)).await;
        assert_eq!(me["phone"], json!(new), "{label} the session stays signed in, on the new number");
        let (status, _) =
            call(&hub, "POST", "/v1/me/phone/verify", Some(&token), Some(json!({"phone": new, "code": code}))).await;
        assert_eq!(status, 422, "{label} a code works once");

        // The new number signs in to the same account; the old one finds a new, empty account.
        let again = hub.sign_in_on_after_cooldown(&new, "phone-1").await;
        assert_eq!((&again["user_id"], &again["new_user"]), (&user_id, &json!(false)), "{label}");
        let token = again["token"].as_str().unwrap().to_owned();
        let fresh = hub.sign_in_on_after_cooldown(&old, "phone-3").await;
        assert_eq!(fresh["new_user"], true, "{label} the old number no longer signs in to the account");
        assert_ne!(fresh["user_id"], user_id, "{label}");

        // A number of another account: the code is sent (no telling whether a number is
        // registered before the code proves it is the user's), then the change is refused.
        let (status, _) = call(&hub, "POST", "/v1/me/phone/code", Some(&token), Some(json!({"phone": taken}))).await;
        assert_eq!(status, 202, "{label}");
        let code = hub.last_code(&taken);
        let (status, body) =
            call(&hub, "POST", "/v1/me/phone/verify", Some(&token), Some(json!({"phone": taken, "code": code}))).await;
        assert_eq!((status, code_of(&body)), (409, "phone_taken"), "{label}");
        let (_, me) = hub.get("/v1/me", Some(&token)).await;
        assert_eq!(me["phone"], json!(new), "{label} nothing changed");
    }
}

#[tokio::test]
async fn corrections_show_in_the_export_and_replaced_images_leave_the_disk() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let token = hub.token(&phone()).await;
        let mut c = hub.connect_as(Encoding::Json, &token).await;
        let first = upload_image(&hub, &token, png(16, 16, 1)).await;
        assert!(media_file(&hub, &first).exists(), "{label}");
        c.request(json!({"type": "profile.update", "name": "Sarah"})).await;
        c.request(json!({"type": "settings.put", "settings": {"theme": "light"}})).await;
        let doc = export(&hub, &token).await;
        assert_eq!(doc["account"]["name"], "Sarah", "{label}");

        // Correct every piece: name, image (the old file goes), settings, consents.
        let r = c.request(json!({"type": "profile.update", "name": "Sara", "hide_last_seen": true})).await;
        assert_eq!(r["profile"]["name"], "Sara", "{label} {r}");
        let second = upload_image(&hub, &token, png(16, 16, 2)).await;
        assert_ne!(first, second);
        assert!(!media_file(&hub, &first).exists(), "{label} a replaced image is deleted from disk");
        let r = c.request(json!({"type": "settings.put", "settings": {"theme": "dark"}})).await;
        assert_eq!(r["type"], "settings.ok", "{label} {r}");
        let r = c.request(json!({"type": "consent.set", "analytics": false})).await;
        assert_eq!(r["consent"]["analytics"], false, "{label} {r}");
        let doc = export(&hub, &token).await;
        let account = &doc["account"];
        assert_eq!(
            (&account["name"], &account["image"], &account["hide_last_seen"]),
            (&json!("Sara"), &json!(second), &json!(true)),
            "{label}"
        );
        assert_eq!(doc["settings"]["document"], json!({"theme": "dark"}), "{label}");
        assert_eq!(doc["consent"]["analytics"], false, "{label}");
        assert!(doc["consent"]["analytics_changed_at"].as_u64().is_some(), "{label}");

        let resp = hub.http.delete(format!("{}/v1/me/image", hub.base)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(!media_file(&hub, &second).exists(), "{label} a removed image is deleted from disk");
        let doc = export(&hub, &token).await;
        assert_eq!(doc["account"]["image"], Value::Null, "{label}");
        let r = c.request(json!({"type": "consent.set", "personalisation": false})).await;
        assert_eq!(r["type"], "consent.ok");
        assert_eq!(export(&hub, &token).await["settings"], Value::Null, "{label} personalisation off deletes settings");
    }
}

#[tokio::test]
async fn the_export_holds_everything_kept_about_the_account() {
    for hub in hubs(|_| {}).await {
        let label = hub.label();
        let mut l = loaded_user(&hub).await;
        let (status, body) = hub.get("/v1/me/export", None).await;
        assert_eq!((status, code_of(&body)), (401, "unauthenticated"), "{label}");
        let (agent_token, _) = hub.agent("Mina").await;
        let (status, _) = hub.get("/v1/me/export", Some(&agent_token)).await;
        assert_eq!(status, 403, "{label}");
        // The socket's connection record is written as it opens: wait for it to land.
        let _ = l.user.request(json!({"type": "ping"})).await;

        let doc = export(&hub, &l.token).await;
        let a = &doc["account"];
        assert_eq!((&a["user_id"], &a["phone"]), (&json!(l.user_id), &json!(l.number)), "{label}");
        assert!(a["registered_at"].as_u64().is_some());
        assert_eq!((&a["name"], &a["image"], &a["hide_last_seen"]), (&json!("Sara"), &json!(l.image), &json!(true)));
        let devices = doc["devices"].as_array().unwrap();
        assert_eq!(devices.len(), 2, "{label} both devices: {devices:?}");
        let new = devices.iter().find(|d| d["client_device_id"] == "new-phone").expect("the new phone");
        assert_eq!(new["report"]["os_version"], "15", "{label}");
        assert_eq!(new["report_history"].as_array().unwrap().len(), 2, "{label}");
        let old = devices.iter().find(|d| d["client_device_id"] == "old-phone").expect("the old phone");
        assert_eq!(old["report"]["os_version"], "13", "{label}");
        let sessions = doc["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2, "{label}");
        assert!(sessions[0]["revoked_at"].as_u64().is_some(), "{label} the old phone's session, revoked");
        assert!(sessions[1]["revoked_at"].is_null(), "{label}");
        assert_eq!(doc["settings"]["document"], json!({"theme": "dark", "font": 3}), "{label}");
        assert_eq!(doc["consent"]["analytics"], true, "{label}");
        let connections = doc["connections"].as_array().unwrap();
        assert!(connections.len() >= 2, "{label} a record per socket: {connections:?}");
        assert!(connections.iter().all(|c| c["ip"] == "127.0.0.1"), "{label}");
        let views = doc["view_events"].as_array().unwrap();
        assert_eq!(views.len(), 600, "{label} every view event, across pages");
        assert_eq!(views[0]["screen"], "screen-0-0");
        assert_eq!(views[599]["screen"], "screen-5-99");
        let tickets = doc["tickets"].as_array().unwrap();
        assert_eq!(tickets.len(), 1, "{label}");
        assert_eq!(tickets[0]["ticket"]["id"], json!(l.ticket_id));
        let events = tickets[0]["events"].as_array().unwrap();
        let bodies: Vec<&str> = events.iter().filter_map(|e| e["body"].as_str()).collect();
        assert_eq!(bodies, ["Refund", "my parcel never came", "sorry, refunding"], "{label} {events:?}");
        assert!(tickets[0]["marks"].as_array().unwrap().iter().any(|m| m["read_seq"] == 4), "{label}");
        let purchases = doc["purchases"].as_array().unwrap();
        assert_eq!(purchases.len(), 3, "{label} {purchases:?}");
        assert_eq!(purchases.iter().filter(|p| p["active"] == true).count(), 2, "{label}");
        assert!(purchases.iter().all(|p| p["currency"] == "IRR" && p["amount_minor"] == 4_900_000), "{label}");
        let text = doc.to_string();
        assert!(!text.contains(l.token.as_str()), "{label} no token in the export");
    }
}

/// Every row of every table, as text: Postgres rows as JSON, SQLite columns as hex (UUIDs are
/// blobs there), so that both a UUID and a number can be looked for.
async fn every_row(hub: &TestHub) -> Vec<(String, String)> {
    use sqlx::{Connection, Row};
    let config = &hub.running.as_ref().unwrap().hub.config;
    let mut rows = Vec::new();
    match &config.database_url {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(&url.0).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            assert!(tables.len() >= 17, "every table listed: {tables:?}");
            for t in tables {
                let texts: Vec<String> = sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM \"{t}\" t"))
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
                rows.extend(texts.into_iter().map(|r| (t.clone(), r)));
            }
        }
        None => {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&config.sqlite_path);
            let mut c = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            assert!(tables.len() >= 17, "every table listed: {tables:?}");
            for t in tables {
                let columns: Vec<String> = sqlx::query(&format!("SELECT name FROM pragma_table_info('{t}')"))
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<String, _>(0))
                    .collect();
                let expr = columns.iter().map(|c| format!("hex(\"{c}\")")).collect::<Vec<_>>().join(" || '|' || ");
                let texts: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT {expr} FROM \"{t}\"")).fetch_all(&mut c).await.unwrap();
                rows.extend(texts.into_iter().map(|r| (t.clone(), r)));
            }
        }
    }
    rows
}

/// The forms in which a user id or a number could be stored: as text, and as SQLite's hex.
fn needles(user_id: &str, number: &str) -> Vec<String> {
    let uuid: uuid::Uuid = user_id.parse().unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
    vec![
        user_id.to_owned(),
        uuid.simple().to_string(),
        number.to_owned(),
        number.trim_start_matches('+').to_owned(),
        hex(uuid.as_bytes()),
        hex(number.as_bytes()),
        hex(number.trim_start_matches('+').as_bytes()),
    ]
}

/// Every key under the hub's Redis prefix, with its value(s), as text.
async fn redis_dump(hub: &TestHub) -> Vec<String> {
    let Some(r) = hub.redis() else { return Vec::new() };
    let client = redis::Client::open(r.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut out = Vec::new();
    for key in r.keys().await {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await.unwrap();
        let value: Vec<String> = match kind.as_str() {
            "string" => vec![redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap()],
            "hash" => redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await.unwrap(),
            "set" => redis::cmd("SMEMBERS").arg(&key).query_async(&mut conn).await.unwrap(),
            "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).query_async(&mut conn).await.unwrap(),
            _ => Vec::new(),
        };
        out.push(format!("{key} => {}", value.join(",")));
    }
    out
}

#[tokio::test]
async fn deleting_the_account_leaves_no_trace() {
    // A presence grace longer than the test: only the deletion itself can clear the user's
    // presence entries from Redis.
    for hub in hubs(|c| c.presence_grace_ms = 60_000).await {
        let label = hub.label();
        let mut l = loaded_user(&hub).await;
        let mut second_socket = hub.connect_as(Encoding::Json, &l.token).await;
        let bystander = hub.token(&phone()).await;
        let needles = needles(&l.user_id, &l.number);
        assert!(
            every_row(&hub).await.iter().any(|(_, r)| needles.iter().any(|n| r.contains(n.as_str()))),
            "{label} the search finds the user before the deletion"
        );

        // An export leaves a rate-limit counter keyed by the account in Redis.
        export(&hub, &l.token).await;
        if hub.redis().is_some() {
            let found = redis_dump(&hub).await.into_iter().filter(|k| needles.iter().any(|n| k.contains(n.as_str())));
            assert!(found.count() >= 2, "{label} the search finds the user's presence and counters in redis");
        }

        // Step one: what will be lost, and the confirmation.
        let (status, notice) = call(&hub, "POST", "/v1/me/deletion", Some(&l.token), None).await;
        assert_eq!(status, 200, "{label} {notice}");
        assert_eq!(notice["will_delete"]["tickets"], 1, "{label} {notice}");
        assert_eq!(notice["will_delete"]["devices"], 2, "{label} {notice}");
        assert_eq!(notice["will_delete"]["purchases"], 3, "{label} {notice}");
        let lost = &notice["paid_and_lost"];
        assert_eq!(lost["active_subscriptions"].as_array().unwrap().len(), 1, "{label} {notice}");
        assert_eq!(lost["active_subscriptions"][0]["kind"], "subscription", "{label}");
        assert_eq!(lost["activations"].as_array().unwrap().len(), 1, "{label} the refunded one is not lost: {notice}");
        assert!(notice["expires_at"].as_u64().unwrap() > now_ms() as u64);
        let confirmation = notice["confirmation"].as_str().unwrap().to_owned();

        // Wrong, tampered or another account's confirmations delete nothing.
        let (_, other_notice) = call(&hub, "POST", "/v1/me/deletion", Some(&bystander), None).await;
        let mut tampered = confirmation.clone();
        tampered.replace_range(tampered.len() - 1.., if tampered.ends_with('0') { "1" } else { "0" });
        for bad in [json!("nonsense"), json!(tampered), other_notice["confirmation"].clone()] {
            let (status, body) =
                call(&hub, "POST", "/v1/me/deletion/confirm", Some(&l.token), Some(json!({"confirmation": bad}))).await;
            assert_eq!((status, code_of(&body)), (400, "confirmation_invalid"), "{label} {bad}");
        }
        let (status, _) = call(&hub, "POST", "/v1/me/deletion/confirm", Some(&l.token), Some(json!({}))).await;
        assert_eq!(status, 400, "{label}");
        assert_eq!(hub.get("/v1/me", Some(&l.token)).await.0, 200, "{label} still there");

        // Step two.
        let (status, body) =
            call(&hub, "POST", "/v1/me/deletion/confirm", Some(&l.token), Some(json!({"confirmation": confirmation})))
                .await;
        assert_eq!(status, 200, "{label} {body}");
        assert_eq!(body["tickets_deleted"], 1, "{label}");

        // Every socket of the user is told and closed; the agents see the ticket go.
        for socket in [&mut l.user, &mut second_socket] {
            assert_eq!(socket.closed().await, Some(4003), "{label}");
            let revoked = socket.seen.iter().find(|f| f["type"] == "session.revoked").expect("session.revoked");
            assert_eq!(revoked["reason"], "account_deleted", "{label}");
        }
        let gone = l.agent.event("ticket.deleted").await;
        assert_eq!(gone["ticket_id"], json!(l.ticket_id), "{label}");
        let gone = l.watcher.event("ticket.deleted").await;
        assert_eq!(gone["ticket_id"], json!(l.ticket_id), "{label} queue watchers too");
        let r = l.agent.request(json!({"type": "ticket.history", "ticket_id": l.ticket_id})).await;
        assert_eq!(r["code"], "not_found", "{label} {r}");
        assert_eq!(hub.get("/v1/me", Some(&l.token)).await.0, 401, "{label} the token is dead");
        assert!(!media_file(&hub, &l.image).exists(), "{label} the image file is deleted");

        // No table holds the user id or the number in any form; neither does Redis.
        let traces: Vec<_> =
            every_row(&hub).await.into_iter().filter(|(_, r)| needles.iter().any(|n| r.contains(n.as_str()))).collect();
        assert!(traces.is_empty(), "{label} traces left in the database: {traces:?}");
        let left: Vec<String> =
            redis_dump(&hub).await.into_iter().filter(|k| needles.iter().any(|n| k.contains(n.as_str()))).collect();
        assert!(left.is_empty(), "{label} traces left in redis: {left:?}");
        let store = &hub.running.as_ref().unwrap().hub.store;
        assert_eq!(store.counter(DELETED_ACCOUNTS).await.unwrap(), 1, "{label} only a count is kept");
        let (status, body) =
            call(&hub, "POST", "/v1/me/deletion/confirm", Some(&l.token), Some(json!({"confirmation": confirmation})))
                .await;
        assert_eq!((status, code_of(&body)), (401, "unauthorized"), "{label} nothing left to delete");

        // The same number registers again and finds nothing of the old account.
        let again = hub.sign_in_on_after_cooldown(&l.number, "new-phone").await;
        assert_eq!(again["new_user"], true, "{label}");
        assert_ne!(again["user_id"], json!(l.user_id), "{label}");
        let doc = export(&hub, again["token"].as_str().unwrap()).await;
        assert_eq!(doc["account"]["name"], Value::Null, "{label}");
        for empty in ["tickets", "view_events", "purchases"] {
            assert_eq!(doc[empty], json!([]), "{label} {empty}");
        }
        assert_eq!(doc["devices"].as_array().unwrap().len(), 1, "{label} only the new sign-in's device");
        assert_eq!(doc["settings"], Value::Null, "{label}");
        assert_eq!(hub.get("/v1/me", Some(&bystander)).await.0, 200, "{label} other accounts are untouched");
    }
}
