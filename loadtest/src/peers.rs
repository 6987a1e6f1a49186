//! The peers of loadtest/peers/ as targets: `--target node-peer` or `--target rust-peer` makes
//! `--spawn-hub` start that peer instead of the hub (`node loadtest/peers/node/server.js --port P`,
//! or `target/release/anapars-peer-rust --port P`), so the same scenario with the same parameters
//! measures the hub and its peers one after another (`loadtest/compare.sh`). A peer accepts any
//! phone, code, email, password and token, so its agents need no `anapars-hub agent add`: they are
//! made up (see `signin::agents`). `hub::HubHandle` starts a peer as it starts the hub.

use anyhow::bail;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

/// What a run measures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// anapars-hub itself.
    #[default]
    Hub,
    /// The Node + `ws` peer (loadtest/peers/node): in memory, no auth, JSON only.
    NodePeer,
    /// The bare tokio-tungstenite peer (loadtest/peers/rust): in memory, no auth, JSON only.
    RustPeer,
}

impl Target {
    /// The name reports show as the backend.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hub => "hub",
            Self::NodePeer => "node-peer",
            Self::RustPeer => "rust-peer",
        }
    }

    /// Whether this is one of the peers.
    pub fn is_peer(self) -> bool {
        self != Self::Hub
    }
}

/// Which target, and where the peers' programs are.
#[derive(Clone, Debug, clap::Args)]
pub struct PeerArgs {
    /// What is measured: the hub, or a peer of loadtest/peers/ (started by --spawn-hub in its
    /// place, or found at --url). Peers speak JSON only.
    #[arg(long, value_enum, default_value = "hub")]
    pub target: Target,
    /// Node.js, for --target node-peer.
    #[arg(long, default_value = "node")]
    pub node_bin: PathBuf,
    /// The Node peer's script (`npm ci` in its folder first).
    #[arg(long, default_value = "loadtest/peers/node/server.js")]
    pub node_peer: PathBuf,
    /// The bare-Rust peer's binary (`cargo build --release -p anapars-peer-rust`).
    #[arg(long, default_value = "target/release/anapars-peer-rust")]
    pub rust_peer_bin: PathBuf,
}

/// The command that starts the peer of `target` on `addr`.
///
/// # Errors
/// The target is the hub, or the peer's program is missing.
pub fn command(args: &PeerArgs, addr: SocketAddr) -> anyhow::Result<Command> {
    let port = addr.port().to_string();
    let host = addr.ip().to_string();
    let mut cmd = match args.target {
        Target::Hub => bail!("the hub is not a peer"),
        Target::NodePeer => {
            if !args.node_peer.exists() {
                bail!("{} not found: run from the repository root, or pass --node-peer", args.node_peer.display());
            }
            let modules = args.node_peer.parent().map(|d| d.join("node_modules/ws"));
            if modules.is_some_and(|m| !m.exists()) {
                bail!("the Node peer's `ws` is not installed: run `npm ci` in {}", args.node_peer.display());
            }
            let mut cmd = Command::new(&args.node_bin);
            cmd.arg(&args.node_peer);
            cmd
        }
        Target::RustPeer => {
            if !args.rust_peer_bin.exists() {
                bail!(
                    "{} not found: build it with `cargo build --release -p anapars-peer-rust` or pass --rust-peer-bin",
                    args.rust_peer_bin.display()
                );
            }
            Command::new(&args.rust_peer_bin)
        }
    };
    cmd.args(["--port", &port, "--host", &host]);
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer_args(target: Target) -> PeerArgs {
        PeerArgs {
            target,
            node_bin: "node".into(),
            node_peer: "no/such/server.js".into(),
            rust_peer_bin: "no/such/anapars-peer-rust".into(),
        }
    }

    #[test]
    fn a_missing_peer_program_is_named_in_the_error() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 9000));
        let e = command(&peer_args(Target::RustPeer), addr).unwrap_err().to_string();
        assert!(e.contains("cargo build --release -p anapars-peer-rust"), "{e}");
        let e = command(&peer_args(Target::NodePeer), addr).unwrap_err().to_string();
        assert!(e.contains("no/such/server.js"), "{e}");
        assert!(command(&peer_args(Target::Hub), addr).is_err());
    }

    #[test]
    fn a_peer_gets_its_port() {
        let mut args = peer_args(Target::RustPeer);
        args.rust_peer_bin = std::env::current_exe().unwrap();
        let cmd = command(&args, SocketAddr::from(([127, 0, 0, 1], 9000))).unwrap();
        let argv: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(argv, ["--port", "9000", "--host", "127.0.0.1"]);
        assert_eq!(Target::NodePeer.name(), "node-peer");
        assert!(Target::RustPeer.is_peer() && !Target::Hub.is_peer());
    }
}
