//! The `rotate` scenario: a data-key rotation under load.
//!
//! First a hub with one data key (`old`) signs up `--accounts` test numbers over HTTP, then signs
//! existing accounts in alone for `--signin-secs` (the sign-in latency with one key). Then a hub on
//! the same database with a new current key (`new`, `old` after it) runs the `chat` load over the
//! first of those accounts while, from the start of the measured window, `anapars-hub keys rotate`
//! seals every stored value again under the new key and other accounts keep signing in at
//! `--signin-rate`. The report is the chat's (its exactly-once check included) with the rotation's
//! time, what `keys status` said after it, and the sign-ins before, during and after the rotation:
//! none may fail.
//!
//! With `--signin-only` the run stops after the first part, so hub versions can be compared on
//! sign-in alone (an older hub ignores the data keys).

use crate::chat::{self, ChatArgs};
use crate::cluster::Cluster;
use crate::hub::HubHandle;
use crate::report::ChatReport;
use crate::signin::{self, phone_number};
use crate::stats::{Latency, LatencySummary, Live};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The data key the accounts are made under (32 bytes: "old rotation key - not for use!!").
const OLD_KEY: &str = "old:b2xkIHJvdGF0aW9uIGtleSAtIG5vdCBmb3IgdXNlISE=";
/// The key the rotation seals under (32 bytes: "new rotation key - not for use!!").
const NEW_KEY: &str = "new:bmV3IHJvdGF0aW9uIGtleSAtIG5vdCBmb3IgdXNlISE=";

/// Parameters of `rotate`.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct RotateArgs {
    #[command(flatten)]
    pub chat: ChatArgs,
    /// Accounts made under the old key before the rotation; the chat's users are the first of them.
    #[arg(long, default_value_t = 100_000)]
    pub accounts: usize,
    /// Sign-ins of existing accounts per second: alone, then beside the chat.
    #[arg(long, default_value_t = 20.0)]
    pub signin_rate: f64,
    /// Seconds of sign-ins alone after the accounts are made.
    #[arg(long, default_value_t = 10)]
    pub signin_secs: u64,
    /// `keys rotate --batch` (unset: the hub's default for its database).
    #[arg(long)]
    pub batch: Option<u32>,
    /// `keys rotate --pause-ms` (unset: the hub's default for its database).
    #[arg(long)]
    pub pause_ms: Option<u64>,
    /// Stop after the sign-ins alone.
    #[arg(long)]
    pub signin_only: bool,
}

/// What a `rotate` run measured.
#[derive(Debug, Default, Serialize)]
pub struct RotateReport {
    /// Always `rotate`.
    pub scenario: &'static str,
    /// Accounts signed up before the rotation.
    pub accounts: usize,
    /// Sign-ups that failed.
    pub signup_failures: u64,
    /// Seconds the sign-ups took (`--signin-concurrency` at a time).
    pub signup_s: f64,
    /// Sign-ins of existing accounts alone, one data key.
    pub signins_alone: SignIns,
    /// The chat with the rotation beside it.
    pub chat: Option<ChatReport>,
    /// The rotation.
    pub rotation: Option<Rotation>,
    /// True when no sign-in failed, the rotation finished and the chat's check passed.
    pub ok: bool,
}

/// Sign-ins of existing accounts in one stretch of the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SignIns {
    /// Code request to session token, both requests.
    pub latency: LatencySummary,
    /// Failed sign-ins by error key.
    pub failures: BTreeMap<String, u64>,
}

/// The rotation beside the chat.
#[derive(Debug, Default, Serialize)]
pub struct Rotation {
    /// `keys rotate` ended with success.
    pub finished: bool,
    /// Its wall time, seconds.
    pub seconds: f64,
    /// Values sealed again, as `keys rotate` counted them.
    pub resealed: u64,
    /// Seconds per 100,000 values at that pace.
    pub seconds_per_100k: f64,
    /// `keys status` afterwards.
    pub status_after: String,
    /// Sign-ins beside the chat while the rotation ran.
    pub signins_during: SignIns,
    /// Sign-ins beside the chat after it, every value under the new key.
    pub signins_after: SignIns,
}

/// Runs the scenario.
///
/// # Errors
/// Needs `--spawn-hub` and a single node; as [`chat::run`].
pub async fn run(args: RotateArgs) -> anyhow::Result<RotateReport> {
    let hub_args = &args.chat.hub;
    anyhow::ensure!(hub_args.spawn_hub && hub_args.nodes == 1, "rotate starts its own hub: --spawn-hub, one node");
    anyhow::ensure!(args.accounts > args.chat.users, "--accounts must be more than --users");
    anyhow::ensure!(args.signin_rate > 0.0, "--signin-rate must be positive");
    let dir = std::env::temp_dir().join(format!("anapars-loadtest-rotate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut first = hub_args.clone();
    first.hub_env.push(format!("HUB_DATA_KEYS={OLD_KEY}"));
    if hub_args.database_url.is_none() {
        // Both hubs on one SQLite file.
        first.hub_env.push(format!("HUB_SQLITE_PATH={}", dir.join("hub.sqlite").display()));
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let mut report = RotateReport { scenario: "rotate", accounts: args.accounts, ..RotateReport::default() };
    {
        let mut hubs = Cluster::open(&first, &http).await?;
        let hub = hubs.first();
        eprintln!("rotate: signing up {} accounts under the old key", args.accounts);
        let started = Instant::now();
        let live = Live::default();
        let tokens = signin::sign_in_users(&http, hub, &first, &args.chat.client, args.accounts, &live).await?;
        report.signup_s = started.elapsed().as_secs_f64();
        report.signup_failures = tokens.iter().filter(|t| t.is_none()).count() as u64;
        eprintln!("rotate: signed up in {:.1} s; sign-ins alone for {} s", report.signup_s, args.signin_secs);
        let prober = Prober::new(&args, &first);
        let stage = Arc::new(AtomicU8::new(0));
        prober.run(&http, &hub.base, &stage, Duration::from_secs(args.signin_secs)).await;
        report.signins_alone = prober.figures(0);
        hubs.stop();
    }
    if args.signin_only {
        report.ok = report.signup_failures == 0 && report.signins_alone.failures.is_empty();
        return Ok(report);
    }

    let mut chat_args = args.chat.clone();
    chat_args.hub = first.clone();
    chat_args.hub.hub_env.retain(|e| !e.starts_with("HUB_DATA_KEYS="));
    chat_args.hub.hub_env.push(format!("HUB_DATA_KEYS={NEW_KEY}\n{OLD_KEY}"));
    let (rotation_args, hub_bin) = (args.clone(), chat_args.hub.hub_bin.clone());
    let hub_args_rotation = chat_args.hub.clone();
    let done = Arc::new(Mutex::new(None));
    let kept = done.clone();
    let beside: chat::Beside = Box::new(move |hub: &HubHandle| {
        let (base, db_env) = (hub.base.clone(), hub.db_env.clone());
        tokio::spawn(async move {
            let rotation = rotate_beside(&rotation_args, &hub_args_rotation, &hub_bin, &base, &db_env).await;
            let value = serde_json::to_value(&rotation).unwrap_or_default();
            *kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(rotation);
            value
        })
    });
    eprintln!("rotate: the chat on a hub with the new key current; the rotation starts with the window");
    let chat = chat::run_with(chat_args, None, Some(beside)).await?;
    let rotation = done.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    report.ok = report.signup_failures == 0
        && report.signins_alone.failures.is_empty()
        && chat.delivery_ok
        && rotation
            .as_ref()
            .is_some_and(|r| r.finished && r.signins_during.failures.is_empty() && r.signins_after.failures.is_empty());
    report.chat = Some(chat);
    report.rotation = rotation;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report)
}

/// Runs `keys rotate` against the hub's database while the prober signs accounts in, until the
/// rotation has ended and the chat's window has had as long again (at least 5 s).
async fn rotate_beside(
    args: &RotateArgs,
    hub_args: &crate::hub::HubArgs,
    hub_bin: &std::path::Path,
    base: &str,
    db_env: &[(String, String)],
) -> Rotation {
    let http = reqwest::Client::new();
    let prober = Arc::new(Prober::new(args, hub_args));
    let stage = Arc::new(AtomicU8::new(1));
    let probing = {
        let (prober, stage, http, base) = (prober.clone(), stage.clone(), http.clone(), base.to_owned());
        let limit = Duration::from_secs(args.chat.duration + 600);
        tokio::spawn(async move { prober.run(&http, &base, &stage, limit).await })
    };
    let started = Instant::now();
    let mut rotate = vec!["keys".to_owned(), "rotate".to_owned()];
    if let Some(batch) = args.batch {
        rotate.extend(["--batch".to_owned(), batch.to_string()]);
    }
    if let Some(pause) = args.pause_ms {
        rotate.extend(["--pause-ms".to_owned(), pause.to_string()]);
    }
    let output = tokio::process::Command::new(hub_bin)
        .args(&rotate)
        .env_remove("DATABASE_URL")
        .envs(db_env.iter().cloned())
        .output()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    stage.store(2, Ordering::Relaxed);
    let (finished, text) = match &output {
        Ok(o) => (
            o.status.success(),
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        ),
        Err(e) => (false, e.to_string()),
    };
    let resealed = resealed_count(&text).unwrap_or(0);
    eprintln!(
        "rotate: keys rotate {} in {seconds:.1} s ({resealed} values)",
        if finished { "finished" } else { "FAILED" }
    );
    if !finished {
        eprintln!("{text}");
    }
    // Sign-ins after the rotation, with every value under the new key.
    let rest = Duration::from_secs_f64(seconds.max(5.0).min(args.chat.duration as f64));
    tokio::time::sleep(rest).await;
    stage.store(3, Ordering::Relaxed);
    let _ = probing.await;
    let status = tokio::process::Command::new(hub_bin)
        .args(["keys", "status"])
        .env_remove("DATABASE_URL")
        .envs(db_env.iter().cloned())
        .output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    Rotation {
        finished,
        seconds,
        resealed,
        seconds_per_100k: if resealed > 0 { seconds * 100_000.0 / resealed as f64 } else { 0.0 },
        status_after: status,
        signins_during: prober.figures(1),
        signins_after: prober.figures(2),
    }
}

/// The count in `keys rotate`'s last line: "... (N resealed in S s)".
fn resealed_count(output: &str) -> Option<u64> {
    let line = output.lines().rev().find(|l| l.contains(" resealed in "))?;
    let start = line.rfind('(')? + 1;
    line[start..].split_whitespace().next()?.parse().ok()
}

/// Signs existing accounts in at a steady rate, each a number not in the chat, recording latency
/// and failures per stage of the run (0 alone, 1 during the rotation, 2 after it; 3 stops).
struct Prober {
    prefix: String,
    code: String,
    first: usize,
    accounts: usize,
    rate: f64,
    offset: usize,
    stages: Mutex<[SignInRecord; 3]>,
}

#[derive(Default)]
struct SignInRecord {
    latency: Latency,
    failures: BTreeMap<String, u64>,
}

impl Prober {
    fn new(args: &RotateArgs, hub: &crate::hub::HubArgs) -> Self {
        Self {
            prefix: hub.phone_prefix.clone(),
            code: hub.test_code.clone(),
            first: args.chat.users,
            accounts: args.accounts,
            rate: args.signin_rate,
            offset: args.chat.client.phone_offset,
            stages: Mutex::default(),
        }
    }

    /// Signs in until `stage` is 3 or `limit` has passed.
    async fn run(&self, http: &reqwest::Client, base: &str, stage: &AtomicU8, limit: Duration) {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / self.rate));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = Instant::now() + limit;
        let mut inflight = tokio::task::JoinSet::new();
        let mut n = 0usize;
        while Instant::now() < end && stage.load(Ordering::Relaxed) < 3 {
            ticker.tick().await;
            let index = self.offset + self.first + (n * 7919) % (self.accounts - self.first);
            n += 1;
            let phone = phone_number(&self.prefix, index).unwrap_or_default();
            let (http, base, code) = (http.clone(), base.to_owned(), self.code.clone());
            let at = stage.load(Ordering::Relaxed).min(2);
            inflight.spawn(async move {
                let started = Instant::now();
                let outcome = signin::sign_in_user(&http, &base, &phone, &code, &format!("probe-{n}")).await;
                (at, started.elapsed(), outcome)
            });
            while let Some(done) = inflight.try_join_next() {
                self.record(done);
            }
        }
        while let Some(done) = inflight.join_next().await {
            self.record(done);
        }
    }

    fn record(&self, done: Result<(u8, Duration, Result<String, String>), tokio::task::JoinError>) {
        let Ok((at, took, outcome)) = done else { return };
        let mut stages = self.stages.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let record = &mut stages[usize::from(at.min(2))];
        match outcome {
            Ok(_) => record.latency.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX)),
            Err(key) => *record.failures.entry(key).or_default() += 1,
        }
    }

    fn figures(&self, at: usize) -> SignIns {
        let stages = self.stages.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        SignIns { latency: stages[at].latency.summary(), failures: stages[at].failures.clone() }
    }
}

impl RotateReport {
    /// The lines the run prints.
    pub fn table(&self) -> String {
        let line = |name: &str, s: &SignIns| {
            format!(
                "{name:<34} {:>6} sign-ins  p50 {:>7.2} ms  p99 {:>7.2} ms  failed {}\n",
                s.latency.count,
                s.latency.p50_ms,
                s.latency.p99_ms,
                s.failures.values().sum::<u64>()
            )
        };
        let mut out = format!(
            "accounts signed up                 {} in {:.1} s ({:.0}/s), {} failed\n",
            self.accounts,
            self.signup_s,
            self.accounts as f64 / self.signup_s.max(1e-9),
            self.signup_failures
        );
        out += &line("sign-ins alone, one key", &self.signins_alone);
        if let Some(chat) = &self.chat {
            out += &chat.table();
        }
        if let Some(r) = &self.rotation {
            out += &format!(
                "keys rotate                        {} values in {:.1} s ({:.1} s per 100,000), {}\n",
                r.resealed,
                r.seconds,
                r.seconds_per_100k,
                if r.finished { "finished" } else { "FAILED" }
            );
            out += &line("sign-ins beside the chat, rotating", &r.signins_during);
            out += &line("sign-ins beside the chat, after", &r.signins_after);
            out += &r.status_after;
        }
        out += if self.ok { "rotate: OK\n" } else { "rotate: FAILED\n" };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_count_from_the_rotation_output() {
        let out = "100000 values to seal under new\nresealed 1000 of 100000 (0.1 s)\n\
                   every value is sealed under new (100000 resealed in 12.3 s)\n";
        assert_eq!(resealed_count(out), Some(100_000));
        assert_eq!(resealed_count("nothing"), None);
    }

    #[test]
    fn the_keys_are_32_bytes() {
        use base64::Engine as _;
        for entry in [OLD_KEY, NEW_KEY] {
            let (_, key) = entry.split_once(':').unwrap();
            assert_eq!(base64::engine::general_purpose::STANDARD.decode(key).unwrap().len(), 32);
        }
    }
}
