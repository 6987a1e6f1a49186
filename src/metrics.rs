//! Logging set-up and the names of every metric, so that a log event and its counter are updated in
//! the same place and dashboards have one list to read.

use std::sync::OnceLock;

/// Gauge: open WebSocket connections on this node.
pub const CONNECTIONS: &str = "hub_connections";
/// Counter: WebSocket connections accepted since start.
pub const CONNECTIONS_TOTAL: &str = "hub_connections_total";
/// Counter: WebSocket closes, by `reason` (the close code's name).
pub const DISCONNECTS: &str = "hub_disconnects_total";
/// Counter: frames received, by `type` (`invalid` for undecodable ones).
pub const FRAMES_IN: &str = "hub_frames_in_total";
/// Counter: frames sent, by `type`.
pub const FRAMES_OUT: &str = "hub_frames_out_total";
/// Counter: errors sent to clients (socket and HTTP), by `code`.
pub const ERRORS: &str = "hub_errors_total";
/// Counter: sign-in codes sent by SMS (test numbers excluded).
pub const OTP_SENT: &str = "hub_otp_sent_total";
/// Counter: SMS sends that failed after retries.
pub const SMS_FAILURES: &str = "hub_sms_failures_total";
/// Counter: times the hourly SMS budget refused a code.
pub const SMS_BUDGET_TRIPS: &str = "hub_sms_budget_exhausted_total";
/// Counter: successful sign-ins.
pub const SIGN_INS: &str = "hub_sign_ins_total";
/// Counter: accounts moved to a new mobile number.
pub const PHONE_CHANGES: &str = "hub_phone_changes_total";
/// Counter: accounts deleted by their users.
pub const ACCOUNTS_DELETED: &str = "hub_accounts_deleted_total";
/// Counter: exports of all of an account's data served (label `outcome`: `complete` or `failed`).
pub const EXPORTS: &str = "hub_exports_total";
/// Histogram (seconds): HTTP request latency, by `route` and `status`.
pub const HTTP_LATENCY: &str = "hub_http_request_duration_seconds";
/// Histogram: messages per group-commit batch.
pub const BATCH_SIZE: &str = "hub_message_batch_size";
/// Counter (Postgres): messages of a batch planned again because their ticket changed between what
/// the batch was planned from (its read, or the state the node knew) and its write, or because that
/// write found an earlier copy of one; by what came next (label `way`: `checked`, read and planned
/// again; `locked`, stored under the tickets' row locks after the last checked round).
pub const MESSAGE_REPLANS: &str = "hub_message_replans_total";
/// Gauge (SQLite): WAL pages the last background checkpoint could not copy into the database file.
/// It is 0 unless a reader holds an old snapshot (an open transaction in an operator's `sqlite3`
/// shell, say), and while it is not, the WAL grows.
pub const SQLITE_WAL_PENDING: &str = "hub_sqlite_wal_pending_pages";
/// Counter: messages stored (acknowledged).
pub const MESSAGES_STORED: &str = "hub_messages_stored_total";
/// Counter: gaps in a ticket's stream that a socket filled from storage before writing the event
/// after them: an event that reached the socket before an earlier one, or one this node never heard.
pub const STREAM_GAPS: &str = "hub_stream_gaps_filled_total";
/// Counter: tickets opened.
pub const TICKETS_OPENED: &str = "hub_tickets_opened_total";
/// Histogram (seconds): socket request latency, by `type`.
pub const WS_LATENCY: &str = "hub_ws_request_duration_seconds";
/// Counter: operator announcements sent.
pub const ANNOUNCEMENTS: &str = "hub_announcements_total";
/// Counter: cluster envelopes (events, revocations) published to Redis.
pub const CLUSTER_PUBLISHED: &str = "hub_cluster_published_total";
/// Counter: cluster envelopes not published (Redis down or the publish queue full); the sweep
/// recovers ticket events, the session re-check revocations.
pub const CLUSTER_PUBLISH_DROPPED: &str = "hub_cluster_publish_dropped_total";
/// Counter: cluster envelopes received from other nodes.
pub const CLUSTER_RECEIVED: &str = "hub_cluster_received_total";
/// Gauge: 1 while the node's Redis pub/sub link is up.
pub const CLUSTER_LINK_UP: &str = "hub_cluster_link_up";
/// Counter: tickets whose events this node found in storage after missing their publication.
pub const CLUSTER_RECOVERED: &str = "hub_cluster_recovered_total";
/// Counter: dead nodes whose people this node announced offline.
pub const NODES_REAPED: &str = "hub_cluster_nodes_reaped_total";

/// Counter: telemetry events stored, by `kind` (`device`, `view`, `connection`, `settings`).
pub const TELEMETRY_ACCEPTED: &str = "hub_telemetry_accepted_total";
/// Counter: telemetry events refused because the user's consent is off, by `kind` (`view`,
/// `settings`).
pub const TELEMETRY_REFUSED_CONSENT: &str = "hub_telemetry_refused_consent_total";
/// Counter: telemetry frames and settings documents rejected as malformed (wrong types or out of
/// the schema's limits), by `kind`.
pub const TELEMETRY_MALFORMED: &str = "hub_telemetry_malformed_total";
/// Counter: telemetry events not taken because the pipeline's queue was full, by `kind` (apps got
/// `overloaded`; connection records are lost).
pub const TELEMETRY_DROPPED: &str = "hub_telemetry_dropped_total";
/// Histogram: writes per telemetry transaction.
pub const TELEMETRY_BATCH_SIZE: &str = "hub_telemetry_batch_size";
/// Counter: rows deleted by the retention purge, by `kind` (`view`, `device`, `connection`).
pub const TELEMETRY_PURGED: &str = "hub_telemetry_purged_total";

/// Counter: purchase reports from billing, by `outcome`: `created`, `updated`, `duplicate`, or the
/// error code of a refused one (`bad_signature`, `stale_signature`, `conflict`, `not_found`, ...).
pub const PURCHASE_REPORTS: &str = "hub_purchase_reports_total";
/// Counter: push registrations stored, by `provider`.
pub const PUSH_REGISTRATIONS: &str = "hub_push_registrations_total";
/// Counter: notifications a provider took, by `provider`.
pub const PUSH_SENT: &str = "hub_push_sent_total";
/// Counter: deliveries that did not go through, by `provider` and `reason` (`gone`, `expired`,
/// `status_503`, `network`, `trigger_full`, ...).
pub const PUSH_FAILED: &str = "hub_push_failed_total";
/// Gauge: notifications waiting in the push queue (all nodes).
pub const PUSH_QUEUE_DEPTH: &str = "hub_push_queue_depth";
/// Gauge: age of the oldest waiting notification, in seconds.
pub const PUSH_QUEUE_OLDEST: &str = "hub_push_queue_oldest_seconds";
/// Counter: agents' private notes stored.
pub const NOTES_STORED: &str = "hub_notes_stored_total";
/// Counter: ratings users gave resolved tickets, by `score` (1 to 5).
pub const RATINGS: &str = "hub_ratings_total";
/// Histogram: from a ticket's (re)opening to the first message of an agent, in seconds, observed
/// when the ticket is resolved (a reply after a transfer counts for the agent who wrote it).
pub const FIRST_RESPONSE: &str = "hub_first_response_seconds";
/// Histogram: from a ticket's (re)opening to its claim (by an agent or auto-assignment), in seconds.
pub const QUEUE_WAIT: &str = "hub_queue_wait_seconds";
/// Histogram: from a ticket's (re)opening to its resolution, in seconds.
pub const RESOLUTION: &str = "hub_resolution_seconds";
/// The buckets of the batch-size histograms.
const BATCH_BUCKETS: [f64; 12] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0];
/// The buckets of the support-time histograms: ten seconds to a week.
const SUPPORT_TIME_BUCKETS: [f64; 14] =
    [10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 259_200.0, 604_800.0];
/// Counter: auto-assignment rounds this node ran while tickets waited (each reads the online team
/// and hands out what it can): after a change to the queue made on this node, and at its safety
/// round; never for a change another node told of.
pub const AUTO_ASSIGN_ROUNDS: &str = "hub_auto_assign_rounds_total";
/// Gauge: tickets waiting in the queue (open, no agent), in the whole deployment.
pub const QUEUE_TICKETS: &str = "hub_queue_tickets";
/// Gauge: how long the ticket waiting longest has waited, in seconds (0 with an empty queue).
pub const QUEUE_OLDEST_WAIT: &str = "hub_queue_oldest_wait_seconds";
/// Gauge: agents connected anywhere, by `status` (`available`, `busy`, `away`).
pub const AGENTS_ONLINE: &str = "hub_agents_online";
/// Gauge: tickets the connected, available agents can still take (capacity minus held, summed).
pub const AGENTS_FREE_CAPACITY: &str = "hub_agents_free_capacity";
/// Gauge: tickets an agent holds, by `agent_id` (connected agents, and those still holding tickets).
pub const AGENT_TICKETS: &str = "hub_agent_tickets";
/// Gauge: an agent's capacity, by `agent_id` (the same agents as [`AGENT_TICKETS`]).
pub const AGENT_CAPACITY: &str = "hub_agent_capacity";
/// Counter: SMS reminders of unread replies, by outcome (`sent`, `read`, `no_consent`,
/// `push_target`, `budget`, `failed`, `given_up`).
pub const SMS_REMINDERS: &str = "hub_sms_reminders_total";
/// Counter: uploads whose content was checked and stored, by `kind` (`image`, `file`).
pub const ATTACHMENTS_STORED: &str = "hub_attachments_stored_total";
/// Counter: uploads removed because they reached no message before they expired.
pub const ATTACHMENTS_EXPIRED: &str = "hub_attachments_expired_total";
/// Counter: bytes received in upload pieces.
pub const UPLOAD_BYTES: &str = "hub_upload_bytes_total";

/// Installs the process-wide tracing subscriber (`RUST_LOG` filters; default `info`).
/// Safe to call more than once: later calls do nothing.
pub fn init_logging(format: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::{fmt, EnvFilter};
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        // Colour codes only for a person at a terminal: a file or a log collector gets plain text.
        let builder = fmt().with_env_filter(filter).with_target(false).with_ansi(std::io::stdout().is_terminal());
        let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
    });
}

/// The process's own figures (`process_cpu_seconds_total`, `process_resident_memory_bytes`, open
/// files, threads), refreshed at each scrape of `/metrics`: what an operator (and the load harness)
/// needs to see CPU and memory per socket without shell access to the node.
pub fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let collector = metrics_process::Collector::default();
        collector.describe();
        collector
    })
}

/// Gauge: bytes the program holds in live allocations (jemalloc's `stats.allocated`).
pub const ALLOCATED_BYTES: &str = "hub_allocator_allocated_bytes";
/// Gauge: bytes jemalloc keeps resident for the program (`stats.resident`): above the allocated bytes by
/// what it holds freed but not yet returned to the kernel.
pub const ALLOCATOR_RESIDENT_BYTES: &str = "hub_allocator_resident_bytes";

/// Reads the allocator's figures into their gauges (at each scrape, beside the process figures):
/// resident memory that is not allocated is memory a burst freed and the allocator still holds.
/// All zero when the hub runs under another global allocator (the library's tests).
pub fn collect_allocator() {
    if tikv_jemalloc_ctl::epoch::advance().is_err() {
        return;
    }
    if let (Ok(allocated), Ok(resident)) =
        (tikv_jemalloc_ctl::stats::allocated::read(), tikv_jemalloc_ctl::stats::resident::read())
    {
        metrics::gauge!(ALLOCATED_BYTES).set(allocated as f64);
        metrics::gauge!(ALLOCATOR_RESIDENT_BYTES).set(resident as f64);
    }
}

/// How often the samples recorded into histograms are folded into their buckets. The exporter keeps
/// each sample (about 20 bytes with its share of the block) until it folds them, which it does when
/// `/metrics` is read or on this timer: without the timer a node that nobody scrapes holds a sample
/// for every request it ever answered.
pub const HISTOGRAM_UPKEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// The process-wide Prometheus recorder, with a thread that folds histogram samples every
/// [`HISTOGRAM_UPKEEP`]. Installed once: several hubs in one process (tests) share it.
pub fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let latency_buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let mut builder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(&latency_buckets)
            .expect("static, non-empty bucket list");
        // Batch sizes are counts: powers of two up to the writers' largest batch.
        for name in [BATCH_SIZE, TELEMETRY_BATCH_SIZE] {
            builder = builder
                .set_buckets_for_metric(metrics_exporter_prometheus::Matcher::Full(name.to_owned()), &BATCH_BUCKETS)
                .expect("static, non-empty bucket list");
        }
        for name in [FIRST_RESPONSE, QUEUE_WAIT, RESOLUTION] {
            builder = builder
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(name.to_owned()),
                    &SUPPORT_TIME_BUCKETS,
                )
                .expect("static, non-empty bucket list");
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let _ = HOT.set(Hot::registered_with(&recorder));
        // Fails only if another recorder was installed first; then our handle renders nothing,
        // which is visible on /metrics rather than fatal.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        zero();
        let upkeep = handle.clone();
        let started = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
            std::thread::sleep(HISTOGRAM_UPKEEP);
            upkeep.run_upkeep();
        });
        if let Err(e) = started {
            tracing::error!(error = %e, "no metrics upkeep thread: histogram samples are folded only when /metrics is read");
        }
        handle
    })
}

/// Handles of the metrics that every message moves, found in the recorder once. The macros find a
/// metric in the recorder's registry on every call (they build its key, hash it and look it up under
/// a lock); several times per message that came to about 2% of the hub's CPU.
struct Hot {
    messages_stored: metrics::Counter,
    /// [`WS_LATENCY`] of the kinds a conversation sends.
    latency: [(&'static str, metrics::Histogram); 1],
    /// [`FRAMES_IN`] of the kinds a conversation sends.
    frames_in: [(&'static str, metrics::Counter); 1],
    /// [`FRAMES_OUT`] of the kinds a conversation's messages are written as.
    frames_out: [(&'static str, metrics::Counter); 4],
}

/// The [`Hot`] handles, found in the Prometheus recorder as [`prometheus`] installs it.
static HOT: OnceLock<Hot> = OnceLock::new();

impl Hot {
    /// The handles, registered with `recorder` itself rather than through the macros, which use
    /// whatever recorder is current on the calling thread (a test's own, say) and would keep it.
    fn registered_with(recorder: &impl metrics::Recorder) -> Self {
        let meta = metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));
        let by_type = |name: &'static str, kind: &'static str| {
            metrics::Key::from_parts(name, vec![metrics::Label::new("type", kind)])
        };
        let counter = |name, kind| (kind, recorder.register_counter(&by_type(name, kind), &meta));
        Self {
            messages_stored: recorder.register_counter(&metrics::Key::from_static_name(MESSAGES_STORED), &meta),
            latency: ["ticket.send"].map(|kind| (kind, recorder.register_histogram(&by_type(WS_LATENCY, kind), &meta))),
            frames_in: [counter(FRAMES_IN, "ticket.send")],
            frames_out: ["ticket.send.ok", "ticket.event", "ticket.updated", "ticket.receipt"]
                .map(|kind| counter(FRAMES_OUT, kind)),
        }
    }
}

/// The [`Hot`] handles (installing the recorder first, if it is not yet).
fn hot() -> &'static Hot {
    prometheus();
    HOT.get_or_init(|| Hot::registered_with(&metrics::NoopRecorder))
}

/// The handle of `kind` among `found`, if it is one of them.
fn by_kind<'a, H>(found: &'a [(&'static str, H)], kind: &str) -> Option<&'a H> {
    found.iter().find(|(k, _)| *k == kind).map(|(_, handle)| handle)
}

/// Counts a frame received, of `kind` ([`FRAMES_IN`]).
pub fn frame_in(kind: &'static str) {
    match by_kind(&hot().frames_in, kind) {
        Some(counter) => counter.increment(1),
        None => metrics::counter!(FRAMES_IN, "type" => kind).increment(1),
    }
}

/// Counts `n` frames sent, of `kind` ([`FRAMES_OUT`]).
pub fn frames_out(kind: &'static str, n: u64) {
    match by_kind(&hot().frames_out, kind) {
        Some(counter) => counter.increment(n),
        None => metrics::counter!(FRAMES_OUT, "type" => kind).increment(n),
    }
}

/// Records how long a socket request of `kind` took ([`WS_LATENCY`]).
pub fn request_took(kind: &'static str, took: std::time::Duration) {
    match by_kind(&hot().latency, kind) {
        Some(histogram) => histogram.record(took.as_secs_f64()),
        None => metrics::histogram!(WS_LATENCY, "type" => kind).record(took.as_secs_f64()),
    }
}

/// Counts a message stored and acknowledged ([`MESSAGES_STORED`]).
pub fn message_stored() {
    hot().messages_stored.increment(1);
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(CONNECTIONS, "open WebSocket connections");
    describe_counter!(CONNECTIONS_TOTAL, "WebSocket connections accepted");
    describe_counter!(DISCONNECTS, "WebSocket closes by reason");
    describe_counter!(FRAMES_IN, "frames received by type");
    describe_counter!(FRAMES_OUT, "frames sent by type");
    describe_counter!(ERRORS, "errors sent to clients by code");
    describe_counter!(OTP_SENT, "sign-in codes sent by SMS");
    describe_counter!(SMS_FAILURES, "SMS sends that failed after retries");
    describe_counter!(SMS_BUDGET_TRIPS, "codes refused by the hourly SMS budget");
    describe_counter!(SIGN_INS, "successful sign-ins");
    describe_counter!(PHONE_CHANGES, "accounts moved to a new mobile number");
    describe_counter!(ACCOUNTS_DELETED, "accounts deleted by their users");
    describe_counter!(EXPORTS, "account data exports served, by outcome");
    describe_histogram!(HTTP_LATENCY, Unit::Seconds, "HTTP request latency");
    describe_histogram!(WS_LATENCY, Unit::Seconds, "socket request latency");
    describe_histogram!(BATCH_SIZE, "messages per group-commit batch");
    describe_counter!(MESSAGES_STORED, "messages stored and acknowledged");
    describe_counter!(STREAM_GAPS, "gaps in a ticket's stream a socket filled from storage");
    describe_counter!(AUTO_ASSIGN_ROUNDS, "auto-assignment rounds run on this node");
    describe_gauge!(SQLITE_WAL_PENDING, "SQLite: WAL pages the last background checkpoint could not copy");
    describe_counter!(MESSAGE_REPLANS, "messages planned again because their ticket changed under the batch, by way");
    describe_counter!(TICKETS_OPENED, "tickets opened");
    describe_counter!(TELEMETRY_ACCEPTED, "telemetry events stored, by kind");
    describe_counter!(TELEMETRY_REFUSED_CONSENT, "telemetry events refused by consent, by kind");
    describe_counter!(TELEMETRY_MALFORMED, "telemetry frames rejected as malformed, by kind");
    describe_counter!(TELEMETRY_DROPPED, "telemetry events dropped by a full pipeline, by kind");
    describe_histogram!(TELEMETRY_BATCH_SIZE, "writes per telemetry transaction");
    describe_counter!(TELEMETRY_PURGED, "telemetry rows deleted by retention, by kind");
    describe_counter!(PURCHASE_REPORTS, "purchase reports from billing, by outcome");
    describe_counter!(ATTACHMENTS_STORED, "uploads checked and stored, by kind");
    describe_counter!(PUSH_REGISTRATIONS, "push registrations stored, by provider");
    describe_counter!(PUSH_SENT, "push notifications a provider took, by provider");
    describe_counter!(PUSH_FAILED, "push deliveries that did not go through, by provider and reason");
    describe_gauge!(PUSH_QUEUE_DEPTH, "push notifications waiting (all nodes)");
    describe_gauge!(PUSH_QUEUE_OLDEST, Unit::Seconds, "age of the oldest waiting push notification");
    describe_counter!(NOTES_STORED, "agents' private notes on tickets stored");
    describe_counter!(RATINGS, "ratings users gave resolved tickets, by score");
    describe_histogram!(FIRST_RESPONSE, Unit::Seconds, "from a ticket's (re)opening to an agent's first message");
    describe_histogram!(QUEUE_WAIT, Unit::Seconds, "from a ticket's (re)opening to its claim");
    describe_histogram!(RESOLUTION, Unit::Seconds, "from a ticket's (re)opening to its resolution");
    describe_counter!(SMS_REMINDERS, "SMS reminders of unread agent replies, by outcome (sent, or why not)");
    describe_counter!(ATTACHMENTS_EXPIRED, "uploads removed unattached after they expired");
    describe_counter!(UPLOAD_BYTES, Unit::Bytes, "bytes received in upload pieces");
    describe_counter!(ANNOUNCEMENTS, "operator announcements sent");
    describe_counter!(CLUSTER_PUBLISHED, "cluster envelopes published to Redis");
    describe_counter!(CLUSTER_PUBLISH_DROPPED, "cluster envelopes not published (Redis down or queue full)");
    describe_counter!(CLUSTER_RECEIVED, "cluster envelopes received from other nodes");
    describe_gauge!(CLUSTER_LINK_UP, "1 while the node's Redis pub/sub link is up");
    describe_counter!(CLUSTER_RECOVERED, "tickets whose events the sweep found after a missed publication");
    describe_counter!(NODES_REAPED, "dead nodes whose people this node announced offline");
    describe_gauge!(ALLOCATED_BYTES, Unit::Bytes, "bytes in live allocations (jemalloc stats.allocated)");
    describe_gauge!(ALLOCATOR_RESIDENT_BYTES, Unit::Bytes, "bytes jemalloc keeps resident (stats.resident)");
    describe_gauge!(QUEUE_TICKETS, "tickets waiting in the queue (whole deployment; every node reports it)");
    describe_gauge!(QUEUE_OLDEST_WAIT, Unit::Seconds, "wait of the ticket waiting longest (whole deployment)");
    describe_gauge!(AGENTS_ONLINE, "agents connected anywhere, by status");
    describe_gauge!(AGENTS_FREE_CAPACITY, "tickets the connected, available agents can still take");
    describe_gauge!(AGENT_TICKETS, "tickets an agent holds, by agent_id");
    describe_gauge!(AGENT_CAPACITY, "an agent's capacity, by agent_id");
}

/// Every counter and gauge from the start, at 0, with each label value that comes from a fixed
/// set: a counter that appears only when it first counts makes `rate()` and `absent()` alerts
/// misread the time before. Counters labelled by open sets (errors by code, frames by type, closes
/// by reason) start with the values alerts watch.
fn zero() {
    for name in [
        CONNECTIONS_TOTAL,
        OTP_SENT,
        SMS_FAILURES,
        SMS_BUDGET_TRIPS,
        SIGN_INS,
        PHONE_CHANGES,
        ACCOUNTS_DELETED,
        MESSAGES_STORED,
        STREAM_GAPS,
        AUTO_ASSIGN_ROUNDS,
        TICKETS_OPENED,
        ANNOUNCEMENTS,
        CLUSTER_PUBLISHED,
        CLUSTER_PUBLISH_DROPPED,
        CLUSTER_RECEIVED,
        CLUSTER_RECOVERED,
        NODES_REAPED,
        NOTES_STORED,
        ATTACHMENTS_EXPIRED,
        UPLOAD_BYTES,
    ] {
        metrics::counter!(name).absolute(0);
    }
    let labelled: [(&str, &str, &[&str]); 17] = [
        (MESSAGE_REPLANS, "way", &["checked", "locked"]),
        (FRAMES_IN, "type", &["auth", "ticket.send"]),
        (FRAMES_OUT, "type", &["auth.ok", "ticket.event"]),
        (DISCONNECTS, "reason", &["gone", "service_restart", "slow_consumer", "task_ended"]),
        (PURCHASE_REPORTS, "outcome", &["created", "bad_signature"]),
        (EXPORTS, "outcome", &["complete", "failed"]),
        (RATINGS, "score", &["1", "2", "3", "4", "5"]),
        (ATTACHMENTS_STORED, "kind", &["image", "file"]),
        (TELEMETRY_ACCEPTED, "kind", &["device", "view", "connection", "settings"]),
        (TELEMETRY_REFUSED_CONSENT, "kind", &["view", "settings"]),
        (TELEMETRY_MALFORMED, "kind", &["device", "view", "connection", "settings"]),
        (TELEMETRY_DROPPED, "kind", &["device", "view", "connection"]),
        (TELEMETRY_PURGED, "kind", &["view", "device", "connection"]),
        (PUSH_REGISTRATIONS, "provider", &["webpush", "fcm", "apns"]),
        (PUSH_SENT, "provider", &["webpush", "fcm", "apns"]),
        (ERRORS, "code", &["internal", "unavailable", "overloaded", "rate_limited", "unauthorized"]),
        (SMS_REMINDERS, "outcome", &["sent", "failed"]),
    ];
    for (name, label, values) in labelled {
        for value in values {
            metrics::counter!(name, label => *value).absolute(0);
        }
    }
    metrics::counter!(PUSH_FAILED, "provider" => "any", "reason" => "not_queued").absolute(0);
    for name in
        [CONNECTIONS, QUEUE_TICKETS, QUEUE_OLDEST_WAIT, AGENTS_FREE_CAPACITY, PUSH_QUEUE_DEPTH, PUSH_QUEUE_OLDEST]
    {
        metrics::gauge!(name).set(0.0);
    }
    for status in ["available", "busy", "away"] {
        metrics::gauge!(AGENTS_ONLINE, "status" => status).set(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of `series` (name and labels as rendered) on the process's `/metrics`, 0 if absent.
    fn value(series: &str) -> f64 {
        let rendered = prometheus().render();
        rendered.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
    }

    #[test]
    fn the_handles_found_once_count_where_the_macros_would() {
        let series = [
            "hub_frames_in_total{type=\"ticket.send\"}",
            "hub_frames_in_total{type=\"ticket.note\"}",
            "hub_frames_out_total{type=\"ticket.event\"}",
            "hub_frames_out_total{type=\"ticket.note\"}",
            "hub_messages_stored_total",
            "hub_ws_request_duration_seconds_count{type=\"ticket.send\"}",
            "hub_ws_request_duration_seconds_count{type=\"ticket.note\"}",
        ];
        let before = series.map(value);
        frame_in("ticket.send");
        frame_in("ticket.note");
        frames_out("ticket.event", 3);
        frames_out("ticket.note", 2);
        message_stored();
        request_took("ticket.send", std::time::Duration::from_millis(2));
        request_took("ticket.note", std::time::Duration::from_millis(2));
        let added: Vec<f64> = series.iter().zip(before).map(|(s, b)| value(s) - b).collect();
        assert_eq!(added, [1.0, 1.0, 3.0, 2.0, 1.0, 1.0, 1.0], "{series:?}");
    }
}
