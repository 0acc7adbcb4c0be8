//! Replies to the calls that wait for them, and the routes the RPC layer installs in the
//! inbox.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, Once, OnceLock};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::codec::{decode_reply, Status};
use crate::groups::{INTROSPECT_GROUP, REPLY_GROUP, REQUEST_PREFIX};
use crate::inbox::{self, Route};
use crate::transport::{lock, wire, Delivery, Peer};

/// A reply: its status, its body, and the descriptors its message brought.
pub(super) type Reply = (Status, Bytes, Vec<OwnedFd>);

/// A call waiting for its reply: where to hand it, and the connection it must come on.
struct Waiting {
    reply: oneshot::Sender<Reply>,
    peer: Arc<Peer>,
}

fn waiting() -> &'static Mutex<HashMap<u64, Waiting>> {
    static WAITING: OnceLock<Mutex<HashMap<u64, Waiting>>> = OnceLock::new();
    WAITING.get_or_init(Default::default)
}

/// Notes that call `id` on `peer` waits for its reply.
pub(super) fn expect(id: u64, peer: &Arc<Peer>, reply: oneshot::Sender<Reply>) {
    let peer = peer.clone();
    lock(waiting()).insert(id, Waiting { reply, peer });
}

/// Forgets call `id` (it was answered, dropped or timed out).
pub(super) fn forget(id: u64) {
    lock(waiting()).remove(&id);
}

/// Hands replies to the calls waiting for them; a reply nobody waits for (the call was
/// dropped, or timed out) is dropped.
struct Replies;

impl Route for Replies {
    fn deliver(&self, peer: &Arc<Peer>, mut message: wire::Message) -> Delivery {
        let Some((status, id, body)) = decode_reply(&message.data) else {
            return Delivery::Refused("an RPC reply without its header".into());
        };
        if matches!(status, Status::Item | Status::End | Status::Failed) {
            super::inflow::deliver(peer, status, id, body);
            return Delivery::Taken;
        }
        let mut waiting = lock(waiting());
        // Only the connection the call went on may answer it.
        if waiting.get(&id).is_some_and(|w| Arc::ptr_eq(&w.peer, peer)) {
            if let Some(w) = waiting.remove(&id) {
                drop(waiting);
                let _ = w
                    .reply
                    .send((status, body, std::mem::take(&mut message.fds)));
            }
        }
        Delivery::Taken
    }
}

/// Brings this process's endpoint up, with the RPC layer's routes installed: what every
/// entry point of the public API calls, so that every endpoint answers RPC requests
/// (`ServiceNotServed`, introspection), whether it serves anything or not.
///
/// # Errors
///
/// As `endpoint::up`.
pub(crate) fn up() -> crate::error::Result<()> {
    install_routes();
    crate::endpoint::up()
}

/// Installs, once, the inbox and the routes of RPC traffic: requests to the dispatcher
/// (every endpoint answers them, served or not), introspection, replies.
fn install_routes() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        inbox::install();
        inbox::add_route(REPLY_GROUP, false, Box::new(Replies));
        inbox::add_route(REQUEST_PREFIX, true, Box::new(super::server::Requests));
        inbox::add_route(INTROSPECT_GROUP, false, Box::new(super::server::Requests));
    });
}
