//! Driver passes, and the writes that wait for a pass's end.
//!
//! A *pass* runs from a driver's reading of the ready sockets to the moment the tasks it
//! woke have had their turn. What those tasks write meanwhile (replies, answers, the
//! acknowledgements owed for what was read) waits in the connections' buffers, and the
//! pass's end writes each connection's share in one `sendmsg`: many frames, one system
//! call. Outside a pass, a frame is written at once; a frame never waits for anything
//! that may not come.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Notify;

use super::engine::lock;

/// Something with frames or an acknowledgement waiting for the end of a pass.
pub(crate) trait Flush: Send + Sync {
    /// Writes what waits; with `acks` false, an acknowledgement alone stays owed (and
    /// `false` is returned: keep it listed).
    fn flush(self: Arc<Self>, acks: bool) -> bool;
}

static DIRTY: Mutex<Vec<Arc<dyn Flush>>> = Mutex::new(Vec::new());
static DIRTY_ANY: AtomicBool = AtomicBool::new(false);
/// Passes of users' drivers that are open: each writes the dirty ones at its end.
static PASSES: AtomicUsize = AtomicUsize::new(0);
/// Counts the passes of users' drivers (runtime driver tasks, blocking threads): the
/// watchdog's sign that they are awake.
static USER_DRIVES: AtomicU64 = AtomicU64::new(0);

/// Whether the watchdog sleeps with no deadline: then it must be woken for what becomes
/// dirty, or an acknowledgement owed by a process that makes no further call would wait
/// for the next event.
static WATCHDOG_ASLEEP: AtomicBool = AtomicBool::new(false);

fn watchdog_bell() -> &'static Notify {
    static BELL: OnceLock<Notify> = OnceLock::new();
    BELL.get_or_init(Notify::new)
}

/// Notes that `item` has something waiting for the end of a pass. `listed` is its own
/// flag, so that it is listed once.
pub(crate) fn mark_dirty(listed: &AtomicBool, item: impl FnOnce() -> Arc<dyn Flush>) {
    if !listed.swap(true, Ordering::SeqCst) {
        lock(&DIRTY).push(item());
        DIRTY_ANY.store(true, Ordering::SeqCst);
        if WATCHDOG_ASLEEP.load(Ordering::SeqCst) {
            watchdog_bell().notify_one();
        }
    }
}

/// For the watchdog, before it sleeps with no deadline: resolves when something becomes
/// dirty. Returns `None` if something already is.
pub(crate) fn dirty_bell() -> Option<impl std::future::Future<Output = ()>> {
    let bell = watchdog_bell().notified();
    WATCHDOG_ASLEEP.store(true, Ordering::SeqCst);
    if dirty() {
        WATCHDOG_ASLEEP.store(false, Ordering::SeqCst);
        return None;
    }
    Some(async move {
        bell.await;
        WATCHDOG_ASLEEP.store(false, Ordering::SeqCst);
    })
}

/// The watchdog is awake again.
pub(crate) fn watchdog_awake() {
    WATCHDOG_ASLEEP.store(false, Ordering::SeqCst);
}

/// Whether something waits for the end of a pass.
pub(crate) fn dirty() -> bool {
    DIRTY_ANY.load(Ordering::SeqCst)
}

/// Whether a user's driver has a pass open, whose end will write what waits.
pub(crate) fn pass_open() -> bool {
    PASSES.load(Ordering::SeqCst) > 0
}

/// How many passes users' drivers have made.
pub(crate) fn user_drives() -> u64 {
    USER_DRIVES.load(Ordering::Relaxed)
}

/// A pass of a user's driver. Dropped, it writes what waits.
pub(crate) struct Pass(());

impl Pass {
    pub(crate) fn open() -> Pass {
        PASSES.fetch_add(1, Ordering::SeqCst);
        USER_DRIVES.fetch_add(1, Ordering::Relaxed);
        Pass(())
    }
}

impl Pass {
    /// Ends the pass of a blocking thread whose call is done: the held frames are
    /// written, but an acknowledgement alone stays owed, for the frame the caller's next
    /// call is likely to send that way (a reply), or else for the next pass or the
    /// watchdog's tick, whichever comes first.
    pub(crate) fn end_deferring_acks(self) {
        std::mem::forget(self);
        PASSES.fetch_sub(1, Ordering::SeqCst);
        flush(false);
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        PASSES.fetch_sub(1, Ordering::SeqCst);
        flush_dirty();
    }
}

/// Writes everything that waits for the end of a pass. Each item clears its own flag
/// before writing, so that what is added meanwhile lists it again.
pub(crate) fn flush_dirty() {
    flush(true);
}

fn flush(acks: bool) {
    if !dirty() {
        return;
    }
    let items = {
        let mut dirty = lock(&DIRTY);
        DIRTY_ANY.store(false, Ordering::SeqCst);
        std::mem::take(&mut *dirty)
    };
    let kept: Vec<_> = items
        .into_iter()
        .filter(|item| !item.clone().flush(acks))
        .collect();
    if !kept.is_empty() {
        lock(&DIRTY).extend(kept);
        DIRTY_ANY.store(true, Ordering::SeqCst);
    }
}
