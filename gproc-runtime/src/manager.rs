//! The process manager: spawn children that know their parent, supervise and reap them.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

use crate::config::settings;
use crate::error::{Error, Result};
use crate::identity::{is_alive, is_child, pid, ppid, start_ticks, ENV_DIR, ENV_PPID};

/// The reserved group a child's runtime uses to tell its manager that it listens.
pub(crate) const READY_GROUP: &str = "gproc/ready";

/// A signal to send to a process.
///
/// ```no_run
/// # async fn demo(child: &gproc::Process) -> Result<(), gproc::Error> {
/// child.signal(gproc::Signal::Term)?;
/// let status = child.wait().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// `SIGTERM`: ask to terminate.
    Term,
    /// `SIGKILL`: terminate at once; cannot be caught.
    Kill,
    /// `SIGINT`: interrupt, as Ctrl-C.
    Int,
    /// `SIGHUP`: hang-up; by convention, reload configuration.
    Hup,
    /// `SIGQUIT`: quit with a core dump.
    Quit,
    /// `SIGUSR1`: user-defined.
    Usr1,
    /// `SIGUSR2`: user-defined.
    Usr2,
}

impl Signal {
    fn to_rustix(self) -> rustix::process::Signal {
        use rustix::process::Signal as S;
        match self {
            Signal::Term => S::TERM,
            Signal::Kill => S::KILL,
            Signal::Int => S::INT,
            Signal::Hup => S::HUP,
            Signal::Quit => S::QUIT,
            Signal::Usr1 => S::USR1,
            Signal::Usr2 => S::USR2,
        }
    }
}

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

/// What the manager knows of one started child.
#[derive(Debug)]
struct Child {
    pid: u32,
    start_ticks: Option<u64>,
    status: watch::Sender<Exit>,
    ready: watch::Sender<bool>,
    detached: AtomicBool,
    /// A pidfd of the child: signals sent through it reach this process and no other, even
    /// once its PID is free for reuse. `None` where pidfds are not available.
    pidfd: Option<OwnedFd>,
}

/// Where a child is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Running,
    Exited(ExitStatus),
    /// It exited, but its status was collected by someone else (for example with
    /// `SIGCHLD` ignored, the kernel reaps it).
    Lost,
}

impl Child {
    fn has_exited(&self) -> bool {
        *self.status.borrow() != Exit::Running
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
    /// [`Error::Io`] when the program cannot be started; [`Error::NotStarted`] when this
    /// handle holds no command (a clone) or was already started.
    pub async fn start(&mut self) -> Result<u32> {
        let mut command = self.command.take().ok_or(Error::NotStarted)?;
        if let Err(e) = crate::endpoint::ensure_listening() {
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
        let os_child = crate::rt::run(async move { command.spawn() }).await?;
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
        crate::rt::handle().spawn(reap(os_child, child.clone()));
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

async fn send_to_child(child: &Child, data: Bytes) -> Result<()> {
    if child.has_exited() {
        return Err(Error::NoSuchProcess(child.pid));
    }
    crate::messaging::send_to(child.pid, child.start_ticks, "", data).await
}

fn signal_child(child: &Child, signal: Signal) -> Result<()> {
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

async fn kill_child(child: &Arc<Child>) -> Result<()> {
    match signal_child(child, Signal::Kill) {
        Ok(()) | Err(Error::NoSuchProcess(_)) => {}
        Err(e) => return Err(e),
    }
    wait_child(child).await.map(|_| ())
}

async fn wait_child(child: &Child) -> Result<ExitStatus> {
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

async fn wait_ready(child: &Child) -> Result<()> {
    let mut ready = child.ready.subscribe();
    let mut status = child.status.subscribe();
    // The child may have bound before we were told (or could be told): ask it directly.
    if crate::conn::get(child.pid).await.is_ok() {
        return Ok(());
    }
    let became_ready = tokio::select! {
        r = ready.wait_for(|&r| r) => r.is_ok(),
        _ = status.wait_for(|e| *e != Exit::Running) => false,
    };
    if became_ready {
        return Ok(());
    }
    let status = wait_child(child).await?;
    Err(Error::ProcessExited {
        pid: child.pid,
        status,
    })
}

/// Waits for the child to exit, removes its socket file, then reaps it.
///
/// The socket is removed before the child is reaped: until then its PID cannot be reused,
/// so the file removed is certainly the child's.
async fn reap(mut os_child: std::process::Child, child: Arc<Child>) {
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
    crate::conn::forget(child.pid);
    ready_registry().remove(&child.pid);
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
fn exit_watch(pid: u32) -> Option<AsyncFd<OwnedFd>> {
    let raw = crate::identity::os_pid(pid)?;
    let fd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()).ok()?;
    // SAFETY: the `OwnedFd` is open and owned by the `AsyncFd` for all its life.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.ok()
}

/// Children of every manager in this process, by PID, for routing ready notices.
struct ReadyRegistry(Mutex<HashMap<u32, Weak<Child>>>);

impl ReadyRegistry {
    fn insert(&self, pid: u32, child: Weak<Child>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid, child);
    }

    fn remove(&self, pid: &u32) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(pid);
    }

    fn get(&self, pid: &u32) -> Option<Arc<Child>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(pid)?
            .upgrade()
    }
}

fn ready_registry() -> &'static ReadyRegistry {
    static REGISTRY: OnceLock<ReadyRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| ReadyRegistry(Mutex::new(HashMap::new())))
}

/// Starts, once, the task that turns children's ready notices into [`Process::ready`] wake-ups.
fn start_ready_listener() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        crate::rt::handle().spawn(async {
            while let Ok(msg) = crate::messaging::receive_any(READY_GROUP).await {
                if let Some(child) = ready_registry().get(&msg.sender_pid) {
                    child.ready.send_replace(true);
                }
            }
        });
    });
}

/// Called once this process's endpoint is bound: a managed child tells its parent.
pub(crate) fn announce_ready() {
    if !is_child() {
        return;
    }
    let parent = ppid();
    crate::rt::handle().spawn(async move {
        if let Err(e) = crate::messaging::send_to(parent, None, READY_GROUP, Bytes::new()).await {
            tracing::debug!(
                parent,
                "gproc: could not tell the parent that this child listens: {e}"
            );
        }
    });
}

/// Resolves when the process [`ppid`](crate::ppid) names has exited.
///
/// With [`Process::die_with_parent`] the kernel kills a child when its parent dies; this is
/// the gentler form, for a child that wants to clean up first.
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
    crate::rt::run(async move {
        if let Some(fd) = exit_watch(parent) {
            let _ = fd.readable().await;
            return;
        }
        // No pidfd (old kernel, or the parent is already gone): poll.
        while is_alive(parent) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}
