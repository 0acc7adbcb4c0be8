//! The writing half of a connection: frames out, acknowledgements counted both ways.
//!
//! A sender writes its frame itself, in one `sendmsg`, when nothing waits before it: no
//! hand-over to another thread. What the socket does not take waits here, written when
//! the socket turns writable. An acknowledgement that this process owes the peer goes out
//! in the same `sendmsg` as the next frame, whatever its kind; with no frame going that
//! way, at the end of the pass (see [`super::pass`]).

use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::oneshot;

use super::wire::{self, ACK_LEN, LEN_PREFIX, MAX_GROUP_LEN};
use crate::error::{Error, Result};

/// Frames at most this long are copied into the buffer; longer payloads are kept as they
/// are and written from their own memory.
const COPY_BELOW: usize = 16 * 1024;
/// Senders wait while this much waits in a connection's buffer.
pub(crate) const OUT_LIMIT: usize = 1 << 20;
/// The most slices one `sendmsg` takes here.
const MAX_SLICES: usize = 64;
/// The largest frame head: length, kind, group length, group.
pub(crate) const MAX_HEAD: usize = LEN_PREFIX + 2 + MAX_GROUP_LEN;

/// Whether a frame may wait in the buffer for a write that is coming anyway.
#[derive(Clone, Copy)]
pub(crate) enum Hold {
    /// Write it now.
    Never,
    /// Let it wait while a driver's pass is open: the tasks that pass woke write their
    /// frames close together, and its end writes them all at once (see
    /// [`super::pass`]). Outside a pass, write it now. A frame never waits for anything
    /// that may not come (such as a reply, which a slow handler may take long to send).
    Batch,
}

/// Resolves once the peer has queued a message, or with [`Error::ConnectionLost`].
pub(crate) struct Ack(oneshot::Receiver<Result<()>>);

impl Future for Ack {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::ConnectionLost)))
    }
}

/// What waits to be written, and the acknowledgements both ways.
#[derive(Default)]
pub(crate) struct Out {
    /// Large payloads and closed-off buffers, in order, before `tail`.
    chunks: VecDeque<Bytes>,
    /// Small frames, copied together.
    tail: BytesMut,
    /// Bytes in `chunks` and `tail`.
    queued: usize,
    /// Acknowledged frames handed over so far.
    sent_acked: u64,
    /// Sends waiting for their acknowledgement, by their number among those frames.
    waiting: VecDeque<(u64, oneshot::Sender<Result<()>>)>,
    /// The count the peer was last told.
    ack_sent: u64,
    closed: bool,
}

impl Out {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes waiting to be written.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Fails every waiting send and drops what was not written.
    pub(crate) fn fail_all(&mut self) {
        self.closed = true;
        self.chunks.clear();
        self.tail.clear();
        self.queued = 0;
        for (_, done) in self.waiting.drain(..) {
            let _ = done.send(Err(Error::ConnectionLost));
        }
    }

    fn push(&mut self, mut bytes: &[u8], owned: Option<&Bytes>) {
        if bytes.is_empty() {
            return;
        }
        self.queued += bytes.len();
        match owned {
            Some(data) if bytes.len() >= COPY_BELOW => {
                if !self.tail.is_empty() {
                    let tail = self.tail.split().freeze();
                    self.chunks.push_back(tail);
                }
                // `bytes` is the unwritten end of `data`.
                self.chunks
                    .push_back(data.slice(data.len() - bytes.len()..));
                bytes = &[];
            }
            _ => {}
        }
        self.tail.extend_from_slice(bytes);
    }

    /// The acknowledgement owed to the peer, `delivered` messages being queued here, if
    /// it was not told yet; marked as told.
    pub(crate) fn take_owed(&mut self, delivered: u64) -> Option<[u8; ACK_LEN]> {
        (delivered > self.ack_sent).then(|| {
            self.ack_sent = delivered;
            wire::encode_ack(delivered)
        })
    }

    /// Queues the owed acknowledgement, if any, behind what waits.
    pub(crate) fn push_owed(&mut self, delivered: u64) {
        if let Some(ack) = self.take_owed(delivered) {
            self.push(&ack, None);
        }
    }

    /// Writes a message frame now if nothing waits before it and it need not wait
    /// (`hold`), else queues it; with the owed acknowledgement in front. With `acked`,
    /// returns what resolves once the peer has queued it.
    pub(crate) fn message(
        &mut self,
        stream: &UnixStream,
        frame: (&[u8], &Bytes),
        acked: bool,
        owed: u64,
        hold: bool,
    ) -> std::io::Result<Option<Ack>> {
        let (head, data) = frame;
        let ack = self.take_owed(owed);
        let waiter = acked.then(|| {
            self.sent_acked += 1;
            let (done, acked) = oneshot::channel();
            self.waiting.push_back((self.sent_acked, done));
            Ack(acked)
        });
        let parts: [&[u8]; 3] = [ack.as_ref().map_or(&[][..], |a| &a[..]), head, data];
        let mut written = 0;
        if self.queued == 0 && !hold {
            written = send(stream, &parts.map(IoSlice::new))?.unwrap_or(0);
        }
        // Keep what the socket did not take, in order.
        for (i, part) in parts.iter().enumerate() {
            let skip = written.min(part.len());
            written -= skip;
            self.push(&part[skip..], (i == 2).then_some(data));
        }
        Ok(waiter)
    }

    /// Writes what waits, until done or the socket is full. `Ok(true)` once all is written.
    pub(crate) fn flush(&mut self, stream: &UnixStream) -> std::io::Result<bool> {
        while self.queued > 0 {
            let mut slices = Vec::with_capacity(self.chunks.len().min(MAX_SLICES) + 1);
            slices.extend(self.chunks.iter().take(MAX_SLICES).map(|c| IoSlice::new(c)));
            if slices.len() < MAX_SLICES {
                slices.push(IoSlice::new(&self.tail));
            }
            let Some(n) = send(stream, &slices)? else {
                return Ok(false);
            };
            self.advance(n);
        }
        Ok(true)
    }

    fn advance(&mut self, mut n: usize) {
        self.queued -= n;
        while n > 0 {
            match self.chunks.front_mut() {
                Some(c) if c.len() <= n => {
                    n -= c.len();
                    self.chunks.pop_front();
                }
                Some(c) => {
                    c.advance(n);
                    n = 0;
                }
                None => {
                    self.tail.advance(n);
                    n = 0;
                }
            }
        }
    }

    /// Queues the refusal of acknowledged message `number` from the peer, behind what
    /// waits: it reaches the peer before any acknowledgement that counts that message.
    pub(crate) fn push_refusal(&mut self, number: u64, why: wire::Refused) {
        self.push(&wire::encode_refusal(number, why), None);
    }

    /// The peer refused message `number`: its send fails with `error`. `false` if no such
    /// message was sent: a broken peer.
    pub(crate) fn refused(&mut self, number: u64, error: impl FnOnce() -> Error) -> bool {
        if number > self.sent_acked {
            return false;
        }
        if let Some(at) = self.waiting.iter().position(|(n, _)| *n == number) {
            if let Some((_, done)) = self.waiting.remove(at) {
                let _ = done.send(Err(error()));
            }
        }
        true
    }

    /// The peer acknowledged everything up to `count`. `false` if it claims more than
    /// was sent: a broken peer.
    pub(crate) fn acked(&mut self, count: u64) -> bool {
        if count > self.sent_acked {
            return false;
        }
        while self.waiting.front().is_some_and(|(n, _)| *n <= count) {
            if let Some((_, done)) = self.waiting.pop_front() {
                let _ = done.send(Ok(()));
            }
        }
        true
    }
}

/// One `sendmsg`: `Ok(None)` when the socket is full. `MSG_NOSIGNAL`, so that a peer
/// gone meanwhile is an error here and never a `SIGPIPE` for the process.
fn send(stream: &UnixStream, slices: &[IoSlice<'_>]) -> std::io::Result<Option<usize>> {
    loop {
        let sent = rustix::net::sendmsg(
            stream,
            slices,
            &mut rustix::net::SendAncillaryBuffer::default(),
            rustix::net::SendFlags::NOSIGNAL | rustix::net::SendFlags::DONTWAIT,
        );
        match sent {
            Ok(0) if slices.iter().any(|s| !s.is_empty()) => {
                return Err(std::io::ErrorKind::WriteZero.into())
            }
            Ok(n) => return Ok(Some(n)),
            Err(rustix::io::Errno::AGAIN) => return Ok(None),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
