//! Firebase Cloud Messaging, HTTP v1 API, authenticated as a service account: the hub signs a
//! JWT with the account's RSA key (RS256, ring), trades it at the account's token endpoint for an
//! OAuth access token (kept until shortly before it expires), and sends each message with it.

use crate::ports::push::{Delivery, Notification};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::Deserialize;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

/// The OAuth scope of sending through FCM.
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// An access token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// The fields of a Google service account file the hub uses.
#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    client_email: String,
    private_key: String,
    token_uri: String,
}

/// FCM for one Firebase project.
pub struct Fcm {
    project_id: String,
    client_email: String,
    token_uri: String,
    key: RsaKeyPair,
    base_url: String,
    token: Mutex<Option<(String, Instant)>>,
}

impl Fcm {
    /// FCM with the service account in `json` (the file Firebase gives), sending to `base_url`
    /// (`https://fcm.googleapis.com`).
    ///
    /// # Errors
    /// The file is not a service account with an RSA private key in PKCS#8.
    pub fn new(json: &str, base_url: &str) -> Result<Self, String> {
        let account: ServiceAccount =
            serde_json::from_str(json).map_err(|e| format!("not a service account file: {e}"))?;
        let der = pem_body(&account.private_key).ok_or("private_key is not a PEM block")?;
        let key = RsaKeyPair::from_pkcs8(&der).map_err(|e| format!("private_key is not an RSA key in PKCS#8: {e}"))?;
        Ok(Self {
            project_id: account.project_id,
            client_email: account.client_email,
            token_uri: account.token_uri,
            key,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: Mutex::new(None),
        })
    }

    /// The signed assertion the token endpoint trades for an access token.
    fn assertion(&self) -> Result<String, String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| "clock before 1970")?.as_secs();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iss": self.client_email, "scope": SCOPE, "aud": self.token_uri, "iat": now, "exp": now + 3600,
        });
        let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| "rsa signing failed")?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// A valid access token: the kept one, or a new one from the token endpoint.
    async fn access_token(&self, http: &reqwest::Client) -> Result<String, Delivery> {
        let mut kept = self.token.lock().await;
        if let Some((token, until)) = kept.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let assertion = self.assertion().map_err(|reason| Delivery::Failed { reason })?;
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())];
        let response = http.post(&self.token_uri).form(&form).send().await;
        let response = match response {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                let status = r.status().as_u16();
                return Err(match super::delivery_of(Ok(r)) {
                    retry @ Delivery::Retry { .. } => retry,
                    _ => Delivery::Failed { reason: format!("oauth_status_{status}") },
                });
            }
            Err(e) => return Err(super::delivery_of(Err(e))),
        };
        #[derive(Deserialize)]
        struct Granted {
            access_token: String,
            expires_in: u64,
        }
        let granted: Granted =
            response.json().await.map_err(|_| Delivery::Retry { after: None, reason: "oauth_answer".into() })?;
        let until = Instant::now() + Duration::from_secs(granted.expires_in).saturating_sub(RENEW_BEFORE);
        *kept = Some((granted.access_token.clone(), until));
        Ok(granted.access_token)
    }

    /// Sends `n` to the app whose registration token is `token`.
    pub async fn send(&self, http: &reqwest::Client, token: &str, n: &Notification) -> Delivery {
        let access = match self.access_token(http).await {
            Ok(access) => access,
            Err(delivery) => return delivery,
        };
        let (title, line) = super::fixed_text(n.kind, n.to_agent, n.language);
        let key = super::collapse_key(n);
        let message = serde_json::json!({"message": {
            "token": token,
            "notification": {"title": title, "body": n.preview.as_deref().unwrap_or(line)},
            "data": {"ticket_id": n.ticket_id.to_string(), "kind": n.kind.as_str(), "badge": n.badge.to_string()},
            "android": {
                "collapse_key": key,
                "priority": "high",
                "ttl": format!("{}s", super::TTL.as_secs()),
                "notification": {"tag": key, "notification_count": n.badge},
            },
        }});
        let url = format!("{}/v1/projects/{}/messages:send", self.base_url, self.project_id);
        let response = http.post(url).bearer_auth(access).json(&message).send().await;
        match response {
            Ok(r) if r.status().as_u16() == 401 => {
                // The access token was refused: forget it, so the next try takes a new one.
                *self.token.lock().await = None;
                Delivery::Retry { after: None, reason: "status_401".into() }
            }
            Ok(r) if matches!(r.status().as_u16(), 400 | 404) => unregistered_or_refused(r).await,
            other => super::delivery_of(other),
        }
    }
}

/// FCM's 404 (and 400 for a malformed token) carry `UNREGISTERED` or `INVALID_ARGUMENT` in their
/// error details: the first means the app is gone; anything else is a refusal of the message.
async fn unregistered_or_refused(response: reqwest::Response) -> Delivery {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if status == 404 || body.contains("UNREGISTERED") {
        Delivery::Gone
    } else {
        Delivery::Failed { reason: format!("status_{status}") }
    }
}

/// The bytes of the first PEM block in `pem`.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN ")?;
    let after = &pem[start..];
    let body_start = after.find('\n')? + 1;
    let body_end = after.find("-----END ")?;
    let text: String = after[body_start..body_end].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(text).ok()
}
