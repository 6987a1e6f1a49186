//! Telemetry the apps report: devices, client info, views, connections, consent and retention.

use crate::model::ids::{DeviceId, UserId};
use crate::model::time::Millis;
use uuid::Uuid;

/// A user's settings: one JSON object, stored whole.
pub type SettingsDocument = serde_json::Map<String, serde_json::Value>;

/// Reports kept per device in `device_info_history` (the latest is also in `device_info`).
pub const DEVICE_HISTORY_PER_DEVICE: i64 = 20;

/// What an app says about the device it runs on (validated by `domain::telemetry::schema`). Serialized
/// as is into the account export.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    /// Operating system (`android`, `ios`, `web`, ...).
    pub os: String,
    /// Its version.
    pub os_version: Option<String>,
    /// Device model.
    pub model: Option<String>,
    /// Device manufacturer.
    pub manufacturer: Option<String>,
    /// Memory in MiB.
    pub memory_mb: Option<i64>,
    /// Screen width in pixels.
    pub screen_width: Option<i64>,
    /// Screen height in pixels.
    pub screen_height: Option<i64>,
    /// The app's version.
    pub app_version: Option<String>,
    /// The app's locale (BCP 47).
    pub locale: Option<String>,
}

/// A stored device report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device record it describes.
    pub device_id: DeviceId,
    /// Its user.
    pub user_id: UserId,
    /// The report.
    pub info: DeviceInfo,
    /// When the hub received it.
    pub reported_at: Millis,
}

/// One screen view or interaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewEvent {
    /// `screen` (a screen was shown) or `action` (an interaction on a screen).
    pub kind: String,
    /// The screen's name.
    pub screen: String,
    /// For an action: what was touched.
    pub target: Option<String>,
    /// When it happened, by the app's clock.
    pub at: Millis,
    /// How long the screen was shown, or the action took.
    pub duration_ms: Option<i64>,
}

/// A stored view event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredView {
    /// Its user.
    pub user_id: UserId,
    /// The device that sent it.
    pub device_id: DeviceId,
    /// The event.
    pub event: ViewEvent,
    /// When the hub stored it (retention counts from here).
    pub received_at: Millis,
}

/// What the hub records of an authenticated user socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// The record's id.
    pub id: Uuid,
    /// The user.
    pub user_id: UserId,
    /// The device of the socket's session.
    pub device_id: DeviceId,
    /// The client's IP (behind trusted proxies, from `X-Forwarded-For`).
    pub ip: String,
    /// The `User-Agent` header, cut to 256 bytes.
    pub user_agent: Option<String>,
    /// The app's or browser's version, when the headers tell it.
    pub client_version: Option<String>,
    /// When the socket opened.
    pub connected_at: Millis,
    /// When it closed; `None` while open (or if the hub stopped before recording it).
    pub disconnected_at: Option<Millis>,
}

/// One write of a telemetry batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TelemetryWrite {
    /// A device report: becomes the device's latest, and a history row if it changed.
    Device(DeviceRecord),
    /// A batch of view events of one user and device, stored only if analytics consent is on.
    Views {
        /// The user.
        user_id: UserId,
        /// The device.
        device_id: DeviceId,
        /// The events.
        events: Vec<ViewEvent>,
        /// When the hub received them.
        received_at: Millis,
    },
    /// A socket opened.
    Connected(ConnectionRecord),
    /// A socket closed.
    Disconnected {
        /// The connection record.
        id: Uuid,
        /// When.
        at: Millis,
    },
}

/// What became of one write of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Stored (for `Disconnected`: applied, or nothing to apply).
    Stored,
    /// View events of a user whose analytics consent is off: nothing stored.
    ConsentOff,
}

/// A user's consent switches and when each last changed (`None`: never, the default applies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Consent {
    /// View patterns may be collected.
    pub analytics: bool,
    /// When the user last changed `analytics`.
    pub analytics_changed_at: Option<Millis>,
    /// Settings may be stored on the server.
    pub personalisation: bool,
    /// When the user last changed `personalisation`.
    pub personalisation_changed_at: Option<Millis>,
    /// An SMS may remind the user of an unread reply from support (off until the user turns it on).
    pub sms_reminders: bool,
    /// When the user last changed `sms_reminders`.
    pub sms_reminders_changed_at: Option<Millis>,
}

impl Consent {
    /// The consent of a user who never changed it.
    pub fn defaults(defaults: ConsentDefaults) -> Self {
        Self {
            analytics: defaults.analytics,
            analytics_changed_at: None,
            personalisation: defaults.personalisation,
            personalisation_changed_at: None,
            sms_reminders: false,
            sms_reminders_changed_at: None,
        }
    }
}

/// The configured consent of users who never changed theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsentDefaults {
    /// `consent_analytics_default`.
    pub analytics: bool,
    /// `consent_personalisation_default`.
    pub personalisation: bool,
}

/// A change of consent; `None` switches stay as they are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsentChange {
    /// New analytics switch.
    pub analytics: Option<bool>,
    /// New personalisation switch.
    pub personalisation: Option<bool>,
    /// New SMS reminders switch.
    pub sms_reminders: Option<bool>,
}

/// Cut-offs of one retention round: rows older than these go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// View events received before this.
    pub views_before: Millis,
    /// Device history rows reported before this (the latest report of each device stays).
    pub device_history_before: Millis,
    /// Connection records that opened before this.
    pub connections_before: Millis,
    /// Users without a consent row have this analytics consent (their views stay when true).
    pub analytics_default: bool,
}

/// Rows deleted by one retention round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// View events (old, or of users whose analytics is off).
    pub views: u64,
    /// Device history rows.
    pub device_history: u64,
    /// Connection records.
    pub connections: u64,
}

/// `telemetry.device`: what an app knows of its device. Unknown fields are ignored; the limits are
/// checked by `domain::telemetry::schema` (see protocol/PROTOCOL.md, "Telemetry").
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceReport {
    /// Operating system: `android`, `ios`, `web`, ... (1 to 32 characters).
    pub os: String,
    /// Its version (at most 32 characters).
    #[serde(default)]
    pub os_version: Option<String>,
    /// Device model (at most 64 characters).
    #[serde(default)]
    pub model: Option<String>,
    /// Manufacturer (at most 64 characters).
    #[serde(default)]
    pub manufacturer: Option<String>,
    /// Memory in MiB (at most 16777216).
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// Screen width in pixels (1 to 100000).
    #[serde(default)]
    pub screen_width: Option<u32>,
    /// Screen height in pixels (1 to 100000).
    #[serde(default)]
    pub screen_height: Option<u32>,
    /// The app's version (at most 32 characters).
    #[serde(default)]
    pub app_version: Option<String>,
    /// The app's locale, a BCP 47 tag (at most 35 characters: letters, digits, `-`, `_`).
    #[serde(default)]
    pub locale: Option<String>,
}

/// What a view event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewKind {
    /// A screen was shown.
    Screen,
    /// The user interacted with something on a screen.
    Action,
}

impl ViewKind {
    /// The wire (and stored) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Screen => "screen",
            Self::Action => "action",
        }
    }
}

/// One item of `telemetry.views`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ViewEventReport {
    /// `screen` or `action`.
    pub kind: ViewKind,
    /// The screen's name (1 to 64 characters).
    pub screen: String,
    /// For an action: what was touched (at most 64 characters).
    #[serde(default)]
    pub target: Option<String>,
    /// When it happened, by the app's clock (a time; at most 1 day ahead of the hub's clock and
    /// not older than the view retention window).
    pub at: Millis,
    /// How long the screen was shown or the action took, in ms (at most 86400000).
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// Longest user agent kept, in bytes (cut at a character boundary).
pub const MAX_USER_AGENT_BYTES: usize = 256;

/// What a socket's upgrade request said about the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address.
    pub ip: std::net::IpAddr,
    /// The `User-Agent` header, cut to [`MAX_USER_AGENT_BYTES`].
    pub user_agent: Option<Box<str>>,
    /// `X-App-Version` (the apps send it), else the browser and version read from the user agent
    /// (`Firefox/128.0`).
    pub client_version: Option<Box<str>>,
}
