//! The domain: what the hub does, in the product's words, over the ports.

pub mod account;
pub mod agents;
pub mod announcements;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod billing;
pub(crate) mod group_commit;
pub mod media;
pub mod presence;
pub mod profiles;
pub mod push;
pub mod sessions;
pub mod telemetry;
pub mod tickets;
