//! The `chat` scenario: U users, each with one socket and one open ticket, send at a target
//! aggregate rate; A agents claim every ticket, follow them on their console sockets and answer
//! every Nth message. It measures the sustained acknowledged (stored) rate, ack latency, the
//! end-to-end latency from a sender's send to the other side's receipt, errors by code, and checks
//! every ticket stream on every receiving socket for loss, duplicates and reordering.
//!
//! Phases: set-up (sign in, connect, open, claim, subscribe) -> run (warm-up, then the measured
//! window) -> stop (no new sends; wait for every ack) -> final (every receiver catches up to the
//! last acknowledged seq of its tickets, or the drain time runs out and the rest counts as lost).
//!
//! With `--attachment-share`, that share of the users' messages carries a picture: the user
//! uploads it first (over tus or in one request, beside its socket, as an app does) and sends the
//! message with the attachment's id once the hub has accepted the upload.

use crate::cluster::Cluster;
use crate::drops::{spawn_dropper, DropPlan, Drops};
use crate::hub::{CpuSnapshot, HubArgs, HubHandle};
use crate::metrics::batch_sizes;
use crate::picture::{splitmix, Picture};
use crate::report::{AttachmentFigures, ChatReport, ReconnectFigures};
use crate::seq::{DeliveryCheck, Seen, SeqChecker};
use crate::signin;
use crate::stats::{spawn_progress, Clock, Histograms, Live, Progress};
use crate::upload::{uuid_bits, uuid_text, Upload, UploadMode};
use crate::wire::{Body, Conn, ConnError, Frame};
use crate::ClientArgs;
use bytes::Bytes;
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Interval, MissedTickBehavior};

/// A console socket follows at most this many tickets (the hub's `MAX_SUBSCRIPTIONS`).
const HUB_MAX_SUBSCRIPTIONS: usize = 100;
/// Uploads one user has in progress at most (the hub's default `uploads_in_progress`).
const UPLOADS_PER_USER: usize = 4;

/// Parameters of `chat`. The defaults are the preset: about 40 s on a 2-core machine.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct ChatArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub hub: HubArgs,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Simulated app users, each with one socket and one open ticket.
    #[arg(long, default_value_t = 500)]
    pub users: usize,
    /// Agents; each signs in once and follows its share of the tickets on console sockets.
    #[arg(long, default_value_t = 5)]
    pub agents: usize,
    /// Tickets one agent console socket follows (at most 100, the hub's limit per socket).
    #[arg(long, default_value_t = 100)]
    pub tickets_per_agent_socket: usize,
    /// User messages per second, all users together (each user sends at rate / users).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds of load before the measured window (not measured).
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Agents answer every Nth message of each ticket (0: agents never answer).
    #[arg(long, default_value_t = 5)]
    pub reply_every: u64,
    /// Size of each message body in bytes.
    #[arg(long, default_value_t = 100)]
    pub body_bytes: usize,
    /// Users do not subscribe to their own ticket (by default they do, as the app does, and their
    /// stream is checked too).
    #[arg(long)]
    pub no_user_subscribe: bool,
    /// Agents also watch the queue (`queue.subscribe`), as a console does: every message then
    /// sends a `ticket.updated` to every agent.
    #[arg(long)]
    pub agents_watch_queue: bool,
    /// Unacknowledged sends per socket; a user at the limit waits (its latency keeps counting
    /// from the scheduled send time).
    #[arg(long, default_value_t = 32)]
    pub max_in_flight: usize,
    /// Seconds to wait for acks, then again for deliveries, after the load stops.
    #[arg(long, default_value_t = 10)]
    pub drain: u64,
    /// Agents as `email password` lines; created with `anapars-hub agent add` (and written here)
    /// when the file does not exist. Without it, fresh agents are created for the run.
    #[arg(long)]
    pub agents_file: Option<PathBuf>,
    /// Share of the users' messages (0 to 1) that carry one picture, uploaded just before the
    /// message is sent (see --upload).
    #[arg(long, default_value_t = 0.0)]
    pub attachment_share: f64,
    /// How pictures are uploaded: `tus` (resumable, in --chunk-bytes requests) or `single` (the
    /// whole file in one request).
    #[arg(long, value_enum, default_value = "tus")]
    pub upload: UploadMode,
    /// Bytes per tus request: the creation request's first chunk, then each PATCH (the hub refuses
    /// a piece under 16 KiB that does not complete the upload).
    #[arg(long, default_value_t = 65_536)]
    pub chunk_bytes: usize,
    /// Size the pictures come close to, in bytes (a JPEG of noise over a gradient).
    #[arg(long, default_value_t = 200_000)]
    pub attachment_bytes: usize,
    /// The pictures' width and height in pixels, `WxH`.
    #[arg(long, default_value = "1024x768", value_parser = parse_pixels)]
    pub attachment_pixels: (u32, u32),
}

/// `WxH` as a width and a height.
fn parse_pixels(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or("expected WxH, e.g. 1024x768")?;
    let side = |v: &str| v.trim().parse::<u32>().map_err(|e| format!("{v}: {e}"));
    Ok((side(w)?, side(h)?))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Setup,
    Run,
    Stop,
    Final,
}

/// What every socket task shares.
struct Ctx {
    live: Arc<Live>,
    clock: Clock,
    /// Last acknowledged seq per ticket (indexed like the users).
    max_acked: Vec<AtomicU64>,
    /// Tasks that have no send in flight any more after the stop (or ended).
    quiet: AtomicUsize,
    body: String,
    /// The nodes' WebSocket addresses.
    hubs: Vec<SocketAddr>,
    sources: Vec<IpAddr>,
    args: ChatArgs,
    setup: Semaphore,
    /// Drop signals and resume counters (`reconnect` only).
    drops: Option<Arc<Drops>>,
    /// Pictures and their uploads (with `--attachment-share` above 0).
    attach: Option<Attach>,
}

/// What the users' uploads share.
struct Attach {
    picture: Picture,
    http: reqwest::Client,
    /// The nodes' base URLs: a user uploads to the node of its socket.
    bases: Vec<String>,
    /// Uploads begun (also each one's variant number).
    started: AtomicU64,
    /// Messages sent with an attachment.
    messages: AtomicU64,
    /// Attachments on message events the agents received.
    seen_by_agents: AtomicU64,
}

/// Whether message `n` of user `idx` carries a picture: a well-spread hash of both, under `share`.
fn carries_picture(share: f64, idx: usize, n: u64) -> bool {
    let mut state = (idx as u64) << 40 ^ n;
    let unit = (splitmix(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
    unit < share
}

impl Ctx {
    fn source(&self, i: usize) -> IpAddr {
        self.sources[i % self.sources.len()]
    }

    fn hub(&self, node: usize) -> SocketAddr {
        self.hubs[node % self.hubs.len()]
    }

    /// Waits until the harness drops socket task `slot` (never, outside `reconnect`).
    async fn dropped(&self, slot: usize) {
        match &self.drops {
            Some(d) => d.wait(slot).await,
            None => std::future::pending().await,
        }
    }
}

/// A message id that carries its sender, number and scheduled send time: `{who}-{n}-{micros}`.
pub fn client_msg_id(who: &str, n: u64, at_us: u64) -> String {
    format!("{who}-{n}-{at_us}")
}

/// The number and send time in a [`client_msg_id`].
pub fn parse_client_msg_id(id: &str) -> Option<(u64, u64)> {
    let mut parts = id.rsplitn(3, '-');
    let at = parts.next()?.parse().ok()?;
    let n = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((n, at))
}

/// A body of exactly `bytes` bytes (at least one visible character).
pub fn body_of(bytes: usize) -> String {
    let head = "load test message ";
    let mut s: String = head.chars().take(bytes.max(1)).collect();
    while s.len() < bytes {
        s.push('x');
    }
    s
}

/// Counts a delivery anomaly as it happens (the final check counts them again, per stream).
fn note(live: &Live, seen: Seen) {
    match seen {
        Seen::InOrder => {}
        Seen::Gap(_) => live.error("delivery:gap"),
        Seen::Reordered => live.error("delivery:reorder"),
        Seen::Duplicate => live.error("delivery:duplicate"),
    }
}

/// The next tick of `ticker`; never, when there is none.
pub async fn next_tick(ticker: &mut Option<Interval>) -> tokio::time::Instant {
    match ticker {
        Some(t) => t.tick().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`; forever, when there is none.
pub async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The end of one socket task.
#[derive(Default)]
struct Outcome {
    /// (ticket index, its stream as this socket saw it).
    streams: Vec<(usize, SeqChecker)>,
    /// The socket failed before the end: its streams cannot be judged (an app would resume).
    died: bool,
}

/// Drain bookkeeping shared by users and agents.
struct Drain {
    quiet_reported: bool,
    deadline: Option<tokio::time::Instant>,
}

impl Drain {
    fn new() -> Self {
        Self { quiet_reported: false, deadline: None }
    }

    fn report_quiet(&mut self, ctx: &Ctx) {
        if !self.quiet_reported {
            self.quiet_reported = true;
            ctx.quiet.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A message sent and not yet acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    /// Scheduled send time: its latency counts from here, resends included.
    at_us: u64,
    /// The sender's number for it (with `at_us` and the ticket, its `client_msg_id`).
    n: u64,
    /// The ticket (its index, the same as its user's).
    ticket: usize,
    /// Sent again after a resume.
    resent: bool,
    /// The uploaded picture it carries (a uuid's bits).
    attachment: Option<u128>,
}

impl Pending {
    /// The message's `client_msg_id`: the same for every resend.
    fn client_msg_id(&self, agent: bool) -> String {
        client_msg_id(&format!("{}{}", if agent { "a" } else { "u" }, self.ticket), self.n, self.at_us)
    }
}

/// The ticket streams one socket follows, by ticket id: (ticket index, its check).
type Streams = HashMap<String, (usize, SeqChecker)>;

/// Sends message `p` to `ticket`, with its attachment if it has one; returns the request id.
async fn send_message(ctx: &Ctx, conn: &mut Conn, ticket: &str, p: &Pending, agent: bool) -> Result<u64, ConnError> {
    let cmid = p.client_msg_id(agent);
    let id = p.attachment.map(uuid_text);
    let ids: Vec<&str> = id.iter().map(String::as_str).collect();
    let attachments = (!ids.is_empty()).then_some(ids.as_slice());
    conn.send("ticket.send", Body::Send { ticket_id: ticket, client_msg_id: &cmid, body: &ctx.body, attachments }).await
}

/// Uploads the picture of user message `p` (a variant no other upload of the run has sent) to the
/// user's node. Returns `p` carrying the attachment, its send time reset to now (the upload has its
/// own figure), or the error key.
async fn upload_picture(ctx: Arc<Ctx>, idx: usize, token: Arc<str>, p: Pending) -> Result<Pending, String> {
    let attach = ctx.attach.as_ref().ok_or("upload:off")?;
    let number = attach.started.fetch_add(1, Ordering::Relaxed);
    let file = Bytes::from(attach.picture.variant(number));
    let bytes = file.len() as u64;
    let name = format!("photo-{idx}-{}.jpg", p.n);
    let upload = Upload {
        base: &attach.bases[idx % attach.bases.len()],
        token: &token,
        name: &name,
        mode: ctx.args.upload,
        chunk: ctx.args.chunk_bytes,
    };
    let started = Instant::now();
    let id = upload.send(&attach.http, file).await.map_err(|key| format!("upload:{key}"))?;
    ctx.live.record(|h: &mut Histograms| &mut h.upload, started.elapsed().as_micros() as u64);
    ctx.live.uploads.fetch_add(1, Ordering::Relaxed);
    ctx.live.upload_bytes.fetch_add(bytes, Ordering::Relaxed);
    let bits = uuid_bits(&id).ok_or("upload:id_not_a_uuid")?;
    Ok(Pending { at_us: ctx.clock.now(), attachment: Some(bits), ..p })
}

/// Connects socket task `slot` to node `node` and authenticates it.
async fn connect_and_auth(ctx: &Ctx, slot: usize, node: usize, token: &str, agent: bool) -> Result<Conn, ConnError> {
    let encoding = ctx.args.client.encoding.for_socket(slot);
    Conn::open(ctx.hub(node), ctx.source(slot), encoding, token, agent).await
}

/// Subscribes `conn` to every stream from its cursor (the last seq received); the events that
/// arrive meanwhile go to their stream's check.
async fn follow(ctx: &Ctx, conn: &mut Conn, streams: &mut Streams) -> Result<(), ConnError> {
    let mut tickets: Vec<(usize, String)> = streams.iter().map(|(id, (idx, _))| (*idx, id.clone())).collect();
    tickets.sort_unstable();
    for (_, ticket) in tickets {
        let after = streams.get(&ticket).map_or(0, |(_, c)| c.highest());
        let live = &ctx.live;
        let mut on_event = |f: Frame| {
            if let Some(e) = f.event.filter(|_| f.kind == "ticket.event") {
                if let Some((_, c)) = streams.get_mut(&e.ticket_id) {
                    note(live, c.observe(e.seq));
                }
            }
        };
        let sub = Body::Subscribe { ticket_id: &ticket, after_seq: after };
        conn.expect("ticket.subscribe", sub, "ticket.subscribe.ok", &mut on_event).await?;
    }
    Ok(())
}

/// The harness dropped the socket of task `slot` (already closed without a close frame): connect
/// again, authenticate, subscribe to every stream from its cursor, and resend what was not
/// acknowledged with the same `client_msg_id`s. Returns the new socket and its pending sends.
#[allow(clippy::too_many_arguments)]
async fn resume(
    ctx: &Ctx,
    slot: usize,
    node: usize,
    token: &str,
    agent: bool,
    streams: &mut Streams,
    tickets: &[(usize, String)],
    pending: HashMap<u64, Pending>,
) -> Result<(Conn, HashMap<u64, Pending>), ConnError> {
    let started = Instant::now();
    let mut conn = connect_and_auth(ctx, slot, node, token, agent).await?;
    follow(ctx, &mut conn, streams).await?;
    let mut unacked: Vec<Pending> = pending.into_values().collect();
    unacked.sort_unstable_by_key(|p| (p.at_us, p.n));
    let mut inflight = HashMap::with_capacity(unacked.len());
    for p in unacked {
        let Some((_, ticket)) = tickets.iter().find(|(idx, _)| *idx == p.ticket) else { continue };
        let id = send_message(ctx, &mut conn, ticket, &p, agent).await?;
        inflight.insert(id, Pending { resent: true, ..p });
    }
    if let Some(drops) = &ctx.drops {
        drops.resumed.fetch_add(1, Ordering::Relaxed);
        drops.resent.fetch_add(inflight.len() as u64, Ordering::Relaxed);
    }
    ctx.live.record(|h: &mut Histograms| &mut h.resume, started.elapsed().as_micros() as u64);
    Ok((conn, inflight))
}

/// One app user: sign-in token in, ticket opened, then messages at the paced rate.
async fn user(
    ctx: Arc<Ctx>,
    idx: usize,
    token: String,
    ready: oneshot::Sender<Option<String>>,
    mut phase: watch::Receiver<Phase>,
) -> Outcome {
    let subscribe = !ctx.args.no_user_subscribe;
    let mut streams = Streams::new();
    let setup = async {
        let _permit = ctx.setup.acquire().await;
        let mut conn = connect_and_auth(&ctx, idx, idx, &token, false).await?;
        ctx.live.sockets.fetch_add(1, Ordering::Relaxed);
        let cmid = format!("open-{idx}-{}", ctx.clock.now());
        let ticket = conn.open_ticket(&format!("load test {idx}"), &ctx.body, &cmid).await?;
        if subscribe {
            streams.insert(ticket.clone(), (idx, SeqChecker::after(0)));
            follow(&ctx, &mut conn, &mut streams).await?;
        }
        Ok::<_, ConnError>((conn, ticket))
    };
    let (mut conn, ticket) = match setup.await {
        Ok(ok) => ok,
        Err(e) => {
            ctx.live.error(format!("user:{}", e.key()));
            let _ = ready.send(None);
            ctx.quiet.fetch_add(1, Ordering::SeqCst);
            return Outcome { streams: Vec::new(), died: true };
        }
    };
    let _ = ready.send(Some(ticket.clone()));
    let tickets = [(idx, ticket.clone())];

    let users = ctx.args.users.max(1) as f64;
    let period = Duration::from_secs_f64((users / ctx.args.rate.max(0.001)).max(0.000_001));
    // Spread the users' phases evenly over one period (golden-ratio sequence).
    let offset = period.mul_f64((idx as f64 * 0.618_033_988_75).fract());
    let mut ticker: Option<Interval> = None;
    let mut inflight: HashMap<u64, Pending> = HashMap::new();
    let mut uploads: JoinSet<Result<Pending, String>> = JoinSet::new();
    let upload_token: Arc<str> = Arc::from(token.as_str());
    let mut n = 0u64;
    let mut died = false;
    let mut drain = Drain::new();
    let mut current = *phase.borrow();
    loop {
        let can_send = current == Phase::Run && inflight.len() < ctx.args.max_in_flight;
        // A message due now: from the ticker, or one whose picture the hub has just accepted.
        let mut due: Option<Pending> = None;
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() { break; }
                current = *phase.borrow_and_update();
                match current {
                    Phase::Run => {
                        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
                        ticker = Some(t);
                    }
                    Phase::Stop => {
                        ticker = None;
                        drain.deadline = Some(tokio::time::Instant::now() + Duration::from_secs(ctx.args.drain));
                    }
                    Phase::Final => {
                        drain.deadline = Some(tokio::time::Instant::now() + Duration::from_secs(ctx.args.drain));
                    }
                    Phase::Setup => {}
                }
            }
            () = ctx.dropped(idx) => {
                conn.abort();
                ctx.live.sockets.fetch_sub(1, Ordering::Relaxed);
                let pending = std::mem::take(&mut inflight);
                match resume(&ctx, idx, idx, &token, false, &mut streams, &tickets, pending).await {
                    Ok((c, resent)) => {
                        conn = c;
                        inflight = resent;
                        ctx.live.sockets.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        // The old socket is gone: nothing to close; its streams cannot be judged.
                        ctx.live.error(format!("user:resume:{}", e.key()));
                        drain.report_quiet(&ctx);
                        return Outcome { streams: streams.into_values().collect(), died: true };
                    }
                }
            }
            frame = conn.recv() => match frame {
                Ok(f) => on_user_frame(&ctx, f, &mut inflight, &mut streams),
                Err(e) => { ctx.live.error(format!("user:{}", e.key())); died = true; break; }
            },
            at = next_tick(&mut ticker), if can_send => {
                n += 1;
                let p = Pending { at_us: ctx.clock.at(at.into_std()), n, ticket: idx, resent: false, attachment: None };
                let share = ctx.args.attachment_share;
                if ctx.attach.is_none() || !carries_picture(share, idx, n) {
                    due = Some(p);
                } else if uploads.len() < UPLOADS_PER_USER {
                    uploads.spawn(upload_picture(ctx.clone(), idx, upload_token.clone(), p));
                } else {
                    // As an app would: the text goes now, the picture is not sent.
                    ctx.live.error("upload:skipped_user_has_4_in_progress");
                    due = Some(p);
                }
            }
            Some(done) = uploads.join_next(), if !uploads.is_empty() => match done {
                // After the drain a message would come too late for the delivery check.
                Ok(Ok(_)) if current == Phase::Final => ctx.live.error("upload:accepted_after_drain"),
                Ok(Ok(p)) => due = Some(p),
                Ok(Err(key)) => ctx.live.error(key),
                Err(_) => ctx.live.error("upload:task_failed"),
            },
            _ = sleep_until_opt(drain.deadline) => break,
        }
        if let Some(p) = due {
            match send_message(&ctx, &mut conn, &ticket, &p, false).await {
                Ok(id) => {
                    inflight.insert(id, p);
                    ctx.live.sent.fetch_add(1, Ordering::Relaxed);
                    if let (Some(attach), Some(_)) = (&ctx.attach, p.attachment) {
                        attach.messages.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    ctx.live.error(format!("user:{}", e.key()));
                    died = true;
                    break;
                }
            }
        }
        if matches!(current, Phase::Stop | Phase::Final) && inflight.is_empty() && uploads.is_empty() {
            drain.report_quiet(&ctx);
        }
        if current == Phase::Final
            && inflight.is_empty()
            && streams.values().all(|(_, c)| c.caught_up(ctx.max_acked[idx].load(Ordering::SeqCst)))
        {
            break;
        }
    }
    drain.report_quiet(&ctx);
    for _ in 0..inflight.len() {
        ctx.live.error("unacked");
    }
    for _ in 0..uploads.len() {
        ctx.live.error("upload:unfinished");
    }
    uploads.abort_all();
    ctx.live.sockets.fetch_sub(1, Ordering::Relaxed);
    conn.close().await;
    Outcome { streams: streams.into_values().collect(), died }
}

fn on_user_frame(ctx: &Ctx, f: Frame, inflight: &mut HashMap<u64, Pending>, streams: &mut Streams) {
    match f.kind.as_str() {
        "ticket.send.ok" => on_ack(ctx, &f, f.id.and_then(|id| inflight.remove(&id)), false),
        "error" => {
            if let Some(id) = f.id {
                inflight.remove(&id);
            }
            ctx.live.error(format!("error:{}", f.code.as_deref().unwrap_or("none")));
        }
        "ticket.event" => {
            let Some(e) = f.event else { return ctx.live.error("bad_event") };
            let Some((_, checker)) = streams.get_mut(&e.ticket_id) else {
                return ctx.live.error("delivery:foreign_ticket");
            };
            note(&ctx.live, checker.observe(e.seq));
            if e.kind == "message" && e.author.kind == "agent" {
                ctx.live.delivered.fetch_add(1, Ordering::Relaxed);
                if let Some((_, at)) = e.client_msg_id.as_deref().and_then(parse_client_msg_id) {
                    ctx.live.record(|h: &mut Histograms| &mut h.e2e_to_user, ctx.clock.now().saturating_sub(at));
                }
            }
        }
        _ => {}
    }
}

/// An ack for `sent` (None: not one of ours), by a user or an agent.
fn on_ack(ctx: &Ctx, f: &Frame, sent: Option<Pending>, agent: bool) {
    let Some(p) = sent else { return ctx.live.error("unexpected_reply") };
    let latency = ctx.clock.now().saturating_sub(p.at_us);
    if agent {
        ctx.live.record(|h: &mut Histograms| &mut h.ack_agent, latency);
    } else {
        ctx.live.record(|h: &mut Histograms| &mut h.ack, latency);
        if p.attachment.is_some() {
            ctx.live.record(|h: &mut Histograms| &mut h.ack_attachment, latency);
        }
    }
    ctx.live.acked.fetch_add(1, Ordering::Relaxed);
    if let Some(seq) = f.seq {
        ctx.max_acked[p.ticket].fetch_max(seq, Ordering::SeqCst);
    }
    if f.duplicate == Some(true) {
        match &ctx.drops {
            // Stored before the drop; its reply went down with the socket.
            Some(drops) if p.resent => {
                drops.resent_duplicates.fetch_add(1, Ordering::Relaxed);
            }
            _ => ctx.live.error("unexpected_duplicate_ack"),
        }
    }
}

/// One agent console socket (task `slot`, on node `node`) following `tickets` (index, id).
#[allow(clippy::too_many_arguments)]
async fn agent_socket(
    ctx: Arc<Ctx>,
    socket_no: usize,
    slot: usize,
    node: usize,
    token: Arc<String>,
    tickets: Vec<(usize, String)>,
    ready: oneshot::Sender<usize>,
    mut phase: watch::Receiver<Phase>,
) -> Outcome {
    let mut streams = Streams::new();
    let setup = async {
        let _permit = ctx.setup.acquire().await;
        let mut conn = connect_and_auth(&ctx, socket_no, node, &token, true).await?;
        ctx.live.sockets.fetch_add(1, Ordering::Relaxed);
        let mut ignore = |_f: Frame| {};
        if ctx.args.agents_watch_queue {
            conn.expect("queue.subscribe", Body::Empty {}, "queue.subscribe.ok", &mut ignore).await?;
        }
        for (idx, ticket) in &tickets {
            let claim = conn.request("ticket.claim", Body::Ticket { ticket_id: ticket }, &mut ignore).await?;
            if claim.kind != "ticket.update.ok" {
                ctx.live.error(format!("claim:{}", claim.code.as_deref().unwrap_or(&claim.kind)));
                continue;
            }
            streams.insert(ticket.clone(), (*idx, SeqChecker::after(0)));
        }
        follow(&ctx, &mut conn, &mut streams).await?;
        Ok::<_, ConnError>(conn)
    };
    let mut conn = match setup.await {
        Ok(c) => c,
        Err(e) => {
            ctx.live.error(format!("agent:{}", e.key()));
            let claimed = streams.len();
            let _ = ready.send(claimed);
            ctx.quiet.fetch_add(1, Ordering::SeqCst);
            return Outcome { streams: streams.into_values().collect(), died: true };
        }
    };
    let _ = ready.send(streams.len());

    let mut inflight: HashMap<u64, Pending> = HashMap::new();
    let mut died = false;
    let mut drain = Drain::new();
    let mut current = *phase.borrow();
    loop {
        tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() { break; }
                current = *phase.borrow_and_update();
                if matches!(current, Phase::Stop | Phase::Final) {
                    drain.deadline = Some(tokio::time::Instant::now() + Duration::from_secs(ctx.args.drain));
                }
            }
            () = ctx.dropped(slot) => {
                conn.abort();
                ctx.live.sockets.fetch_sub(1, Ordering::Relaxed);
                let pending = std::mem::take(&mut inflight);
                match resume(&ctx, socket_no, node, &token, true, &mut streams, &tickets, pending).await {
                    Ok((c, resent)) => {
                        conn = c;
                        inflight = resent;
                        ctx.live.sockets.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        // The old socket is gone: nothing to close; its streams cannot be judged.
                        ctx.live.error(format!("agent:resume:{}", e.key()));
                        drain.report_quiet(&ctx);
                        return Outcome { streams: streams.into_values().collect(), died: true };
                    }
                }
            }
            frame = conn.recv() => {
                let f = match frame {
                    Ok(f) => f,
                    Err(e) => { ctx.live.error(format!("agent:{}", e.key())); died = true; break; }
                };
                if let Err(e) = on_agent_frame(&ctx, &mut conn, f, current, &mut inflight, &mut streams).await {
                    ctx.live.error(format!("agent:{}", e.key()));
                    died = true;
                    break;
                }
            }
            _ = sleep_until_opt(drain.deadline) => break,
        }
        if matches!(current, Phase::Stop | Phase::Final) && inflight.is_empty() {
            drain.report_quiet(&ctx);
        }
        if current == Phase::Final
            && inflight.is_empty()
            && streams.values().all(|(idx, c)| c.caught_up(ctx.max_acked[*idx].load(Ordering::SeqCst)))
        {
            break;
        }
    }
    drain.report_quiet(&ctx);
    for _ in 0..inflight.len() {
        ctx.live.error("unacked");
    }
    ctx.live.sockets.fetch_sub(1, Ordering::Relaxed);
    conn.close().await;
    Outcome { streams: streams.into_values().collect(), died }
}

async fn on_agent_frame(
    ctx: &Ctx,
    conn: &mut Conn,
    f: Frame,
    phase: Phase,
    inflight: &mut HashMap<u64, Pending>,
    streams: &mut Streams,
) -> Result<(), ConnError> {
    match f.kind.as_str() {
        "ticket.send.ok" => on_ack(ctx, &f, f.id.and_then(|id| inflight.remove(&id)), true),
        "error" => {
            if let Some(id) = f.id {
                inflight.remove(&id);
            }
            ctx.live.error(format!("error:{}", f.code.as_deref().unwrap_or("none")));
        }
        "ticket.event" => {
            let Some(e) = f.event else {
                ctx.live.error("bad_event");
                return Ok(());
            };
            let Some((idx, checker)) = streams.get_mut(&e.ticket_id) else {
                ctx.live.error("delivery:foreign_ticket");
                return Ok(());
            };
            note(&ctx.live, checker.observe(e.seq));
            if e.kind != "message" || e.author.kind != "user" {
                return Ok(());
            }
            ctx.live.delivered.fetch_add(1, Ordering::Relaxed);
            if let Some(attach) = ctx.attach.as_ref().filter(|_| !e.attachments.is_empty()) {
                attach.seen_by_agents.fetch_add(e.attachments.len() as u64, Ordering::Relaxed);
                for a in e.attachments.iter().filter(|a| a.kind != "image") {
                    ctx.live.error(format!("attachment:kind:{}", a.kind));
                }
            }
            let Some((n, at)) = e.client_msg_id.as_deref().and_then(parse_client_msg_id) else {
                return Ok(());
            };
            ctx.live.record(|h: &mut Histograms| &mut h.e2e_to_agent, ctx.clock.now().saturating_sub(at));
            let every = ctx.args.reply_every;
            if phase == Phase::Run && every > 0 && n % every == 0 {
                if inflight.len() >= ctx.args.max_in_flight {
                    ctx.live.error("agent:reply_skipped_in_flight_limit");
                    return Ok(());
                }
                let p = Pending { at_us: ctx.clock.now(), n, ticket: *idx, resent: false, attachment: None };
                let id = send_message(ctx, conn, &e.ticket_id, &p, true).await?;
                inflight.insert(id, p);
                ctx.live.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Splits the tickets over agents (round robin), then each agent's share into sockets of at most
/// `per_socket` tickets. Returns, per socket, its agent and its tickets.
pub fn assign<T: Clone>(tickets: &[T], agents: usize, per_socket: usize) -> Vec<(usize, Vec<T>)> {
    let agents = agents.max(1);
    let per_socket = per_socket.clamp(1, HUB_MAX_SUBSCRIPTIONS);
    let mut shares: Vec<Vec<T>> = vec![Vec::new(); agents];
    for (i, t) in tickets.iter().enumerate() {
        shares[i % agents].push(t.clone());
    }
    let mut out = Vec::new();
    for (agent, share) in shares.into_iter().enumerate() {
        for chunk in share.chunks(per_socket) {
            out.push((agent, chunk.to_vec()));
        }
    }
    out
}

/// Like [`assign`], for a cluster: the tickets of the users on each node are dealt to agent
/// sockets on the *next* node, so that every message crosses from one node to another (through
/// Redis). Returns, per socket, its node, its agent and its tickets. One node: all on node 0.
pub fn assign_across_nodes<T: Clone>(
    tickets: &[T],
    node_of: impl Fn(&T) -> usize,
    nodes: usize,
    agents: usize,
    per_socket: usize,
) -> Vec<(usize, usize, Vec<T>)> {
    let nodes = nodes.max(1);
    let mut out = Vec::new();
    for node in 0..nodes {
        let here: Vec<T> = tickets.iter().filter(|t| node_of(t) % nodes == node).cloned().collect();
        for (agent, share) in assign(&here, agents, per_socket) {
            out.push(((node + 1) % nodes, agent, share));
        }
    }
    out
}

/// Runs the scenario and returns its report.
///
/// # Errors
/// The hub cannot be reached or started, or agents cannot be created.
pub async fn run(args: ChatArgs) -> anyhow::Result<ChatReport> {
    run_with_drops(args, None).await
}

/// Runs the chat load, with the drops of `reconnect` when `drops` is given.
///
/// # Errors
/// As [`run`].
pub async fn run_with_drops(args: ChatArgs, drops: Option<DropPlan>) -> anyhow::Result<ChatReport> {
    run_with(args, drops, None).await
}

/// Work started beside the load when the measured window opens (given the first node), its
/// figures added to the report as `beside`. The load goes on until it ends.
pub type Beside = Box<dyn FnOnce(&HubHandle) -> tokio::task::JoinHandle<serde_json::Value> + Send>;

/// Runs the chat load with the drops of `reconnect` when `drops` is given, and `beside` it.
///
/// # Errors
/// As [`run`].
pub async fn run_with(args: ChatArgs, drops: Option<DropPlan>, beside: Option<Beside>) -> anyhow::Result<ChatReport> {
    anyhow::ensure!(args.users >= 1 && args.rate > 0.0, "--users and --rate must be positive");
    anyhow::ensure!((0.0..=1.0).contains(&args.attachment_share), "--attachment-share must be between 0 and 1");
    anyhow::ensure!(
        args.attachment_share == 0.0 || !args.hub.peer.target.is_peer(),
        "the peers take no attachments: --attachment-share needs the hub"
    );
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let mut hubs = Cluster::open(&args.hub, &http).await?;
    let result = run_on(&args, drops.as_ref(), beside, &http, &hubs).await;
    hubs.stop();
    result
}

async fn run_on(
    args: &ChatArgs,
    reconnect: Option<&DropPlan>,
    beside: Option<Beside>,
    http: &reqwest::Client,
    hubs: &Cluster,
) -> anyhow::Result<ChatReport> {
    let started = Instant::now();
    let scenario = if reconnect.is_some() { "reconnect" } else { "chat" };
    let hub = hubs.first();
    eprintln!("{scenario}: hubs {}; signing in {} users", hubs.describe(), args.users);
    // Socket task slots: users first, then agent sockets (at most one per ticket plus one per agent).
    let slots = 2 * args.users + args.agents;
    let drops = reconnect.map(|_| Arc::new(Drops::new(slots)));
    let attach = if args.attachment_share > 0.0 {
        let ((width, height), bytes) = (args.attachment_pixels, args.attachment_bytes);
        let picture = tokio::task::spawn_blocking(move || Picture::make(width, height, bytes)).await??;
        eprintln!(
            "{scenario}: pictures of {width}x{height} pixels, {} bytes, on {:.0}% of user messages ({})",
            picture.len(),
            100.0 * args.attachment_share,
            args.upload.name()
        );
        Some(Attach {
            picture,
            http: http.clone(),
            bases: hubs.nodes.iter().map(|n| n.base.clone()).collect(),
            started: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            seen_by_agents: AtomicU64::new(0),
        })
    } else {
        None
    };
    let ctx = Arc::new(Ctx {
        live: Arc::new(Live::default()),
        clock: Clock::default(),
        max_acked: (0..args.users).map(|_| AtomicU64::new(0)).collect(),
        quiet: AtomicUsize::new(0),
        body: body_of(args.body_bytes),
        hubs: hubs.addrs(),
        sources: crate::wire::source_ips(args.client.source_ips),
        args: args.clone(),
        setup: Semaphore::new(args.client.setup_concurrency.max(1)),
        drops: drops.clone(),
        attach,
    });
    let agents = if args.agents > 0 {
        signin::agents(args.agents_file.as_ref(), &args.hub.hub_bin, hub, args.agents).await?
    } else {
        Vec::new()
    };
    let tokens = signin::sign_in_users(http, hub, &args.hub, &args.client, args.users, &ctx.live).await?;
    eprintln!(
        "{scenario}: {} users signed in ({:.1} s); opening sockets and tickets",
        tokens.iter().flatten().count(),
        started.elapsed().as_secs_f64()
    );

    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let mut tasks = JoinSet::new();
    let mut readies = Vec::new();
    for (idx, token) in tokens.into_iter().enumerate() {
        let Some(token) = token else { continue };
        let (tx, rx) = oneshot::channel();
        readies.push((idx, rx));
        tasks.spawn(user(ctx.clone(), idx, token, tx, phase_rx.clone()));
    }
    let spawned_users = readies.len();
    let mut tickets = Vec::new();
    for (idx, rx) in readies {
        if let Ok(Some(ticket)) = rx.await {
            tickets.push((idx, ticket));
        }
    }
    let users_ready = tickets.len();

    let mut agent_tokens = Vec::new();
    for a in &agents {
        match signin::agent_login(http, &hub.base, a).await {
            Ok(t) => agent_tokens.push(Arc::new(t)),
            Err(key) => ctx.live.error(format!("agent_login:{key}")),
        }
    }
    let plan = if agent_tokens.is_empty() {
        Vec::new()
    } else {
        let node_of = |t: &(usize, String)| hubs.node_of(t.0);
        assign_across_nodes(&tickets, node_of, hubs.nodes.len(), agent_tokens.len(), args.tickets_per_agent_socket)
    };
    let mut agent_readies = Vec::new();
    for (socket_no, (node, agent, share)) in plan.into_iter().enumerate() {
        let (tx, rx) = oneshot::channel();
        agent_readies.push(rx);
        let token = agent_tokens[agent].clone();
        let slot = args.users + socket_no;
        let phase = phase_rx.clone();
        tasks.spawn(agent_socket(ctx.clone(), socket_no, slot, node, token, share, tx, phase));
    }
    let agent_sockets = agent_readies.len();
    let mut tickets_claimed = 0;
    for rx in agent_readies {
        tickets_claimed += rx.await.unwrap_or(0);
    }
    // Every spawned task reports quiet exactly once (also when its set-up failed).
    let total_tasks = spawned_users + agent_sockets;
    eprintln!(
        "{scenario}: {users_ready} users ready, {agent_sockets} agent sockets, {tickets_claimed} tickets claimed ({:.1} s); load for {} + {} s at {} msgs/s",
        started.elapsed().as_secs_f64(),
        args.warmup,
        args.duration,
        args.rate
    );

    // Load.
    let style = if ctx.attach.is_some() { Progress::ChatUploads } else { Progress::Chat };
    let (progress_stop, progress) = spawn_progress(ctx.live.clone(), style);
    let _ = phase_tx.send(Phase::Run);
    let dropper = match (reconnect, &drops) {
        (Some(r), Some(d)) => Some(spawn_dropper(d.clone(), ctx.live.clone(), args.users + agent_sockets, r)),
        _ => None,
    };
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let metrics_before = hub.metrics(http).await;
    let server_before = hubs.snapshot(http).await;
    let cpu_before = CpuSnapshot::take(&hubs.nodes);
    let shards_before = hubs.redis_shard_cpu_secs();
    let counters = |l: &Live| {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        (load(&l.sent), load(&l.acked), load(&l.delivered), load(&l.uploads), load(&l.upload_bytes))
    };
    ctx.live.start_measuring();
    let beside = beside.map(|start| start(hub));
    let window_start = Instant::now();
    let c0 = counters(&ctx.live);
    let rss_peaks = hubs.watch_rss(Duration::from_secs(args.duration)).await;
    let c1 = counters(&ctx.live);
    let window_s = window_start.elapsed().as_secs_f64();
    ctx.live.measuring.store(false, Ordering::Relaxed);
    let cpu = cpu_before.until(&CpuSnapshot::take(&hubs.nodes));
    let redis_shards_s = shards_before
        .iter()
        .zip(hubs.redis_shard_cpu_secs())
        .map(|(before, after)| Some(after? - (*before)?))
        .collect::<Option<Vec<f64>>>()
        .filter(|s| !s.is_empty());
    let mut server = hubs.figures(&server_before, &hubs.snapshot(http).await);
    for (f, peak) in server.iter_mut().zip(rss_peaks) {
        let readings = [peak.map(|k| k as f64), f.rss_before_kib, f.rss_after_kib];
        f.rss_peak_kib = peak.and(readings.into_iter().flatten().reduce(f64::max));
    }
    let metrics_after = hub.metrics(http).await;
    let histograms = ctx.live.totals();
    if let Some((stop, handle)) = dropper {
        let _ = stop.send(());
        let _ = handle.await;
    }
    let beside = match beside {
        Some(handle) => Some(handle.await.unwrap_or_else(|e| serde_json::json!({"failed": e.to_string()}))),
        None => None,
    };

    // Drain: wait for every ack, then for every receiver to catch up.
    let _ = phase_tx.send(Phase::Stop);
    let deadline = Instant::now() + Duration::from_secs(args.drain);
    while ctx.quiet.load(Ordering::SeqCst) < total_tasks && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = phase_tx.send(Phase::Final);
    let mut outcomes = Vec::new();
    let hard_deadline = tokio::time::Instant::now() + Duration::from_secs(args.drain + 10);
    loop {
        match tokio::time::timeout_at(hard_deadline, tasks.join_next()).await {
            Ok(Some(Ok(o))) => outcomes.push(o),
            Ok(Some(Err(_))) => ctx.live.error("task_failed"),
            Ok(None) => break,
            Err(_) => {
                ctx.live.error("task_timeout");
                tasks.abort_all();
                break;
            }
        }
    }
    let _ = progress_stop.send(());
    let ticker = progress.await.unwrap_or_default();

    let mut delivery = DeliveryCheck::default();
    for o in &outcomes {
        if o.died {
            delivery.abandoned += o.streams.len() as u64;
            continue;
        }
        for (idx, checker) in &o.streams {
            delivery.add(checker, ctx.max_acked[*idx].load(Ordering::SeqCst));
        }
    }
    let mut params = serde_json::to_value(args).unwrap_or_default();
    if let (Some(r), Some(map)) = (reconnect, params.as_object_mut()) {
        map.insert("drop_share".into(), r.drop_share.into());
        map.insert("drop_every".into(), r.drop_every.into());
        map.insert("seed".into(), r.seed.into());
    }
    let reconnect = drops.map(|d| ReconnectFigures { resume_latency: histograms.resume.summary(), ..d.figures() });
    let attachments = ctx.attach.as_ref().map(|a| AttachmentFigures {
        share: args.attachment_share,
        upload: args.upload.name(),
        chunk_bytes: args.chunk_bytes,
        picture_bytes: a.picture.len(),
        picture_pixels: (a.picture.width, a.picture.height),
        started: a.started.load(Ordering::Relaxed),
        completed: ctx.live.uploads.load(Ordering::Relaxed),
        in_window: c1.3 - c0.3,
        uploads_per_s: (c1.3 - c0.3) as f64 / window_s,
        upload_bytes_per_s: (c1.4 - c0.4) as f64 / window_s,
        upload_latency: histograms.upload.summary(),
        messages: a.messages.load(Ordering::Relaxed),
        ack_latency: histograms.ack_attachment.summary(),
        seen_by_agents: a.seen_by_agents.load(Ordering::Relaxed),
    });
    Ok(ChatReport {
        scenario,
        hub: hubs.info(),
        params,
        users_ready,
        agent_sockets,
        tickets_claimed,
        window_s,
        target_rate: args.rate,
        sent_per_s: (c1.0 - c0.0) as f64 / window_s,
        acked: c1.1 - c0.1,
        acked_per_s: (c1.1 - c0.1) as f64 / window_s,
        delivered_per_s: (c1.2 - c0.2) as f64 / window_s,
        ack_latency: histograms.ack.summary(),
        ack_latency_agents: histograms.ack_agent.summary(),
        e2e_user_to_agent: histograms.e2e_to_agent.summary(),
        e2e_agent_to_user: histograms.e2e_to_user.summary(),
        errors: ctx.live.errors_by_key(),
        // A stream that could not be judged is not a pass.
        delivery_ok: delivery.ok() && delivery.abandoned == 0,
        delivery,
        batch_sizes: batch_sizes(&metrics_before, &metrics_after),
        hub_cpu_us_per_ack: cpu.hub_s.filter(|_| c1.1 > c0.1).map(|s| s * 1e6 / (c1.1 - c0.1) as f64),
        cpu,
        redis_shards_s,
        server,
        reconnect,
        attachments,
        beside,
        timeline: ticker.timeline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_carry_number_and_send_time() {
        let id = client_msg_id("u17", 42, 1_767_225_600_000_123);
        assert_eq!(id, "u17-42-1767225600000123");
        assert!(id.len() <= 64, "the hub's limit");
        assert_eq!(parse_client_msg_id(&id), Some((42, 1_767_225_600_000_123)));
        assert_eq!(parse_client_msg_id("open-3-99"), Some((3, 99)));
        assert_eq!(parse_client_msg_id("from-another-client"), None);
        assert_eq!(parse_client_msg_id("1-2"), None);
    }

    #[test]
    fn bodies_have_the_asked_size() {
        assert_eq!(body_of(100).len(), 100);
        assert_eq!(body_of(5), "load ");
        assert_eq!(body_of(0), "l");
        assert!(!body_of(1).trim().is_empty());
    }

    #[test]
    fn tickets_spread_over_agents_and_sockets_of_at_most_100() {
        let tickets: Vec<usize> = (0..450).collect();
        let plan = assign(&tickets, 2, 100);
        // 225 each: 100 + 100 + 25 per agent.
        assert_eq!(
            plan.iter().map(|(a, t)| (*a, t.len())).collect::<Vec<_>>(),
            [(0, 100), (0, 100), (0, 25), (1, 100), (1, 100), (1, 25)]
        );
        let mut all: Vec<usize> = plan.into_iter().flat_map(|(_, t)| t).collect();
        all.sort_unstable();
        assert_eq!(all, tickets, "every ticket exactly once");
        assert!(assign(&tickets, 1, 1000).iter().all(|(_, t)| t.len() <= 100), "capped at the hub's limit");
        assert!(assign::<usize>(&[], 3, 100).is_empty());
    }

    #[test]
    fn in_a_cluster_agents_follow_tickets_from_another_node() {
        // Users 0..9 on 3 nodes round robin; 2 agents.
        let tickets: Vec<usize> = (0..9).collect();
        let plan = assign_across_nodes(&tickets, |t| t % 3, 3, 2, 100);
        for (node, _, share) in &plan {
            assert!(share.iter().all(|t| (t % 3 + 1) % 3 == *node), "{plan:?}");
        }
        let mut all: Vec<usize> = plan.iter().flat_map(|(_, _, t)| t.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, tickets, "every ticket exactly once");
        let single = assign_across_nodes(&tickets, |t| t % 3, 1, 2, 100);
        assert!(single.iter().all(|(node, _, _)| *node == 0));
        assert_eq!(single.len(), 2);
    }

    #[test]
    fn the_asked_share_of_messages_carries_a_picture() {
        let picked = |share| {
            (0..100)
                .flat_map(|idx| (1..=100).map(move |n| (idx, n)))
                .filter(|&(i, n)| carries_picture(share, i, n))
                .count()
        };
        assert_eq!(picked(0.0), 0);
        assert_eq!(picked(1.0), 10_000);
        let tenth = picked(0.1);
        assert!((900..=1100).contains(&tenth), "{tenth}");
        // Spread over users, not bunched on a few.
        let users = (0..100).filter(|&i| (1..=100).any(|n| carries_picture(0.1, i, n))).count();
        assert!(users > 95, "{users}");
    }

    #[test]
    fn pixels_are_given_as_width_x_height() {
        assert_eq!(parse_pixels("1024x768"), Ok((1024, 768)));
        assert_eq!(parse_pixels("64X48"), Ok((64, 48)));
        assert!(parse_pixels("1024").is_err());
        assert!(parse_pixels("ax3").is_err());
    }

    #[test]
    fn a_resent_message_keeps_its_client_msg_id() {
        let p = Pending { at_us: 1_700_000_000_000_001, n: 4, ticket: 12, resent: false, attachment: Some(7) };
        let again = Pending { resent: true, ..p };
        assert_eq!(p.client_msg_id(false), "u12-4-1700000000000001");
        assert_eq!(again.client_msg_id(false), p.client_msg_id(false));
        assert_eq!(p.client_msg_id(true), "a12-4-1700000000000001");
    }
}
