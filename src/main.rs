//! The `anapars-hub` binary: `serve` (the default) runs the hub; `migrate` only runs migrations.

use anapars_hub::Config;
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    anapars_hub::telemetry::init_logging(&config.log_format);
    match cli.command.unwrap_or(Command::Serve { listen: None }) {
        Command::Serve { listen } => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            anapars_hub::server::serve(config).await
        }
        Command::Migrate => {
            let store = anapars_hub::storage::connect(&config).await?;
            tracing::info!(storage = store.backend(), "migrations applied");
            Ok(())
        }
    }
}
