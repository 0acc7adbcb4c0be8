//! The runtime of [gproc](https://docs.rs/gproc): identity, endpoints, the wire format,
//! raw messaging, the process manager and the blocking API.
//!
//! Depend on `gproc`, which re-exports everything here that users name.

#![warn(missing_docs)]

pub mod blocking;
mod config;
mod conn;
mod endpoint;
mod error;
mod identity;
mod inbox;
mod manager;
mod messaging;
mod rt;
pub mod rpc;
#[doc(hidden)]
pub mod wire;

pub use bytes::Bytes;
pub use config::{
    Config, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_QUEUE_CAPACITY,
};
pub use error::{Error, Result};
pub use identity::{is_child, pid, ppid, ppid_os, start_time, uptime, ENV_DIR, ENV_PPID};
pub use inbox::Msg;
pub use rpc::{introspect, RpcError, ServiceDescription};
pub use manager::{parent_exited, Manager, Process, Signal};
pub use messaging::{listen, receive, receive_group, send, send_group, RESERVED_PREFIX};
