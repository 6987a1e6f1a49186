//! The `burst` scenario: the fan-out path. N recipient sockets (test users, several sockets per
//! user) are opened and authenticated; then the harness, as an operator, posts announcements
//! (`POST /v1/admin/announcements`) at a rate, with a bounded number in flight, and every socket
//! must receive every accepted announcement exactly once.
//!
//! The receiving side is kept cheap so that the harness is not what saturates: a socket does not
//! decode its frames. Each announcement's text carries a per-run marker and its number
//! (`lt<run>#00000042`), which the receiver finds in the raw bytes of the text (JSON) or binary
//! (MessagePack, where the text is a plain `str`) frame; a per-socket bitset says whether it came
//! before. Latencies (the harness's clock when it sent the POST to the socket's receipt) are
//! gathered per socket and recorded into the shared histograms in batches.

use crate::cluster::Cluster;
use crate::hub::{CpuSnapshot, HubArgs};
use crate::report::{total_cpu_s, BurstReport, FanOutCheck};
use crate::signin;
use crate::stats::{spawn_progress, Clock, Histograms, Latency, Live, Progress};
use crate::wire::{Body, Conn, ConnError, Frame};
use crate::ClientArgs;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// Latencies a socket gathers before it records them (also at each new second, and at once while
/// draining).
const BATCH: usize = 128;

/// Parameters of `burst`. The defaults are the preset: about 30 s.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct BurstArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub hub: HubArgs,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Recipient sockets.
    #[arg(long, default_value_t = 2000)]
    pub sockets: usize,
    /// Test users signed in (sockets share their tokens round robin); default one per 4 sockets.
    #[arg(long)]
    pub users: Option<usize>,
    /// Announcements posted per second (0: back to back, as fast as --in-flight allows).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Announcement POSTs in flight at once.
    #[arg(long, default_value_t = 8)]
    pub in_flight: usize,
    /// Seconds of announcements in the measured window.
    #[arg(long, default_value_t = 15)]
    pub duration: u64,
    /// Seconds of announcements before the measured window (checked, not measured).
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Length of each announcement's text in bytes (at least the marker's 17).
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,
    /// Who the announcements go to: `users`, `agents` or `everyone` (the recipients are users).
    #[arg(long, default_value = "users")]
    pub audience: String,
    /// Most announcements in one run (bounds the harness's memory: one bit per socket each).
    #[arg(long, default_value_t = 50_000)]
    pub max_announcements: usize,
    /// Seconds to wait for the last deliveries after the last POST.
    #[arg(long, default_value_t = 10)]
    pub drain: u64,
    /// Seconds the sockets are then held open and idle before the hub's memory is read again: the
    /// idle figure "after a burst of traffic" (what the hub gives back once the burst is over).
    #[arg(long, default_value_t = 12)]
    pub settle: u64,
}

/// Where an announcement is (0: not posted yet).
const POSTING: u8 = 1;
const ACCEPTED: u8 = 2;
const FAILED: u8 = 3;

/// One announcement, shared by the sender and every receiver.
#[derive(Debug, Default)]
pub struct Slot {
    /// Harness clock (µs) when its POST was sent; written before the POST leaves.
    posted_us: AtomicU64,
    state: AtomicU8,
    /// Posted in the measured window.
    measured: AtomicBool,
    /// First and last receipt by any socket (µs), for the spread.
    first_us: AtomicU64,
    last_us: AtomicU64,
    /// Sockets that received it (first receipts only).
    delivered: AtomicU32,
}

impl Slot {
    fn new() -> Self {
        Self { first_us: AtomicU64::new(u64::MAX), ..Self::default() }
    }

    /// Notes a receipt at `at_us` (rarely writes: only a new first or last).
    fn receipt(&self, at_us: u64) {
        if at_us < self.first_us.load(Ordering::Relaxed) {
            self.first_us.fetch_min(at_us, Ordering::Relaxed);
        }
        if at_us > self.last_us.load(Ordering::Relaxed) {
            self.last_us.fetch_max(at_us, Ordering::Relaxed);
        }
    }
}

/// The per-run marker in every announcement's text: `lt<6 hex digits>#`, then 8 decimal digits.
pub fn marker(run: u32) -> Vec<u8> {
    format!("lt{:06x}#", run & 0xff_ffff).into_bytes()
}

/// Announcement `n`'s text: the marker, its number, and padding to `bytes` bytes.
pub fn announcement_text(marker: &[u8], n: usize, bytes: usize) -> String {
    let mut text = format!("{}{n:08} ", String::from_utf8_lossy(marker));
    while text.len() < bytes {
        text.push('x');
    }
    text
}

/// The announcement number in a raw frame (JSON text or MessagePack), if it carries `marker`.
pub fn find_announcement(payload: &[u8], marker: &[u8]) -> Option<usize> {
    let at = memchr::memmem::find(payload, marker)? + marker.len();
    let digits = payload.get(at..at + 8)?;
    digits.iter().try_fold(0usize, |n, &d| d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0')))
}

/// What one socket received, announcement by announcement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// One bit per announcement number.
    seen: Vec<u64>,
    /// First receipts.
    pub received: u64,
    /// Repeats of an announcement received before.
    pub duplicates: u64,
    /// Marked frames with a number the harness never posted.
    pub unknown: u64,
}

/// What a receipt was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// The first copy.
    First,
    /// A repeat.
    Duplicate,
    /// A number beyond the announcements the run can post.
    Unknown,
}

impl Account {
    /// Notes announcement `n` (of at most `limit`).
    pub fn receive(&mut self, n: usize, limit: usize) -> Receipt {
        if n >= limit {
            self.unknown += 1;
            return Receipt::Unknown;
        }
        let (word, bit) = (n / 64, 1u64 << (n % 64));
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & bit != 0 {
            self.duplicates += 1;
            return Receipt::Duplicate;
        }
        self.seen[word] |= bit;
        self.received += 1;
        Receipt::First
    }

    /// Whether announcement `n` arrived.
    pub fn has(&self, n: usize) -> bool {
        self.seen.get(n / 64).is_some_and(|w| w & (1u64 << (n % 64)) != 0)
    }

    /// Announcements in `accepted` that never arrived.
    pub fn missing(&self, accepted: &[usize]) -> u64 {
        accepted.iter().filter(|&&n| !self.has(n)).count() as u64
    }

    /// Adds this socket's account to the verdict over every socket, given the accepted
    /// announcements.
    pub fn tally(&self, check: &mut FanOutCheck, accepted: &[usize], failed: bool) {
        check.sockets += 1;
        check.sockets_failed += u64::from(failed);
        check.expected += accepted.len() as u64;
        let missing = self.missing(accepted);
        check.missing += missing;
        check.delivered += accepted.len() as u64 - missing;
        check.unconfirmed += self.received.saturating_sub(accepted.len() as u64 - missing);
        check.duplicates += self.duplicates;
        check.unknown += self.unknown;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Run,
    Drain,
    Done,
}

struct Ctx {
    live: Arc<Live>,
    clock: Clock,
    hubs: Vec<SocketAddr>,
    sources: Vec<IpAddr>,
    args: BurstArgs,
    setup: Semaphore,
    marker: Vec<u8>,
    slots: Vec<Slot>,
}

/// Latencies gathered by one socket before they are recorded.
struct Pending {
    items: Vec<(u64, bool)>,
    second: u64,
}

impl Pending {
    fn flush(&mut self, live: &Live) {
        if self.items.is_empty() {
            return;
        }
        live.record_batch(|h: &mut Histograms| &mut h.delivery, &self.items);
        live.delivered.fetch_add(self.items.len() as u64, Ordering::Relaxed);
        self.items.clear();
    }
}

/// One recipient socket: authenticate, then count announcements until told to stop. Returns what
/// it received and whether it failed before the end; None when it never got ready.
async fn recipient(
    ctx: Arc<Ctx>,
    i: usize,
    token: Arc<String>,
    ready: oneshot::Sender<bool>,
    mut phase: watch::Receiver<Phase>,
) -> Option<(Account, bool)> {
    let mut account = Account::default();
    let setup = async {
        let _permit = ctx.setup.acquire().await;
        let encoding = ctx.args.client.encoding.for_socket(i);
        let hub = ctx.hubs[i % ctx.hubs.len()];
        let mut conn = Conn::connect(hub, ctx.sources[i % ctx.sources.len()], encoding).await?;
        let mut ignore = |_f: Frame| {};
        let auth = conn.request("auth", Body::Auth { token: &token }, &mut ignore).await?;
        if auth.kind != "auth.ok" {
            return Err(ConnError::Refused(format!("auth:{}", auth.code.as_deref().unwrap_or(&auth.kind))));
        }
        Ok(conn)
    };
    let mut conn = match setup.await {
        Ok(c) => c,
        Err(e) => {
            ctx.live.error(e.key());
            let _ = ready.send(false);
            return None;
        }
    };
    ctx.live.sockets.fetch_add(1, Ordering::Relaxed);
    let _ = ready.send(true);
    let mut pending = Pending { items: Vec::with_capacity(BATCH), second: 0 };
    let mut draining = false;
    let mut failed = false;
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() { break; }
                let now = *phase.borrow_and_update();
                pending.flush(&ctx.live);
                draining = now == Phase::Drain;
                if now == Phase::Done { break; }
            }
            message = conn.recv_message() => match message {
                Ok(m) => on_message(&ctx, &m, &mut account, &mut pending, draining),
                Err(e) => {
                    ctx.live.error(e.key());
                    failed = true;
                    break;
                }
            },
        }
    }
    pending.flush(&ctx.live);
    ctx.live.sockets.fetch_sub(1, Ordering::Relaxed);
    if !failed {
        conn.close().await;
    }
    Some((account, failed))
}

fn on_message(ctx: &Ctx, m: &Message, account: &mut Account, pending: &mut Pending, draining: bool) {
    let payload: &[u8] = match m {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        _ => return,
    };
    let Some(n) = find_announcement(payload, &ctx.marker) else {
        // Not ours: say what it was (rare, so decoding it is fine).
        let kind = crate::wire::decode(m).ok().flatten().map_or_else(|| "undecodable".into(), |f| f.kind);
        return ctx.live.error(format!("frame:{kind}"));
    };
    if account.receive(n, ctx.slots.len()) != Receipt::First {
        return;
    }
    let now = ctx.clock.now();
    let slot = &ctx.slots[n];
    slot.receipt(now);
    slot.delivered.fetch_add(1, Ordering::Relaxed);
    let posted = slot.posted_us.load(Ordering::Acquire);
    let latency = now.saturating_sub(posted);
    let second = now / 1_000_000;
    if pending.second != second || pending.items.len() >= BATCH {
        pending.flush(&ctx.live);
        pending.second = second;
    }
    pending.items.push((latency, slot.measured.load(Ordering::Relaxed)));
    if draining {
        pending.flush(&ctx.live);
    }
}

/// Posts announcements at the rate until the warm-up and the window are over (or the cap);
/// returns how many were posted.
async fn operator(
    ctx: Arc<Ctx>,
    http: reqwest::Client,
    bases: Vec<String>,
    token: String,
    window_start: Arc<AtomicU64>,
) -> usize {
    let args = &ctx.args;
    let in_flight = Arc::new(Semaphore::new(args.in_flight.max(1)));
    let mut posts = JoinSet::new();
    let start = tokio::time::Instant::now();
    let warmup_end = start + Duration::from_secs(args.warmup);
    let end = warmup_end + Duration::from_secs(args.duration);
    let period = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let token = Arc::new(token);
    let mut n = 0;
    while n < ctx.slots.len() {
        if let Some(period) = period {
            tokio::time::sleep_until(start + period.mul_f64(n as f64)).await;
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else { break };
        let now = tokio::time::Instant::now();
        if now >= end {
            break;
        }
        let measured = now >= warmup_end;
        if measured && window_start.load(Ordering::Relaxed) == 0 {
            window_start.store(ctx.clock.now(), Ordering::Relaxed);
        }
        let slot = &ctx.slots[n];
        slot.measured.store(measured, Ordering::Relaxed);
        slot.state.store(POSTING, Ordering::Relaxed);
        slot.posted_us.store(ctx.clock.now(), Ordering::Release);
        ctx.live.sent.fetch_add(1, Ordering::Relaxed);
        let body =
            serde_json::json!({"text": announcement_text(&ctx.marker, n, args.text_bytes), "audience": args.audience});
        let url = format!("{}/v1/admin/announcements", bases[n % bases.len()]);
        let (ctx2, http2, token2) = (ctx.clone(), http.clone(), token.clone());
        posts.spawn(async move {
            let _permit = permit;
            let started = Instant::now();
            let result =
                http2.post(url).bearer_auth(token2.as_str()).json(&body).timeout(Duration::from_secs(10)).send().await;
            let slot = &ctx2.slots[n];
            match result {
                Ok(r) if r.status().as_u16() == 202 => {
                    slot.state.store(ACCEPTED, Ordering::Release);
                    ctx2.live.acked.fetch_add(1, Ordering::Relaxed);
                    ctx2.live.record(|h: &mut Histograms| &mut h.ack, started.elapsed().as_micros() as u64);
                }
                Ok(r) => {
                    slot.state.store(FAILED, Ordering::Release);
                    ctx2.live.error(format!("announce:http:{}", r.status().as_u16()));
                }
                Err(e) => {
                    slot.state.store(FAILED, Ordering::Release);
                    ctx2.live.error(if e.is_timeout() { "announce:timeout" } else { "announce:http:other" });
                }
            }
        });
        // Reap finished POSTs as we go, so the set stays as small as the in-flight limit.
        while posts.try_join_next().is_some() {}
        n += 1;
    }
    while posts.join_next().await.is_some() {}
    n
}

/// Runs the scenario and returns its report.
///
/// # Errors
/// The hub cannot be reached or started, or no operator token is known.
pub async fn run(args: BurstArgs) -> anyhow::Result<BurstReport> {
    anyhow::ensure!(args.sockets >= 1, "--sockets must be positive");
    anyhow::ensure!(args.rate >= 0.0, "--rate must not be negative");
    anyhow::ensure!(
        ["users", "agents", "everyone"].contains(&args.audience.as_str()),
        "--audience must be users, agents or everyone"
    );
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let mut hubs = Cluster::open(&args.hub, &http).await?;
    let result = run_on(&args, &http, &hubs).await;
    hubs.stop();
    result
}

async fn run_on(args: &BurstArgs, http: &reqwest::Client, hubs: &Cluster) -> anyhow::Result<BurstReport> {
    let token = hubs.admin_token.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "no operator token: pass --admin-token or set HUB_ADMIN_TOKEN for a hub the harness did not start"
        )
    })?;
    let hub = hubs.first();
    let live = Arc::new(Live::default());
    let users = args.users.unwrap_or(args.sockets.div_ceil(4)).clamp(1, args.sockets);
    eprintln!("burst: hubs {}; signing in {users} users", hubs.describe());
    let started = Instant::now();
    let tokens = signin::sign_in_users(http, hub, &args.hub, &args.client, users, &live).await?;
    let tokens: Vec<Arc<String>> = tokens.into_iter().flatten().map(Arc::new).collect();
    anyhow::ensure!(!tokens.is_empty(), "no user could sign in: {:?}", live.errors_by_key());
    eprintln!(
        "burst: {} users signed in ({:.1} s); opening {} sockets",
        tokens.len(),
        started.elapsed().as_secs_f64(),
        args.sockets
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server_empty = hubs.snapshot(http).await;

    let clock = Clock::default();
    let run_tag = (clock.now() ^ u64::from(std::process::id()) << 20) as u32;
    let ctx = Arc::new(Ctx {
        live: live.clone(),
        clock,
        hubs: hubs.addrs(),
        sources: crate::wire::source_ips(args.client.source_ips),
        args: args.clone(),
        setup: Semaphore::new(args.client.setup_concurrency.max(1)),
        marker: marker(run_tag),
        slots: (0..args.max_announcements.max(1)).map(|_| Slot::new()).collect(),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let mut tasks = JoinSet::new();
    let mut readies = Vec::with_capacity(args.sockets);
    for i in 0..args.sockets {
        let (tx, rx) = oneshot::channel();
        readies.push(rx);
        tasks.spawn(recipient(ctx.clone(), i, tokens[i % tokens.len()].clone(), tx, phase_rx.clone()));
    }
    let mut ready = 0;
    for rx in readies {
        ready += usize::from(rx.await.unwrap_or(false));
    }
    eprintln!(
        "burst: {ready} sockets ready ({:.1} s); announcements for {} + {} s at {}",
        started.elapsed().as_secs_f64(),
        args.warmup,
        args.duration,
        if args.rate > 0.0 { format!("{}/s", args.rate) } else { format!("full speed ({} in flight)", args.in_flight) }
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server_ready = hubs.snapshot(http).await;

    // Announcements.
    let (progress_stop, progress) = spawn_progress(live.clone(), Progress::Burst);
    let window_start = Arc::new(AtomicU64::new(0));
    let bases: Vec<String> = hubs.nodes.iter().map(|n| n.base.clone()).collect();
    let operator_task = tokio::spawn(operator(ctx.clone(), http.clone(), bases, token, window_start.clone()));
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    live.start_measuring();
    let cpu_before = CpuSnapshot::take(&hubs.nodes);
    let server_before = hubs.snapshot(http).await;
    let posted = operator_task.await.unwrap_or(0);
    let cpu = cpu_before.until(&CpuSnapshot::take(&hubs.nodes));
    let server = hubs.figures(&server_before, &hubs.snapshot(http).await);
    live.measuring.store(false, Ordering::Relaxed);

    // Drain: until every socket has every accepted announcement, nothing arrives for 2 s, or the
    // drain time runs out.
    let _ = phase_tx.send(Phase::Drain);
    let accepted: Vec<usize> =
        (0..posted).filter(|&n| ctx.slots[n].state.load(Ordering::Acquire) == ACCEPTED).collect();
    let expected = (accepted.len() * ready) as u64;
    let deadline = Instant::now() + Duration::from_secs(args.drain);
    let (mut last, mut last_change) = (0u64, Instant::now());
    while Instant::now() < deadline {
        let delivered: u64 = accepted.iter().map(|&n| u64::from(ctx.slots[n].delivered.load(Ordering::Relaxed))).sum();
        if delivered >= expected {
            break;
        }
        if delivered != last {
            (last, last_change) = (delivered, Instant::now());
        } else if last_change.elapsed() > Duration::from_secs(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The sockets stay open and idle (pings answered) while the hub settles, then its memory is
    // read with every socket still held.
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let server_settled = hubs.snapshot(http).await;
    let _ = phase_tx.send(Phase::Done);
    let mut check = FanOutCheck::default();
    let hard_deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(hard_deadline, tasks.join_next()).await {
            Ok(Some(Ok(Some((account, failed))))) => account.tally(&mut check, &accepted, failed),
            // Sockets that never got ready were not recipients.
            Ok(Some(Ok(None))) => {}
            Ok(Some(Err(_))) => live.error("task_failed"),
            Ok(None) => break,
            Err(_) => {
                live.error("task_timeout");
                tasks.abort_all();
                break;
            }
        }
    }
    let _ = progress_stop.send(());
    let ticker = progress.await.unwrap_or_default();
    let server_after = hubs.snapshot(http).await;

    let figures = fan_out_figures(&ctx.slots[..posted]);
    let totals = live.totals();
    let memory = hubs.figures(&server_empty, &server_ready);
    let grown: Option<f64> = memory.iter().map(|f| Some(f.rss_after_kib? - f.rss_before_kib?)).sum();
    let grown_after: Option<f64> =
        hubs.figures(&server_empty, &server_settled).iter().map(|f| Some(f.rss_after_kib? - f.rss_before_kib?)).sum();
    let left_after_close: Option<f64> =
        hubs.figures(&server_empty, &server_after).iter().map(|f| Some(f.rss_after_kib? - f.rss_before_kib?)).sum();
    let hub_cpu_s = cpu.hub_s.or_else(|| total_cpu_s(&server));
    Ok(BurstReport {
        scenario: "burst",
        hub: hubs.info(),
        params: serde_json::to_value(args).unwrap_or_default(),
        sockets_requested: args.sockets,
        sockets_ready: ready,
        users: tokens.len(),
        posted,
        accepted: accepted.len(),
        measured_announcements: figures.announcements,
        window_s: figures.window_s,
        announcements_per_s: figures.announcements as f64 / figures.window_s.max(1e-9),
        offered_deliveries_per_s: figures.announcements as f64 * ready as f64 / figures.window_s.max(1e-9),
        deliveries_per_s: figures.deliveries as f64 / figures.window_s.max(1e-9),
        delivery_latency: totals.delivery.summary(),
        spread: figures.spread.summary(),
        post_latency: totals.ack.summary(),
        delivery_ok: check.ok(),
        check,
        hub_cpu_ns_per_delivery: hub_cpu_s
            .filter(|_| figures.deliveries > 0)
            .map(|s| s * 1e9 / figures.deliveries as f64),
        rss_per_socket_kib: grown.filter(|_| ready > 0).map(|g| g / ready as f64),
        rss_per_socket_after_kib: grown_after.filter(|_| ready > 0).map(|g| g / ready as f64),
        rss_left_after_close_kib: left_after_close,
        cpu,
        server,
        errors: live.errors_by_key(),
        timeline: ticker.timeline,
    })
}

/// What the measured announcements came to.
#[derive(Debug, Default)]
pub struct FanOutFigures {
    /// Measured announcements accepted.
    pub announcements: u64,
    /// Their first receipts, over every socket.
    pub deliveries: u64,
    /// From the first measured POST to the last receipt of a measured announcement, seconds.
    pub window_s: f64,
    /// First to last socket, per announcement.
    pub spread: Latency,
}

/// The deliveries of the measured, accepted announcements and the window they took.
pub fn fan_out_figures(slots: &[Slot]) -> FanOutFigures {
    let mut out = FanOutFigures::default();
    let (mut start, mut end) = (u64::MAX, 0u64);
    for slot in slots {
        if !slot.measured.load(Ordering::Relaxed) || slot.state.load(Ordering::Acquire) != ACCEPTED {
            continue;
        }
        out.announcements += 1;
        let delivered = slot.delivered.load(Ordering::Relaxed);
        out.deliveries += u64::from(delivered);
        start = start.min(slot.posted_us.load(Ordering::Relaxed));
        if delivered > 0 {
            let (first, last) = (slot.first_us.load(Ordering::Relaxed), slot.last_us.load(Ordering::Relaxed));
            end = end.max(last);
            out.spread.record(last.saturating_sub(first).max(1));
        }
    }
    if end > start {
        out.window_s = (end - start) as f64 / 1e6;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_found_in_json_and_msgpack_frames() {
        let m = marker(0xabc);
        assert_eq!(m, b"lt000abc#");
        let text = announcement_text(&m, 42, 64);
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("lt000abc#00000042 x"));
        let frame = serde_json::json!({"type": "announcement", "announcement_id": "0194f1a2-3b4c-7d5e-8f60-7182a3b4c5d6",
            "text": text, "sent_at": 1_767_225_600_000u64});
        let json = serde_json::to_vec(&frame).unwrap();
        let msgpack = rmp_serde::to_vec_named(&frame).unwrap();
        assert_eq!(find_announcement(&json, &m), Some(42));
        assert_eq!(find_announcement(&msgpack, &m), Some(42));
        assert_eq!(find_announcement(&json, &marker(0xabd)), None, "another run's");
        assert_eq!(find_announcement(b"lt000abc#0000", &m), None, "cut short");
        assert_eq!(find_announcement(b"lt000abc#0000x042", &m), None);
        assert_eq!(announcement_text(&m, 7, 3), "lt000abc#00000007 ", "never shorter than the marker");
    }

    #[test]
    fn an_account_counts_firsts_duplicates_and_missing() {
        let mut a = Account::default();
        assert_eq!(a.receive(0, 100), Receipt::First);
        assert_eq!(a.receive(70, 100), Receipt::First);
        assert_eq!(a.receive(70, 100), Receipt::Duplicate);
        assert_eq!(a.receive(100, 100), Receipt::Unknown);
        assert!(a.has(70) && !a.has(69) && !a.has(5000));
        assert_eq!((a.received, a.duplicates, a.unknown), (2, 1, 1));
        assert_eq!(a.missing(&[0, 1, 70, 71]), 2);
    }

    #[test]
    fn the_check_adds_up_sockets_and_fails_on_any_loss_or_repeat() {
        let accepted = [0, 1, 2];
        let mut full = Account::default();
        for n in [0, 1, 2, 3] {
            full.receive(n, 10); // 3: a POST that timed out but went out
        }
        let mut partial = Account::default();
        partial.receive(1, 10);
        let mut check = FanOutCheck::default();
        full.tally(&mut check, &accepted, false);
        assert!(check.ok());
        assert_eq!((check.expected, check.delivered, check.unconfirmed), (3, 3, 1));
        partial.tally(&mut check, &accepted, true);
        assert_eq!((check.sockets, check.sockets_failed, check.missing, check.delivered), (2, 1, 2, 4));
        assert!(!check.ok());
        let mut dup = Account::default();
        for n in [0, 1, 2, 2] {
            dup.receive(n, 10);
        }
        let mut check = FanOutCheck::default();
        dup.tally(&mut check, &accepted, false);
        assert_eq!((check.missing, check.duplicates), (0, 1));
        assert!(!check.ok());
    }

    #[test]
    fn figures_cover_measured_accepted_announcements_only() {
        let slots: Vec<Slot> = (0..3).map(|_| Slot::new()).collect();
        for (i, s) in slots.iter().enumerate() {
            s.posted_us.store(1_000_000 + i as u64 * 1000, Ordering::Relaxed);
            s.state.store(if i == 2 { FAILED } else { ACCEPTED }, Ordering::Relaxed);
            s.measured.store(true, Ordering::Relaxed);
        }
        for at in [1_000_500, 1_000_900, 1_001_200] {
            slots[0].receipt(at);
            slots[0].delivered.fetch_add(1, Ordering::Relaxed);
        }
        slots[1].receipt(1_002_000);
        slots[1].delivered.fetch_add(1, Ordering::Relaxed);
        slots[2].delivered.fetch_add(5, Ordering::Relaxed);
        let f = fan_out_figures(&slots);
        assert_eq!((f.announcements, f.deliveries), (2, 4));
        assert!((f.window_s - 0.002).abs() < 1e-9, "{}", f.window_s);
        let spread = f.spread.summary();
        assert_eq!(spread.count, 2);
        assert!((spread.max_ms - 0.7).abs() < 0.01, "{spread:?}");
        assert_eq!(fan_out_figures(&[]).window_s, 0.0);
    }
}
