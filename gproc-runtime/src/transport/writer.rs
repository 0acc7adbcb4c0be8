//! The writing half of a connection.
//!
//! A sender writes its frame itself, in one `sendmsg`, when nothing waits before it: no
//! hand-over to another thread. What the socket does not take waits in the connection's
//! buffer, flushed by the driver once the socket turns writable. An acknowledgement that
//! this process owes the peer goes out in the same `sendmsg` as the next frame, whatever
//! its kind; with no frame going that way, the driver writes it on its own (see
//! [`super::driver`]).
//!
//! Under load a frame may wait for a moment that is coming anyway, so that many frames
//! share a write (see [`Hold`]).

use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::oneshot;

use super::connection::Peer;
use super::wire::{self, ACK_LEN, LEN_PREFIX, MAX_GROUP_LEN};
use super::{driver, lock};
use crate::error::{Error, Result};

/// Frames at most this long are copied into the buffer; longer payloads are kept as they
/// are and written from their own memory.
const COPY_BELOW: usize = 16 * 1024;
/// Senders wait while this much waits in a connection's buffer.
pub(crate) const OUT_LIMIT: usize = 1 << 20;
/// The most slices one `sendmsg` takes here.
const MAX_SLICES: usize = 64;
/// The largest frame head: length, kind, group length, group.
const MAX_HEAD: usize = LEN_PREFIX + 2 + MAX_GROUP_LEN;

/// Whether a frame may wait in the buffer for a write that is coming anyway.
#[derive(Clone, Copy)]
pub(crate) enum Hold {
    /// Write it now.
    Never,
    /// Let it wait while a driver's pass is open: the tasks that pass woke write their
    /// frames close together, and its end writes them all at once (see
    /// [`super::driver`]). Outside a pass, write it now. A frame never waits for anything
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
    /// Fails every waiting send and drops what was not written.
    pub(super) fn fail_all(&mut self) {
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

    /// The acknowledgement owed to the peer, if any, marked as told.
    fn take_owed(&mut self, peer: &Peer) -> Option<[u8; ACK_LEN]> {
        let delivered = peer.delivered.load(Ordering::Acquire);
        (delivered > self.ack_sent).then(|| {
            self.ack_sent = delivered;
            wire::encode_ack(delivered)
        })
    }

    /// Writes what waits, until done or the socket is full. `Ok(true)` once all is written.
    fn flush(&mut self, peer: &Peer) -> std::io::Result<bool> {
        while self.queued > 0 {
            let mut slices = Vec::with_capacity(self.chunks.len().min(MAX_SLICES) + 1);
            slices.extend(self.chunks.iter().take(MAX_SLICES).map(|c| IoSlice::new(c)));
            if slices.len() < MAX_SLICES {
                slices.push(IoSlice::new(&self.tail));
            }
            let Some(n) = send(peer, &slices)? else {
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
}

/// One `sendmsg`: `Ok(None)` when the socket is full. `MSG_NOSIGNAL`, so that a peer
/// gone meanwhile is an error here and never a `SIGPIPE` for the process.
fn send(peer: &Peer, slices: &[IoSlice<'_>]) -> std::io::Result<Option<usize>> {
    loop {
        let sent = rustix::net::sendmsg(
            &peer.stream,
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

impl Peer {
    /// Writes a message frame for `group`, or leaves it in the buffer for the driver.
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
        let mut head = [0u8; MAX_HEAD];
        let head = wire::message_head(&mut head, group, data.len(), acked);
        let mut out = lock(&self.out);
        if out.closed {
            return Err(Error::ConnectionLost);
        }
        let holding = match hold {
            Hold::Never => false,
            Hold::Batch => driver::pass_open(),
        };
        let ack = out.take_owed(self);
        let waiter = acked.then(|| {
            out.sent_acked += 1;
            let (done, acked) = oneshot::channel();
            let number = out.sent_acked;
            out.waiting.push_back((number, done));
            Ack(acked)
        });
        let parts: [&[u8]; 3] = [ack.as_ref().map_or(&[][..], |a| &a[..]), head, data];
        let mut written = 0;
        if out.queued == 0 && !holding {
            let slices = parts.map(IoSlice::new);
            match send(self, &slices) {
                Ok(n) => written = n.unwrap_or(0),
                Err(e) => {
                    drop(out);
                    self.close(&format!("write failed: {e}"));
                    return Err(Error::ConnectionLost);
                }
            }
        }
        // Keep what the socket did not take, in order.
        for (i, part) in parts.iter().enumerate() {
            let skip = written.min(part.len());
            written -= skip;
            out.push(&part[skip..], (i == 2).then_some(data));
        }
        if holding && out.queued > 0 {
            driver::mark_dirty(self);
            drop(out);
            // The pass that was to write it may have ended meanwhile: then nobody else will.
            if !driver::pass_open() {
                self.flush();
            }
            return Ok(waiter);
        }
        self.after_write(out).map(|()| waiter)
    }

    /// Flushes what waits; asks the driver to watch the socket if it is full.
    fn after_write(&self, mut out: std::sync::MutexGuard<'_, Out>) -> Result<()> {
        if out.queued == 0 {
            return Ok(());
        }
        match out.flush(self) {
            Ok(true) => Ok(()),
            Ok(false) => {
                drop(out);
                if !self.write_wanted.swap(true, Ordering::AcqRel) {
                    self.rearm();
                }
                Ok(())
            }
            Err(e) => {
                drop(out);
                self.close(&format!("write failed: {e}"));
                Err(Error::ConnectionLost)
            }
        }
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
                if out.closed {
                    return Err(Error::ConnectionLost);
                }
                if out.queued == 0 || out.queued + len <= OUT_LIMIT {
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// How many bytes wait to be written to the peer.
    pub(crate) fn backlog(&self) -> usize {
        lock(&self.out).queued
    }

    /// Writes what waits, with the acknowledgement owed if any: called when the socket
    /// turns writable, and at the end of a driver's pass for the frames held for it and
    /// the acknowledgements owed.
    pub(super) fn flush(self: &Arc<Self>) {
        let mut out = lock(&self.out);
        if out.closed {
            return;
        }
        if let Some(ack) = out.take_owed(self) {
            out.push(&ack, None);
        }
        let drained = match out.flush(self) {
            Ok(drained) => drained,
            Err(e) => {
                drop(out);
                self.close(&format!("write failed: {e}"));
                return;
            }
        };
        let below = out.queued <= OUT_LIMIT / 2;
        drop(out);
        if below {
            self.room.notify_waiters();
        }
        if drained == self.write_wanted.load(Ordering::Acquire) {
            self.write_wanted.store(!drained, Ordering::Release);
            self.rearm();
        }
        if below && self.resume_on_drain.swap(false, Ordering::AcqRel) {
            self.resume();
        }
    }

    /// The peer acknowledged everything up to `count`. `false` if it claims more than
    /// was sent: a broken peer.
    pub(super) fn acked(&self, count: u64) -> bool {
        let mut out = lock(&self.out);
        if count > out.sent_acked {
            return false;
        }
        while out.waiting.front().is_some_and(|(n, _)| *n <= count) {
            if let Some((_, done)) = out.waiting.pop_front() {
                let _ = done.send(Ok(()));
            }
        }
        true
    }
}
