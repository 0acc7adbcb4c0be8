//! Who reads the sockets: the task or thread that waits, and a watchdog for when none
//! does.
//!
//! [`drive`] takes every ready source from the poller and runs it: accepts, handshakes,
//! reads and delivers, flushes. Any thread may call it; one drives at a time, and one
//! that finds another driving leaves the work to it (the other drains again before it
//! stops), so nothing is lost and nothing waits on a lock.
//!
//! - **A tokio runtime**, of either flavor, gets a driver task the first time it uses
//!   gproc ([`attend`]): it waits for the poller's descriptor to turn readable in that
//!   runtime's own reactor and drives. The messages it reads wake receivers of the same
//!   runtime, on the same thread. After a pass that left acknowledgements owed, it yields
//!   once, so that the tasks it woke can answer first and carry the acknowledgement in
//!   their own frame, then writes the rest.
//! - **The blocking API** drives from the waiting thread itself (`blocking::block_on`).
//! - **The watchdog**, a task on gproc's own background runtime, drives when no one else
//!   does: every [`TICK`] it looks for events that nobody took and for handshakes past
//!   their deadline. Once it found such events, or when nothing happened for a while, it
//!   waits on the poller itself (so an idle process sleeps), until a user's driver is
//!   seen driving again.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::runtime::{Handle, Id};

use super::engine::{engine, lock};
use super::pass::{self, dirty, flush_dirty, user_drives, Pass};
use super::poller::{Ready, BATCH, LISTENER};

/// How often the watchdog looks for work nobody took.
pub(crate) const TICK: Duration = Duration::from_millis(10);
/// After this many ticks without a user's driver driving, the watchdog waits on the
/// poller itself.
const QUIET_TICKS: u32 = 50;

static DRIVING: Mutex<()> = Mutex::new(());
/// Set by a driver that wants a pass: the one driving makes another before it stops.
static REQUESTED: AtomicBool = AtomicBool::new(false);
/// When (milliseconds on the watchdog's clock) a future was last polled outside any
/// runtime and outside `blocking::block_on`: then the watchdog drives for it.
static FOREIGN_AT: AtomicU64 = AtomicU64::new(0);
/// The blocking thread that leads (waits on the poller), by an id of its own; 0 for none.
static LEADER: AtomicUsize = AtomicUsize::new(0);
/// When (on the watchdog's clock) a blocking thread last stopped leading.
static LED_AT: AtomicU64 = AtomicU64::new(0);

/// Runs every ready source; returns how many events were handled here.
pub(crate) fn drive() -> usize {
    let mut handled = 0;
    loop {
        REQUESTED.store(true, Ordering::SeqCst);
        let guard = match DRIVING.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            // The one driving sees the request and makes another pass.
            Err(TryLockError::WouldBlock) => return handled,
        };
        while REQUESTED.swap(false, Ordering::SeqCst) {
            handled += drain();
        }
        drop(guard);
        if !REQUESTED.load(Ordering::SeqCst) {
            return handled;
        }
    }
}

fn drain() -> usize {
    let mut total = 0;
    let mut ready: Vec<Ready> = Vec::with_capacity(BATCH);
    loop {
        ready.clear();
        if let Err(e) = engine().poller.ready_now(&mut ready) {
            tracing::warn!("gproc: waiting on the poller failed: {e}");
            return total;
        }
        total += ready.len();
        for r in &ready {
            dispatch(r);
        }
        if ready.len() < BATCH {
            return total;
        }
    }
}

fn dispatch(r: &Ready) {
    if let Some(source) = engine().source(r.token) {
        source.ready(*r);
    }
}

/// Makes sure that something drives while the caller waits: the driver task of the
/// caller's runtime (started here on first use), the caller's own thread in
/// `blocking::block_on`, or else the watchdog.
pub(crate) fn attend() {
    start_watchdog();
    if BLOCKING.get() {
        return;
    }
    let Ok(runtime) = Handle::try_current() else {
        return foreign();
    };
    let id = runtime.id();
    thread_local! {
        static ATTENDED: std::cell::RefCell<Option<(Id, Arc<AtomicBool>)>> =
            const { std::cell::RefCell::new(None) };
    }
    let cached = ATTENDED.with_borrow(|a| {
        a.as_ref()
            .is_some_and(|(i, alive)| *i == id && alive.load(Ordering::Acquire))
    });
    if cached {
        return;
    }
    if id == crate::rt::handle().id() {
        // gproc's own tasks (the manager's) are the watchdog's: they can wait a tick.
        return;
    }
    match runtime_driver(&runtime, id) {
        Some(alive) => ATTENDED.set(Some((id, alive))),
        None => foreign(),
    }
}

fn foreign() {
    FOREIGN_AT.store(now_ms(), Ordering::Release);
}

fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// Runtimes with a driver task, by id; the flag is cleared when the runtime shuts down.
static RUNTIMES: Mutex<Vec<(Id, Arc<AtomicBool>)>> = Mutex::new(Vec::new());

/// The driver task of `runtime`, started if it has none; `None` for gproc's own runtime
/// (the watchdog's) and for a runtime without an I/O driver.
fn runtime_driver(runtime: &Handle, id: Id) -> Option<Arc<AtomicBool>> {
    let mut runtimes = lock(&RUNTIMES);
    runtimes.retain(|(_, alive)| alive.load(Ordering::Acquire));
    if let Some((_, alive)) = runtimes.iter().find(|(i, _)| *i == id) {
        return Some(alive.clone());
    }
    if !crate::rt::has_drivers(runtime) {
        return None;
    }
    let registration = {
        let _context = runtime.enter();
        register()
    };
    let registration = match registration {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("gproc: cannot watch gproc's sockets from this runtime: {e}");
            return None;
        }
    };
    let alive = Arc::new(AtomicBool::new(true));
    let sentinel = Sentinel(alive.clone());
    runtime.spawn(run_driver(registration, sentinel));
    tracing::debug!("gproc: this runtime now reads gproc's sockets itself");
    runtimes.push((id, alive.clone()));
    Some(alive)
}

/// The poller's descriptor, registered in the current runtime's reactor.
fn register() -> std::io::Result<AsyncFd<OwnedFd>> {
    register_fd(engine().poller.fd().try_clone_to_owned()?)
}

/// `fd`, a duplicate of the poller's descriptor, registered in the current reactor.
fn register_fd(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the descriptor is open and owned by the `AsyncFd` for all its life.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Clears its flag when the driver task is dropped: its runtime shut down.
struct Sentinel(Arc<AtomicBool>);

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn run_driver(registration: AsyncFd<OwnedFd>, _sentinel: Sentinel) {
    loop {
        let mut ready = match registration.readable().await {
            Ok(ready) => ready,
            Err(e) => {
                tracing::debug!("gproc: a runtime's driver stops: {e}");
                return;
            }
        };
        let pass = Pass::open();
        let handled = drive();
        ready.clear_ready();
        if handled > 0 || dirty() {
            // Let the tasks just woken answer first: their frames carry the
            // acknowledgements owed and share writes. The pass's end writes the rest.
            tokio::task::yield_now().await;
        }
        drop(pass);
    }
}

/// Whether a user's driver exists: a runtime's driver task, or a blocking thread that led
/// within the last second (a blocking program between two calls is one).
fn user_driver_exists() -> bool {
    LEADER.load(Ordering::Acquire) != 0
        || now_ms().saturating_sub(LED_AT.load(Ordering::Acquire)) < 1000
        || lock(&RUNTIMES)
            .iter()
            .any(|(_, alive)| alive.load(Ordering::Acquire))
}

fn foreign_recently() -> bool {
    let at = FOREIGN_AT.load(Ordering::Acquire);
    at != 0 && now_ms().saturating_sub(at) < 1000
}

thread_local! {
    /// Whether this thread runs `blocking::block_on`, which drives by itself.
    static BLOCKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as one that drives by itself while it waits (`blocking::block_on`),
/// until the guard is dropped.
pub(crate) fn enter_blocking() -> impl Drop {
    struct Leave(bool);
    impl Drop for Leave {
        fn drop(&mut self) {
            BLOCKING.set(self.0);
        }
    }
    Leave(BLOCKING.replace(true))
}

/// Whether the blocking thread `me` leads: it does if it did, or if none does.
///
/// The thread that leads waits on the poller and reads the sockets itself; the others
/// sleep until woken. A thread woken by another's reading is where traffic goes: it
/// takes the lead ([`take_lead`]), so that the busy thread of a blocking program leads
/// and idle ones (a thread parked on a quiet group) cost nothing.
pub(crate) fn lead(me: usize) -> bool {
    match LEADER.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => true,
        Err(leader) => leader == me,
    }
}

/// Takes the lead from whichever thread has it.
pub(crate) fn take_lead(me: usize) {
    LEADER.store(me, Ordering::Release);
}

/// Gives up the lead, if `me` has it: its call is done.
pub(crate) fn stop_leading(me: usize) {
    if LEADER
        .compare_exchange(me, 0, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        LED_AT.store(now_ms(), Ordering::Release);
    }
}

/// A pass by a blocking thread: closed by the caller after it polled its future.
pub(crate) fn drive_blocking() -> Pass {
    let pass = Pass::open();
    drive();
    pass
}

/// Starts the watchdog, once.
pub(crate) fn start_watchdog() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        crate::rt::handle().spawn(watchdog());
    });
}

async fn watchdog() {
    // Registered in this runtime's reactor only while watching: a registration wakes
    // this thread on every event, even when no task waits on it.
    // Its duplicate of the poller's descriptor is kept while ticking, so that the
    // process's descriptors do not come and go with the watchdog's mode.
    let mut idle_fd: Option<OwnedFd> = None;
    let mut registration: Option<AsyncFd<OwnedFd>> = None;
    let mut watching = true;
    let mut quiet = 0;
    let mut seen = user_drives();
    loop {
        if watching {
            let watch = match registration.take() {
                Some(watch) => Ok(watch),
                None => idle_fd.take().map_or_else(register, register_fd),
            };
            let watch = match watch {
                Ok(watch) => watch,
                Err(e) => {
                    tracing::error!("gproc: the watchdog cannot watch the sockets: {e}");
                    tokio::time::sleep(TICK).await;
                    continue;
                }
            };
            let pending = engine().needs_ticks() || dirty();
            let handled = {
                let ready = watch.readable();
                let bell = if pending { None } else { pass::dirty_bell() };
                let ready = match bell {
                    // Nothing to look after: sleep until an event, or until something
                    // becomes dirty (an acknowledgement owed by a process that makes no
                    // further call).
                    Some(bell) => tokio::select! {
                        ready = ready => Some(ready),
                        () = bell => None,
                    },
                    None => tokio::time::timeout(TICK, ready).await.ok(),
                };
                pass::watchdog_awake();
                match ready {
                    Some(Ok(mut ready)) => {
                        let n = drive();
                        ready.clear_ready();
                        n
                    }
                    _ => 0,
                }
            };
            housekeeping();
            let now = user_drives();
            if now != seen && !foreign_recently() {
                tracing::trace!(
                    handled,
                    "gproc: a user's driver drives again; watchdog ticks"
                );
                watching = false;
                quiet = 0;
                idle_fd = Some(watch.into_inner());
            } else {
                registration = Some(watch);
            }
            seen = now;
        } else {
            tokio::time::sleep(TICK).await;
            // Driving first: what it reads may owe acknowledgements, which housekeeping
            // then writes. Written only at the next tick, each would wait 10 ms (a loop of
            // acknowledged sends stalled so whenever a tick met a message).
            let handled = drive();
            housekeeping();
            let now = user_drives();
            let idle = now == seen;
            quiet = if idle { quiet + 1 } else { 0 };
            seen = now;
            // Events that waited while no user's driver made a pass in a whole tick: that
            // driver is not running (a current-thread runtime between two `block_on`s,
            // a blocking program between two calls). Also watch when nothing happens.
            let stuck = handled > 0 && idle;
            if stuck || quiet >= QUIET_TICKS || foreign_recently() || !user_driver_exists() {
                watching = true;
            }
        }
    }
}

/// Ticks the sources that need it (handshakes past their deadline are dropped, an accept
/// that failed is tried again) and writes what waits for the end of a pass.
fn housekeeping() {
    let now = Instant::now();
    let e = engine();
    if e.needs_ticks() {
        for source in e.sources() {
            source.tick(now);
        }
    } else if let Some(listener) = e.source(LISTENER) {
        listener.tick(now);
    }
    flush_dirty();
}
