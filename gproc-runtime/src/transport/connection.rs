//! One established connection to a peer process, used in both directions.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};

use super::poller::Interest;
use super::reader::In;
use super::writer::Out;
use super::{engine, lock, Source};

/// A connection to one peer process.
///
/// Its reading half is run by whichever driver sees it ready (see [`super::driver`]), its
/// writing half by the senders themselves. It closes when the peer closes it or breaks
/// the protocol, and is then forgotten: nothing keeps a descriptor for a dead peer.
pub(crate) struct Peer {
    /// The peer's PID, as the kernel reported it for the socket.
    pub pid: u32,
    /// The peer's start time in clock ticks since boot: with the PID, it names one process.
    pub start_ticks: u64,
    /// The largest message the peer accepts.
    pub max_message: usize,
    /// Whether this process opened the connection.
    pub initiated_here: bool,
    pub(super) token: u64,
    pub(super) stream: Arc<UnixStream>,
    pub(super) out: Mutex<Out>,
    pub(super) inn: Mutex<In>,
    /// Acknowledged messages from the peer queued here so far: what we acknowledge.
    pub(super) delivered: AtomicU64,
    /// Whether this peer is in the driver's list of peers that owe an acknowledgement.
    pub(super) ack_listed: AtomicBool,
    /// Senders waiting for room in the outgoing buffer.
    pub(super) room: Notify,
    /// Reading waits for room in a queue (or for the peer to read our replies).
    pub(super) read_paused: AtomicBool,
    /// Writing waits for the socket to take more.
    pub(super) write_wanted: AtomicBool,
    /// A sink refused a frame until the peer reads what waits for it (see
    /// [`Peer::resume_when_drained`]).
    pub(super) resume_on_drain: AtomicBool,
    /// Whether the socket is in the poller; serializes telling the poller.
    arming: Mutex<bool>,
    closed: watch::Sender<bool>,
}

impl Peer {
    pub(super) fn new(
        hello: super::handshake::Agreed,
        token: u64,
        stream: Arc<UnixStream>,
        leftover: &[u8],
    ) -> Arc<Peer> {
        Arc::new(Peer {
            pid: hello.pid,
            start_ticks: hello.start_ticks,
            max_message: hello.max_message,
            initiated_here: hello.initiated_here,
            token,
            stream,
            out: Mutex::new(Out::default()),
            inn: Mutex::new(In::new(leftover)),
            delivered: AtomicU64::new(0),
            ack_listed: AtomicBool::new(false),
            room: Notify::new(),
            read_paused: AtomicBool::new(false),
            write_wanted: AtomicBool::new(false),
            resume_on_drain: AtomicBool::new(false),
            arming: Mutex::new(true),
            closed: watch::channel(false).0,
        })
    }

    /// Starts reading: the socket, registered in the poller under its token during the
    /// handshake, now names this connection.
    pub(super) fn start(self: &Arc<Self>) {
        engine().set_source(self.token, Source::Peer(self.clone()));
        self.rearm();
    }

    /// Tells the poller what this socket waits for now, after reading or writing stalled
    /// or resumed.
    ///
    /// A socket that waits for neither leaves the poller, so that a hang-up, which the
    /// kernel reports whatever the interest, cannot keep a waiting thread spinning.
    pub(super) fn rearm(&self) {
        let mut registered = lock(&self.arming);
        if self.is_closed() {
            return;
        }
        let interest = Interest {
            read: !self.read_paused.load(Ordering::Acquire),
            write: self.write_wanted.load(Ordering::Acquire),
        };
        let poller = &engine().poller;
        let done = match (interest.read || interest.write, *registered) {
            (true, true) => poller.modify(&*self.stream, self.token, interest),
            (true, false) => poller.add(&*self.stream, self.token, interest),
            (false, true) => {
                poller.delete(&*self.stream);
                Ok(())
            }
            (false, false) => Ok(()),
        };
        match done {
            Ok(()) => *registered = interest.read || interest.write,
            Err(e) => tracing::debug!(peer = self.pid, "gproc: cannot rearm a connection: {e}"),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves once the connection has closed (the peer exited, or broke the protocol).
    pub(crate) async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|&closed| closed).await;
    }

    /// Closes the connection: every send not yet acknowledged fails with
    /// [`ConnectionLost`](crate::Error::ConnectionLost), the socket leaves the poller and
    /// the tables, and its descriptor is closed once the last user lets go of it.
    pub(crate) fn close(&self, why: &str) {
        if self.closed.send_replace(true) {
            return;
        }
        tracing::debug!(peer = self.pid, "gproc: connection closed: {why}");
        let e = engine();
        {
            let mut registered = lock(&self.arming);
            if *registered {
                e.poller.delete(&*self.stream);
                *registered = false;
            }
        }
        e.remove_source(self.token);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        lock(&self.out).fail_all();
        self.room.notify_waiters();
        lock(&self.inn).clear();
        super::peers::closed(self);
    }

    /// For a sink that refused a frame because the peer does not read what this process
    /// writes to it: reading resumes once the outgoing buffer is half empty.
    pub(crate) fn resume_when_drained(&self) {
        self.resume_on_drain.store(true, Ordering::Release);
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("pid", &self.pid)
            .field("token", &self.token)
            .field("closed", &self.is_closed())
            .finish()
    }
}
