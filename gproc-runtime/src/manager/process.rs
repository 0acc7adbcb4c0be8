//! The handle of one child: built, configured, started, then signalled, sent to, waited.

use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;

use super::child::{self, Exit};
use super::ready::{self, start_ready_listener, wait_ready};
use super::signal::Signal;
use super::spawn::prepare;
use super::supervise::{Policy, Restart, Unit};
use super::Shared;
use crate::error::{Error, Result};

/// A child process, GoFrame's `Process`: built by [`Manager::new_process`](crate::Manager::new_process)
/// or [`Manager::new_command`](crate::Manager::new_command), configured, then started.
///
/// Once started it names the child across restarts: [`pid`](Self::pid),
/// [`send`](Self::send), [`signal`](Self::signal) and [`ready`](Self::ready) act on the
/// current incarnation, [`wait`](Self::wait) on the child's end for good. Cheap to clone
/// once started; every clone names the same child.
#[derive(Debug)]
pub struct Process {
    manager: Weak<Shared>,
    spec: Option<Box<Spec>>,
    unit: Option<Arc<Unit>>,
}

/// What a child is to be, until it starts.
#[derive(Debug)]
struct Spec {
    command: Command,
    die_with_parent: bool,
    name: Option<String>,
    policy: Policy,
}

impl Clone for Process {
    /// Clones the handle of a started child. A clone of a process not yet started is
    /// another unstarted handle without the command: start the original.
    fn clone(&self) -> Self {
        Process {
            manager: self.manager.clone(),
            spec: None,
            unit: self.unit.clone(),
        }
    }
}

impl Process {
    pub(super) fn unstarted(manager: Weak<Shared>, command: Command) -> Process {
        Process {
            manager,
            spec: Some(Box::new(Spec {
                command,
                die_with_parent: false,
                name: None,
                policy: Policy::default(),
            })),
            unit: None,
        }
    }

    pub(super) fn of(manager: Weak<Shared>, unit: Arc<Unit>) -> Process {
        Process {
            manager,
            spec: None,
            unit: Some(unit),
        }
    }

    /// Changes what the child is to be; after [`start`](Self::start), nothing.
    fn configure(&mut self, what: &str, change: impl FnOnce(&mut Spec)) -> &mut Self {
        match self.spec.as_deref_mut() {
            Some(spec) => change(spec),
            None => tracing::warn!("gproc: Process::{what} called after start; it has no effect"),
        }
        self
    }

    /// Whether the child gets `SIGKILL` when this process (its parent thread) dies, even
    /// by `SIGKILL` (Linux `PR_SET_PDEATHSIG`, set in the child before `exec`). Call
    /// before [`start`](Self::start).
    pub fn die_with_parent(&mut self, enabled: bool) -> &mut Self {
        self.configure("die_with_parent", |s| s.die_with_parent = enabled)
    }

    /// The name the child holds from the moment its endpoint is up, and each restarted
    /// incarnation again, so that [`lookup`](crate::lookup) and a `by_name` client follow
    /// it (it learns it through `GPROC_NAME`). Call before [`start`](Self::start); a name
    /// that is not valid makes `start` fail with [`Error::InvalidName`].
    pub fn name(&mut self, name: impl Into<String>) -> &mut Self {
        let name = name.into();
        self.configure("name", |s| s.name = Some(name))
    }

    /// When the child is started again after it exits: [`Restart::Never`] (the default),
    /// [`Restart::OnFailure`] or [`Restart::Always`]. Call before [`start`](Self::start).
    pub fn restart(&mut self, restart: Restart) -> &mut Self {
        self.configure("restart", |s| s.policy.restart = restart)
    }

    /// Gives up after `limit` restarts within `window`: the exit that would be the next
    /// restart sends [`Event::GaveUp`](crate::Event::GaveUp) instead, and
    /// [`wait`](Self::wait) resolves with its status (Erlang's restart intensity,
    /// systemd's `StartLimitBurst` in `StartLimitIntervalSec`). The default is 5 within 10
    /// seconds; a limit of 0 never restarts. Call before [`start`](Self::start).
    pub fn restart_limit(&mut self, limit: u32, window: Duration) -> &mut Self {
        self.configure("restart_limit", |s| {
            s.policy.limit = limit;
            s.policy.window = window;
        })
    }

    /// Waits `first` before the first restart, then twice as long before each restart in
    /// a row, up to `max`. An incarnation that ran longer than `max` starts the count
    /// again at `first`. The default is 100 ms doubling up to 10 s. Call before
    /// [`start`](Self::start).
    pub fn restart_backoff(&mut self, first: Duration, max: Duration) -> &mut Self {
        self.configure("restart_backoff", |s| {
            s.policy.delay = first;
            s.policy.max_delay = max.max(first);
        })
    }

    /// Starts the child and returns its PID.
    ///
    /// This process's endpoint is bound first, so that the child can tell it when it
    /// listens (see [`ready`](Self::ready)).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the program cannot be started (its message names the program,
    /// its kind is the system's: `NotFound` for a missing one); [`Error::InvalidName`] for
    /// a [name](Self::name) that is not valid; [`Error::NotStarted`] when this handle holds
    /// no command (a clone) or was already started.
    pub async fn start(&mut self) -> Result<u32> {
        let spec = self.spec.take().ok_or(Error::NotStarted)?;
        if let Some(name) = &spec.name {
            if let Err(e) = crate::names::validate(name) {
                self.spec = Some(spec);
                return Err(e);
            }
        }
        if let Err(e) = crate::rpc::up() {
            tracing::warn!(
                "gproc: starting a child without an endpoint; Process::ready will poll: {e}"
            );
        }
        start_ready_listener();
        let Spec {
            mut command,
            die_with_parent,
            name,
            policy,
        } = *spec;
        prepare(&mut command, name.as_deref(), die_with_parent);
        let manager = self.manager.clone();
        let unit =
            crate::rt::run(async move { Unit::launch(command, name, policy, manager) }).await?;
        if let Some(shared) = self.manager.upgrade() {
            shared.lock().push(unit.clone());
        }
        let pid = unit.current().pid;
        self.unit = Some(unit);
        Ok(pid)
    }

    /// The PID of the current incarnation (between a restart's exit and the next start,
    /// the last one's), once started.
    pub fn pid(&self) -> Option<u32> {
        self.unit.as_ref().map(|u| u.current().pid)
    }

    /// Waits until the current incarnation's endpoint is up (it called `gproc::listen`,
    /// `send` or `receive`), so that messages to it cannot fail with `NotListening`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] after `timeout`; [`Error::ProcessExited`] if the incarnation
    /// exits first; [`Error::NotStarted`] before [`start`](Self::start).
    pub async fn ready(&self, timeout: Duration) -> Result<()> {
        let child = self.started()?.current();
        crate::rt::run(async move {
            tokio::time::timeout(timeout, wait_ready(&child))
                .await
                .map_err(|_| Error::Timeout)?
        })
        .await
    }

    /// Sends `data` to the current incarnation's default group, as [`crate::send`] does,
    /// and checks that the PID still names that process (not one that reused it). An
    /// incarnation just started, whose endpoint is not up yet, is waited for (up to
    /// [`Config::connect_timeout`](crate::Config::connect_timeout)), so the first message
    /// to a child, or to a restarted one, is not refused.
    ///
    /// # Errors
    ///
    /// As [`crate::send_group`]; [`Error::NoSuchProcess`] once the incarnation has exited
    /// (while a restart is pending, too).
    pub async fn send(&self, data: impl Into<Bytes>) -> Result<()> {
        let child = self.started()?.current();
        ready::send_to_child(&child, data.into()).await
    }

    /// Sends `signal` to the current incarnation. Its exit is an exit like any other: the
    /// [restart policy](Self::restart) applies (use [`stop`](Self::stop) or
    /// [`kill`](Self::kill) to stop the child for good).
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchProcess`] when it has already exited; [`Error::NotStarted`].
    pub fn signal(&self, signal: Signal) -> Result<()> {
        child::signal_child(&self.started()?.current(), signal)
    }

    /// Stops the child for good: no more restarts, `SIGKILL` to the current incarnation,
    /// and waits until it is reaped. Killing a child that has already exited is `Ok`.
    ///
    /// # Errors
    ///
    /// [`Error::NotStarted`]; [`Error::Io`] if the signal cannot be sent.
    pub async fn kill(&self) -> Result<()> {
        kill(self.started()?).await
    }

    /// Stops the child for good, gently: no more restarts, `SIGTERM` to the current
    /// incarnation, then `SIGKILL` if it still runs after `grace`. Returns its last exit
    /// status.
    ///
    /// # Errors
    ///
    /// [`Error::NotStarted`]; [`Error::Io`] if a signal cannot be sent.
    pub async fn stop(&self, grace: Duration) -> Result<ExitStatus> {
        stop(self.started()?, grace).await
    }

    /// Waits until the child has exited for good, and returns the last exit status: its
    /// only exit without a restart policy; with one, the exit after which it was not
    /// restarted (stopped, the policy said so, or the restart limit was reached). Can be
    /// called any number of times, from any number of handles.
    ///
    /// # Errors
    ///
    /// [`Error::NotStarted`].
    pub async fn wait(&self) -> Result<ExitStatus> {
        wait(self.started()?).await
    }

    /// Takes the current incarnation's standard input, if its command asked for a pipe
    /// (`Stdio::piped()`). Each incarnation has its own pipes.
    pub fn take_stdin(&self) -> Option<ChildStdin> {
        self.unit.as_ref()?.current().stdio().stdin.take()
    }

    /// Takes the current incarnation's standard output, if its command asked for a pipe.
    /// For tokio, `tokio::process::ChildStdout::from_std` makes it asynchronous.
    pub fn take_stdout(&self) -> Option<ChildStdout> {
        self.unit.as_ref()?.current().stdio().stdout.take()
    }

    /// Takes the current incarnation's standard error, if its command asked for a pipe.
    pub fn take_stderr(&self) -> Option<ChildStderr> {
        self.unit.as_ref()?.current().stdio().stderr.take()
    }

    /// Lets the child outlive the [`Manager`](crate::Manager): it is not killed when the
    /// manager is dropped (and goes on being restarted by its policy while this process
    /// lives).
    pub fn detach(&self) {
        if let Some(unit) = &self.unit {
            unit.detached
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    fn started(&self) -> Result<&Arc<Unit>> {
        self.unit.as_ref().ok_or(Error::NotStarted)
    }
}

pub(super) async fn kill(unit: &Unit) -> Result<()> {
    unit.stop_restarting();
    match child::signal_child(&unit.current(), Signal::Kill) {
        Ok(()) | Err(Error::NoSuchProcess(_)) => {}
        Err(e) => return Err(e),
    }
    wait(unit).await.map(drop)
}

pub(super) async fn stop(unit: &Unit, grace: Duration) -> Result<ExitStatus> {
    unit.stop_restarting();
    match child::signal_child(&unit.current(), Signal::Term) {
        Ok(()) | Err(Error::NoSuchProcess(_)) => {}
        Err(e) => return Err(e),
    }
    if let Ok(status) = crate::rt::timeout_at(crate::rt::deadline_after(grace), wait(unit)).await {
        return status;
    }
    tracing::debug!(
        pid = unit.current().pid,
        "gproc: a child still ran {grace:?} after SIGTERM; killing it"
    );
    kill(unit).await?;
    wait(unit).await
}

pub(super) async fn wait(unit: &Unit) -> Result<ExitStatus> {
    match unit.finished().await {
        Exit::Exited(status) => Ok(status),
        _ => Err(Error::Io(std::io::Error::other(format!(
            "process {} exited but its status was collected elsewhere (is SIGCHLD ignored?)",
            unit.current().pid
        )))),
    }
}
