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
}

/// A method of a service, as the macro saw it.
#[derive(Debug)]
pub struct MethodInfo {
    /// The method's name.
    pub name: &'static str,
    /// Its signature as written, such as `async fn add(&self, a: i64, b: i64) -> i64`.
    pub signature: &'static str,
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
    /// Its methods: name and signature text.
    pub methods: Vec<(String, String)>,
}

impl From<&ServiceInfo> for ServiceDescription {
    fn from(info: &ServiceInfo) -> Self {
        ServiceDescription {
            name: info.name.to_owned(),
            fingerprint: info.fingerprint,
            methods: info
                .methods
                .iter()
                .map(|m| (m.name.to_owned(), m.signature.to_owned()))
                .collect(),
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
