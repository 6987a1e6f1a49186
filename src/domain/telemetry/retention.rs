//! The retention purge: every `telemetry_purge_interval_ms`, deletes view events, device history and
//! connection records older than their windows, and view events of users whose analytics is off.

use crate::domain::telemetry::TelemetryDesk;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs the purge every `every` until `shutdown`; the first round runs at once.
pub(crate) async fn purge_loop(desk: Arc<TelemetryDesk>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match desk.purge(crate::model::time::now_ms()).await {
            Ok(p) => {
                for (kind, n) in [("view", p.views), ("device", p.device_history), ("connection", p.connections)] {
                    metrics::counter!(crate::metrics::TELEMETRY_PURGED, "kind" => kind).increment(n);
                }
                tracing::debug!(
                    views = p.views,
                    device_history = p.device_history,
                    connections = p.connections,
                    "telemetry purged"
                );
            }
            Err(e) => tracing::warn!(error = %e, "telemetry purge failed; retrying next round"),
        }
    }
}
