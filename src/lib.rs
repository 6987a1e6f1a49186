//! Anapars Hub: the real-time support-messaging server behind the Anapars apps.
//!
//! # Layout
//! Layers, lowest first; each imports only those above it in this list (`layers.txt`, checked by
//! `tests/layers.rs`). `error` sits below `model` because parsing a phone number can fail with it;
//! `metrics` at the bottom because every layer may count what it does.
//!
//! - [`metrics`]: logging set-up and the names of the hub's own metrics.
//! - [`error`]: the one domain error enum (thiserror), in the product's words, and its `Result`.
//! - [`model`]: the types every layer speaks in: ids, phone numbers and codes (read as people type
//!   them), the SMS texts, times, accounts and sessions, tickets and their events, agents,
//!   profiles, purchases, telemetry, and the product events the domain publishes.
//! - [`config`]: the one configuration struct, its defaults, sources and validation.
//! - [`ports`]: narrow capability traits (their conformance suites are in `tests/conformance/`):
//!   storage per capability (accounts, sessions, codes, agents, tickets, profiles, telemetry,
//!   purchases, account records), fan-out of product events ([`ports::broker`]), presence across
//!   nodes ([`ports::roster`]), rate-limit counters ([`ports::quota`]), SMS ([`ports::sms`]),
//!   stored objects such as attachments' bytes ([`ports::objects`]).
//! - [`domain`]: what the hub does: sessions of users and agents, phone sign-in, agents, tickets
//!   with their rules, presence, profiles, media (content types told by the bytes, the one image
//!   pipeline of profile pictures and attachments), telemetry, billing with its state rules, users'
//!   rights, announcements; and the one group-commit batcher that stores messages and telemetry in
//!   batches.
//! - [`adapters`]: the ports over real systems: SQLite (embedded default) and Postgres, Redis
//!   (quotas, roster), the SMS senders, object storage (a local folder or an S3-compatible bucket),
//!   and in-process memory for a single node.
//! - [`protocol`]: bytes <-> typed frames; JSON (text frames) and MessagePack (binary frames) from the
//!   same serde types, the views the frames carry and how model records fill them in, the close
//!   codes, and the one mapping of the domain error to the wire (code, public message, retry hint,
//!   HTTP status and body) that the socket and the HTTP routes both use. The domain never sees it.
//! - [`gateway`]: the only layer that knows sockets, frames and HTTP: the node's live sockets and
//!   their fan-out (the registry, and the Redis cluster broker, which carries events between nodes),
//!   the rendering of events into frames, one session task per WebSocket, the HTTP routes (the
//!   export document among them), and the services they reach.
//! - [`app`]: the composition root: builds everything from the configuration and owns every task of
//!   the node, which shutdown stops in order (sockets, batchers, cluster links, the rest).
//! - [`server`]: the listener: admission, the accept loop and graceful shutdown.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod error;
pub mod gateway;
pub mod metrics;
pub mod model;
pub mod ports;
pub mod protocol;
pub mod server;

pub use config::Config;
pub use error::{Error, Result};
pub use gateway::services::Services;
pub use server::RunningHub;
