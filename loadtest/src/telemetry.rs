//! The `telemetry` scenario: app sockets flooding the hub with view-event batches
//! (`telemetry.views`), as apps do in the background. Run it alone, or beside a `chat` run against
//! the same hub (`--url`, and another `--phone-offset`) to see what the flood costs the chat. It
//! reports view events stored per second (a batch is acknowledged only once stored), the batches'
//! ack latency from their scheduled send time, and errors by code (`overloaded` when the hub's
//! telemetry pipeline is full).

use crate::cluster::Cluster;
use crate::hub::HubArgs;
use crate::signin;
use crate::stats::Live;
use crate::wire::{Body, Conn, Frame, ViewEvent};
use crate::ClientArgs;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Parameters of `telemetry`. The defaults are the preset: about 30 s.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct TelemetryArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub hub: HubArgs,
    #[command(flatten)]
    pub client: ClientArgs,
    /// App sockets sending batches (one test user each).
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// View events per second, all sockets together.
    #[arg(long, default_value_t = 20_000.0)]
    pub rate: f64,
    /// View events per `telemetry.views` frame (1 to 100).
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds of load before the measured window.
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
}

/// What the run measured.
#[derive(Debug, Default, Serialize)]
pub struct TelemetryReport {
    pub scenario: &'static str,
    pub sockets: usize,
    pub window_s: f64,
    pub target_events_per_s: f64,
    /// View events acknowledged (stored) per second in the window.
    pub stored_events_per_s: f64,
    pub batches_acked: u64,
    /// Ack latency of a batch from its scheduled send, ms: p50, p90, p99, max.
    pub ack_ms: [f64; 4],
    pub errors: BTreeMap<String, u64>,
}

impl TelemetryReport {
    fn table(&self) -> String {
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
        };
        format!(
            "telemetry\n---------\nsockets          {}\nwindow           {:.1} s\ntarget           {:.0} view events/s\nstored           {:.0} view events/s ({} batches acked)\nack latency      p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2} ms\nerrors           {errors}",
            self.sockets,
            self.window_s,
            self.target_events_per_s,
            self.stored_events_per_s,
            self.batches_acked,
            self.ack_ms[0],
            self.ack_ms[1],
            self.ack_ms[2],
            self.ack_ms[3]
        )
    }
}

#[derive(Default)]
struct Tally {
    acked_in_window: u64,
    batches: u64,
    latency_us: Option<Histogram<u64>>,
    errors: BTreeMap<String, u64>,
}

/// The events of one batch: screens an app might show.
fn batch_events(n: usize, now_ms: i64) -> Vec<ViewEvent> {
    (0..n)
        .map(|i| ViewEvent {
            kind: if i % 3 == 0 { "action" } else { "screen" },
            screen: format!("screen-{}", i % 12),
            at: now_ms - (n - i) as i64 * 100,
            duration_ms: 250 + (i as u64 % 7) * 100,
        })
        .collect()
}

/// Runs the scenario, prints the table (and JSON when asked) and returns the report.
///
/// # Errors
/// The hub cannot be reached or started, or nobody could sign in.
pub async fn run(args: TelemetryArgs) -> anyhow::Result<TelemetryReport> {
    anyhow::ensure!((1..=100).contains(&args.batch), "--batch must be 1 to 100");
    anyhow::ensure!(args.users >= 1 && args.rate > 0.0, "--users and --rate must be positive");
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let mut hubs = Cluster::open(&args.hub, &http).await?;
    let live = Live::default();
    let tokens = signin::sign_in_users(&http, hubs.first(), &args.hub, &args.client, args.users, &live).await?;
    let tokens: Vec<String> = tokens.into_iter().flatten().collect();
    anyhow::ensure!(!tokens.is_empty(), "no user could sign in: {:?}", live.errors_by_key());
    let addrs = hubs.addrs();
    let sources = crate::wire::source_ips(args.client.source_ips);
    let tally = Arc::new(Mutex::new(Tally {
        latency_us: Histogram::new_with_bounds(1, 600_000_000, 3).ok(),
        ..Tally::default()
    }));
    let start = Instant::now() + Duration::from_secs(1);
    let window_start = start + Duration::from_secs(args.warmup);
    let end = window_start + Duration::from_secs(args.duration);
    // Each socket sends one batch every `interval`, phases spread evenly.
    let interval = Duration::from_secs_f64(args.batch as f64 * tokens.len() as f64 / args.rate);
    let mut tasks = JoinSet::new();
    for (i, token) in tokens.iter().cloned().enumerate() {
        let (addr, source) = (addrs[i % addrs.len()], sources[i % sources.len()]);
        let encoding = args.client.encoding.for_socket(i);
        let (tally, batch) = (tally.clone(), args.batch);
        let phase = interval.mul_f64(i as f64 / tokens.len() as f64);
        tasks.spawn(async move {
            let error =
                |key: String| *tally.lock().unwrap_or_else(|p| p.into_inner()).errors.entry(key).or_default() += 1;
            let mut conn = match Conn::connect(addr, source, encoding).await {
                Ok(c) => c,
                Err(e) => return error(e.key()),
            };
            let mut ignore = |_f: Frame| {};
            match conn.request("auth", Body::Auth { token: &token }, &mut ignore).await {
                Ok(f) if f.kind == "auth.ok" => {}
                Ok(f) => return error(format!("auth:{}", f.code.unwrap_or(f.kind))),
                Err(e) => return error(e.key()),
            }
            let mut next = start + phase;
            while next < end {
                tokio::time::sleep_until(next).await;
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let events = batch_events(batch, now_ms);
                let reply = conn.request("telemetry.views", Body::Views { events: &events }, &mut ignore).await;
                let done = Instant::now();
                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                match reply {
                    Ok(f) if f.kind == "ok" => {
                        if next >= window_start {
                            t.acked_in_window += batch as u64;
                            t.batches += 1;
                            let us = done.saturating_duration_since(next).as_micros() as u64;
                            if let Some(h) = t.latency_us.as_mut() {
                                let _ = h.record(us.max(1));
                            }
                        }
                    }
                    Ok(f) => *t.errors.entry(format!("error:{}", f.code.unwrap_or(f.kind))).or_default() += 1,
                    Err(e) => {
                        *t.errors.entry(e.key()).or_default() += 1;
                        return;
                    }
                }
                drop(t);
                next += interval;
            }
            conn.close().await;
        });
    }
    eprintln!("telemetry: {} sockets, {} view events/s in batches of {}", tokens.len(), args.rate, args.batch);
    while tasks.join_next().await.is_some() {}
    hubs.stop();
    let t = tally.lock().unwrap_or_else(|p| p.into_inner());
    let ms = |q: f64| t.latency_us.as_ref().map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0);
    let report = TelemetryReport {
        scenario: "telemetry",
        sockets: tokens.len(),
        window_s: args.duration as f64,
        target_events_per_s: args.rate,
        stored_events_per_s: t.acked_in_window as f64 / args.duration.max(1) as f64,
        batches_acked: t.batches,
        ack_ms: [ms(0.5), ms(0.9), ms(0.99), t.latency_us.as_ref().map_or(0.0, |h| h.max() as f64 / 1000.0)],
        errors: t.errors.clone(),
    };
    println!("{}", report.table());
    if let Some(path) = &args.client.json {
        crate::report::write_json(path, &report)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_valid_view_events() {
        let events = batch_events(50, 1_764_000_000_000);
        assert_eq!(events.len(), 50);
        assert!(events.iter().all(|e| e.at <= 1_764_000_000_000 && !e.screen.is_empty()));
        assert!(events.iter().any(|e| e.kind == "action") && events.iter().any(|e| e.kind == "screen"));
        let json = serde_json::to_value(&events[0]).unwrap();
        assert_eq!(json["kind"], "action");
    }
}
