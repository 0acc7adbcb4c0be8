//! gproc's own background runtime, and timers that work from any executor.
//!
//! The background runtime is one current-thread runtime on a thread of its own
//! (`gproc-io`). It runs what must not depend on a user's runtime: the transport's
//! watchdog, the manager's reaper, and the spawning of children (so that
//! `PR_SET_PDEATHSIG` follows a thread that lives as long as the process). It is not on
//! the hot path: the transport's module docs say where I/O runs.

use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::runtime::{Handle, Id};
use tokio::time::{Instant, Sleep};

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

/// Whether `runtime` has the I/O and time drivers, asked once per runtime.
///
/// tokio offers no query: registering without them panics, so this catches that panic
/// (whose message the panic hook prints, once for such a runtime).
pub(crate) fn has_drivers(runtime: &Handle) -> bool {
    thread_local! {
        /// The last answer on this thread: the hot path asks about one runtime.
        static LAST: std::cell::Cell<Option<(Id, bool)>> = const { std::cell::Cell::new(None) };
    }
    let id = runtime.id();
    if let Some((last, has)) = LAST.get() {
        if last == id {
            return has;
        }
    }
    let has = ask_drivers(runtime, id);
    LAST.set(Some((id, has)));
    has
}

fn ask_drivers(runtime: &Handle, id: Id) -> bool {
    static KNOWN: Mutex<Vec<(Id, bool)>> = Mutex::new(Vec::new());
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(_, has)) = known.iter().find(|(i, _)| *i == id) {
        return has;
    }
    let has = {
        let _context = runtime.enter();
        std::panic::catch_unwind(|| {
            let _timer = tokio::time::sleep(Duration::ZERO);
            tokio::net::UnixStream::pair().is_ok()
        })
        .unwrap_or(false)
    };
    if !has {
        tracing::debug!("gproc: a runtime lacks the I/O or time driver; not using it");
    }
    // Ids are reused once a runtime is gone: keep the list short and recent.
    if known.len() >= 64 {
        known.remove(0);
    }
    known.push((id, has));
    has
}

/// A timer on the caller's runtime when it has a time driver (no other thread is
/// involved), else on the background runtime, so that it works from any executor.
pub(crate) fn sleep_until(deadline: Instant) -> Sleep {
    match Handle::try_current() {
        Ok(current) if current.id() != handle().id() && has_drivers(&current) => {
            tokio::time::sleep_until(deadline)
        }
        _ => {
            let _context = handle().enter();
            tokio::time::sleep_until(deadline)
        }
    }
}

/// [`sleep_until`] for a duration.
pub(crate) fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Runs `fut` until `deadline`; `Err(())` if the deadline passed first.
pub(crate) async fn timeout_at<F: Future>(deadline: Instant, fut: F) -> Result<F::Output, ()> {
    let timer = sleep_until(deadline);
    tokio::pin!(timer, fut);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(cx) {
            return std::task::Poll::Ready(Ok(out));
        }
        timer.as_mut().poll(cx).map(|()| Err(()))
    })
    .await
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
/// For what must not run on a user's runtime (spawning children), never the hot path.
pub(crate) async fn run<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    run_on(handle(), fut)
        .await
        .expect("gproc's background runtime runs for the life of the process")
}

/// The instant `timeout` from now; a timeout too long to represent (`Duration::MAX`,
/// the usual "no deadline") is thirty years.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
}
