//! The gateway: the only layer that knows sockets, frames and HTTP. It keeps the node's live
//! sockets, renders what the domain does into frames, runs each socket's session and serves HTTP.

pub(crate) mod cluster;
pub(crate) mod http;
pub(crate) mod registry;
pub(crate) mod render;
pub mod services;
pub mod session;
