//! `anapars-loadtest`: the load-test harness of `anapars-hub`. It drives a real hub over the
//! documented protocol (protocol/PROTOCOL.md) with simulated phones and agent consoles, in JSON or
//! MessagePack, on loopback only, and reports what an operator sizing a deployment needs.
//!
//! # Use
//!
//! Build both binaries in release, then let the harness start the hub itself (`--spawn-hub`: test
//! numbers on, per-socket frame limits lifted, SQLite in a fresh temporary directory unless
//! `--database-url`), run a scenario and stop the hub:
//!
//! ```sh
//! cargo build --release -p anapars-hub -p anapars-loadtest
//! target/release/anapars-loadtest chat --spawn-hub                 # the preset, under a minute
//! target/release/anapars-loadtest chat --spawn-hub --users 2000 --agents 20 --rate 5000 --json chat.json
//! target/release/anapars-loadtest chat --spawn-hub --attachment-share 0.1 --upload tus   # pictures too
//! target/release/anapars-loadtest idle --spawn-hub --sockets 5000 --ramp 1000 --hold 20
//! target/release/anapars-loadtest burst --spawn-hub --sockets 10000 --rate 100 --plot burst.svg
//! target/release/anapars-loadtest reconnect --spawn-hub --drop-share 0.1 --drop-every 5
//! target/release/anapars-loadtest offline --spawn-hub --rate 200  # push notifications to closed apps
//! target/release/anapars-loadtest run-hub                          # a hub to point other tools at
//! ```
//!
//! Against a hub started elsewhere, pass `--url http://127.0.0.1:PORT` (and `--hub-pid PID` for its
//! memory and CPU time). That hub must have `HUB_TEST_PHONE_PREFIX` and `HUB_TEST_CODE` set to the
//! harness's `--phone-prefix` / `--test-code`; agents come from `--agents-file`, or are created with
//! `anapars-hub agent add` run with the harness's own `DATABASE_URL` / `HUB_SQLITE_PATH`, which must
//! then name the hub's database.
//!
//! # Layout
//!
//! Lowest first: each module imports only modules listed before it.
//!
//! - [`wire`]: the protocol as a client speaks it: request encoding, lenient frame decoding, a
//!   socket bound to a 127.0.0.x source address.
//! - [`seq`]: the exactly-once, in-order check of ticket streams.
//! - [`stats`]: HDR latency histograms, counters, errors by key, the progress line.
//! - [`notified`]: which agent message each push notification answered, and its latency.
//! - [`receiver`]: the Web Push receiver on loopback, and registrations with fresh P-256 keys.
//! - [`metrics`]: what a hub says about itself: `/metrics` parsed, group-commit batch sizes, one
//!   node's CPU and memory at one moment.
//! - [`peers`]: `--target node-peer|rust-peer`: which peer of loadtest/peers/ and how it is started.
//! - [`report`]: each scenario's report (one serde struct) and the figures they share; the table and JSON.
//! - [`plot`]: the latency-over-time SVG.
//! - [`drops`]: the drop signals of `reconnect` and the task that sends them.
//! - [`hub`]: one hub (or peer) under test: started or attached, `/metrics`, `/proc` memory and CPU.
//! - [`cluster`]: the nodes of a run (one, or several with Redis), per-node server figures.
//! - [`signin`]: test-number sign-in over HTTP; agents from a file, `anapars-hub agent add`, or
//!   made up for a peer.
//! - [`picture`]: the JPEG that `chat --attachment-share` uploads, and its variants.
//! - [`upload`]: attachments uploaded over tus or in one request.
//! - [`chat`], [`reconnect`], [`idle`], [`burst`], [`telemetry`], [`offline`], [`search`], [`reports`], [`rotate`]: the scenarios
//!   (`reconnect` is `chat` with drops; `offline` uses `chat`'s message ids and ticket dealing).

mod burst;
mod chat;
mod cluster;
mod drops;
mod hub;
mod idle;
mod metrics;
mod notified;
mod offline;
mod peers;
mod picture;
mod plot;
mod receiver;
mod reconnect;
mod report;
mod reports;
mod rotate;
mod search;
mod seq;
mod signin;
mod stats;
mod telemetry;
mod upload;
mod wire;

use clap::{Parser, Subcommand};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "anapars-loadtest", version, about = "Load-test harness for anapars-hub (loopback only)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Users with open tickets send at a target rate; agents claim, follow and answer.
    Chat(chat::ChatArgs),
    /// Open N authenticated sockets at a ramp rate, hold them, report memory per socket.
    Idle(idle::IdleArgs),
    /// N sockets receive operator announcements posted at a rate: the fan-out path.
    Burst(burst::BurstArgs),
    /// The chat load while a share of the sockets is dropped and resumes, again and again.
    Reconnect(reconnect::ReconnectArgs),
    /// App sockets flooding the hub with view-event batches (run beside `chat` to see the cost).
    Telemetry(telemetry::TelemetryArgs),
    /// Users whose apps are closed get push notifications of agents' messages at a rate.
    Offline(offline::OfflineArgs),
    /// Agents search a history of many stored messages (Postgres): query latency by kind.
    Search(search::SearchArgs),
    /// Supervisors' reports over a long history (Postgres): latency per range.
    Reports(reports::ReportsArgs),
    /// A data-key rotation (`anapars-hub keys rotate`) under the chat load, with sign-ins beside it.
    Rotate(rotate::RotateArgs),
    /// Start the hub with load-test settings and keep it running (until Ctrl-C or --for).
    RunHub(RunHubArgs),
}

/// Settings of the simulated clients, shared by the scenarios.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct ClientArgs {
    /// Encoding of the simulated clients.
    #[arg(long, value_enum, default_value = "json")]
    pub encoding: wire::EncodingChoice,
    /// Loopback source addresses sockets are spread over (127.0.0.1 to 127.0.0.N).
    #[arg(long, default_value_t = 4)]
    pub source_ips: usize,
    /// Index of the first test number (so that concurrent harness processes use different numbers).
    #[arg(long, default_value_t = 0)]
    pub phone_offset: usize,
    /// HTTP sign-ins in flight at once.
    #[arg(long, default_value_t = 32)]
    pub signin_concurrency: usize,
    /// Socket set-ups (connect, auth, open or claim) in flight at once.
    #[arg(long, default_value_t = 64)]
    pub setup_concurrency: usize,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also draw latency (p50, p99, max) and the acked, delivered or pushed rate per second as an
    /// SVG (chat, reconnect, burst, offline).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RunHubArgs {
    #[command(flatten)]
    hub: hub::HubArgs,
    /// Stop the hub after this many seconds (default: on Ctrl-C).
    #[arg(long = "for", value_name = "SECS")]
    for_secs: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("anapars-loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Chat(args) => {
            let client = args.client.clone();
            let report = chat::run(args).await?;
            finish(&client, &report.table(), &report, &plot::Series::chat(&report), report.delivery_ok)
        }
        Command::Rotate(args) => {
            let client = args.chat.client.clone();
            let report = rotate::run(args).await?;
            let series = report.chat.as_ref().map(plot::Series::chat).unwrap_or_default();
            finish(&client, &report.table(), &report, &series, report.ok)
        }
        Command::Reconnect(args) => {
            let client = args.chat.client.clone();
            let report = reconnect::run(args).await?;
            finish(&client, &report.table(), &report, &plot::Series::chat(&report), report.delivery_ok)
        }
        Command::Burst(args) => {
            let client = args.client.clone();
            let report = burst::run(args).await?;
            finish(&client, &report.table(), &report, &plot::Series::burst(&report), report.delivery_ok)
        }
        Command::Offline(args) => {
            let client = args.client.clone();
            let report = offline::run(args).await?;
            finish(&client, &report.table(), &report, &plot::Series::offline(&report), report.delivery_ok)
        }
        Command::Telemetry(args) => {
            let report = telemetry::run(args).await?;
            Ok(if report.errors.keys().any(|k| !k.starts_with("error:overloaded")) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Search(args) => {
            let json = args.client.json.clone();
            let report = search::run(args).await?;
            println!("{}", report.table());
            if let Some(path) = json {
                report::write_json(&path, &report)?;
            }
            Ok(if report.errors == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Reports(args) => {
            let json = args.client.json.clone();
            let report = reports::run(args).await?;
            println!("{}", report.table());
            if let Some(path) = json {
                report::write_json(&path, &report)?;
            }
            Ok(if report.errors == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Idle(args) => {
            let json = args.client.json.clone();
            let report = idle::run(args).await?;
            println!("{}", report.table());
            if let Some(path) = json {
                report::write_json(&path, &report)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RunHub(args) => {
            run_hub(args).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints the table, writes the JSON and the plot when asked; exit status 2 when the delivery
/// check failed (a failed exactly-once check is a failed run, for scripts).
fn finish(
    client: &ClientArgs,
    table: &str,
    report: &impl Serialize,
    series: &plot::Series,
    delivery_ok: bool,
) -> anyhow::Result<ExitCode> {
    println!("{table}");
    if let Some(path) = &client.json {
        report::write_json(path, report)?;
    }
    if let Some(path) = &client.plot {
        plot::write_svg(path, series)?;
        eprintln!("plot: {}", path.display());
    }
    Ok(if delivery_ok { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

async fn run_hub(args: RunHubArgs) -> anyhow::Result<()> {
    let mut hub_args = args.hub.clone();
    hub_args.spawn_hub = true;
    let http = reqwest::Client::new();
    let mut hubs = cluster::Cluster::open(&hub_args, &http).await?;
    for (i, hub) in hubs.nodes.iter().enumerate() {
        let pid = hub.pid.map_or_else(|| "?".into(), |p| p.to_string());
        println!("hub {} ready: {} (pid {pid}, {})", i + 1, hub.base, hub.backend);
        if let Some(log) = &hub.log {
            println!("log: {}", log.display());
        }
    }
    let hub = hubs.first();
    let urls: Vec<&str> = hubs.nodes.iter().map(|n| n.base.as_str()).collect();
    let pids: Vec<String> = hubs.nodes.iter().filter_map(|n| n.pid).map(|p| p.to_string()).collect();
    let db: Vec<String> = hub.db_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("database for `anapars-hub agent add`: {}", db.join(" "));
    println!(
        "drive it with: {} anapars-loadtest chat --url {} --hub-pid {}",
        db.join(" "),
        urls.join(","),
        pids.join(",")
    );
    if hub_args.admin_token.is_none() && std::env::var_os("HUB_ADMIN_TOKEN").is_none() {
        println!("(burst needs the operator token: start run-hub with --admin-token or HUB_ADMIN_TOKEN)");
    }
    match args.for_secs {
        Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
        None => {
            println!("Ctrl-C stops it");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    hubs.stop();
    println!("hub stopped");
    Ok(())
}
