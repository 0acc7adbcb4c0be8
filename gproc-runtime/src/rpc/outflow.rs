//! The server's side of a stream: a task per stream that sends its items as the client
//! grants credit for them.
//!
//! The task waits for credit before it asks the user's stream for an item, so the user's
//! stream runs at most the client's window ahead of the consumer (see `inflow`). It ends
//! when the user's stream ends, when the client stops the stream (the user's stream is
//! then dropped), and when the connection closes.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::Semaphore;

use super::codec::{encode_reply, Status};
use super::stream::Outgoing;
use crate::config::settings;
use crate::groups::REPLY_GROUP;
use crate::transport::{lock, Hold, Peer};

/// A stream of a client, by its connection and the stream's id.
type Key = (usize, u64);

/// One stream being sent.
struct Flow {
    credit: Semaphore,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

/// The streams a service is sending.
#[derive(Default)]
pub(super) struct Outflows {
    flows: Mutex<HashMap<Key, Arc<Flow>>>,
}

fn key(peer: &Arc<Peer>, id: u64) -> Key {
    (Arc::as_ptr(peer) as usize, id)
}

impl Outflows {
    /// Starts sending `stream` to `peer` on `runtime`, once the client grants credit.
    pub fn start(
        self: &Arc<Self>,
        runtime: &tokio::runtime::Handle,
        peer: &Arc<Peer>,
        stream: Outgoing,
    ) {
        let flow = Arc::new(Flow {
            credit: Semaphore::new(0),
            task: Mutex::new(None),
        });
        let k = key(peer, stream.id);
        let mut flows = lock(&self.flows);
        flows.insert(k, flow.clone());
        let task = runtime.spawn(pump(self.clone(), peer.clone(), flow.clone(), stream));
        *lock(&flow.task) = Some(task.abort_handle());
    }

    /// The client takes `count` more items of stream `id`.
    pub fn credit(&self, peer: &Arc<Peer>, id: u64, count: u32) {
        if let Some(flow) = lock(&self.flows).get(&key(peer, id)) {
            // More than a window is a client's mistake, bounded by the semaphore's limit.
            let room = Semaphore::MAX_PERMITS - flow.credit.available_permits();
            flow.credit.add_permits((count as usize).min(room));
        }
    }

    /// The client dropped stream `id`: the task ends, and with it the user's stream.
    pub fn stop(&self, peer: &Arc<Peer>, id: u64) {
        let flow = lock(&self.flows).remove(&key(peer, id));
        if let Some(task) = flow.and_then(|f| lock(&f.task).take()) {
            task.abort();
        }
    }
}

/// Most bytes of items written at once.
const BATCH_BYTES: usize = 64 * 1024;

/// Sends the items of `stream` as credit comes, then its end. The items the stream has
/// ready at once (as many as there is credit for) go out in one write.
async fn pump(flows: Arc<Outflows>, peer: Arc<Peer>, flow: Arc<Flow>, mut stream: Outgoing) {
    let id = stream.id;
    let limit = peer.max_message.min(settings().max_message_size);
    let mut batch: Vec<Bytes> = Vec::new();
    let last = 'pump: loop {
        tokio::select! {
            permit = flow.credit.acquire() => match permit {
                Ok(permit) => permit.forget(),
                Err(_) => break None,
            },
            () = peer.closed() => break None,
        }
        // The first item is waited for; those after it are taken while they are ready.
        let mut item = next_item(&mut stream, &peer).await;
        let mut end = None;
        let mut bytes = 0;
        loop {
            match item {
                Ok(frame) if frame.len() > limit => {
                    end = Some(failed(id, Status::TooLarge));
                    break;
                }
                Ok(frame) => {
                    bytes += frame.len();
                    batch.push(frame);
                }
                Err(last) => {
                    end = Some(last);
                    break;
                }
            }
            if bytes >= BATCH_BYTES {
                break;
            }
            let Ok(permit) = flow.credit.try_acquire() else {
                break;
            };
            match next_item(&mut stream, &peer).now_or_never() {
                Some(next) => {
                    permit.forget();
                    item = next;
                }
                // Not ready: the credit stays for the next round.
                None => break,
            }
        }
        if !batch.is_empty() {
            // Backpressure on the connection too: wait while a megabyte waits unread.
            if peer.room(bytes).await.is_err()
                || peer.send_quiet_batch(REPLY_GROUP, &batch).is_err()
            {
                break 'pump None;
            }
            batch.clear();
        }
        if end.is_some() {
            break end;
        }
    };
    lock(&flows.flows).remove(&key(&peer, id));
    if let Some(frame) = last {
        let _ = peer.send_message(REPLY_GROUP, &frame, false, Hold::Batch);
    }
}

/// The next item of `stream` as its frame, or the frame that ends the stream.
async fn next_item(stream: &mut Outgoing, peer: &Peer) -> Result<Bytes, Bytes> {
    let id = stream.id;
    match AssertUnwindSafe(stream.items.next()).catch_unwind().await {
        Ok(Some(Ok(frame))) => Ok(frame),
        Ok(Some(Err(_))) => Err(failed(id, Status::Decode)),
        Ok(None) => Err(encode_reply(id, Status::End, &())),
        Err(panic) => {
            tracing::error!(
                peer = peer.pid,
                "gproc: a stream panicked: {}; its client gets HandlerPanicked",
                super::server::panic_message(&*panic)
            );
            Err(failed(id, Status::Panicked))
        }
    }
}

fn failed(id: u64, why: Status) -> Bytes {
    encode_reply(id, Status::Failed, &(why as u8))
}
