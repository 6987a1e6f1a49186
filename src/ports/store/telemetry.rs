//! The storage port for device and client telemetry, view patterns, user settings and consent.
//!
//! Telemetry arrives in batches from the telemetry pipeline (`domain::telemetry::pipeline`): one call,
//! [`Telemetry::store_telemetry`], stores a whole batch in one transaction with multi-row inserts, and
//! decides, inside that transaction, which view batches the users' analytics consent still allows.

use crate::error::Result;
use crate::model::ids::{DeviceId, UserId};
use crate::model::telemetry::{
    ConnectionRecord, Consent, ConsentChange, ConsentDefaults, DeviceRecord, Purged, Retention, StoredView,
    TelemetryWrite, WriteOutcome,
};
use crate::model::time::Millis;
use async_trait::async_trait;

/// Telemetry, settings and consent.
#[async_trait]
pub trait Telemetry: Send + Sync {
    /// Stores a batch in one transaction, answering one outcome per write in order. View batches
    /// of users whose analytics consent (or, without a row, `analytics_default`) is off are not
    /// stored. A device report adds a history row only when it differs from the device's latest,
    /// and keeps at most [`crate::model::telemetry::DEVICE_HISTORY_PER_DEVICE`] of them.
    async fn store_telemetry(&self, writes: &[TelemetryWrite], analytics_default: bool) -> Result<Vec<WriteOutcome>>;
    /// The device's latest report.
    async fn device_info(&self, device: DeviceId) -> Result<Option<DeviceRecord>>;
    /// The newest report of any of the user's devices (the latest `reported_at`; of equal times,
    /// the highest device id), or `None` when none of them reported.
    async fn latest_device_report(&self, user: UserId) -> Result<Option<DeviceRecord>>;
    /// The device's earlier reports, newest first.
    async fn device_history(&self, device: DeviceId) -> Result<Vec<DeviceRecord>>;
    /// The user's stored view events, oldest first, at most `limit`.
    async fn view_events(&self, user: UserId, limit: u32) -> Result<Vec<StoredView>>;
    /// The user's connection records, newest first, at most `limit`.
    async fn connections(&self, user: UserId, limit: u32) -> Result<Vec<ConnectionRecord>>;
    /// Deletes what is older than the retention windows, and view events of users whose analytics
    /// consent is off.
    async fn purge_telemetry(&self, retention: &Retention) -> Result<Purged>;
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
