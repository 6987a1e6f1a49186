//! Push notifications: where a device's notifications go (its registration with one provider),
//! and the notifications waiting to be sent (the durable push queue).

use crate::model::ids::{Principal, SessionId, TicketId, UserId};
use crate::model::language::Language;
use crate::model::time::Millis;

/// Longest FCM or APNs device token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Longest Web Push endpoint URL, in bytes.
pub const MAX_ENDPOINT_BYTES: usize = 2048;

/// Which APNs environment an iOS build's tokens belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApnsEnvironment {
    /// App Store and TestFlight builds.
    Production,
    /// Development builds.
    Sandbox,
}

impl ApnsEnvironment {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Sandbox => "sandbox",
        }
    }

    /// The environment of a stored or wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "production" => Some(Self::Production),
            "sandbox" => Some(Self::Sandbox),
            _ => None,
        }
    }
}

/// Where a device's notifications are delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushTarget {
    /// Firebase Cloud Messaging (Android), by registration token.
    Fcm {
        /// The app's FCM registration token.
        token: String,
    },
    /// Apple Push Notification service, by device token.
    Apns {
        /// The device token, hex.
        token: String,
        /// Which APNs host the token belongs to.
        environment: ApnsEnvironment,
    },
    /// Web Push (RFC 8030), also UnifiedPush distributors: the subscription a browser or a
    /// distributor gave the app.
    WebPush {
        /// The push service's URL for this subscription (`https://`).
        endpoint: String,
        /// The subscription's P-256 public key (65 bytes, uncompressed point), for RFC 8291.
        p256dh: Vec<u8>,
        /// The subscription's authentication secret (16 bytes), for RFC 8291.
        auth: Vec<u8>,
    },
}

impl PushTarget {
    /// The provider's name: `fcm`, `apns` or `webpush`.
    pub fn provider(&self) -> &'static str {
        match self {
            Self::Fcm { .. } => "fcm",
            Self::Apns { .. } => "apns",
            Self::WebPush { .. } => "webpush",
        }
    }
}

/// A device session's push registration: one per session, replaced by a new one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushRegistration {
    /// The session it belongs to: it goes away with the session.
    pub session_id: SessionId,
    /// The user or agent the session is of.
    pub holder: Principal,
    /// Where notifications go.
    pub target: PushTarget,
    /// Whether notifications may show the beginning of the message text (off unless the person
    /// turned it on).
    pub preview: bool,
    /// The language of the notifications' fixed text.
    pub language: Language,
    /// When it was registered (or last replaced).
    pub updated_at: Millis,
}

/// What a notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PushKind {
    /// A reply from support in the user's ticket (or, for an agent, a message in a ticket they hold).
    Message,
    /// The user's ticket was taken by an agent.
    Assigned,
    /// The user's ticket was resolved.
    Resolved,
    /// For agents: a ticket entered the queue.
    Queued,
}

impl PushKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Assigned => "assigned",
            Self::Resolved => "resolved",
            Self::Queued => "queued",
        }
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "message" => Some(Self::Message),
            "assigned" => Some(Self::Assigned),
            "resolved" => Some(Self::Resolved),
            "queued" => Some(Self::Queued),
            _ => None,
        }
    }
}

/// A notification to queue for one registration, about one ticket. Queued twice for the same
/// registration and ticket before it is sent, it is one notification (the later kind and preview,
/// the events counted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPush {
    /// The registration (its session) it goes to.
    pub session_id: SessionId,
    /// The ticket it is about (the collapse key).
    pub ticket_id: TicketId,
    /// What happened last.
    pub kind: PushKind,
    /// The beginning of the message text, only when the registration allows previews.
    pub preview: Option<String>,
    /// How many events it stands for.
    pub events: u32,
    /// When it may be sent at the earliest (now plus the collapse window).
    pub due_at: Millis,
    /// Now.
    pub created_at: Millis,
}

/// A queued notification, claimed by a sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedPush {
    /// Its id in the queue.
    pub id: i64,
    /// The registration it goes to.
    pub registration: PushRegistration,
    /// The ticket it is about.
    pub ticket_id: TicketId,
    /// What happened last.
    pub kind: PushKind,
    /// The preview text, when allowed.
    pub preview: Option<String>,
    /// How many events it stands for (collapsed).
    pub events: u32,
    /// Sends tried so far.
    pub attempts: u32,
    /// When it was first queued (its age decides when to give up).
    pub created_at: Millis,
}

/// An agent's reply that may earn its user an SMS reminder if it stays unread (the SMS fallback
/// for people without a push target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReminder {
    /// The ticket replied in: at most one reminder per ticket waits.
    pub ticket_id: TicketId,
    /// Its user.
    pub user_id: UserId,
    /// The reply's sequence number: the reminder is needed while the user's read mark is below it.
    pub seq: u64,
    /// When to look again (the reply's time plus the configured wait). A reminder already
    /// waiting keeps its earlier time and takes the newer `seq`.
    pub due_at: Millis,
}

/// A reminder whose time has come, claimed by one node, with what decides whether it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueReminder {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Its user.
    pub user_id: UserId,
    /// The newest agent reply it is about.
    pub seq: u64,
    /// How far the user has read the ticket.
    pub read_seq: u64,
    /// When the last reminder of this ticket was sent.
    pub sent_at: Option<Millis>,
    /// Sends that failed so far.
    pub attempts: u32,
    /// The user's `sms_reminders` consent.
    pub consent: bool,
    /// Whether the user has a push registration on a live session.
    pub registered: bool,
}

/// What became of a claimed reminder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReminderOutcome {
    /// Sent at this time.
    Sent(Millis),
    /// Not needed (read, no consent, a push target, over budget): nothing waits any more.
    Dropped,
    /// Look again at this time; `failed` counts one failed send.
    Later {
        /// When.
        due_at: Millis,
        /// Whether a send failed.
        failed: bool,
    },
}
