//! Web Push (RFC 8030), with the payload encrypted for the subscription (RFC 8291, `aes128gcm`
//! content coding of RFC 8188) and the hub identified by VAPID (RFC 8292). The same protocol
//! serves browsers and UnifiedPush distributors (ntfy and others) on Android without Google.
//!
//! The primitives are ring's (P-256 ECDH, HKDF-SHA-256, AES-128-GCM, ECDSA P-256): the hub already
//! links ring for TLS, and they are the whole of what the RFCs need.

use crate::ports::push::Delivery;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use ring::{aead, agreement, hkdf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The record size announced in the header (one record: the payload is small).
const RECORD_SIZE: u32 = 4096;
/// How long a VAPID token is valid (RFC 8292 allows at most 24 hours).
const VAPID_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The hub's VAPID key: an ECDSA P-256 key pair kept as PKCS#8, shared by every node.
pub struct Vapid {
    key: EcdsaKeyPair,
    subject: Option<String>,
}

impl Vapid {
    /// A new key, as PKCS#8 bytes (stored once; every node loads the same).
    ///
    /// # Errors
    /// The system's random source failed.
    pub fn generate() -> Result<Vec<u8>, String> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| "could not generate a VAPID key".to_owned())
    }

    /// The key of `pkcs8`, with the `sub` claim (a `mailto:` or `https:` contact for push services).
    ///
    /// # Errors
    /// `pkcs8` is not a P-256 key.
    pub fn new(pkcs8: &[u8], subject: Option<String>) -> Result<Self, String> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &SystemRandom::new())
            .map_err(|_| "the VAPID key is not a P-256 key in PKCS#8".to_owned())?;
        Ok(Self { key, subject })
    }

    /// The public key apps give the browser or distributor (`applicationServerKey`), base64url.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.public_key().as_ref())
    }

    /// The `Authorization` header for a push to `endpoint`: `vapid t=<JWT>, k=<public key>`.
    fn authorization(&self, endpoint: &str) -> Option<String> {
        let audience = origin(endpoint)?;
        let exp = SystemTime::now().duration_since(UNIX_EPOCH).ok()? + VAPID_LIFETIME;
        let mut claims = serde_json::json!({"aud": audience, "exp": exp.as_secs()});
        if let Some(sub) = &self.subject {
            claims["sub"] = serde_json::json!(sub);
        }
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{body}");
        let signature = self.key.sign(&SystemRandom::new(), signing_input.as_bytes()).ok()?;
        Some(format!("vapid t={signing_input}.{}, k={}", URL_SAFE_NO_PAD.encode(signature.as_ref()), self.public_key()))
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    let scheme = url.split_once("://")?.0;
    Some(format!("{scheme}://{}", crate::domain::push::endpoint_host(url)?))
}

/// An HKDF output length.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0; len];
    prk.expand(&[info], Len(len)).and_then(|okm| okm.fill(&mut out)).map_err(|_| "hkdf".to_owned())?;
    Ok(out)
}

/// `payload` encrypted for the subscription whose public key is `ua_public` (65 bytes) and whose
/// authentication secret is `auth` (16 bytes), as the body of a push message (RFC 8291 section 4:
/// salt, record size, the hub's ephemeral public key, then the one record).
///
/// # Errors
/// A key the subscription gave that is not a P-256 point, or a failure of the random source.
pub fn encrypt(payload: &[u8], ua_public: &[u8], auth: &[u8]) -> Result<Vec<u8>, String> {
    let rng = SystemRandom::new();
    let ephemeral =
        agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).map_err(|_| "random".to_owned())?;
    let as_public = ephemeral.compute_public_key().map_err(|_| "public key".to_owned())?;
    let mut salt = [0u8; 16];
    rng.fill(&mut salt).map_err(|_| "random".to_owned())?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, ua_public);
    let ikm = agreement::agree_ephemeral(ephemeral, &peer, |ecdh_secret| -> Result<Vec<u8>, String> {
        // IKM = HKDF(auth, ecdh_secret, "WebPush: info" || 0 || ua_public || as_public, 32)
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(ua_public);
        info.extend_from_slice(as_public.as_ref());
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, auth).extract(ecdh_secret);
        expand(&prk, &info, 32)
    })
    .map_err(|_| "the subscription's key is not a P-256 point".to_owned())??;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(&ikm);
    let cek = expand(&prk, b"Content-Encoding: aes128gcm\0", 16)?;
    let nonce = expand(&prk, b"Content-Encoding: nonce\0", 12)?;
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &cek).map_err(|_| "aes key")?);
    let nonce = aead::Nonce::try_assume_unique_for_key(&nonce).map_err(|_| "nonce")?;
    // One record, the last: the payload and its delimiter (2).
    let mut record = payload.to_vec();
    record.push(2);
    key.seal_in_place_append_tag(nonce, aead::Aad::empty(), &mut record).map_err(|_| "seal")?;
    let mut body = Vec::with_capacity(16 + 4 + 1 + 65 + record.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(u8::try_from(as_public.as_ref().len()).map_err(|_| "key length")?);
    body.extend_from_slice(as_public.as_ref());
    body.extend_from_slice(&record);
    Ok(body)
}

/// Sends one encrypted message to a Web Push endpoint. `topic` makes a newer message replace an
/// undelivered older one with the same topic at the push service (RFC 8030 section 5.4).
pub async fn send(
    http: &reqwest::Client,
    vapid: &Vapid,
    endpoint: &str,
    body: Vec<u8>,
    topic: &str,
    ttl: Duration,
) -> Delivery {
    let Some(authorization) = vapid.authorization(endpoint) else {
        return Delivery::Failed { reason: "bad_endpoint".into() };
    };
    let response = http
        .post(endpoint)
        .header("content-encoding", "aes128gcm")
        .header("content-type", "application/octet-stream")
        .header("ttl", ttl.as_secs().to_string())
        .header("urgency", "high")
        .header("topic", topic)
        .header("authorization", authorization)
        .body(body)
        .send()
        .await;
    super::delivery_of(response)
}
