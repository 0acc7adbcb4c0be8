//! The RPC layer that `#[gproc::service]` builds on: the contract traits, the client
//! stub, the dispatcher, deadlines, cancellation and introspection.
//!
//! - `caller`: [`caller`], who called the handler running now;
//! - `contract`: [`Serve`] and [`Stub`], the traits generated code implements, the
//!   service descriptions and [`RpcError`];
//! - `codec`: the headers of requests and replies;
//! - `server`: the registry of served services, the dispatcher, and the inbox's route
//!   for requests;
//! - `routing`: replies to the calls waiting for them, and the bring-up of the routes;
//! - `client`: [`PidStub`], calls by PID, [`introspect`], [`ping`];
//! - `json`: [`call_json`], the JSON call path of tools;
//! - `trace`: the tracing spans of calls;
//! - `target`: who a stub calls: a PID, or the holder of a name;
//! - `serve`: [`serve`], what `{Trait}Server::serve` runs.
//!
//! Requests travel as messages in the reserved group `gproc/rpc/<Service>`, replies in
//! `gproc/reply`, both on the one connection between caller and server, in "quiet"
//! frames that need no acknowledgement (the reply says the request arrived, and a
//! closed connection that it may not have). Each message starts with a fixed header,
//! followed by the postcard encoding of the generated request or response enum:
//!
//! ```text
//! request  kind:u8 id:u64 fingerprint:u64 timeout_us:u64 body   (kind: call, cancel, probe,
//!                                                                 oneway, credit, stop, json)
//! reply    status:u8 id:u64 body                                  (status: see `codec::Status`)
//! ```

mod caller;
mod client;
mod codec;
mod contract;
mod fd;
mod inflow;
mod json;
mod local;
mod outflow;
mod routing;
mod serve;
mod server;
mod stream;
mod target;
mod trace;

pub use caller::{caller, Caller};
pub use client::{introspect, ping, PidStub};
pub use contract::{
    MethodDescription, MethodInfo, RpcError, Serve, ServiceDescription, ServiceInfo,
    ServiceRequest, Stub, WithTimeout, DEFAULT_TIMEOUT,
};
pub use fd::Fd;
pub use json::call_json;
#[cfg(feature = "tarpc")]
pub(crate) use local::{error as local_only_error, take_refusal};
pub(crate) use routing::up;
pub use serve::serve;
#[cfg(feature = "tarpc")]
pub(crate) use server::panic_message;
pub use stream::Stream;
