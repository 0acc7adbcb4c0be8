//! Raw messaging: send bytes to a PID, receive them from a queue.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::settings;
use crate::error::{Error, Result};
use crate::groups;
use crate::inbox::{Msg, Receiver};
use crate::transport::{self, driver, wire, Hold, Peer};

/// The most descriptors one message carries ([`send_fds`]): the kernel's limit for one
/// `sendmsg` (`SCM_MAX_FD`).
pub const MAX_FDS: usize = wire::MAX_FDS;

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
    crate::rpc::up()?;
    driver::attend();
    Ok(())
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
/// - [`Error::GroupLimit`] when `group` would be one more than the receiver keeps alive
///   ([`MAX_GROUPS`](crate::MAX_GROUPS)): this message only, the connection goes on;
/// - [`Error::Timeout`] when connecting took longer than [`Config::connect_timeout`](crate::Config::connect_timeout).
pub async fn send_group(pid: u32, group: &str, data: impl Into<Bytes>) -> Result<()> {
    groups::check(group)?;
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
    send_fds_to(pid, start_ticks, group, data, Vec::new()).await
}

/// Sends `data` and descriptors `fds` to the queue `group` of process `pid`, and returns
/// once the receiving process has queued them (acknowledged delivery).
///
/// Each descriptor arrives as a new descriptor of the same open file (a pipe's end, a
/// file, a socket), close-on-exec, in the order given; [`receive_fds`] takes them with
/// the message. The descriptors given are closed in this process once they are sent (the
/// receiver holds its own); keep a [`try_clone`](OwnedFd::try_clone) to go on using one
/// here. A message taken with [`receive`] or [`receive_group`] has its descriptors
/// closed, and so has a message the receiver refuses or never queues: none is leaked.
///
/// ```no_run
/// # async fn demo(worker: u32) -> Result<(), Box<dyn std::error::Error>> {
/// use std::os::fd::OwnedFd;
///
/// let log = std::fs::File::create("/tmp/job.log")?;
/// gproc::send_fds(worker, "jobs", "write your log here", vec![OwnedFd::from(log)]).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`send_group`], and [`Error::TooManyFds`] for more than [`MAX_FDS`] descriptors
/// (checked before anything is sent). On any error the descriptors given are closed here;
/// with [`Error::ConnectionLost`] the receiver may have got the message and its
/// descriptors, or not.
pub async fn send_fds(
    pid: u32,
    group: &str,
    data: impl Into<Bytes>,
    fds: Vec<OwnedFd>,
) -> Result<()> {
    groups::check(group)?;
    check_fds(&fds)?;
    send_fds_to(pid, None, group, data.into(), fds).await
}

fn check_fds(fds: &[OwnedFd]) -> Result<()> {
    if fds.len() > MAX_FDS {
        return Err(Error::TooManyFds {
            count: fds.len(),
            limit: MAX_FDS,
        });
    }
    Ok(())
}

async fn send_fds_to(
    pid: u32,
    start_ticks: Option<u64>,
    group: &str,
    data: Bytes,
    fds: Vec<OwnedFd>,
) -> Result<()> {
    let peer = checked_peer(pid, start_ticks, data.len()).await?;
    peer.room(data.len()).await?;
    let ack = peer.send_message_fds(group, &data, fds, true, Hold::Batch)?;
    driver::attend();
    match ack {
        Some(ack) => ack.await,
        None => Ok(()),
    }
}

/// The connection to `pid`, once a message of `len` bytes is known to fit both limits and
/// (with `start_ticks`) `pid` is known to be the process meant.
pub(crate) async fn checked_peer(
    pid: u32,
    start_ticks: Option<u64>,
    len: usize,
) -> Result<Arc<Peer>> {
    let limit = settings().max_message_size;
    if len > limit {
        return Err(Error::MessageTooLarge { size: len, limit });
    }
    // Bind our own endpoint so the peer can reach us too; sending does not depend on it.
    if let Err(e) = crate::rpc::up() {
        tracing::debug!("gproc: sending without an endpoint of our own: {e}");
    }
    driver::attend();
    let peer = transport::peer(pid).await?;
    if start_ticks.is_some_and(|t| t != peer.start_ticks) {
        return Err(Error::NoSuchProcess(pid));
    }
    if len > peer.max_message {
        return Err(Error::MessageTooLarge {
            size: len,
            limit: peer.max_message,
        });
    }
    Ok(peer)
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
/// A message sent with descriptors ([`send_fds`]) has them closed here; take them with
/// [`receive_fds`].
///
/// # Errors
///
/// [`Error::ReservedGroup`] for a `gproc/` group; [`Error::GroupLimit`] when
/// [`MAX_GROUPS`](crate::MAX_GROUPS) other groups are alive; the errors of [`listen`].
pub async fn receive_group(group: &str) -> Result<Msg> {
    let (msg, _closed) = receive_fds(group).await?;
    Ok(msg)
}

/// Waits for the next message sent to `group`, with the descriptors that came with it
/// (none for a message sent without: [`send`], [`send_group`]).
///
/// Each descriptor is owned by the caller, close-on-exec, and refers to the open file the
/// sender passed, in the order it passed them.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::io::Write;
///
/// let (msg, fds) = gproc::receive_fds("jobs").await?;
/// for fd in fds {
///     let mut log = std::fs::File::from(fd);
///     writeln!(log, "job {:?} from {}", msg.data, msg.sender_pid)?;
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`receive_group`].
pub async fn receive_fds(group: &str) -> Result<(Msg, Vec<OwnedFd>)> {
    groups::check(group)?;
    receive_any_fds(group).await
}

/// Receives from any group, reserved ones included. For gproc's own services.
pub(crate) async fn receive_any(group: &str) -> Result<Msg> {
    let (msg, _closed) = receive_any_fds(group).await?;
    Ok(msg)
}

async fn receive_any_fds(group: &str) -> Result<(Msg, Vec<OwnedFd>)> {
    crate::rpc::up()?;
    let receiver = Receiver::new(group)?;
    Ok(receiver.next().await)
}
