//! The handshake, both sides of it, written once.
//!
//! The connecting side writes a [`Hello`] and waits for the [`Welcome`]; the accepting
//! side checks the hello against the kernel's view of the peer (SO_PEERCRED) and against
//! `/proc` (the start time), asks the table of peers whether this connection is the one
//! to keep (through the [`Settle`] it was given), and answers. Both ends then hold a
//! [`Peer`], registered under the token the socket already had in the poller. Nothing
//! here blocks: each step runs when the socket is readable, and a handshake that does not
//! finish in time is dropped.

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::oneshot;

use super::connection::{Agreed, Peer};
use super::engine::{engine, lock, Source};
use super::poller::{Interest, Ready};
use super::wire::{self, Hello, Status, Welcome, HELLO_LEN, WELCOME_LEN};
use crate::config::settings;
use crate::error::{Error, Result};
use crate::identity::{own_start_ticks, pid, start_ticks};

/// Writes this process's welcome with a status.
pub(crate) type Answer<'a> = &'a dyn Fn(Status) -> std::io::Result<()>;

/// What the table of peers decides, given to the handshake by whoever starts it.
pub(crate) struct Settle {
    /// Whether an accepted connection is kept. It calls `answer` to write the welcome
    /// before the connection becomes visible to senders, so that the welcome comes first.
    pub accept: fn(Arc<Peer>, Answer<'_>) -> Result<Arc<Peer>, Status>,
    /// A connection this process opened is established.
    pub connected: fn(&Arc<Peer>),
    /// A connection closed.
    pub closed: fn(&Peer),
}

/// How a connection this process opened turned out.
pub(crate) enum Outcome {
    /// It is the connection to the peer.
    Established(Arc<Peer>),
    /// The peer connected to us at the same moment and keeps its own connection: use
    /// that one once it is up.
    Superseded,
}

enum Side {
    /// We accepted; the kernel says the peer is this PID (0 when it cannot tell).
    Accepting { cred_pid: u32 },
    /// We connected to `target`; `done` hears how it went.
    Connecting {
        target: u32,
        done: Mutex<Option<oneshot::Sender<Result<Outcome>>>>,
    },
}

/// A socket whose handshake is in progress.
pub(crate) struct Pending {
    settle: &'static Settle,
    token: u64,
    stream: Arc<UnixStream>,
    deadline: Instant,
    side: Side,
    /// What has been read so far.
    got: Mutex<Vec<u8>>,
    /// The socket has become a connection, or been dropped.
    finished: std::sync::atomic::AtomicBool,
}

/// Starts the accepting side's handshake on a socket the listener accepted.
pub(crate) fn accepted(stream: UnixStream, cred_pid: u32, settle: &'static Settle) {
    if let Err(e) = register(stream, Side::Accepting { cred_pid }, settle) {
        tracing::warn!("gproc: cannot take a connection: {e}");
    }
}

/// Starts the connecting side's handshake on a socket connected to `target`: the hello
/// is written at once, and the receiver hears how it went.
pub(crate) fn connecting(
    stream: UnixStream,
    target: u32,
    settle: &'static Settle,
) -> Result<oneshot::Receiver<Result<Outcome>>> {
    let hello = Hello {
        version: wire::VERSION,
        pid: pid(),
        start_ticks: own_start_ticks(),
        max_message_size: settings().max_message_size as u64,
    };
    write_all_now(&stream, &hello.encode())?;
    let (tx, rx) = oneshot::channel();
    let done = Mutex::new(Some(tx));
    register(stream, Side::Connecting { target, done }, settle)?;
    Ok(rx)
}

fn register(stream: UnixStream, side: Side, settle: &'static Settle) -> std::io::Result<()> {
    let e = engine();
    let token = e.token();
    let pending = Arc::new(Pending {
        settle,
        token,
        stream: Arc::new(stream),
        deadline: Instant::now() + settings().connect_timeout,
        side,
        got: Mutex::new(Vec::with_capacity(HELLO_LEN)),
        finished: std::sync::atomic::AtomicBool::new(false),
    });
    e.set_source(token, pending.clone());
    let interest = Interest {
        read: true,
        write: false,
    };
    if let Err(err) = e.poller.add(&*pending.stream, token, interest) {
        e.remove_source(token);
        return Err(err);
    }
    e.timed(true);
    Ok(())
}

/// Writes a handshake message on a fresh socket, whose buffer always has room for it.
fn write_all_now(stream: &UnixStream, bytes: &[u8]) -> std::io::Result<()> {
    let sent = rustix::net::send(
        stream,
        bytes,
        rustix::net::SendFlags::NOSIGNAL | rustix::net::SendFlags::DONTWAIT,
    )?;
    if sent == bytes.len() {
        Ok(())
    } else {
        Err(std::io::ErrorKind::WriteZero.into())
    }
}

impl Pending {
    /// Runs the next step once the socket is readable.
    fn on_ready(self: &Arc<Self>) {
        let mut got = lock(&self.got);
        let mut buf = [0u8; HELLO_LEN];
        const _: () = assert!(HELLO_LEN == WELCOME_LEN);
        loop {
            // Not a byte past the hello or welcome: frames that follow it may carry
            // descriptors, which a plain read would close; the connection's reader
            // (`recvmsg`) takes them.
            let want = HELLO_LEN - got.len();
            match rustix::io::read(&self.stream, &mut buf[..want]) {
                Ok(0) => {
                    drop(got);
                    return self.fail(Error::ConnectionLost, "closed during the handshake");
                }
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.len() == HELLO_LEN {
                        break;
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => return,
                Err(e) => {
                    drop(got);
                    return self.fail(Error::Io(e.into()), "read failed during the handshake");
                }
            }
        }
        let got = std::mem::take(&mut *got);
        self.finish(&got);
    }

    fn finish(self: &Arc<Self>, got: &[u8]) {
        let (head, leftover) = got.split_at(HELLO_LEN);
        match &self.side {
            Side::Accepting { cred_pid } => self.answer(head, leftover, *cred_pid),
            Side::Connecting { target, .. } => self.welcomed(head, leftover, *target),
        }
    }

    /// The accepting side: checks the hello and answers it. The welcome is written
    /// before the connection becomes visible to senders, so that it comes first.
    fn answer(self: &Arc<Self>, head: &[u8], leftover: &[u8], cred_pid: u32) {
        let hello = Hello::decode(head);
        let checked = match hello {
            Err(_) => Err(Status::BadHello),
            Ok(h) if h.version != wire::VERSION => Err(Status::Version),
            Ok(h) if cred_pid != 0 && h.pid != cred_pid => Err(Status::BadHello),
            Ok(h) if start_ticks(h.pid).is_some_and(|t| t != h.start_ticks) => {
                Err(Status::BadHello)
            }
            Ok(h) => Ok(h),
        };
        let answer = |status| write_all_now(&self.stream, &welcome(status).encode());
        let kept = match checked {
            Ok(h) => {
                let agreed = Agreed {
                    pid: h.pid,
                    start_ticks: h.start_ticks,
                    max_message: usize::try_from(h.max_message_size).unwrap_or(usize::MAX),
                    initiated_here: false,
                    on_close: self.settle.closed,
                };
                let peer = Peer::new(agreed, self.token, self.stream.clone(), leftover);
                self.done();
                (self.settle.accept)(peer, &answer)
            }
            Err(status) => {
                // Refused either way: whether the peer hears why is its own affair.
                let _ = answer(status);
                Err(status)
            }
        };
        match kept {
            Ok(peer) => peer.start(),
            Err(Status::Superseded) => {
                tracing::debug!(
                    peer = cred_pid,
                    "gproc: both sides connected at once; keeping the connection this process opened"
                );
                self.drop_socket();
            }
            Err(status) => {
                tracing::warn!(
                    peer = cred_pid,
                    "gproc: closed a connection: handshake refused ({status:?})"
                );
                self.drop_socket();
            }
        }
    }

    /// The connecting side: reads the welcome.
    fn welcomed(self: &Arc<Self>, head: &[u8], leftover: &[u8], target: u32) {
        let protocol = |reason: String| Error::Protocol {
            pid: target,
            reason,
        };
        let welcome = match Welcome::decode(head) {
            Ok(w) => w,
            Err(e) => return self.fail(protocol(e.to_string()), "bad welcome"),
        };
        let refused = match welcome.status {
            Status::Ok if welcome.pid != target => {
                protocol(format!("its socket answers as PID {}", welcome.pid))
            }
            Status::Ok => {
                let agreed = Agreed {
                    pid: target,
                    start_ticks: welcome.start_ticks,
                    max_message: usize::try_from(welcome.max_message_size).unwrap_or(usize::MAX),
                    initiated_here: true,
                    on_close: self.settle.closed,
                };
                let peer = Peer::new(agreed, self.token, self.stream.clone(), leftover);
                self.done();
                (self.settle.connected)(&peer);
                peer.start();
                return self.report(Ok(Outcome::Established(peer)));
            }
            Status::Superseded => {
                self.drop_socket();
                return self.report(Ok(Outcome::Superseded));
            }
            Status::Denied => Error::PermissionDenied,
            Status::Version => protocol(format!(
                "it speaks protocol version {}, this build speaks {}; upgrade one side",
                welcome.version,
                wire::VERSION
            )),
            Status::BadHello => protocol("it refused our handshake".into()),
        };
        self.fail(refused, "handshake refused");
    }

    fn report(&self, outcome: Result<Outcome>) {
        if let Side::Connecting { done, .. } = &self.side {
            if let Some(done) = lock(done).take() {
                let _ = done.send(outcome);
            }
        }
    }

    fn fail(&self, error: Error, what: &str) {
        match &self.side {
            Side::Accepting { cred_pid } => {
                tracing::warn!(
                    peer = cred_pid,
                    "gproc: closed a connection: {what}: {error}"
                )
            }
            Side::Connecting { target, .. } => {
                tracing::debug!(peer = target, "gproc: connecting failed: {what}: {error}")
            }
        }
        self.drop_socket();
        self.report(Err(error));
    }

    /// The handshake is over: it needs no more ticks.
    fn done(&self) {
        if !self
            .finished
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            engine().timed(false);
        }
    }

    /// Forgets the socket, unless a connection took it over; its descriptor closes with
    /// the last reference.
    fn drop_socket(&self) {
        let e = engine();
        let ours = e
            .source(self.token)
            .is_some_and(|s| std::ptr::addr_eq(Arc::as_ptr(&s), self as *const Pending));
        if ours {
            e.poller.delete(&*self.stream);
            e.remove_source(self.token);
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
        }
        self.done();
    }
}

impl Source for Pending {
    fn ready(self: Arc<Self>, _ready: Ready) {
        self.on_ready();
    }

    /// Drops the handshake if it is past its deadline.
    fn tick(self: Arc<Self>, now: Instant) {
        if now >= self.deadline && !self.finished.load(std::sync::atomic::Ordering::Acquire) {
            self.fail(Error::Timeout, "the handshake timed out");
        }
    }
}

/// This process's answer to a hello.
pub(crate) fn welcome(status: Status) -> Welcome {
    Welcome {
        version: wire::VERSION,
        status,
        pid: pid(),
        start_ticks: own_start_ticks(),
        max_message_size: settings().max_message_size as u64,
    }
}
