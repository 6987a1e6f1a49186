//! Redis implementations, shared by every node of a cluster.

mod quota;
mod roster;

pub use quota::RedisQuotas;
pub use roster::RedisRoster;

use crate::error::Error;

/// Any Redis failure is `unavailable`: the counters and the roster are out of reach, not wrong.
impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        tracing::warn!(error = %e, "redis unavailable");
        Self::Unavailable
    }
}
