//! Readiness: children tell their manager when their endpoint is up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bytes::Bytes;

use super::child::{Child, Exit};
use crate::config::settings;
use crate::error::{Error, Result};
use crate::groups::READY_GROUP;

/// Sends `data` to `child`'s default group once its endpoint is up: a child just started
/// (or restarted) is waited for, up to the connect timeout, rather than refused with
/// `NotListening`. Checks that the PID still names the child (not a process that reused it).
pub(super) async fn send_to_child(child: &Arc<Child>, data: Bytes) -> Result<()> {
    if child.has_exited() {
        return Err(Error::NoSuchProcess(child.pid));
    }
    if !*child.ready.borrow() {
        let waiting = child.clone();
        let limit = settings().connect_timeout;
        let ready =
            crate::rt::run(async move { tokio::time::timeout(limit, wait_ready(&waiting)).await })
                .await;
        // Ready, or not in time: then the send says what it finds.
        if let Ok(Err(Error::ProcessExited { .. })) = ready {
            return Err(Error::NoSuchProcess(child.pid));
        }
    }
    crate::messaging::send_to(child.pid, child.start_ticks, "", data).await
}

pub(super) async fn wait_ready(child: &Child) -> Result<()> {
    let mut ready = child.ready.subscribe();
    let mut status = child.status.subscribe();
    // The child may have bound before we were told (or could be told): ask it directly.
    if crate::transport::peer(child.pid).await.is_ok() {
        return Ok(());
    }
    let became_ready = tokio::select! {
        r = ready.wait_for(|&r| r) => r.is_ok(),
        _ = status.wait_for(|e| *e != Exit::Running) => false,
    };
    if became_ready {
        return Ok(());
    }
    let status = super::child::wait_child(child).await?;
    Err(Error::ProcessExited {
        pid: child.pid,
        status,
    })
}

/// Children of every manager in this process, by PID, for routing ready notices.
pub(super) struct ReadyRegistry(Mutex<HashMap<u32, Weak<Child>>>);

impl ReadyRegistry {
    pub(super) fn insert(&self, pid: u32, child: Weak<Child>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid, child);
    }

    pub(super) fn remove(&self, pid: &u32) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(pid);
    }

    fn get(&self, pid: &u32) -> Option<Arc<Child>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(pid)?
            .upgrade()
    }
}

pub(super) fn ready_registry() -> &'static ReadyRegistry {
    static REGISTRY: OnceLock<ReadyRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| ReadyRegistry(Mutex::new(HashMap::new())))
}

/// Starts, once, the task that turns children's ready notices into [`Process::ready`] wake-ups.
pub(super) fn start_ready_listener() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        crate::rt::handle().spawn(async {
            while let Ok(msg) = crate::messaging::receive_any(READY_GROUP).await {
                if let Some(child) = ready_registry().get(&msg.sender_pid) {
                    child.ready.send_replace(true);
                }
            }
        });
    });
}

/// Forgets an exited child.
pub(super) fn forget(pid: u32) {
    ready_registry().remove(&pid);
}
