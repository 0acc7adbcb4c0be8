//! The RPC core that `#[gproc::service]` builds on: the contract traits, the dispatcher,
//! the client stub, deadlines, cancellation and introspection.
//!
//! Requests travel as raw messages in the reserved group `gproc/rpc/<Service>`, replies in
//! `gproc/reply` back to the caller's PID. Each message starts with a fixed header,
//! followed by the postcard encoding of the generated request or response enum:
//!
//! ```text
//! request  kind:u8 id:u64 fingerprint:u64 timeout_us:u64 body   (kind: call, cancel, probe)
//! reply    status:u8 id:u64 body                                  (status: see `Status`)
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{BufMut, Bytes};
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::endpoint::ensure_listening;
use crate::error::Error;
use crate::messaging::{post_to, send_to};

/// The default deadline of a call: 10 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The prefix of the groups that carry requests, followed by the service name.
pub(crate) const REQUEST_PREFIX: &str = "gproc/rpc/";
/// The group replies come back in.
const REPLY_GROUP: &str = "gproc/reply";
/// The group of the built-in introspection service.
pub(crate) const INTROSPECT_GROUP: &str = "gproc/introspect";

const REQUEST_HEAD: usize = 25;
const REPLY_HEAD: usize = 9;

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

/// A service served by a process, as [`introspect`] reports it.
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
/// [`PidStub`] calls a process by PID; every [`Serve`] is a `Stub` too, so a server can be
/// called in-process, with no socket, in unit tests.
pub trait Stub: Send + Sync {
    /// The request enum.
    type Req: Send;
    /// The response enum.
    type Resp: Send;
    /// Sends a request and waits for its response.
    fn call(&self, req: Self::Req) -> impl Future<Output = Result<Self::Resp, RpcError>> + Send;
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

/// Calls a service on a process by PID.
pub struct PidStub<Req, Resp> {
    pid: u32,
    timeout: Duration,
    info: &'static ServiceInfo,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> Clone for PidStub<Req, Resp> {
    fn clone(&self) -> Self {
        PidStub {
            _types: PhantomData,
            ..*self
        }
    }
}

impl<Req, Resp> std::fmt::Debug for PidStub<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PidStub")
            .field("service", &self.info.name)
            .field("pid", &self.pid)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<Req, Resp> PidStub<Req, Resp> {
    /// A stub for `info`'s service on `pid`, with the [default deadline](DEFAULT_TIMEOUT).
    pub fn new(pid: u32, info: &'static ServiceInfo) -> Self {
        PidStub {
            pid,
            timeout: DEFAULT_TIMEOUT,
            info,
            _types: PhantomData,
        }
    }

    /// The same stub with another deadline for each call.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        PidStub { timeout, ..self }
    }

    /// The PID it calls.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until `pid` serves this version of the service.
    ///
    /// # Errors
    ///
    /// [`RpcError::SchemaMismatch`] when it serves another version,
    /// [`RpcError::DeadlineExceeded`] when `timeout` passes first.
    pub async fn wait_served(&self, timeout: Duration) -> Result<(), RpcError> {
        let (pid, info) = (self.pid, self.info);
        let deadline = deadline_after(timeout);
        async move {
            let mut pause = Duration::from_millis(1);
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(RpcError::DeadlineExceeded);
                }
                let group = format!("{REQUEST_PREFIX}{}", info.name);
                match raw_call(pid, group, Kind::Probe, info, &(), left).await {
                    Ok(_) => return Ok(()),
                    Err(RpcError::ServiceNotServed { .. })
                    | Err(RpcError::Transport(Error::NotListening(_))) => {}
                    Err(e) => return Err(e),
                }
                // Not served yet: the child has not reached serve(). Poll, backing off.
                timer(tokio::time::Instant::now() + pause.min(left)).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
        .await
    }
}

impl<Req, Resp> Stub for PidStub<Req, Resp>
where
    Req: Serialize + Send + Sync + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    type Req = Req;
    type Resp = Resp;

    fn call(&self, req: Req) -> impl Future<Output = Result<Resp, RpcError>> + Send {
        let (pid, info, timeout) = (self.pid, self.info, self.timeout);
        async move {
            let group = format!("{REQUEST_PREFIX}{}", info.name);
            let reply = raw_call(pid, group, Kind::Call, info, &req, timeout).await?;
            postcard::from_bytes(&reply).map_err(|e| {
                tracing::warn!(service = info.name, "gproc: undecodable reply: {e}");
                RpcError::Decode
            })
        }
    }
}

/// Serves `service` until the runtime it runs on shuts down.
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
    S::Req: DeserializeOwned,
    S::Resp: Serialize,
{
    let info = service.info();
    let dispatcher = Arc::new(Dispatcher {
        service,
        runtime: tokio::runtime::Handle::current(),
        running: Mutex::new(HashMap::new()),
    });
    let _registration = Registration::new(info, dispatcher)?;
    ensure_listening()?;
    crate::rt::adopt_current();
    // Requests are dispatched by the connections' readers, straight into handler tasks
    // on this runtime; this future only keeps the service registered.
    std::future::pending::<()>().await;
    Ok(())
}

/// What a connection's reader hands a request of a served service to.
trait Dispatch: Send + Sync {
    fn info(&self) -> &'static ServiceInfo;
    /// Starts handling a request (decoded head, whole message) from `peer`. `permit` is
    /// the request's place among those the service runs at once.
    fn dispatch(
        self: Arc<Self>,
        peer: u32,
        head: RequestHead,
        data: Bytes,
        permit: Option<OwnedSemaphorePermit>,
    );
}

struct Dispatcher<S> {
    service: S,
    /// Where handlers run: the runtime that called `serve()`.
    runtime: tokio::runtime::Handle,
    /// Running handlers, by caller and call id, for cancellation.
    running: Mutex<HashMap<(u32, u64), tokio::task::AbortHandle>>,
}

impl<S> Dispatch for Dispatcher<S>
where
    S: Serve,
    S::Req: DeserializeOwned,
    S::Resp: Serialize,
{
    fn info(&self) -> &'static ServiceInfo {
        self.service.info()
    }

    fn dispatch(
        self: Arc<Self>,
        peer: u32,
        head: RequestHead,
        data: Bytes,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let key = (peer, head.id);
        match head.kind {
            Kind::Cancel => {
                if let Some(task) = lock(&self.running).remove(&key) {
                    task.abort();
                }
            }
            Kind::Probe | Kind::Call if head.fingerprint != self.info().fingerprint => {
                spawn_reply(peer, head.id, Status::SchemaMismatch);
            }
            Kind::Probe => spawn_reply(peer, head.id, Status::Ok),
            Kind::Call => {
                let Ok(req) = postcard::from_bytes::<S::Req>(&data[REQUEST_HEAD..]) else {
                    spawn_reply(peer, head.id, Status::Decode);
                    return;
                };
                let this = self.clone();
                // Held while spawning, so that a handler finishing at once removes an
                // entry that is already there.
                let mut running = lock(&self.running);
                let task = self.runtime.spawn(async move {
                    let _permit = permit;
                    let handler = AssertUnwindSafe(this.service.serve(req)).catch_unwind();
                    let data = match tokio::time::timeout(head.timeout, handler).await {
                        Ok(Ok(resp)) => encode_reply(head.id, Status::Ok, &resp),
                        Ok(Err(_)) => encode_reply(head.id, Status::Panicked, &()),
                        Err(_) => encode_reply(head.id, Status::Deadline, &()),
                    };
                    let others = {
                        let mut running = lock(&this.running);
                        running.remove(&key);
                        !running.is_empty()
                    };
                    reply(peer, data, others).await;
                });
                running.insert(key, task.abort_handle());
            }
        }
    }
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
        let reply = raw_call(
            pid,
            INTROSPECT_GROUP.to_owned(),
            Kind::Call,
            &INTROSPECT,
            &(),
            DEFAULT_TIMEOUT,
        )
        .await?;
        postcard::from_bytes(&reply).map_err(|_| RpcError::Decode)
    }
    .await
}

static INTROSPECT: ServiceInfo = ServiceInfo {
    name: "gproc/introspect",
    fingerprint: 0,
    methods: &[],
};

/// What a connection's reader does with a message in a reserved group.
pub(crate) enum Intercepted {
    /// Not RPC traffic: queue it as any message.
    No,
    /// Answered or routed already.
    Done,
    /// A request for a served service: wait for room, then hand it over.
    Request(Request),
}

/// A request for a served service, waiting for room to run.
pub(crate) struct Request {
    served: Served,
    peer: u32,
    head: RequestHead,
    data: Bytes,
}

impl Request {
    /// Waits until the service may run one more request, then starts it.
    pub(crate) async fn dispatch(self) {
        let Request {
            served,
            peer,
            head,
            data,
        } = self;
        // A cancellation frees room: it must not wait for any.
        let permit = match head.kind {
            Kind::Cancel => None,
            _ => match served.slots.acquire_owned().await {
                Ok(permit) => Some(permit),
                Err(_) => return,
            },
        };
        served.dispatcher.dispatch(peer, head, data, permit);
    }
}

/// Takes, on the endpoint's reader, the RPC traffic: replies go to their waiting calls,
/// requests to their service's handlers (or are answered `ServiceNotServed`), and
/// introspection is answered.
pub(crate) fn intercept(group: &str, data: &Bytes, peer: u32) -> Intercepted {
    if group == REPLY_GROUP {
        // Straight to the waiting call, from the connection's reader: no queue, no task.
        route_reply(data);
        return Intercepted::Done;
    }
    let service = if group == INTROSPECT_GROUP {
        None
    } else if let Some(service) = group.strip_prefix(REQUEST_PREFIX) {
        Some(service)
    } else {
        return Intercepted::No;
    };
    let Some(head) = RequestHead::decode(data) else {
        tracing::warn!(peer, "gproc: malformed request header");
        return Intercepted::Done;
    };
    match service {
        Some(service) => match lock(registry()).get(service).cloned() {
            Some(served) => {
                return Intercepted::Request(Request {
                    served,
                    peer,
                    head,
                    data: data.clone(),
                })
            }
            None if head.kind == Kind::Cancel => {}
            None => {
                tracing::debug!(peer, service, "gproc: request for a service not served");
                spawn_reply(peer, head.id, Status::NotServed);
            }
        },
        None if head.kind == Kind::Cancel => {}
        None => {
            let services: Vec<ServiceDescription> = lock(registry())
                .values()
                .map(|served| ServiceDescription::from(served.dispatcher.info()))
                .collect();
            crate::rt::handle().spawn(reply(
                peer,
                encode_reply(head.id, Status::Ok, &services),
                false,
            ));
        }
    }
    Intercepted::Done
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Call = 0,
    Cancel = 1,
    Probe = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok = 0,
    NotServed = 1,
    SchemaMismatch = 2,
    Decode = 3,
    Panicked = 4,
    Deadline = 5,
    /// The reply was over the caller's size limit; the body holds size and limit (u64 each).
    TooLarge = 6,
}

struct RequestHead {
    kind: Kind,
    id: u64,
    fingerprint: u64,
    timeout: Duration,
}

impl RequestHead {
    /// The request message: this head, then `body` encoded right after it, in one buffer.
    fn encode(&self, body: &impl Serialize) -> Result<Bytes, RpcError> {
        let mut out = Vec::with_capacity(REQUEST_HEAD + 64);
        out.put_u8(self.kind as u8);
        out.put_u64_le(self.id);
        out.put_u64_le(self.fingerprint);
        out.put_u64_le(u64::try_from(self.timeout.as_micros()).unwrap_or(u64::MAX));
        let out = postcard::to_extend(body, out).map_err(|e| {
            tracing::warn!("gproc: cannot encode a request: {e}");
            RpcError::Decode
        })?;
        Ok(Bytes::from(out))
    }

    fn decode(data: &[u8]) -> Option<RequestHead> {
        let head = data.get(..REQUEST_HEAD)?;
        let kind = match head[0] {
            0 => Kind::Call,
            1 => Kind::Cancel,
            2 => Kind::Probe,
            _ => return None,
        };
        let u64_at =
            |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().unwrap_or_default());
        Some(RequestHead {
            kind,
            id: u64_at(1),
            fingerprint: u64_at(9),
            timeout: Duration::from_micros(u64_at(17)),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A served service: its dispatcher, and room for the requests it runs at once.
#[derive(Clone)]
struct Served {
    dispatcher: Arc<dyn Dispatch>,
    slots: Arc<Semaphore>,
}

fn registry() -> &'static Mutex<HashMap<&'static str, Served>> {
    static REGISTRY: OnceLock<Mutex<HashMap<&'static str, Served>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// A service's entry in the registry, removed when its `serve()` ends.
struct Registration(&'static ServiceInfo);

impl Registration {
    fn new(info: &'static ServiceInfo, dispatcher: Arc<dyn Dispatch>) -> Result<Self, RpcError> {
        let mut map = lock(registry());
        if map.contains_key(info.name) {
            return Err(RpcError::AlreadyServed {
                service: info.name.to_owned(),
            });
        }
        // As many requests run at once as a queue holds messages: past that, the readers
        // stop reading, and callers wait (backpressure, as for raw messages).
        let slots = Arc::new(Semaphore::new(crate::config::settings().queue_capacity));
        map.insert(info.name, Served { dispatcher, slots });
        Ok(Registration(info))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(registry()).remove(self.0.name);
    }
}

/// Sends a reply with no body, from gproc's own runtime.
fn spawn_reply(to: u32, id: u64, status: Status) {
    crate::rt::handle().spawn(reply(to, encode_reply(id, status, &()), false));
}

/// The reply message: status and id, then `body` encoded right after them, in one buffer.
fn encode_reply(id: u64, status: Status, body: &impl Serialize) -> Bytes {
    let mut out = Vec::with_capacity(REPLY_HEAD + 64);
    out.put_u8(status as u8);
    out.put_u64_le(id);
    match postcard::to_extend(body, out) {
        Ok(out) => Bytes::from(out),
        Err(e) => {
            tracing::warn!("gproc: cannot encode a reply: {e}");
            let mut out = Vec::with_capacity(REPLY_HEAD);
            out.put_u8(Status::Decode as u8);
            out.put_u64_le(id);
            Bytes::from(out)
        }
    }
}

/// Sends a reply; with `batch`, other replies follow and it joins their batch.
async fn reply(to: u32, data: Bytes, batch: bool) {
    let id = u64::from_le_bytes(data[1..REPLY_HEAD].try_into().unwrap_or_default());
    let sent = match post_to(to, REPLY_GROUP, data, batch).await {
        // The caller must not wait out its deadline for a reply it cannot take: say why.
        Err(Error::MessageTooLarge { size, limit }) => {
            let sizes = (size as u64, limit as u64);
            post_to(
                to,
                REPLY_GROUP,
                encode_reply(id, Status::TooLarge, &sizes),
                batch,
            )
            .await
        }
        other => other,
    };
    if let Err(e) = sent {
        tracing::debug!(to, "gproc: could not deliver a reply: {e}");
    }
}

type Waiting = Mutex<HashMap<u64, oneshot::Sender<(Status, Bytes)>>>;

fn waiting() -> &'static Waiting {
    static WAITING: OnceLock<Waiting> = OnceLock::new();
    WAITING.get_or_init(Default::default)
}

/// Hands a reply to the call waiting for it; a reply nobody waits for (the call was
/// dropped, or timed out) is dropped.
fn route_reply(data: &Bytes) {
    let (Some(&status), Some(id)) = (data.first(), data.get(1..REPLY_HEAD)) else {
        return;
    };
    let id = u64::from_le_bytes(id.try_into().unwrap_or_default());
    let status = match status {
        0 => Status::Ok,
        1 => Status::NotServed,
        2 => Status::SchemaMismatch,
        3 => Status::Decode,
        4 => Status::Panicked,
        5 => Status::Deadline,
        6 => Status::TooLarge,
        _ => Status::Decode,
    };
    if let Some(tx) = lock(waiting()).remove(&id) {
        let _ = tx.send((status, data.slice(REPLY_HEAD..)));
    }
}

/// A call waiting for its reply. Dropped before the reply came, it tells the server to
/// stop the handler.
struct Pending {
    id: u64,
    pid: u32,
    group: String,
    answered: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        lock(waiting()).remove(&self.id);
        if !self.answered {
            let head = RequestHead {
                kind: Kind::Cancel,
                id: self.id,
                fingerprint: 0,
                timeout: Duration::ZERO,
            };
            let (pid, group) = (self.pid, std::mem::take(&mut self.group));
            if let Ok(data) = head.encode(&()) {
                crate::rt::handle().spawn(async move {
                    let _ = send_to(pid, None, &group, data).await;
                });
            }
        }
    }
}

async fn raw_call(
    pid: u32,
    group: String,
    kind: Kind,
    info: &'static ServiceInfo,
    body: &impl Serialize,
    timeout: Duration,
) -> Result<Bytes, RpcError> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    ensure_listening()?;
    let deadline = deadline_after(timeout);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    // Other calls in flight: this request can join their batch.
    let batch = {
        let mut waiting = lock(waiting());
        waiting.insert(id, tx);
        waiting.len() > 1
    };
    let mut pending = Pending {
        id,
        pid,
        group,
        answered: false,
    };
    let head = RequestHead {
        kind,
        id,
        fingerprint: info.fingerprint,
        timeout,
    };
    let data = head.encode(body)?;
    // One timer for the whole call, registered before the request goes out, so that no
    // bookkeeping stands between the write and the wait for the reply.
    let expired = timer(deadline);
    tokio::pin!(expired);
    // The reply tells of delivery, and a closed connection of failure: no need to wait
    // for the acknowledgement.
    let sent = post_to(pid, &pending.group, data, batch);
    let conn = tokio::select! {
        sent = sent => match sent {
            Ok(conn) => conn,
            Err(e) => {
                pending.answered = true;
                return Err(RpcError::Transport(e));
            }
        },
        () = &mut expired => return Err(RpcError::DeadlineExceeded),
    };
    let (status, body) = tokio::select! {
        reply = rx => reply.map_err(|_| RpcError::Transport(Error::ConnectionLost))?,
        () = conn.closed() => {
            pending.answered = true;
            return Err(RpcError::Transport(Error::ConnectionLost));
        }
        () = &mut expired => return Err(RpcError::DeadlineExceeded),
    };
    pending.answered = true;
    let service = || info.name.to_owned();
    match status {
        Status::Ok => Ok(body),
        Status::NotServed => Err(RpcError::ServiceNotServed { service: service() }),
        Status::SchemaMismatch => Err(RpcError::SchemaMismatch { service: service() }),
        Status::Decode => Err(RpcError::Decode),
        Status::Panicked => Err(RpcError::HandlerPanicked),
        Status::Deadline => Err(RpcError::DeadlineExceeded),
        Status::TooLarge => {
            let (size, limit) = postcard::from_bytes::<(u64, u64)>(&body).unwrap_or_default();
            Err(RpcError::Transport(Error::MessageTooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            }))
        }
    }
}

/// The instant `timeout` from now; a timeout too long to represent (`Duration::MAX`,
/// the usual "no deadline") is thirty years.
fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
}

/// A timer on gproc's background runtime, so that calls work from any executor (and any
/// tokio runtime, with or without its time driver) without a hop to another thread.
fn timer(deadline: tokio::time::Instant) -> tokio::time::Sleep {
    let _context = crate::rt::handle().enter();
    tokio::time::sleep_until(deadline)
}
