//! The Web Push receiver of `offline`: an HTTP server on 127.0.0.1 that stands in for a push
//! service. Each user's registration names the endpoint `/push/<ticket index>`; the receiver
//! answers `201 Created` as a push service does and records when each push arrived, by ticket. It
//! does not decrypt (the payload is for the app, and the harness keeps no private key); it counts a
//! push that is not `aes128gcm`-encrypted or carries no `Topic` as an error. At most `capacity`
//! arrival times are kept; the rest are counted only.

use crate::stats::Clock;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::agreement::{EphemeralPrivateKey, ECDH_P256};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// What the receiver has seen.
#[derive(Debug)]
struct Seen {
    clock: Clock,
    capacity: u64,
    /// Arrival times (µs) by ticket index.
    by_ticket: Vec<Mutex<Vec<u64>>>,
    /// Pushes received (also those past the capacity or for an unknown ticket).
    total: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Seen {
    fn error(&self, key: &str) {
        *lock(&self.errors).entry(key.to_owned()).or_default() += 1;
    }
}

/// A running receiver; it stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    seen: Arc<Seen>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    /// Starts a receiver on a free loopback port for tickets `0..tickets`, keeping at most
    /// `capacity` arrival times.
    ///
    /// # Errors
    /// No loopback port can be bound.
    pub async fn start(tickets: usize, capacity: u64, clock: Clock) -> anyhow::Result<Self> {
        let seen = Arc::new(Seen {
            clock,
            capacity,
            by_ticket: (0..tickets).map(|_| Mutex::new(Vec::new())).collect(),
            total: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
        });
        let app = axum::Router::new().route("/push/{ticket}", post(take)).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self { base, seen, _stop: stop })
    }

    /// The endpoint of ticket `index`'s registration.
    pub fn endpoint(&self, index: usize) -> String {
        format!("{}/push/{index}", self.base)
    }

    /// Pushes received so far.
    pub fn total(&self) -> u64 {
        self.seen.total.load(Ordering::Relaxed)
    }

    /// The arrival times kept so far (µs), by ticket index.
    pub fn arrivals(&self) -> Vec<Vec<u64>> {
        self.seen.by_ticket.iter().map(|t| lock(t).clone()).collect()
    }

    /// What was wrong with pushes, by key (`push:not_aes128gcm`, `push:no_topic`,
    /// `push:unknown_endpoint`, `push:over_capacity`).
    pub fn errors(&self) -> BTreeMap<String, u64> {
        lock(&self.seen.errors).clone()
    }
}

async fn take(State(seen): State<Arc<Seen>>, Path(ticket): Path<String>, headers: HeaderMap) -> StatusCode {
    let number = seen.total.fetch_add(1, Ordering::Relaxed);
    let Some(times) = ticket.parse::<usize>().ok().and_then(|t| seen.by_ticket.get(t)) else {
        seen.error("push:unknown_endpoint");
        return StatusCode::NOT_FOUND;
    };
    if headers.get("content-encoding").and_then(|v| v.to_str().ok()) != Some("aes128gcm") {
        seen.error("push:not_aes128gcm");
    }
    if !headers.contains_key("topic") {
        seen.error("push:no_topic");
    }
    if number < seen.capacity {
        // Read under the lock, so that one ticket's times are in order.
        let mut times = lock(times);
        times.push(seen.clock.now());
    } else {
        seen.error("push:over_capacity");
    }
    StatusCode::CREATED
}

/// A Web Push registration body (`PUT /v1/push`) for `endpoint`: a fresh P-256 public key
/// (uncompressed, 65 bytes) and a random 16-byte secret, as a browser's `PushSubscription` has.
/// The private key is dropped: nothing the hub sends is decrypted.
///
/// # Errors
/// The system's random source fails.
pub fn registration(rng: &SystemRandom, endpoint: &str) -> anyhow::Result<serde_json::Value> {
    let failed = |_| anyhow::anyhow!("the system random source failed");
    let key = EphemeralPrivateKey::generate(&ECDH_P256, rng).map_err(failed)?;
    let public = key.compute_public_key().map_err(failed)?;
    let mut auth = [0u8; 16];
    rng.fill(&mut auth).map_err(failed)?;
    Ok(serde_json::json!({
        "provider": "webpush",
        "endpoint": endpoint,
        "keys": {"p256dh": URL_SAFE_NO_PAD.encode(public.as_ref()), "auth": URL_SAFE_NO_PAD.encode(auth)},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_carry_a_p256_point_and_a_16_byte_secret() {
        let rng = SystemRandom::new();
        let a = registration(&rng, "http://127.0.0.1:9/push/0").unwrap();
        let b = registration(&rng, "http://127.0.0.1:9/push/1").unwrap();
        assert_eq!(a["provider"], "webpush");
        assert_eq!(a["endpoint"], "http://127.0.0.1:9/push/0");
        let decode = |v: &serde_json::Value| URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap();
        let key = decode(&a["keys"]["p256dh"]);
        assert_eq!((key.len(), key[0]), (65, 4), "an uncompressed point");
        assert_eq!(decode(&a["keys"]["auth"]).len(), 16);
        assert_ne!(a["keys"], b["keys"], "every registration its own keys");
    }

    #[tokio::test]
    async fn pushes_are_answered_201_and_recorded_by_ticket() {
        let clock = Clock::default();
        let receiver = Receiver::start(3, 2, clock).await.unwrap();
        assert!(receiver.base.starts_with("http://127.0.0.1:"));
        let http = reqwest::Client::new();
        let push = |path: String, encrypted: bool| {
            let mut request = http.post(format!("{}{path}", receiver.base)).body(vec![0u8; 100]);
            if encrypted {
                request = request.header("content-encoding", "aes128gcm").header("topic", "abc");
            }
            request.send()
        };
        let before = clock.now();
        assert_eq!(push("/push/2".into(), true).await.unwrap().status(), 201);
        assert_eq!(push(receiver.endpoint(2)[receiver.base.len()..].to_owned(), false).await.unwrap().status(), 201);
        assert_eq!(push("/push/9".into(), true).await.unwrap().status(), 404);
        assert_eq!(push("/push/0".into(), true).await.unwrap().status(), 201, "taken past the capacity");
        let arrivals = receiver.arrivals();
        assert_eq!(arrivals.iter().map(Vec::len).collect::<Vec<_>>(), [0, 0, 2]);
        assert!(arrivals[2][0] >= before && arrivals[2][0] <= arrivals[2][1]);
        assert_eq!(receiver.total(), 4);
        let errors = receiver.errors();
        let count = |k: &str| errors.get(k).copied().unwrap_or(0);
        assert_eq!((count("push:not_aes128gcm"), count("push:no_topic"), count("push:unknown_endpoint")), (1, 1, 1));
        assert_eq!(count("push:over_capacity"), 1);
    }
}
