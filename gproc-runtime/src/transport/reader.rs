//! The reading half of a connection: frames in, messages to the sink, acknowledgements
//! to the writer.
//!
//! It runs on whichever driver finds the socket readable, and reads until the socket is
//! empty. A message the sink has no room for stays here, and nothing more is read from
//! this peer until the sink calls [`Peer::resume`]: backpressure on this connection only.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;

use super::connection::Peer;
use super::wire::{self, Frame, Message};
use super::{driver, lock, sink, Delivery};

/// Messages at most this long are copied out of the read buffer, so that a small message
/// waiting in a queue does not pin a whole read buffer.
const COPY_BELOW: usize = 4096;
/// How much is read at once: a 64 KiB message and its head fit, and the buffer stays
/// under glibc's mmap threshold (128 KiB), so that a new one is taken from the heap
/// rather than mapped, faulted in page by page and unmapped for each message.
const READ_CHUNK: usize = 64 * 1024 + 1024;

/// What has been read and not yet delivered.
pub(crate) struct In {
    buf: BytesMut,
    /// A message the sink had no room for.
    stalled: Option<Message>,
}

impl In {
    pub(super) fn new(leftover: &[u8]) -> Self {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        buf.extend_from_slice(leftover);
        In { buf, stalled: None }
    }

    pub(super) fn clear(&mut self) {
        self.buf = BytesMut::new();
        self.stalled = None;
    }
}

/// How a pass of reading ended.
enum Ended {
    /// The socket is empty, or the sink has no room: wait for the next event.
    Waiting,
    /// The connection is over, for this reason.
    Closed(String),
}

impl Peer {
    /// Reads and delivers what the socket holds. Run by the driver when the socket is
    /// readable or hung up.
    pub(super) fn pump(self: &Arc<Self>) {
        let mut inn = lock(&self.inn);
        let ended = inn.run(self);
        let stalled = inn.stalled.is_some();
        drop(inn);
        if let Ended::Closed(why) = ended {
            self.close(&why);
            return;
        }
        if stalled != self.read_paused.load(Ordering::Acquire) {
            self.read_paused.store(stalled, Ordering::Release);
            self.rearm();
        }
    }

    /// Called by a sink that refused a message, once it has room: delivers what waited
    /// and reads on.
    pub(crate) fn resume(self: &Arc<Self>) {
        if !self.is_closed() {
            self.pump();
            // Outside a driver's pass nobody else writes the acknowledgements owed now.
            if !driver::pass_open() {
                driver::flush_dirty();
            }
        }
    }
}

impl In {
    fn run(&mut self, peer: &Arc<Peer>) -> Ended {
        let max = crate::config::settings().max_message_size;
        if let Some(message) = self.stalled.take() {
            match self.deliver(peer, message) {
                Ok(true) => {}
                Ok(false) => return Ended::Waiting,
                Err(why) => return Ended::Closed(why),
            }
        }
        loop {
            if let Some(ended) = self.deliver_buffered(peer, max) {
                return ended;
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 8 {
                self.buf.reserve(READ_CHUNK);
            }
            let spare = self.buf.capacity() - self.buf.len();
            match read(peer, &mut self.buf) {
                Ok(0) if self.buf.is_empty() => return Ended::Closed("the peer closed it".into()),
                Ok(0) => {
                    return Ended::Closed("the peer closed it in the middle of a frame".into())
                }
                // A read that does not fill the buffer emptied the socket: deliver what
                // came, and skip the read that would only say so.
                Ok(n) if n < spare => {
                    return self.deliver_buffered(peer, max).unwrap_or(Ended::Waiting);
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ended::Waiting,
                Err(e) => return Ended::Closed(format!("read failed: {e}")),
            }
        }
    }

    /// Delivers the whole frames in the buffer; `Some` when reading must stop.
    fn deliver_buffered(&mut self, peer: &Arc<Peer>, max: usize) -> Option<Ended> {
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
            let frame = self.buf.split_to(len).freeze();
            match wire::decode_frame(frame) {
                Ok(Frame::Ack(count)) if peer.acked(count) => {}
                Ok(Frame::Ack(count)) => {
                    return Some(Ended::Closed(format!(
                        "protocol error: acknowledgement of {count} messages, more than were sent"
                    )))
                }
                Ok(Frame::Message(message)) => match self.deliver(peer, message) {
                    Ok(true) => {}
                    Ok(false) => return Some(Ended::Waiting),
                    Err(why) => return Some(Ended::Closed(why)),
                },
                Err(e) => return Some(Ended::Closed(format!("protocol error: {e}"))),
            }
        }
    }

    /// Hands a message to the sink; `Ok(false)` when it had no room and the message
    /// waits, `Err` when the sink refused it and the connection must close.
    fn deliver(&mut self, peer: &Arc<Peer>, mut message: Message) -> Result<bool, String> {
        let Some(sink) = sink() else {
            return Err("a message arrived before the inbox was installed".into());
        };
        if message.data.len() < COPY_BELOW {
            message.data = bytes::Bytes::copy_from_slice(&message.data);
        }
        let acked = message.ack_wanted;
        match sink.deliver(peer, message) {
            Delivery::Taken => {
                if acked {
                    peer.delivered.fetch_add(1, Ordering::AcqRel);
                    driver::mark_dirty(peer);
                }
                Ok(true)
            }
            Delivery::Full(message) => {
                self.stalled = Some(message);
                Ok(false)
            }
            Delivery::Refused(why) => Err(why),
        }
    }
}

/// Reads into the spare capacity of `buf`.
fn read(peer: &Peer, buf: &mut BytesMut) -> std::io::Result<usize> {
    loop {
        let len = buf.len();
        match rustix::io::read(&peer.stream, buf.spare_capacity_mut()) {
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
