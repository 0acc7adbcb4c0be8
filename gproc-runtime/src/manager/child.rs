//! What a manager knows of one started child: its state, signals, waiting, reaping.

use std::os::fd::OwnedFd;
use std::process::ExitStatus;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

use super::signal::Signal;
use crate::config::settings;
use crate::error::{Error, Result};

/// What the manager knows of one started child.
#[derive(Debug)]
pub(super) struct Child {
    pub(super) pid: u32,
    pub(super) start_ticks: Option<u64>,
    pub(super) status: watch::Sender<Exit>,
    pub(super) ready: watch::Sender<bool>,
    pub(super) detached: AtomicBool,
    /// A pidfd of the child: signals sent through it reach this process and no other, even
    /// once its PID is free for reuse. `None` where pidfds are not available.
    pub(super) pidfd: Option<OwnedFd>,
}

/// Where a child is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exit {
    Running,
    Exited(ExitStatus),
    /// It exited, but its status was collected by someone else (for example with
    /// `SIGCHLD` ignored, the kernel reaps it).
    Lost,
}

impl Child {
    pub(super) fn has_exited(&self) -> bool {
        *self.status.borrow() != Exit::Running
    }
}

pub(super) async fn send_to_child(child: &Child, data: Bytes) -> Result<()> {
    if child.has_exited() {
        return Err(Error::NoSuchProcess(child.pid));
    }
    crate::messaging::send_to(child.pid, child.start_ticks, "", data).await
}

pub(super) fn signal_child(child: &Child, signal: Signal) -> Result<()> {
    if child.has_exited() {
        return Err(Error::NoSuchProcess(child.pid));
    }
    let sent = match &child.pidfd {
        Some(fd) => rustix::process::pidfd_send_signal(fd, signal.to_rustix()),
        // Without pidfds, a PID freed and reused between the check above and the kill
        // could be signalled: a window of microseconds, on kernels older than 5.3.
        None => {
            let raw = crate::identity::os_pid(child.pid).ok_or(Error::NoSuchProcess(child.pid))?;
            rustix::process::kill_process(raw, signal.to_rustix())
        }
    };
    match sent {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::SRCH) => Err(Error::NoSuchProcess(child.pid)),
        Err(e) => Err(Error::Io(e.into())),
    }
}

pub(super) async fn kill_child(child: &Arc<Child>) -> Result<()> {
    match signal_child(child, Signal::Kill) {
        Ok(()) | Err(Error::NoSuchProcess(_)) => {}
        Err(e) => return Err(e),
    }
    wait_child(child).await.map(|_| ())
}

pub(super) async fn wait_child(child: &Child) -> Result<ExitStatus> {
    let mut rx = child.status.subscribe();
    // The sender lives in `child`, which outlives this borrow: `wait_for` cannot fail.
    let exit = rx.wait_for(|e| *e != Exit::Running).await.map(|e| *e);
    match exit {
        Ok(Exit::Exited(status)) => Ok(status),
        _ => Err(Error::Io(std::io::Error::other(format!(
            "process {} exited but its status was collected elsewhere (is SIGCHLD ignored?)",
            child.pid
        )))),
    }
}

/// Waits for the child to exit, removes its socket file, then reaps it.
///
/// The socket is removed before the child is reaped: until then its PID cannot be reused,
/// so the file removed is certainly the child's.
pub(super) async fn reap(mut os_child: std::process::Child, child: Arc<Child>) {
    let pid = child.pid;
    match exit_watch(pid) {
        Some(fd) => {
            let _ = fd.readable().await;
        }
        None => {
            // No pidfd (old kernel): wait on a blocking thread for the exit without
            // collecting it (WNOWAIT), so the socket goes while the PID is still the child's.
            let status = tokio::task::spawn_blocking(move || {
                if let Some(raw) = crate::identity::os_pid(pid) {
                    let exited = rustix::process::WaitIdOptions::EXITED
                        | rustix::process::WaitIdOptions::NOWAIT;
                    let _ = rustix::process::waitid(rustix::process::WaitId::Pid(raw), exited);
                }
                remove_socket(pid);
                os_child.wait()
            })
            .await;
            finish(&child, status.ok().and_then(|s| s.ok()));
            return;
        }
    }
    remove_socket(pid);
    let status = os_child.wait().ok();
    finish(&child, status);
}

fn finish(child: &Child, status: Option<ExitStatus>) {
    crate::transport::forget(child.pid);
    let exit = match status {
        Some(status) => {
            tracing::debug!(pid = child.pid, %status, "gproc: reaped a child");
            Exit::Exited(status)
        }
        None => Exit::Lost,
    };
    child.status.send_replace(exit);
}

fn remove_socket(pid: u32) {
    let path = settings().socket_path(pid);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            tracing::debug!(path = %path.display(), "gproc: removed the socket of an exited child")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), "gproc: cannot remove the socket of an exited child: {e}")
        }
    }
}

/// A pidfd of `pid` registered with the background runtime: readable once `pid` has exited.
/// `None` where pidfds are not available or `pid` is already gone. Call on that runtime.
pub(super) fn exit_watch(pid: u32) -> Option<AsyncFd<OwnedFd>> {
    let raw = crate::identity::os_pid(pid)?;
    let fd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()).ok()?;
    // SAFETY: the `OwnedFd` is open and owned by the `AsyncFd` for all its life.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.ok()
}
