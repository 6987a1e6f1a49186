//! The `reconnect` scenario: the `chat` load, while every `--drop-every` seconds a share of the
//! sockets (`--drop-share`, users and agent consoles alike, picked at random) is dropped abruptly:
//! the TCP connection closes without a WebSocket close frame, as when a phone loses its network.
//! Each dropped socket reconnects at once, authenticates, subscribes again to its tickets with its
//! cursor (the last seq it received) and resends every unacknowledged message with its original
//! `client_msg_id`. The chat's exactly-once, in-order check then covers the resumes: nothing may be
//! lost, duplicated or reordered across them.

use crate::chat::{self, ChatArgs};
use crate::drops::DropPlan;
use crate::report::ChatReport;
use serde::Serialize;

/// Parameters of `reconnect`. The defaults are the preset: about 40 s.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct ReconnectArgs {
    #[command(flatten)]
    pub chat: ChatArgs,
    #[command(flatten)]
    pub drops: DropPlan,
}

/// Runs the scenario and returns its report (a chat report with the drops' figures).
///
/// # Errors
/// `--drop-share` outside 0 to 1, or as [`chat::run`].
pub async fn run(args: ReconnectArgs) -> anyhow::Result<ChatReport> {
    anyhow::ensure!((0.0..=1.0).contains(&args.drops.drop_share), "--drop-share must be between 0 and 1");
    chat::run_with_drops(args.chat, Some(args.drops)).await
}
