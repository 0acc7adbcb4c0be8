//! The served services, and the dispatcher that runs their handlers.
//!
//! A request arrives on a connection's reader (through the inbox's route) and is
//! started at once as a task of its own on the runtime that called `serve()`. Each
//! client gets its own room for running handlers: a client that sends thousands of calls
//! and then stops reading holds up no other client. A handler that finishes leaves its
//! reply in that client's connection and gives its room back at once, whether the client
//! reads or not; only when a client leaves a megabyte of replies unread does its
//! connection stop taking requests, until it reads.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use super::caller::{serving, Caller};
use super::codec::{encode_reply, Kind, RequestHead, Status, REQUEST_HEAD};
use super::contract::{
    MethodInfo, RpcError, Serve, ServiceDescription, ServiceInfo, ServiceRequest,
};
use super::outflow::Outflows;
use super::trace::Traced;
use super::{fd, json, stream};
use crate::config::settings;
use crate::groups::{INTROSPECT_GROUP, REPLY_GROUP, REQUEST_PREFIX};
use crate::inbox::Route;
use crate::transport::writer::OUT_LIMIT;
use crate::transport::{lock, wire, Delivery, Hold, Peer};

/// Registers `service`; it is withdrawn when the registration is dropped.
pub(super) fn register<S>(service: S) -> Result<Registration, RpcError>
where
    S: Serve,
    S::Req: ServiceRequest + DeserializeOwned,
    S::Resp: Serialize,
{
    let info = service.info();
    let dispatcher = Arc::new(Dispatcher {
        service,
        runtime: tokio::runtime::Handle::current(),
        running: Mutex::new(HashMap::new()),
        clients: Mutex::new(HashMap::new()),
        outflows: Arc::default(),
    });
    Registration::new(info, dispatcher)
}

/// What the inbox's route hands a request of a served service to.
trait Dispatch: Send + Sync {
    fn info(&self) -> &'static ServiceInfo;
    /// Starts handling a request from `peer`, or gives it back when that client's room
    /// is full.
    fn dispatch(
        self: Arc<Self>,
        peer: &Arc<Peer>,
        head: RequestHead,
        message: wire::Message,
    ) -> Delivery;
}

/// One client's handlers, running or held back.
#[derive(Default)]
struct Client {
    running: AtomicUsize,
    /// A request waits for room: resume the client's connection when a handler ends.
    blocked: AtomicBool,
}

/// A client, by its connection.
type ClientKey = usize;

fn client_key(peer: &Arc<Peer>) -> ClientKey {
    Arc::as_ptr(peer) as usize
}

struct Dispatcher<S> {
    service: S,
    /// Where handlers run: the runtime that called `serve()`.
    runtime: tokio::runtime::Handle,
    /// Running handlers, by client and call id, for cancellation.
    running: Mutex<HashMap<(ClientKey, u64), tokio::task::AbortHandle>>,
    clients: Mutex<HashMap<ClientKey, Arc<Client>>>,
    /// The streams its replies opened.
    outflows: Arc<Outflows>,
}

impl<S> Dispatch for Dispatcher<S>
where
    S: Serve,
    S::Req: ServiceRequest + DeserializeOwned,
    S::Resp: Serialize,
{
    fn info(&self) -> &'static ServiceInfo {
        self.service.info()
    }

    fn dispatch(
        self: Arc<Self>,
        peer: &Arc<Peer>,
        head: RequestHead,
        message: wire::Message,
    ) -> Delivery {
        let key = (client_key(peer), head.id);
        match head.kind {
            Kind::Cancel => {
                if let Some(task) = lock(&self.running).remove(&key) {
                    task.abort();
                }
            }
            Kind::Credit => {
                let count = message
                    .data
                    .get(REQUEST_HEAD..)
                    .and_then(|body| postcard::from_bytes::<u32>(body).ok());
                match count {
                    Some(count) => self.outflows.credit(peer, head.id, count),
                    None => return Delivery::Refused("a stream's credit without its count".into()),
                }
            }
            Kind::Stop => self.outflows.stop(peer, head.id),
            Kind::Probe | Kind::Call | Kind::Oneway | Kind::Json
                if head.fingerprint != self.info().fingerprint =>
            {
                reply(peer, head.id, Status::SchemaMismatch, &());
            }
            Kind::Probe => reply(peer, head.id, Status::Ok, &()),
            Kind::Call | Kind::Oneway | Kind::Json => return self.start(peer, head, message),
        }
        Delivery::Taken
    }
}

impl<S> Dispatcher<S>
where
    S: Serve,
    S::Req: ServiceRequest + DeserializeOwned,
    S::Resp: Serialize,
{
    fn start(
        self: Arc<Self>,
        peer: &Arc<Peer>,
        head: RequestHead,
        mut message: wire::Message,
    ) -> Delivery {
        let client = lock(&self.clients)
            .entry(client_key(peer))
            .or_default()
            .clone();
        // `running` and `blocked` are two flags that two threads each write one of and
        // then read the other: only sequentially consistent operations make sure that at
        // least one of them sees the other's write (a handler ending as a request is held
        // back either lets the request in or resumes the connection).
        if client.running.load(Ordering::SeqCst) >= settings().queue_capacity {
            client.blocked.store(true, Ordering::SeqCst);
            // A handler may have ended meanwhile, before it could see the flag.
            if client.running.load(Ordering::SeqCst) >= settings().queue_capacity {
                return Delivery::Full(message);
            }
        }
        if peer.backlog() > OUT_LIMIT {
            peer.resume_when_drained();
            if peer.backlog() > OUT_LIMIT {
                return Delivery::Full(message);
            }
        }
        let body = &message.data[REQUEST_HEAD..];
        // A JSON call names its method; its reply is JSON too.
        let mut json_method: Option<&'static MethodInfo> = None;
        let req = if head.kind == Kind::Json {
            match json::decode_request::<S::Req>(self.info(), body) {
                Ok((req, method)) => {
                    json_method = Some(method);
                    req
                }
                Err(refused) => {
                    send_reply(peer, head.id, refused.reply(head.id));
                    return Delivery::Taken;
                }
            }
        } else {
            // The request's descriptors go to the values that name them; the rest close.
            let fds = std::mem::take(&mut message.fds);
            match fd::decoding(fds, || postcard::from_bytes::<S::Req>(body)) {
                Ok(req) => req,
                Err(_) => {
                    reply(peer, head.id, Status::Decode, &());
                    return Delivery::Taken;
                }
            }
        };
        client.running.fetch_add(1, Ordering::SeqCst);
        let oneway = head.kind == Kind::Oneway;
        // A one-way call is answered now, that it is queued, and its handler has no
        // deadline: its caller has gone on.
        let timeout = if oneway { None } else { Some(head.timeout) };
        let caller = Caller {
            pid: peer.pid,
            uid: peer.uid(),
            deadline: timeout
                .and_then(|t| Instant::now().checked_add(t))
                .unwrap_or_else(far_future),
        };
        if oneway {
            reply(peer, head.id, Status::Ok, &());
        }
        let key = (client_key(peer), head.id);
        let this = self.clone();
        let peer = peer.clone();
        // Held while spawning, so that a handler finishing at once removes an entry
        // that is already there.
        let mut running = lock(&self.running);
        let info = self.info();
        let mut traced = Traced::serve(info.name, req.method(), peer.pid);
        let span = traced.span().clone();
        let task = self.runtime.spawn(
            async move {
                let handler = serving(
                    caller,
                    AssertUnwindSafe(this.service.serve(req)).catch_unwind(),
                );
                let outcome = match timeout {
                    Some(t) => crate::rt::timeout_at(crate::rt::deadline_after(t), handler).await,
                    None => Ok(handler.await),
                };
                match &outcome {
                    Ok(Ok(_)) => traced.end("ok", None),
                    Ok(Err(_)) => traced.end("panicked", None),
                    Err(()) => traced.end("deadline", None),
                }
                let data = match (outcome, json_method) {
                    (Ok(Ok(resp)), Some(method)) => {
                        (json::encode_response(head.id, method, &resp), Vec::new())
                    }
                    (Ok(Ok(resp)), None) => {
                        let ((data, streams), fds) = fd::encoding(|| {
                            stream::encoding(|| encode_reply(head.id, Status::Ok, &resp))
                        });
                        // A reply too large to send opens nothing.
                        let sent = !oneway
                            && data.len() <= reply_limit(&peer)
                            && fds.len() <= wire::MAX_FDS;
                        if sent {
                            for stream in streams {
                                this.outflows.start(&this.runtime, &peer, stream);
                            }
                        }
                        (data, fds)
                    }
                    (Ok(Err(panic)), _) => {
                        let told = if oneway {
                            "the call was one-way: its caller is not told"
                        } else {
                            "the caller gets HandlerPanicked"
                        };
                        tracing::error!(
                            service = this.service.info().name,
                            peer = peer.pid,
                            "gproc: a handler panicked: {}; {told}",
                            panic_message(&*panic)
                        );
                        (encode_reply(head.id, Status::Panicked, &()), Vec::new())
                    }
                    (Err(()), _) => (encode_reply(head.id, Status::Deadline, &()), Vec::new()),
                };
                lock(&this.running).remove(&key);
                this.finished(&peer, &client);
                if !oneway {
                    send_reply_fds(&peer, head.id, data.0, data.1);
                }
            }
            .instrument(span),
        );
        // A one-way call's caller cannot cancel it: it was answered already.
        if !oneway {
            running.insert(key, task.abort_handle());
        }
        Delivery::Taken
    }

    /// A handler of `client` ended: its room is free.
    fn finished(&self, peer: &Arc<Peer>, client: &Arc<Client>) {
        if client.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            let mut clients = lock(&self.clients);
            if client.running.load(Ordering::SeqCst) == 0 {
                clients.remove(&client_key(peer));
            }
        }
        if client.blocked.swap(false, Ordering::SeqCst) {
            peer.resume();
        }
    }
}

/// A deadline past any call's: a year from now (a caller's `Duration::MAX` timeout, or
/// a one-way call, which has none).
fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(365 * 86_400)
}

/// What a panic said, when it said it with a string (as `panic!` and `expect` do).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

/// Answers a request with no body.
fn reply(peer: &Arc<Peer>, id: u64, status: Status, body: &impl Serialize) {
    send_reply(peer, id, encode_reply(id, status, body));
}

/// The largest reply `peer` takes.
fn reply_limit(peer: &Peer) -> usize {
    peer.max_message.min(settings().max_message_size)
}

/// Sends a reply on the connection the request came on. One too large for the caller
/// is answered with its size, so that the caller does not wait out its deadline.
fn send_reply(peer: &Arc<Peer>, id: u64, data: Bytes) {
    send_reply_fds(peer, id, data, Vec::new());
}

/// Sends a reply and the descriptors in it. One the caller cannot take (too large, or
/// with more descriptors than a message carries) is answered with what was wrong, and
/// its descriptors are closed.
fn send_reply_fds(peer: &Arc<Peer>, id: u64, data: Bytes, fds: Vec<OwnedFd>) {
    let limit = reply_limit(peer);
    let (data, fds) = if data.len() > limit {
        let size = (data.len() as u64, limit as u64);
        (encode_reply(id, Status::TooLarge, &size), Vec::new())
    } else if fds.len() > wire::MAX_FDS {
        let count = fds.len() as u64;
        (encode_reply(id, Status::TooManyFds, &count), Vec::new())
    } else {
        (data, fds)
    };
    // Replies finishing close together share a write (see `Hold`).
    let hold = Hold::Batch;
    if let Err(e) = peer.send_message_fds(REPLY_GROUP, &data, fds, false, hold) {
        tracing::debug!(peer = peer.pid, "gproc: could not deliver a reply: {e}");
    }
}

/// The route of requests and introspection in the inbox.
pub(super) struct Requests;

impl Route for Requests {
    fn deliver(&self, peer: &Arc<Peer>, message: wire::Message) -> Delivery {
        let Some(head) = RequestHead::decode(&message.data) else {
            return Delivery::Refused("an RPC request without its header".into());
        };
        if message.group == INTROSPECT_GROUP {
            // A probe is a ping: answered at once, with nothing.
            if head.kind == Kind::Probe {
                reply(peer, head.id, Status::Ok, &());
            } else if head.kind != Kind::Cancel {
                let services: Vec<ServiceDescription> = lock(registry())
                    .values()
                    .map(|served| ServiceDescription::from(served.info()))
                    .collect();
                reply(peer, head.id, Status::Ok, &services);
            }
            return Delivery::Taken;
        }
        let service = message
            .group
            .strip_prefix(REQUEST_PREFIX)
            .unwrap_or_default();
        let served = lock(registry()).get(service).cloned();
        match served {
            Some(served) => served.dispatch(peer, head, message),
            None => {
                if head.kind != Kind::Cancel {
                    tracing::debug!(
                        peer = peer.pid,
                        service,
                        "gproc: request for a service not served"
                    );
                    reply(peer, head.id, Status::NotServed, &());
                }
                Delivery::Taken
            }
        }
    }
}

type Registry = Mutex<HashMap<&'static str, Arc<dyn Dispatch>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// A service's entry in the registry, removed when its `serve()` ends.
pub(super) struct Registration(&'static ServiceInfo);

impl Registration {
    fn new(info: &'static ServiceInfo, dispatcher: Arc<dyn Dispatch>) -> Result<Self, RpcError> {
        let mut map = lock(registry());
        if map.contains_key(info.name) {
            return Err(RpcError::AlreadyServed {
                service: info.name.to_owned(),
            });
        }
        map.insert(info.name, dispatcher);
        Ok(Registration(info))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(registry()).remove(self.0.name);
    }
}
