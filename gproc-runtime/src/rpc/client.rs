//! Calls by PID: the stub, deadlines, cancellation, and introspection.

use std::future::Future;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::oneshot;
use tracing::Instrument;

use super::codec::{Kind, RequestHead, Status};
use super::contract::{
    RpcError, ServiceDescription, ServiceInfo, ServiceRequest, Stub, WithTimeout, DEFAULT_TIMEOUT,
};
use super::inflow::Opening;
use super::target::Target;
use super::trace::Traced;
use super::{fd, local, routing, stream};
use crate::config::settings;
use crate::error::Error;
use crate::groups::{INTROSPECT_GROUP, REQUEST_PREFIX};
use crate::transport::{self, driver, Hold, Peer};

/// Calls a service on a process by PID, or on whoever holds a name.
pub struct PidStub<Req, Resp> {
    target: Target,
    timeout: Duration,
    info: &'static ServiceInfo,
    /// `gproc/rpc/<Service>`, made once.
    group: Arc<str>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> Clone for PidStub<Req, Resp> {
    fn clone(&self) -> Self {
        PidStub {
            target: self.target.clone(),
            timeout: self.timeout,
            info: self.info,
            group: self.group.clone(),
            _types: PhantomData,
        }
    }
}

impl<Req, Resp> std::fmt::Debug for PidStub<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("PidStub");
        f.field("service", &self.info.name);
        if let Some(name) = self.target.name_of() {
            f.field("name", &name);
        }
        f.field("pid", &self.target.pid())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<Req, Resp> WithTimeout for PidStub<Req, Resp> {
    fn with_timeout(self, timeout: Duration) -> Self {
        PidStub::with_timeout(self, timeout)
    }
}

impl<Req, Resp> PidStub<Req, Resp> {
    /// A stub for `info`'s service on `pid`, with the [default deadline](DEFAULT_TIMEOUT).
    pub fn new(pid: u32, info: &'static ServiceInfo) -> Self {
        Self::to(Target::Pid(pid), info)
    }

    /// A stub for `info`'s service on whoever holds `name`: looked up at the first call,
    /// and again whenever the holder found last is gone (a restarted holder has a new
    /// PID). Nothing is looked up here: a name nobody holds, or an invalid one, fails the
    /// calls ([`Error::NoSuchName`], [`Error::InvalidName`] in [`RpcError::Transport`]).
    pub fn by_name(name: impl Into<String>, info: &'static ServiceInfo) -> Self {
        Self::to(Target::name(name.into()), info)
    }

    fn to(target: Target, info: &'static ServiceInfo) -> Self {
        PidStub {
            target,
            timeout: DEFAULT_TIMEOUT,
            info,
            group: format!("{REQUEST_PREFIX}{}", info.name).into(),
            _types: PhantomData,
        }
    }

    /// The same stub with another deadline for each call.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        PidStub { timeout, ..self }
    }

    /// The PID it calls; by name, the holder found last (0 before the first call).
    pub fn pid(&self) -> u32 {
        self.target.pid()
    }

    /// Waits until `pid` serves this version of the service.
    ///
    /// # Errors
    ///
    /// [`RpcError::SchemaMismatch`] when it serves another version,
    /// [`RpcError::DeadlineExceeded`] when `timeout` passes first.
    pub async fn wait_served(&self, timeout: Duration) -> Result<(), RpcError> {
        let (target, info, group) = (self.target.clone(), self.info, self.group.clone());
        let deadline = crate::rt::deadline_after(timeout);
        async move {
            let mut pause = Duration::from_millis(1);
            let mut last_seen = None;
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    // The error is the contract's; what was seen goes to the log.
                    let seen = last_seen.map_or_else(
                        || "no answer at all (the process may be stopped or overloaded)".into(),
                        |e: RpcError| e.to_string(),
                    );
                    tracing::warn!(
                        pid = target.pid(),
                        name = target.name_of(),
                        service = info.name,
                        "gproc: wait_served gave up after {timeout:?}; last seen: {seen}"
                    );
                    return Err(RpcError::DeadlineExceeded);
                }
                let probed = match target.resolve() {
                    Ok(pid) => raw_call(pid, &group, Kind::Probe, key(info), &(), left).await,
                    Err(e) => Err(e),
                };
                match probed {
                    Ok(_) => return Ok(()),
                    // Not up yet, not served yet, or (by name) not named yet.
                    Err(e @ RpcError::ServiceNotServed { .. })
                    | Err(e @ RpcError::Transport(Error::NotListening(_)))
                    | Err(e @ RpcError::Transport(Error::NoSuchName(_))) => last_seen = Some(e),
                    Err(RpcError::DeadlineExceeded) => {}
                    Err(e) => return Err(e),
                }
                // Not served yet: the child has not reached serve(). Poll, backing off.
                crate::rt::sleep(pause.min(left)).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
        .await
    }
}

impl<Req, Resp> Stub for PidStub<Req, Resp>
where
    Req: ServiceRequest + Serialize + Send + Sync + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    type Req = Req;
    type Resp = Resp;

    fn call(&self, req: Req) -> impl Future<Output = Result<Resp, RpcError>> + Send {
        let (target, info, timeout, group) = (
            self.target.clone(),
            self.info,
            self.timeout,
            self.group.clone(),
        );
        let mut traced = Traced::call(info.name, req.method());
        let span = traced.span().clone();
        async move {
            let tracing = &traced;
            let result = async move {
                let pid = target.resolve()?;
                tracing.pid(pid);
                let (reply, fds, peer) =
                    raw_call(pid, &group, Kind::Call, key(info), &req, timeout).await?;
                // The streams in the reply come on its connection; its descriptors came
                // with it.
                let opening = Opening { peer, group };
                let decoded = fd::decoding(fds, || {
                    stream::decoding(opening, || postcard::from_bytes(&reply))
                });
                decoded.map_err(|e| {
                    if let Some(refusal) = local::take_refusal() {
                        return local::error(refusal);
                    }
                    tracing::warn!(service = info.name, "gproc: undecodable reply: {e}");
                    RpcError::Decode
                })
            }
            .await;
            traced.end_with(&result);
            result
        }
        .instrument(span)
    }

    /// The server answers a one-way request as soon as it has queued it, and then runs
    /// the handler: this waits for that answer, not for the handler. Dropped before the
    /// answer came, the request may or may not be handled.
    fn call_oneway(&self, req: Req) -> impl Future<Output = Result<(), RpcError>> + Send {
        let (target, info, timeout, group) = (
            self.target.clone(),
            self.info,
            self.timeout,
            self.group.clone(),
        );
        let mut traced = Traced::call(info.name, req.method());
        let span = traced.span().clone();
        async move {
            let result = match target.resolve() {
                Ok(pid) => {
                    traced.pid(pid);
                    raw_call(pid, &group, Kind::Oneway, key(info), &req, timeout)
                        .await
                        .map(drop)
                }
                Err(e) => Err(e),
            };
            traced.end_with(&result);
            result
        }
        .instrument(span)
    }
}

/// What a request says of its service: the name (for errors) and the fingerprint.
pub(super) type ServiceKey<'a> = (&'a str, u64);

fn key(info: &'static ServiceInfo) -> ServiceKey<'static> {
    (info.name, info.fingerprint)
}

/// Lists the services `pid` serves, with their methods and fingerprints.
///
/// Every endpoint answers this, whether it serves anything or not.
///
/// # Errors
///
/// [`RpcError::Transport`] when `pid` cannot be reached; [`RpcError::DeadlineExceeded`]
/// after the default deadline.
pub async fn introspect(pid: u32) -> Result<Vec<ServiceDescription>, RpcError> {
    async move {
        let group = Arc::from(INTROSPECT_GROUP);
        let reply = raw_call(pid, &group, Kind::Call, INTROSPECT, &(), DEFAULT_TIMEOUT).await?;
        postcard::from_bytes(&reply.0).map_err(|_| RpcError::Decode)
    }
    .await
}

/// One round trip to `pid`'s endpoint: a request its runtime answers at once, whatever it
/// serves. Returns the time from sending to the answer; the first one to a process also
/// opens the connection, which later ones reuse.
///
/// ```no_run
/// # async fn example(pid: u32) -> Result<(), gproc::RpcError> {
/// let took = gproc::ping(pid).await?;
/// println!("{pid} answered in {took:?}");
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`introspect`].
pub async fn ping(pid: u32) -> Result<Duration, RpcError> {
    async move {
        let group = Arc::from(INTROSPECT_GROUP);
        let started = std::time::Instant::now();
        raw_call(pid, &group, Kind::Probe, INTROSPECT, &(), DEFAULT_TIMEOUT).await?;
        Ok(started.elapsed())
    }
    .await
}

/// The built-in introspection service: its group, and no fingerprint.
const INTROSPECT: ServiceKey<'static> = (INTROSPECT_GROUP, 0);

/// A call waiting for its reply. Dropped before the reply came, it tells the server to
/// stop the handler.
struct Pending {
    id: u64,
    peer: Arc<Peer>,
    group: Arc<str>,
    answered: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        routing::forget(self.id);
        if !self.answered {
            let head = RequestHead {
                kind: Kind::Cancel,
                id: self.id,
                fingerprint: 0,
                timeout: Duration::ZERO,
            };
            if let Ok(data) = head.encode(&()) {
                let _ = self
                    .peer
                    .send_message(&self.group, &data, false, Hold::Batch);
            }
        }
    }
}

/// The connection to `pid`, once a request of `len` bytes is known to fit both limits.
async fn connect(pid: u32, len: usize) -> Result<Arc<Peer>, Error> {
    let limit = settings().max_message_size;
    if len > limit {
        return Err(Error::MessageTooLarge { size: len, limit });
    }
    driver::attend();
    let peer = transport::peer(pid).await?;
    if len > peer.max_message {
        return Err(Error::MessageTooLarge {
            size: len,
            limit: peer.max_message,
        });
    }
    Ok(peer)
}

/// Sends one request to `pid` and waits for its reply: the body, descriptors and
/// connection of an `Ok` reply, the error any other status means.
pub(super) async fn raw_call(
    pid: u32,
    group: &Arc<str>,
    kind: Kind,
    (service, fingerprint): ServiceKey<'_>,
    body: &impl Serialize,
    timeout: Duration,
) -> Result<(Bytes, Vec<OwnedFd>, Arc<Peer>), RpcError> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    // Calling is a first use too: bind our endpoint, as sending does.
    if let Err(e) = routing::up() {
        tracing::debug!("gproc: calling without an endpoint of our own: {e}");
    }
    let deadline = crate::rt::deadline_after(timeout);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let head = RequestHead {
        kind,
        id,
        fingerprint,
        timeout,
    };
    // The descriptors in the request go with its message.
    let (data, fds) = fd::encoding(|| head.encode(body));
    let data = data?;
    // One timer for the whole call, set before the request goes out.
    let expired = crate::rt::sleep_until(deadline);
    tokio::pin!(expired);
    let peer = tokio::select! {
        peer = connect(pid, data.len()) => peer?,
        () = &mut expired => return Err(RpcError::DeadlineExceeded),
    };
    let (tx, rx) = oneshot::channel();
    routing::expect(id, &peer, tx);
    let mut pending = Pending {
        id,
        peer: peer.clone(),
        group: group.clone(),
        answered: false,
    };
    // The reply tells of delivery, and a closed connection of failure: no need for an
    // acknowledgement. Other calls in flight to this peer: this request may share a write.
    if let Err(e) = peer.send_message_fds(&pending.group, &data, fds, false, Hold::Batch) {
        pending.answered = true;
        return Err(RpcError::Transport(e));
    }
    driver::attend();
    let (status, body, fds) = tokio::select! {
        reply = rx => reply.map_err(|_| RpcError::Transport(Error::ConnectionLost))?,
        () = peer.closed() => {
            pending.answered = true;
            return Err(RpcError::Transport(Error::ConnectionLost));
        }
        () = &mut expired => return Err(RpcError::DeadlineExceeded),
    };
    pending.answered = true;
    let service = || service.to_owned();
    match status {
        Status::Ok => Ok((body, fds, peer)),
        Status::NotServed => Err(RpcError::ServiceNotServed { service: service() }),
        Status::SchemaMismatch => Err(RpcError::SchemaMismatch { service: service() }),
        // A stream's frames never answer a call (the replies' route takes them first).
        Status::Decode | Status::Item | Status::End | Status::Failed => Err(RpcError::Decode),
        Status::Panicked => Err(RpcError::HandlerPanicked),
        Status::Deadline => Err(RpcError::DeadlineExceeded),
        Status::TooManyFds => {
            let count = postcard::from_bytes::<u64>(&body).unwrap_or_default();
            Err(RpcError::Transport(Error::TooManyFds {
                count: usize::try_from(count).unwrap_or(usize::MAX),
                limit: crate::transport::wire::MAX_FDS,
            }))
        }
        Status::NoSuchMethod => Err(RpcError::NoSuchMethod {
            service: service(),
            method: postcard::from_bytes::<String>(&body).unwrap_or_default(),
        }),
        Status::BadArguments => {
            let (method, why) = postcard::from_bytes::<(String, String)>(&body).unwrap_or_default();
            Err(RpcError::BadArguments { method, why })
        }
        Status::NotJson => Err(RpcError::NotJson {
            why: postcard::from_bytes::<String>(&body).unwrap_or_default(),
        }),
        Status::TooLarge => {
            let (size, limit) = postcard::from_bytes::<(u64, u64)>(&body).unwrap_or_default();
            Err(RpcError::Transport(Error::MessageTooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            }))
        }
    }
}
