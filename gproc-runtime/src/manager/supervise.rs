//! Supervision: a child's incarnations one after another, restarted by policy, within a
//! limit, after a growing delay.

use std::collections::VecDeque;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::child::{reap, Child, Exit};
use super::events::Event;
use super::spawn::spawn;
use super::Shared;
use crate::error::Result;

/// When a child that exited is started again (systemd's `Restart=`).
///
/// A child stopped with [`Process::kill`](crate::Process::kill) or
/// [`Process::stop`](crate::Process::stop), or killed when its manager is dropped, is not
/// restarted whatever its policy; a signal sent with
/// [`Process::signal`](crate::Process::signal) is an exit like any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Restart {
    /// Never: the first exit is the last (the default).
    #[default]
    Never,
    /// When it exits with a code other than 0 or is killed by a signal.
    OnFailure,
    /// Whenever it exits, even with code 0.
    Always,
}

/// How a child is restarted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Policy {
    pub(super) restart: Restart,
    /// At most `limit` restarts within `window`: the next exit gives up.
    pub(super) limit: u32,
    pub(super) window: Duration,
    /// The first delay, doubled at each restart in a row, up to `max_delay`.
    pub(super) delay: Duration,
    pub(super) max_delay: Duration,
}

/// The restart limit when none is set: 5 restarts within 10 s, as systemd's default
/// `StartLimitBurst` and `StartLimitIntervalSec`.
pub(super) const DEFAULT_LIMIT: (u32, Duration) = (5, Duration::from_secs(10));
/// The backoff when none is set: 100 ms (systemd's `RestartSec`), doubling up to 10 s.
pub(super) const DEFAULT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(10));

impl Default for Policy {
    fn default() -> Self {
        Policy {
            restart: Restart::Never,
            limit: DEFAULT_LIMIT.0,
            window: DEFAULT_LIMIT.1,
            delay: DEFAULT_BACKOFF.0,
            max_delay: DEFAULT_BACKOFF.1,
        }
    }
}

impl Policy {
    fn restarts_after(&self, status: ExitStatus) -> bool {
        match self.restart {
            Restart::Never => false,
            Restart::OnFailure => !status.success(),
            Restart::Always => true,
        }
    }

    /// The delay before the restart that follows `streak` restarts in a row.
    fn backoff(&self, streak: u32) -> Duration {
        let factor = 1u32.checked_shl(streak.min(31)).unwrap_or(u32::MAX);
        self.delay
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }
}

/// A supervised child: its command, its current incarnation, and how it ends.
#[derive(Debug)]
pub(super) struct Unit {
    pub(super) name: Option<String>,
    policy: Policy,
    command: Mutex<Command>,
    current: Mutex<Arc<Child>>,
    /// `Running` until the child has exited for good.
    finished: watch::Sender<Exit>,
    /// Set by `kill`, `stop` and the manager's drop: no more restarts.
    stopping: AtomicBool,
    stopped: Notify,
    pub(super) detached: AtomicBool,
    restarts: AtomicU32,
    manager: Weak<Shared>,
}

impl Unit {
    /// Starts the first incarnation of `command` and the task that supervises it. Call on
    /// the background runtime (see [`spawn`]).
    pub(super) fn launch(
        mut command: Command,
        name: Option<String>,
        policy: Policy,
        manager: Weak<Shared>,
    ) -> Result<Arc<Unit>> {
        let (child, os_child) = spawn(&mut command)?;
        let unit = Arc::new(Unit {
            name,
            policy,
            command: Mutex::new(command),
            current: Mutex::new(child.clone()),
            finished: watch::channel(Exit::Running).0,
            stopping: AtomicBool::new(false),
            stopped: Notify::new(),
            detached: AtomicBool::new(false),
            restarts: AtomicU32::new(0),
            manager,
        });
        unit.emit(Event::Started {
            pid: child.pid,
            name: unit.name.clone(),
        });
        tokio::spawn(supervise(unit.clone(), os_child));
        Ok(unit)
    }

    /// The incarnation running now, or the last one.
    pub(super) fn current(&self) -> Arc<Child> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// No more restarts: the incarnation running now is the last.
    pub(super) fn stop_restarting(&self) {
        // SeqCst: the supervisor stores the new incarnation, then reads this flag; `kill`
        // stores this flag, then reads the incarnation. One of them sees the other's store.
        self.stopping.store(true, Ordering::SeqCst);
        self.stopped.notify_one();
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Waits until the child has exited for good.
    pub(super) async fn finished(&self) -> Exit {
        let mut rx = self.finished.subscribe();
        // The sender lives in `self`, which outlives this borrow: `wait_for` cannot fail.
        let exit = rx.wait_for(|e| *e != Exit::Running).await.map(|e| *e);
        exit.unwrap_or(Exit::Lost)
    }

    fn emit(&self, event: Event) {
        if let Some(manager) = self.manager.upgrade() {
            manager.hub.emit(event);
        }
    }

    fn finish(&self, exit: Exit) {
        self.finished.send_replace(exit);
    }
}

/// Reaps each incarnation and starts the next while the policy says so.
async fn supervise(unit: Arc<Unit>, mut os_child: std::process::Child) {
    let policy = unit.policy;
    // When the restarts within the window happened, oldest first.
    let mut recent: VecDeque<Instant> = VecDeque::new();
    // Restarts in a row, for the backoff: back to 0 after an incarnation that ran longer
    // than the longest delay.
    let mut streak = 0u32;
    loop {
        let child = unit.current();
        let born = Instant::now();
        let exit = reap(os_child, &child).await;
        let Exit::Exited(status) = exit else {
            tracing::warn!(
                pid = child.pid,
                "gproc: a child's exit status was collected elsewhere (is SIGCHLD ignored?); \
                 it is not restarted"
            );
            return unit.finish(exit);
        };
        unit.emit(Event::Exited {
            pid: child.pid,
            status,
        });
        if unit.is_stopping() || !policy.restarts_after(status) {
            return unit.finish(exit);
        }
        if born.elapsed() > policy.max_delay {
            streak = 0;
        }
        // Start again, after the backoff, within the limit; a start that fails counts.
        os_child = loop {
            let now = Instant::now();
            while recent
                .front()
                .is_some_and(|&t| now.duration_since(t) >= policy.window)
            {
                recent.pop_front();
            }
            if recent.len() >= policy.limit as usize {
                let restarts = unit.restarts.load(Ordering::Relaxed);
                tracing::warn!(
                    pid = child.pid,
                    restarts,
                    "gproc: a child exited {} times within {:?}; not restarting it again",
                    recent.len() + 1,
                    policy.window
                );
                unit.emit(Event::GaveUp {
                    pid: child.pid,
                    restarts,
                });
                return unit.finish(exit);
            }
            let after = policy.backoff(streak);
            streak = streak.saturating_add(1);
            unit.emit(Event::Restarting {
                pid: child.pid,
                after,
            });
            tokio::select! {
                () = tokio::time::sleep(after) => {}
                () = unit.stopped.notified() => {}
            }
            if unit.is_stopping() {
                return unit.finish(exit);
            }
            recent.push_back(Instant::now());
            unit.restarts.fetch_add(1, Ordering::Relaxed);
            let spawned = spawn(&mut unit.command.lock().unwrap_or_else(|e| e.into_inner()));
            match spawned {
                Ok((next, os_next)) => {
                    *unit.current.lock().unwrap_or_else(|e| e.into_inner()) = next.clone();
                    unit.emit(Event::Started {
                        pid: next.pid,
                        name: unit.name.clone(),
                    });
                    if unit.is_stopping() {
                        // Stopped while it was being started: `kill` may have signalled the
                        // incarnation before, so this one is killed here.
                        let _ = super::child::signal_child(&next, super::Signal::Kill);
                    }
                    break os_next;
                }
                Err(e) => tracing::error!(pid = child.pid, "gproc: cannot restart a child: {e}"),
            }
        };
    }
}
