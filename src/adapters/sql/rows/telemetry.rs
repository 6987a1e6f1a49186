//! Rows of the telemetry, settings and consent tables.

use crate::adapters::sql::rows::sealed::IP_ADDRESSES;
use crate::adapters::vault::Vault;
use crate::error::{Error, Result};
use crate::model::ids::{DeviceId, UserId};
use crate::model::telemetry::{ConnectionRecord, Consent, DeviceInfo, DeviceRecord, StoredView, ViewEvent};
use crate::model::time::Millis;
use uuid::Uuid;

/// The columns of `device_info` and `device_info_history` that [`DeviceRow`] reads.
pub(in crate::adapters::sql) const DEVICE_COLUMNS: &str = "device_id, user_id, os, os_version, model, manufacturer, \
     memory_mb, screen_width, screen_height, app_version, locale, reported_at";

/// `device_info` / `device_info_history`: [`DEVICE_COLUMNS`].
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct DeviceInfoRow {
    device_id: Uuid,
    user_id: Uuid,
    os: String,
    os_version: Option<String>,
    model: Option<String>,
    manufacturer: Option<String>,
    memory_mb: Option<i64>,
    screen_width: Option<i64>,
    screen_height: Option<i64>,
    app_version: Option<String>,
    locale: Option<String>,
    reported_at: Millis,
}

impl From<DeviceInfoRow> for DeviceRecord {
    fn from(r: DeviceInfoRow) -> Self {
        Self {
            device_id: DeviceId(r.device_id),
            user_id: UserId(r.user_id),
            info: DeviceInfo {
                os: r.os,
                os_version: r.os_version,
                model: r.model,
                manufacturer: r.manufacturer,
                memory_mb: r.memory_mb,
                screen_width: r.screen_width,
                screen_height: r.screen_height,
                app_version: r.app_version,
                locale: r.locale,
            },
            reported_at: r.reported_at,
        }
    }
}

/// The columns of `view_events` that [`ViewRow`] reads.
pub(in crate::adapters::sql) const VIEW_COLUMNS: &str =
    "user_id, device_id, kind, screen, target, at, duration_ms, received_at";

/// `view_events`: [`VIEW_COLUMNS`].
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct ViewRow {
    user_id: Uuid,
    device_id: Uuid,
    kind: String,
    screen: String,
    target: Option<String>,
    at: Millis,
    duration_ms: Option<i64>,
    received_at: Millis,
}

impl From<ViewRow> for StoredView {
    fn from(r: ViewRow) -> Self {
        Self {
            user_id: UserId(r.user_id),
            device_id: DeviceId(r.device_id),
            event: ViewEvent { kind: r.kind, screen: r.screen, target: r.target, at: r.at, duration_ms: r.duration_ms },
            received_at: r.received_at,
        }
    }
}

/// The columns of `connections` that [`ConnectionRow`] reads.
pub(in crate::adapters::sql) const CONNECTION_COLUMNS: &str =
    "id, user_id, device_id, ip_sealed, ip_key_id, user_agent, client_version, connected_at, disconnected_at";

/// `connections`: [`CONNECTION_COLUMNS`].
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct ConnectionRow {
    id: Uuid,
    user_id: Uuid,
    device_id: Uuid,
    ip_sealed: Option<Vec<u8>>,
    ip_key_id: Option<String>,
    user_agent: Option<String>,
    client_version: Option<String>,
    connected_at: Millis,
    disconnected_at: Option<Millis>,
}

impl ConnectionRow {
    /// The record, its IP address opened.
    ///
    /// # Errors
    /// [`Error::Internal`] for an address that does not open (the message names an unknown key id).
    pub(in crate::adapters::sql) fn open(self, vault: &Vault) -> Result<ConnectionRecord> {
        let r = self;
        let ip = IP_ADDRESSES.open_row(vault, r.id, r.ip_sealed, r.ip_key_id)?;
        Ok(ConnectionRecord {
            id: r.id,
            user_id: UserId(r.user_id),
            device_id: DeviceId(r.device_id),
            ip: String::from_utf8(ip).map_err(|_| Error::Internal("a sealed IP address is not text".into()))?,
            user_agent: r.user_agent,
            client_version: r.client_version,
            connected_at: r.connected_at,
            disconnected_at: r.disconnected_at,
        })
    }
}

/// The columns of `consent` that [`ConsentRow`] reads.
pub(in crate::adapters::sql) const CONSENT_COLUMNS: &str =
    "analytics, analytics_changed_at, personalisation, personalisation_changed_at, sms_reminders, \
     sms_reminders_changed_at";

/// `consent`: [`CONSENT_COLUMNS`].
#[derive(sqlx::FromRow)]
pub(in crate::adapters::sql) struct ConsentRow {
    analytics: bool,
    analytics_changed_at: Option<Millis>,
    personalisation: bool,
    personalisation_changed_at: Option<Millis>,
    sms_reminders: bool,
    sms_reminders_changed_at: Option<Millis>,
}

impl From<ConsentRow> for Consent {
    fn from(r: ConsentRow) -> Self {
        Self {
            analytics: r.analytics,
            analytics_changed_at: r.analytics_changed_at,
            personalisation: r.personalisation,
            personalisation_changed_at: r.personalisation_changed_at,
            sms_reminders: r.sms_reminders,
            sms_reminders_changed_at: r.sms_reminders_changed_at,
        }
    }
}
