//! The inbox: what the transport delivers goes to a group's queue, or to the handler
//! that a layer above registered for a reserved group (the RPC layer's requests and
//! replies), so that the transport and the inbox never call up into those layers.

mod msg;
mod queue;

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::config::{settings, MAX_GROUPS};
use crate::error::{Error, Result};
use crate::groups::RESERVED_PREFIX;
use crate::identity::pid;
use crate::transport::{self, lock, wire, Delivery, Peer};
pub use msg::Msg;
use queue::{Queue, Refusal};

/// A handler for the messages of a reserved group, registered by a layer above.
pub(crate) trait Route: Send + Sync {
    /// Takes a message from `peer`; see [`Delivery`].
    fn deliver(&self, peer: &Arc<Peer>, message: wire::Message) -> Delivery;
}

struct Registered {
    group: &'static str,
    /// Whether `group` is a prefix (`gproc/rpc/` names a service after it).
    prefix: bool,
    route: Box<dyn Route>,
}

fn routes() -> &'static RwLock<Vec<Registered>> {
    static ROUTES: OnceLock<RwLock<Vec<Registered>>> = OnceLock::new();
    ROUTES.get_or_init(Default::default)
}

/// Sends the messages of `group` (with `prefix`, of every group it starts) to `route`
/// instead of a queue.
pub(crate) fn add_route(group: &'static str, prefix: bool, route: Box<dyn Route>) {
    let mut routes = routes().write().unwrap_or_else(|e| e.into_inner());
    routes.push(Registered {
        group,
        prefix,
        route,
    });
}

type Queues = Mutex<HashMap<String, Arc<Queue>>>;

/// The groups alive: each holds messages, has peers waiting for room, or has receivers.
fn queues() -> &'static Queues {
    static QUEUES: OnceLock<Queues> = OnceLock::new();
    QUEUES.get_or_init(Default::default)
}

/// The queue of `group`, made if it is not alive; `None` when [`MAX_GROUPS`] are.
fn alive(map: &mut HashMap<String, Arc<Queue>>, group: &str) -> Option<Arc<Queue>> {
    if let Some(q) = map.get(group) {
        return Some(q.clone());
    }
    if map.len() >= MAX_GROUPS {
        return None;
    }
    let q = Arc::new(Queue::new(settings().queue_capacity));
    map.insert(group.to_owned(), q.clone());
    Some(q)
}

/// A receiver of one group: it keeps the group alive until dropped.
pub(crate) struct Receiver {
    group: String,
    queue: Arc<Queue>,
}

impl Receiver {
    /// Registers a receiver of `group`.
    ///
    /// # Errors
    ///
    /// [`Error::GroupLimit`] when [`MAX_GROUPS`] other groups are alive.
    pub(crate) fn new(group: &str) -> Result<Self> {
        let mut map = lock(queues());
        let queue = alive(&mut map, group).ok_or(Error::GroupLimit {
            pid: pid(),
            limit: MAX_GROUPS,
        })?;
        queue.join();
        Ok(Receiver {
            group: group.to_owned(),
            queue,
        })
    }

    /// Takes the group's next message and its descriptors, waiting for one.
    pub(crate) async fn next(&self) -> (Msg, Vec<OwnedFd>) {
        self.queue.pop().await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut map = lock(queues());
        if self.queue.leave()
            && map
                .get(&self.group)
                .is_some_and(|q| Arc::ptr_eq(q, &self.queue))
        {
            map.remove(&self.group);
        }
    }
}

/// What the transport delivers to.
struct Inbox;

impl transport::Sink for Inbox {
    fn deliver(&self, peer: &Arc<Peer>, message: wire::Message) -> Delivery {
        if message.group.starts_with(RESERVED_PREFIX) {
            let routes = routes().read().unwrap_or_else(|e| e.into_inner());
            let route = routes.iter().find(|r| {
                if r.prefix {
                    message.group.starts_with(r.group)
                } else {
                    message.group == r.group
                }
            });
            if let Some(r) = route {
                return r.route.deliver(peer, message);
            }
        }
        let ack_wanted = message.ack_wanted;
        let msg = Msg {
            sender_pid: peer.pid,
            receiver_pid: pid(),
            group: message.group,
            data: message.data,
        };
        let mut item = (msg, message.fds);
        loop {
            let Some(q) = alive(&mut lock(queues()), &item.0.group) else {
                tracing::warn!(
                    peer = peer.pid,
                    group = item.0.group,
                    "gproc: refused a message: {MAX_GROUPS} groups are alive, the limit"
                );
                // Its descriptors close here, with it.
                return Delivery::Declined(wire::Refused::GroupLimit);
            };
            match q.offer(peer, item) {
                Ok(()) => return Delivery::Taken,
                Err(Refusal::Retired(back)) => item = back,
                Err(Refusal::Full((back, fds))) => {
                    return Delivery::Full(wire::Message {
                        group: back.group,
                        data: back.data,
                        ack_wanted,
                        fds,
                    })
                }
            }
        }
    }
}

/// Makes the inbox the transport's sink. Called once, at bring-up.
pub(crate) fn install() {
    transport::install_sink(Box::new(Inbox));
}
