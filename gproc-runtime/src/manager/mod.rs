//! The process manager: spawn children that know their parent, supervise, restart and
//! reap them.
//!
//! - `signal`: the signals it sends;
//! - `child`: one incarnation's state, signalling, waiting and reaping;
//! - `spawn`: starting an incarnation from the user's command;
//! - `supervise`: a child's incarnations one after another, by restart policy;
//! - `events`: what happens to the children, as a stream;
//! - `process`: the [`Process`] handle;
//! - `ready`: children telling their manager that they listen;
//! - `exit`: waiting for any process to exit.

mod child;
mod events;
mod exit;
mod process;
mod ready;
mod signal;
mod spawn;
mod supervise;

use std::ffi::OsStr;
use std::process::{Command, ExitStatus};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::error::Result;
pub use events::{Event, Events};
pub use exit::{exited, parent_exited};
pub use process::Process;
pub use signal::Signal;
pub use supervise::Restart;
use supervise::Unit;

/// A registry of child processes, GoFrame's `Manager`, and their supervisor.
///
/// Children started through it get `GPROC_PPID` (this process's PID) and `GPROC_DIR` (the
/// endpoint directory), so [`ppid`](crate::ppid) and messaging work in them at once. A
/// background reaper collects each child as soon as it exits (no zombies), removes its
/// socket file and keeps its exit status for [`Process::wait`]. A child with a
/// [restart policy](Process::restart) is started again when it exits, within a
/// [limit](Process::restart_limit) and after a [growing delay](Process::restart_backoff);
/// [`events`](Self::events) tells of every start, exit and restart. Dropping the manager
/// kills every child that was not [detached](Process::detach) or [removed](Manager::remove).
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
///
/// A supervisor: a named worker restarted when it fails.
///
/// ```no_run
/// use std::time::Duration;
///
/// # async fn demo() -> Result<(), gproc::Error> {
/// let manager = gproc::Manager::new();
/// let mut events = manager.events();
/// let mut command = std::process::Command::new("/usr/bin/my-worker");
/// command.current_dir("/var/lib/my-worker").env("RUST_LOG", "info");
/// let mut worker = manager.new_command(command);
/// worker
///     .name("worker-1")
///     .restart(gproc::Restart::OnFailure)
///     .restart_limit(5, Duration::from_secs(60))
///     .restart_backoff(Duration::from_millis(100), Duration::from_secs(10));
/// worker.start().await?;
/// while let Some(event) = events.next().await {
///     println!("{event:?}"); // Started, Exited, Restarting, Started, ...
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct Manager {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    units: Mutex<Vec<Arc<Unit>>>,
    hub: events::Hub,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Unit>>> {
        self.units.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Manager {
    /// An empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Prepares a child running `path` with `args`, and `envs` added to this process's
    /// environment. Nothing runs until [`Process::start`]. For a child without arguments,
    /// or with its own working directory or piped output, build a
    /// [`Command`](std::process::Command) and use [`new_command`](Self::new_command).
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
        self.new_command(command)
    }

    /// Prepares a child from a [`Command`](std::process::Command) as its caller built it:
    /// its standard streams, working directory and environment are kept, and gproc adds
    /// only its own variables (`GPROC_PPID`, `GPROC_DIR`, and `GPROC_NAME` for a
    /// [named](Process::name) child). Piped streams are taken with
    /// [`Process::take_stdout`] and its siblings. Nothing runs until [`Process::start`].
    ///
    /// ```no_run
    /// use std::io::Read;
    /// use std::process::{Command, Stdio};
    ///
    /// # async fn demo() -> Result<(), gproc::Error> {
    /// let manager = gproc::Manager::new();
    /// let mut command = Command::new("/usr/bin/my-worker");
    /// command.current_dir("/tmp").env_clear().env("MODE", "batch").stdout(Stdio::piped());
    /// let mut worker = manager.new_command(command);
    /// worker.start().await?;
    /// let mut output = String::new();
    /// worker.take_stdout().expect("piped").read_to_string(&mut output)?;
    /// # Ok(()) }
    /// ```
    pub fn new_command(&self, command: Command) -> Process {
        Process::unstarted(Arc::downgrade(&self.shared), command)
    }

    /// The events of this manager's children from now on: every start, exit, restart and
    /// giving up, in the order they happened. Any number of streams can be open.
    pub fn events(&self) -> Events {
        self.shared.hub.subscribe()
    }

    /// The PIDs of every child started and not removed, running or exited, in PID order
    /// (of a restarted child, its current incarnation).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.units().iter().map(|u| u.current().pid).collect();
        pids.sort_unstable();
        pids
    }

    /// The child whose current incarnation has this PID.
    pub fn get(&self, pid: u32) -> Option<Process> {
        let unit = self
            .shared
            .lock()
            .iter()
            .find(|u| u.current().pid == pid)
            .cloned()?;
        Some(self.handle(unit))
    }

    /// Stops managing the child with this PID: it is no longer listed, signalled or killed
    /// by this manager (it is still reaped when it exits, and restarted by its policy).
    pub fn remove(&self, pid: u32) -> Option<Process> {
        let mut units = self.shared.lock();
        let at = units.iter().position(|u| u.current().pid == pid)?;
        let unit = units.remove(at);
        drop(units);
        Some(self.handle(unit))
    }

    /// Sends `data` to every child concurrently; one result per child, whatever the others do.
    pub async fn send_all(&self, data: impl Into<Bytes>) -> Vec<(u32, Result<()>)> {
        let data = data.into();
        let sends = self.units().into_iter().map(|unit| {
            let data = data.clone();
            async move {
                let child = unit.current();
                (child.pid, ready::send_to_child(&child, data).await)
            }
        });
        futures_util::future::join_all(sends).await
    }

    /// Sends `signal` to every running child; one result per child.
    pub fn signal_all(&self, signal: Signal) -> Vec<(u32, Result<()>)> {
        self.units()
            .into_iter()
            .map(|unit| {
                let child = unit.current();
                (child.pid, child::signal_child(&child, signal))
            })
            .collect()
    }

    /// Kills every child, with no more restarts, and waits until each is reaped; one
    /// result per child.
    pub async fn kill_all(&self) -> Vec<(u32, Result<()>)> {
        let kills = self
            .units()
            .into_iter()
            .map(|unit| async move { (unit.current().pid, process::kill(&unit).await) });
        futures_util::future::join_all(kills).await
    }

    /// Stops every child as [`Process::stop`] does, all at once: `SIGTERM`, then `SIGKILL`
    /// for those still running after `grace`. Their last exit status per child.
    pub async fn stop_all(&self, grace: Duration) -> Vec<(u32, Result<ExitStatus>)> {
        let stops = self.units().into_iter().map(|unit| async move {
            let status = process::stop(&unit, grace).await;
            (unit.current().pid, status)
        });
        futures_util::future::join_all(stops).await
    }

    /// Waits until every child has exited for good (restarts over); its last exit status
    /// per child.
    pub async fn wait_all(&self) -> Vec<(u32, Result<ExitStatus>)> {
        let waits = self.units().into_iter().map(|unit| async move {
            let status = process::wait(&unit).await;
            (unit.current().pid, status)
        });
        futures_util::future::join_all(waits).await
    }

    fn units(&self) -> Vec<Arc<Unit>> {
        self.shared.lock().clone()
    }

    fn handle(&self, unit: Arc<Unit>) -> Process {
        Process::of(Arc::downgrade(&self.shared), unit)
    }
}

impl Drop for Manager {
    /// Kills every child that was not detached or removed, without waiting: the reaper
    /// collects them, and none is restarted.
    fn drop(&mut self) {
        for unit in self.units() {
            if !unit.detached.load(Ordering::Acquire) {
                unit.stop_restarting();
                let child = unit.current();
                if !child.has_exited() {
                    let _ = child::signal_child(&child, Signal::Kill);
                }
            }
        }
    }
}
