//! The `anapars-hub` binary: `serve` (the default) runs the hub; `migrate` only runs migrations.

use anapars_hub::Config;
use anyhow::Context as _;

/// jemalloc instead of the system allocator: it hands memory freed after a burst of traffic back to
/// the kernel (dirty pages decay), where glibc's malloc keeps a fragmented heap, so the hub's
/// resident memory falls back to a few KiB per idle socket instead of staying at the burst's peak.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "anapars-hub", version, about = "Real-time support-messaging hub for the Anapars apps")]
struct Cli {
    /// TOML configuration file (settings not in it come from HUB_* variables and defaults).
    #[arg(long, global = true, env = "HUB_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub (the default).
    Serve {
        /// Address for HTTP and the WebSocket [env: HUB_LISTEN] [default: 127.0.0.1:8080]
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Run pending database migrations and exit.
    Migrate,
    /// Manage support agents (staff accounts).
    Agent {
        #[command(subcommand)]
        action: AgentAction,
    },
    /// Answer a user's request about their data (the policy's contact links) on a running hub:
    /// find the account of a number, export it to a file, delete it in two steps. Needs the
    /// hub's `admin_token` in the configuration.
    User {
        /// The hub's base URL [default: http:// and the `listen` address].
        #[arg(long, global = true)]
        hub: Option<String>,
        #[command(subcommand)]
        action: UserAction,
    },
    /// The data keys that seal personal identifiers at rest.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Print a new data key entry (`id:base64`) for `data_keys_file` or `HUB_DATA_KEYS`; put it
    /// first to make it current.
    New {
        /// The key's id: 1 to 32 letters, digits, `-` or `_` (default: `k` and the Unix time).
        #[arg(long)]
        id: Option<String>,
    },
    /// How many values each data key seals, and which configured keys seal none (those may be
    /// retired once every node runs with the current key first).
    Status,
    /// Seal every value under the current data key (the first), in batches, while the hub runs;
    /// stopped, it resumes where it was when run again.
    Rotate {
        /// Values per batch (each one transaction). Default: 1000 on Postgres, 200 on SQLite.
        #[arg(long)]
        batch: Option<u32>,
        /// Milliseconds to wait after each batch. Default: 0 on Postgres; 100 on SQLite, whose one
        /// writer at a time is the hub's between batches (a waiting writer retries at most 100 ms
        /// apart).
        #[arg(long)]
        pause_ms: Option<u64>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// The account of a number as the person wrote it (Persian digits are fine); prints its id,
    /// never the number.
    Find {
        /// The number.
        #[arg(long)]
        phone: String,
    },
    /// Write everything the hub keeps about the account to a file (the document the app's export
    /// gives).
    Export {
        /// The account's id (from `user find`).
        #[arg(long)]
        user: String,
        /// The file to write (created; an existing one is not overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Delete the account: without --confirm, print what would be lost and the confirmation; with
    /// it, delete (the same two steps as in the app).
    Delete {
        /// The account's id (from `user find`).
        #[arg(long)]
        user: String,
        /// The confirmation the first step printed.
        #[arg(long)]
        confirm: Option<String>,
    },
}

#[derive(Subcommand)]
enum AgentAction {
    /// Create an agent; the generated password is printed once.
    Add {
        /// Sign-in email.
        #[arg(long)]
        email: String,
        /// Name shown to users.
        #[arg(long)]
        name: String,
    },
    /// List every agent.
    List,
    /// Disable an agent: their sessions are revoked and running hubs close their sockets.
    Disable {
        /// The agent's email.
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled agent: they sign in again with their password.
    Enable {
        /// The agent's email.
        #[arg(long)]
        email: String,
    },
    /// Give an agent a new generated password (printed once) and sign them out everywhere.
    ResetPassword {
        /// The agent's email.
        #[arg(long)]
        email: String,
    },
    /// Change an agent's name or capacity.
    Set {
        /// The agent's email.
        #[arg(long)]
        email: String,
        /// Name shown to users.
        #[arg(long)]
        name: Option<String>,
        /// Tickets the agent holds at once (1 to 100); auto-assignment gives no more.
        #[arg(long)]
        capacity: Option<u32>,
    },
    /// Make an agent a supervisor (who keeps the team's labels and reads its reports), or not.
    Supervisor {
        /// The agent's email.
        #[arg(long)]
        email: String,
        /// Take the role away instead.
        #[arg(long)]
        off: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.worker_threads > 0 {
        runtime.worker_threads(config.worker_threads);
    }
    runtime.enable_all().build().context("starting the async runtime")?.block_on(run(cli, config))
}

async fn run(cli: Cli, mut config: Config) -> anyhow::Result<()> {
    anapars_hub::metrics::init_logging(&config.log_format);
    for (variable, closest) in Config::unknown_variables() {
        match closest {
            Some(setting) => {
                tracing::warn!(%variable, "{variable} is not a setting and is ignored: did you mean {setting}?")
            }
            None => tracing::warn!(%variable, "{variable} is not a setting and is ignored"),
        }
    }
    match cli.command.unwrap_or(Command::Serve { listen: None }) {
        Command::Serve { listen } => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            // jemalloc returns freed pages to the kernel as they decay, but only from a thread that
            // is allocating: a hub holding idle sockets after a burst would keep the burst's peak.
            // Its background threads purge on their own clock instead.
            if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
                tracing::warn!(error = %e, "jemalloc background purging not enabled: memory freed after bursts returns only under traffic");
            }
            anapars_hub::server::serve(config).await
        }
        Command::Migrate => {
            let store = anapars_hub::adapters::sql::connect(&config).await?;
            tracing::info!(storage = store.backend(), "migrations applied");
            Ok(())
        }
        Command::Agent { action } => agent_command(&config, action).await,
        Command::User { hub, action } => user_command(&config, hub, action).await,
        Command::Keys { action: KeysAction::Status } => keys_status(&config).await,
        Command::Keys { action: KeysAction::Rotate { batch, pause_ms } } => keys_rotate(&config, batch, pause_ms).await,
        Command::Keys { action: KeysAction::New { id } } => {
            let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let id = id.unwrap_or_else(|| format!("k{secs}"));
            let entry = anapars_hub::adapters::vault::Vault::generate_entry(&id);
            anapars_hub::adapters::vault::Vault::parse(&entry).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{entry}");
            Ok(())
        }
    }
}

async fn agent_command(config: &Config, action: AgentAction) -> anyhow::Result<()> {
    let desk = anapars_hub::app::operator_agents(config).await?;
    match action {
        AgentAction::Add { email, name } => {
            let (agent, password) = desk.add(&email, &name).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("agent added: {} <{}> id {}", agent.name, agent.email, agent.id);
            println!("password (shown once, store it now): {password}");
        }
        AgentAction::List => {
            println!("{:<36}  {:<32}  {:<24}  {:<9}  {:<10}  state", "id", "email", "name", "status", "role");
            for a in desk.list().await.map_err(|e| anyhow::anyhow!("{e}"))? {
                let state = if a.disabled_at.is_some() { "disabled" } else { "enabled" };
                let role = if a.supervisor { "supervisor" } else { "agent" };
                println!(
                    "{:<36}  {:<32}  {:<24}  {:<9}  {role:<10}  {state}",
                    a.id,
                    a.email,
                    a.name,
                    a.status.as_str()
                );
            }
        }
        AgentAction::Disable { email } => {
            let agent = desk.disable(&email).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("agent disabled: {} <{}>; running hubs close their sockets within 5 s", agent.name, agent.email);
        }
        AgentAction::Enable { email } => {
            let agent = desk.enable(&email).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("agent enabled: {} <{}>", agent.name, agent.email);
        }
        AgentAction::ResetPassword { email } => {
            let (agent, password) = desk.reset_password(&email).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("new password for {} <{}>; their sessions are signed out", agent.name, agent.email);
            println!("password (shown once, store it now): {password}");
        }
        AgentAction::Set { email, name, capacity } => {
            anyhow::ensure!(name.is_some() || capacity.is_some(), "nothing to change: give --name or --capacity");
            let agent = desk.update(&email, name.as_deref(), capacity).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("agent {} <{}>: capacity {}", agent.name, agent.email, agent.capacity);
        }
        AgentAction::Supervisor { email, off } => {
            let agent = desk.set_supervisor(&email, !off).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let role = if agent.supervisor { "is now a supervisor" } else { "is no longer a supervisor" };
            println!("{} <{}> {role}", agent.name, agent.email);
        }
    }
    Ok(())
}

/// `user ...`: the users'-rights routes of the running hub, with the admin token.
async fn user_command(config: &Config, hub: Option<String>, action: UserAction) -> anyhow::Result<()> {
    let token = config.admin_token.as_ref().map(|t| t.0.clone()).ok_or_else(|| {
        anyhow::anyhow!(
            "the hub's admin_token (HUB_ADMIN_TOKEN) must be set: the user commands use the hub's admin routes"
        )
    })?;
    let base = hub.unwrap_or_else(|| format!("http://{}", config.listen)).trim_end_matches('/').to_owned();
    let http = reqwest::Client::new();
    let call =
        |method: reqwest::Method, path: String| http.request(method, format!("{base}{path}")).bearer_auth(&token);
    match action {
        UserAction::Find { phone } => {
            let found = answer(
                call(reqwest::Method::POST, "/v1/admin/users/lookup".into()).json(&serde_json::json!({"phone": phone})),
            )
            .await?;
            println!(
                "account {}: registered at {} (Unix ms), {} tickets, {} devices",
                found["user_id"].as_str().unwrap_or("?"),
                found["registered_at"],
                found["tickets"],
                found["devices"]
            );
        }
        UserAction::Export { user, out } => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
            let request = call(reqwest::Method::GET, format!("/v1/admin/users/{user}/export"));
            let written = async {
                let mut response = request.send().await?;
                if !response.status().is_success() {
                    return Err(hub_error(response).await);
                }
                let mut written = 0usize;
                while let Some(chunk) = response.chunk().await? {
                    std::io::Write::write_all(&mut file, &chunk)?;
                    written += chunk.len();
                }
                file.sync_all()?;
                anyhow::Ok(written)
            }
            .await;
            // A refused or cut-short export leaves no file that looks like one.
            let written = written.inspect_err(|_| {
                let _ = std::fs::remove_file(&out);
            })?;
            println!("wrote {written} bytes to {}", out.display());
        }
        UserAction::Delete { user, confirm: None } => {
            let notice = answer(call(reqwest::Method::POST, format!("/v1/admin/users/{user}/deletion"))).await?;
            let will = &notice["will_delete"];
            println!(
                "deleting account {user} deletes {} tickets, {} devices and {} purchases ({} active subscriptions and {} activations paid for are lost)",
                will["tickets"],
                will["devices"],
                will["purchases"],
                notice["paid_and_lost"]["active_subscriptions"].as_array().map_or(0, Vec::len),
                notice["paid_and_lost"]["activations"].as_array().map_or(0, Vec::len),
            );
            println!(
                "to delete it, before {} (Unix ms): anapars-hub user delete --user {user} --confirm {}",
                notice["expires_at"],
                notice["confirmation"].as_str().unwrap_or("?")
            );
        }
        UserAction::Delete { user, confirm: Some(confirmation) } => {
            let done = answer(
                call(reqwest::Method::POST, format!("/v1/admin/users/{user}/deletion/confirm"))
                    .json(&serde_json::json!({"confirmation": confirmation})),
            )
            .await?;
            println!("account {user} deleted with its {} tickets", done["tickets_deleted"]);
        }
    }
    Ok(())
}

/// A JSON answer of the hub, or its error as the command's.
async fn answer(request: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
    let response = request.send().await?;
    if !response.status().is_success() {
        return Err(hub_error(response).await);
    }
    Ok(response.json().await?)
}

/// The hub's error answer as the command's error: its code, status and message.
async fn hub_error(response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let error = &body["error"];
    anyhow::anyhow!(
        "{} ({status}): {}",
        error["code"].as_str().unwrap_or("error"),
        error["message"].as_str().unwrap_or("")
    )
}

/// `keys status`: values of each kind per data key, and the configured keys that seal nothing.
async fn keys_status(config: &Config) -> anyhow::Result<()> {
    let store = anapars_hub::adapters::sql::connect(config).await?;
    let vault = anapars_hub::adapters::sql::vault(config)?;
    let counts = store.sealed_counts().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("current key: {}", vault.current());
    for c in &counts {
        let known = if vault.key_ids().contains(&c.key_id.as_str()) { "" } else { "  (not configured!)" };
        println!("{:<32}  {:>10} {}{known}", c.key_id, c.values, c.what);
    }
    for id in vault.key_ids().into_iter().filter(|k| *k != vault.current() && !counts.iter().any(|c| c.key_id == *k)) {
        println!("{id:<32}  {:>10} values  (may be retired)", 0);
    }
    Ok(())
}

/// `keys rotate`: reseal in batches until every value is under the current key.
async fn keys_rotate(config: &Config, batch: Option<u32>, pause_ms: Option<u64>) -> anyhow::Result<()> {
    let store = anapars_hub::adapters::sql::connect(config).await?;
    let sqlite = store.backend() == "sqlite";
    let batch = batch.unwrap_or(if sqlite { 200 } else { 1000 });
    let pause = std::time::Duration::from_millis(pause_ms.unwrap_or(if sqlite { 100 } else { 0 }));
    anyhow::ensure!((1..=10_000).contains(&batch), "--batch must be 1 to 10000");
    let vault = anapars_hub::adapters::sql::vault(config)?;
    let counts = store.sealed_counts().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let total: u64 = counts.iter().filter(|c| c.key_id != vault.current()).map(|c| c.values).sum();
    println!("{total} values to seal under {}", vault.current());
    let (started, mut done) = (std::time::Instant::now(), 0u64);
    let mut at = Some(anapars_hub::ports::store::ResealPosition::default());
    while let Some(from) = at {
        let (n, next) = store.reseal(from, batch).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        at = next;
        if n == 0 {
            break;
        }
        done += n;
        println!("resealed {done} of {total} ({:.1} s)", started.elapsed().as_secs_f64());
        tokio::time::sleep(pause).await;
    }
    println!(
        "every value is sealed under {} ({done} resealed in {:.1} s)",
        vault.current(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
