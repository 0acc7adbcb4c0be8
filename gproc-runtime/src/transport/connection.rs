//! One established connection to a peer process, used in both directions.
//!
//! Its reading half ([`In`]) is run by whichever driver finds the socket ready, its
//! writing half ([`Out`]) by the senders themselves. What it reads goes to the [`Sink`]
//! the layer above installed. It closes when the peer closes it or breaks the protocol,
//! and is then forgotten: nothing keeps a descriptor for a dead peer.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{watch, Notify};

use super::engine::{engine, lock, Source};
use super::pass::{self, Flush};
use super::poller::{Interest, Ready};
use super::reader::{Ended, In, Step};
use super::wire::{self, Frame};
use super::writer::{Ack, Hold, Out, MAX_HEAD, OUT_LIMIT};
use crate::error::{Error, Result};

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
    /// Not taken, for this reason, which the sender's one send is told (acknowledged
    /// messages only): the connection goes on.
    Declined(wire::Refused),
    /// The peer broke a rule; its connection is closed, for this reason.
    Refused(String),
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Deliveries under way: a message handed to the sink whose acknowledgement is not
/// counted yet. A receiver may take the message (and its process exit) in between.
static DELIVERING: AtomicUsize = AtomicUsize::new(0);

/// Counts one delivery under way while it lives.
struct Delivering;

impl Delivering {
    fn start() -> Self {
        DELIVERING.fetch_add(1, Ordering::SeqCst);
        Delivering
    }
}

impl Drop for Delivering {
    fn drop(&mut self) {
        DELIVERING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// At exit: waits (up to `limit`) until every message handed to a receiver is counted
/// for its acknowledgement, so that the acknowledgements written next include it.
pub(crate) fn settle_deliveries(limit: std::time::Duration) {
    let until = Instant::now() + limit;
    while DELIVERING.load(Ordering::SeqCst) > 0 && Instant::now() < until {
        std::thread::yield_now();
    }
}

/// Installs the sink every connection delivers to. Only the first call counts.
pub(crate) fn install_sink(sink: Box<dyn Sink>) {
    let _ = SINK.set(sink);
}

/// Who the peer is, as the handshake established.
pub(crate) struct Agreed {
    pub pid: u32,
    pub start_ticks: u64,
    pub max_message: usize,
    /// Whether this process opened the connection.
    pub initiated_here: bool,
    /// Told when the connection closes: the table of peers forgets it.
    pub on_close: fn(&Peer),
}

/// A connection to one peer process.
pub(crate) struct Peer {
    /// The peer's PID, as the kernel reported it for the socket.
    pub pid: u32,
    /// The peer's start time in clock ticks since boot: with the PID, it names one process.
    pub start_ticks: u64,
    /// The largest message the peer accepts.
    pub max_message: usize,
    /// Whether this process opened the connection.
    pub initiated_here: bool,
    on_close: fn(&Peer),
    token: u64,
    stream: Arc<UnixStream>,
    out: Mutex<Out>,
    inn: Mutex<In>,
    /// Acknowledged messages from the peer queued here so far: what we acknowledge.
    delivered: AtomicU64,
    /// Whether this connection is listed for the end of the pass (see [`pass`]).
    dirty: AtomicBool,
    /// Senders waiting for room in the outgoing buffer.
    room: Notify,
    /// A sink refused a frame until the peer reads what waits for it.
    resume_on_drain: AtomicBool,
    /// Another pass of reading is asked for (see [`Peer::pump`]).
    again: AtomicBool,
    /// Reading waits for a sink's room: set by the reader as it stops, for [`Peer::rearm`].
    paused: AtomicBool,
    /// The poller reported the peer's hang-up (or its process is known to have exited):
    /// reading goes on to the end of the stream.
    hung_up: AtomicBool,
    /// No pass has read yet: the first reads to the end of what the socket holds, as the
    /// handshake may have taken the event that told of a hang-up.
    fresh: AtomicBool,
    /// What the poller was last told (`None`: the socket is not in it); serializes
    /// telling it.
    arming: Mutex<Option<Interest>>,
    closed: watch::Sender<bool>,
    /// The peer's uid from the socket's credentials, read when first asked.
    uid: OnceLock<u32>,
}

impl Peer {
    /// The connection on `stream`, registered in the poller under `token` already.
    pub(crate) fn new(
        agreed: Agreed,
        token: u64,
        stream: Arc<UnixStream>,
        read: &[u8],
    ) -> Arc<Peer> {
        Arc::new(Peer {
            pid: agreed.pid,
            start_ticks: agreed.start_ticks,
            max_message: agreed.max_message,
            initiated_here: agreed.initiated_here,
            on_close: agreed.on_close,
            token,
            stream,
            out: Mutex::new(Out::default()),
            inn: Mutex::new(In::new(read)),
            delivered: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
            room: Notify::new(),
            resume_on_drain: AtomicBool::new(false),
            again: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            hung_up: AtomicBool::new(false),
            fresh: AtomicBool::new(true),
            arming: Mutex::new(Some(Interest {
                read: true,
                write: false,
            })),
            closed: watch::channel(false).0,
            uid: OnceLock::new(),
        })
    }

    /// Starts reading: the socket's token now names this connection, and what came with
    /// the handshake is delivered.
    pub(crate) fn start(self: &Arc<Self>) {
        tracing::debug!(
            peer = self.pid,
            uid = self.uid(),
            opened_here = self.initiated_here,
            "gproc: connection open ({})",
            if self.initiated_here {
                "this process connected"
            } else {
                "the peer connected"
            }
        );
        engine().set_source(self.token, self.clone());
        self.rearm();
        self.pump();
    }

    /// Tells the poller what this socket waits for now: reading unless a message waits
    /// for room, writing while something waits to be written. Worked out from the state
    /// itself under one lock, so that two threads rearming at once cannot leave a stale
    /// interest behind. A socket that waits for neither leaves the poller, so that a
    /// hang-up, which the kernel reports whatever the interest, cannot wake a waiting
    /// thread over and over.
    fn rearm(&self) {
        let mut armed = lock(&self.arming);
        if self.is_closed() {
            return;
        }
        // Only readers lock the reading half: one that found it locked by anything else
        // would leave its request for another pass to a thread that makes none.
        let read = !self.paused.load(Ordering::SeqCst);
        let interest = Interest {
            read,
            write: lock(&self.out).queued() > 0,
        };
        if *armed == Some(interest) {
            return;
        }
        let poller = &engine().poller;
        let wanted = interest.read || interest.write;
        let done = match (wanted, armed.is_some()) {
            (true, true) => poller.modify(&*self.stream, self.token, interest),
            (true, false) => poller.add(&*self.stream, self.token, interest),
            (false, true) => {
                poller.delete(&*self.stream);
                Ok(())
            }
            (false, false) => Ok(()),
        };
        match done {
            Ok(()) => *armed = wanted.then_some(interest),
            Err(e) => tracing::debug!(peer = self.pid, "gproc: cannot rearm a connection: {e}"),
        }
    }

    /// The peer's user ID, as the kernel reports it for the socket (`SO_PEERCRED`);
    /// `u32::MAX` (no user) if it cannot be read, which a check of it then refuses.
    pub(crate) fn uid(&self) -> u32 {
        *self.uid.get_or_init(
            || match rustix::net::sockopt::socket_peercred(&*self.stream) {
                Ok(cred) => cred.uid.as_raw(),
                Err(e) => {
                    tracing::warn!(peer = self.pid, "gproc: cannot read a peer's uid: {e}");
                    u32::MAX
                }
            },
        )
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
    /// [`Error::ConnectionLost`], the socket leaves the poller and the tables, and its
    /// descriptor is closed once the last user lets go of it.
    pub(crate) fn close(&self, why: &str) {
        if self.closed.send_replace(true) {
            return;
        }
        tracing::debug!(peer = self.pid, "gproc: connection closed: {why}");
        let e = engine();
        {
            let mut armed = lock(&self.arming);
            if armed.take().is_some() {
                e.poller.delete(&*self.stream);
            }
        }
        e.remove_source(self.token);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        lock(&self.out).fail_all();
        self.room.notify_waiters();
        // The reader may be this very thread (a sink that writes, inside a delivery):
        // then its buffer goes with the connection instead.
        if let Ok(mut inn) = self.inn.try_lock() {
            inn.clear();
        }
        (self.on_close)(self);
    }

    /// Writes a message frame for `group`, or leaves it for the end of the pass.
    ///
    /// With `acked`, the peer counts it and the returned [`Ack`] resolves once it is
    /// queued there; otherwise (RPC traffic, whose reply tells of delivery) nothing is
    /// returned. The caller has checked the group and both size limits.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectionLost`] once the connection is closed.
    pub(crate) fn send_message(
        self: &Arc<Self>,
        group: &str,
        data: &Bytes,
        acked: bool,
        hold: Hold,
    ) -> Result<Option<Ack>> {
        self.send_message_fds(group, data, Vec::new(), acked, hold)
    }

    /// As [`send_message`](Self::send_message), with descriptors: they cross as
    /// `SCM_RIGHTS` and arrive in the peer's [`wire::Message::fds`], in this order.
    ///
    /// They are closed here (dropped) once the write that carries them returned, when the
    /// connection fails before that, and on any error. A peer of an older protocol never
    /// gets here: the handshake refused its version.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyFds`] for more than [`wire::MAX_FDS`] (nothing is written);
    /// [`Error::ConnectionLost`] once the connection is closed.
    pub(crate) fn send_message_fds(
        self: &Arc<Self>,
        group: &str,
        data: &Bytes,
        fds: Vec<OwnedFd>,
        acked: bool,
        hold: Hold,
    ) -> Result<Option<Ack>> {
        if fds.len() > wire::MAX_FDS {
            return Err(Error::TooManyFds {
                count: fds.len(),
                limit: wire::MAX_FDS,
            });
        }
        let mut head = [0u8; MAX_HEAD];
        let head = wire::message_head(&mut head, group, data.len(), acked, fds.len());
        let holding = matches!(hold, Hold::Batch) && pass::pass_open();
        let mut out = lock(&self.out);
        if out.is_closed() {
            return Err(Error::ConnectionLost);
        }
        let owed = self.delivered.load(Ordering::SeqCst);
        let sent = out.message(&self.stream, (head, data), fds, acked, owed, holding);
        let waiter = match sent {
            Ok(waiter) => waiter,
            Err(e) => {
                drop(out);
                self.close(&format!("write failed: {e}"));
                return Err(Error::ConnectionLost);
            }
        };
        let waits = out.queued() > 0;
        drop(out);
        if waits && holding {
            pass::mark_dirty(&self.dirty, || self.clone());
            // The pass that was to write it may have ended meanwhile: then nobody will.
            if !pass::pass_open() {
                self.write_waiting();
            }
        } else if waits {
            self.write_waiting();
        }
        Ok(waiter)
    }

    /// Writes quiet message frames (no acknowledgement) for `group`, one per item of
    /// `data`, in one write as far as the socket takes them: a stream's items ready at
    /// once. The caller has checked the group and both size limits.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectionLost`] once the connection is closed.
    pub(crate) fn send_quiet_batch(self: &Arc<Self>, group: &str, data: &[Bytes]) -> Result<()> {
        let mut out = lock(&self.out);
        if out.is_closed() {
            return Err(Error::ConnectionLost);
        }
        let owed = self.delivered.load(Ordering::SeqCst);
        for item in data {
            let mut head = [0u8; MAX_HEAD];
            let head = wire::message_head(&mut head, group, item.len(), false, 0);
            if let Err(e) = out.message(&self.stream, (head, item), Vec::new(), false, owed, true) {
                drop(out);
                self.close(&format!("write failed: {e}"));
                return Err(Error::ConnectionLost);
            }
        }
        drop(out);
        self.write_waiting();
        Ok(())
    }

    /// Waits while the outgoing buffer is over its limit, so that a sender to a slow peer
    /// waits (backpressure) rather than fill memory. A message larger than the limit
    /// waits for an empty buffer.
    pub(crate) async fn room(&self, len: usize) -> Result<()> {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let out = lock(&self.out);
                if out.is_closed() {
                    return Err(Error::ConnectionLost);
                }
                if out.queued() == 0 || out.queued() + len <= OUT_LIMIT {
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// How many bytes wait to be written to the peer.
    pub(crate) fn backlog(&self) -> usize {
        lock(&self.out).queued()
    }

    /// For a sink that refuses a frame because the peer does not read what this process
    /// writes to it: reading resumes once the outgoing buffer is half empty.
    pub(crate) fn resume_when_drained(&self) {
        self.resume_on_drain.store(true, Ordering::SeqCst);
    }

    /// For a peer known to have exited: reads what it sent (the end of the stream then
    /// closes the connection), and closes at once a connection whose reading waits for
    /// room, as nothing more would be read from it.
    pub(crate) fn wind_up(self: &Arc<Self>, why: &str) {
        self.hung_up.store(true, Ordering::SeqCst);
        self.pump();
        if !self.is_closed() && self.paused.load(Ordering::SeqCst) {
            self.close(why);
        }
    }

    /// Writes what waits and the acknowledgement owed, now.
    pub(crate) fn flush_owed(self: &Arc<Self>) {
        self.write_waiting();
    }

    /// Writes what waits, with the acknowledgement owed if any; watches the socket if it
    /// is full, and lets waiting senders and refused frames on once there is room.
    fn write_waiting(self: &Arc<Self>) {
        let mut out = lock(&self.out);
        if out.is_closed() {
            return;
        }
        out.push_owed(self.delivered.load(Ordering::SeqCst));
        match out.flush(&self.stream) {
            Ok(_) => {}
            Err(e) => {
                drop(out);
                return self.close(&format!("write failed: {e}"));
            }
        };
        let below = out.queued() <= OUT_LIMIT / 2;
        drop(out);
        if below {
            self.room.notify_waiters();
        }
        // Watch for room while something waits; stop once all is written.
        self.rearm();
        if below && self.resume_on_drain.swap(false, Ordering::SeqCst) {
            self.resume();
        }
    }

    /// Reads and delivers what the socket holds.
    ///
    /// One thread reads a connection at a time. A thread that finds another reading (or
    /// finds itself inside a delivery: a sink that writes and so lets waiting frames on)
    /// leaves a request, and the reader makes one more pass before it stops: nothing
    /// waits on the lock, and no resume or event is lost.
    fn pump(self: &Arc<Self>) {
        loop {
            self.again.store(true, Ordering::SeqCst);
            let inn = match self.inn.try_lock() {
                Ok(inn) => inn,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return,
            };
            self.again.store(false, Ordering::SeqCst);
            if !self.read_once(inn) {
                return;
            }
            if !self.again.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    /// One pass of [`pump`](Self::pump); `false` once the connection is closed.
    fn read_once(self: &Arc<Self>, mut inn: std::sync::MutexGuard<'_, In>) -> bool {
        let Some(sink) = SINK.get() else {
            drop(inn);
            self.close("a message arrived before the inbox was installed");
            return false;
        };
        let max = crate::config::settings().max_message_size;
        let mut take = |frame: Frame| match frame {
            Frame::Ack(count) if lock(&self.out).acked(count) => Step::Next,
            Frame::Ack(count) => Step::Close(format!(
                "protocol error: acknowledgement of {count} messages, more than were sent"
            )),
            Frame::Refusal { number, why } => {
                let error = || refusal_error(self.pid, why);
                if lock(&self.out).refused(number, error) {
                    Step::Next
                } else {
                    Step::Close(format!(
                        "protocol error: refusal of message {number}, more than were sent"
                    ))
                }
            }
            Frame::Message(message) => {
                let acked = message.ack_wanted;
                let _delivering = Delivering::start();
                match sink.deliver(self, message) {
                    Delivery::Taken => {
                        if acked {
                            self.delivered.fetch_add(1, Ordering::SeqCst);
                            pass::mark_dirty(&self.dirty, || self.clone());
                        }
                        Step::Next
                    }
                    Delivery::Full(message) => Step::Stall(message),
                    Delivery::Declined(why) if acked => {
                        // Counted with the refusal in front, under the lock every writer
                        // of acknowledgements takes: no acknowledgement counting it can
                        // reach the peer before the refusal does.
                        let mut out = lock(&self.out);
                        let number = self.delivered.load(Ordering::SeqCst) + 1;
                        out.push_refusal(number, why);
                        self.delivered.store(number, Ordering::SeqCst);
                        drop(out);
                        pass::mark_dirty(&self.dirty, || self.clone());
                        Step::Next
                    }
                    Delivery::Declined(why) => {
                        tracing::warn!(peer = self.pid, "gproc: dropped a message: {why:?}");
                        Step::Next
                    }
                    Delivery::Refused(why) => Step::Close(why),
                }
            }
        };
        let to_end = self.hung_up.load(Ordering::SeqCst) || self.fresh.load(Ordering::SeqCst);
        let ended = inn.run(&self.stream, max, to_end, &mut take);
        self.paused.store(inn.stalled(), Ordering::SeqCst);
        if !inn.stalled() {
            // This pass read until the socket had nothing more.
            self.fresh.store(false, Ordering::SeqCst);
        }
        drop(inn);
        if let Ended::Closed(why) = ended {
            self.close(&why);
            return false;
        }
        self.rearm();
        true
    }

    /// Called by a sink that refused a message, once it has room: delivers what waited
    /// and reads on.
    pub(crate) fn resume(self: &Arc<Self>) {
        if self.is_closed() {
            return;
        }
        self.pump();
        // Outside a driver's pass nobody else writes the acknowledgements owed now.
        if !pass::pass_open() {
            pass::flush_dirty();
        }
    }
}

/// What a sender's one send fails with when the peer refused its message.
fn refusal_error(pid: u32, why: wire::Refused) -> Error {
    match why {
        wire::Refused::GroupLimit => Error::GroupLimit {
            pid,
            limit: crate::config::MAX_GROUPS,
        },
        wire::Refused::Other(code) => Error::Protocol {
            pid,
            reason: format!("the message was refused for a reason this build does not know ({code}); update gproc"),
        },
    }
}

impl Source for Peer {
    fn ready(self: Arc<Self>, ready: Ready) {
        if ready.writable {
            self.write_waiting();
        }
        if ready.closed {
            // Before the pump: a last frame and the hang-up may come in one event.
            self.hung_up.store(true, Ordering::SeqCst);
        }
        if ready.readable || ready.closed {
            self.pump();
        }
    }

    fn tick(self: Arc<Self>, _now: Instant) {}
}

impl Flush for Peer {
    fn flush(self: Arc<Self>, acks: bool) -> bool {
        if !acks && self.backlog() == 0 {
            // Only an acknowledgement waits: it stays owed (and listed).
            return false;
        }
        // Cleared before the count of what is owed is read, and both sequentially
        // consistent, as the reader counts and then lists: either it lists this
        // connection again, or this write carries its count.
        self.dirty.store(false, Ordering::SeqCst);
        self.write_waiting();
        true
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
