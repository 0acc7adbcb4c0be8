//! The sources the poller watches, by token: connections, handshakes, the listener.
//!
//! What a token names is a [`Source`]: the driver hands it the events and knows nothing
//! more of it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::poller::{Poller, Ready, LISTENER};

/// Something registered in the poller.
pub(crate) trait Source: Send + Sync {
    /// Runs what the events allow: read, write, accept, a handshake's next step.
    fn ready(self: Arc<Self>, ready: Ready);
    /// Called every few milliseconds by the watchdog: a handshake past its deadline is
    /// dropped, an accept that failed is tried again.
    fn tick(self: Arc<Self>, _now: Instant) {}
}

/// The process's poller and what its tokens name.
pub(crate) struct Engine {
    pub poller: Poller,
    sources: Mutex<HashMap<u64, Arc<dyn Source>>>,
    next_token: AtomicU64,
    /// Sources that need ticks (handshakes in progress).
    timed: AtomicUsize,
}

/// The engine, made on first use.
///
/// # Panics
///
/// When the kernel refuses an epoll instance (out of descriptors at start-up).
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine {
        poller: Poller::new().expect("gproc: cannot create an epoll instance"),
        sources: Mutex::new(HashMap::new()),
        next_token: AtomicU64::new(LISTENER + 1),
        timed: AtomicUsize::new(0),
    })
}

impl Engine {
    /// A token no source has.
    pub fn token(&self) -> u64 {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    pub fn source(&self, token: u64) -> Option<Arc<dyn Source>> {
        lock(&self.sources).get(&token).cloned()
    }

    pub fn set_source(&self, token: u64, source: Arc<dyn Source>) {
        lock(&self.sources).insert(token, source);
    }

    pub fn remove_source(&self, token: u64) {
        lock(&self.sources).remove(&token);
    }

    /// Every source, for the watchdog's ticks.
    pub fn sources(&self) -> Vec<Arc<dyn Source>> {
        lock(&self.sources).values().cloned().collect()
    }

    /// Notes that a source needs ticks from now on (`true`) or no longer (`false`).
    pub fn timed(&self, needs: bool) {
        if needs {
            self.timed.fetch_add(1, Ordering::AcqRel);
        } else {
            self.timed.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Whether some source needs ticks.
    pub fn needs_ticks(&self) -> bool {
        self.timed.load(Ordering::Acquire) > 0
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves its data whole.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
