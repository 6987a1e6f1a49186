//! Telemetry, settings and consent over real sockets, on every backend: each frame kind good and
//! bad, consent on and off with its purge, settings across sessions and a device transfer,
//! connection records behind a trusted proxy, the retention purge, and the overload answer.

mod common;

use anapars_hub::model::ids::{DeviceId, UserId};
use anapars_hub::model::telemetry::{TelemetryWrite, ViewEvent};
use anapars_hub::model::time::now_ms;
use anapars_hub::protocol::Encoding;
use common::hub::{hubs, phone, Client, TestHub, FRAME_TIMEOUT};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ENCODINGS: [Encoding; 2] = [Encoding::Json, Encoding::MsgPack];

/// A signed-in user's socket, with their user and device ids.
async fn user_socket(hub: &TestHub, encoding: Encoding) -> (Client, UserId, DeviceId) {
    let body = hub.sign_in_on(&phone(), "phone-1").await;
    let token = body["token"].as_str().unwrap();
    let c = hub.connect_as(encoding, token).await;
    (c, UserId(ids(&body["user_id"])), DeviceId(ids(&body["device_id"])))
}

fn ids(v: &Value) -> uuid::Uuid {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a uuid: {v}"))
}

fn store(hub: &TestHub) -> &dyn anapars_hub::ports::store::Store {
    &*hub.running.as_ref().expect("hub running").hub.store
}

fn view(i: usize) -> Value {
    json!({"kind": if i % 2 == 0 { "screen" } else { "action" }, "screen": "tickets", "target": "open",
           "at": now_ms() - 1_000, "duration_ms": 250, "unknown_field": {"ignored": true}})
}

fn views(n: usize) -> Value {
    json!({"type": "telemetry.views", "events": (0..n).map(view).collect::<Vec<_>>()})
}

fn assert_error(reply: &Value, code: &str, label: &str) {
    assert_eq!((reply["type"].as_str(), reply["code"].as_str()), (Some("error"), Some(code)), "{label} {reply}");
}

/// Polls `check` until it holds (the pipeline's fire-and-forget records land a moment later).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + FRAME_TIMEOUT;
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metrics(hub: &TestHub) -> String {
    hub.http.get(format!("{}/metrics", hub.base)).send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn device_reports_are_validated_and_kept_with_a_bounded_history() {
    for hub in hubs(|_| {}).await {
        for encoding in ENCODINGS {
            let label = format!("{} {encoding:?}", hub.label());
            let (mut c, user, device) = user_socket(&hub, encoding).await;
            let report = json!({"os": "android", "os_version": "14", "model": "Pixel 8", "manufacturer": "Google",
                                "memory_mb": 8192, "screen_width": 1080, "screen_height": 2400,
                                "app_version": "3.2.1", "locale": "fa-IR", "battery": "unknown fields are ignored"});
            let r = c.request(json!({"type": "telemetry.device", "device": report})).await;
            assert_eq!(r["type"], "ok", "{label} {r}");
            let stored = store(&hub).device_info(device).await.unwrap().expect("stored once acknowledged");
            assert_eq!((stored.user_id, stored.info.os.as_str()), (user, "android"), "{label}");
            assert_eq!(stored.info.memory_mb, Some(8192), "{label}");
            // The same report again adds no history; a changed one does.
            c.request(json!({"type": "telemetry.device", "device": report})).await;
            let mut changed = report.clone();
            changed["os_version"] = json!("15");
            assert_eq!(c.request(json!({"type": "telemetry.device", "device": changed})).await["type"], "ok");
            assert_eq!(store(&hub).device_history(device).await.unwrap().len(), 2, "{label}");

            // Wrong types: bad_request naming the field's path; nothing stored.
            let r = c.request(json!({"type": "telemetry.device", "device": {"os": "ios", "memory_mb": "lots"}})).await;
            assert_error(&r, "bad_request", &label);
            assert!(r["message"].as_str().unwrap().contains("device.memory_mb"), "{label} {r}");
            let r = c.request(json!({"type": "telemetry.device", "device": "android"})).await;
            assert_error(&r, "bad_request", &label);
            let r = c.request(json!({"type": "telemetry.device", "device": {"os_version": "14"}})).await;
            assert_error(&r, "bad_request", &label);
            // Out of the schema's limits.
            for bad in [
                json!({"os": "ios", "screen_width": 0}),
                json!({"os": "x".repeat(33)}),
                json!({"os": "ios", "locale": "fa IR"}),
            ] {
                let r = c.request(json!({"type": "telemetry.device", "device": bad})).await;
                assert_error(&r, "bad_request", &label);
            }
            let latest = store(&hub).device_info(device).await.unwrap().unwrap();
            assert_eq!(latest.info.os_version.as_deref(), Some("15"), "{label}: nothing malformed stored");
        }
        let (agent_token, _) = hub.agent("Sara").await;
        let mut a = hub.connect_agent(Encoding::Json, &agent_token).await;
        let r = a.request(json!({"type": "telemetry.device", "device": {"os": "web"}})).await;
        assert_error(&r, "forbidden", &hub.label());
        let text = metrics(&hub).await;
        for needle in
            ["hub_telemetry_accepted_total{kind=\"device\"}", "hub_telemetry_malformed_total{kind=\"device\"}"]
        {
            assert!(text.contains(needle), "{} /metrics lacks {needle}", hub.label());
        }
    }
}

#[tokio::test]
async fn view_batches_follow_the_schema_and_the_analytics_consent() {
    for hub in hubs(|_| {}).await {
        for encoding in ENCODINGS {
            let label = format!("{} {encoding:?}", hub.label());
            let (mut c, user, _) = user_socket(&hub, encoding).await;
            let r = c.request(views(3)).await;
            assert_eq!(r["type"], "ok", "{label} {r}");
            let stored = store(&hub).view_events(user, 100).await.unwrap();
            assert_eq!(stored.len(), 3, "{label}");
            assert_eq!((stored[1].event.kind.as_str(), stored[1].event.target.as_deref()), ("action", Some("open")));

            // Bad batches are refused whole.
            let mut bad = views(3);
            bad["events"][2]["kind"] = json!("swipe");
            let r = c.request(bad).await;
            assert_error(&r, "bad_request", &label);
            assert!(r["message"].as_str().unwrap().contains("events[2].kind"), "{label} {r}");
            let mut bad = views(2);
            bad["events"][1]["at"] = json!("yesterday");
            assert_error(&c.request(bad).await, "bad_request", &label);
            let mut bad = views(2);
            bad["events"][0]["screen"] = json!("s".repeat(65));
            let r = c.request(bad).await;
            assert!(r["message"].as_str().unwrap().starts_with("events[0].screen"), "{label} {r}");
            assert_error(&c.request(views(101)).await, "bad_request", &label);
            assert_error(&c.request(views(0)).await, "bad_request", &label);
            assert_eq!(store(&hub).view_events(user, 100).await.unwrap().len(), 3, "{label}: nothing bad stored");

            // Analytics off: what was collected goes at once, later batches are refused.
            let r = c.request(json!({"type": "consent.get"})).await;
            assert_eq!(
                r["consent"],
                json!({"analytics": true, "analytics_changed_at": null,
                       "personalisation": true, "personalisation_changed_at": null,
                       "sms_reminders": false, "sms_reminders_changed_at": null}),
                "{label}"
            );
            let r = c.request(json!({"type": "consent.set", "analytics": false})).await;
            assert_eq!(r["type"], "consent.ok", "{label} {r}");
            assert_eq!(r["consent"]["analytics"], false);
            assert!(r["consent"]["analytics_changed_at"].as_i64().is_some(), "{label} {r}");
            assert_eq!(r["consent"]["personalisation_changed_at"], Value::Null);
            let pushed = c.event("consent.updated").await;
            assert_eq!(pushed["consent"], r["consent"], "{label}");
            assert!(store(&hub).view_events(user, 100).await.unwrap().is_empty(), "{label}: purged at once");
            let r = c.request(views(2)).await;
            assert_error(&r, "consent_required", &label);
            assert!(r["message"].as_str().unwrap().contains("analytics"), "{label} {r}");
            assert!(store(&hub).view_events(user, 100).await.unwrap().is_empty(), "{label}: nothing stored while off");

            // On again: stored again.
            c.request(json!({"type": "consent.set", "analytics": true})).await;
            assert_eq!(c.request(views(1)).await["type"], "ok", "{label}");
            assert_eq!(store(&hub).view_events(user, 100).await.unwrap().len(), 1, "{label}");
        }
        let text = metrics(&hub).await;
        for needle in [
            "hub_telemetry_accepted_total{kind=\"view\"}",
            "hub_telemetry_refused_consent_total{kind=\"view\"}",
            "hub_telemetry_malformed_total{kind=\"view\"}",
        ] {
            assert!(text.contains(needle), "{} /metrics lacks {needle}", hub.label());
        }
    }
}

#[tokio::test]
async fn settings_sync_across_sessions_and_follow_the_account_to_a_new_phone() {
    for hub in hubs(|c| {
        c.max_devices = 2;
        c.codes_per_number_10min = 10;
    })
    .await
    {
        let label = hub.label();
        let number = phone();
        let a = hub.sign_in_on(&number, "phone-a").await;
        let b = hub.sign_in_on_after_cooldown(&number, "tablet-b").await;
        let mut on_a = hub.connect_as(Encoding::Json, a["token"].as_str().unwrap()).await;
        let mut on_b = hub.connect_as(Encoding::MsgPack, b["token"].as_str().unwrap()).await;

        let r = on_b.request(json!({"type": "settings.get"})).await;
        assert_eq!(
            (r["type"].as_str(), &r["settings"], &r["updated_at"]),
            (Some("settings.ok"), &json!({}), &Value::Null)
        );
        let doc = json!({"theme": "dark", "notifications": {"sound": false, "quiet_hours": [22, 7]}});
        let r = on_a.request(json!({"type": "settings.put", "settings": doc})).await;
        assert_eq!((r["type"].as_str(), &r["settings"]), (Some("settings.ok"), &doc), "{label} {r}");
        let pushed = on_b.event("settings.updated").await;
        assert_eq!((&pushed["settings"], &pushed["updated_at"]), (&doc, &r["updated_at"]), "{label}");
        assert_eq!(on_b.request(json!({"type": "settings.get"})).await["settings"], doc, "{label}");

        // Bad documents: not a map, too large; the stored one stays.
        assert_error(&on_a.request(json!({"type": "settings.put", "settings": [1, 2]})).await, "bad_request", &label);
        let big = json!({"blob": "x".repeat(9000)});
        assert_error(&on_a.request(json!({"type": "settings.put", "settings": big})).await, "too_large", &label);

        // A third phone takes the account over (max_devices 2: the oldest device is signed out);
        // the settings are the user's, so they are there.
        drop((on_a, on_b));
        hub.sign_in_on_after_cooldown(&number, "phone-c").await;
        let c2 = hub.sign_in_on_after_cooldown(&number, "phone-d").await;
        let mut on_d = hub.connect_as(Encoding::Json, c2["token"].as_str().unwrap()).await;
        assert_eq!(
            on_d.request(json!({"type": "settings.get"})).await["settings"],
            doc,
            "{label}: kept across devices"
        );

        // Personalisation off: the document is removed and requests say so.
        let r = on_d.request(json!({"type": "consent.set", "personalisation": false})).await;
        assert_eq!(r["consent"]["personalisation"], false, "{label} {r}");
        let r = on_d.request(json!({"type": "settings.get"})).await;
        assert_error(&r, "consent_required", &label);
        assert!(r["message"].as_str().unwrap().contains("personalisation"), "{label} {r}");
        assert_error(&on_d.request(json!({"type": "settings.put", "settings": doc})).await, "consent_required", &label);
        let user = UserId(ids(&c2["user_id"]));
        assert_eq!(store(&hub).settings(user).await.unwrap(), None, "{label}: removed with the switch");
        on_d.request(json!({"type": "consent.set", "personalisation": true})).await;
        assert_eq!(on_d.request(json!({"type": "settings.get"})).await["settings"], json!({}), "{label}");
    }
}

#[tokio::test]
async fn connections_are_recorded_with_the_client_behind_a_trusted_proxy() {
    for hub in hubs(|c| c.trusted_proxies = "127.0.0.1".into()).await {
        let label = hub.label();
        let body = hub.sign_in_on(&phone(), "laptop").await;
        let user = UserId(ids(&body["user_id"]));
        let mut req = hub.ws_url.as_str().into_client_request().unwrap();
        let headers = req.headers_mut();
        headers.insert("Sec-WebSocket-Protocol", "anapars.v1.json".parse().unwrap());
        headers.insert("X-Forwarded-For", "198.51.100.9, 127.0.0.1".parse().unwrap());
        headers.insert(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".parse().unwrap(),
        );
        headers.insert("Authorization", format!("Bearer {}", body["token"].as_str().unwrap()).parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("connects");
        drop(ws);
        let store = store(&hub);
        eventually("the connection record with its close time", || async {
            store.connections(user, 10).await.unwrap().first().is_some_and(|r| r.disconnected_at.is_some())
        })
        .await;
        let record = store.connections(user, 10).await.unwrap().remove(0);
        assert_eq!(record.ip, "198.51.100.9", "{label}");
        assert_eq!(record.client_version.as_deref(), Some("Firefox/128.0"), "{label}");
        assert!(record.user_agent.as_deref().unwrap().starts_with("Mozilla/5.0"), "{label}");
        assert!(record.disconnected_at.unwrap() >= record.connected_at, "{label}");
        assert_eq!(record.device_id, DeviceId(ids(&body["device_id"])), "{label}");
    }
    // Without trusted proxies the header is not believed.
    for hub in hubs(|_| {}).await {
        let body = hub.sign_in_on(&phone(), "laptop").await;
        let user = UserId(ids(&body["user_id"]));
        let mut req = hub.ws_url.as_str().into_client_request().unwrap();
        req.headers_mut().insert("X-Forwarded-For", "198.51.100.9".parse().unwrap());
        req.headers_mut().insert("X-App-Version", "3.2.1".parse().unwrap());
        req.headers_mut()
            .insert("Authorization", format!("Bearer {}", body["token"].as_str().unwrap()).parse().unwrap());
        let (_ws, _) = tokio_tungstenite::connect_async(req).await.expect("connects");
        let store = store(&hub);
        eventually("the connection record", || async { !store.connections(user, 10).await.unwrap().is_empty() }).await;
        let record = store.connections(user, 10).await.unwrap().remove(0);
        assert_eq!(
            (record.ip.as_str(), record.client_version.as_deref()),
            ("127.0.0.1", Some("3.2.1")),
            "{}",
            hub.label()
        );
    }
}

#[tokio::test]
async fn the_retention_purge_deletes_what_is_past_its_window() {
    for hub in hubs(|c| c.telemetry_purge_interval_ms = 50).await {
        let label = hub.label();
        let (mut c, user, device) = user_socket(&hub, Encoding::Json).await;
        assert_eq!(c.request(views(2)).await["type"], "ok");
        // Events received 31 days ago, written straight to storage (the socket cannot backdate).
        let old = now_ms() - 31 * 86_400_000;
        let event = ViewEvent { kind: "screen".into(), screen: "old".into(), target: None, at: old, duration_ms: None };
        let write =
            TelemetryWrite::Views { user_id: user, device_id: device, events: vec![event; 3], received_at: old };
        store(&hub).store_telemetry(&[write], true).await.unwrap();
        let store = store(&hub);
        eventually("the old events purged", || async {
            store.view_events(user, 100).await.unwrap().iter().all(|v| v.event.screen != "old")
        })
        .await;
        assert_eq!(store.view_events(user, 100).await.unwrap().len(), 2, "{label}: recent events stay");
        assert!(metrics(&hub).await.contains("hub_telemetry_purged_total{kind=\"view\"}"), "{label}");
    }
}

#[tokio::test]
async fn a_full_pipeline_answers_overloaded_and_stores_what_it_acknowledged() {
    for hub in hubs(|c| {
        c.telemetry_queue = 1;
        c.telemetry_batch = 1;
        // The stalled batch must outlive the test's steps, however slow the machine.
        c.db_timeout_ms = 30_000;
    })
    .await
    {
        let label = hub.label();
        let mut sockets = Vec::new();
        for i in 0..4 {
            let (mut c, user, _) = user_socket(&hub, ENCODINGS[i % 2]).await;
            // Its connection record is stored before this is acknowledged (one writer, in order).
            assert_eq!(c.request(json!({"type": "telemetry.device", "device": {"os": "android"}})).await["type"], "ok");
            sockets.push((c, user));
        }
        // Stall the writer: lock what it writes to.
        let lock = common::hub::WriteLock::take(&hub, "view_events").await;
        // Each socket waits for its one answer in a task of its own: a refused frame is answered at
        // once, an accepted one only when its batch is stored.
        let (tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for (i, (mut c, user)) in sockets.into_iter().enumerate() {
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                let r = c.request(views(10)).await;
                let _ = tx.send((i, r.clone()));
                (c, user, r)
            }));
        }
        // The writer is stuck on at most one batch and the queue holds one write: at least two of
        // the four must be refused while the lock is held.
        let mut refused = 0;
        while refused < 2 {
            let (_, r) = answers.recv().await.expect("an answer");
            assert_error(&r, "overloaded", &label);
            assert_eq!(r["retry_after_ms"], 1000, "{label} {r}");
            refused += 1;
        }
        drop(lock);
        for task in tasks {
            let (_, user, r) = task.await.expect("socket task");
            let stored = store(&hub).view_events(user, 100).await.unwrap().len();
            match r["code"].as_str() {
                Some("overloaded") => assert_eq!(stored, 0, "{label}: refused means nothing stored"),
                _ => {
                    assert_eq!(r["type"], "ok", "{label} {r}");
                    assert_eq!(stored, 10, "{label}: acknowledged means stored");
                }
            }
        }
        assert!(metrics(&hub).await.contains("hub_telemetry_dropped_total{kind=\"view\"}"), "{label}");
    }
}
