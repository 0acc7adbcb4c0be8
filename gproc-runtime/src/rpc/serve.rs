//! Serving: what `{Trait}Server::serve` runs.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::contract::{RpcError, Serve, ServiceRequest};
use super::routing::up;
use super::server::register;

/// Serves `service` on this process's endpoint until the runtime it runs on shuts down
/// (or this future is dropped): what `{Trait}Server::serve` calls.
///
/// Each request runs in its own task on the current runtime, stopped when its deadline
/// passes or its caller drops the call.
///
/// # Errors
///
/// [`RpcError::AlreadyServed`] when this process already serves the service;
/// [`RpcError::Transport`] when the endpoint cannot be bound.
///
/// # Panics
///
/// Outside a tokio runtime.
pub async fn serve<S>(service: S) -> Result<(), RpcError>
where
    S: Serve,
    S::Req: ServiceRequest + DeserializeOwned,
    S::Resp: Serialize,
{
    let _registration = register(service)?;
    up()?;
    crate::transport::driver::attend();
    std::future::pending::<()>().await;
    Ok(())
}
