//! Waiting for a process to exit, child or not: [`exited`] and [`parent_exited`].

use std::os::fd::OwnedFd;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use crate::error::{Error, Result};
use crate::identity::{is_alive, os_pid, ppid};

/// Resolves when the process `pid` has exited: any process, a child of this one or not.
///
/// It watches a pidfd (Linux 5.3 and later), so it wakes at the exit itself, and a PID
/// reused afterwards by another process cannot fool it; on older kernels it polls every
/// 50 ms. A process that is already gone, or a zombie waiting for its parent to reap it,
/// has exited: `Ok` at once.
///
/// ```no_run
/// # async fn demo(pid: u32) -> Result<(), gproc::Error> {
/// gproc::exited(pid).await?;
/// println!("{pid} is gone");
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::NoSuchProcess`] for PID 0 and values no PID can have.
pub async fn exited(pid: u32) -> Result<()> {
    if os_pid(pid).is_none() {
        return Err(Error::NoSuchProcess(pid));
    }
    crate::rt::run(async move { wait_exit(pid).await }).await;
    Ok(())
}

/// Resolves when the process [`ppid`](crate::ppid) names has exited.
///
/// With [`Process::die_with_parent`](crate::Process::die_with_parent) the kernel kills a
/// child when its parent dies; this is the gentler form, for a child that wants to clean
/// up first.
///
/// ```no_run
/// # async fn demo() {
/// tokio::select! {
///     _ = gproc::parent_exited() => { /* flush, then exit */ }
///     msg = gproc::receive() => { /* work */ }
/// }
/// # }
/// ```
pub async fn parent_exited() {
    let parent = ppid();
    crate::rt::run(async move { wait_exit(parent).await }).await
}

/// Waits for `pid`'s exit. Call on the background runtime (the pidfd is registered there).
async fn wait_exit(pid: u32) {
    if let Some(fd) = exit_watch(pid) {
        let _ = fd.readable().await;
        return;
    }
    // No pidfd (old kernel, or the process is already gone): poll.
    while is_alive(pid) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A pidfd of `pid` registered with the current runtime: readable once `pid` has exited.
/// `None` where pidfds are not available or `pid` is already gone.
pub(super) fn exit_watch(pid: u32) -> Option<AsyncFd<OwnedFd>> {
    let raw = os_pid(pid)?;
    let fd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()).ok()?;
    // SAFETY: the `OwnedFd` is open and owned by the `AsyncFd` for all its life.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.ok()
}
