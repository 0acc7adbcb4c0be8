//! The reading half of a connection: bytes in, whole frames out.
//!
//! It reads until the kernel has nothing more (the sources are edge-triggered, see
//! [`super::poller`]) and hands each frame to the connection. A message the connection
//! cannot deliver now stays here, and nothing more is read until it is taken: the
//! backpressure of one connection.

use std::os::unix::net::UnixStream;

use bytes::{Bytes, BytesMut};

use super::wire::{self, Frame, Message};

/// Messages at most this long are copied out of the read buffer, so that a small message
/// waiting in a queue does not pin a whole read buffer.
const COPY_BELOW: usize = 4096;
/// How much is read at once: a 64 KiB message and its head fit, and the buffer stays
/// under glibc's mmap threshold (128 KiB), so that a new one is taken from the heap
/// rather than mapped, faulted in page by page and unmapped for each message.
const READ_CHUNK: usize = 64 * 1024 + 1024;

/// What the connection did with a frame.
pub(crate) enum Step {
    /// Go on.
    Next,
    /// It could not take this message now: keep it, and stop reading.
    Stall(Message),
    /// Close the connection, for this reason.
    Close(String),
}

/// How a pass of reading ended.
pub(crate) enum Ended {
    /// The socket is empty, or a message waits for room: wait for the next event.
    Waiting,
    /// The connection is over, for this reason.
    Closed(String),
}

/// What has been read and not yet handed over.
pub(crate) struct In {
    buf: BytesMut,
    /// A message the connection could not take.
    stalled: Option<Message>,
}

impl In {
    pub(crate) fn new(leftover: &[u8]) -> Self {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        buf.extend_from_slice(leftover);
        In { buf, stalled: None }
    }

    pub(crate) fn clear(&mut self) {
        self.buf = BytesMut::new();
        self.stalled = None;
    }

    /// Whether a message waits for room.
    pub(crate) fn stalled(&self) -> bool {
        self.stalled.is_some()
    }

    /// Hands over the message that waited, then what is buffered, then what the socket
    /// holds, frame by frame, until the socket is empty or `take` stalls.
    pub(crate) fn run(
        &mut self,
        stream: &UnixStream,
        max: usize,
        take: &mut impl FnMut(Frame) -> Step,
    ) -> Ended {
        if let Some(message) = self.stalled.take() {
            if let Some(ended) = self.hand(Frame::Message(message), take) {
                return ended;
            }
        }
        loop {
            if let Some(ended) = self.drain(max, take) {
                return ended;
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 8 {
                self.buf.reserve(READ_CHUNK);
            }
            let spare = self.buf.capacity() - self.buf.len();
            match read(stream, &mut self.buf) {
                Ok(0) if self.buf.is_empty() => return Ended::Closed("the peer closed it".into()),
                Ok(0) => {
                    return Ended::Closed("the peer closed it in the middle of a frame".into())
                }
                // A read that does not fill the buffer emptied the socket: hand over what
                // came, and skip the read that would only say so.
                Ok(n) if n < spare => return self.drain(max, take).unwrap_or(Ended::Waiting),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ended::Waiting,
                Err(e) => return Ended::Closed(format!("read failed: {e}")),
            }
        }
    }

    /// Hands over the whole frames in the buffer; `Some` when reading must stop.
    fn drain(&mut self, max: usize, take: &mut impl FnMut(Frame) -> Step) -> Option<Ended> {
        loop {
            let len = match wire::frame_len(&self.buf, max) {
                Ok(Some(len)) if len <= self.buf.len() => len,
                Ok(Some(len)) => {
                    self.buf.reserve(len - self.buf.len());
                    return None;
                }
                Ok(None) => return None,
                Err(e) => return Some(Ended::Closed(format!("protocol error: {e}"))),
            };
            let frame = match wire::decode_frame(self.buf.split_to(len).freeze()) {
                Ok(frame) => frame,
                Err(e) => return Some(Ended::Closed(format!("protocol error: {e}"))),
            };
            if let Some(ended) = self.hand(frame, take) {
                return Some(ended);
            }
        }
    }

    fn hand(&mut self, frame: Frame, take: &mut impl FnMut(Frame) -> Step) -> Option<Ended> {
        let frame = match frame {
            Frame::Message(mut m) if m.data.len() < COPY_BELOW => {
                m.data = Bytes::copy_from_slice(&m.data);
                Frame::Message(m)
            }
            frame => frame,
        };
        match take(frame) {
            Step::Next => None,
            Step::Stall(message) => {
                self.stalled = Some(message);
                Some(Ended::Waiting)
            }
            Step::Close(why) => Some(Ended::Closed(why)),
        }
    }
}

/// Reads into the spare capacity of `buf`.
fn read(stream: &UnixStream, buf: &mut BytesMut) -> std::io::Result<usize> {
    loop {
        let len = buf.len();
        match rustix::io::read(stream, buf.spare_capacity_mut()) {
            Ok((filled, _)) => {
                let n = filled.len();
                // SAFETY: `read` initialised the first `n` bytes of the spare capacity.
                unsafe { buf.set_len(len + n) };
                return Ok(n);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
