//! A group's queue: bounded, and when full, the peers whose messages wait are told when
//! there is room again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::msg::Msg;
use crate::transport::{lock, Peer};

pub(crate) struct Queue {
    state: Mutex<State>,
    arrived: Notify,
    capacity: usize,
}

struct State {
    items: VecDeque<Msg>,
    /// Connections that stopped reading because this queue was full.
    blocked: VecDeque<Arc<Peer>>,
}

impl Queue {
    pub fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                blocked: VecDeque::new(),
            }),
            arrived: Notify::new(),
            capacity,
        }
    }

    /// Queues `msg` if there is room; else gives it back, and `peer` is resumed once a
    /// message is taken.
    pub fn offer(&self, peer: &Arc<Peer>, msg: Msg) -> Result<(), Msg> {
        let mut st = lock(&self.state);
        if st.items.len() >= self.capacity {
            if !st.blocked.iter().any(|p| Arc::ptr_eq(p, peer)) {
                st.blocked.push_back(peer.clone());
            }
            return Err(msg);
        }
        st.items.push_back(msg);
        drop(st);
        self.arrived.notify_one();
        Ok(())
    }

    /// Takes the next message, waiting for one.
    pub async fn pop(&self) -> Msg {
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

    fn try_pop(&self) -> Option<Msg> {
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
