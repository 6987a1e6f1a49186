//! Purchases and subscriptions on every backend, through the real hub: billing's signed reports
//! (good, badly signed, replayed outside the window, repeated, renewed, refunded, conflicting, for an
//! unknown user, malformed, with no secret configured), the buyer's sockets hearing of them, and
//! the buyer listing them over the socket in both encodings and over HTTP.
//!
//! The signatures are computed here with the `hmac` crate, not with the hub's code, so that a
//! mistake in the hub's reading of the header cannot hide behind the same mistake in the test.

mod common;

use anapars_hub::model::time::now_ms;
use anapars_hub::protocol::Encoding;
use common::hub::{hubs, phone, Client, TestHub};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "test-billing-secret-0123456789abcdef";
const DAY: i64 = 86_400_000;
const ENCODINGS: [Encoding; 2] = [Encoding::Json, Encoding::MsgPack];

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>." ++ body)>`, as billing computes it.
fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

fn now_secs() -> i64 {
    now_ms() / 1000
}

/// POSTs `body` as is with `signature` (none: no header).
async fn post_raw(hub: &TestHub, signature: Option<String>, body: Vec<u8>) -> (u16, Value) {
    let mut req = hub.http.post(format!("{}/v1/billing/purchases", hub.base)).body(body);
    req = req.header("content-type", "application/json");
    if let Some(s) = signature {
        req = req.header("Anapars-Signature", s);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// POSTs `report`, signed now with the hub's secret.
async fn post_report(hub: &TestHub, report: &Value) -> (u16, Value) {
    let body = report.to_string().into_bytes();
    post_raw(hub, Some(sign(SECRET, now_secs(), &body)), body).await
}

/// A paid 30-day subscription of `user`, bought a day ago, under a fresh reference.
fn subscription(user: &str) -> Value {
    let bought = now_ms() - DAY;
    json!({"reference": format!("inv-{}", uuid::Uuid::new_v4().simple()), "user_id": user,
           "product": "anapars-pro", "kind": "subscription", "amount_minor": 4_900_000, "currency": "IRR",
           "purchased_at": bought, "expires_at": bought + 30 * DAY})
}

/// A signed-in user: their token and id.
async fn user(hub: &TestHub) -> (String, String) {
    let body = hub.sign_in_on(&phone(), "phone-1").await;
    (body["token"].as_str().unwrap().to_owned(), body["user_id"].as_str().unwrap().to_owned())
}

fn assert_error(status_body: &(u16, Value), status: u16, code: &str, label: &str) {
    assert_eq!(
        (status_body.0, status_body.1["error"]["code"].as_str()),
        (status, Some(code)),
        "{label} {status_body:?}"
    );
}

/// The user's purchases over HTTP.
async fn listed(hub: &TestHub, token: &str) -> Vec<Value> {
    let (status, body) = hub.get("/v1/me/purchases", Some(token)).await;
    assert_eq!(status, 200, "{} {body}", hub.label());
    body["purchases"].as_array().cloned().unwrap_or_default()
}

async fn metrics(hub: &TestHub) -> String {
    hub.http.get(format!("{}/metrics", hub.base)).send().await.unwrap().text().await.unwrap()
}

/// The purchase fields a report determines (the wire shape minus the hub's id).
fn reported_fields(report: &Value, status: &str, active: bool) -> Value {
    let mut p = report.clone();
    let map = p.as_object_mut().unwrap();
    map.remove("user_id");
    map.entry("expires_at").or_insert(Value::Null);
    map.insert("status".into(), json!(status));
    map.insert("active".into(), json!(active));
    p
}

fn without_id(p: &Value) -> Value {
    let mut p = p.clone();
    p.as_object_mut().unwrap().remove("id");
    p
}

#[tokio::test]
async fn a_signed_report_is_stored_pushed_to_the_buyer_and_listed_in_both_encodings_and_over_http() {
    for hub in hubs(|c| c.billing_secret = Some(anapars_hub::config::Secret(SECRET.into()))).await {
        let label = hub.label();
        let (token, user_id) = user(&hub).await;
        let mut sockets: Vec<Client> = Vec::new();
        for encoding in ENCODINGS {
            sockets.push(hub.connect_as(encoding, &token).await);
        }
        let report = subscription(&user_id);
        let (status, body) = post_report(&hub, &report).await;
        assert_eq!((status, body["outcome"].as_str()), (201, Some("created")), "{label} {body}");
        let purchase = body["purchase"].clone();
        assert_eq!(without_id(&purchase), reported_fields(&report, "paid", true), "{label}");
        assert!(purchase["id"].as_str().is_some_and(|id| id.parse::<uuid::Uuid>().is_ok()), "{label}");

        for c in &mut sockets {
            let event = c.event("purchase.updated").await;
            assert_eq!(event["purchase"], purchase, "{label} {:?}: the buyer hears of it at once", c.encoding);
            let reply = c.request(json!({"type": "purchase.list"})).await;
            assert_eq!(reply["type"], "purchase.list.ok", "{label} {reply}");
            assert_eq!(reply["purchases"], json!([purchase]), "{label} {:?}", c.encoding);
        }
        let resp = hub.http.get(format!("{}/v1/me/purchases", hub.base)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{label}");
        assert_eq!(resp.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"), "{label}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, json!({"purchases": [purchase]}), "{label}");

        // Only the buyer: another user sees none, an agent is refused, no token is unauthenticated.
        let (other_token, _) = user(&hub).await;
        assert!(listed(&hub, &other_token).await.is_empty(), "{label}");
        let (agent_token, _) = hub.agent("Sara").await;
        assert_error(&hub.get("/v1/me/purchases", Some(&agent_token)).await, 403, "forbidden", &label);
        assert_error(&hub.get("/v1/me/purchases", None).await, 401, "unauthenticated", &label);
        let mut agent = hub.connect_agent(Encoding::Json, &agent_token).await;
        let reply = agent.request(json!({"type": "purchase.list"})).await;
        assert_eq!((reply["type"].as_str(), reply["code"].as_str()), (Some("error"), Some("forbidden")), "{label}");

        let text = metrics(&hub).await;
        assert!(text.contains("hub_purchase_reports_total{outcome=\"created\"}"), "{label} /metrics lacks the counter");
    }
}

#[tokio::test]
async fn badly_signed_and_stale_reports_are_refused_and_store_nothing() {
    for hub in hubs(|c| c.billing_secret = Some(anapars_hub::config::Secret(SECRET.into()))).await {
        let label = hub.label();
        let (token, user_id) = user(&hub).await;
        let body = subscription(&user_id).to_string().into_bytes();
        let now = now_secs();
        let good = sign(SECRET, now, &body);
        let hex = good.split_once("v1=").unwrap().1.to_owned();
        let mut tampered = body.clone();
        let at = tampered.iter().position(|b| b.is_ascii_digit()).unwrap();
        tampered[at] = if tampered[at] == b'9' { b'8' } else { tampered[at] + 1 };
        let bad = [
            ("wrong secret", Some(sign("another-secret-of-the-same-length-xx", now, &body)), body.clone()),
            ("body changed after signing", Some(good.clone()), tampered),
            ("no header", None, body.clone()),
            ("malformed header", Some(format!("v1={hex}")), body.clone()),
            ("malformed timestamp", Some(format!("t=soon,v1={hex}")), body.clone()),
            ("wrong hex", Some(format!("t={now},v1={}", "zz".repeat(32))), body.clone()),
            ("short hex", Some(format!("t={now},v1={}", &hex[..40])), body.clone()),
        ];
        for (what, signature, body) in bad {
            assert_error(&post_raw(&hub, signature, body).await, 401, "bad_signature", &format!("{label} {what}"));
        }
        for (what, t) in [("replayed later", now - 301), ("from the future", now + 301)] {
            let stale = post_raw(&hub, Some(sign(SECRET, t, &body)), body.clone()).await;
            assert_error(&stale, 401, "stale_signature", &format!("{label} {what}"));
            assert!(stale.1["error"]["message"].as_str().unwrap().contains("outside the allowed window"), "{label}");
        }
        assert!(listed(&hub, &token).await.is_empty(), "{label}: nothing stored");
        // The same body, correctly signed, is taken: the refusals were about the signature alone.
        assert_eq!(post_raw(&hub, Some(good), body).await.0, 201, "{label}");
        let text = metrics(&hub).await;
        for outcome in ["bad_signature", "stale_signature"] {
            assert!(
                text.contains(&format!("hub_purchase_reports_total{{outcome=\"{outcome}\"}}")),
                "{label} {outcome}"
            );
        }
    }
}

#[tokio::test]
async fn repeats_renewals_refunds_and_conflicts_follow_the_state_rules() {
    for hub in hubs(|c| c.billing_secret = Some(anapars_hub::config::Secret(SECRET.into()))).await {
        let label = hub.label();
        let (token, user_id) = user(&hub).await;
        let mut c = hub.connect_as(Encoding::Json, &token).await;
        let report = subscription(&user_id);
        assert_eq!(post_report(&hub, &report).await.0, 201, "{label}");
        let created = c.event("purchase.updated").await["purchase"].clone();

        // The same report again (billing retried): nothing changes, nothing is pushed.
        let (status, body) = post_report(&hub, &report).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("duplicate")), "{label} {body}");
        assert_eq!(body["purchase"], created, "{label}");
        assert_eq!(listed(&hub, &token).await.len(), 1, "{label}: still one purchase");

        // A renewal moves the expiry later; replaying the older report does not move it back.
        let mut renewed = report.clone();
        renewed["expires_at"] = json!(report["expires_at"].as_i64().unwrap() + 30 * DAY);
        let (status, body) = post_report(&hub, &renewed).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("updated")), "{label} {body}");
        assert_eq!(body["purchase"]["expires_at"], renewed["expires_at"], "{label}");
        assert_eq!(post_report(&hub, &report).await.1["outcome"], "duplicate", "{label}");
        let event = c.event("purchase.updated").await;
        assert_eq!(event["purchase"]["expires_at"], renewed["expires_at"], "{label}: the renewal, and only it, pushed");

        // A refund ends it for good: a later `paid` replay does not revive it.
        let mut refund = renewed.clone();
        refund["status"] = json!("refunded");
        let (status, body) = post_report(&hub, &refund).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("updated")), "{label} {body}");
        assert_eq!(
            (body["purchase"]["status"].as_str(), body["purchase"]["active"].as_bool()),
            (Some("refunded"), Some(false))
        );
        let event = c.event("purchase.updated").await;
        assert_eq!(event["purchase"]["active"], false, "{label}: the app locks at once");
        let (status, body) = post_report(&hub, &renewed).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("duplicate")), "{label} {body}");
        assert_eq!(body["purchase"]["status"], "refunded", "{label}");
        let list = listed(&hub, &token).await;
        assert_eq!((list.len(), list[0]["status"].as_str()), (1, Some("refunded")), "{label}");

        // The reference of this purchase for another amount, or another user: a conflict.
        let mut reused = renewed.clone();
        reused["amount_minor"] = json!(1);
        let refused = post_report(&hub, &reused).await;
        assert_error(&refused, 409, "conflict", &label);
        assert!(refused.1["error"]["message"].as_str().unwrap().contains("reference already used"), "{label}");
        let (_, other) = user(&hub).await;
        reused = renewed.clone();
        reused["user_id"] = json!(other);
        assert_error(&post_report(&hub, &reused).await, 409, "conflict", &label);
        assert_eq!(listed(&hub, &token).await, list, "{label}: a conflict changes nothing");

        // An activation without expiry is permanent.
        let mut activation = subscription(&user_id);
        activation["kind"] = json!("activation");
        activation.as_object_mut().unwrap().remove("expires_at");
        let (status, body) = post_report(&hub, &activation).await;
        assert_eq!(status, 201, "{label} {body}");
        assert_eq!(
            (body["purchase"]["expires_at"].clone(), body["purchase"]["active"].clone()),
            (Value::Null, json!(true))
        );

        // The audit log, as the user's export holds it: billing's records and changes, not the
        // repeats and refusals, with the purchase's id and nothing of the report.
        let export: Value = hub
            .http
            .get(format!("{}/v1/me/export", hub.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let billed: Vec<(&str, &str)> = export["audit"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["actor"] == "billing")
            .map(|e| (e["action"].as_str().unwrap(), e["object_id"].as_str().unwrap()))
            .collect();
        let first = created["id"].as_str().unwrap();
        let second = body["purchase"]["id"].as_str().unwrap();
        assert_eq!(
            billed,
            [
                ("purchase.recorded", first),
                ("purchase.updated", first),
                ("purchase.updated", first),
                ("purchase.recorded", second)
            ],
            "{label}"
        );
        assert!(!export["audit"].to_string().contains(report["reference"].as_str().unwrap()), "{label}");
    }
}

#[tokio::test]
async fn unknown_users_bad_fields_large_bodies_and_a_hub_without_a_secret_are_refused() {
    for hub in hubs(|c| c.billing_secret = Some(anapars_hub::config::Secret(SECRET.into()))).await {
        let label = hub.label();
        let (token, user_id) = user(&hub).await;
        let unknown = post_report(&hub, &subscription(&uuid::Uuid::now_v7().to_string())).await;
        assert_error(&unknown, 404, "not_found", &label);
        assert_eq!(unknown.1["error"]["message"], "user not found", "{label}");

        let bad: [(&str, Value); 7] = [
            ("reference", json!("")),
            ("user_id", json!("someone")),
            ("kind", json!("gift")),
            ("amount_minor", json!(-100)),
            ("currency", json!("rial")),
            ("expires_at", json!(0)),
            ("status", json!("pending")),
        ];
        for (field, value) in bad {
            let mut report = subscription(&user_id);
            report[field] = value;
            let refused = post_report(&hub, &report).await;
            assert_error(&refused, 400, "bad_request", &format!("{label} {field}"));
            assert!(refused.1["error"]["message"].as_str().unwrap().contains(field), "{label} {refused:?}");
        }
        let mut missing = subscription(&user_id);
        missing.as_object_mut().unwrap().remove("expires_at");
        assert_error(
            &post_report(&hub, &missing).await,
            400,
            "bad_request",
            &format!("{label} subscription without expiry"),
        );
        let not_json = b"reference=inv-1".to_vec();
        assert_error(
            &post_raw(&hub, Some(sign(SECRET, now_secs(), &not_json)), not_json).await,
            400,
            "bad_request",
            &label,
        );

        let mut large = subscription(&user_id);
        large["padding"] = json!("x".repeat(17 * 1024));
        assert_error(&post_report(&hub, &large).await, 413, "too_large", &label);
        assert!(listed(&hub, &token).await.is_empty(), "{label}: nothing stored");
    }
    for hub in hubs(|_| {}).await {
        let (_, user_id) = user(&hub).await;
        assert_error(&post_report(&hub, &subscription(&user_id)).await, 403, "forbidden", &hub.label());
    }
}
