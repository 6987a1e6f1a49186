//! The `offline` scenario: support answers people whose app is closed, so every answer becomes a
//! push notification. U users sign in, open a ticket each and register Web Push (`PUT /v1/push`)
//! to the harness's own receiver on loopback ([`crate::receiver`]); agents claim the tickets; the
//! users close their sockets and, once the hub's presence grace has passed, agents send messages at
//! a target rate, each ticket in turn. It measures pushes received per second, the latency from an
//! agent's message to the receiver's `POST` (see [`crate::notified`] for how collapsed pushes are
//! matched), the hub's push queue over time (`hub_push_queue_depth`, `hub_push_sent_total`) and
//! the hub's CPU per push. With `--apps-open` the users keep their sockets: nothing may be pushed,
//! and the hub's CPU is the messages' alone.
//!
//! Phases: set-up (sign in, open, register, claim, close the apps, wait out the grace) -> run
//! (warm-up, then the measured window) -> stop (no new messages; wait for every ack) -> drain
//! (until every stored message was followed by a push, or `--drain` runs out).

use crate::chat::{assign, body_of, client_msg_id, next_tick, sleep_until_opt};
use crate::cluster::Cluster;
use crate::hub::{CpuSnapshot, HubArgs};
use crate::metrics::{push_failures, push_gauges, Metrics};
use crate::notified::{self, PushTally, Sent};
use crate::receiver::{self, Receiver};
use crate::report::{OfflineReport, PushFigures, PushSecond};
use crate::signin;
use crate::stats::{Clock, Histograms, Latency, Live};
use crate::wire::{Body, Conn, Frame};
use crate::ClientArgs;
use ring::rand::SystemRandom;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Interval, MissedTickBehavior};

/// A console socket follows at most this many tickets (as in `chat`).
const TICKETS_PER_SOCKET: usize = 100;
/// Extra wait after the presence grace before the load, for the hub to see the apps closed.
const AFTER_GRACE: Duration = Duration::from_millis(500);
/// Arrival times the receiver keeps per message the run may send (pushes beyond are counted only).
const PUSHES_PER_MESSAGE: u64 = 4;

/// Parameters of `offline`. The defaults are the preset: about 40 s.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct OfflineArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub hub: HubArgs,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Users, each with one open ticket and a Web Push registration, whose apps then close.
    #[arg(long, default_value_t = 500)]
    pub users: usize,
    /// Agents; each claims its share of the tickets on console sockets of at most 100 tickets.
    #[arg(long, default_value_t = 10)]
    pub agents: usize,
    /// Agent messages per second, all agents together; each ticket gets one in turn.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds of load before the measured window (not measured).
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Size of each message body in bytes.
    #[arg(long, default_value_t = 100)]
    pub body_bytes: usize,
    /// Unacknowledged messages per console socket; one at the limit waits (its latency keeps
    /// counting from the scheduled send time).
    #[arg(long, default_value_t = 32)]
    pub max_in_flight: usize,
    /// Most agent messages in the run (the load stops early when they are sent).
    #[arg(long, default_value_t = 200_000)]
    pub max_messages: u64,
    /// Seconds to wait for acks after the load stops, and then for the last pushes.
    #[arg(long, default_value_t = 10)]
    pub drain: u64,
    /// The spawned hub's `push_collapse_ms`: events of a ticket within it become one push.
    #[arg(long, default_value_t = 200)]
    pub collapse_ms: u64,
    /// The spawned hub's `presence_grace_ms`; the load starts this long (and 500 ms more) after
    /// the apps closed. For a hub started elsewhere, give its own value.
    #[arg(long, default_value_t = 200)]
    pub presence_grace_ms: u64,
    /// Keep the apps open: nothing may be pushed, and the hub's CPU is the messages' alone.
    #[arg(long)]
    pub apps_open: bool,
    /// Agents as `email password` lines; created with `anapars-hub agent add` (and written here)
    /// when the file does not exist. Without it, fresh agents are created for the run.
    #[arg(long)]
    pub agents_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Setup,
    Run,
    Stop,
}

/// What every socket task shares.
struct Ctx {
    live: Live,
    clock: Clock,
    args: OfflineArgs,
    /// The nodes' WebSocket addresses.
    hubs: Vec<SocketAddr>,
    sources: Vec<IpAddr>,
    setup: Semaphore,
    body: String,
    /// Acknowledged agent messages, by ticket (user) index.
    sent: Vec<Mutex<Vec<Sent>>>,
    /// Agent messages begun, against `--max-messages`.
    begun: AtomicU64,
    /// One ticket's turn comes round every this many µs (set before the load).
    ticket_period_us: AtomicU64,
    /// Console tasks still running.
    agents_running: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ctx {
    fn socket(&self, i: usize) -> (SocketAddr, IpAddr, crate::wire::Encoding) {
        let hub = self.hubs[i % self.hubs.len()];
        (hub, self.sources[i % self.sources.len()], self.args.client.encoding.for_socket(i))
    }

    fn sent(&self) -> Vec<Vec<Sent>> {
        self.sent.iter().map(|s| lock(s).clone()).collect()
    }
}

/// Registers user `idx`'s Web Push target with `PUT /v1/push`.
async fn register(http: &reqwest::Client, base: &str, token: &str, body: &serde_json::Value) -> Result<(), String> {
    let response = http
        .put(format!("{base}/v1/push"))
        .bearer_auth(token)
        .json(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| signin::classify(&e))?;
    let status = response.status().as_u16();
    if status == 200 {
        return Ok(());
    }
    Err(signin::http_error(status, &response.json().await.unwrap_or(serde_json::Value::Null)))
}

/// One user: ticket opened and Web Push registered, then the app stays open (reading what comes)
/// until `close` turns true.
async fn user(
    ctx: Arc<Ctx>,
    idx: usize,
    token: String,
    registration: serde_json::Value,
    (http, base): (reqwest::Client, String),
    ready: oneshot::Sender<Option<String>>,
    mut close: watch::Receiver<bool>,
) {
    let setup = async {
        let _permit = ctx.setup.acquire().await;
        let (hub, source, encoding) = ctx.socket(idx);
        let mut conn = Conn::open(hub, source, encoding, &token, false).await.map_err(|e| e.key())?;
        let cmid = format!("open-{idx}-{}", ctx.clock.now());
        let ticket = conn.open_ticket(&format!("load test {idx}"), &ctx.body, &cmid).await.map_err(|e| e.key())?;
        register(&http, &base, &token, &registration).await.map_err(|key| format!("push:register:{key}"))?;
        Ok::<_, String>((conn, ticket))
    };
    let (mut conn, ticket) = match setup.await {
        Ok(ok) => ok,
        Err(key) => {
            ctx.live.error(format!("user:{key}"));
            let _ = ready.send(None);
            return;
        }
    };
    let _ = ready.send(Some(ticket));
    ctx.live.sockets.fetch_add(1, Ordering::Relaxed);
    loop {
        tokio::select! {
            frame = conn.recv() => if let Err(e) = frame {
                ctx.live.error(format!("user:{}", e.key()));
                ctx.live.sockets.fetch_sub(1, Ordering::Relaxed);
                return;
            },
            _ = close.wait_for(|c| *c) => break,
        }
    }
    ctx.live.sockets.fetch_sub(1, Ordering::Relaxed);
    conn.close().await;
}

/// A message written and not yet acknowledged.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    ticket: usize,
    at_us: u64,
    written_us: u64,
}

/// One agent console socket: claims `tickets` (index, id), then writes to each in turn at its
/// share of the rate until the stop.
async fn agent(
    ctx: Arc<Ctx>,
    no: usize,
    token: Arc<String>,
    tickets: Vec<(usize, String)>,
    ready: oneshot::Sender<usize>,
    mut phase: watch::Receiver<Phase>,
) {
    let setup = async {
        let _permit = ctx.setup.acquire().await;
        let (hub, source, encoding) = ctx.socket(no);
        let mut conn = Conn::open(hub, source, encoding, &token, true).await?;
        let mut claimed = Vec::new();
        for (idx, ticket) in &tickets {
            let claim = conn.request("ticket.claim", Body::Ticket { ticket_id: ticket }, &mut |_f: Frame| {}).await?;
            if claim.kind == "ticket.update.ok" {
                claimed.push((*idx, ticket.clone()));
            } else {
                ctx.live.error(format!("claim:{}", claim.code.as_deref().unwrap_or(&claim.kind)));
            }
        }
        Ok::<_, crate::wire::ConnError>((conn, claimed))
    };
    let (mut conn, claimed) = match setup.await {
        Ok(ok) => ok,
        Err(e) => {
            ctx.live.error(format!("agent:{}", e.key()));
            let _ = ready.send(0);
            ctx.agents_running.fetch_sub(1, Ordering::SeqCst);
            return;
        }
    };
    let _ = ready.send(claimed.len());
    ctx.live.sockets.fetch_add(1, Ordering::Relaxed);
    let mut ticker: Option<Interval> = None;
    let mut inflight: HashMap<u64, InFlight> = HashMap::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut turn = 0usize;
    let mut current = *phase.borrow();
    loop {
        let can_send = current == Phase::Run && inflight.len() < ctx.args.max_in_flight && !claimed.is_empty();
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() { break; }
                current = *phase.borrow_and_update();
                match current {
                    Phase::Run if !claimed.is_empty() => {
                        let ticket_period = Duration::from_micros(ctx.ticket_period_us.load(Ordering::SeqCst));
                        let period = (ticket_period / claimed.len() as u32).max(Duration::from_micros(1));
                        // Spread the sockets' phases evenly over one period (golden-ratio sequence).
                        let offset = period.mul_f64((no as f64 * 0.618_033_988_75).fract());
                        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
                        ticker = Some(t);
                    }
                    Phase::Stop => {
                        ticker = None;
                        deadline = Some(tokio::time::Instant::now() + Duration::from_secs(ctx.args.drain));
                    }
                    _ => {}
                }
            }
            frame = conn.recv() => match frame {
                Ok(f) => on_frame(&ctx, f, &mut inflight),
                Err(e) => { ctx.live.error(format!("agent:{}", e.key())); break; }
            },
            at = next_tick(&mut ticker), if can_send => {
                if ctx.begun.fetch_add(1, Ordering::Relaxed) >= ctx.args.max_messages {
                    ticker = None;
                    continue;
                }
                let (idx, ticket) = &claimed[turn % claimed.len()];
                turn += 1;
                let at_us = ctx.clock.at(at.into_std());
                let cmid = client_msg_id(&format!("a{idx}"), turn as u64, at_us);
                let send = Body::Send { ticket_id: ticket, client_msg_id: &cmid, body: &ctx.body, attachments: None };
                match conn.send("ticket.send", send).await {
                    Ok(id) => {
                        inflight.insert(id, InFlight { ticket: *idx, at_us, written_us: ctx.clock.now() });
                        ctx.live.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => { ctx.live.error(format!("agent:{}", e.key())); break; }
                }
            }
            _ = sleep_until_opt(deadline) => break,
        }
        if current == Phase::Stop && inflight.is_empty() {
            break;
        }
    }
    for _ in 0..inflight.len() {
        ctx.live.error("unacked");
    }
    ctx.live.sockets.fetch_sub(1, Ordering::Relaxed);
    ctx.agents_running.fetch_sub(1, Ordering::SeqCst);
    conn.close().await;
}

fn on_frame(ctx: &Ctx, f: Frame, inflight: &mut HashMap<u64, InFlight>) {
    match f.kind.as_str() {
        "ticket.send.ok" => {
            let Some(m) = f.id.and_then(|id| inflight.remove(&id)) else {
                return ctx.live.error("unexpected_reply");
            };
            let acked_us = ctx.clock.now();
            ctx.live.record(|h: &mut Histograms| &mut h.ack_agent, acked_us.saturating_sub(m.at_us));
            ctx.live.acked.fetch_add(1, Ordering::Relaxed);
            if f.duplicate == Some(true) {
                ctx.live.error("unexpected_duplicate_ack");
            }
            lock(&ctx.sent[m.ticket]).push(Sent { at_us: m.at_us, written_us: m.written_us, acked_us });
        }
        "error" => {
            if let Some(id) = f.id {
                inflight.remove(&id);
            }
            ctx.live.error(format!("error:{}", f.code.as_deref().unwrap_or("none")));
        }
        _ => {}
    }
}

/// Reads what the run needs once a second and prints the progress line.
struct Monitor<'a> {
    ctx: &'a Ctx,
    http: &'a reqwest::Client,
    hubs: &'a Cluster,
    receiver: &'a Receiver,
    start: Instant,
    next: Instant,
    last: (u64, u64, u64, Option<f64>),
    timeline: Vec<PushSecond>,
}

impl<'a> Monitor<'a> {
    /// Starts the seconds now; `pages` are the nodes' `/metrics` read just before.
    fn new(
        ctx: &'a Ctx,
        (http, hubs): (&'a reqwest::Client, &'a Cluster),
        receiver: &'a Receiver,
        pages: &[Metrics],
    ) -> Self {
        let start = Instant::now();
        let live = &ctx.live;
        let last = (
            live.sent.load(Ordering::Relaxed),
            live.acked.load(Ordering::Relaxed),
            receiver.total(),
            push_gauges(pages).1,
        );
        Self { ctx, http, hubs, receiver, start, next: start + Duration::from_secs(1), last, timeline: Vec::new() }
    }

    /// Samples every second until `end`, or earlier once `done` says so (checked every 100 ms).
    async fn until(&mut self, end: Instant, done: impl Fn(&Self) -> bool) {
        while Instant::now() < end && !done(self) {
            let wake = self.next.min(end).min(Instant::now() + Duration::from_millis(100));
            tokio::time::sleep_until(wake.into()).await;
            if Instant::now() >= self.next {
                self.sample().await;
            }
        }
    }

    async fn sample(&mut self) {
        self.next += Duration::from_secs(1);
        let (depth, hub_sent) = push_gauges(&self.hubs.metrics(self.http).await);
        let live = &self.ctx.live;
        let sent = live.sent.load(Ordering::Relaxed);
        let acked = live.acked.load(Ordering::Relaxed);
        let pushes = self.receiver.total();
        let waiting = notified::waiting(&self.ctx.sent(), &self.receiver.arrivals());
        let second = PushSecond {
            t: self.start.elapsed().as_secs_f64().round() as u64,
            sent: sent - self.last.0,
            acked: acked - self.last.1,
            pushes: pushes - self.last.2,
            waiting,
            queue_depth: depth,
            hub_sent: hub_sent.zip(self.last.3).map(|(now, before)| now - before),
            ..PushSecond::default()
        };
        eprintln!(
            "[{:>4}s] sockets {:>5}  sent/s {:>6}  acked/s {:>6}  pushes/s {:>6}  waiting {:>6}  queue {:>6}  hub sent/s {:>6}  errors {}",
            second.t,
            live.sockets.load(Ordering::Relaxed),
            second.sent,
            second.acked,
            second.pushes,
            second.waiting,
            second.queue_depth.map_or_else(|| "-".into(), |d| format!("{d:.0}")),
            second.hub_sent.map_or_else(|| "-".into(), |s| format!("{s:.0}")),
            live.errors.load(Ordering::Relaxed)
        );
        self.last = (sent, acked, pushes, hub_sent.or(self.last.3));
        self.timeline.push(second);
    }

    /// The timeline, each second with the latency of the pushes that arrived in it.
    fn timeline(mut self, tally: &PushTally, load_start_us: u64) -> Vec<PushSecond> {
        let mut by_second: BTreeMap<u64, Latency> = BTreeMap::new();
        for &(arrived, latency) in &tally.arrivals {
            by_second.entry(arrived.saturating_sub(load_start_us) / 1_000_000 + 1).or_default().record(latency);
        }
        for second in &mut self.timeline {
            if let Some(h) = by_second.get(&second.t) {
                let s = h.summary();
                (second.p50_ms, second.p99_ms, second.max_ms) = (s.p50_ms, s.p99_ms, s.max_ms);
            }
        }
        self.timeline
    }
}

/// Runs the scenario and returns its report.
///
/// # Errors
/// The hub cannot be reached or started, agents cannot be created, or the receiver cannot start.
pub async fn run(args: OfflineArgs) -> anyhow::Result<OfflineReport> {
    anyhow::ensure!(
        args.users >= 1 && args.agents >= 1 && args.rate > 0.0,
        "--users, --agents and --rate must be positive"
    );
    anyhow::ensure!(!args.hub.peer.target.is_peer(), "the peers send no push notifications: offline needs the hub");
    let mut hub_args = args.hub.clone();
    // The spawned hub pushes to the harness's http:// receiver, within a short collapse window,
    // soon after an app closes; `--hub-env` comes after, so it can say otherwise.
    let mut env = vec![
        "HUB_WEBPUSH_ALLOW_HTTP=true".to_owned(),
        format!("HUB_PUSH_COLLAPSE_MS={}", args.collapse_ms),
        format!("HUB_PRESENCE_GRACE_MS={}", args.presence_grace_ms),
    ];
    env.append(&mut hub_args.hub_env);
    hub_args.hub_env = env;
    let clock = Clock::default();
    let capacity = args.max_messages.saturating_mul(PUSHES_PER_MESSAGE);
    let receiver = Receiver::start(args.users, capacity, clock).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let mut hubs = Cluster::open(&hub_args, &http).await?;
    let result = run_on(&args, &http, &hubs, &receiver, clock).await;
    hubs.stop();
    result
}

async fn run_on(
    args: &OfflineArgs,
    http: &reqwest::Client,
    hubs: &Cluster,
    receiver: &Receiver,
    clock: Clock,
) -> anyhow::Result<OfflineReport> {
    let started = Instant::now();
    let hub = hubs.first();
    eprintln!("offline: hubs {}; push receiver {}; signing in {} users", hubs.describe(), receiver.base, args.users);
    let ctx = Arc::new(Ctx {
        live: Live::default(),
        clock,
        args: args.clone(),
        hubs: hubs.addrs(),
        sources: crate::wire::source_ips(args.client.source_ips),
        setup: Semaphore::new(args.client.setup_concurrency.max(1)),
        body: body_of(args.body_bytes),
        sent: (0..args.users).map(|_| Mutex::new(Vec::new())).collect(),
        begun: AtomicU64::new(0),
        ticket_period_us: AtomicU64::new(0),
        agents_running: AtomicUsize::new(0),
    });
    let agents = signin::agents(args.agents_file.as_ref(), &args.hub.hub_bin, hub, args.agents).await?;
    let tokens = signin::sign_in_users(http, hub, &args.hub, &args.client, args.users, &ctx.live).await?;

    // Users: open a ticket each and register; their apps stay open until the agents have claimed.
    let (close_tx, close_rx) = watch::channel(false);
    let rng = SystemRandom::new();
    let mut users = JoinSet::new();
    let mut readies = Vec::new();
    for (idx, token) in tokens.into_iter().enumerate() {
        let Some(token) = token else { continue };
        let registration = receiver::registration(&rng, &receiver.endpoint(idx))?;
        let base = hubs.nodes[hubs.node_of(idx)].base.clone();
        let (tx, rx) = oneshot::channel();
        readies.push((idx, rx));
        users.spawn(user(ctx.clone(), idx, token, registration, (http.clone(), base), tx, close_rx.clone()));
    }
    let mut tickets = Vec::new();
    for (idx, rx) in readies {
        if let Ok(Some(ticket)) = rx.await {
            tickets.push((idx, ticket));
        }
    }
    let users_ready = tickets.len();
    eprintln!(
        "offline: {users_ready} users with a ticket and a push registration ({:.1} s); agents claiming",
        started.elapsed().as_secs_f64()
    );

    // Agents claim while the apps are open, so that the claims themselves push nothing.
    let mut agent_tokens = Vec::new();
    for a in &agents {
        match signin::agent_login(http, &hub.base, a).await {
            Ok(t) => agent_tokens.push(Arc::new(t)),
            Err(key) => ctx.live.error(format!("agent_login:{key}")),
        }
    }
    anyhow::ensure!(!agent_tokens.is_empty(), "no agent could sign in: {:?}", ctx.live.errors_by_key());
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let mut consoles = JoinSet::new();
    let mut agent_readies = Vec::new();
    for (no, (holder, share)) in assign(&tickets, agent_tokens.len(), TICKETS_PER_SOCKET).into_iter().enumerate() {
        let (tx, rx) = oneshot::channel();
        agent_readies.push(rx);
        ctx.agents_running.fetch_add(1, Ordering::SeqCst);
        consoles.spawn(agent(ctx.clone(), no, agent_tokens[holder].clone(), share, tx, phase_rx.clone()));
    }
    let agent_sockets = agent_readies.len();
    let mut tickets_claimed = 0;
    for rx in agent_readies {
        tickets_claimed += rx.await.unwrap_or(0);
    }
    anyhow::ensure!(tickets_claimed > 0, "no ticket was claimed: {:?}", ctx.live.errors_by_key());
    if !args.apps_open {
        let _ = close_tx.send(true);
        while users.join_next().await.is_some() {}
        tokio::time::sleep(Duration::from_millis(args.presence_grace_ms) + AFTER_GRACE).await;
    }
    eprintln!(
        "offline: {agent_sockets} agent sockets, {tickets_claimed} tickets claimed, apps {} ({:.1} s); load for {} + {} s at {} msgs/s",
        if args.apps_open { "open" } else { "closed" },
        started.elapsed().as_secs_f64(),
        args.warmup,
        args.duration,
        args.rate
    );

    // Load.
    let period_us = (tickets_claimed as f64 / args.rate * 1e6).max(1.0) as u64;
    ctx.ticket_period_us.store(period_us, Ordering::SeqCst);
    let pages_start = hubs.metrics(http).await;
    let mut monitor = Monitor::new(&ctx, (http, hubs), receiver, &pages_start);
    let load_start_us = ctx.clock.now();
    let _ = phase_tx.send(Phase::Run);
    monitor.until(Instant::now() + Duration::from_secs(args.warmup), |_| false).await;
    let server_before = hubs.snapshot(http).await;
    let pages_before = hubs.metrics(http).await;
    let cpu_before = CpuSnapshot::take(&hubs.nodes);
    ctx.live.start_measuring();
    let window_start = Instant::now();
    let window_start_us = ctx.clock.now();
    let counters = |l: &Live| (l.sent.load(Ordering::Relaxed), l.acked.load(Ordering::Relaxed));
    let c0 = counters(&ctx.live);
    monitor.until(window_start + Duration::from_secs(args.duration), |_| false).await;
    let c1 = counters(&ctx.live);
    let window_s = window_start.elapsed().as_secs_f64();
    let window_end_us = ctx.clock.now();
    ctx.live.measuring.store(false, Ordering::Relaxed);
    let cpu = cpu_before.until(&CpuSnapshot::take(&hubs.nodes));
    let server = hubs.figures(&server_before, &hubs.snapshot(http).await);
    let pages_after = hubs.metrics(http).await;
    let histograms = ctx.live.totals();

    // Stop, wait for the acks, then for the last pushes.
    let _ = phase_tx.send(Phase::Stop);
    let drain_end = Instant::now() + Duration::from_secs(2 * args.drain);
    let expect_pushes = !args.apps_open;
    monitor
        .until(drain_end, |m| {
            m.ctx.agents_running.load(Ordering::SeqCst) == 0
                && (!expect_pushes || notified::waiting(&m.ctx.sent(), &m.receiver.arrivals()) == 0)
        })
        .await;
    if args.apps_open {
        // Anything the hub pushed to an open app arrives within the collapse window and a poll.
        let settle = Duration::from_millis(args.collapse_ms) + Duration::from_secs(1);
        monitor.until(Instant::now() + settle, |_| false).await;
        let _ = close_tx.send(true);
    }
    let pages_end = hubs.metrics(http).await;
    for (set, name) in [(&mut consoles, "agent"), (&mut users, "user")] {
        if tokio::time::timeout(Duration::from_secs(10), async { while set.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            ctx.live.error(format!("{name}:task_timeout"));
            set.abort_all();
        }
    }

    let tally = PushTally::new(&ctx.sent(), &receiver.arrivals(), window_start_us, window_end_us);
    let timeline = monitor.timeline(&tally, load_start_us);
    let mut errors = ctx.live.errors_by_key();
    for (key, n) in receiver.errors() {
        *errors.entry(key).or_default() += n;
    }
    let (_, sent_before) = push_gauges(&pages_before);
    let (_, sent_after) = push_gauges(&pages_after);
    let failures_before = push_failures(&pages_start);
    let push_failures = push_failures(&pages_end)
        .into_iter()
        .map(|(reason, v)| {
            let before = failures_before.get(&reason).copied().unwrap_or(0.0);
            (reason, v - before)
        })
        .collect();
    let acked = c1.1 - c0.1;
    let pushes = PushFigures {
        collapse_ms: args.hub.spawn_hub.then_some(args.collapse_ms),
        received: tally.pushes,
        in_window: tally.arrived_in_window,
        per_s: tally.arrived_in_window as f64 / window_s,
        hub_sent_per_s: sent_before.zip(sent_after).map(|(b, a)| (a - b) / window_s),
        messages: tally.messages,
        measured: tally.measured,
        measured_messages: tally.measured_messages,
        most_collapsed: tally.most_collapsed,
        unmatched: tally.unmatched,
        waiting: tally.waiting,
        after_send: tally.after_send.summary(),
        after_ack: tally.after_ack.summary(),
        queue_depth_max: timeline.iter().filter_map(|s| s.queue_depth).reduce(f64::max),
        waiting_max: timeline.iter().map(|s| s.waiting).max().unwrap_or(0),
    };
    let delivery_ok = if args.apps_open { tally.pushes == 0 } else { tally.waiting == 0 };
    Ok(OfflineReport {
        scenario: "offline",
        hub: hubs.info(),
        params: serde_json::to_value(args).unwrap_or_default(),
        users_ready,
        apps_open: args.apps_open,
        agent_sockets,
        tickets_claimed,
        window_s,
        target_rate: args.rate,
        sent_per_s: (c1.0 - c0.0) as f64 / window_s,
        acked,
        acked_per_s: acked as f64 / window_s,
        ack_latency: histograms.ack_agent.summary(),
        hub_cpu_us_per_push: cpu
            .hub_s
            .filter(|_| tally.arrived_in_window > 0)
            .map(|s| s * 1e6 / tally.arrived_in_window as f64),
        hub_cpu_us_per_message: cpu.hub_s.filter(|_| acked > 0).map(|s| s * 1e6 / acked as f64),
        pushes,
        push_failures,
        delivery_ok,
        cpu,
        server,
        errors,
        timeline,
    })
}
