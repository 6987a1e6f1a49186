//! Push notifications end to end against a local Web Push receiver (a real HTTP server started by
//! the test) that decrypts what it receives with the subscription's private key, proving the RFC 8291
//! encryption, and checks the VAPID signature (RFC 8292). On every hub set-up (SQLite in-process;
//! Postgres with Redis when the TEST_ URLs are set).

mod common;

use anapars_hub::protocol::Encoding;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::hub::hubs;
use common::push::{quick, registered, reply, scene, user_of};
use common::webpush::{check_vapid, Receiver};
use ring::signature;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn config(c: &mut anapars_hub::Config) {
    quick(c);
    c.webpush_allow_http = true;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_app_gets_one_private_notification_per_burst() {
    let receiver = Receiver::start().await;
    for hub in hubs(config).await {
        let label = hub.label();
        let mut s = scene(&hub).await;
        let (status, vapid) = hub.get("/v1/push/vapid", None).await;
        assert_eq!(status, 200);
        let hub_key = vapid["public_key"].as_str().unwrap().to_owned();
        let (id, registration) = receiver.subscribe(&[]);
        let (status, body) = hub.http_put_json("/v1/push", &s.user_token, &registration).await;
        assert_eq!(status, 200, "{label} {body}");
        assert_eq!(
            body["registration"],
            json!({"provider": "webpush", "preview": false, "language": "fa", "updated_at": body["registration"]["updated_at"]})
        );

        let secret = "شماره کارت ۶۰۳۷ ۹۹۷۵ و مبلغ ۲۵۰٬۰۰۰ تومان";
        reply(&mut s.agent, &s.ticket, secret, "a-1").await;
        reply(&mut s.agent, &s.ticket, "لطفاً رسید را بفرستید", "a-2").await;
        let pushes = receiver.wait_for(&id, 1).await;
        assert_eq!(pushes.len(), 1, "{label} a burst within the collapse window is one notification");
        let push = &pushes[0];
        let payload = push.payload.as_ref().expect("decrypted");
        assert_eq!(payload["ticket_id"], s.ticket.as_str(), "{label} {payload}");
        assert_eq!(payload["kind"], "message");
        assert_eq!(payload["body"], "پاسخ تازه از پشتیبانی", "the fixed line, no text");
        assert_eq!(payload["title"], "پشتیبانی آناپارس");
        assert_eq!(payload["badge"], 1, "one conversation unread");
        let text = payload.to_string();
        for secret_part in [secret, "۶۰۳۷", "Sara", &s.phone, &s.phone[3..]] {
            assert!(!text.contains(secret_part), "{label} the payload names {secret_part}");
            assert!(!push.body.windows(secret_part.len()).any(|w| w == secret_part.as_bytes()));
        }
        let h = &push.headers;
        assert_eq!(h["content-encoding"], "aes128gcm");
        assert_eq!(h["topic"].to_str().unwrap(), uuid::Uuid::parse_str(&s.ticket).unwrap().simple().to_string());
        assert!(h["ttl"].to_str().unwrap().parse::<u64>().unwrap() > 0);
        let origin = receiver.base.lock().unwrap().clone();
        check_vapid(h, &origin, &hub_key);

        // With the app open, nothing is pushed.
        let mut app = hub.connect_as(Encoding::Json, &s.user_token).await;
        let _ = app.request(json!({"type": "ping"})).await;
        reply(&mut s.agent, &s.ticket, "هنوز هستید؟", "a-3").await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(receiver.received(&id).len(), 1, "{label} pushed to an open app");
        drop(app);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn previews_are_the_users_choice() {
    let receiver = Receiver::start().await;
    for hub in hubs(config).await {
        let mut s = scene(&hub).await;
        let (id, mut registration) = receiver.subscribe(&[]);
        registration["preview"] = json!(true);
        registration["language"] = json!("en");
        let (status, _) = hub.http_put_json("/v1/push", &s.user_token, &registration).await;
        assert_eq!(status, 200);
        reply(&mut s.agent, &s.ticket, "Your refund is on its way", "a-1").await;
        let pushes = receiver.wait_for(&id, 1).await;
        let payload = pushes[0].payload.as_ref().unwrap();
        assert_eq!(
            (payload["body"].as_str(), payload["title"].as_str()),
            (Some("Your refund is on its way"), Some("Anapars Support"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn providers_answers_retry_with_their_wait_or_end_the_registration() {
    let receiver = Receiver::start().await;
    for hub in hubs(config).await {
        let label = hub.label();
        // 503 with Retry-After: 1, then 429 with Retry-After: 1, then taken.
        let mut s = scene(&hub).await;
        let (id, registration) = receiver.subscribe(&[(503, Some("1")), (429, Some("1"))]);
        let (status, _) = hub.http_put_json("/v1/push", &s.user_token, &registration).await;
        assert_eq!(status, 200);
        reply(&mut s.agent, &s.ticket, "x", "a-1").await;
        let pushes = receiver.wait_for(&id, 3).await;
        assert_eq!(pushes.len(), 3, "{label} two refusals and the delivery, nothing more");
        for pair in pushes.windows(2) {
            let gap = pair[1].at - pair[0].at;
            assert!(gap >= Duration::from_millis(900), "{label} retried after {gap:?}, before Retry-After");
        }

        // 410: the target is gone, and so is the registration.
        let mut s = scene(&hub).await;
        let (id, registration) = receiver.subscribe(&[(410, None)]);
        let (status, _) = hub.http_put_json("/v1/push", &s.user_token, &registration).await;
        assert_eq!(status, 200);
        let user = user_of(&hub, &s.user_token).await;
        reply(&mut s.agent, &s.ticket, "x", "a-1").await;
        receiver.wait_for(&id, 1).await;
        assert!(!registered(&hub, user).await, "{label} a gone target stays");
        reply(&mut s.agent, &s.ticket, "y", "a-2").await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(receiver.received(&id).len(), 1, "{label} pushed to a gone target again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registrations_end_with_their_session_and_are_in_the_export() {
    let receiver = Receiver::start().await;
    for hub in hubs(config).await {
        let label = hub.label();
        let mut s = scene(&hub).await;
        let (id, registration) = receiver.subscribe(&[]);
        let (status, _) = hub.http_put_json("/v1/push", &s.user_token, &registration).await;
        assert_eq!(status, 200);
        let (_, export) = hub.get("/v1/me/export", Some(&s.user_token)).await;
        let listed = export["push_registrations"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "{label} {listed:?}");
        assert_eq!(listed[0]["endpoint"], registration["endpoint"]);
        // Signing out ends it: nothing is pushed for that phone any more.
        let out =
            hub.http.delete(format!("{}/v1/auth/session", hub.base)).bearer_auth(&s.user_token).send().await.unwrap();
        assert_eq!(out.status().as_u16(), 204);
        reply(&mut s.agent, &s.ticket, "x", "a-1").await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert!(receiver.received(&id).is_empty(), "{label} pushed to a signed-out phone");
        // Over the socket too, and refused without a usable target.
        let token = hub.token(&s.phone).await;
        let mut app = hub.connect_as(Encoding::Json, &token).await;
        let (_, body) = receiver.subscribe(&[]);
        let mut frame = body.clone();
        frame["type"] = json!("push.register");
        let ok = app.request(frame).await;
        assert_eq!(ok["type"], "push.register.ok", "{label} {ok}");
        let mut bad = body;
        bad["type"] = json!("push.register");
        bad["keys"]["auth"] = json!("c2hvcnQ");
        assert_eq!(app.request(bad).await["code"], "bad_request");
        let fcm = app.request(json!({"type": "push.register", "provider": "fcm", "token": "abc"})).await;
        assert_eq!(fcm["code"], "bad_request", "{label} no FCM credentials on this hub: {fcm}");
        assert_eq!(app.request(json!({"type": "push.unregister"})).await["type"], "ok");
        drop(app);

        // The account moves to a new phone: the old phone's registration ends with its session.
        let user = user_of(&hub, &token).await;
        let (_, registration) = receiver.subscribe(&[]);
        assert_eq!(hub.http_put_json("/v1/push", &token, &registration).await.0, 200);
        assert!(registered(&hub, user).await);
        let new_phone = hub.sign_in_on_after_cooldown(&s.phone, "device-2").await["token"].as_str().unwrap().to_owned();
        assert!(!registered(&hub, user).await, "{label} the old phone still registered");

        // Deleting the account ends every registration.
        let (_, registration) = receiver.subscribe(&[]);
        assert_eq!(hub.http_put_json("/v1/push", &new_phone, &registration).await.0, 200);
        let (status, notice) = hub.post_as(&new_phone, "/v1/me/deletion", json!({})).await;
        assert_eq!(status, 200, "{notice}");
        let (status, _) =
            hub.post_as(&new_phone, "/v1/me/deletion/confirm", json!({"confirmation": notice["confirmation"]})).await;
        assert_eq!(status, 200);
        assert!(!registered(&hub, user).await, "{label} outlived the account");
    }
}

/// The SMS reminders a phone got so far (the SMS other than its sign-in codes).
fn reminders_to(hub: &common::hub::TestHub, phone: &str) -> Vec<Value> {
    let code = |text: &str| text.split(|c: char| !c.is_ascii_digit()).any(|w| w.len() == 6);
    hub.sms().into_iter().filter(|sms| sms["to"] == phone && !code(sms["text"].as_str().unwrap())).collect()
}

/// Turns the user's SMS reminders on from an app that then closes again.
async fn allow_sms_reminders(hub: &common::hub::TestHub, token: &str) {
    let mut app = hub.connect_as(Encoding::Json, token).await;
    let ok = app.request(json!({"type": "consent.set", "sms_reminders": true})).await;
    assert_eq!(ok["consent"]["sms_reminders"], true, "{ok}");
    drop(app);
}

/// The SMS fallback: a reply left unread for `sms_reminder_after_secs` earns one fixed SMS, only
/// with consent, never to a user a push reaches or who read it, once per ticket per period, within
/// the hourly budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unread_replies_earn_one_sms_reminder_with_consent_within_the_budget() {
    let receiver = Receiver::start().await;
    for hub in hubs(|c| {
        config(c);
        c.sms_reminder_after_secs = 2;
        c.sms_reminder_period_secs = 3600;
        c.sms_reminders_per_hour = 2;
    })
    .await
    {
        let label = hub.label();
        let mut silent = scene(&hub).await; // never consented
        let mut pushed = scene(&hub).await; // consented, and a push reaches them
        let mut reader = scene(&hub).await; // consented, reads the reply in time
        let mut waiting: Vec<_> = Vec::new(); // consented, unread: two within the budget, one over it
        for _ in 0..3 {
            waiting.push(scene(&hub).await);
        }
        for s in [&pushed, &reader].into_iter().chain(&waiting) {
            allow_sms_reminders(&hub, &s.user_token).await;
        }
        let (_, registration) = receiver.subscribe(&[]);
        assert_eq!(hub.http_put_json("/v1/push", &pushed.user_token, &registration).await.0, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;

        let secret = "کد رهگیری ۸۸۲۱۴۳";
        let sent_at = Instant::now();
        for (i, s) in [&mut silent, &mut pushed, &mut reader].into_iter().chain(waiting.iter_mut()).enumerate() {
            reply(&mut s.agent, &s.ticket, secret, &format!("r-{i}")).await;
        }
        let mut app = hub.connect_as(Encoding::Json, &reader.user_token).await;
        let history = app.request(json!({"type": "ticket.history", "ticket_id": reader.ticket})).await;
        let last = history["events"].as_array().unwrap().last().unwrap()["seq"].clone();
        let read = app.request(json!({"type": "ticket.read", "ticket_id": reader.ticket, "seq": last})).await;
        assert_eq!(read["type"], "ok", "{label} {read}");
        drop(app);

        let deadline = Instant::now() + Duration::from_secs(15);
        let got =
            |hub: &common::hub::TestHub| waiting.iter().filter(|s| !reminders_to(hub, &s.phone).is_empty()).count();
        while got(&hub) < 2 {
            assert!(Instant::now() < deadline, "{label} {} of 2 reminders arrived", got(&hub));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(sent_at.elapsed() >= Duration::from_secs(2), "{label} reminded before the reply was 2 s unread");
        // Time for anything that should not come, and for a second reply that must not repeat it.
        for (i, s) in waiting.iter_mut().enumerate() {
            reply(&mut s.agent, &s.ticket, "و این هم پیام دوم", &format!("r2-{i}")).await;
        }
        tokio::time::sleep(Duration::from_millis(4_000)).await;
        for s in &waiting {
            for sms in reminders_to(&hub, &s.phone) {
                let text = sms["text"].as_str().unwrap();
                assert_eq!(text, "پشتیبانی آناپارس به پیام شما پاسخ داد؛ برنامه را باز کنید.", "{label}");
            }
        }
        let counts: Vec<usize> = waiting.iter().map(|s| reminders_to(&hub, &s.phone).len()).collect();
        let mut sorted = counts.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 1], "{label} once per ticket per period, two within the hourly budget: {counts:?}");
        for (who, s) in [("without consent", &silent), ("reached by push", &pushed), ("who read it", &reader)] {
            assert!(reminders_to(&hub, &s.phone).is_empty(), "{label} an SMS reminder to a user {who}");
        }
        let metrics = hub.http.get(format!("{}/metrics", hub.base)).send().await.unwrap().text().await.unwrap();
        for outcome in ["sent", "no_consent", "push_target", "read", "budget"] {
            let line = format!("hub_sms_reminders_total{{outcome=\"{outcome}\"}}");
            assert!(metrics.contains(&line), "{label} no {line}");
        }
    }
}

/// A stand-in for Google's OAuth token endpoint and the FCM HTTP v1 API: it checks the hub's signed
/// assertion against the service account's public key, hands out access tokens, and records the
/// messages, answering each send as scripted (200 once the script is done).
#[derive(Clone, Default)]
struct FcmStandIn {
    public_key: Arc<Vec<u8>>,
    base: Arc<Mutex<String>>,
    tokens_issued: Arc<Mutex<u32>>,
    sends: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    script: Arc<Mutex<VecDeque<(u16, &'static str)>>>,
}

impl FcmStandIn {
    async fn start(public_key: Vec<u8>) -> Self {
        let stand_in = Self { public_key: Arc::new(public_key), ..Self::default() };
        let app = axum::Router::new()
            .route("/token", post(fcm_token))
            .route("/v1/projects/{project}/messages:send", post(fcm_send))
            .with_state(stand_in.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *stand_in.base.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        stand_in
    }

    fn sends_to(&self, token: &str) -> Vec<(HeaderMap, Value)> {
        self.sends.lock().unwrap().iter().filter(|(_, m)| m["message"]["token"] == token).cloned().collect()
    }
}

async fn fcm_token(State(s): State<FcmStandIn>, axum::Form(form): axum::Form<HashMap<String, String>>) -> Response {
    assert_eq!(form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
    let jwt = &form["assertion"];
    let (signed, sig) = jwt.rsplit_once('.').unwrap();
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, s.public_key.as_slice())
        .verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
        .expect("the assertion is signed with the service account's key");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signed.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/firebase.messaging");
    assert_eq!(claims["iss"], "hub@anapars-test.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], format!("{}/token", s.base.lock().unwrap()));
    let mut issued = s.tokens_issued.lock().unwrap();
    *issued += 1;
    axum::Json(json!({"access_token": format!("ya29.test-{issued}"), "expires_in": 3600, "token_type": "Bearer"}))
        .into_response()
}

async fn fcm_send(State(s): State<FcmStandIn>, headers: HeaderMap, axum::Json(message): axum::Json<Value>) -> Response {
    let bearer = headers["authorization"].to_str().unwrap().to_owned();
    assert!(bearer.starts_with("Bearer ya29.test-"), "{bearer}");
    s.sends.lock().unwrap().push((headers, message));
    match s.script.lock().unwrap().pop_front() {
        Some((status, body)) => (StatusCode::from_u16(status).unwrap(), body.to_owned()).into_response(),
        None => axum::Json(json!({"name": "projects/anapars-test/messages/1"})).into_response(),
    }
}

/// A 2048-bit RSA service account key made with openssl: (PKCS#8 PEM, RSAPublicKey DER).
fn service_account_key(dir: &std::path::Path) -> (String, Vec<u8>) {
    let key = dir.join("sa.pem");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    run(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key.to_str().unwrap()]);
    let public = run(&["rsa", "-in", key.to_str().unwrap(), "-RSAPublicKey_out", "-outform", "DER"]);
    (std::fs::read_to_string(&key).unwrap(), public)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fcm_messages_go_out_as_the_service_account() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, public) = service_account_key(dir.path());
    let fcm = FcmStandIn::start(public).await;
    let base = fcm.base.lock().unwrap().clone();
    let account = json!({
        "type": "service_account",
        "project_id": "anapars-test",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "hub@anapars-test.iam.gserviceaccount.com",
        "token_uri": format!("{base}/token"),
    });
    let file = dir.path().join("service-account.json");
    std::fs::write(&file, account.to_string()).unwrap();
    for hub in hubs(|c| {
        config(c);
        c.fcm_service_account_file = Some(file.clone());
        c.fcm_url = base.clone();
    })
    .await
    {
        let label = hub.label();
        let issued_before = *fcm.tokens_issued.lock().unwrap();
        let mut s = scene(&hub).await;
        let token = format!("fcm-{}", uuid::Uuid::new_v4().simple());
        let (status, body) =
            hub.http_put_json("/v1/push", &s.user_token, &json!({"provider": "fcm", "token": token})).await;
        assert_eq!(status, 200, "{label} {body}");
        reply(&mut s.agent, &s.ticket, "شماره کارت ۶۰۳۷ ۹۹۷۵", "a-1").await;
        let deadline = Instant::now() + Duration::from_secs(15);
        while fcm.sends_to(&token).is_empty() {
            assert!(Instant::now() < deadline, "{label} no FCM message");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reply(&mut s.agent, &s.ticket, "x", "a-2").await;
        while fcm.sends_to(&token).len() < 2 {
            assert!(Instant::now() < deadline, "{label} no second FCM message");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let sends = fcm.sends_to(&token);
        let message = &sends[0].1["message"];
        let simple = uuid::Uuid::parse_str(&s.ticket).unwrap().simple().to_string();
        assert_eq!(message["notification"]["body"], "پاسخ تازه از پشتیبانی", "{label} {message}");
        assert_eq!(message["android"]["collapse_key"], simple.as_str());
        assert_eq!(message["android"]["notification"]["tag"], simple.as_str());
        assert_eq!(message["data"], json!({"ticket_id": s.ticket, "kind": "message", "badge": "1"}));
        let text = sends.iter().map(|(_, m)| m.to_string()).collect::<String>();
        for secret in ["۶۰۳۷", "Sara", s.phone.as_str(), &s.phone[3..]] {
            assert!(!text.contains(secret), "{label} FCM was told {secret}");
        }
        assert_eq!(*fcm.tokens_issued.lock().unwrap() - issued_before, 1, "{label} the access token is kept");

        // The app was uninstalled: FCM says UNREGISTERED, and the registration goes.
        fcm.script.lock().unwrap().push_back((
            404,
            r#"{"error":{"code":404,"status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#,
        ));
        reply(&mut s.agent, &s.ticket, "y", "a-3").await;
        while fcm.sends_to(&token).len() < 3 {
            assert!(Instant::now() < deadline, "{label} no third FCM message");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        reply(&mut s.agent, &s.ticket, "z", "a-4").await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(fcm.sends_to(&token).len(), 3, "{label} sent to an unregistered app");
    }
}
