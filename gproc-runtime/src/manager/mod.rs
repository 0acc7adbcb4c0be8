//! The process manager: spawn children that know their parent, supervise and reap them.
//!
//! - `signal`: the signals it sends;
//! - `child`: one child's state, signalling, waiting and reaping;
//! - `ready`: children telling their manager that they listen, and `parent_exited`.

mod child;
mod ready;
mod signal;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::config::settings;
use crate::error::{Error, Result};
use crate::identity::{pid, start_ticks, ENV_DIR, ENV_PPID};
use child::{kill_child, reap, send_to_child, signal_child, wait_child, Child, Exit};
pub use ready::parent_exited;
use ready::{ready_registry, start_ready_listener, wait_ready};
pub use signal::Signal;

/// A registry of child processes, GoFrame's `Manager`.
///
/// Children started through it get `GPROC_PPID` (this process's PID) and `GPROC_DIR` (the
/// endpoint directory), so [`ppid`](crate::ppid) and messaging work in them at once. A
/// background reaper collects each child as soon as it exits (no zombies), removes its
/// socket file and keeps its exit status for [`Process::wait`]. Dropping the manager kills
/// every child that was not [detached](Process::detach) or [removed](Manager::remove).
///
/// ```no_run
/// use std::time::Duration;
///
/// # async fn demo() -> Result<(), gproc::Error> {
/// let manager = gproc::Manager::new();
/// let mut worker = manager.new_process("/usr/bin/my-worker", ["--id", "1"], [("RUST_LOG", "info")]);
/// worker.die_with_parent(true);
/// let pid = worker.start().await?;
/// worker.ready(Duration::from_secs(5)).await?;
/// worker.send("hello").await?;
/// for (pid, result) in manager.send_all("to everyone").await {
///     if let Err(e) = result {
///         eprintln!("{pid}: {e}");
///     }
/// }
/// manager.kill_all().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct Manager {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    children: Mutex<BTreeMap<u32, Arc<Child>>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Arc<Child>>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A child process, GoFrame's `Process`: built by [`Manager::new_process`], then started.
///
/// Cheap to clone once started; every clone names the same child.
#[derive(Debug)]
pub struct Process {
    manager: Weak<Shared>,
    command: Option<Command>,
    die_with_parent: bool,
    child: Option<Arc<Child>>,
}

impl Clone for Process {
    /// Clones the handle of a started child. A clone of a process not yet started is
    /// another unstarted handle without the command: start the original.
    fn clone(&self) -> Self {
        Process {
            manager: self.manager.clone(),
            command: None,
            die_with_parent: self.die_with_parent,
            child: self.child.clone(),
        }
    }
}

impl Manager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Prepares a child running `path` with `args`, and `envs` added to this process's
    /// environment. Nothing runs until [`Process::start`].
    pub fn new_process<P, A, S, E, K, V>(&self, path: P, args: A, envs: E) -> Process
    where
        P: AsRef<OsStr>,
        A: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut command = Command::new(path);
        command.args(args).envs(envs);
        Process {
            manager: Arc::downgrade(&self.shared),
            command: Some(command),
            die_with_parent: false,
            child: None,
        }
    }

    /// The PIDs of every child started and not removed, running or exited, in PID order.
    pub fn pids(&self) -> Vec<u32> {
        self.shared.lock().keys().copied().collect()
    }

    /// The child with this PID.
    pub fn get(&self, pid: u32) -> Option<Process> {
        let child = self.shared.lock().get(&pid).cloned()?;
        Some(self.handle(child))
    }

    /// Stops managing the child with this PID: it is no longer listed, signalled or killed
    /// by this manager (it is still reaped when it exits).
    pub fn remove(&self, pid: u32) -> Option<Process> {
        let child = self.shared.lock().remove(&pid)?;
        Some(self.handle(child))
    }

    /// Sends `data` to every child concurrently; one result per child, whatever the others do.
    pub async fn send_all(&self, data: impl Into<Bytes>) -> Vec<(u32, Result<()>)> {
        let data = data.into();
        let sends = self.children().into_iter().map(|child| {
            let data = data.clone();
            async move { (child.pid, send_to_child(&child, data).await) }
        });
        futures_util::future::join_all(sends).await
    }

    /// Sends `signal` to every running child; one result per child.
    pub fn signal_all(&self, signal: Signal) -> Vec<(u32, Result<()>)> {
        self.children()
            .into_iter()
            .map(|child| (child.pid, signal_child(&child, signal)))
            .collect()
    }

    /// Kills every child and waits until each is reaped; one result per child.
    pub async fn kill_all(&self) -> Vec<(u32, Result<()>)> {
        let kills = self
            .children()
            .into_iter()
            .map(|child| async move { (child.pid, kill_child(&child).await) });
        futures_util::future::join_all(kills).await
    }

    /// Waits until every child has exited; its exit status per child.
    pub async fn wait_all(&self) -> Vec<(u32, Result<ExitStatus>)> {
        let waits = self
            .children()
            .into_iter()
            .map(|child| async move { (child.pid, wait_child(&child).await) });
        futures_util::future::join_all(waits).await
    }

    fn children(&self) -> Vec<Arc<Child>> {
        self.shared.lock().values().cloned().collect()
    }

    fn handle(&self, child: Arc<Child>) -> Process {
        Process {
            manager: Arc::downgrade(&self.shared),
            command: None,
            die_with_parent: false,
            child: Some(child),
        }
    }
}

impl Drop for Manager {
    /// Kills every child that was not detached or removed, without waiting: the reaper
    /// collects them.
    fn drop(&mut self) {
        for child in self.children() {
            if !child.detached.load(Ordering::Acquire) && !child.has_exited() {
                let _ = signal_child(&child, Signal::Kill);
            }
        }
    }
}

impl Process {
    /// Whether the child gets `SIGKILL` when this process (its parent thread) dies, even
    /// by `SIGKILL` (Linux `PR_SET_PDEATHSIG`, set in the child before `exec`). Call
    /// before [`start`](Self::start).
    pub fn die_with_parent(&mut self, enabled: bool) -> &mut Self {
        self.die_with_parent = enabled;
        self
    }

    /// Starts the child and returns its PID.
    ///
    /// This process's endpoint is bound first, so that the child can tell it when it
    /// listens (see [`ready`](Self::ready)).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the program cannot be started (its message names the program,
    /// its kind is the system's: `NotFound` for a missing one); [`Error::NotStarted`] when this
    /// handle holds no command (a clone) or was already started.
    pub async fn start(&mut self) -> Result<u32> {
        let mut command = self.command.take().ok_or(Error::NotStarted)?;
        if let Err(e) = crate::rpc::up() {
            tracing::warn!(
                "gproc: starting a child without an endpoint; Process::ready will poll: {e}"
            );
        }
        start_ready_listener();
        let parent = pid();
        command
            .env(ENV_PPID, parent.to_string())
            .env(ENV_DIR, &settings().dir)
            .stdin(Stdio::inherit());
        if self.die_with_parent {
            // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
            // system calls (prctl, getppid, kill).
            unsafe {
                command.pre_exec(move || {
                    rustix::process::set_parent_process_death_signal(Some(
                        rustix::process::Signal::KILL,
                    ))?;
                    // The parent may have died before the prctl: then die now.
                    if crate::identity::ppid_os() != parent {
                        let _ = rustix::process::kill_process(
                            rustix::process::getpid(),
                            rustix::process::Signal::KILL,
                        );
                    }
                    Ok(())
                });
            }
        }
        // Spawned from gproc's own thread: PR_SET_PDEATHSIG fires when the *thread* that
        // forked exits, and a runtime's worker thread may exit long before this process.
        let program = command.get_program().to_owned();
        let os_child = crate::rt::run(async move { command.spawn() })
            .await
            .map_err(|e| spawn_failed(&program, e))?;
        let child_pid = os_child.id();
        let child = Arc::new(Child {
            pid: child_pid,
            start_ticks: start_ticks(child_pid),
            status: watch::channel(Exit::Running).0,
            ready: watch::channel(false).0,
            detached: AtomicBool::new(false),
            pidfd: crate::identity::os_pid(child_pid).and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
            }),
        });
        ready_registry().insert(child_pid, Arc::downgrade(&child));
        if let Some(shared) = self.manager.upgrade() {
            shared.lock().insert(child_pid, child.clone());
        }
        let reaped = child.clone();
        crate::rt::handle().spawn(async move {
            reap(os_child, reaped).await;
            ready::forget(child_pid);
        });
        tracing::debug!(pid = child_pid, "gproc: started a child");
        self.child = Some(child);
        Ok(child_pid)
    }

    /// The child's PID, once started.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid)
    }

    /// Waits until the child's endpoint is up (it called `gproc::listen`, `send` or
    /// `receive`), so that messages to it cannot fail with `NotListening`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] after `timeout`; [`Error::ProcessExited`] if the child exits first;
    /// [`Error::NotStarted`] before [`start`](Self::start).
    pub async fn ready(&self, timeout: Duration) -> Result<()> {
        let child = self.started()?.clone();
        crate::rt::run(async move {
            tokio::time::timeout(timeout, wait_ready(&child))
                .await
                .map_err(|_| Error::Timeout)?
        })
        .await
    }

    /// Sends `data` to the child's default group, as [`crate::send`] does, and checks that
    /// the PID still names the child this handle started (not a process that reused it).
    ///
    /// # Errors
    ///
    /// As [`crate::send_group`]; [`Error::NoSuchProcess`] once the child has exited.
    pub async fn send(&self, data: impl Into<Bytes>) -> Result<()> {
        send_to_child(self.started()?, data.into()).await
    }

    /// Sends `signal` to the child.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchProcess`] when it has already exited; [`Error::NotStarted`].
    pub fn signal(&self, signal: Signal) -> Result<()> {
        signal_child(self.started()?, signal)
    }

    /// Kills the child (`SIGKILL`) and waits until it is reaped. Killing a child that has
    /// already exited is `Ok`.
    ///
    /// # Errors
    ///
    /// [`Error::NotStarted`]; [`Error::Io`] if the signal cannot be sent.
    pub async fn kill(&self) -> Result<()> {
        kill_child(self.started()?).await
    }

    /// Waits until the child exits and returns its exit status. Can be called any number
    /// of times, from any number of handles.
    ///
    /// # Errors
    ///
    /// [`Error::NotStarted`].
    pub async fn wait(&self) -> Result<ExitStatus> {
        wait_child(self.started()?).await
    }

    /// Lets the child outlive the [`Manager`]: it is not killed when the manager is dropped.
    pub fn detach(&self) {
        if let Some(child) = &self.child {
            child.detached.store(true, Ordering::Release);
        }
    }

    fn started(&self) -> Result<&Arc<Child>> {
        self.child.as_ref().ok_or(Error::NotStarted)
    }
}

/// A spawn failure, with the program named and the system's error kind kept.
fn spawn_failed(program: &std::ffi::OsStr, e: std::io::Error) -> Error {
    let hint = match e.kind() {
        std::io::ErrorKind::NotFound => {
            "; check the path (a name without a slash is looked up in PATH)"
        }
        std::io::ErrorKind::PermissionDenied => "; check that it is executable",
        _ => "",
    };
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("cannot start {}: {e}{hint}", program.to_string_lossy()),
    ))
}
