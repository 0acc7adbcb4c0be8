//! The process manager: spawn children that know their parent, supervise and reap them.

use bytes::Bytes;

use crate::identity::{is_child, ppid};

/// The reserved group a child's runtime uses to tell its manager that it listens.
pub(crate) const READY_GROUP: &str = "gproc/ready";

/// Called once this process's endpoint is bound: a managed child tells its parent.
pub(crate) fn announce_ready() {
    if !is_child() {
        return;
    }
    let parent = ppid();
    crate::rt::handle().spawn(async move {
        let sent = match crate::conn::get(parent).await {
            Ok(conn) => conn.send(READY_GROUP, Bytes::new()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::debug!(parent, "gproc: could not tell the parent that this child listens: {e}");
        }
    });
}
