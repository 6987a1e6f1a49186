//! [`Telemetry`] on Postgres: each batch is one transaction; view events go in one `INSERT .. SELECT
//! FROM UNNEST(..)` of column arrays whatever their number, connection records in one multi-row
//! insert.

use crate::adapters::sql::postgres::PostgresStore;
use crate::adapters::sql::rows::sealed::IP_ADDRESSES;
use crate::adapters::sql::rows::{
    ConnectionRow, ConsentRow, DeviceInfoRow, ViewRow, CONNECTION_COLUMNS, CONSENT_COLUMNS, DEVICE_COLUMNS,
    VIEW_COLUMNS,
};
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
use sqlx::postgres::PgConnection;
use sqlx::{Connection as _, Postgres, QueryBuilder};
use std::collections::HashMap;
use uuid::Uuid;

type DeviceQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

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
async fn store_device(c: &mut PgConnection, d: &DeviceRecord) -> Result<()> {
    let added = bind_device(
        sqlx::query(
            "INSERT INTO device_info_history (device_id, user_id, os, os_version, model, manufacturer, memory_mb,
             screen_width, screen_height, app_version, locale, reported_at)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
         WHERE NOT EXISTS (SELECT 1 FROM device_info WHERE device_id = $1 AND os = $3
             AND os_version IS NOT DISTINCT FROM $4 AND model IS NOT DISTINCT FROM $5
             AND manufacturer IS NOT DISTINCT FROM $6 AND memory_mb IS NOT DISTINCT FROM $7
             AND screen_width IS NOT DISTINCT FROM $8 AND screen_height IS NOT DISTINCT FROM $9
             AND app_version IS NOT DISTINCT FROM $10 AND locale IS NOT DISTINCT FROM $11)",
        ),
        d,
    )
    .execute(&mut *c)
    .await?;
    if added.rows_affected() > 0 {
        sqlx::query(
            "DELETE FROM device_info_history WHERE device_id = $1 AND id NOT IN
                 (SELECT id FROM device_info_history WHERE device_id = $1 ORDER BY id DESC LIMIT $2)",
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
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
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
impl Telemetry for PostgresStore {
    async fn store_telemetry(&self, writes: &[TelemetryWrite], analytics_default: bool) -> Result<Vec<WriteOutcome>> {
        self.call(async |c| {
            let mut tx = c.begin().await?;
            let users = batch::view_users(writes);
            let mut stored = HashMap::new();
            if !users.is_empty() {
                // FOR SHARE: a consent change of these users waits for this batch, and its purge
                // then sees (and deletes) what the batch stored.
                let rows = sqlx::query_as::<_, (Uuid, bool)>(
                    "SELECT user_id, analytics FROM consent WHERE user_id = ANY($1) FOR SHARE",
                )
                .bind(&users)
                .fetch_all(&mut *tx)
                .await?;
                stored.extend(rows);
            }
            let plan = batch::plan(writes, &stored, analytics_default);
            if !plan.views.is_empty() {
                let n = plan.views.len();
                let (mut users, mut devices, mut kinds, mut screens) =
                    (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
                let (mut targets, mut ats, mut durations, mut received) =
                    (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
                for (user, device, e, received_at) in &plan.views {
                    users.push(user.0);
                    devices.push(device.0);
                    kinds.push(e.kind.as_str());
                    screens.push(e.screen.as_str());
                    targets.push(e.target.as_deref());
                    ats.push(e.at);
                    durations.push(e.duration_ms);
                    received.push(*received_at);
                }
                sqlx::query(
                    "INSERT INTO view_events (user_id, device_id, kind, screen, target, at, duration_ms, received_at)
                     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                                          $6::bigint[], $7::bigint[], $8::bigint[])",
                )
                .bind(&users)
                .bind(&devices)
                .bind(&kinds)
                .bind(&screens)
                .bind(&targets)
                .bind(&ats)
                .bind(&durations)
                .bind(&received)
                .execute(&mut *tx)
                .await?;
            }
            for chunk in plan.connected.chunks(INSERT_CHUNK) {
                let ips: Vec<_> =
                    chunk.iter().map(|c| IP_ADDRESSES.stored(&self.vault, c.id, c.ip.as_bytes())).collect();
                let mut q = QueryBuilder::<Postgres>::new(
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
            if !plan.disconnected.is_empty() {
                let (ids, ats): (Vec<Uuid>, Vec<Millis>) = plan.disconnected.iter().copied().unzip();
                sqlx::query(
                    "UPDATE connections SET disconnected_at = d.at
                     FROM UNNEST($1::uuid[], $2::bigint[]) AS d (id, at)
                     WHERE connections.id = d.id AND connections.disconnected_at IS NULL",
                )
                .bind(&ids)
                .bind(&ats)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(plan.outcomes)
        })
        .await
    }

    async fn device_info(&self, device: DeviceId) -> Result<Option<DeviceRecord>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, DeviceInfoRow>(&format!(
                "SELECT {DEVICE_COLUMNS} FROM device_info WHERE device_id = $1"
            ))
            .bind(device.0)
            .fetch_optional(c)
            .await?;
            Ok(row.map(DeviceRecord::from))
        })
        .await
    }

    async fn latest_device_report(&self, user: UserId) -> Result<Option<DeviceRecord>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, DeviceInfoRow>(&format!(
                "SELECT {DEVICE_COLUMNS} FROM device_info WHERE user_id = $1
                 ORDER BY reported_at DESC, device_id DESC LIMIT 1"
            ))
            .bind(user.0)
            .fetch_optional(c)
            .await?;
            Ok(row.map(DeviceRecord::from))
        })
        .await
    }

    async fn device_history(&self, device: DeviceId) -> Result<Vec<DeviceRecord>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, DeviceInfoRow>(&format!(
                "SELECT {DEVICE_COLUMNS} FROM device_info_history WHERE device_id = $1 ORDER BY id DESC"
            ))
            .bind(device.0)
            .fetch_all(c)
            .await?;
            Ok(rows.into_iter().map(DeviceRecord::from).collect())
        })
        .await
    }

    async fn view_events(&self, user: UserId, limit: u32) -> Result<Vec<StoredView>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, ViewRow>(&format!(
                "SELECT {VIEW_COLUMNS} FROM view_events WHERE user_id = $1 ORDER BY id LIMIT $2"
            ))
            .bind(user.0)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await?;
            Ok(rows.into_iter().map(StoredView::from).collect())
        })
        .await
    }

    async fn connections(&self, user: UserId, limit: u32) -> Result<Vec<ConnectionRecord>> {
        self.call(async |c| {
            let rows = sqlx::query_as::<_, ConnectionRow>(&format!(
                "SELECT {CONNECTION_COLUMNS} FROM connections WHERE user_id = $1
                 ORDER BY connected_at DESC, id DESC LIMIT $2"
            ))
            .bind(user.0)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await?;
            rows.into_iter().map(|r| r.open(&self.vault)).collect()
        })
        .await
    }

    async fn purge_telemetry(&self, r: &Retention) -> Result<Purged> {
        self.call(async |c| {
            let mut tx = c.begin().await?;
            let old_views = sqlx::query("DELETE FROM view_events WHERE received_at < $1")
                .bind(r.views_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // Consent is enforced when a batch is stored; this catches what another node stored
            // while the switch was turning off.
            let refused = if r.analytics_default {
                "DELETE FROM view_events WHERE user_id IN (SELECT user_id FROM consent WHERE NOT analytics)"
            } else {
                "DELETE FROM view_events WHERE user_id NOT IN (SELECT user_id FROM consent WHERE analytics)"
            };
            let refused = sqlx::query(refused).execute(&mut *tx).await?.rows_affected();
            let device_history = sqlx::query("DELETE FROM device_info_history WHERE reported_at < $1")
                .bind(r.device_history_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let connections = sqlx::query("DELETE FROM connections WHERE connected_at < $1")
                .bind(r.connections_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(Purged { views: old_views + refused, device_history, connections })
        })
        .await
    }

    async fn settings(&self, user: UserId) -> Result<Option<(String, Millis)>> {
        self.call(async |c| {
            let row = sqlx::query_as::<_, (String, Millis)>(
                "SELECT document, updated_at FROM user_settings WHERE user_id = $1",
            )
            .bind(user.0)
            .fetch_optional(c)
            .await?;
            Ok(row)
        })
        .await
    }

    async fn put_settings(
        &self,
        user: UserId,
        document: &str,
        now: Millis,
        personalisation_default: bool,
    ) -> Result<bool> {
        self.call(async |c| {
            let mut tx = c.begin().await?;
            // The consent row (when there is one) is locked, so a change of it waits for this write
            // and its clean-up then deletes what this stored.
            let stored =
                sqlx::query_scalar::<_, bool>("SELECT personalisation FROM consent WHERE user_id = $1 FOR SHARE")
                    .bind(user.0)
                    .fetch_optional(&mut *tx)
                    .await?;
            if !stored.unwrap_or(personalisation_default) {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO user_settings (user_id, document, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
            )
            .bind(user.0)
            .bind(document)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn consent(&self, user: UserId) -> Result<Option<Consent>> {
        self.call(async |c| {
            let row =
                sqlx::query_as::<_, ConsentRow>(&format!("SELECT {CONSENT_COLUMNS} FROM consent WHERE user_id = $1"))
                    .bind(user.0)
                    .fetch_optional(c)
                    .await?;
            Ok(row.map(Consent::from))
        })
        .await
    }

    async fn set_consent(
        &self,
        user: UserId,
        change: ConsentChange,
        defaults: ConsentDefaults,
        now: Millis,
    ) -> Result<Consent> {
        self.call(async |c| {
            let mut tx = c.begin().await?;
            let row = sqlx::query_as::<_, ConsentRow>(&format!(
                "INSERT INTO consent (user_id, analytics, analytics_changed_at, personalisation,
                     personalisation_changed_at, sms_reminders, sms_reminders_changed_at)
                 VALUES ($1, COALESCE($2, $4), CASE WHEN $2::boolean IS NULL THEN NULL ELSE $6::bigint END,
                         COALESCE($3, $5), CASE WHEN $3::boolean IS NULL THEN NULL ELSE $6::bigint END,
                         COALESCE($7::boolean, false), CASE WHEN $7::boolean IS NULL THEN NULL ELSE $6::bigint END)
                 ON CONFLICT (user_id) DO UPDATE SET
                     analytics = COALESCE($2, consent.analytics),
                     analytics_changed_at =
                         CASE WHEN $2::boolean IS NULL THEN consent.analytics_changed_at ELSE $6::bigint END,
                     personalisation = COALESCE($3, consent.personalisation),
                     personalisation_changed_at =
                         CASE WHEN $3::boolean IS NULL THEN consent.personalisation_changed_at ELSE $6::bigint END,
                     sms_reminders = COALESCE($7, consent.sms_reminders),
                     sms_reminders_changed_at =
                         CASE WHEN $7::boolean IS NULL THEN consent.sms_reminders_changed_at ELSE $6::bigint END
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
                sqlx::query("DELETE FROM view_events WHERE user_id = $1").bind(user.0).execute(&mut *tx).await?;
            }
            if !consent.personalisation {
                sqlx::query("DELETE FROM user_settings WHERE user_id = $1").bind(user.0).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(consent)
        })
        .await
    }
}
