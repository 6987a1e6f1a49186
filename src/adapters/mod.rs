//! The adapters: the ports implemented over real systems (SQLite and Postgres, Redis, the SMS
//! gateway) and in process memory for a single node.

pub mod memory;
pub mod redis;
pub(crate) mod sms;
pub mod sql;
