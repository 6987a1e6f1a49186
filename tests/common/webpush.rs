//! A Web Push receiver for the tests: a real HTTP server that takes pushes for subscriptions it made,
//! answers as each subscription's script says, and decrypts what it receives with the
//! subscription's private key (RFC 8291), so a test can read what the hub sent.
// Not every test file uses every helper.
#![allow(dead_code, unreachable_pub)]

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::{aead, agreement, hkdf, rand::SecureRandom, rand::SystemRandom, signature};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One push the receiver took: when, its headers, its body as received, and the JSON inside when it
/// could decrypt it (the first push of each subscription: the key agreement consumes its key).
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub payload: Option<Value>,
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
pub struct Receiver {
    subscriptions: Arc<Mutex<HashMap<String, Subscription>>>,
    /// `http://127.0.0.1:<port>`.
    pub base: Arc<Mutex<String>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let receiver = Self::default();
        let app = axum::Router::new().route("/push/{id}", post(take)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *receiver.base.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    /// A new subscription whose endpoint answers `script` first: its registration body.
    pub fn subscribe(&self, script: &[(u16, Option<&'static str>)]) -> (String, Value) {
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

    pub fn received(&self, id: &str) -> Vec<Received> {
        self.subscriptions.lock().unwrap()[id].received.clone()
    }

    /// Waits until the subscription received `n` pushes (then a little longer, to catch more).
    pub async fn wait_for(&self, id: &str, n: usize) -> Vec<Received> {
        super::push::arrivals(n, || self.received(id)).await
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
pub fn check_vapid(headers: &HeaderMap, origin: &str, hub_key: &str) {
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
