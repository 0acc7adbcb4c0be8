//! The client's side of a stream: the items received and not yet taken, and the credit
//! that lets the server send more.
//!
//! The server sends only what it has credit for. The client grants [`WINDOW`] items when
//! it opens the stream, and then, each time the consumer has taken half of that, as many
//! again: at most a window of items waits here, however slow the consumer. A server that
//! sends more than its credit breaks the protocol, and the stream fails.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::codec::{encode_stream_request, Kind, Status};
use super::contract::RpcError;
use crate::error::Error;
use crate::transport::{driver, lock, Hold, Peer};

/// How many items a server may run ahead of its consumer.
pub(super) const WINDOW: u32 = 64;

/// Where a reply's streams are opened on the client: the connection the reply came on,
/// and the service's request group, which carries credit and stops.
#[derive(Clone)]
pub(super) struct Opening {
    pub peer: Arc<Peer>,
    pub group: Arc<str>,
}

/// How a stream ended, as the server said.
enum End {
    Done,
    Failed(RpcError),
}

#[derive(Default)]
struct State {
    items: VecDeque<Bytes>,
    end: Option<End>,
    waker: Option<Waker>,
}

/// The items of one stream, between the connection's reader and the consumer.
#[derive(Default)]
struct Entry {
    state: Mutex<State>,
}

/// Open streams, by connection and the server's stream id.
type Key = (usize, u64);

fn streams() -> &'static Mutex<HashMap<Key, Arc<Entry>>> {
    static STREAMS: OnceLock<Mutex<HashMap<Key, Arc<Entry>>>> = OnceLock::new();
    STREAMS.get_or_init(Default::default)
}

fn key(peer: &Arc<Peer>, id: u64) -> Key {
    (Arc::as_ptr(peer) as usize, id)
}

/// Opens stream `id` of a reply that came from `opening`'s connection, granting the
/// first window of credit.
pub(super) fn open<T: DeserializeOwned + Send + 'static>(
    opening: Opening,
    id: u64,
) -> Receiving<T> {
    let entry = Arc::new(Entry::default());
    lock(streams()).insert(key(&opening.peer, id), entry.clone());
    let receiving = Receiving {
        id,
        entry,
        closed: Box::pin({
            let peer = opening.peer.clone();
            async move { peer.closed().await }
        }),
        opening,
        taken: 0,
        done: false,
        _item: PhantomData,
    };
    receiving.send(Kind::Credit, WINDOW);
    receiving
}

/// Takes what the server sent about a stream (an item, its end, its failure); `false`
/// when the server broke the protocol (more items than its credit).
pub(super) fn deliver(peer: &Arc<Peer>, status: Status, id: u64, body: Bytes) -> bool {
    let k = key(peer, id);
    let entry = {
        let mut streams = lock(streams());
        if status == Status::Item {
            streams.get(&k).cloned()
        } else {
            streams.remove(&k)
        }
    };
    // A stream its consumer dropped: what was on its way is dropped too.
    let Some(entry) = entry else { return true };
    let mut state = lock(&entry.state);
    match status {
        Status::Item if state.items.len() >= WINDOW as usize => {
            state.end = Some(End::Failed(RpcError::Decode));
            tracing::warn!(
                peer = peer.pid,
                "gproc: protocol error: a stream's server sent more items than its credit"
            );
            lock(streams()).remove(&k);
        }
        Status::Item => state.items.push_back(body),
        Status::End => state.end = Some(End::Done),
        _ => state.end = Some(End::Failed(failure(body.first().copied()))),
    }
    if let Some(waker) = state.waker.take() {
        drop(state);
        waker.wake();
    }
    true
}

/// The error a failed stream ends with.
fn failure(status: Option<u8>) -> RpcError {
    match status.map(Status::from_u8) {
        Some(Status::Panicked) => RpcError::HandlerPanicked,
        Some(Status::TooLarge) => RpcError::Transport(Error::MessageTooLarge {
            size: 0,
            limit: crate::config::settings().max_message_size,
        }),
        _ => RpcError::Decode,
    }
}

/// A stream received from a server: what [`Stream`](super::Stream) wraps on the client.
pub(super) struct Receiving<T> {
    id: u64,
    entry: Arc<Entry>,
    opening: Opening,
    /// Resolves when the connection closes.
    closed: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Items taken since credit was last granted.
    taken: u32,
    /// The end was seen and reported.
    done: bool,
    _item: PhantomData<fn() -> T>,
}

impl<T> Receiving<T> {
    fn send(&self, kind: Kind, count: u32) {
        let data = encode_stream_request(kind, self.id, count);
        let peer = &self.opening.peer;
        if let Err(e) = peer.send_message(&self.opening.group, &data, false, Hold::Batch) {
            tracing::debug!(
                peer = peer.pid,
                "gproc: cannot reach a stream's server: {e}"
            );
        }
    }
}

impl<T: DeserializeOwned> futures_util::Stream for Receiving<T> {
    type Item = Result<T, RpcError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut state = lock(&this.entry.state);
        if let Some(item) = state.items.pop_front() {
            drop(state);
            this.taken += 1;
            if this.taken >= WINDOW / 2 {
                this.send(Kind::Credit, this.taken);
                this.taken = 0;
            }
            return Poll::Ready(Some(postcard::from_bytes(&item).map_err(|e| {
                tracing::warn!("gproc: an undecodable item of a stream: {e}");
                RpcError::Decode
            })));
        }
        match state.end.take() {
            Some(End::Done) => {
                this.done = true;
                return Poll::Ready(None);
            }
            Some(End::Failed(e)) => {
                this.done = true;
                return Poll::Ready(Some(Err(e)));
            }
            None => {}
        }
        state.waker = Some(cx.waker().clone());
        drop(state);
        // What was read before the connection closed is here already: the reader
        // delivers in order, before it sees the end.
        if this.closed.as_mut().poll(cx).is_ready() && {
            let state = lock(&this.entry.state);
            state.items.is_empty() && state.end.is_none()
        } {
            this.done = true;
            lock(streams()).remove(&key(&this.opening.peer, this.id));
            return Poll::Ready(Some(Err(RpcError::Transport(Error::ConnectionLost))));
        }
        driver::attend();
        Poll::Pending
    }
}

impl<T> Drop for Receiving<T> {
    fn drop(&mut self) {
        let open = lock(streams())
            .remove(&key(&self.opening.peer, self.id))
            .is_some();
        if open && !self.done {
            self.send(Kind::Stop, 0);
        }
    }
}
