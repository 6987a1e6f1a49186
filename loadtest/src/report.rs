//! The final reports: one serde struct per scenario, written as JSON for scripts (`--json PATH`)
//! and as an aligned two-column table on stdout for people, and the figures the scenarios share
//! (CPU use, per-node server figures, the fan-out and reconnect verdicts). Below every scenario:
//! it imports only the measurements it reports.

use crate::metrics::{BatchSizes, NodeSnapshot};
use crate::seq::DeliveryCheck;
use crate::stats::{LatencySummary, Tick};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Which hub was measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HubInfo {
    /// Base URL.
    pub url: String,
    /// `sqlite`, `postgres`, or `unknown` for a hub the harness did not start.
    pub backend: String,
    /// Pid, when known.
    pub pid: Option<u32>,
    /// Nodes (1 unless a cluster).
    pub nodes: usize,
}

impl HubInfo {
    fn cell(&self) -> String {
        let nodes = if self.nodes > 1 { format!(", node 1 of {}", self.nodes) } else { String::new() };
        format!("{} ({}, pid {}{nodes})", self.url, self.backend, opt(self.pid, ""))
    }
}

/// CPU time spent during the measured window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CpuUse {
    /// Hub process, seconds (user + system); None when its pid is unknown.
    pub hub_s: Option<f64>,
    /// This harness, seconds.
    pub harness_s: Option<f64>,
    /// Share of the whole machine that was busy, percent (every process, every core).
    pub machine_busy_pct: Option<f64>,
    /// Postgres processes on this machine, seconds (live backends only: a lower bound).
    pub postgres_s: Option<f64>,
    /// `redis-server` processes on this machine, seconds (every one, the run's or not).
    pub redis_s: Option<f64>,
    /// CPU seconds of every other process (anything else sharing the machine).
    pub others_s: Option<f64>,
}

/// The result of a `chat` run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChatReport {
    /// Always `chat`.
    pub scenario: &'static str,
    /// The hub.
    pub hub: HubInfo,
    /// The command line's parameters.
    pub params: serde_json::Value,
    /// Users signed in with a socket and an open ticket.
    pub users_ready: usize,
    /// Agent console sockets.
    pub agent_sockets: usize,
    /// Tickets claimed by an agent.
    pub tickets_claimed: usize,
    /// Length of the measured window, seconds.
    pub window_s: f64,
    /// Target user messages per second.
    pub target_rate: f64,
    /// Messages sent per second (users and agents) in the window.
    pub sent_per_s: f64,
    /// Messages acknowledged (stored) in the window.
    pub acked: u64,
    /// Messages acknowledged per second in the window: the sustained persisted rate.
    pub acked_per_s: f64,
    /// Events delivered to a subscriber per second in the window.
    pub delivered_per_s: f64,
    /// A user's send (its scheduled time) to `ticket.send.ok`.
    pub ack_latency: LatencySummary,
    /// An agent's reply to its `ticket.send.ok`.
    pub ack_latency_agents: LatencySummary,
    /// A user's send to the agent's receipt of the `ticket.event`.
    pub e2e_user_to_agent: LatencySummary,
    /// An agent's reply to the user's receipt.
    pub e2e_agent_to_user: LatencySummary,
    /// Errors by key over the whole run (set-up, load and drain).
    pub errors: BTreeMap<String, u64>,
    /// The exactly-once, in-order check over every subscribed ticket stream.
    pub delivery: DeliveryCheck,
    /// True when nothing was lost, duplicated or reordered.
    pub delivery_ok: bool,
    /// Group-commit batches in the window, from the hub's `/metrics`.
    pub batch_sizes: BatchSizes,
    /// CPU time in the window.
    pub cpu: CpuUse,
    /// CPU seconds of each master of the spawned Redis Cluster in the window, in slot order.
    pub redis_shards_s: Option<Vec<f64>>,
    /// Hub CPU time per acknowledged message in the window, microseconds.
    pub hub_cpu_us_per_ack: Option<f64>,
    /// Each node's CPU time and memory in the window (from `/proc` or the hub's `/metrics`).
    pub server: Vec<NodeFigures>,
    /// Drops and resumes (`reconnect` only).
    pub reconnect: Option<ReconnectFigures>,
    /// Uploads and messages with attachments (with `--attachment-share` above 0).
    pub attachments: Option<AttachmentFigures>,
    /// What ran beside the load (`rotate`: the key rotation and the sign-ins during it).
    pub beside: Option<serde_json::Value>,
    /// One entry per second of load.
    pub timeline: Vec<Tick>,
}

/// What the uploads of a `chat` run with attachments came to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AttachmentFigures {
    /// Share of user messages that carry a picture.
    pub share: f64,
    /// `tus` or `single`.
    pub upload: &'static str,
    /// Bytes per tus request.
    pub chunk_bytes: usize,
    /// The pictures' size in bytes (every variant has it).
    pub picture_bytes: usize,
    /// The pictures' width and height in pixels.
    pub picture_pixels: (u32, u32),
    /// Uploads begun over the whole run.
    pub started: u64,
    /// Uploads the hub accepted over the whole run.
    pub completed: u64,
    /// Uploads accepted in the measured window.
    pub in_window: u64,
    /// Uploads accepted per second in the window.
    pub uploads_per_s: f64,
    /// Bytes of accepted uploads per second in the window.
    pub upload_bytes_per_s: f64,
    /// An upload's first byte to the hub's acceptance of its last, in the window.
    pub upload_latency: LatencySummary,
    /// Messages sent with an attachment over the whole run.
    pub messages: u64,
    /// A user's send of a message with an attachment to its `ticket.send.ok`, in the window.
    pub ack_latency: LatencySummary,
    /// Attachments on the message events the agents received, over the whole run.
    pub seen_by_agents: u64,
}

/// The result of an `offline` run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct OfflineReport {
    /// Always `offline`.
    pub scenario: &'static str,
    /// The hub.
    pub hub: HubInfo,
    /// The command line's parameters.
    pub params: serde_json::Value,
    /// Users with an open ticket and a Web Push registration.
    pub users_ready: usize,
    /// Whether the users' apps stayed open (nothing should be pushed) rather than closed.
    pub apps_open: bool,
    /// Agent console sockets.
    pub agent_sockets: usize,
    /// Tickets claimed by an agent.
    pub tickets_claimed: usize,
    /// Length of the measured window, seconds.
    pub window_s: f64,
    /// Target agent messages per second.
    pub target_rate: f64,
    /// Agent messages sent per second in the window.
    pub sent_per_s: f64,
    /// Agent messages acknowledged (stored) in the window.
    pub acked: u64,
    /// Agent messages acknowledged per second in the window.
    pub acked_per_s: f64,
    /// An agent's message (its scheduled time) to its `ticket.send.ok`.
    pub ack_latency: LatencySummary,
    /// What reached the Web Push receiver.
    pub pushes: PushFigures,
    /// The hub's `hub_push_failed_total` growth over the run, by reason.
    pub push_failures: BTreeMap<String, f64>,
    /// True when every stored message was followed by a push (with the apps open: when nothing
    /// was pushed).
    pub delivery_ok: bool,
    /// CPU time in the window.
    pub cpu: CpuUse,
    /// Hub CPU time in the window per push received in it, microseconds (the messages' storage
    /// included).
    pub hub_cpu_us_per_push: Option<f64>,
    /// Hub CPU time in the window per acknowledged message, microseconds.
    pub hub_cpu_us_per_message: Option<f64>,
    /// Each node's CPU time and memory in the window.
    pub server: Vec<NodeFigures>,
    /// Errors by key over the whole run (the receiver's included).
    pub errors: BTreeMap<String, u64>,
    /// One entry per second of load and drain.
    pub timeline: Vec<PushSecond>,
}

/// The pushes of an `offline` run, as the receiver saw them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PushFigures {
    /// The spawned hub's `push_collapse_ms` (None for a hub started elsewhere).
    pub collapse_ms: Option<u64>,
    /// Pushes received over the whole run.
    pub received: u64,
    /// Pushes that arrived in the measured window.
    pub in_window: u64,
    /// Pushes received per second in the window.
    pub per_s: f64,
    /// The hubs' `hub_push_sent_total` growth in the window, per second.
    pub hub_sent_per_s: Option<f64>,
    /// Agent messages acknowledged over the whole run.
    pub messages: u64,
    /// Pushes whose first message was scheduled in the window (the latencies' count).
    pub measured: u64,
    /// Messages those pushes notified.
    pub measured_messages: u64,
    /// Most messages one push notified.
    pub most_collapsed: u64,
    /// Pushes that found no message of their ticket waiting.
    pub unmatched: u64,
    /// Messages no push followed by the end of the drain.
    pub waiting: u64,
    /// The earliest message a push notified, from its scheduled send to the push's arrival.
    pub after_send: LatencySummary,
    /// The same from the message's `ticket.send.ok`.
    pub after_ack: LatencySummary,
    /// The highest `hub_push_queue_depth` read (once a second; the hub updates it every 5 s).
    pub queue_depth_max: Option<f64>,
    /// The most messages waiting for a push at one reading (once a second, by the harness).
    pub waiting_max: u64,
}

/// One second of an `offline` run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PushSecond {
    /// Seconds since the load started.
    pub t: u64,
    /// Agent messages sent in this second.
    pub sent: u64,
    /// Agent messages acknowledged in this second.
    pub acked: u64,
    /// Pushes received in this second.
    pub pushes: u64,
    /// Messages waiting for a push at the end of this second.
    pub waiting: u64,
    /// `hub_push_queue_depth` read at the end of this second.
    pub queue_depth: Option<f64>,
    /// The hubs' `hub_push_sent_total` growth in this second.
    pub hub_sent: Option<f64>,
    /// Push latency (after the scheduled send) of the pushes that arrived in this second: p50, ms.
    pub p50_ms: f64,
    /// The same, p99.
    pub p99_ms: f64,
    /// The same, maximum.
    pub max_ms: f64,
}

/// The result of an `idle` run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IdleReport {
    /// Always `idle`.
    pub scenario: &'static str,
    /// The hub.
    pub hub: HubInfo,
    /// The command line's parameters.
    pub params: serde_json::Value,
    /// Sockets asked for.
    pub requested: usize,
    /// Sockets that connected and authenticated.
    pub authenticated: usize,
    /// Sockets still open at the end of the hold, as the harness saw them.
    pub held: usize,
    /// `hub_connections` from the hub's `/metrics` at the end of the hold.
    pub hub_connections: Option<f64>,
    /// Seconds the ramp took.
    pub ramp_s: f64,
    /// Connect + upgrade + `auth` round trip.
    pub connect_latency: LatencySummary,
    /// Hub RSS before the sockets opened (after sign-in), KiB.
    pub rss_before_kib: Option<u64>,
    /// Hub RSS at the end of the hold, KiB.
    pub rss_held_kib: Option<u64>,
    /// Hub RSS after the sockets closed, KiB.
    pub rss_after_close_kib: Option<u64>,
    /// (held - before) / held sockets, KiB.
    pub rss_per_socket_kib: Option<f64>,
    /// The harness's own RSS growth per socket, KiB (the client side's cost).
    pub harness_rss_per_socket_kib: Option<f64>,
    /// Errors by key.
    pub errors: BTreeMap<String, u64>,
    /// CPU time over ramp and hold.
    pub cpu: CpuUse,
    /// Each node's CPU time and memory from before the ramp to the end of the hold.
    pub server: Vec<NodeFigures>,
    /// One entry per second.
    pub timeline: Vec<Tick>,
}

/// The result of a `burst` run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BurstReport {
    /// Always `burst`.
    pub scenario: &'static str,
    /// The hub.
    pub hub: HubInfo,
    /// The command line's parameters.
    pub params: serde_json::Value,
    /// Recipient sockets asked for.
    pub sockets_requested: usize,
    /// Recipient sockets authenticated before the first announcement.
    pub sockets_ready: usize,
    /// Distinct users behind them.
    pub users: usize,
    /// Announcements posted (warm-up included).
    pub posted: usize,
    /// Of those, accepted (`202`).
    pub accepted: usize,
    /// Accepted announcements posted in the measured window.
    pub measured_announcements: u64,
    /// From the first measured POST to the last receipt of a measured announcement, seconds.
    pub window_s: f64,
    /// Measured announcements per second.
    pub announcements_per_s: f64,
    /// Announcements per second x sockets: the deliveries the operator asked for.
    pub offered_deliveries_per_s: f64,
    /// First receipts of measured announcements, summed over sockets, per second of the window.
    pub deliveries_per_s: f64,
    /// The harness's clock at the POST to each socket's receipt.
    pub delivery_latency: LatencySummary,
    /// First socket to last socket, per announcement.
    pub spread: LatencySummary,
    /// The POST's round trip (to its `202`).
    pub post_latency: LatencySummary,
    /// Every socket, every accepted announcement, exactly once.
    pub check: FanOutCheck,
    /// True when nothing was missing or repeated.
    pub delivery_ok: bool,
    /// Hub CPU time per measured delivery, nanoseconds.
    pub hub_cpu_ns_per_delivery: Option<f64>,
    /// Hub RSS growth from before the sockets opened to when they were all ready, per socket, KiB.
    pub rss_per_socket_kib: Option<f64>,
    /// The same growth measured after the announcements, with every socket still open and idle for
    /// `settle` seconds (what the burst left behind per idle socket), KiB.
    pub rss_per_socket_after_kib: Option<f64>,
    /// Hub RSS above its empty state once the sockets closed, KiB (memory the hub kept).
    pub rss_left_after_close_kib: Option<f64>,
    /// CPU time while announcements were posted (measured part).
    pub cpu: CpuUse,
    /// Each node's CPU time and memory over the same window.
    pub server: Vec<NodeFigures>,
    /// Errors by key.
    pub errors: BTreeMap<String, u64>,
    /// One entry per second.
    pub timeline: Vec<Tick>,
}

impl BurstReport {
    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let c = &self.check;
        let mut rows = vec![
            ("hub".into(), self.hub.cell()),
            (
                "recipients".into(),
                format!("{} of {} sockets ready ({} users)", self.sockets_ready, self.sockets_requested, self.users),
            ),
            ("announcements".into(), format!("{} posted, {} accepted", self.posted, self.accepted)),
            (
                "window".into(),
                format!("{:.1} s, {} announcements, {:.0}/s", self.window_s, self.measured_announcements, self.announcements_per_s),
            ),
            (
                "deliveries".into(),
                format!("{:.0}/s (offered {:.0}/s)", self.deliveries_per_s, self.offered_deliveries_per_s),
            ),
            ("delivery latency".into(), latency_cell(&self.delivery_latency)),
            ("spread (first..last)".into(), latency_cell(&self.spread)),
            ("POST round trip".into(), latency_cell(&self.post_latency)),
            (
                "exactly once".into(),
                format!(
                    "{}: {} sockets ({} failed), expected {}, delivered {}, missing {}, duplicates {}, unconfirmed {}, unknown {}",
                    if self.delivery_ok { "OK" } else { "FAILED" },
                    c.sockets,
                    c.sockets_failed,
                    c.expected,
                    c.delivered,
                    c.missing,
                    c.duplicates,
                    c.unconfirmed,
                    c.unknown
                ),
            ),
            (
                "cpu in window".into(),
                format!(
                    "{}  (hub {} ns per delivery)",
                    cpu_cell(&self.cpu),
                    opt(self.hub_cpu_ns_per_delivery.map(|n| format!("{n:.0}")), "")
                ),
            ),
            (
                "hub rss per socket".into(),
                format!(
                    "{} when ready, {} idle after the burst; {} kept after the sockets closed",
                    opt(self.rss_per_socket_kib.map(|k| format!("{k:.2}")), " KiB"),
                    opt(self.rss_per_socket_after_kib.map(|k| format!("{k:.2}")), " KiB"),
                    opt(self.rss_left_after_close_kib.map(|k| format!("{:.1}", k / 1024.0)), " MiB")
                ),
            ),
        ];
        rows.extend(server_rows(&self.server, None));
        rows.push(("errors".into(), errors_cell(&self.errors)));
        table("burst", &rows)
    }
}

/// The exactly-once verdict over every socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FanOutCheck {
    /// Sockets checked (every socket that was ready when the first announcement went out).
    pub sockets: u64,
    /// Of those, sockets that failed before the end (their missing announcements count).
    pub sockets_failed: u64,
    /// Deliveries expected: accepted announcements x sockets.
    pub expected: u64,
    /// First receipts of accepted announcements.
    pub delivered: u64,
    /// (socket, accepted announcement) pairs never received.
    pub missing: u64,
    /// Repeated receipts.
    pub duplicates: u64,
    /// Receipts of announcements whose POST failed or timed out (the hub may still have sent them):
    /// neither expected nor an error.
    pub unconfirmed: u64,
    /// Marked frames with a number never posted.
    pub unknown: u64,
}

impl FanOutCheck {
    /// True when every socket got every accepted announcement exactly once.
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.unknown == 0
    }
}

/// What the drops and resumes of a run came to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReconnectFigures {
    /// Sockets dropped.
    pub dropped: u64,
    /// Sockets that resumed.
    pub resumed: u64,
    /// Messages resent.
    pub resent: u64,
    /// Of those, the ones the hub had already stored.
    pub resent_duplicates: u64,
    /// From the drop to the end of the resume (connected, authenticated, every ticket subscribed
    /// again, unacknowledged messages resent), in the measured window.
    pub resume_latency: crate::stats::LatencySummary,
}

/// One node's server-side figures over a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NodeFigures {
    /// The node's base URL.
    pub url: String,
    /// Its pid, when known.
    pub pid: Option<u32>,
    /// CPU seconds in the window: `/proc` when the pid is known, else `/metrics`.
    pub cpu_s: Option<f64>,
    /// Where `cpu_s` comes from: `proc`, `metrics` or absent.
    pub cpu_source: Option<&'static str>,
    /// CPU seconds in the window by the hub's own `process_cpu_seconds_total`.
    pub metrics_cpu_s: Option<f64>,
    /// Resident memory at the start of the window, KiB (`/proc`, else `/metrics`).
    pub rss_before_kib: Option<f64>,
    /// Resident memory at the end of the window, KiB.
    pub rss_after_kib: Option<f64>,
    /// The highest resident memory read once a second during the window, KiB (`/proc` only).
    pub rss_peak_kib: Option<f64>,
}

impl NodeFigures {
    /// The figures of node `url` from `before` to `after`.
    pub fn between(url: &str, pid: Option<u32>, before: &NodeSnapshot, after: &NodeSnapshot) -> Self {
        let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        let metrics_cpu_s = diff(before.metrics_cpu_s, after.metrics_cpu_s);
        let proc_cpu_s = diff(before.proc_cpu_s, after.proc_cpu_s);
        let (cpu_s, cpu_source) = match (proc_cpu_s, metrics_cpu_s) {
            (Some(p), _) => (Some(p), Some("proc")),
            (None, Some(m)) => (Some(m), Some("metrics")),
            (None, None) => (None, None),
        };
        let rss = |s: &NodeSnapshot| s.proc_rss_kib.map(|k| k as f64).or(s.metrics_rss_bytes.map(|b| b / 1024.0));
        Self {
            url: url.to_owned(),
            pid,
            cpu_s,
            cpu_source,
            metrics_cpu_s,
            rss_before_kib: rss(before),
            rss_after_kib: rss(after),
            rss_peak_kib: None,
        }
    }

    /// RSS growth per socket, KiB, over `sockets` sockets held by this node.
    pub fn rss_per_socket_kib(&self, sockets: usize) -> Option<f64> {
        (sockets > 0).then_some(())?;
        Some((self.rss_after_kib? - self.rss_before_kib?) / sockets as f64)
    }
}

/// The CPU seconds of every node together (None when no node's are known).
pub fn total_cpu_s(figures: &[NodeFigures]) -> Option<f64> {
    let known: Vec<f64> = figures.iter().filter_map(|f| f.cpu_s).collect();
    (!known.is_empty()).then(|| known.iter().sum())
}

/// Writes `report` as pretty JSON to `path`.
///
/// # Errors
/// The file cannot be written.
pub fn write_json(path: &Path, report: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n")?;
    Ok(())
}

/// Two aligned columns, a header line of dashes under the title.
pub fn table(title: &str, rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let mut out = format!("{title}\n{}\n", "-".repeat(title.chars().count()));
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<width$}  {v}");
    }
    out
}

/// `p50 1.23  p90 ...  max ... ms (n)`; `-` when nothing was recorded.
pub fn latency_cell(s: &LatencySummary) -> String {
    if s.count == 0 {
        return "-".into();
    }
    format!(
        "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms  (n={})",
        s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms, s.count
    )
}

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v}{unit}"))
}

fn errors_cell(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "none".into();
    }
    errors.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

fn cpu_cell(c: &CpuUse) -> String {
    format!(
        "hub {}  harness {}  postgres {}  redis {}  others {}  machine busy {}",
        opt(c.hub_s.map(|s| format!("{s:.1}")), " s"),
        opt(c.harness_s.map(|s| format!("{s:.1}")), " s"),
        opt(c.postgres_s.map(|s| format!("{s:.1}")), " s"),
        opt(c.redis_s.map(|s| format!("{s:.1}")), " s"),
        opt(c.others_s.map(|s| format!("{s:.1}")), " s"),
        opt(c.machine_busy_pct.map(|p| format!("{p:.0}")), "%")
    )
}

/// One row per node: CPU seconds (and where they come from), RSS before and after, and the growth
/// per socket when `sockets` (spread evenly over the nodes) is given.
pub fn server_rows(server: &[NodeFigures], sockets: Option<usize>) -> Vec<(String, String)> {
    let per_node = sockets.map(|s| s / server.len().max(1));
    server
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let cpu = match (f.cpu_s, f.cpu_source) {
                (Some(s), Some(src)) => format!("cpu {s:.1} s ({src})"),
                _ => "cpu - (no pid, no process_cpu_seconds_total)".into(),
            };
            let kib = |k: Option<f64>| k.map_or_else(|| "-".into(), |k| format!("{k:.0} KiB"));
            let per_socket = per_node
                .and_then(|n| f.rss_per_socket_kib(n))
                .map_or_else(String::new, |k| format!(", {k:.2} KiB per socket"));
            let peak = f.rss_peak_kib.map_or_else(String::new, |k| format!(" (peak {k:.0} KiB)"));
            let key = if server.len() > 1 { format!("node {}", i + 1) } else { "server".into() };
            let (before, after) = (kib(f.rss_before_kib), kib(f.rss_after_kib));
            (key, format!("{}  {cpu}  rss {before} -> {after}{peak}{per_socket}", f.url))
        })
        .collect()
}

impl ChatReport {
    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let d = &self.delivery;
        let b = &self.batch_sizes;
        let buckets = b
            .buckets
            .iter()
            .map(|b| if b.le == "+Inf" { format!("more:{}", b.batches) } else { format!("<={}:{}", b.le, b.batches) })
            .collect::<Vec<_>>()
            .join(" ");
        let rows = vec![
            ("hub".into(), self.hub.cell()),
            (
                "clients".into(),
                format!(
                    "{} users ready, {} agent sockets, {} tickets claimed",
                    self.users_ready, self.agent_sockets, self.tickets_claimed
                ),
            ),
            ("window".into(), format!("{:.1} s", self.window_s)),
            ("target rate".into(), format!("{:.0} user msgs/s", self.target_rate)),
            ("sent".into(), format!("{:.0} msgs/s (users and agents)", self.sent_per_s)),
            ("acked (stored)".into(), format!("{:.0} msgs/s ({} in the window)", self.acked_per_s, self.acked)),
            ("delivered".into(), format!("{:.0} events/s to subscribers", self.delivered_per_s)),
            ("ack latency (users)".into(), latency_cell(&self.ack_latency)),
            ("ack latency (agents)".into(), latency_cell(&self.ack_latency_agents)),
            ("e2e user->agent".into(), latency_cell(&self.e2e_user_to_agent)),
            ("e2e agent->user".into(), latency_cell(&self.e2e_agent_to_user)),
            (
                "exactly once, in order".into(),
                format!(
                    "{}: {} streams, {} events, lost {}, duplicates {}, reorders {}{}",
                    if self.delivery_ok { "OK" } else { "FAILED" },
                    d.streams,
                    d.events,
                    d.lost,
                    d.duplicates,
                    d.reorders,
                    if d.abandoned > 0 {
                        format!(" ({} streams not judged: socket failed)", d.abandoned)
                    } else {
                        String::new()
                    }
                ),
            ),
            (
                "batch size".into(),
                if b.batches > 0.0 {
                    // Only the Postgres store plans a batch again (SQLite has one writer).
                    let replans = if self.hub.backend == "sqlite" {
                        String::new()
                    } else {
                        format!("  replanned {:.0} (then locked {:.0})", b.replanned, b.locked)
                    };
                    format!("mean {:.1} over {:.0} batches  [{buckets}]{replans}", b.mean, b.batches)
                } else {
                    "-".into()
                },
            ),
            (
                "cpu in window".into(),
                format!(
                    "{}  (hub {} us per acked message)",
                    cpu_cell(&self.cpu),
                    opt(self.hub_cpu_us_per_ack.map(|u| format!("{u:.0}")), "")
                ),
            ),
        ];
        let mut rows = rows;
        if let Some(shards) = &self.redis_shards_s {
            let each = shards.iter().map(|s| format!("{s:.1} s")).collect::<Vec<_>>().join(", ");
            rows.push(("redis shards".into(), format!("cpu {each}  (in slot order)")));
        }
        if let Some(r) = &self.reconnect {
            rows.push((
                "drops".into(),
                format!(
                    "{} dropped, {} resumed, {} resent ({} already stored)",
                    r.dropped, r.resumed, r.resent, r.resent_duplicates
                ),
            ));
            rows.push(("time to resume".into(), latency_cell(&r.resume_latency)));
        }
        if let Some(a) = &self.attachments {
            rows.extend(a.rows());
        }
        rows.extend(server_rows(&self.server, None));
        rows.push(("errors".into(), errors_cell(&self.errors)));
        table(self.scenario, &rows)
    }
}

impl AttachmentFigures {
    /// The rows a chat report with attachments adds.
    fn rows(&self) -> Vec<(String, String)> {
        let how = match self.upload {
            "tus" => format!("tus in {} KiB chunks", self.chunk_bytes / 1024),
            other => other.to_owned(),
        };
        let (w, h) = self.picture_pixels;
        vec![
            (
                "attachments".into(),
                format!(
                    "{:.0}% of user messages, {how}; JPEG {w}x{h}, {} bytes",
                    100.0 * self.share,
                    self.picture_bytes
                ),
            ),
            (
                "uploads".into(),
                format!(
                    "{:.1}/s, {:.2} MB/s ({} in the window; {} begun, {} accepted, {} messages, {} seen by agents)",
                    self.uploads_per_s,
                    self.upload_bytes_per_s / 1e6,
                    self.in_window,
                    self.started,
                    self.completed,
                    self.messages,
                    self.seen_by_agents
                ),
            ),
            ("upload time".into(), latency_cell(&self.upload_latency)),
            ("ack latency (with attachment)".into(), latency_cell(&self.ack_latency)),
        ]
    }
}

impl OfflineReport {
    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let p = &self.pushes;
        let apps = if self.apps_open { "apps open" } else { "apps closed" };
        let collapse = p.collapse_ms.map_or_else(String::new, |ms| format!(", collapse window {ms} ms"));
        let mut rows = vec![
            ("hub".into(), self.hub.cell()),
            (
                "clients".into(),
                format!(
                    "{} users with a Web Push registration ({apps}), {} agent sockets, {} tickets claimed",
                    self.users_ready, self.agent_sockets, self.tickets_claimed
                ),
            ),
            ("window".into(), format!("{:.1} s", self.window_s)),
            ("target rate".into(), format!("{:.0} agent msgs/s{collapse}", self.target_rate)),
            ("sent".into(), format!("{:.0} msgs/s", self.sent_per_s)),
            ("acked (stored)".into(), format!("{:.0} msgs/s ({} in the window)", self.acked_per_s, self.acked)),
            ("ack latency (agents)".into(), latency_cell(&self.ack_latency)),
            (
                "pushes".into(),
                format!(
                    "{:.0}/s received ({} in the window, {} in the run); hub sent {}",
                    p.per_s,
                    p.in_window,
                    p.received,
                    opt(p.hub_sent_per_s.map(|r| format!("{r:.0}")), "/s")
                ),
            ),
            ("push after send".into(), latency_cell(&p.after_send)),
            ("push after ack".into(), latency_cell(&p.after_ack)),
            ("notified".into(), self.verdict()),
            (
                "push queue".into(),
                format!(
                    "hub_push_queue_depth max {}; messages waiting for a push max {}",
                    opt(p.queue_depth_max.map(|d| format!("{d:.0}")), ""),
                    p.waiting_max
                ),
            ),
            ("push failures (hub)".into(), failures_cell(&self.push_failures)),
            (
                "cpu in window".into(),
                format!(
                    "{}  (hub {} us per push, {} us per message)",
                    cpu_cell(&self.cpu),
                    opt(self.hub_cpu_us_per_push.map(|u| format!("{u:.0}")), ""),
                    opt(self.hub_cpu_us_per_message.map(|u| format!("{u:.0}")), "")
                ),
            ),
        ];
        rows.extend(server_rows(&self.server, None));
        rows.push(("errors".into(), errors_cell(&self.errors)));
        table("offline", &rows)
    }

    /// Whether every message was followed by a push (or, with the apps open, nothing was pushed).
    fn verdict(&self) -> String {
        let p = &self.pushes;
        let ok = if self.delivery_ok { "OK" } else { "FAILED" };
        if self.apps_open {
            return format!("{ok}: {} pushes to open apps ({} messages)", p.received, p.messages);
        }
        format!(
            "{ok}: {} messages; the window's {} pushes notified {} (at most {} in one); {} pushes unmatched, {} messages without a push",
            p.messages, p.measured, p.measured_messages, p.most_collapsed, p.unmatched, p.waiting
        )
    }
}

fn failures_cell(failures: &BTreeMap<String, f64>) -> String {
    let nonzero: Vec<String> = failures.iter().filter(|(_, v)| **v > 0.0).map(|(k, v)| format!("{k}={v:.0}")).collect();
    if nonzero.is_empty() {
        "none".into()
    } else {
        nonzero.join(", ")
    }
}

impl IdleReport {
    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let rows = vec![
            ("hub".into(), self.hub.cell()),
            ("requested".into(), self.requested.to_string()),
            ("authenticated".into(), format!("{} (ramp {:.1} s)", self.authenticated, self.ramp_s)),
            (
                "held at end".into(),
                format!("{} (hub_connections {})", self.held, opt(self.hub_connections.map(|c| c as u64), "")),
            ),
            ("connect+auth".into(), latency_cell(&self.connect_latency)),
            (
                "hub rss".into(),
                format!(
                    "before {}  held {}  after close {}",
                    opt(self.rss_before_kib, " KiB"),
                    opt(self.rss_held_kib, " KiB"),
                    opt(self.rss_after_close_kib, " KiB")
                ),
            ),
            ("hub rss per socket".into(), opt(self.rss_per_socket_kib.map(|k| format!("{k:.2}")), " KiB")),
            ("harness rss per socket".into(), opt(self.harness_rss_per_socket_kib.map(|k| format!("{k:.2}")), " KiB")),
            ("cpu".into(), cpu_cell(&self.cpu)),
        ];
        let mut rows = rows;
        rows.extend(server_rows(&self.server, Some(self.held)));
        rows.push(("errors".into(), errors_cell(&self.errors)));
        table("idle", &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Bucket, Metrics};

    #[test]
    fn tables_align_their_values() {
        let t = table("x", &[("a".into(), "1".into()), ("longer".into(), "2".into())]);
        assert_eq!(t, "x\n-\na       1\nlonger  2\n");
    }

    #[test]
    fn latency_cells_show_percentiles_or_a_dash() {
        let s = LatencySummary {
            count: 10,
            p50_ms: 1.0,
            p90_ms: 2.0,
            p99_ms: 3.0,
            p999_ms: 4.0,
            max_ms: 5.5,
            mean_ms: 1.2,
        };
        assert_eq!(latency_cell(&s), "p50 1.00  p90 2.00  p99 3.00  p99.9 4.00  max 5.50 ms  (n=10)");
        assert_eq!(latency_cell(&LatencySummary::default()), "-");
    }

    #[test]
    fn a_chat_report_shows_its_verdict_and_errors() {
        let mut r = ChatReport { scenario: "chat", acked_per_s: 1999.6, delivery_ok: true, ..Default::default() };
        r.errors.insert("error:overloaded".into(), 3);
        let buckets = vec![Bucket { le: "5".into(), batches: 10.0 }, Bucket { le: "+Inf".into(), batches: 2.0 }];
        r.batch_sizes = BatchSizes { batches: 12.0, messages: 60.0, mean: 5.0, buckets, replanned: 4.0, locked: 1.0 };
        let t = r.table();
        assert!(t.contains("acked (stored)          2000 msgs/s"), "{t}");
        assert!(t.contains("ack latency (agents)    -"), "{t}");
        assert!(t.contains("OK: 0 streams"), "{t}");
        assert!(t.contains("error:overloaded=3"), "{t}");
        assert!(t.contains("replanned 4 (then locked 1)"), "{t}");
        assert!(t.contains("mean 5.0 over 12 batches  [<=5:10 more:2]"), "{t}");
        assert!(!t.contains("upload"), "{t}");
        r.hub.backend = "sqlite".into();
        assert!(!r.table().contains("replanned"), "SQLite plans no batch again");
        r.delivery.lost = 1;
        r.delivery_ok = false;
        assert!(r.table().contains("FAILED"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["delivery"]["lost"], 1);
        assert_eq!(json["scenario"], "chat");
    }

    #[test]
    fn a_chat_report_with_attachments_shows_the_uploads() {
        let attachments = AttachmentFigures {
            share: 0.1,
            upload: "tus",
            chunk_bytes: 65_536,
            picture_bytes: 201_234,
            picture_pixels: (1024, 768),
            in_window: 300,
            uploads_per_s: 20.0,
            upload_bytes_per_s: 4_024_680.0,
            upload_latency: LatencySummary { count: 300, p50_ms: 12.0, p99_ms: 40.0, ..Default::default() },
            ..Default::default()
        };
        let r = ChatReport { scenario: "chat", attachments: Some(attachments), ..Default::default() };
        let t = r.table();
        assert!(t.contains("10% of user messages, tus in 64 KiB chunks; JPEG 1024x768, 201234 bytes"), "{t}");
        assert!(t.contains("20.0/s, 4.02 MB/s (300 in the window"), "{t}");
        assert!(t.contains("upload time                    p50 12.00"), "{t}");
        assert_eq!(serde_json::to_value(&r).unwrap()["attachments"]["picture_pixels"], serde_json::json!([1024, 768]));
    }

    #[test]
    fn a_burst_report_shows_rates_and_its_verdict() {
        let mut r =
            BurstReport { scenario: "burst", deliveries_per_s: 1_234_567.8, delivery_ok: true, ..Default::default() };
        r.check.missing = 0;
        r.server.push(NodeFigures {
            url: "http://127.0.0.1:1".into(),
            cpu_s: Some(2.0),
            cpu_source: Some("metrics"),
            ..Default::default()
        });
        let t = r.table();
        assert!(t.contains("1234568/s"), "{t}");
        assert!(t.contains("OK: 0 sockets"), "{t}");
        assert!(t.contains("cpu 2.0 s (metrics)"), "{t}");
        r.check.duplicates = 2;
        r.delivery_ok = false;
        assert!(r.table().contains("FAILED"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["check"]["duplicates"], 2);
        assert_eq!(json["server"][0]["cpu_source"], "metrics");
    }

    #[test]
    fn an_offline_report_shows_pushes_their_latency_and_verdict() {
        let pushes = PushFigures {
            collapse_ms: Some(200),
            received: 4_100,
            in_window: 3_990,
            per_s: 199.5,
            hub_sent_per_s: Some(199.0),
            messages: 4_120,
            measured: 3_980,
            measured_messages: 4_000,
            most_collapsed: 2,
            unmatched: 1,
            waiting: 0,
            after_send: LatencySummary { count: 3_980, p50_ms: 320.0, p99_ms: 470.0, ..Default::default() },
            queue_depth_max: Some(41.0),
            waiting_max: 90,
            ..Default::default()
        };
        let mut r = OfflineReport { scenario: "offline", pushes, delivery_ok: true, ..Default::default() };
        r.push_failures.insert("trigger_full".into(), 0.0);
        r.hub_cpu_us_per_push = Some(412.4);
        let t = r.table();
        assert!(t.contains("200/s received (3990 in the window, 4100 in the run); hub sent 199/s"), "{t}");
        assert!(t.contains("push after send       p50 320.00"), "{t}");
        assert!(t.contains("OK: 4120 messages; the window's 3980 pushes notified 4000 (at most 2 in one)"), "{t}");
        assert!(t.contains("hub_push_queue_depth max 41; messages waiting for a push max 90"), "{t}");
        assert!(t.contains("push failures (hub)   none"), "{t}");
        assert!(t.contains("(hub 412 us per push, - us per message)"), "{t}");
        assert!(t.contains("apps closed") && t.contains("collapse window 200 ms"), "{t}");
        r.push_failures.insert("trigger_full".into(), 3.0);
        r.delivery_ok = false;
        let t = r.table();
        assert!(t.contains("trigger_full=3") && t.contains("FAILED"), "{t}");
        r.apps_open = true;
        assert!(r.table().contains("FAILED: 4100 pushes to open apps (4120 messages)"), "{}", r.table());
        assert_eq!(serde_json::to_value(&r).unwrap()["pushes"]["after_send"]["p99_ms"], 470.0);
    }

    #[test]
    fn server_rows_name_nodes_and_memory_per_socket() {
        let f = |cpu| NodeFigures {
            url: "u".into(),
            cpu_s: cpu,
            cpu_source: cpu.map(|_| "proc"),
            rss_before_kib: Some(1000.0),
            rss_after_kib: Some(3000.0),
            ..Default::default()
        };
        let rows = server_rows(&[f(Some(1.0)), f(None)], Some(2000));
        assert_eq!(rows[0].0, "node 1");
        assert!(rows[0].1.contains("cpu 1.0 s (proc)") && rows[0].1.contains("2.00 KiB per socket"), "{rows:?}");
        assert!(rows[1].1.contains("cpu - "), "{rows:?}");
        assert_eq!(server_rows(&[f(None)], None)[0].0, "server");
        let peaked = NodeFigures { rss_peak_kib: Some(4096.0), ..f(None) };
        assert!(server_rows(&[peaked], None)[0].1.contains("rss 1000 KiB -> 3000 KiB (peak 4096 KiB)"));
    }

    #[test]
    fn an_idle_report_shows_memory_per_socket() {
        let r = IdleReport {
            scenario: "idle",
            requested: 5000,
            authenticated: 5000,
            held: 5000,
            rss_per_socket_kib: Some(4.567),
            ..Default::default()
        };
        let t = r.table();
        assert!(t.contains("hub rss per socket      4.57 KiB"), "{t}");
        assert!(t.contains("errors                  none"), "{t}");
    }

    #[test]
    fn node_figures_prefer_proc_and_fall_back_to_metrics() {
        let page = |cpu: f64, rss: f64| {
            Metrics::parse(&format!("process_cpu_seconds_total {cpu}\nprocess_resident_memory_bytes {rss}\n"))
        };
        let b = NodeSnapshot::new(&page(10.0, 1024.0 * 1024.0), None, None);
        let a = NodeSnapshot::new(&page(12.5, 3.0 * 1024.0 * 1024.0), None, None);
        let f = NodeFigures::between("http://127.0.0.1:1", None, &b, &a);
        assert_eq!((f.cpu_s, f.cpu_source), (Some(2.5), Some("metrics")));
        assert_eq!((f.rss_before_kib, f.rss_after_kib), (Some(1024.0), Some(3072.0)));
        assert_eq!(f.rss_per_socket_kib(1024), Some(2.0));
        assert_eq!(f.rss_per_socket_kib(0), None);

        let b = NodeSnapshot { proc_cpu_s: Some(1.0), proc_rss_kib: Some(100), ..b };
        let a = NodeSnapshot { proc_cpu_s: Some(4.0), proc_rss_kib: Some(300), ..a };
        let f = NodeFigures::between("u", Some(7), &b, &a);
        assert_eq!((f.cpu_s, f.cpu_source, f.metrics_cpu_s), (Some(3.0), Some("proc"), Some(2.5)));
        assert_eq!(f.rss_after_kib, Some(300.0));
    }

    #[test]
    fn a_hub_without_process_metrics_reports_nothing_rather_than_zero() {
        let s = NodeSnapshot::new(&Metrics::parse("hub_connections 3\n"), None, None);
        assert_eq!(s, NodeSnapshot::default());
        let f = NodeFigures::between("u", None, &s, &s);
        assert_eq!((f.cpu_s, f.cpu_source, f.rss_before_kib), (None, None, None));
        assert_eq!(total_cpu_s(&[f.clone(), f]), None);
        let known = NodeFigures { cpu_s: Some(1.5), ..Default::default() };
        assert_eq!(total_cpu_s(&[known.clone(), NodeFigures::default(), known]), Some(3.0));
    }
}
