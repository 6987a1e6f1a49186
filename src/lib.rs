//! Anapars Hub: the real-time support-messaging server behind the Anapars apps.
//!
//! # Layout
//! Requests flow one way: codec -> session -> domain -> ports.
//!
//! - [`codec`]: bytes <-> typed frames; JSON (text frames) and MessagePack (binary frames) from the same serde types.
//! - [`session`]: one task per WebSocket: reads, writes, pings, limits, authentication, shutdown.
//! - [`registry`]: the node's live sockets by principal, ticket and queue: the single-node broker.
//! - [`account`]: users' rights: the export of everything kept, the two-step account deletion.
//! - [`auth`]: phone sign-in with one-time codes, session tokens, their expiry and revocation, the number change.
//! - [`agents`]: support agents: staff accounts, password sign-in, status, capacity, canned replies.
//! - [`tickets`]: support tickets: who may do what, group-commit message writes, the queue.
//! - [`broker`]: the fan-out port (who receives an event); the registry implements it on one node.
//! - [`cluster`]: several nodes: the Redis broker (per-topic pub/sub), the storage sweep for missed events.
//! - [`presence`]: who is online (debounced) behind a roster port (in-process, or Redis across nodes), and telling the people entitled to know.
//! - [`announcements`]: operator announcements pushed to every connected app or console.
//! - [`profiles`]: names and images (decoded, re-encoded, content-addressed), and who sees them.
//! - [`usage`]: device and client telemetry, view patterns, settings and consent: schema, a bounded batched pipeline, retention.
//! - [`billing`]: purchases and subscriptions as the billing system reports them (signed, idempotent, monotone), and the buyers' view of them.
//! - [`phone`]: mobile numbers parsed and normalised to E.164; never printed in full.
//! - [`storage`]: the storage ports (narrow traits) with SQLite (embedded default) and Postgres backends.
//! - [`quota`]: fixed-window counters behind a trait (in-process, or Redis when clustered) for rate limits.
//! - [`sms`]: the SMS senders (`log`, `file:`, `http:`), the group's own text-message channel.
//! - [`http`]: the HTTP routes (sign-in, health, metrics, the console's files) and the WebSocket upgrade.
//! - [`hub`]: the shared state: configuration and the domain services over their ports.
//! - [`server`]: the listener: admission, the accept loop and graceful shutdown.
//! - [`config`]: the one configuration struct, its defaults, sources and validation.
//! - [`error`]: the one domain error enum, and its mapping to wire codes, HTTP statuses and close codes.
//! - [`telemetry`]: logging set-up and the metric names.

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
