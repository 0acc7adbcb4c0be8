//! Where gproc's I/O runs.
//!
//! Endpoints outlive any runtime of the user's: a `#[tokio::test]` drops its runtime at the
//! end of each test, and blocking code has none. So gproc has a runtime of its own, one
//! current-thread runtime on a thread of its own, and the public futures only wait on
//! channels, which work from any executor.
//!
//! Waking a task on another thread costs more than a whole Unix-socket round trip, though.
//! So connections live on the user's runtime when it can carry them: the first
//! multi-thread runtime (with I/O and time enabled) that calls gproc becomes the *home* of
//! new connections, whose readers then wake the user's tasks on their own threads. When
//! that runtime shuts down, its connections close (in-flight sends fail with
//! `ConnectionLost`), and new ones go to the next such runtime, or to gproc's own.
//! Current-thread runtimes are never adopted: they run only while their owner blocks on
//! them, and an endpoint must answer its peers at all times.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::runtime::{Handle, RuntimeFlavor};

/// The handle of gproc's background runtime, started on first use.
pub(crate) fn handle() -> &'static Handle {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("gproc-io")
            .build()
            .expect("gproc: cannot build the background tokio runtime");
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("gproc-io".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .expect("gproc: cannot start the background thread");
        handle
    })
}

/// A user's runtime carrying gproc's connections.
struct Home {
    handle: Handle,
    /// Cleared when the runtime shuts down (its sentinel task is dropped).
    alive: Arc<AtomicBool>,
}

fn home_slot() -> &'static Mutex<Option<Home>> {
    static HOME: OnceLock<Mutex<Option<Home>>> = OnceLock::new();
    HOME.get_or_init(Default::default)
}

/// Whether a live home is set: the fast path of [`adopt_current`].
static HOME_ALIVE: AtomicBool = AtomicBool::new(false);

/// The runtime new connections go to: the home, or gproc's own.
pub(crate) fn io_home() -> Handle {
    let slot = home_slot().lock().unwrap_or_else(|e| e.into_inner());
    match slot.as_ref() {
        Some(home) if home.alive.load(Ordering::Acquire) => home.handle.clone(),
        _ => handle().clone(),
    }
}

/// Makes the caller's runtime the home of new connections, if there is no live home and
/// it is a multi-thread runtime with I/O and time enabled.
pub(crate) fn adopt_current() {
    if HOME_ALIVE.load(Ordering::Acquire) {
        return;
    }
    thread_local! {
        /// This thread's runtime lacks a driver: do not probe it (and panic inside) again.
        static REJECTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    let Ok(current) = Handle::try_current() else {
        return;
    };
    if current.runtime_flavor() != RuntimeFlavor::MultiThread || REJECTED.get() {
        return;
    }
    if !has_drivers(&current) {
        tracing::debug!("gproc: the caller's runtime lacks the I/O or time driver; not using it");
        REJECTED.set(true);
        return;
    }
    let mut slot = home_slot().lock().unwrap_or_else(|e| e.into_inner());
    if slot
        .as_ref()
        .is_some_and(|h| h.alive.load(Ordering::Acquire))
    {
        // Another home's late sentinel cleared the flag: this one lives.
        HOME_ALIVE.store(true, Ordering::Release);
        return;
    }
    struct Sentinel(Arc<AtomicBool>);
    impl Drop for Sentinel {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Release);
            HOME_ALIVE.store(false, Ordering::Release);
        }
    }
    let alive = Arc::new(AtomicBool::new(true));
    let sentinel = Sentinel(alive.clone());
    current.spawn(async move {
        let _sentinel = sentinel;
        std::future::pending::<()>().await;
    });
    tracing::debug!("gproc: new connections live on the caller's runtime");
    *slot = Some(Home {
        handle: current,
        alive,
    });
    HOME_ALIVE.store(true, Ordering::Release);
}

/// Whether `runtime` has the I/O and time drivers. tokio offers no query: registering
/// without them panics, so this catches that panic (whose message the panic hook prints,
/// once per thread of such a runtime).
fn has_drivers(runtime: &Handle) -> bool {
    let _context = runtime.enter();
    std::panic::catch_unwind(|| {
        let _timer = tokio::time::sleep(std::time::Duration::ZERO);
        tokio::net::UnixStream::pair().is_ok()
    })
    .unwrap_or(false)
}

/// Runs `fut` on `runtime` and waits for its output from any executor; `None` if that
/// runtime shut down first.
pub(crate) async fn run_on<F>(runtime: &Handle, fut: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime.spawn(fut).await {
        Ok(out) => Some(out),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

/// Runs `fut` on the background runtime and waits for its output from any executor.
pub(crate) async fn run<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    run_on(handle(), fut)
        .await
        .expect("gproc's background runtime runs for the life of the process")
}

/// Runs `fut` on the background runtime and blocks this thread until it is done.
pub(crate) fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    futures_executor::block_on(run(fut))
}
