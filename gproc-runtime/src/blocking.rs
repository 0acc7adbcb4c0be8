//! The API for code without an async runtime.
//!
//! Each function runs its async counterpart with [`block_on`] on the calling thread. While
//! it waits, that thread reads gproc's sockets itself: a message or an acknowledgement
//! costs no hop to another thread. Do not call these from inside an async task: use the
//! async functions there.
//!
//! ```no_run
//! fn main() -> Result<(), gproc::Error> {
//!     gproc::blocking::listen()?;
//!     let msg = gproc::blocking::receive()?;
//!     gproc::blocking::send(msg.sender_pid, "pong")?;
//!     Ok(())
//! }
//! ```

use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};

use crate::error::Result;
use crate::inbox::Msg;
use crate::transport::{driver, pass};

/// Runs a future to completion on this thread, with no runtime.
///
/// Any gproc future works: sends, receives, typed calls, the manager. While the future
/// waits, this thread waits on gproc's sockets and reads them itself, so replies wake it
/// with no other thread in between. Timers (deadlines) run on gproc's background thread.
///
/// ```no_run
/// let pid = 1234;
/// gproc::blocking::block_on(async {
///     gproc::send(pid, "hello").await?;
///     gproc::receive().await
/// })?;
/// # Ok::<(), gproc::Error>(())
/// ```
///
/// # Panics
///
/// When the kernel refuses an eventfd (out of descriptors), and as `fut` panics.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let parker = parker();
    let waker = Waker::from(parker.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    let _inside = driver::enter_blocking();
    let mut pass: Option<pass::Pass> = None;
    let out = loop {
        let polled = fut.as_mut().poll(&mut cx);
        if let Poll::Ready(out) = polled {
            // Done: what waits is written, but an acknowledgement owed for what this
            // call received waits for the caller's next call, likely a reply to carry it.
            if let Some(pass) = pass.take() {
                pass.end_deferring_acks();
            }
            break out;
        }
        // The future had its turn to answer with a frame of its own: the pass's end
        // writes the acknowledgements still owed and the frames held.
        drop(pass.take());
        pass::flush_dirty();
        pass = parker.park();
    };
    driver::stop_leading(parker.id());
    out
}

thread_local! {
    static PARKER: Arc<Parker> = Arc::new(Parker::new());
}

fn parker() -> Arc<Parker> {
    PARKER.with(Arc::clone)
}

const IDLE: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;

/// A thread's way to sleep until woken: an eventfd, so that the leading thread can wait
/// on it and on the poller at once.
struct Parker {
    fd: OwnedFd,
    state: AtomicU8,
}

impl Parker {
    fn new() -> Self {
        Parker {
            fd: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .expect("gproc: cannot create an eventfd"),
            state: AtomicU8::new(IDLE),
        }
    }

    fn notify(&self) {
        if self.state.swap(NOTIFIED, Ordering::AcqRel) == PARKED {
            let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
        }
    }

    /// This thread's id among blocking threads.
    fn id(&self) -> usize {
        self as *const Parker as usize
    }

    /// Sleeps until notified; the leading thread also wakes for ready sockets, and
    /// drives: then the pass it opened is returned, to be closed once the future was
    /// polled.
    fn park(self: &Arc<Self>) -> Option<pass::Pass> {
        if self
            .state
            .compare_exchange(IDLE, PARKED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Notified already.
            self.state.store(IDLE, Ordering::Release);
            return None;
        }
        let leading = driver::lead(self.id());
        let poller = crate::transport::engine::engine().poller.fd();
        let mut fds = [
            PollFd::from_borrowed_fd(self.fd.as_fd(), PollFlags::IN),
            PollFd::from_borrowed_fd(poller, PollFlags::IN),
        ];
        let fds = if leading { &mut fds[..] } else { &mut fds[..1] };
        loop {
            match poll(fds, None) {
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    tracing::warn!("gproc: poll failed while blocking: {e}");
                    break;
                }
            }
        }
        let woken = fds[0].revents().contains(PollFlags::IN);
        let sockets = leading && fds[1].revents().contains(PollFlags::IN);
        if woken && !leading {
            // Another thread read what this one waits for: traffic comes here.
            driver::take_lead(self.id());
        }
        self.state.store(IDLE, Ordering::Release);
        if woken {
            let mut buf = [0u8; 8];
            let _ = rustix::io::read(&self.fd, &mut buf);
        }
        sockets.then(driver::drive_blocking)
    }
}

impl Wake for Parker {
    fn wake(self: Arc<Self>) {
        self.notify();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notify();
    }
}

/// Blocking [`crate::listen`].
///
/// # Errors
///
/// As [`crate::listen`].
pub fn listen() -> Result<()> {
    block_on(crate::listen())
}

/// Blocking [`crate::send`].
///
/// # Errors
///
/// As [`crate::send_group`].
pub fn send(pid: u32, data: impl Into<Bytes>) -> Result<()> {
    block_on(crate::send(pid, data))
}

/// Blocking [`crate::send_group`].
///
/// # Errors
///
/// As [`crate::send_group`].
pub fn send_group(pid: u32, group: &str, data: impl Into<Bytes>) -> Result<()> {
    block_on(crate::send_group(pid, group, data))
}

/// Blocking [`crate::send_fds`].
///
/// ```no_run
/// # fn demo(worker: u32) -> Result<(), Box<dyn std::error::Error>> {
/// let (mine, theirs) = std::os::unix::net::UnixStream::pair()?;
/// gproc::blocking::send_fds(worker, "sockets", "talk to me here", vec![theirs.into()])?;
/// # drop(mine); Ok(()) }
/// ```
///
/// # Errors
///
/// As [`crate::send_fds`].
pub fn send_fds(pid: u32, group: &str, data: impl Into<Bytes>, fds: Vec<OwnedFd>) -> Result<()> {
    block_on(crate::send_fds(pid, group, data, fds))
}

/// Blocking [`crate::receive_fds`].
///
/// ```no_run
/// # fn demo() -> Result<(), gproc::Error> {
/// let (msg, fds) = gproc::blocking::receive_fds("sockets")?;
/// println!("{} descriptors from {}", fds.len(), msg.sender_pid);
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`crate::receive_group`].
pub fn receive_fds(group: &str) -> Result<(Msg, Vec<OwnedFd>)> {
    block_on(crate::receive_fds(group))
}

/// Blocking [`crate::receive`].
///
/// # Errors
///
/// As [`crate::receive_group`].
pub fn receive() -> Result<Msg> {
    block_on(crate::receive())
}

/// Blocking [`crate::receive_group`].
///
/// # Errors
///
/// As [`crate::receive_group`].
pub fn receive_group(group: &str) -> Result<Msg> {
    block_on(crate::receive_group(group))
}

/// Blocking [`crate::register`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # gproc::Config::new().dir(dir.path()).install()?;
/// gproc::blocking::register("indexer")?;
/// assert_eq!(gproc::blocking::lookup("indexer")?, gproc::pid());
/// assert_eq!(gproc::blocking::names()?, vec![("indexer".to_owned(), gproc::pid())]);
/// gproc::blocking::send_group_to("indexer", "jobs", "reindex")?;
/// assert_eq!(gproc::blocking::receive_group("jobs")?.data, "reindex");
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`crate::register`].
pub fn register(name: &str) -> Result<()> {
    block_on(crate::register(name))
}

/// Blocking [`crate::lookup`].
///
/// # Errors
///
/// As [`crate::lookup`].
pub fn lookup(name: &str) -> Result<u32> {
    block_on(crate::lookup(name))
}

/// Blocking [`crate::names`].
///
/// # Errors
///
/// As [`crate::names`].
pub fn names() -> Result<Vec<(String, u32)>> {
    block_on(crate::names())
}

/// Blocking [`crate::send_to`].
///
/// # Errors
///
/// As [`crate::send_group_to`].
pub fn send_to(name: &str, data: impl Into<Bytes>) -> Result<()> {
    block_on(crate::send_to(name, data))
}

/// Blocking [`crate::send_group_to`].
///
/// # Errors
///
/// As [`crate::send_group_to`].
pub fn send_group_to(name: &str, group: &str, data: impl Into<Bytes>) -> Result<()> {
    block_on(crate::send_group_to(name, group, data))
}
