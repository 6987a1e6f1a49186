//! Checks of the [`anapars_hub::ports::store::telemetry::Telemetry`] port: telemetry batches,
//! consent, settings, retention.

use super::{device, user, PURGE_EPOCH};
use anapars_hub::error::Result;
use anapars_hub::model::telemetry::{
    ConnectionRecord, ConsentChange, ConsentDefaults, DeviceInfo, DeviceRecord, Retention, TelemetryWrite, ViewEvent,
    WriteOutcome, DEVICE_HISTORY_PER_DEVICE,
};
use anapars_hub::model::time::now_ms;
use anapars_hub::ports::store::Store;
use std::sync::Arc;
use uuid::Uuid;

const DEFAULTS: ConsentDefaults = ConsentDefaults { analytics: true, personalisation: true };

pub(super) fn views(
    user: anapars_hub::model::ids::UserId,
    device: anapars_hub::model::ids::DeviceId,
    n: usize,
    received_at: i64,
) -> TelemetryWrite {
    let events = (0..n)
        .map(|i| ViewEvent {
            kind: if i % 2 == 0 { "screen" } else { "action" }.into(),
            screen: format!("screen-{i}"),
            target: (i % 2 == 1).then(|| "button".to_owned()),
            at: received_at - i as i64,
            duration_ms: (i % 3 == 0).then_some(i as i64),
        })
        .collect();
    TelemetryWrite::Views { user_id: user, device_id: device, events, received_at }
}

pub(super) fn report(os_version: &str, reported_at: i64, d: &anapars_hub::model::account::Device) -> TelemetryWrite {
    TelemetryWrite::Device(DeviceRecord {
        device_id: d.id,
        user_id: d.user_id,
        info: DeviceInfo {
            os: "android".into(),
            os_version: Some(os_version.into()),
            model: Some("Pixel 8".into()),
            memory_mb: Some(8192),
            screen_width: Some(1080),
            locale: Some("fa-IR".into()),
            ..Default::default()
        },
        reported_at,
    })
}

/// A batch stores every kind of write in one call, answers per write in order, and view events
/// come back exactly as written (600 of them: more than one multi-row chunk).
pub async fn store_telemetry_stores_a_mixed_batch_in_order(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let d = device(&*store, u.id).await?;
    let now = now_ms();
    let connection = ConnectionRecord {
        id: Uuid::now_v7(),
        user_id: u.id,
        device_id: d.id,
        ip: "203.0.113.7".into(),
        user_agent: Some("Anapars/3.2.1".into()),
        client_version: Some("3.2.1".into()),
        connected_at: now,
        disconnected_at: None,
    };
    let writes = vec![
        TelemetryWrite::Connected(connection.clone()),
        views(u.id, d.id, 600, now),
        report("14", now, &d),
        TelemetryWrite::Disconnected { id: connection.id, at: now + 5 },
        views(u.id, d.id, 2, now + 1),
    ];
    let outcomes = store.store_telemetry(&writes, true).await?;
    assert_eq!(outcomes, vec![WriteOutcome::Stored; 5]);
    let stored = store.view_events(u.id, 1000).await?;
    assert_eq!(stored.len(), 602);
    let TelemetryWrite::Views { events, .. } = &writes[1] else { unreachable!() };
    assert_eq!(stored[..600].iter().map(|s| s.event.clone()).collect::<Vec<_>>(), *events, "order and fields kept");
    assert!(stored.iter().all(|s| s.user_id == u.id && s.device_id == d.id));
    let records = store.connections(u.id, 10).await?;
    assert_eq!(records, vec![ConnectionRecord { disconnected_at: Some(now + 5), ..connection }]);
    let latest = store.device_info(d.id).await?.expect("latest report stored");
    assert_eq!(latest.info.os_version.as_deref(), Some("14"));
    Ok(())
}

/// View batches of a user whose analytics is off are refused in the batch, others still stored; the
/// default applies to users without a consent row.
pub async fn store_telemetry_refuses_views_without_analytics_consent(store: Arc<dyn Store>) -> Result<()> {
    let (on, off, unset) = (user(&*store).await?, user(&*store).await?, user(&*store).await?);
    let (d_on, d_off, d_unset) =
        (device(&*store, on.id).await?, device(&*store, off.id).await?, device(&*store, unset.id).await?);
    store
        .set_consent(off.id, ConsentChange { analytics: Some(false), ..Default::default() }, DEFAULTS, now_ms())
        .await?;
    let now = now_ms();
    let writes =
        vec![views(on.id, d_on.id, 3, now), views(off.id, d_off.id, 3, now), views(unset.id, d_unset.id, 1, now)];
    let outcomes = store.store_telemetry(&writes, false).await?;
    // `on` has no row either: with a default of false both users without a row are refused.
    assert_eq!(outcomes, vec![WriteOutcome::ConsentOff, WriteOutcome::ConsentOff, WriteOutcome::ConsentOff]);
    let outcomes = store.store_telemetry(&writes, true).await?;
    assert_eq!(outcomes, vec![WriteOutcome::Stored, WriteOutcome::ConsentOff, WriteOutcome::Stored]);
    assert_eq!(store.view_events(on.id, 10).await?.len(), 3);
    assert!(store.view_events(off.id, 10).await?.is_empty());
    Ok(())
}

/// A device's history grows only when its report changes, keeps the newest rows, and the latest
/// report is always the last one.
pub async fn device_history_records_changes_only_and_is_bounded(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let d = device(&*store, u.id).await?;
    let now = now_ms();
    store.store_telemetry(&[report("13", now, &d), report("13", now + 1, &d)], true).await?;
    assert_eq!(store.device_history(d.id).await?.len(), 1, "an identical report adds no history");
    let versions: Vec<TelemetryWrite> =
        (0..DEVICE_HISTORY_PER_DEVICE + 5).map(|i| report(&format!("v{i}"), now + 10 + i, &d)).collect();
    store.store_telemetry(&versions, true).await?;
    let history = store.device_history(d.id).await?;
    assert_eq!(history.len() as i64, DEVICE_HISTORY_PER_DEVICE);
    let last = format!("v{}", DEVICE_HISTORY_PER_DEVICE + 4);
    assert_eq!(history[0].info.os_version.as_deref(), Some(last.as_str()), "newest first");
    assert_eq!(store.device_info(d.id).await?.and_then(|r| r.info.os_version), Some(last));
    Ok(())
}

/// The latest report of a user is the newest of any of their devices; a user whose devices never
/// reported has none, and another user's reports never count.
pub async fn latest_device_report_is_the_newest_of_any_device(store: Arc<dyn Store>) -> Result<()> {
    let (u, other) = (user(&*store).await?, user(&*store).await?);
    assert_eq!(store.latest_device_report(u.id).await?, None, "nothing reported yet");
    let (phone, tablet) = (device(&*store, u.id).await?, device(&*store, u.id).await?);
    let theirs = device(&*store, other.id).await?;
    let now = now_ms();
    store.store_telemetry(&[report("13", now, &phone), report("14", now + 10, &tablet)], true).await?;
    store.store_telemetry(&[report("15", now + 20, &theirs)], true).await?;
    let latest = store.latest_device_report(u.id).await?.expect("a report");
    assert_eq!((latest.device_id, latest.user_id), (tablet.id, u.id));
    assert_eq!((latest.info.os_version.as_deref(), latest.reported_at), (Some("14"), now + 10));
    assert_eq!(latest.info.model.as_deref(), Some("Pixel 8"), "the whole report comes back");
    // The older device reports again: now it is the newest.
    store.store_telemetry(&[report("13.1", now + 30, &phone)], true).await?;
    let latest = store.latest_device_report(u.id).await?.expect("a report");
    assert_eq!((latest.device_id, latest.info.os_version.as_deref()), (phone.id, Some("13.1")));
    assert_eq!(store.latest_device_report(other.id).await?.map(|r| r.device_id), Some(theirs.id));
    Ok(())
}

/// Consent changes are stored with their time; turning analytics off deletes the user's view events
/// and turning personalisation off deletes their settings, in the same call; settings are not
/// stored while personalisation is off.
pub async fn consent_changes_purge_what_they_cover(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let d = device(&*store, u.id).await?;
    assert_eq!(store.consent(u.id).await?, None);
    let now = now_ms();
    store.store_telemetry(&[views(u.id, d.id, 4, now)], true).await?;
    assert!(store.put_settings(u.id, r#"{"theme":"dark"}"#, now, true).await?);
    assert_eq!(store.settings(u.id).await?, Some((r#"{"theme":"dark"}"#.to_owned(), now)));

    let c = store
        .set_consent(u.id, ConsentChange { analytics: Some(false), ..Default::default() }, DEFAULTS, now + 1)
        .await?;
    assert!(!c.analytics && c.personalisation && !c.sms_reminders, "sms reminders are off until turned on");
    assert_eq!((c.analytics_changed_at, c.personalisation_changed_at), (Some(now + 1), None));
    assert!(store.view_events(u.id, 10).await?.is_empty(), "analytics off deletes view events");
    assert!(store.settings(u.id).await?.is_some(), "settings untouched");

    let c = store
        .set_consent(u.id, ConsentChange { personalisation: Some(false), ..Default::default() }, DEFAULTS, now + 2)
        .await?;
    assert!(!c.analytics && !c.personalisation);
    assert_eq!((c.analytics_changed_at, c.personalisation_changed_at), (Some(now + 1), Some(now + 2)));
    assert_eq!(store.settings(u.id).await?, None, "personalisation off deletes settings");
    assert!(!store.put_settings(u.id, "{}", now + 3, true).await?, "not stored while off");
    assert_eq!(store.settings(u.id).await?, None);
    assert_eq!(store.consent(u.id).await?, Some(c));

    let c = store
        .set_consent(
            u.id,
            ConsentChange { analytics: Some(true), personalisation: Some(true), sms_reminders: Some(true) },
            DEFAULTS,
            now + 4,
        )
        .await?;
    assert!(c.analytics && c.personalisation && c.sms_reminders);
    assert_eq!(c.sms_reminders_changed_at, Some(now + 4));
    let c = store.set_consent(u.id, ConsentChange::default(), DEFAULTS, now + 6).await?;
    assert!(c.sms_reminders && c.sms_reminders_changed_at == Some(now + 4), "absent switches stay");
    assert!(store.put_settings(u.id, r#"{"a":1}"#, now + 7, false).await?, "the stored switch wins over the default");
    // Without a row, the default decides.
    let other = user(&*store).await?;
    assert!(!store.put_settings(other.id, "{}", now, false).await?);
    assert!(store.put_settings(other.id, "{}", now, true).await?);
    Ok(())
}

/// The purge deletes only what is older than each window (working in the first weeks of 1970, as
/// the other purge checks do) and keeps each device's latest report.
pub async fn purge_telemetry_deletes_only_what_is_past_its_window(store: Arc<dyn Store>) -> Result<()> {
    let u = user(&*store).await?;
    let d = device(&*store, u.id).await?;
    let old = PURGE_EPOCH;
    let connection = |at| ConnectionRecord {
        id: Uuid::now_v7(),
        user_id: u.id,
        device_id: d.id,
        ip: "::1".into(),
        user_agent: None,
        client_version: None,
        connected_at: at,
        disconnected_at: None,
    };
    store
        .store_telemetry(
            &[
                views(u.id, d.id, 3, old),
                views(u.id, d.id, 2, old + 1000),
                report("1", old, &d),
                report("2", old + 1000, &d),
                TelemetryWrite::Connected(connection(old)),
                TelemetryWrite::Connected(connection(old + 1000)),
            ],
            true,
        )
        .await?;
    let cut = old + 500;
    let purged = store
        .purge_telemetry(&Retention {
            views_before: cut,
            device_history_before: cut,
            connections_before: cut,
            analytics_default: true,
        })
        .await?;
    assert_eq!((purged.views, purged.device_history, purged.connections), (3, 1, 1));
    assert_eq!(store.view_events(u.id, 10).await?.len(), 2);
    assert_eq!(store.device_history(d.id).await?.len(), 1);
    assert_eq!(store.connections(u.id, 10).await?.len(), 1);
    assert!(store.device_info(d.id).await?.is_some(), "the latest report stays");
    Ok(())
}
