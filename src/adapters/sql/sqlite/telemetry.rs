//! [`Telemetry`] on SQLite: each batch is one `BEGIN IMMEDIATE` transaction on the writer, with
//! multi-row inserts for view events and connection records.

use crate::adapters::sql::rows::sealed::IP_ADDRESSES;
use crate::adapters::sql::rows::{
    ConnectionRow, ConsentRow, DeviceInfoRow, ViewRow, CONNECTION_COLUMNS, CONSENT_COLUMNS, DEVICE_COLUMNS,
    VIEW_COLUMNS,
};
use crate::adapters::sql::sqlite::{in_list, SqliteStore};
use crate::adapters::sql::statements::INSERT_CHUNK;
use crate::domain::telemetry::batch;
use crate::error::Result;
use crate::model::ids::{DeviceId, UserId};
use crate::model::telemetry::{
    ConnectionRecord, Consent, ConsentChange, ConsentDefaults, DeviceRecord, Purged, Retention, StoredView,
    TelemetryWrite, WriteOutcome, DEVICE_HISTORY_PER_DEVICE,
};
use crate::model::time::Millis;
use crate::ports::store::telemetry::Telemetry;
use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::HashMap;
use uuid::Uuid;

const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

type DeviceQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds a device report's twelve columns, in the order both statements below name them.
fn bind_device<'q>(q: DeviceQuery<'q>, d: &'q DeviceRecord) -> DeviceQuery<'q> {
    let i = &d.info;
    q.bind(d.device_id.0)
        .bind(d.user_id.0)
        .bind(&i.os)
        .bind(&i.os_version)
        .bind(&i.model)
        .bind(&i.manufacturer)
        .bind(i.memory_mb)
        .bind(i.screen_width)
        .bind(i.screen_height)
        .bind(&i.app_version)
        .bind(&i.locale)
        .bind(d.reported_at)
}

/// Stores one device report: a history row if it differs from the latest, then the latest.
async fn store_device(c: &mut SqliteConnection, d: &DeviceRecord) -> Result<()> {
    let added = bind_device(
        sqlx::query(
            "INSERT INTO device_info_history (device_id, user_id, os, os_version, model, manufacturer, memory_mb,
             screen_width, screen_height, app_version, locale, reported_at)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12
         WHERE NOT EXISTS (SELECT 1 FROM device_info WHERE device_id = ?1 AND os = ?3 AND os_version IS ?4
             AND model IS ?5 AND manufacturer IS ?6 AND memory_mb IS ?7 AND screen_width IS ?8
             AND screen_height IS ?9 AND app_version IS ?10 AND locale IS ?11)",
        ),
        d,
    )
    .execute(&mut *c)
    .await?;
    if added.rows_affected() > 0 {
        sqlx::query(
            "DELETE FROM device_info_history WHERE device_id = ?1 AND id NOT IN
                 (SELECT id FROM device_info_history WHERE device_id = ?1 ORDER BY id DESC LIMIT ?2)",
        )
        .bind(d.device_id.0)
        .bind(DEVICE_HISTORY_PER_DEVICE)
        .execute(&mut *c)
        .await?;
    }
    bind_device(
        sqlx::query(
            "INSERT INTO device_info (device_id, user_id, os, os_version, model, manufacturer, memory_mb,
             screen_width, screen_height, app_version, locale, reported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (device_id) DO UPDATE SET os = excluded.os, os_version = excluded.os_version,
             model = excluded.model, manufacturer = excluded.manufacturer, memory_mb = excluded.memory_mb,
             screen_width = excluded.screen_width, screen_height = excluded.screen_height,
             app_version = excluded.app_version, locale = excluded.locale, reported_at = excluded.reported_at",
        ),
        d,
    )
    .execute(&mut *c)
    .await?;
    Ok(())
}

#[async_trait]
impl Telemetry for SqliteStore {
    async fn store_telemetry(&self, writes: &[TelemetryWrite], analytics_default: bool) -> Result<Vec<WriteOutcome>> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let mut stored = HashMap::new();
        for chunk in batch::view_users(writes).chunks(INSERT_CHUNK) {
            let mut q = in_list("SELECT user_id, analytics FROM consent WHERE user_id ", chunk.iter().copied(), "");
            for (user, analytics) in q.build_query_as::<(Uuid, bool)>().fetch_all(&mut *tx).await? {
                stored.insert(user, analytics);
            }
        }
        let plan = batch::plan(writes, &stored, analytics_default);
        for chunk in plan.views.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO view_events (user_id, device_id, kind, screen, target, at, duration_ms, received_at) ",
            );
            q.push_values(chunk, |mut row, (user, device, e, received_at)| {
                row.push_bind(user.0)
                    .push_bind(device.0)
                    .push_bind(e.kind.as_str())
                    .push_bind(e.screen.as_str())
                    .push_bind(e.target.as_deref())
                    .push_bind(e.at)
                    .push_bind(e.duration_ms)
                    .push_bind(*received_at);
            });
            q.build().execute(&mut *tx).await?;
        }
        for chunk in plan.connected.chunks(INSERT_CHUNK) {
            let ips: Vec<_> = chunk.iter().map(|c| IP_ADDRESSES.stored(&self.vault, c.id, c.ip.as_bytes())).collect();
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO connections \
                 (id, user_id, device_id, ip_sealed, ip_key_id, user_agent, client_version, connected_at) ",
            );
            q.push_values(chunk.iter().zip(&ips), |mut row, (c, ip)| {
                row.push_bind(c.id)
                    .push_bind(c.user_id.0)
                    .push_bind(c.device_id.0)
                    .push_bind(ip.sealed.as_slice())
                    .push_bind(ip.key_id.as_str())
                    .push_bind(c.user_agent.as_deref())
                    .push_bind(c.client_version.as_deref())
                    .push_bind(c.connected_at);
            });
            q.push(" ON CONFLICT (id) DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        for d in &plan.devices {
            store_device(&mut tx, d).await?;
        }
        for (id, at) in &plan.disconnected {
            sqlx::query("UPDATE connections SET disconnected_at = ?2 WHERE id = ?1 AND disconnected_at IS NULL")
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(plan.outcomes)
    }

    async fn device_info(&self, device: DeviceId) -> Result<Option<DeviceRecord>> {
        let row = sqlx::query_as::<_, DeviceInfoRow>(&format!(
            "SELECT {DEVICE_COLUMNS} FROM device_info WHERE device_id = ?1"
        ))
        .bind(device.0)
        .fetch_optional(&self.readers)
        .await?;
        Ok(row.map(DeviceRecord::from))
    }

    async fn latest_device_report(&self, user: UserId) -> Result<Option<DeviceRecord>> {
        let row = sqlx::query_as::<_, DeviceInfoRow>(&format!(
            "SELECT {DEVICE_COLUMNS} FROM device_info WHERE user_id = ?1
             ORDER BY reported_at DESC, device_id DESC LIMIT 1"
        ))
        .bind(user.0)
        .fetch_optional(&self.readers)
        .await?;
        Ok(row.map(DeviceRecord::from))
    }

    async fn device_history(&self, device: DeviceId) -> Result<Vec<DeviceRecord>> {
        let rows = sqlx::query_as::<_, DeviceInfoRow>(&format!(
            "SELECT {DEVICE_COLUMNS} FROM device_info_history WHERE device_id = ?1 ORDER BY id DESC"
        ))
        .bind(device.0)
        .fetch_all(&self.readers)
        .await?;
        Ok(rows.into_iter().map(DeviceRecord::from).collect())
    }

    async fn view_events(&self, user: UserId, limit: u32) -> Result<Vec<StoredView>> {
        let rows = sqlx::query_as::<_, ViewRow>(&format!(
            "SELECT {VIEW_COLUMNS} FROM view_events WHERE user_id = ?1 ORDER BY id LIMIT ?2"
        ))
        .bind(user.0)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        Ok(rows.into_iter().map(StoredView::from).collect())
    }

    async fn connections(&self, user: UserId, limit: u32) -> Result<Vec<ConnectionRecord>> {
        let rows = sqlx::query_as::<_, ConnectionRow>(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE user_id = ?1
             ORDER BY connected_at DESC, id DESC LIMIT ?2"
        ))
        .bind(user.0)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(|r| r.open(&self.vault)).collect()
    }

    async fn purge_telemetry(&self, r: &Retention) -> Result<Purged> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let old_views = sqlx::query("DELETE FROM view_events WHERE received_at < ?1")
            .bind(r.views_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Consent is enforced when a batch is stored; this catches what another node stored while
        // the switch was turning off.
        let refused = if r.analytics_default {
            "DELETE FROM view_events WHERE user_id IN (SELECT user_id FROM consent WHERE analytics = 0)"
        } else {
            "DELETE FROM view_events WHERE user_id NOT IN (SELECT user_id FROM consent WHERE analytics = 1)"
        };
        let refused = sqlx::query(refused).execute(&mut *tx).await?.rows_affected();
        let device_history = sqlx::query("DELETE FROM device_info_history WHERE reported_at < ?1")
            .bind(r.device_history_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let connections = sqlx::query("DELETE FROM connections WHERE connected_at < ?1")
            .bind(r.connections_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(Purged { views: old_views + refused, device_history, connections })
    }

    async fn settings(&self, user: UserId) -> Result<Option<(String, Millis)>> {
        let row =
            sqlx::query_as::<_, (String, Millis)>("SELECT document, updated_at FROM user_settings WHERE user_id = ?1")
                .bind(user.0)
                .fetch_optional(&self.readers)
                .await?;
        Ok(row)
    }

    async fn put_settings(
        &self,
        user: UserId,
        document: &str,
        now: Millis,
        personalisation_default: bool,
    ) -> Result<bool> {
        // One statement: the consent check and the write cannot be split by a consent change.
        let done = sqlx::query(
            "INSERT INTO user_settings (user_id, document, updated_at)
             SELECT ?1, ?2, ?3
             WHERE COALESCE((SELECT personalisation FROM consent WHERE user_id = ?1), ?4)
             ON CONFLICT (user_id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
        )
        .bind(user.0)
        .bind(document)
        .bind(now)
        .bind(personalisation_default)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn consent(&self, user: UserId) -> Result<Option<Consent>> {
        let row = sqlx::query_as::<_, ConsentRow>(&format!("SELECT {CONSENT_COLUMNS} FROM consent WHERE user_id = ?1"))
            .bind(user.0)
            .fetch_optional(&self.readers)
            .await?;
        Ok(row.map(Consent::from))
    }

    async fn set_consent(
        &self,
        user: UserId,
        change: ConsentChange,
        defaults: ConsentDefaults,
        now: Millis,
    ) -> Result<Consent> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let row = sqlx::query_as::<_, ConsentRow>(&format!(
            "INSERT INTO consent (user_id, analytics, analytics_changed_at, personalisation, personalisation_changed_at,
                                  sms_reminders, sms_reminders_changed_at)
             VALUES (?1, COALESCE(?2, ?4), CASE WHEN ?2 IS NULL THEN NULL ELSE ?6 END,
                     COALESCE(?3, ?5), CASE WHEN ?3 IS NULL THEN NULL ELSE ?6 END,
                     COALESCE(?7, 0), CASE WHEN ?7 IS NULL THEN NULL ELSE ?6 END)
             ON CONFLICT (user_id) DO UPDATE SET
                 analytics = COALESCE(?2, analytics),
                 analytics_changed_at = CASE WHEN ?2 IS NULL THEN analytics_changed_at ELSE ?6 END,
                 personalisation = COALESCE(?3, personalisation),
                 personalisation_changed_at = CASE WHEN ?3 IS NULL THEN personalisation_changed_at ELSE ?6 END,
                 sms_reminders = COALESCE(?7, sms_reminders),
                 sms_reminders_changed_at = CASE WHEN ?7 IS NULL THEN sms_reminders_changed_at ELSE ?6 END
             RETURNING {CONSENT_COLUMNS}"
        ))
        .bind(user.0)
        .bind(change.analytics)
        .bind(change.personalisation)
        .bind(defaults.analytics)
        .bind(defaults.personalisation)
        .bind(now)
        .bind(change.sms_reminders)
        .fetch_one(&mut *tx)
        .await?;
        let consent = Consent::from(row);
        if !consent.analytics {
            sqlx::query("DELETE FROM view_events WHERE user_id = ?1").bind(user.0).execute(&mut *tx).await?;
        }
        if !consent.personalisation {
            sqlx::query("DELETE FROM user_settings WHERE user_id = ?1").bind(user.0).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(consent)
    }
}
