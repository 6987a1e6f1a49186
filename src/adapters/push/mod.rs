//! The [`PushSender`] port over HTTP: each provider's protocol ([`webpush`], [`apns`]), and what
//! an answer means for the queue. A provider the hub has no credentials for takes no registrations.

pub mod apns;
pub mod fcm;
pub mod webpush;

use crate::model::language::Language;
use crate::model::push::{PushKind, PushTarget};
use crate::ports::push::{Delivery, Notification, PushSender};
use async_trait::async_trait;
use std::time::Duration;

/// How long a push service keeps an undelivered notification (a phone that is off for a while
/// still gets it; an older one is of no use).
const TTL: Duration = Duration::from_secs(24 * 3600);

/// The fixed line of a notification, and its title: nothing personal, in the registration's
/// language.
pub fn fixed_text(kind: PushKind, to_agent: bool, language: Language) -> (&'static str, &'static str) {
    let title = match language {
        Language::Persian => "پشتیبانی آناپارس",
        Language::English => "Anapars Support",
    };
    let line = match (kind, to_agent, language) {
        (PushKind::Message, false, Language::Persian) => "پاسخ تازه از پشتیبانی",
        (PushKind::Message, false, Language::English) => "New reply from support",
        (PushKind::Message, true, Language::Persian) => "پیام تازه در درخواستی که با شماست",
        (PushKind::Message, true, Language::English) => "New message in a ticket you hold",
        (PushKind::Assigned, _, Language::Persian) => "کارشناس پشتیبانی درخواست شما را پذیرفت",
        (PushKind::Assigned, _, Language::English) => "An agent took your request",
        (PushKind::Resolved, _, Language::Persian) => "درخواست پشتیبانی شما حل شد",
        (PushKind::Resolved, _, Language::English) => "Your support request was resolved",
        (PushKind::Queued, _, Language::Persian) => "درخواست تازه در صف پشتیبانی",
        (PushKind::Queued, _, Language::English) => "A new ticket is waiting in the queue",
    };
    (title, line)
}

/// What a notification carries to the app: the ticket, what happened, the title and the line
/// (the preview instead of the fixed line when previews are on), and the badge. JSON, the same
/// for every provider that carries app data.
pub fn payload(n: &Notification) -> serde_json::Value {
    let (title, line) = fixed_text(n.kind, n.to_agent, n.language);
    serde_json::json!({
        "ticket_id": n.ticket_id,
        "kind": n.kind.as_str(),
        "title": title,
        "body": n.preview.as_deref().unwrap_or(line),
        "badge": n.badge,
    })
}

/// The collapse key of a ticket's notifications: its id as 32 hex digits (Web Push `Topic` allows
/// at most 32 URL-safe characters).
pub fn collapse_key(n: &Notification) -> String {
    n.ticket_id.0.simple().to_string()
}

/// Sends through each provider the hub has credentials for.
pub struct HttpPushSender {
    http: reqwest::Client,
    vapid: webpush::Vapid,
    fcm: Option<fcm::Fcm>,
    apns: Option<apns::Apns>,
}

/// An HTTP client for a push provider: requests time out after `timeout`, and servers are trusted
/// by the usual public roots and `roots` (`push_ca_file`). HTTP/2 where the server offers it.
///
/// # Errors
/// The client cannot be built.
pub fn client(timeout: Duration, roots: &[reqwest::Certificate]) -> Result<reqwest::Client, String> {
    roots
        .iter()
        .fold(reqwest::Client::builder().timeout(timeout), |b, root| b.add_root_certificate(root.clone()))
        .build()
        .map_err(|e| e.to_string())
}

/// The certificates of `push_ca_file`, if set.
///
/// # Errors
/// The file cannot be read or holds no PEM certificate; the message names the setting.
pub fn extra_roots(file: Option<&std::path::Path>) -> Result<Vec<reqwest::Certificate>, String> {
    let Some(file) = file else { return Ok(Vec::new()) };
    let pem = std::fs::read(file).map_err(|e| format!("push_ca_file: cannot read {}: {e}", file.display()))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(roots) if !roots.is_empty() => Ok(roots),
        _ => Err(format!("push_ca_file: {} holds no PEM certificate", file.display())),
    }
}

impl HttpPushSender {
    /// A sender with requests timing out after `timeout`, trusting `roots` besides the public
    /// ones, signing Web Push with `vapid`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(vapid: webpush::Vapid, timeout: Duration, roots: &[reqwest::Certificate]) -> Result<Self, String> {
        Ok(Self { http: client(timeout, roots)?, vapid, fcm: None, apns: None })
    }

    /// Also delivers through FCM, as `fcm`'s service account.
    #[must_use]
    pub fn with_fcm(mut self, fcm: fcm::Fcm) -> Self {
        self.fcm = Some(fcm);
        self
    }

    /// The sender, delivering to Apple devices through `apns` too.
    #[must_use]
    pub fn with_apns(self, apns: Option<apns::Apns>) -> Self {
        Self { apns, ..self }
    }

    /// The hub's VAPID public key (apps subscribe with it).
    pub fn vapid_public_key(&self) -> String {
        self.vapid.public_key()
    }
}

#[async_trait]
impl PushSender for HttpPushSender {
    fn accepts(&self, provider: &str) -> bool {
        match provider {
            "webpush" => true,
            "fcm" => self.fcm.is_some(),
            "apns" => self.apns.is_some(),
            _ => false,
        }
    }

    async fn send(&self, target: &PushTarget, n: &Notification) -> Delivery {
        match target {
            PushTarget::WebPush { endpoint, p256dh, auth } => {
                let body = payload(n).to_string();
                let encrypted = match webpush::encrypt(body.as_bytes(), p256dh, auth) {
                    Ok(encrypted) => encrypted,
                    Err(reason) => return Delivery::Failed { reason: format!("encrypt: {reason}") },
                };
                webpush::send(&self.http, &self.vapid, endpoint, encrypted, &collapse_key(n), TTL).await
            }
            PushTarget::Fcm { token } => match &self.fcm {
                Some(fcm) => fcm.send(&self.http, token, n).await,
                None => Delivery::Failed { reason: "not_configured".into() },
            },
            PushTarget::Apns { token, environment } => match &self.apns {
                Some(apns) => apns.send(token, *environment, n).await,
                None => Delivery::Failed { reason: "not_configured".into() },
            },
        }
    }
}

/// What a provider's HTTP answer means: 2xx sent; 404 and 410 the target is gone; 429 and 5xx
/// (and no answer) try again, after `Retry-After` when given; any other refusal is final.
fn delivery_of(response: reqwest::Result<reqwest::Response>) -> Delivery {
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            let reason = if e.is_timeout() { "timeout" } else { "network" };
            return Delivery::Retry { after: None, reason: reason.into() };
        }
    };
    let status = response.status().as_u16();
    match status {
        200..=299 => Delivery::Sent,
        404 | 410 => Delivery::Gone,
        429 | 500..=599 => {
            Delivery::Retry { after: retry_after(response.headers()), reason: format!("status_{status}") }
        }
        _ => Delivery::Failed { reason: format!("status_{status}") },
    }
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert(reqwest::header::RETRY_AFTER, httpdate::fmt_http_date(later).parse().unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(wait > Duration::from_secs(110) && wait <= Duration::from_secs(120), "{wait:?}");
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn the_default_payload_names_nothing_personal() {
        let n = Notification {
            ticket_id: crate::model::ids::TicketId::generate(),
            kind: PushKind::Message,
            language: Language::Persian,
            preview: None,
            badge: 3,
            to_agent: false,
        };
        let p = payload(&n);
        assert_eq!(p["body"], "پاسخ تازه از پشتیبانی");
        assert_eq!(p.as_object().unwrap().len(), 5, "{p}");
        let with_preview = payload(&Notification { preview: Some("کارت شما".into()), ..n });
        assert_eq!(with_preview["body"], "کارت شما");
    }
}
