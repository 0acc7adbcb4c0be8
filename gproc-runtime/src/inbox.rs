//! The per-group queues that received messages wait in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::config::settings;

/// A message received from another process.
///
/// ```no_run
/// # async fn demo() -> Result<(), gproc::Error> {
/// let msg: gproc::Msg = gproc::receive().await?;
/// println!("from {} to {} in {:?}: {:?}", msg.sender_pid, msg.receiver_pid, msg.group, msg.data);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// The sending process's PID, as the kernel reported it for the connection.
    pub sender_pid: u32,
    /// This process's PID.
    pub receiver_pid: u32,
    /// The group it was sent to (`""` for [`send`](crate::send)).
    pub group: String,
    /// The payload.
    pub data: Bytes,
}

/// The most distinct groups one process keeps queues for. A peer that names more is
/// disconnected, so that it cannot make this process allocate without bound.
pub(crate) const MAX_GROUPS: usize = 4096;

/// A group's queue. The channel itself is unbounded; its capacity is kept by `slots`, so
/// that a reader can reserve room for a message, acknowledge it, and only then make it
/// visible: a receiver that exits right after taking a message has always acknowledged it.
#[derive(Clone)]
pub(crate) struct Queue {
    tx: async_channel::Sender<Msg>,
    rx: async_channel::Receiver<Msg>,
    slots: Arc<Semaphore>,
}

impl Queue {
    /// Reserves room for one message without waiting.
    pub fn try_reserve(&self) -> bool {
        self.slots.try_acquire().map(|p| p.forget()).is_ok()
    }

    /// Waits for room for one message.
    pub async fn reserve(&self) {
        if let Ok(permit) = self.slots.acquire().await {
            permit.forget();
        }
    }

    /// Gives back room reserved for a message that will not be queued.
    pub fn release(&self) {
        self.slots.add_permits(1);
    }

    /// Queues a message for which room was reserved.
    pub fn push(&self, msg: Msg) {
        // The receiver lives in the inbox as long as the sender: this cannot fail.
        let _ = self.tx.try_send(msg);
    }

    /// Takes the next message, waiting for one.
    pub async fn pop(&self) -> Msg {
        let msg = self
            .rx
            .recv()
            .await
            .expect("gproc: the inbox holds both ends of every queue");
        self.slots.add_permits(1);
        msg
    }
}

fn queues() -> &'static Mutex<HashMap<String, Queue>> {
    static QUEUES: OnceLock<Mutex<HashMap<String, Queue>>> = OnceLock::new();
    QUEUES.get_or_init(Default::default)
}

/// The queue of `group`, made on first use; `None` when [`MAX_GROUPS`] are already in use.
pub(crate) fn queue(group: &str) -> Option<Queue> {
    let mut map = queues().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(q) = map.get(group) {
        return Some(q.clone());
    }
    if map.len() >= MAX_GROUPS {
        return None;
    }
    let (tx, rx) = async_channel::unbounded();
    let slots = Arc::new(Semaphore::new(settings().queue_capacity));
    let q = Queue { tx, rx, slots };
    map.insert(group.to_owned(), q.clone());
    Some(q)
}
