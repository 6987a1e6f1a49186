//! Push providers: delivering one notification to one registration's target (FCM, APNs, Web Push).
//!
//! Behind one narrow trait, with one adapter that speaks each provider's protocol over HTTP
//! ([`crate::adapters::push`]); the provider base URLs are settings, so tests and self-hosted
//! gateways (UnifiedPush distributors) can point elsewhere.

use crate::model::ids::TicketId;
use crate::model::language::Language;
use crate::model::push::{PushKind, PushTarget};
use async_trait::async_trait;
use std::time::Duration;

/// What a notification says. By default nothing personal: a fixed line in the registration's
/// language and the ticket id; `preview` only when the person turned previews on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The ticket it is about; also the collapse key (a newer notification of the ticket replaces
    /// an older one on the phone).
    pub ticket_id: TicketId,
    /// What happened last.
    pub kind: PushKind,
    /// The language of the fixed text.
    pub language: Language,
    /// The beginning of the message text, when previews are on.
    pub preview: Option<String>,
    /// Conversations with unread events, for the app's badge.
    pub badge: u32,
    /// Whether it goes to an agent (the fixed text differs).
    pub to_agent: bool,
}

/// What became of one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The provider took it.
    Sent,
    /// The provider could not take it now (5xx, 429, a network failure): try again, not before
    /// `after` when the provider said so (`Retry-After`).
    Retry {
        /// The provider's wait, if it gave one.
        after: Option<Duration>,
        /// Why, for logs and metrics (`status_503`, `status_429`, `network`).
        reason: String,
    },
    /// The provider says the target no longer exists (FCM `UNREGISTERED`, APNs 410, Web Push
    /// 404/410): the registration is removed.
    Gone,
    /// The provider refused it for good (a malformed target, bad credentials): not retried.
    Failed {
        /// Why, for logs and metrics.
        reason: String,
    },
}

/// Sends notifications to targets.
#[async_trait]
pub trait PushSender: Send + Sync {
    /// Whether the hub can deliver through `provider` (`fcm`, `apns`, `webpush`): it has the
    /// provider's credentials. Registrations for another provider are refused.
    fn accepts(&self, provider: &str) -> bool;

    /// Delivers `notification` to `target`. Never fails: every outcome is a [`Delivery`].
    async fn send(&self, target: &PushTarget, notification: &Notification) -> Delivery;
}
