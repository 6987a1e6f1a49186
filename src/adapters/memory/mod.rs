//! In-process implementations for a single node.

mod quota;
mod roster;

pub use quota::MemoryQuotas;
pub use roster::MemoryRoster;
