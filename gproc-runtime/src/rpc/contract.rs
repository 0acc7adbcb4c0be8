//! The contract between generated code and the runtime: the traits, the descriptions of
//! a service, and the errors of a call.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The default deadline of a call: 10 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong in a typed call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The message could not be delivered, or the server died during the call.
    #[error("transport: {0}")]
    Transport(#[from] Error),
    /// The call's deadline passed; the server stopped the handler.
    #[error("the deadline passed before the server answered; the handler was stopped. Raise it with with_timeout")]
    DeadlineExceeded,
    /// The process does not serve this service (yet).
    #[error("the process does not serve {service}; it may not have reached serve() yet (see wait_served)")]
    ServiceNotServed {
        /// The service's name.
        service: String,
    },
    /// The process serves another version of this service.
    #[error("the process serves another version of {service}; rebuild client and server from the same trait")]
    SchemaMismatch {
        /// The service's name.
        service: String,
    },
    /// A request or reply could not be decoded.
    #[error("a request or reply could not be decoded (a bug, or a version mismatch the fingerprint missed)")]
    Decode,
    /// The handler panicked; the server goes on serving.
    #[error("the handler panicked; the server goes on serving other calls")]
    HandlerPanicked,
    /// A value that travels only between gproc processes on one machine (a
    /// [`Stream`](crate::Stream)) was in a call that cannot carry it: through the tarpc
    /// bridge, or in an argument.
    #[error("{what} cannot travel here: {why}")]
    LocalOnly {
        /// The value's type.
        what: String,
        /// Where it can travel, and what to do instead.
        why: String,
    },
    /// This process already serves this service.
    #[error("this process already serves {service}; serve each service once")]
    AlreadyServed {
        /// The service's name.
        service: String,
    },
    /// A JSON call named a method the service does not have.
    #[error("{service} has no method {method}; `gproc inspect` lists its methods")]
    NoSuchMethod {
        /// The service's name.
        service: String,
        /// The method asked for.
        method: String,
    },
    /// A JSON call's arguments do not fit the method: not an array, too many or too
    /// few, or a value of the wrong type.
    #[error("the arguments do not fit {method}: {why}")]
    BadArguments {
        /// The method, with its signature.
        method: String,
        /// What did not fit.
        why: String,
    },
    /// A JSON call's reply cannot be written as JSON (a map with keys that are not
    /// strings, a [`Stream`](crate::Stream) or an [`Fd`](crate::Fd)): the method can be
    /// called only from Rust, through its client.
    #[error(
        "the reply cannot be written as JSON: {why}; call this method through its Rust client"
    )]
    NotJson {
        /// What serde_json said.
        why: String,
    },
}

/// A method of a service, as the macro saw it.
#[derive(Debug)]
pub struct MethodInfo {
    /// The method's name.
    pub name: &'static str,
    /// Its signature as written, such as `async fn add(&self, a: i64, b: i64) -> i64`.
    pub signature: &'static str,
    /// Its arguments' names and types as written, such as `[("a", "i64"), ("b", "i64")]`.
    pub args: &'static [(&'static str, &'static str)],
    /// Its return type as written; `()` when none is.
    pub output: &'static str,
    /// Whether it returns a `Result` (its last path segment is `Result`), whose `Err` a
    /// JSON call reports as the method's error.
    pub fallible: bool,
    /// Whether it is one-way (`#[gproc(oneway)]`).
    pub oneway: bool,
}

/// A service, as the macro saw it.
#[derive(Debug)]
pub struct ServiceInfo {
    /// The trait's name.
    pub name: &'static str,
    /// The hash of the name and every method signature; differs between versions.
    pub fingerprint: u64,
    /// The methods, in order.
    pub methods: &'static [MethodInfo],
}

/// A service served by a process, as [`introspect`](crate::introspect) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceDescription {
    /// The trait's name.
    pub name: String,
    /// The service's fingerprint.
    pub fingerprint: u64,
    /// Its methods, in the trait's order.
    pub methods: Vec<MethodDescription>,
}

impl ServiceDescription {
    /// The method called `name`, if the service has one.
    pub fn method(&self, name: &str) -> Option<&MethodDescription> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// A method of a served service, as [`introspect`](crate::introspect) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodDescription {
    /// The method's name.
    pub name: String,
    /// Its signature as written, such as `async fn add(&self, a: i64, b: i64) -> i64`.
    pub signature: String,
    /// Its arguments: name and type as written, in order. A JSON call gives their values
    /// as an array in this order.
    pub args: Vec<(String, String)>,
    /// Its return type as written; `()` when none is.
    pub output: String,
    /// Whether it returns a `Result`: a JSON call reports its `Err` as the method's error.
    pub fallible: bool,
    /// Whether it is one-way (`#[gproc(oneway)]`).
    pub oneway: bool,
}

impl From<&ServiceInfo> for ServiceDescription {
    fn from(info: &ServiceInfo) -> Self {
        ServiceDescription {
            name: info.name.to_owned(),
            fingerprint: info.fingerprint,
            methods: info.methods.iter().map(MethodDescription::from).collect(),
        }
    }
}

impl From<&MethodInfo> for MethodDescription {
    fn from(m: &MethodInfo) -> Self {
        MethodDescription {
            name: m.name.to_owned(),
            signature: m.signature.to_owned(),
            args: m
                .args
                .iter()
                .map(|&(name, ty)| (name.to_owned(), ty.to_owned()))
                .collect(),
            output: m.output.to_owned(),
            fallible: m.fallible,
            oneway: m.oneway,
        }
    }
}

/// The dispatcher side of a service: what `{Trait}Server` implements (tarpc's `Serve`).
pub trait Serve: Send + Sync + 'static {
    /// The request enum, one variant per method.
    type Req: Send + 'static;
    /// The response enum, one variant per method.
    type Resp: Send + 'static;
    /// The service's name, fingerprint and methods.
    fn info(&self) -> &'static ServiceInfo;
    /// Runs the method a request names.
    fn serve(&self, req: Self::Req) -> impl Future<Output = Self::Resp> + Send;
}

/// The client side of a service: what `{Trait}Client` calls through (tarpc's `Stub`).
///
/// [`PidStub`](crate::rpc::PidStub) calls a process by PID; every [`Serve`] is a `Stub` too, so a server can be
/// called in-process, with no socket, in unit tests.
pub trait Stub: Send + Sync {
    /// The request enum.
    type Req: Send;
    /// The response enum.
    type Resp: Send;
    /// Sends a request and waits for its response.
    fn call(&self, req: Self::Req) -> impl Future<Output = Result<Self::Resp, RpcError>> + Send;

    /// Sends the request of a one-way method (`#[gproc(oneway)]`) and returns once the
    /// server has queued it, without waiting for the handler.
    ///
    /// [`PidStub`](crate::rpc::PidStub) does so. The default makes a whole call and
    /// drops its response: an in-process server runs the handler before it returns,
    /// and the tarpc bridge waits for the handler's end.
    fn call_oneway(&self, req: Self::Req) -> impl Future<Output = Result<(), RpcError>> + Send {
        let call = self.call(req);
        async move { call.await.map(drop) }
    }
}

/// The request enum of a service knows its service: what a stub that is given only the
/// types (such as the tarpc bridge's `connect`) sends as the fingerprint.
/// `#[gproc::service]` implements it.
pub trait ServiceRequest {
    /// The service's name, fingerprint and methods.
    fn info() -> &'static ServiceInfo;
    /// The name of the method this request calls, for the call's tracing span.
    fn method(&self) -> &'static str;
}

/// A stub whose calls have a deadline that can be set: what `{Trait}Client::with_timeout`
/// calls.
pub trait WithTimeout: Sized {
    /// The same stub with `timeout` as each call's deadline.
    fn with_timeout(self, timeout: Duration) -> Self;
}

impl<S: Serve> Stub for S {
    type Req = S::Req;
    type Resp = S::Resp;
    fn call(&self, req: Self::Req) -> impl Future<Output = Result<Self::Resp, RpcError>> + Send {
        AssertUnwindSafe(self.serve(req))
            .catch_unwind()
            .map(|r| r.map_err(|_| RpcError::HandlerPanicked))
    }
}
