//! The gateway: the only layer that knows sockets, frames and HTTP. It keeps the node's live
//! sockets, renders what the domain does into frames, runs each socket's session and serves HTTP.

pub mod cluster;
pub mod http;
pub mod registry;
pub mod render;
pub mod services;
pub mod session;
