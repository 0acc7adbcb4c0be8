//! One incarnation of a child: its state, its standard streams, signals, waiting, reaping.

use std::os::fd::OwnedFd;
use std::process::{ChildStderr, ChildStdin, ChildStdout, ExitStatus};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::exit::exit_watch;
use super::signal::Signal;
use crate::config::settings;
use crate::error::{Error, Result};
use crate::identity::start_ticks;

/// One incarnation of a child: a process the manager started (a restart makes another).
#[derive(Debug)]
pub(super) struct Child {
    pub(super) pid: u32,
    pub(super) start_ticks: Option<u64>,
    pub(super) status: watch::Sender<Exit>,
    pub(super) ready: watch::Sender<bool>,
    /// A pidfd of the child: signals sent through it reach this process and no other, even
    /// once its PID is free for reuse. `None` where pidfds are not available.
    pub(super) pidfd: Option<OwnedFd>,
    /// The pipes the command asked for (`Stdio::piped()`), until the user takes them.
    pub(super) stdio: Mutex<Stdio>,
}

/// A child's ends of its piped standard streams.
#[derive(Debug, Default)]
pub(super) struct Stdio {
    pub(super) stdin: Option<ChildStdin>,
    pub(super) stdout: Option<ChildStdout>,
    pub(super) stderr: Option<ChildStderr>,
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
    /// What is known of the process `os_child` just spawned, its pipes taken out of it.
    pub(super) fn new(os_child: &mut std::process::Child) -> Child {
        let pid = os_child.id();
        Child {
            pid,
            start_ticks: start_ticks(pid),
            status: watch::channel(Exit::Running).0,
            ready: watch::channel(false).0,
            pidfd: crate::identity::os_pid(pid).and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
            }),
            stdio: Mutex::new(Stdio {
                stdin: os_child.stdin.take(),
                stdout: os_child.stdout.take(),
                stderr: os_child.stderr.take(),
            }),
        }
    }

    pub(super) fn stdio(&self) -> std::sync::MutexGuard<'_, Stdio> {
        self.stdio.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn has_exited(&self) -> bool {
        *self.status.borrow() != Exit::Running
    }
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

/// Waits for the child to exit, removes its socket file, then reaps it, and returns how
/// it exited. Call on the background runtime.
///
/// The socket is removed before the child is reaped: until then its PID cannot be reused,
/// so the file removed is certainly the child's.
pub(super) async fn reap(mut os_child: std::process::Child, child: &Arc<Child>) -> Exit {
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
            return finish(child, status.ok().and_then(|s| s.ok()));
        }
    }
    remove_socket(pid);
    let status = os_child.wait().ok();
    finish(child, status)
}

fn finish(child: &Child, status: Option<ExitStatus>) -> Exit {
    crate::transport::forget(child.pid);
    let exit = match status {
        Some(status) => {
            tracing::debug!(pid = child.pid, %status, "gproc: reaped a child");
            Exit::Exited(status)
        }
        None => Exit::Lost,
    };
    child.status.send_replace(exit);
    super::ready::forget(child.pid);
    exit
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
