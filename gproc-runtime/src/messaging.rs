//! Raw messaging: send bytes to a PID, receive them from a queue.

use std::sync::Arc;

use bytes::Bytes;

use crate::conn::Conn;

use crate::config::settings;
use crate::endpoint::ensure_listening;
use crate::error::{Error, Result};
use crate::inbox::{queue, Msg};
use crate::wire::MAX_GROUP_LEN;

/// The prefix of group names reserved for gproc's own services.
pub const RESERVED_PREFIX: &str = "gproc/";

/// Binds this process's endpoint now, so that peers can send to it.
///
/// The endpoint is also bound on the first `send` or `receive`; calling `listen` again is
/// `Ok`. A child started by a [`Manager`](crate::Manager) tells its parent once it listens,
/// which is what [`Process::ready`](crate::Process::ready) waits for.
///
/// # Errors
///
/// [`Error::Directory`] when the endpoint directory is unsafe, [`Error::Io`] when the
/// socket cannot be bound.
pub async fn listen() -> Result<()> {
    crate::rt::adopt_current();
    ensure_listening()
}

/// Sends `data` to process `pid`'s default group and waits until it is queued there.
///
/// Same as [`send_group`]`(pid, "", data)`.
///
/// ```no_run
/// # async fn demo(child: u32) -> Result<(), gproc::Error> {
/// gproc::send(child, "hello").await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// See [`send_group`].
pub async fn send(pid: u32, data: impl Into<Bytes>) -> Result<()> {
    send_group(pid, "", data).await
}

/// Sends `data` to the queue `group` of process `pid`, and returns once the receiving
/// process has queued it (acknowledged delivery).
///
/// Messages from one process to another arrive in the order they were sent. When the
/// receiver's queue is full, this waits (backpressure); nothing is dropped.
///
/// # Errors
///
/// - [`Error::ReservedGroup`] for a group starting with `gproc/`, [`Error::InvalidGroup`]
///   for one longer than 255 bytes;
/// - [`Error::MessageTooLarge`] when `data` is over this process's or the receiver's limit
///   (nothing is written);
/// - [`Error::NoSuchProcess`] / [`Error::NotListening`] when `pid` is gone or has no endpoint;
/// - [`Error::PermissionDenied`] when the receiver does not accept this uid;
/// - [`Error::ConnectionLost`] when the receiver died before acknowledging;
/// - [`Error::Timeout`] when connecting took longer than [`Config::connect_timeout`](crate::Config::connect_timeout).
pub async fn send_group(pid: u32, group: &str, data: impl Into<Bytes>) -> Result<()> {
    check_group(group)?;
    send_to(pid, None, group, data.into()).await
}

/// Sends to any group, reserved ones included, for gproc's own services. With
/// `start_ticks`, refuses a process that is not the one that started then (PID reuse).
pub(crate) async fn send_to(
    pid: u32,
    start_ticks: Option<u64>,
    group: &str,
    data: Bytes,
) -> Result<()> {
    let conn = checked_conn(pid, start_ticks, data.len()).await?;
    conn.post(group, data).await?.await
}

/// Writes a message that the receiver need not acknowledge, and returns the connection
/// it went on, whose [`closed`](Conn::closed) tells of failure. For RPC, whose reply
/// says the request arrived.
/// With `batch`, more messages follow: see `Conn::post_quiet`.
pub(crate) async fn post_to(pid: u32, group: &str, data: Bytes, batch: bool) -> Result<Arc<Conn>> {
    let conn = checked_conn(pid, None, data.len()).await?;
    conn.post_quiet(group, data, batch).await?;
    Ok(conn)
}

/// The connection to `pid`, once a message of `len` bytes is known to fit both limits and
/// (with `start_ticks`) `pid` is known to be the process meant.
async fn checked_conn(pid: u32, start_ticks: Option<u64>, len: usize) -> Result<Arc<Conn>> {
    let limit = settings().max_message_size;
    if len > limit {
        return Err(Error::MessageTooLarge { size: len, limit });
    }
    crate::rt::adopt_current();
    // Bind our own endpoint so the peer can answer; sending does not depend on it.
    if let Err(e) = ensure_listening() {
        tracing::debug!("gproc: sending without an endpoint of our own: {e}");
    }
    let conn = crate::conn::get(pid).await?;
    if start_ticks.is_some_and(|t| t != conn.peer_start_ticks) {
        return Err(Error::NoSuchProcess(pid));
    }
    if len > conn.peer_max {
        return Err(Error::MessageTooLarge {
            size: len,
            limit: conn.peer_max,
        });
    }
    Ok(conn)
}

/// Waits for the next message sent to this process's default group.
///
/// Same as [`receive_group`]`("")`.
///
/// # Errors
///
/// See [`receive_group`].
pub async fn receive() -> Result<Msg> {
    receive_group("").await
}

/// Waits for the next message sent to `group`, binding the endpoint first if needed.
///
/// Several tasks may wait on one group; each message goes to one of them.
///
/// # Errors
///
/// [`Error::ReservedGroup`] for a `gproc/` group; the errors of [`listen`].
pub async fn receive_group(group: &str) -> Result<Msg> {
    check_group(group)?;
    receive_any(group).await
}

/// Receives from any group, reserved ones included. For gproc's own services.
pub(crate) async fn receive_any(group: &str) -> Result<Msg> {
    crate::rt::adopt_current();
    ensure_listening()?;
    let q = queue(group).ok_or_else(|| {
        Error::InvalidGroup(format!(
            "more than {} groups are in use in this process",
            crate::inbox::MAX_GROUPS
        ))
    })?;
    Ok(q.pop().await)
}

fn check_group(group: &str) -> Result<()> {
    if group.starts_with(RESERVED_PREFIX) {
        return Err(Error::ReservedGroup);
    }
    if group.len() > MAX_GROUP_LEN {
        return Err(Error::InvalidGroup(format!(
            "{} bytes is longer than the limit of {MAX_GROUP_LEN}",
            group.len()
        )));
    }
    Ok(())
}
