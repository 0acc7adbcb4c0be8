//! The background runtime that owns every socket.
//!
//! Endpoints and connections outlive any runtime of the user's: a `#[tokio::test]` drops its
//! runtime at the end of each test, and blocking code has none. So all I/O runs on one
//! current-thread runtime on a thread of its own, and the public futures only wait on
//! channels, which work from any executor.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Handle;

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

/// Runs `fut` on the background runtime and waits for its output from any executor.
pub(crate) async fn run<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match handle().spawn(fut).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("gproc: background task cancelled: {e}"),
    }
}

/// Runs `fut` on the background runtime and blocks this thread until it is done.
pub(crate) fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    futures_executor::block_on(run(fut))
}
