//! Device and client telemetry, view patterns, user settings and consent.
//!
//! - Device reports and view batches are checked against their schema ([`schema`]) and stored
//!   through the telemetry [`pipeline`]: bounded, batched, acknowledged only once stored.
//! - Each authenticated user socket leaves a connection record (`model::telemetry::ClientInfo`:
//!   IP, user agent, version; open and close times), queued without waiting.
//! - Settings are one small JSON document per user (not per device, so they follow the account to a
//!   new phone); every socket of the user hears of a change.
//! - Consent: analytics gates view events, personalisation gates settings. Turning one off deletes
//!   what it covered, in the same transaction; requests that need it answer `consent_required`.
//! - [`retention`] deletes what is older than its window.

pub(crate) mod batch;
pub mod pipeline;
pub(crate) mod retention;
pub mod schema;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::event::Event;
use crate::model::ids::{DeviceId, Principal, UserId};
use crate::model::telemetry::ClientInfo;
use crate::model::telemetry::SettingsDocument;
use crate::model::telemetry::{
    ConnectionRecord, Consent, ConsentChange, ConsentDefaults, DeviceRecord, Purged, Retention, TelemetryWrite,
    WriteOutcome,
};
use crate::model::telemetry::{DeviceReport, ViewEventReport};
use crate::model::time::{now_ms, Millis};
use crate::ports::broker::{Audience, Broker};
use crate::ports::store::telemetry::Telemetry;
use pipeline::TelemetryPipeline;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Why a view batch is refused.
const ANALYTICS_OFF: &str = "analytics is off: view events are not collected";
/// Why settings are refused.
const PERSONALISATION_OFF: &str = "personalisation is off: settings are not stored";

/// The telemetry, settings and consent service.
pub struct TelemetryDesk {
    store: Arc<dyn Telemetry>,
    pipeline: TelemetryPipeline,
    broker: Arc<dyn Broker>,
    defaults: ConsentDefaults,
    settings_max_bytes: usize,
    retention: [Duration; 3],
}

/// Counts one malformed telemetry frame or settings document of `kind`.
pub fn malformed(kind: &'static str) {
    metrics::counter!(crate::metrics::TELEMETRY_MALFORMED, "kind" => kind).increment(1);
}

/// The metrics label of a request type that carries telemetry or settings, if it does.
pub fn request_kind(request_type: &str) -> Option<&'static str> {
    match request_type {
        "telemetry.device" => Some("device"),
        "telemetry.views" => Some("view"),
        "settings.put" => Some("settings"),
        _ => None,
    }
}

impl TelemetryDesk {
    /// The desk over `store`, storing telemetry through `pipeline`.
    pub fn new(
        store: Arc<dyn Telemetry>,
        pipeline: TelemetryPipeline,
        broker: Arc<dyn Broker>,
        config: &Config,
    ) -> Self {
        let defaults = ConsentDefaults {
            analytics: config.consent_analytics_default,
            personalisation: config.consent_personalisation_default,
        };
        Self {
            store,
            pipeline,
            broker,
            defaults,
            settings_max_bytes: config.settings_max_bytes,
            retention: [
                Duration::from_secs(config.view_retention_secs),
                Duration::from_secs(config.device_history_retention_secs),
                Duration::from_secs(config.connection_retention_secs),
            ],
        }
    }

    /// Stores a device report of the user's `device`.
    ///
    /// # Errors
    /// `bad_request` (schema), `overloaded`, `unavailable`.
    pub async fn report_device(&self, user: UserId, device: DeviceId, report: DeviceReport) -> Result<()> {
        let info = schema::device(report).inspect_err(|_| malformed("device"))?;
        let record = DeviceRecord { device_id: device, user_id: user, info, reported_at: now_ms() };
        self.pipeline.store(TelemetryWrite::Device(record)).await.map(drop)
    }

    /// Stores a batch of view events, if the user's analytics consent is on when it is written.
    ///
    /// # Errors
    /// `bad_request` (schema), `consent_required`, `overloaded`, `unavailable`.
    pub async fn record_views(&self, user: UserId, device: DeviceId, events: Vec<ViewEventReport>) -> Result<()> {
        let now = now_ms();
        let events = schema::views(events, now).inspect_err(|_| malformed("view"))?;
        let write = TelemetryWrite::Views { user_id: user, device_id: device, events, received_at: now };
        match self.pipeline.store(write).await? {
            WriteOutcome::Stored => Ok(()),
            WriteOutcome::ConsentOff => Err(Error::ConsentRequired(ANALYTICS_OFF)),
        }
    }

    /// Records that a socket of `user` on `device` opened at `at`; returns the record's id for
    /// [`TelemetryDesk::disconnected`]. Not waited for: a full queue drops it (and counts it).
    pub fn connected(&self, user: UserId, device: DeviceId, client: &ClientInfo, at: Millis) -> Uuid {
        let id = Uuid::now_v7();
        self.pipeline.record(TelemetryWrite::Connected(ConnectionRecord {
            id,
            user_id: user,
            device_id: device,
            ip: client.ip.to_string(),
            user_agent: client.user_agent.as_deref().map(str::to_owned),
            client_version: client.client_version.as_deref().map(str::to_owned),
            connected_at: at,
            disconnected_at: None,
        }));
        id
    }

    /// Records that the socket of connection record `id` closed at `at`.
    pub fn disconnected(&self, id: Uuid, at: Millis) {
        self.pipeline.record(TelemetryWrite::Disconnected { id, at });
    }

    /// The user's consent (the defaults when they never set it).
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn consent(&self, user: UserId) -> Result<Consent> {
        Ok(self.store.consent(user).await?.unwrap_or(Consent::defaults(self.defaults)))
    }

    /// The newest device report of any of the user's devices, as the user's analytics consent lets
    /// agents see it: `None` while it is off, or when nothing was reported.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn shared_device(&self, user: UserId) -> Result<Option<DeviceRecord>> {
        if !self.consent(user).await?.analytics {
            return Ok(None);
        }
        self.store.latest_device_report(user).await
    }

    /// Changes the user's consent; what a switch turned off covered is deleted with the change.
    /// Every socket of the user gets `consent.updated`.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn set_consent(&self, user: UserId, change: ConsentChange) -> Result<Consent> {
        let consent = self.store.set_consent(user, change, self.defaults, now_ms()).await?;
        tracing::info!(
            user_id = %user,
            analytics = consent.analytics,
            personalisation = consent.personalisation,
            sms_reminders = consent.sms_reminders,
            "consent changed"
        );
        self.tell(user, Event::ConsentUpdated(consent));
        Ok(consent)
    }

    /// The user's settings (`{}` and no time when none are stored).
    ///
    /// # Errors
    /// `consent_required` (personalisation off), `unavailable`.
    pub async fn settings(&self, user: UserId) -> Result<(SettingsDocument, Option<Millis>)> {
        if !self.consent(user).await?.personalisation {
            return Err(Error::ConsentRequired(PERSONALISATION_OFF));
        }
        match self.store.settings(user).await? {
            None => Ok((SettingsDocument::new(), None)),
            Some((text, at)) => {
                let doc = serde_json::from_str(&text)
                    .map_err(|e| Error::Internal(format!("stored settings are not a json object: {e}")))?;
                Ok((doc, Some(at)))
            }
        }
    }

    /// Replaces the user's settings; every socket of the user gets `settings.updated`.
    ///
    /// # Errors
    /// `too_large`, `consent_required` (personalisation off), `unavailable`.
    pub async fn put_settings(&self, user: UserId, document: SettingsDocument) -> Result<(SettingsDocument, Millis)> {
        let text = schema::settings(&document, self.settings_max_bytes).inspect_err(|_| malformed("settings"))?;
        let now = now_ms();
        if !self.store.put_settings(user, &text, now, self.defaults.personalisation).await? {
            metrics::counter!(crate::metrics::TELEMETRY_REFUSED_CONSENT, "kind" => "settings").increment(1);
            return Err(Error::ConsentRequired(PERSONALISATION_OFF));
        }
        metrics::counter!(crate::metrics::TELEMETRY_ACCEPTED, "kind" => "settings").increment(1);
        self.tell(user, Event::SettingsUpdated { settings: document.clone(), updated_at: now });
        Ok((document, now))
    }

    /// One retention round at `now`.
    ///
    /// # Errors
    /// `unavailable`.
    pub async fn purge(&self, now: Millis) -> Result<Purged> {
        let before = |d: Duration| now.saturating_sub(crate::model::time::ms(d));
        self.store
            .purge_telemetry(&Retention {
                views_before: before(self.retention[0]),
                device_history_before: before(self.retention[1]),
                connections_before: before(self.retention[2]),
                analytics_default: self.defaults.analytics,
            })
            .await
    }

    /// Tells every socket of `user` (on every node).
    fn tell(&self, user: UserId, event: Event) {
        let principals = [Principal::User(user)];
        self.broker.publish(&Audience { principals: &principals, ..Default::default() }, event);
    }
}
