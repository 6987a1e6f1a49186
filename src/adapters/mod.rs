//! The adapters: the ports implemented over real systems (SQLite and Postgres, Redis, the SMS
//! gateway, a folder or an S3-compatible bucket for objects, the push providers) and in process
//! memory for a single node.

pub mod memory;
pub mod objects;
pub mod push;
pub mod redis;
pub(crate) mod sms;
pub mod sql;
pub mod vault;
