//! The handshake, both sides of it, written once.
//!
//! The connecting side writes a [`Hello`] and waits for the [`Welcome`]; the accepting
//! side checks the hello against the kernel's view of the peer (SO_PEERCRED) and against
//! `/proc` (the start time), asks [`peers`](super::peers) whether this connection is the
//! one to keep, and answers. Both ends then hold a [`Peer`], registered under the token
//! the socket already had in the poller. Nothing here blocks: each step runs when the
//! socket is readable, and a handshake that does not finish in time is dropped.

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::oneshot;

use super::connection::Peer;
use super::poller::Interest;
use super::wire::{self, Hello, Status, Welcome, HELLO_LEN, WELCOME_LEN};
use super::{engine, lock, peers, Source};
use crate::config::settings;
use crate::error::{Error, Result};
use crate::identity::{own_start_ticks, pid, start_ticks};

/// What both sides agreed on: who the peer is.
pub(crate) struct Agreed {
    pub pid: u32,
    pub start_ticks: u64,
    pub max_message: usize,
    pub initiated_here: bool,
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
    token: u64,
    stream: Arc<UnixStream>,
    deadline: Instant,
    side: Side,
    /// What has been read so far.
    got: Mutex<Vec<u8>>,
}

/// Starts the accepting side's handshake on a socket the listener accepted.
pub(super) fn accepted(stream: UnixStream, cred_pid: u32) {
    if let Err(e) = register(stream, Side::Accepting { cred_pid }) {
        tracing::warn!("gproc: cannot take a connection: {e}");
    }
}

/// Starts the connecting side's handshake on a socket connected to `target`: the hello
/// is written at once, and the receiver hears how it went.
pub(super) fn connecting(
    stream: UnixStream,
    target: u32,
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
    register(stream, Side::Connecting { target, done })?;
    Ok(rx)
}

fn register(stream: UnixStream, side: Side) -> std::io::Result<()> {
    let e = engine();
    let token = e.token();
    let pending = Arc::new(Pending {
        token,
        stream: Arc::new(stream),
        deadline: Instant::now() + settings().connect_timeout,
        side,
        got: Mutex::new(Vec::with_capacity(HELLO_LEN)),
    });
    e.set_source(token, Source::Handshake(pending.clone()));
    let interest = Interest {
        read: true,
        write: false,
    };
    if let Err(err) = e.poller.add(&pending.stream, token, interest) {
        e.remove_source(token);
        return Err(err);
    }
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
    pub(super) fn on_ready(self: &Arc<Self>) {
        let mut got = lock(&self.got);
        let mut buf = [0u8; 4096];
        loop {
            match rustix::io::read(&self.stream, &mut buf[..]) {
                Ok(0) => {
                    drop(got);
                    return self.fail(Error::ConnectionLost, "closed during the handshake");
                }
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.len() >= HELLO_LEN.max(WELCOME_LEN) {
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
                };
                let peer = Peer::new(agreed, self.token, self.stream.clone(), leftover);
                peers::accept(peer, answer)
            }
            Err(status) => {
                // Refused either way: whether the peer hears why is its own affair.
                let _ = answer(status);
                Err(status)
            }
        };
        match kept {
            Ok(peer) => {
                peer.start();
                peer.pump();
            }
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
                };
                let peer = Peer::new(agreed, self.token, self.stream.clone(), leftover);
                peers::connected(&peer);
                peer.start();
                peer.pump();
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

    /// Forgets the socket; its descriptor closes with the last reference.
    fn drop_socket(&self) {
        let e = engine();
        if let Some(Source::Handshake(_)) = e.source(self.token) {
            e.poller.delete(&self.stream);
            e.remove_source(self.token);
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Drops the handshake if it is past its deadline.
    pub(super) fn expire(&self, now: Instant) {
        if now >= self.deadline {
            self.fail(Error::Timeout, "the handshake timed out");
        }
    }
}

/// This process's answer to a hello.
pub(super) fn welcome(status: Status) -> Welcome {
    Welcome {
        version: wire::VERSION,
        status,
        pid: pid(),
        start_ticks: own_start_ticks(),
        max_message_size: settings().max_message_size as u64,
    }
}
