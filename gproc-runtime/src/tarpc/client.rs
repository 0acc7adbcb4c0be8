//! Calling a gproc service through tarpc's client channel: [`connect`] to a TCP address,
//! [`connect_io`] over any byte stream.

use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, ToSocketAddrs};

use super::codec::transport;
use super::envelope::{Answer, Call};
use crate::config::settings;
use crate::error::Error;
use crate::rpc::{RpcError, ServiceInfo, ServiceRequest, Stub, WithTimeout, DEFAULT_TIMEOUT};

/// The longest deadline sent: tarpc keeps deadlines in tokio's timer wheel, which holds
/// about two years, so a `Duration::MAX` "no deadline" is sent as a year.
const LONGEST_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Calls a service on another machine through tarpc: what `{Trait}Client::from_stub`
/// takes. Cheap to clone; clones share the connection.
///
/// Made by [`connect`] or [`connect_io`]; the deadline of each call is the
/// [default](DEFAULT_TIMEOUT) of 10 seconds until
/// [`with_timeout`](crate::rpc::WithTimeout::with_timeout) (or the client's
/// `with_timeout`) sets another.
pub struct TarpcStub<Req, Resp> {
    channel: tarpc::client::Channel<Call, Answer<Resp>>,
    info: &'static ServiceInfo,
    timeout: Duration,
    _req: PhantomData<fn(Req)>,
}

impl<Req, Resp> Clone for TarpcStub<Req, Resp> {
    fn clone(&self) -> Self {
        TarpcStub {
            channel: self.channel.clone(),
            info: self.info,
            timeout: self.timeout,
            _req: PhantomData,
        }
    }
}

impl<Req, Resp> fmt::Debug for TarpcStub<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TarpcStub")
            .field("service", &self.info.name)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<Req, Resp> WithTimeout for TarpcStub<Req, Resp> {
    fn with_timeout(self, timeout: Duration) -> Self {
        TarpcStub { timeout, ..self }
    }
}

/// Connects to a service served by [`serve`](super::serve) at `addr`, trying each address
/// it resolves to, within [`connect_timeout`](crate::Config::connect_timeout).
///
/// # Errors
///
/// [`Error::Io`] naming the address when nothing listens there (`ConnectionRefused`, at
/// once) or it cannot be resolved; [`Error::Timeout`] when no answer comes in time.
pub async fn connect<Req, Resp>(addr: impl ToSocketAddrs) -> Result<TarpcStub<Req, Resp>, Error>
where
    Req: ServiceRequest + Serialize + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    let service = Req::info().name;
    let timeout = settings().connect_timeout;
    let addrs: Vec<_> = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| {
            Error::Io(io::Error::new(
                e.kind(),
                format!("cannot resolve the address of {service}: {e}"),
            ))
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%addr, "gproc: TCP_NODELAY: {e}");
                }
                return Ok(connect_io(stream));
            }
            Ok(Err(e)) => {
                last = Some(Error::Io(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot connect to {service} at {addr}: {e}; is it served there (gproc::tarpc::serve)?"
                    ),
                )))
            }
            Err(_) => {
                tracing::debug!(%addr, "gproc: no answer to a TCP connect in {timeout:?}");
                last = Some(Error::Timeout);
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("the address of {service} resolves to nothing"),
        ))
    }))
}

/// A stub calling over `io` (a TLS stream, an SSH channel, a socket) a service that
/// [`serve_io`](super::serve_io) serves on the other end.
///
/// # Panics
///
/// Outside a tokio runtime: the connection is driven by a task spawned on it.
pub fn connect_io<Req, Resp, Io>(io: Io) -> TarpcStub<Req, Resp>
where
    Req: ServiceRequest + Serialize,
    Resp: DeserializeOwned + Send + 'static,
    Io: AsyncRead + AsyncWrite + Send + 'static,
{
    let channel = tarpc::client::new(tarpc::client::Config::default(), transport(io)).spawn();
    TarpcStub {
        channel,
        info: Req::info(),
        timeout: DEFAULT_TIMEOUT,
        _req: PhantomData,
    }
}

impl<Req, Resp> Stub for TarpcStub<Req, Resp>
where
    Req: Serialize + Send,
    Resp: DeserializeOwned + Send + 'static,
{
    type Req = Req;
    type Resp = Resp;

    fn call(&self, req: Req) -> impl Future<Output = Result<Resp, RpcError>> + Send {
        let body = encode(&req, self.info);
        let mut ctx = tarpc::context::current();
        ctx.deadline = Instant::now() + self.timeout.min(LONGEST_DEADLINE);
        let service = self.info.name;
        async move {
            let call = Call {
                fingerprint: self.info.fingerprint,
                body: body?,
            };
            match self.channel.call(ctx, call).await {
                Ok(Answer::Ok(resp)) => Ok(resp),
                Ok(Answer::SchemaMismatch) => Err(RpcError::SchemaMismatch {
                    service: service.to_owned(),
                }),
                Ok(Answer::Undecodable) => Err(RpcError::Decode),
                Ok(Answer::Panicked) => Err(RpcError::HandlerPanicked),
                Ok(Answer::LocalOnly { what, why }) => Err(RpcError::LocalOnly { what, why }),
                Ok(Answer::TooLarge { size, limit }) => {
                    Err(RpcError::Transport(Error::MessageTooLarge {
                        size: usize::try_from(size).unwrap_or(usize::MAX),
                        limit: usize::try_from(limit).unwrap_or(usize::MAX),
                    }))
                }
                Err(e) => Err(from_tarpc(e, service)),
            }
        }
    }
}

/// The request's body, checked against this process's message size limit before it is sent.
fn encode<Req: Serialize>(req: &Req, info: &ServiceInfo) -> Result<Bytes, RpcError> {
    let body = postcard::to_allocvec(req).map_err(|e| {
        if let Some(refusal) = crate::rpc::take_refusal() {
            return crate::rpc::local_only_error(refusal);
        }
        tracing::warn!(service = info.name, "gproc: cannot encode a request: {e}");
        RpcError::Decode
    })?;
    let limit = settings().max_message_size;
    if body.len() > limit {
        return Err(RpcError::Transport(Error::MessageTooLarge {
            size: body.len(),
            limit,
        }));
    }
    Ok(Bytes::from(body))
}

/// tarpc's error as gproc's: the same variants a call by PID fails with.
fn from_tarpc(e: tarpc::client::RpcError, service: &str) -> RpcError {
    use tarpc::client::RpcError as Tarpc;
    match e {
        Tarpc::DeadlineExceeded => RpcError::DeadlineExceeded,
        Tarpc::Server(e) => RpcError::Transport(Error::Io(io::Error::new(
            e.kind,
            format!("the server of {service} refused the call: {}", e.detail),
        ))),
        lost => {
            tracing::debug!(service, "gproc: a tarpc call failed: {lost}");
            RpcError::Transport(Error::ConnectionLost)
        }
    }
}
