//! A group's queue: bounded, and when full, the peers whose messages wait are told when
//! there is room again. It lives while it holds messages, has peers waiting for room, or
//! has receivers: the inbox retires it when it has none of these.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::msg::Msg;
use crate::transport::{lock, Peer};

/// A message and the descriptors that came with it (closed when dropped).
pub(crate) type Item = (Msg, Vec<OwnedFd>);

pub(crate) struct Queue {
    state: Mutex<State>,
    arrived: Notify,
    capacity: usize,
}

struct State {
    items: VecDeque<Item>,
    /// Connections that stopped reading because this queue was full.
    blocked: VecDeque<Arc<Peer>>,
    /// Receivers registered (see [`super::Receiver`]).
    receivers: usize,
    /// Taken out of the inbox: whoever still holds it looks the group up again.
    retired: bool,
}

/// Why [`Queue::offer`] gave a message back.
pub(crate) enum Refusal {
    /// No room: the peer is resumed once a message is taken.
    Full(Item),
    /// The queue was retired meanwhile: offer to the group's queue now.
    Retired(Item),
}

impl Queue {
    pub fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                blocked: VecDeque::new(),
                receivers: 0,
                retired: false,
            }),
            arrived: Notify::new(),
            capacity,
        }
    }

    /// Queues `msg` if there is room; else gives it back, and `peer` is resumed once a
    /// message is taken.
    pub fn offer(&self, peer: &Arc<Peer>, msg: Item) -> Result<(), Refusal> {
        let mut st = lock(&self.state);
        if st.retired {
            return Err(Refusal::Retired(msg));
        }
        if st.items.len() >= self.capacity {
            if !st.blocked.iter().any(|p| Arc::ptr_eq(p, peer)) {
                st.blocked.push_back(peer.clone());
            }
            return Err(Refusal::Full(msg));
        }
        st.items.push_back(msg);
        drop(st);
        self.arrived.notify_one();
        Ok(())
    }

    /// Counts a receiver in. Called with the inbox's map locked, as is [`Self::leave`].
    pub fn join(&self) {
        lock(&self.state).receivers += 1;
    }

    /// Counts a receiver out; retires the queue and returns `true` when nothing keeps it.
    pub fn leave(&self) -> bool {
        let mut st = lock(&self.state);
        st.receivers -= 1;
        let idle = st.receivers == 0 && st.items.is_empty() && st.blocked.is_empty();
        if idle {
            st.retired = true;
        }
        idle
    }

    /// Takes the next message, waiting for one. The caller has [joined](Self::join).
    pub async fn pop(&self) -> Item {
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(msg) = self.try_pop() {
                return msg;
            }
            crate::transport::driver::attend();
            arrived.await;
        }
    }

    fn try_pop(&self) -> Option<Item> {
        let mut st = lock(&self.state);
        let msg = st.items.pop_front()?;
        let more = !st.items.is_empty();
        let resume = st.blocked.pop_front();
        drop(st);
        if more {
            // Another receiver may wait on this group.
            self.arrived.notify_one();
        }
        if let Some(peer) = resume {
            peer.resume();
        }
        Some(msg)
    }
}
