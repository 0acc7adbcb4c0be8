//! Serving a gproc service with tarpc's server machinery: [`serve`] on a TCP port,
//! [`serve_io`] on any byte stream.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tarpc::server::{BaseChannel, Channel};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::task::{AbortHandle, JoinSet};

use super::codec::transport;
use super::envelope::{Answer, Call};
use crate::config::settings;
use crate::error::Error;
use crate::rpc::{panic_message, Serve};

/// How long the accepting task waits after a failed `accept` (out of descriptors, say)
/// before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A service served on a TCP port by [`serve`]; serving stops when it is dropped.
///
/// Dropping it closes the listening socket and every connection it accepted, and stops
/// their handlers.
pub struct Serving {
    local_addr: SocketAddr,
    accepting: AbortHandle,
}

impl Serving {
    /// The address the service is bound to: with port 0, the port the system picked.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl fmt::Debug for Serving {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serving")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

/// Serves `server` over TCP at `addr` until the returned [`Serving`] is dropped.
///
/// Each connection is a tarpc channel; each call runs in its own task on the current tokio
/// runtime, stopped when its deadline passes, when the caller drops the call, or when the
/// connection closes. A connection has at most
/// [`queue_capacity`](crate::Config::queue_capacity) calls running at once; the next ones
/// are refused with an error the caller sees.
///
/// # Errors
///
/// [`Error::Io`] when the address cannot be bound; the message names it.
///
/// # Examples
///
/// ```
/// # #[gproc::service]
/// # trait Calculator { async fn add(&self, a: i64, b: i64) -> i64; }
/// # struct Calc;
/// # impl Calculator for Calc { async fn add(&self, a: i64, b: i64) -> i64 { a + b } }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let serving = gproc::tarpc::serve("127.0.0.1:0", CalculatorServer::new(Calc)).await?;
/// let calc = CalculatorClient::from_stub(gproc::tarpc::connect(serving.local_addr()).await?);
/// assert_eq!(calc.add(1, 2).await?, 3);
/// # Ok(())
/// # }
/// ```
pub async fn serve<S>(addr: impl ToSocketAddrs, server: S) -> Result<Serving, Error>
where
    S: Serve,
    S::Req: DeserializeOwned,
    S::Resp: Serialize,
{
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        Error::Io(io::Error::new(
            e.kind(),
            format!(
                "cannot bind a TCP port to serve {}: {e}",
                server.info().name
            ),
        ))
    })?;
    let local_addr = listener.local_addr()?;
    tracing::debug!(service = server.info().name, %local_addr, "gproc: serving over tarpc");
    let accepting = tokio::spawn(accept(listener, Arc::new(server))).abort_handle();
    Ok(Serving {
        local_addr,
        accepting,
    })
}

/// Accepts connections and serves each in a task of its own, until aborted (which aborts
/// them all).
async fn accept<S>(listener: TcpListener, server: Arc<S>)
where
    S: Serve,
    S::Req: DeserializeOwned,
    S::Resp: Serialize,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, "gproc: TCP_NODELAY: {e}");
                    }
                    tracing::debug!(%peer, "gproc: a tarpc connection");
                    connections.spawn(serve_channel(stream, server.clone()));
                }
                Err(e) => {
                    tracing::warn!(
                        service = server.info().name,
                        "gproc: cannot accept a tarpc connection: {e}; trying again in {ACCEPT_BACKOFF:?}"
                    );
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves `server` on one connection, `io` (a TLS stream, an SSH channel, a socket), until
/// the peer closes it; the caller's side is [`connect_io`](super::connect_io).
///
/// Calls run as they do under [`serve`]; when the connection closes, the calls still
/// running on it are stopped.
pub async fn serve_io<S, Io>(io: Io, server: S)
where
    S: Serve,
    S::Req: DeserializeOwned,
    S::Resp: Serialize,
    Io: AsyncRead + AsyncWrite + Send + 'static,
{
    serve_channel(io, Arc::new(server)).await
}

async fn serve_channel<S, Io>(io: Io, server: Arc<S>)
where
    S: Serve,
    S::Req: DeserializeOwned,
    S::Resp: Serialize,
    Io: AsyncRead + AsyncWrite + Send + 'static,
{
    let service = server.info().name;
    // Each handler is a task of its own. The channel keeps an abort handle for each call
    // in flight: when the connection ends and the channel is dropped, they all stop.
    BaseChannel::with_defaults(transport(io))
        .max_concurrent_requests(settings().queue_capacity)
        .execute(Bridge(server))
        .for_each(|handler| async {
            tokio::spawn(handler);
        })
        .await;
    tracing::debug!(service, "gproc: a tarpc connection ended");
}

/// A gproc [`Serve`] as a tarpc [`Serve`](tarpc::server::Serve).
struct Bridge<S>(Arc<S>);

impl<S> Clone for Bridge<S> {
    fn clone(&self) -> Self {
        Bridge(self.0.clone())
    }
}

impl<S> tarpc::server::Serve for Bridge<S>
where
    S: Serve,
    S::Req: DeserializeOwned,
    S::Resp: Serialize,
{
    type Req = Call;
    type Resp = Answer<S::Resp>;

    async fn serve(
        self,
        _: tarpc::context::Context,
        call: Call,
    ) -> Result<Answer<S::Resp>, tarpc::ServerError> {
        let info = self.0.info();
        if call.fingerprint != info.fingerprint {
            return Ok(Answer::SchemaMismatch);
        }
        let req = match postcard::from_bytes(&call.body) {
            Ok(req) => req,
            Err(e) => {
                tracing::warn!(service = info.name, "gproc: an undecodable request: {e}");
                return Ok(Answer::Undecodable);
            }
        };
        let resp = match AssertUnwindSafe(self.0.serve(req)).catch_unwind().await {
            Ok(resp) => resp,
            Err(panic) => {
                tracing::error!(
                    service = info.name,
                    "gproc: a handler panicked: {}; the caller gets HandlerPanicked",
                    panic_message(&*panic)
                );
                return Ok(Answer::Panicked);
            }
        };
        let limit = settings().max_message_size;
        match postcard::experimental::serialized_size(&resp) {
            Ok(size) if size <= limit => Ok(Answer::Ok(resp)),
            Ok(size) => Ok(Answer::TooLarge {
                size: size as u64,
                limit: limit as u64,
            }),
            Err(e) => match crate::rpc::take_refusal() {
                Some(refusal) => Ok(Answer::LocalOnly {
                    what: refusal.what.to_owned(),
                    why: refusal.why.to_owned(),
                }),
                None => {
                    tracing::warn!(service = info.name, "gproc: cannot encode a reply: {e}");
                    Ok(Answer::Undecodable)
                }
            },
        }
    }
}
