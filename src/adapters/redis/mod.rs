//! Redis implementations, shared by every node of a cluster.

mod quota;
mod roster;

pub use quota::RedisQuotas;
pub use roster::RedisRoster;
