//! The `idle` scenario: N authenticated sockets opened at a ramp rate and held open (pings are
//! answered while reading), then closed. It reports how many the hub held, the connect + auth
//! latency, and the hub's resident memory per socket from `/proc/<pid>/status` before, during and
//! after.

use crate::cluster::Cluster;
use crate::hub::{CpuSnapshot, HubArgs, HubHandle};
use crate::report::IdleReport;
use crate::signin;
use crate::stats::{spawn_progress, Histograms, Live, Progress};
use crate::wire::{Body, Conn, ConnError, Frame};
use crate::ClientArgs;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinSet;

/// Parameters of `idle`. The defaults are the preset: about 35 s.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct IdleArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub hub: HubArgs,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Sockets to open.
    #[arg(long, default_value_t = 1000)]
    pub sockets: usize,
    /// Sockets opened per second.
    #[arg(long, default_value_t = 500.0)]
    pub ramp: f64,
    /// Seconds every socket is held open after the ramp.
    #[arg(long, default_value_t = 20)]
    pub hold: u64,
    /// Distinct users signed in (sockets share their tokens round robin); default one per socket.
    #[arg(long)]
    pub users: Option<usize>,
    /// Each socket also sends one `ping` request after `auth`.
    #[arg(long)]
    pub ping_once: bool,
}

struct Ctx {
    live: Arc<Live>,
    /// The nodes' WebSocket addresses (sockets go round robin).
    hubs: Vec<SocketAddr>,
    sources: Vec<IpAddr>,
    args: IdleArgs,
    setup: Semaphore,
}

async fn socket(
    ctx: Arc<Ctx>,
    i: usize,
    token: Arc<String>,
    ready: oneshot::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let setup = async {
        let _permit = ctx.setup.acquire().await;
        let encoding = ctx.args.client.encoding.for_socket(i);
        let mut conn =
            Conn::connect(ctx.hubs[i % ctx.hubs.len()], ctx.sources[i % ctx.sources.len()], encoding).await?;
        let mut ignore = |_f: Frame| {};
        let auth = conn.request("auth", Body::Auth { token: &token }, &mut ignore).await?;
        if auth.kind != "auth.ok" {
            return Err(ConnError::Refused(format!("auth:{}", auth.code.as_deref().unwrap_or(&auth.kind))));
        }
        if ctx.args.ping_once {
            let pong = conn.request("ping", Body::Empty {}, &mut ignore).await?;
            if pong.kind != "ping.ok" {
                return Err(ConnError::Refused("ping".into()));
            }
        }
        Ok(conn)
    };
    let mut conn = match setup.await {
        Ok(c) => c,
        Err(e) => {
            ctx.live.error(e.key());
            let _ = ready.send(false);
            return;
        }
    };
    ctx.live.record(|h: &mut Histograms| &mut h.connect, started.elapsed().as_micros() as u64);
    ctx.live.sockets.fetch_add(1, Ordering::Relaxed);
    ctx.live.sent.fetch_add(1, Ordering::Relaxed);
    let _ = ready.send(true);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            frame = conn.recv() => if let Err(e) = frame {
                ctx.live.error(e.key());
                ctx.live.sockets.fetch_sub(1, Ordering::Relaxed);
                return;
            },
        }
    }
    ctx.live.sockets.fetch_sub(1, Ordering::Relaxed);
    conn.close().await;
}

/// Runs the scenario and returns its report.
///
/// # Errors
/// The hub cannot be reached or started.
pub async fn run(args: IdleArgs) -> anyhow::Result<IdleReport> {
    anyhow::ensure!(args.sockets >= 1 && args.ramp > 0.0, "--sockets and --ramp must be positive");
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let mut hubs = Cluster::open(&args.hub, &http).await?;
    let result = run_on(&args, &http, &hubs).await;
    hubs.stop();
    result
}

/// The resident memory of every node whose pid is known, summed, KiB.
fn rss_kib(hubs: &Cluster) -> Option<u64> {
    let known: Vec<u64> = hubs.nodes.iter().filter_map(HubHandle::rss_kib).collect();
    (!known.is_empty()).then(|| known.iter().sum())
}

async fn run_on(args: &IdleArgs, http: &reqwest::Client, hubs: &Cluster) -> anyhow::Result<IdleReport> {
    let hub = hubs.first();
    let live = Arc::new(Live::default());
    let users = args.users.unwrap_or(args.sockets).clamp(1, args.sockets);
    eprintln!("idle: hubs {}; signing in {users} users", hubs.describe());
    let started = Instant::now();
    let tokens = signin::sign_in_users(http, hub, &args.hub, &args.client, users, &live).await?;
    let tokens: Vec<Arc<String>> = tokens.into_iter().flatten().map(Arc::new).collect();
    anyhow::ensure!(!tokens.is_empty(), "no user could sign in: {:?}", live.errors_by_key());
    eprintln!(
        "idle: {} users signed in ({:.1} s); opening {} sockets at {}/s",
        tokens.len(),
        started.elapsed().as_secs_f64(),
        args.sockets,
        args.ramp
    );
    // Let the sign-in traffic settle so that the baseline is the hub at rest.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = rss_kib(hubs);
    let harness_before = crate::hub::proc_rss_kib("/proc/self/status");
    let cpu_before = CpuSnapshot::take(&hubs.nodes);
    let server_before = hubs.snapshot(http).await;
    live.start_measuring();

    let ctx = Arc::new(Ctx {
        live: live.clone(),
        hubs: hubs.addrs(),
        sources: crate::wire::source_ips(args.client.source_ips),
        args: args.clone(),
        setup: Semaphore::new(args.client.setup_concurrency.max(1)),
    });
    let (progress_stop, progress) = spawn_progress(live.clone(), Progress::Idle);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut readies = Vec::with_capacity(args.sockets);
    let ramp_start = tokio::time::Instant::now();
    for i in 0..args.sockets {
        tokio::time::sleep_until(ramp_start + Duration::from_secs_f64(i as f64 / args.ramp)).await;
        let (tx, rx) = oneshot::channel();
        readies.push(rx);
        tasks.spawn(socket(ctx.clone(), i, tokens[i % tokens.len()].clone(), tx, stop_rx.clone()));
    }
    let mut authenticated = 0;
    for rx in readies {
        authenticated += usize::from(rx.await.unwrap_or(false));
    }
    let ramp_s = ramp_start.elapsed().as_secs_f64();
    eprintln!("idle: {authenticated} sockets authenticated in {ramp_s:.1} s; holding {} s", args.hold);
    tokio::time::sleep(Duration::from_secs(args.hold)).await;

    let held = live.sockets.load(Ordering::Relaxed).max(0) as usize;
    let rss_held = rss_kib(hubs);
    let harness_held = crate::hub::proc_rss_kib("/proc/self/status");
    let mut hub_connections = None;
    for node in &hubs.nodes {
        let m = node.metrics(http).await;
        if m.0.iter().any(|s| s.name == "hub_connections") {
            *hub_connections.get_or_insert(0.0) += m.sum("hub_connections");
        }
    }
    let cpu = cpu_before.until(&CpuSnapshot::take(&hubs.nodes));
    let server = hubs.figures(&server_before, &hubs.snapshot(http).await);
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {}
    tasks.abort_all();
    let _ = progress_stop.send(());
    let ticker = progress.await.unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_close = rss_kib(hubs);

    let per_socket = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) if held > 0 => Some((a as f64 - b as f64) / held as f64),
        _ => None,
    };
    Ok(IdleReport {
        scenario: "idle",
        hub: hubs.info(),
        params: serde_json::to_value(args).unwrap_or_default(),
        requested: args.sockets,
        authenticated,
        held,
        hub_connections,
        ramp_s,
        connect_latency: live.totals().connect.summary(),
        rss_before_kib: rss_before,
        rss_held_kib: rss_held,
        rss_after_close_kib: rss_after_close,
        // Without a pid, the hub's own process_resident_memory_bytes.
        rss_per_socket_kib: per_socket(rss_before, rss_held).or_else(|| {
            let grown: Option<f64> = server.iter().map(|f| Some(f.rss_after_kib? - f.rss_before_kib?)).sum();
            grown.filter(|_| held > 0).map(|g| g / held as f64)
        }),
        harness_rss_per_socket_kib: per_socket(harness_before, harness_held),
        errors: live.errors_by_key(),
        cpu,
        server,
        timeline: ticker.timeline,
    })
}
