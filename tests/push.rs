//! Push notifications end to end against a local Web Push receiver (a real HTTP server started by
//! the test) that decrypts what it receives with the subscription's private key, proving the RFC 8291
//! encryption, and checks the VAPID signature (RFC 8292). On every hub set-up (SQLite in-process;
//! Postgres with Redis when the TEST_ URLs are set).

mod common;

use anapars_hub::protocol::Encoding;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::hub::hubs;
use common::push::{arrivals, quick, registered, reply, scene, user_of};
use ring::{aead, agreement, hkdf, rand::SecureRandom, rand::SystemRandom, signature};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One push the receiver took: when, its headers, its body as received, and the JSON inside when it
/// could decrypt it (the first push of each subscription: the key agreement consumes its key).
#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: Vec<u8>,
    payload: Option<Value>,
}

/// A subscription's private side, and the answers its endpoint gives (201 once the script is done).
struct Subscription {
    key: Option<agreement::EphemeralPrivateKey>,
    public: Vec<u8>,
    auth: [u8; 16],
    script: VecDeque<(u16, Option<&'static str>)>,
    received: Vec<Received>,
}

#[derive(Clone, Default)]
struct Receiver {
    subscriptions: Arc<Mutex<HashMap<String, Subscription>>>,
    base: Arc<Mutex<String>>,
}

impl Receiver {
    async fn start() -> Self {
        let receiver = Self::default();
        let app = axum::Router::new().route("/push/{id}", post(take)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *receiver.base.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    /// A new subscription whose endpoint answers `script` first: its registration body.
    fn subscribe(&self, script: &[(u16, Option<&'static str>)]) -> (String, Value) {
        let rng = SystemRandom::new();
        let key = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).unwrap();
        let public = key.compute_public_key().unwrap().as_ref().to_vec();
        let mut auth = [0u8; 16];
        rng.fill(&mut auth).unwrap();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let endpoint = format!("{}/push/{id}", self.base.lock().unwrap());
        let body = json!({
            "provider": "webpush",
            "endpoint": endpoint,
            "keys": {"p256dh": URL_SAFE_NO_PAD.encode(&public), "auth": URL_SAFE_NO_PAD.encode(auth)},
        });
        let sub = Subscription {
            key: Some(key),
            public,
            auth,
            script: script.iter().copied().collect(),
            received: Vec::new(),
        };
        self.subscriptions.lock().unwrap().insert(id.clone(), sub);
        (id, body)
    }

    fn received(&self, id: &str) -> Vec<Received> {
        self.subscriptions.lock().unwrap()[id].received.clone()
    }

    /// Waits until the subscription received `n` pushes (then a little longer, to catch more).
    async fn wait_for(&self, id: &str, n: usize) -> Vec<Received> {
        arrivals(n, || self.received(id)).await
    }
}

async fn take(State(r): State<Receiver>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let mut subs = r.subscriptions.lock().unwrap();
    let Some(sub) = subs.get_mut(&id) else { return StatusCode::NOT_FOUND.into_response() };
    let payload = sub.key.take().map(|key| decrypt(key, &sub.public, &sub.auth, &body));
    sub.received.push(Received { at: Instant::now(), headers, body: body.to_vec(), payload });
    match sub.script.pop_front() {
        Some((status, retry_after)) => {
            let mut response = StatusCode::from_u16(status).unwrap().into_response();
            if let Some(after) = retry_after {
                response.headers_mut().insert("retry-after", after.parse().unwrap());
            }
            response
        }
        None => StatusCode::CREATED.into_response(),
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    prk.expand(&[info], Len(len)).unwrap().fill(&mut out).unwrap();
    out
}

/// RFC 8291 decryption, from the receiving side: the header (salt, record size, the sender's key),
/// the key agreement with the subscription's private key, and the one record.
fn decrypt(key: agreement::EphemeralPrivateKey, ua_public: &[u8], auth: &[u8], body: &[u8]) -> Value {
    let salt = &body[..16];
    let record_size = u32::from_be_bytes(body[16..20].try_into().unwrap());
    assert!(record_size >= 18, "record size {record_size}");
    let id_len = usize::from(body[20]);
    let as_public = &body[21..21 + id_len];
    let ciphertext = &body[21 + id_len..];
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, as_public);
    let ikm = agreement::agree_ephemeral(key, &peer, |secret| {
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(ua_public);
        info.extend_from_slice(as_public);
        expand(&hkdf::Salt::new(hkdf::HKDF_SHA256, auth).extract(secret), &info, 32)
    })
    .unwrap();
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm);
    let cek = expand(&prk, b"Content-Encoding: aes128gcm\0", 16);
    let nonce = expand(&prk, b"Content-Encoding: nonce\0", 12);
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &cek).unwrap());
    let mut record = ciphertext.to_vec();
    let plain = key
        .open_in_place(aead::Nonce::try_assume_unique_for_key(&nonce).unwrap(), aead::Aad::empty(), &mut record)
        .expect("the payload decrypts with the subscription's key");
    assert_eq!(plain.last(), Some(&2), "one record, the last");
    serde_json::from_slice(&plain[..plain.len() - 1]).unwrap()
}

/// Checks the VAPID `Authorization` header: `vapid t=<JWT>, k=<key>`, an ES256 JWT for the
/// receiver's origin, signed by `k`, which is the hub's published key.
fn check_vapid(headers: &HeaderMap, origin: &str, hub_key: &str) {
    let value = headers.get("authorization").and_then(|v| v.to_str().ok()).expect("an Authorization header");
    let rest = value.strip_prefix("vapid t=").expect("vapid scheme");
    let (jwt, k) = rest.split_once(", k=").expect("t and k");
    assert_eq!(k, hub_key, "signed with the key the hub publishes");
    let (signed, sig) = jwt.rsplit_once('.').unwrap();
    let key = URL_SAFE_NO_PAD.decode(k).unwrap();
    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, key)
        .verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
        .expect("the JWT's signature verifies");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signed.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["aud"], origin);
    assert!(claims["exp"].as_u64().unwrap() > 0);
}

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
    }
}
