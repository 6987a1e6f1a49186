//! What a batch of telemetry writes does, decided once for both storage backends: which view
//! batches analytics consent refuses, and which rows each kind of write becomes.

use crate::model::ids::{DeviceId, UserId};
use crate::model::telemetry::{ConnectionRecord, DeviceRecord, TelemetryWrite, ViewEvent, WriteOutcome};
use crate::model::time::Millis;
use uuid::Uuid;

/// A batch sorted by what each backend does with it, decided once for both.
pub(crate) struct Plan<'a> {
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
pub(crate) fn view_users(writes: &[TelemetryWrite]) -> Vec<Uuid> {
    let mut users: Vec<Uuid> = writes
        .iter()
        .filter_map(|w| match w {
            TelemetryWrite::Views { user_id, .. } => Some(user_id.0),
            _ => None,
        })
        .collect();
    users.sort_unstable();
    users.dedup();
    users
}

/// Sorts `writes`, given the stored analytics switch of the users that have one.
pub(crate) fn plan<'a>(
    writes: &'a [TelemetryWrite],
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
            TelemetryWrite::Device(d) => {
                plan.devices.push(d);
                WriteOutcome::Stored
            }
            TelemetryWrite::Views { user_id, device_id, events, received_at } => {
                if stored_analytics.get(&user_id.0).copied().unwrap_or(analytics_default) {
                    plan.views.extend(events.iter().map(|e| (*user_id, *device_id, e, *received_at)));
                    WriteOutcome::Stored
                } else {
                    WriteOutcome::ConsentOff
                }
            }
            TelemetryWrite::Connected(c) => {
                plan.connected.push(c);
                WriteOutcome::Stored
            }
            TelemetryWrite::Disconnected { id, at } => {
                plan.disconnected.push((*id, *at));
                WriteOutcome::Stored
            }
        };
        plan.outcomes.push(outcome);
    }
    plan
}
