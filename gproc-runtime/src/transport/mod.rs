//! The transport: one Unix-socket connection per pair of processes, carrying messages,
//! acknowledgements, RPC requests and replies both ways.
//!
//! # The files, in the order data flows through them
//!
//! - [`listener`] binds `<dir>/<pid>.sock` and accepts; [`handshake`] turns an accepted or
//!   a connected socket into a [`Peer`], on either side, with one piece of code;
//!   [`peers`] keeps one connection per peer process and settles the race when both
//!   processes connect to each other at once (the lower PID's connection is kept).
//! - [`reader`] reads frames from a peer and hands each message to the [`Sink`] that the
//!   layer above installed (the inbox); [`writer`] writes frames, carrying the
//!   acknowledgement owed to the peer in the same `writev` as any frame going its way.
//! - [`driver`] decides *who* runs the two: the task or thread that waits.
//!
//! # Where I/O runs, and why
//!
//! Waking a thread costs more than a whole Unix-socket round trip on one CPU, so nothing
//! on the hot path may hand work to another thread. Every socket of the process is
//! registered in one epoll instance ([`poller`]), and that epoll descriptor is itself
//! registered in each tokio runtime that uses gproc, where a small *driver task* waits
//! for it to turn readable and then reads the ready sockets itself. The messages it reads
//! wake the receiving tasks of the same runtime, on the same thread, as a plain tokio
//! socket would. The blocking API does the same on the caller's thread: while it waits,
//! it polls the epoll descriptor and reads the sockets itself.
//!
//! An endpoint must answer its peers even while its process makes no gproc call, or
//! while its only runtime is a current-thread runtime that is not running (a
//! `#[tokio::test]` between tests). So gproc's own background thread keeps watch: every
//! few milliseconds it looks whether events wait that no driver took, and if so it
//! drives them itself and keeps watching until a user's driver comes back. When nothing
//! happens at all it sleeps on the epoll descriptor, so an idle process costs nothing.
//! Writes need no driver: a sender writes its frame itself, and only what the socket
//! does not take at once waits for the driver to flush it when the socket turns writable.

pub(crate) mod connection;
pub(crate) mod driver;
pub(crate) mod handshake;
pub(crate) mod listener;
pub(crate) mod peers;
pub(crate) mod poller;
pub(crate) mod reader;
pub mod wire;
pub(crate) mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

pub(crate) use connection::Peer;
pub(crate) use peers::{forget, peer};
pub(crate) use writer::Hold;

/// Where the transport hands every message it reads: the inbox, installed by the layer
/// above at bring-up, so that the transport imports nothing from it.
pub(crate) trait Sink: Send + Sync {
    /// Takes a message from `peer`.
    fn deliver(&self, peer: &Arc<Peer>, message: wire::Message) -> Delivery;
}

/// What a [`Sink`] did with a message.
pub(crate) enum Delivery {
    /// Taken (queued, or handled).
    Taken,
    /// No room now: the message is given back, and the sink calls [`Peer::resume`] once
    /// there is room. Until then nothing more is read from that peer (backpressure on
    /// that one connection).
    Full(wire::Message),
    /// The peer broke a rule; its connection is closed, for this reason.
    Refused(String),
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Installs the sink every connection delivers to. Only the first call counts.
pub(crate) fn install_sink(sink: Box<dyn Sink>) {
    let _ = SINK.set(sink);
}

pub(crate) fn sink() -> Option<&'static dyn Sink> {
    SINK.get().map(|s| &**s)
}

/// A source registered in the poller.
#[derive(Clone)]
pub(crate) enum Source {
    /// A socket whose handshake is not done yet.
    Handshake(Arc<handshake::Pending>),
    /// An established connection.
    Peer(Arc<Peer>),
}

/// The process's poller and what its tokens name.
pub(crate) struct Engine {
    pub poller: poller::Poller,
    sources: Mutex<HashMap<u64, Source>>,
    next_token: AtomicU64,
}

/// The engine, made on first use.
///
/// # Panics
///
/// When the kernel refuses an epoll instance (out of descriptors at start-up).
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine {
        poller: poller::Poller::new().expect("gproc: cannot create an epoll instance"),
        sources: Mutex::new(HashMap::new()),
        next_token: AtomicU64::new(poller::LISTENER + 1),
    })
}

impl Engine {
    pub fn token(&self) -> u64 {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    pub fn source(&self, token: u64) -> Option<Source> {
        lock(&self.sources).get(&token).cloned()
    }

    pub fn set_source(&self, token: u64, source: Source) {
        lock(&self.sources).insert(token, source);
    }

    pub fn remove_source(&self, token: u64) {
        lock(&self.sources).remove(&token);
    }

    /// The sockets whose handshake is in progress.
    pub fn pending(&self) -> Vec<Arc<handshake::Pending>> {
        lock(&self.sources)
            .values()
            .filter_map(|s| match s {
                Source::Handshake(h) => Some(h.clone()),
                Source::Peer(_) => None,
            })
            .collect()
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves its data whole.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
