//! Apple Push Notification service over HTTP/2, with token-based authentication: the hub signs a
//! provider token (an ES256 JWT) with the `.p8` key Apple issues, and sends each notification as
//! one request to `/3/device/<token>` on the production or sandbox host of the device's build.
//!
//! Apple refuses provider tokens older than an hour and answers `TooManyProviderTokenUpdates` to a
//! provider that makes new ones too often, so the process signs one token and reuses it for
//! [`TOKEN_REFRESH`] on every request.

use super::{collapse_key, payload, TTL};
use crate::config::Config;
use crate::model::push::ApnsEnvironment;
use crate::ports::push::{Delivery, Notification};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one provider token is used before a new one is signed (Apple: at most an hour, and
/// not renewed more often than every 20 minutes).
pub const TOKEN_REFRESH: Duration = Duration::from_secs(40 * 60);
/// The most of an error answer's body read for its `reason`.
const MAX_ERROR_BODY: usize = 4096;

/// Who the hub is to APNs, and where it sends.
#[derive(Clone, Debug)]
pub struct Account {
    /// The signing key's id (10 characters, from the developer account).
    pub key_id: String,
    /// The developer team's id (10 characters).
    pub team_id: String,
    /// The app's bundle id: the topic of its notifications.
    pub topic: String,
    /// The host for production tokens (App Store and TestFlight builds).
    pub production_url: String,
    /// The host for sandbox tokens (development builds).
    pub sandbox_url: String,
}

/// A provider token and when it was signed.
struct Token {
    jwt: String,
    made: Instant,
}

/// The hub's APNs sender: its key, account, HTTP/2 client and the shared provider token.
pub struct Apns {
    key: EcdsaKeyPair,
    account: Account,
    http: reqwest::Client,
    token: Mutex<Option<Token>>,
}

impl Apns {
    /// The sender of the `apns_*` settings, or `None` when they are unset.
    ///
    /// # Errors
    /// The key file cannot be read or holds no P-256 key; the message names `apns_key_file`.
    pub fn from_config(config: &Config, http: reqwest::Client) -> Result<Option<Self>, String> {
        let (Some(file), Some(key_id), Some(team_id), Some(topic)) =
            (&config.apns_key_file, &config.apns_key_id, &config.apns_team_id, &config.apns_topic)
        else {
            return Ok(None);
        };
        let pem =
            std::fs::read_to_string(file).map_err(|e| format!("apns_key_file: cannot read {}: {e}", file.display()))?;
        let account = Account {
            key_id: key_id.clone(),
            team_id: team_id.clone(),
            topic: topic.clone(),
            production_url: config.apns_url.trim_end_matches('/').to_owned(),
            sandbox_url: config.apns_sandbox_url.trim_end_matches('/').to_owned(),
        };
        Self::new(&pem, account, http).map(Some).map_err(|e| format!("apns_key_file {}: {e}", file.display()))
    }

    /// The sender signing with the key of `pem` (the `.p8` file's text: PKCS#8, P-256).
    ///
    /// # Errors
    /// `pem` is not one PEM block of a P-256 key in PKCS#8.
    pub fn new(pem: &str, account: Account, http: reqwest::Client) -> Result<Self, String> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
            .skip(1)
            .take_while(|l| *l != "-----END PRIVATE KEY-----")
            .collect();
        if body.is_empty() {
            return Err("no -----BEGIN PRIVATE KEY----- block (a .p8 file from Apple has one)".into());
        }
        let der = STANDARD.decode(body).map_err(|_| "the PEM block is not base64".to_owned())?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
            .map_err(|e| format!("not a P-256 key in PKCS#8 ({e})"))?;
        Ok(Self { key, account, http, token: Mutex::new(None) })
    }

    /// The provider token to send at `now`: the shared one while younger than [`TOKEN_REFRESH`],
    /// else a new one.
    fn bearer(&self, now: Instant) -> Result<String, String> {
        let mut cached = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(token) = cached.as_ref().filter(|t| now.saturating_duration_since(t.made) < TOKEN_REFRESH) {
            return Ok(token.jwt.clone());
        }
        let jwt = self.sign()?;
        *cached = Some(Token { jwt: jwt.clone(), made: now });
        Ok(jwt)
    }

    /// Drops the shared token if it is still `jwt` (APNs refused it), so the next request signs
    /// a new one; a token another request already replaced stays.
    fn forget(&self, jwt: &str) {
        let mut cached = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.as_ref().is_some_and(|t| t.jwt == jwt) {
            *cached = None;
        }
    }

    /// A new provider token: `{"alg":"ES256","kid"}` . `{"iss": team, "iat": now}`, signed.
    fn sign(&self) -> Result<String, String> {
        let iat = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| "the clock is before 1970")?.as_secs();
        let header = serde_json::json!({"alg": "ES256", "kid": self.account.key_id});
        let claims = serde_json::json!({"iss": self.account.team_id, "iat": iat});
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| "signing the provider token failed".to_owned())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
    }

    /// Sends `n` to the device `token` of a build of `environment`.
    pub async fn send(&self, token: &str, environment: ApnsEnvironment, n: &Notification) -> Delivery {
        let jwt = match self.bearer(Instant::now()) {
            Ok(jwt) => jwt,
            Err(reason) => return Delivery::Failed { reason },
        };
        let base = match environment {
            ApnsEnvironment::Production => &self.account.production_url,
            ApnsEnvironment::Sandbox => &self.account.sandbox_url,
        };
        let expiration = (SystemTime::now() + TTL).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let response = self
            .http
            .post(format!("{base}/3/device/{token}"))
            .header("authorization", format!("bearer {jwt}"))
            .header("apns-topic", &self.account.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header("apns-collapse-id", collapse_key(n))
            .header("apns-expiration", expiration.to_string())
            .json(&body(n))
            .send()
            .await;
        let mut response = match response {
            Ok(response) => response,
            Err(e) => return super::delivery_of(Err(e)),
        };
        let status = response.status().as_u16();
        let after = super::retry_after(response.headers());
        let reason = if status == 200 { None } else { reason_of(&mut response).await };
        let delivery = delivery(status, reason.as_deref(), after);
        if status == 403 && matches!(reason.as_deref(), Some("ExpiredProviderToken" | "InvalidProviderToken")) {
            self.forget(&jwt);
        }
        delivery
    }
}

/// The request body: the alert in `aps` (the fixed line, or the preview when the person turned
/// previews on), the badge, the ticket as the thread the notifications group under, and the
/// ticket and kind for the app.
fn body(n: &Notification) -> serde_json::Value {
    let p = payload(n);
    serde_json::json!({
        "aps": {
            "alert": {"title": p["title"], "body": p["body"]},
            "badge": p["badge"],
            "sound": "default",
            "thread-id": p["ticket_id"],
        },
        "ticket_id": p["ticket_id"],
        "kind": p["kind"],
    })
}

/// The `reason` of an error answer (`{"reason": "BadDeviceToken"}`), if it is a plain word:
/// it becomes a metric label, so nothing else from the body is kept.
async fn reason_of(response: &mut reqwest::Response) -> Option<String> {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_ERROR_BODY {
            return None;
        }
    }
    let body: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let reason = body.get("reason")?.as_str()?;
    (!reason.is_empty() && reason.len() <= 64 && reason.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| reason.to_owned())
}

/// What an APNs answer means. 200: sent. 410, or 400 for a token that is not a device of this
/// app: gone. 429 and 5xx: try again (after `Retry-After` if given). 403 for the provider token
/// (expired, or not accepted): try again with a new one. Anything else is final, named by its
/// status and reason.
fn delivery(status: u16, reason: Option<&str>, after: Option<Duration>) -> Delivery {
    let named = || match reason {
        Some(reason) => format!("status_{status}_{reason}"),
        None => format!("status_{status}"),
    };
    match (status, reason) {
        (200, _) => Delivery::Sent,
        (410, _) | (400, Some("BadDeviceToken" | "DeviceTokenNotForTopic")) => Delivery::Gone,
        (429 | 500 | 503, _) => Delivery::Retry { after, reason: format!("status_{status}") },
        (403, Some("ExpiredProviderToken" | "InvalidProviderToken")) => Delivery::Retry { after, reason: named() },
        _ => Delivery::Failed { reason: named() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::TicketId;
    use crate::model::language::Language;
    use crate::model::push::PushKind;
    use ring::signature::KeyPair as _;

    fn apns() -> Apns {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let pem =
            format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(pkcs8.as_ref()));
        let account = Account {
            key_id: "ABC123DEFG".into(),
            team_id: "TEAM123456".into(),
            topic: "ir.anapars.app".into(),
            production_url: "https://api.push.apple.com".into(),
            sandbox_url: "https://api.sandbox.push.apple.com".into(),
        };
        Apns::new(&pem, account, reqwest::Client::new()).unwrap()
    }

    #[test]
    fn the_provider_token_is_signed_by_the_key_and_shared_for_40_minutes() {
        let apns = apns();
        let start = Instant::now();
        let first = apns.bearer(start).unwrap();
        let parts: Vec<&str> = first.split('.').collect();
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "ES256", "kid": "ABC123DEFG"}));
        assert_eq!(claims["iss"], "TEAM123456");
        let public = apns.key.public_key().as_ref().to_vec();
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .expect("the signature verifies");
        assert_eq!(apns.bearer(start + Duration::from_secs(39 * 60)).unwrap(), first, "reused");
        let renewed = apns.bearer(start + TOKEN_REFRESH).unwrap();
        assert_ne!(renewed, first, "renewed after 40 minutes");
        apns.forget(&first);
        assert_eq!(apns.bearer(start + TOKEN_REFRESH).unwrap(), renewed, "a refused old token leaves the new one");
        apns.forget(&renewed);
        assert_ne!(apns.bearer(start + TOKEN_REFRESH).unwrap(), renewed, "a refused token is replaced");
    }

    #[test]
    fn keys_that_are_not_p256_pkcs8_are_refused() {
        let account = apns().account;
        let http = reqwest::Client::new();
        assert!(Apns::new("", account.clone(), http.clone()).err().unwrap().contains("BEGIN PRIVATE KEY"));
        let not_base64 = "-----BEGIN PRIVATE KEY-----\n@@@\n-----END PRIVATE KEY-----\n";
        assert!(Apns::new(not_base64, account.clone(), http.clone()).err().unwrap().contains("base64"));
        let not_a_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(Apns::new(not_a_key, account, http).err().unwrap().contains("P-256"));
    }

    #[test]
    fn answers_map_to_deliveries() {
        let wait = Some(Duration::from_secs(1));
        assert_eq!(delivery(200, None, None), Delivery::Sent);
        assert_eq!(delivery(410, Some("Unregistered"), None), Delivery::Gone);
        assert_eq!(delivery(400, Some("BadDeviceToken"), None), Delivery::Gone);
        assert_eq!(delivery(400, Some("DeviceTokenNotForTopic"), None), Delivery::Gone);
        assert_eq!(delivery(503, None, wait), Delivery::Retry { after: wait, reason: "status_503".into() });
        assert_eq!(
            delivery(429, Some("TooManyRequests"), None),
            Delivery::Retry { after: None, reason: "status_429".into() }
        );
        assert_eq!(
            delivery(403, Some("ExpiredProviderToken"), None),
            Delivery::Retry { after: None, reason: "status_403_ExpiredProviderToken".into() }
        );
        assert_eq!(delivery(404, Some("BadPath"), None), Delivery::Failed { reason: "status_404_BadPath".into() });
        assert_eq!(delivery(400, Some("BadTopic"), None), Delivery::Failed { reason: "status_400_BadTopic".into() });
        assert_eq!(delivery(403, None, None), Delivery::Failed { reason: "status_403".into() });
    }

    #[test]
    fn the_body_carries_the_fixed_line_and_the_ticket_as_thread() {
        let n = Notification {
            ticket_id: TicketId::generate(),
            kind: PushKind::Resolved,
            language: Language::English,
            preview: None,
            badge: 2,
            to_agent: false,
        };
        let b = body(&n);
        assert_eq!(b["aps"]["alert"]["body"], "Your support request was resolved");
        assert_eq!(b["aps"]["alert"]["title"], "Anapars Support");
        assert_eq!(b["aps"]["badge"], 2);
        assert_eq!(b["aps"]["thread-id"], n.ticket_id.0.to_string());
        assert_eq!(b["kind"], "resolved");
        assert_eq!(b.as_object().unwrap().len(), 3, "{b}");
    }
}
