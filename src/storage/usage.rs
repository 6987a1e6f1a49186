//! The storage port for device and client telemetry, view patterns, user settings and consent.
//!
//! Telemetry arrives in batches from the usage pipeline (`src/usage/pipeline.rs`): one call,
//! [`Usage::store_usage`], stores a whole batch in one transaction with multi-row inserts, and
//! decides, inside that transaction, which view batches the users' analytics consent still allows.

use crate::error::Result;
use crate::ids::{DeviceId, UserId};
use crate::time::Millis;
use async_trait::async_trait;
use uuid::Uuid;

/// Reports kept per device in `device_info_history` (the latest is also in `device_info`).
pub const DEVICE_HISTORY_PER_DEVICE: i64 = 20;

/// What an app says about the device it runs on (validated by `src/usage/schema.rs`). Serialized
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
pub enum UsageWrite {
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Consent {
    /// View patterns may be collected.
    pub analytics: bool,
    /// When the user last changed `analytics`.
    pub analytics_changed_at: Option<Millis>,
    /// Settings may be stored on the server.
    pub personalisation: bool,
    /// When the user last changed `personalisation`.
    pub personalisation_changed_at: Option<Millis>,
}

impl Consent {
    /// The consent of a user who never changed it.
    pub fn defaults(defaults: ConsentDefaults) -> Self {
        Self {
            analytics: defaults.analytics,
            analytics_changed_at: None,
            personalisation: defaults.personalisation,
            personalisation_changed_at: None,
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

/// Telemetry, settings and consent.
#[async_trait]
pub trait Usage: Send + Sync {
    /// Stores a batch in one transaction, answering one outcome per write in order. View batches
    /// of users whose analytics consent (or, without a row, `analytics_default`) is off are not
    /// stored. A device report adds a history row only when it differs from the device's latest,
    /// and keeps at most [`DEVICE_HISTORY_PER_DEVICE`] of them.
    async fn store_usage(&self, writes: &[UsageWrite], analytics_default: bool) -> Result<Vec<WriteOutcome>>;
    /// The device's latest report.
    async fn device_info(&self, device: DeviceId) -> Result<Option<DeviceRecord>>;
    /// The device's earlier reports, newest first.
    async fn device_history(&self, device: DeviceId) -> Result<Vec<DeviceRecord>>;
    /// The user's stored view events, oldest first, at most `limit`.
    async fn view_events(&self, user: UserId, limit: u32) -> Result<Vec<StoredView>>;
    /// The user's connection records, newest first, at most `limit`.
    async fn connections(&self, user: UserId, limit: u32) -> Result<Vec<ConnectionRecord>>;
    /// Deletes what is older than the retention windows, and view events of users whose analytics
    /// consent is off.
    async fn purge_usage(&self, retention: &Retention) -> Result<Purged>;
    /// The user's settings document (JSON text) and when it was stored.
    async fn settings(&self, user: UserId) -> Result<Option<(String, Millis)>>;
    /// Replaces the user's settings document, only if their personalisation consent (or, without a
    /// row, `personalisation_default`) is on; false if it is off and nothing was stored.
    async fn put_settings(
        &self,
        user: UserId,
        document: &str,
        now: Millis,
        personalisation_default: bool,
    ) -> Result<bool>;
    /// The user's consent row, if they ever changed it.
    async fn consent(&self, user: UserId) -> Result<Option<Consent>>;
    /// Applies `change` at `now` (each switch given gets `now` as its change time, even if its value
    /// stays) and returns the consent after it. In the same transaction: analytics off deletes the user's view events,
    /// personalisation off deletes their settings.
    async fn set_consent(
        &self,
        user: UserId,
        change: ConsentChange,
        defaults: ConsentDefaults,
        now: Millis,
    ) -> Result<Consent>;
}

/// Rows per multi-row `INSERT` (well under both backends' limits of bound parameters).
pub(super) const INSERT_CHUNK: usize = 500;

/// A batch sorted by what each backend does with it, decided once for both.
pub(super) struct Plan<'a> {
    /// One outcome per write, in order.
    pub outcomes: Vec<WriteOutcome>,
    /// Device reports, in order.
    pub devices: Vec<&'a DeviceRecord>,
    /// View events allowed by consent, with their user, device and receipt time.
    pub views: Vec<(UserId, DeviceId, &'a ViewEvent, Millis)>,
    /// Sockets opened.
    pub connected: Vec<&'a ConnectionRecord>,
    /// Sockets closed (applied after every opening of the batch).
    pub disconnected: Vec<(Uuid, Millis)>,
}

/// The users whose view batches need a consent decision.
pub(super) fn view_users(writes: &[UsageWrite]) -> Vec<Uuid> {
    let mut users: Vec<Uuid> = writes
        .iter()
        .filter_map(|w| match w {
            UsageWrite::Views { user_id, .. } => Some(user_id.0),
            _ => None,
        })
        .collect();
    users.sort_unstable();
    users.dedup();
    users
}

/// Sorts `writes`, given the stored analytics switch of the users that have one.
pub(super) fn plan<'a>(
    writes: &'a [UsageWrite],
    stored_analytics: &std::collections::HashMap<Uuid, bool>,
    analytics_default: bool,
) -> Plan<'a> {
    let mut plan = Plan {
        outcomes: Vec::with_capacity(writes.len()),
        devices: Vec::new(),
        views: Vec::new(),
        connected: Vec::new(),
        disconnected: Vec::new(),
    };
    for write in writes {
        let outcome = match write {
            UsageWrite::Device(d) => {
                plan.devices.push(d);
                WriteOutcome::Stored
            }
            UsageWrite::Views { user_id, device_id, events, received_at } => {
                if stored_analytics.get(&user_id.0).copied().unwrap_or(analytics_default) {
                    plan.views.extend(events.iter().map(|e| (*user_id, *device_id, e, *received_at)));
                    WriteOutcome::Stored
                } else {
                    WriteOutcome::ConsentOff
                }
            }
            UsageWrite::Connected(c) => {
                plan.connected.push(c);
                WriteOutcome::Stored
            }
            UsageWrite::Disconnected { id, at } => {
                plan.disconnected.push((*id, *at));
                WriteOutcome::Stored
            }
        };
        plan.outcomes.push(outcome);
    }
    plan
}
