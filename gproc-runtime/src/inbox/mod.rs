//! The inbox: what the transport delivers goes to a group's queue, or to the handler
//! that a layer above registered for a reserved group (the RPC layer's requests and
//! replies), so that the transport and the inbox never call up into those layers.

mod msg;
mod queue;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::config::settings;
use crate::groups::RESERVED_PREFIX;
use crate::identity::pid;
use crate::transport::{self, lock, wire, Delivery, Peer};
pub use msg::Msg;
pub(crate) use queue::Queue;

/// The most distinct groups one process keeps queues for. A peer that names more is
/// disconnected, so that it cannot make this process allocate without bound.
pub(crate) const MAX_GROUPS: usize = 4096;

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

fn queues() -> &'static Mutex<HashMap<String, Arc<Queue>>> {
    static QUEUES: OnceLock<Mutex<HashMap<String, Arc<Queue>>>> = OnceLock::new();
    QUEUES.get_or_init(Default::default)
}

/// The queue of `group`, made on first use; `None` when [`MAX_GROUPS`] are already in use.
pub(crate) fn queue(group: &str) -> Option<Arc<Queue>> {
    let mut map = lock(queues());
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
        let Some(q) = queue(&message.group) else {
            return Delivery::Refused(format!("more than {MAX_GROUPS} groups in use"));
        };
        let ack_wanted = message.ack_wanted;
        let msg = Msg {
            sender_pid: peer.pid,
            receiver_pid: pid(),
            group: message.group,
            data: message.data,
        };
        match q.offer(peer, msg) {
            Ok(()) => Delivery::Taken,
            Err(msg) => Delivery::Full(wire::Message {
                group: msg.group,
                data: msg.data,
                ack_wanted,
            }),
        }
    }
}

/// Makes the inbox the transport's sink. Called once, at bring-up.
pub(crate) fn install() {
    transport::install_sink(Box::new(Inbox));
}
