//! The writing half of a connection: frames out, acknowledgements counted both ways.
//!
//! A sender writes its frame itself, in one `sendmsg`, when nothing waits before it: no
//! hand-over to another thread. What the socket does not take waits here, written when
//! the socket turns writable. An acknowledgement that this process owes the peer goes out
//! in the same `sendmsg` as the next frame, whatever its kind; with no frame going that
//! way, at the end of the pass (see [`super::pass`]).
//!
//! A frame's descriptors go as `SCM_RIGHTS` with the `sendmsg` that writes its first
//! byte (or, when that write stops short, an earlier byte of the same write): the reader
//! keeps what arrives in order and has them once the frame is whole. One write carries at
//! most [`MAX_FDS`] of them, so a batch that would carry more ends before the frame that
//! would pass the limit. They stay owned here until the write that carries them returned
//! (the kernel holds its own reference from then on), and close with the connection.

use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::oneshot;

use super::wire::{self, ACK_LEN, MAX_FDS};
use crate::error::{Error, Result};

/// Frames at most this long are copied into the buffer; longer payloads are kept as they
/// are and written from their own memory.
const COPY_BELOW: usize = 16 * 1024;
/// Senders wait while this much waits in a connection's buffer.
pub(crate) const OUT_LIMIT: usize = 1 << 20;
/// The most slices one `sendmsg` takes here.
const MAX_SLICES: usize = 64;
/// The largest frame head: length, kind, group length, descriptor count, group.
pub(crate) const MAX_HEAD: usize = wire::MAX_HEAD_LEN;

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
    /// Bytes handed over so far, written or queued: the stream offset after `tail`.
    end: u64,
    /// The descriptors of queued frames, by the stream offset of each frame's first byte.
    fds: VecDeque<(u64, Vec<OwnedFd>)>,
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
        // Closed here: the peer never got them.
        self.fds.clear();
        for (_, done) in self.waiting.drain(..) {
            let _ = done.send(Err(Error::ConnectionLost));
        }
    }

    fn push(&mut self, mut bytes: &[u8], owned: Option<&Bytes>) {
        if bytes.is_empty() {
            return;
        }
        self.queued += bytes.len();
        self.end += bytes.len() as u64;
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
    /// (`hold`), else queues it; with the owed acknowledgement in front, and `fds` (at
    /// most [`MAX_FDS`], which the head counts) beside it. With `acked`, returns what
    /// resolves once the peer has queued it.
    pub(crate) fn message(
        &mut self,
        stream: &UnixStream,
        frame: (&[u8], &Bytes),
        fds: Vec<OwnedFd>,
        acked: bool,
        owed: u64,
        hold: bool,
    ) -> std::io::Result<Option<Ack>> {
        debug_assert!(fds.len() <= MAX_FDS);
        let (head, data) = frame;
        let ack = self.take_owed(owed);
        let waiter = acked.then(|| {
            self.sent_acked += 1;
            let (done, acked) = oneshot::channel();
            self.waiting.push_back((self.sent_acked, done));
            Ack(acked)
        });
        let parts: [&[u8]; 3] = [ack.as_ref().map_or(&[][..], |a| &a[..]), head, data];
        let starts_at = self.end + parts[0].len() as u64;
        let mut written = 0;
        let mut fds = Some(fds).filter(|fds| !fds.is_empty());
        if self.queued == 0 && !hold {
            let borrowed = borrow(fds.iter().flatten());
            written = send(stream, &parts.map(IoSlice::new), &borrowed)?.unwrap_or(0);
            if written > 0 {
                // The kernel took them with the first byte written.
                fds = None;
            }
            self.end += written as u64;
        }
        // Keep what the socket did not take, in order.
        for (i, part) in parts.iter().enumerate() {
            let skip = written.min(part.len());
            written -= skip;
            self.push(&part[skip..], (i == 2).then_some(data));
        }
        if let Some(fds) = fds {
            self.fds.push_back((starts_at, fds));
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
            let (carried, upto) = self.fds_for(slices.iter().map(|s| s.len()).sum());
            if let Some(upto) = upto {
                slices = self.prefix(upto);
            }
            let borrowed = borrow(self.fds.iter().take(carried).flat_map(|(_, fds)| fds));
            let Some(n) = send(stream, &slices, &borrowed)? else {
                return Ok(false);
            };
            drop(borrowed);
            if n > 0 {
                self.fds.drain(..carried);
            }
            self.advance(n);
        }
        Ok(true)
    }

    /// For a write of `len` bytes from the first one queued: how many of the queued
    /// frames' descriptor lists it carries (those of the frames starting in it, up to
    /// [`MAX_FDS`] descriptors), and where it must end if a frame that starts in it
    /// would pass that limit.
    fn fds_for(&self, len: usize) -> (usize, Option<usize>) {
        let first = self.end - self.queued as u64;
        let (mut lists, mut count) = (0, 0);
        for (at, fds) in &self.fds {
            if *at >= first + len as u64 {
                break;
            }
            if count + fds.len() > MAX_FDS {
                // Never at `first`: the first list alone is within the limit.
                return (lists, Some((at - first) as usize));
            }
            count += fds.len();
            lists += 1;
        }
        (lists, None)
    }

    /// Slices of the first `len` bytes queued (fewer than [`MAX_SLICES`] pieces: `len`
    /// ends within those `flush` takes).
    fn prefix(&self, mut len: usize) -> Vec<IoSlice<'_>> {
        let mut slices = Vec::new();
        for piece in self.chunks.iter().map(|c| &c[..]).chain([&self.tail[..]]) {
            if len == 0 {
                break;
            }
            let take = piece.len().min(len);
            slices.push(IoSlice::new(&piece[..take]));
            len -= take;
        }
        slices
    }

    /// Descriptors waiting to be written, for tests.
    #[cfg(test)]
    fn fds_waiting(&self) -> usize {
        self.fds.iter().map(|(_, fds)| fds.len()).sum()
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

fn borrow<'a>(fds: impl Iterator<Item = &'a OwnedFd>) -> Vec<BorrowedFd<'a>> {
    fds.map(AsFd::as_fd).collect()
}

/// One `sendmsg`, with `fds` as `SCM_RIGHTS` unless empty: `Ok(None)` when the socket is
/// full (then the peer got none of them). `MSG_NOSIGNAL`, so that a peer gone meanwhile
/// is an error here and never a `SIGPIPE` for the process.
fn send(
    stream: &UnixStream,
    slices: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<Option<usize>> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = if fds.is_empty() {
        rustix::net::SendAncillaryBuffer::default()
    } else {
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        let pushed = control.push(rustix::net::SendAncillaryMessage::ScmRights(fds));
        debug_assert!(pushed, "room for {MAX_FDS} descriptors");
        control
    };
    loop {
        let sent = rustix::net::sendmsg(
            stream,
            slices,
            &mut control,
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::transport::reader::{Ended, In, Step};
    use crate::transport::wire::Frame;

    fn devnull(n: usize) -> Vec<OwnedFd> {
        let file = std::fs::File::open("/dev/null").unwrap();
        (0..n).map(|_| file.try_clone().unwrap().into()).collect()
    }

    /// Queues (`hold`) or writes a message of `fds.len()` descriptors to `group`.
    fn message(out: &mut Out, stream: &UnixStream, group: &str, fds: Vec<OwnedFd>, hold: bool) {
        let mut head = [0u8; MAX_HEAD];
        let data = Bytes::from_static(b"data");
        let head = wire::message_head(&mut head, group, data.len(), false, fds.len());
        out.message(stream, (head, &data), fds, false, 0, hold)
            .unwrap();
    }

    /// Everything `theirs` holds, as (group, descriptors) per message.
    fn read_all(theirs: &UnixStream) -> Vec<(String, Vec<OwnedFd>)> {
        let mut got = Vec::new();
        let mut take = |frame: Frame| match frame {
            Frame::Message(m) => {
                got.push((m.group, m.fds));
                Step::Next
            }
            other => panic!("{other:?}"),
        };
        let ended = In::new(&[]).run(theirs, 1024, false, &mut take);
        assert!(matches!(ended, Ended::Waiting));
        got
    }

    #[test]
    fn descriptors_cross_with_their_frame_and_close_here_once_written() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        theirs.set_nonblocking(true).unwrap();
        let (mut pipe_in, pipe_out) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut out = Out::default();
        message(&mut out, &ours, "a", Vec::new(), false);
        message(&mut out, &ours, "b", vec![pipe_out.into()], false);
        assert_eq!((out.queued(), out.fds_waiting()), (0, 0));
        let mut got = read_all(&theirs);
        assert_eq!(got.len(), 2);
        assert!(got[0].1.is_empty());
        let (group, fds) = got.pop().unwrap();
        assert_eq!((group.as_str(), fds.len()), ("b", 1));
        let mut end = std::os::unix::net::UnixStream::from(fds.into_iter().next().unwrap());
        end.write_all(b"through").unwrap();
        drop(end);
        // The sender's own copy was closed once written: the other end sees the end.
        let mut seen = Vec::new();
        pipe_in.read_to_end(&mut seen).unwrap();
        assert_eq!(seen, b"through");
    }

    #[test]
    fn a_batch_over_the_limit_is_split_before_the_frame_that_passes_it() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        theirs.set_nonblocking(true).unwrap();
        let mut out = Out::default();
        message(&mut out, &ours, "plain", Vec::new(), true);
        message(&mut out, &ours, "first", devnull(200), true);
        message(&mut out, &ours, "plain", Vec::new(), true);
        message(&mut out, &ours, "second", devnull(53), true);
        message(&mut out, &ours, "third", devnull(1), true);
        assert_eq!(out.fds_waiting(), 254);
        // "first" and "second" fit one write (253); it ends where "third" starts.
        let frame = |group: &str| LEN_PREFIX_OF_FDS + group.len() + 4;
        const LEN_PREFIX_OF_FDS: usize = wire::LEN_PREFIX + 3;
        let plain = wire::LEN_PREFIX + 2 + "plain".len() + 4;
        let third_at = plain + frame("first") + plain + frame("second");
        assert_eq!(out.fds_for(out.queued()), (2, Some(third_at)));
        assert_eq!(out.fds_for(plain), (0, None));
        assert_eq!(out.fds_for(plain + 1), (1, None));
        assert!(out.flush(&ours).unwrap());
        assert_eq!((out.queued(), out.fds_waiting()), (0, 0));
        let got = read_all(&theirs);
        let counts: Vec<_> = got.iter().map(|(g, f)| (g.as_str(), f.len())).collect();
        assert_eq!(
            counts,
            [
                ("plain", 0),
                ("first", 200),
                ("plain", 0),
                ("second", 53),
                ("third", 1)
            ]
        );
    }

    #[test]
    fn a_failed_connection_closes_the_descriptors_it_held() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let (mut pipe_in, pipe_out) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut out = Out::default();
        message(&mut out, &ours, "held", vec![pipe_out.into()], true);
        assert_eq!(out.fds_waiting(), 1);
        out.fail_all();
        assert_eq!(out.fds_waiting(), 0);
        let mut seen = Vec::new();
        pipe_in.read_to_end(&mut seen).unwrap();
        assert!(seen.is_empty());
        drop(theirs);
    }
}
