//! The wire format: handshake and frames. Pure functions, no I/O, so that they can be
//! fuzzed and property-tested.
//!
//! A connection goes one way: the connecting process sends messages, the accepting process
//! acknowledges them.
//!
//! ```text
//! client -> server  Hello    "GPRC" version:u16 flags:u16 pid:u32 start_ticks:u64         (20 bytes)
//! server -> client  Welcome  "GPRC" version:u16 status:u8 0:u8 pid:u32 start_ticks:u64
//!                            max_message_size:u64                                        (28 bytes)
//! client -> server  Frame    len:u32 kind:u8 group_len:u8 group data                     (4 + len bytes)
//! server -> client  Ack      kind:u8 count:u64  (all messages up to `count` are queued)    (9 bytes)
//! ```
//!
//! Integers are little-endian. No length read from the wire is used before it is checked
//! against the receiver's limit.

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol version this build speaks.
pub const VERSION: u16 = 1;
/// The first four bytes of both handshake messages.
pub const MAGIC: [u8; 4] = *b"GPRC";
/// The size of [`Hello`] on the wire.
pub const HELLO_LEN: usize = 20;
/// The size of [`Welcome`] on the wire.
pub const WELCOME_LEN: usize = 28;
/// The size of an acknowledgement on the wire.
pub const ACK_LEN: usize = 9;
/// The size of a frame's length prefix.
pub const LEN_PREFIX: usize = 4;
/// The longest group name, in bytes.
pub const MAX_GROUP_LEN: usize = 255;

const KIND_MESSAGE: u8 = 1;
const KIND_ACK: u8 = 2;

/// A decoding failure. The connection it came from is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The handshake did not start with [`MAGIC`].
    BadMagic,
    /// The peer speaks another protocol version.
    Version(u16),
    /// A frame claims more bytes than the receiver accepts.
    TooLong {
        /// The claimed frame length.
        claimed: u64,
        /// The largest frame length accepted.
        limit: u64,
    },
    /// A frame or message is malformed.
    Malformed(&'static str),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::BadMagic => f.write_str("not a gproc peer (bad magic)"),
            WireError::Version(v) => write!(f, "peer speaks protocol version {v}, this build speaks {VERSION}"),
            WireError::TooLong { claimed, limit } => {
                write!(f, "frame of {claimed} bytes is longer than the limit of {limit}")
            }
            WireError::Malformed(what) => write!(f, "malformed {what}"),
        }
    }
}

impl std::error::Error for WireError {}

/// The first message of a connection, from the connecting process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version of the sender.
    pub version: u16,
    /// The sender's PID.
    pub pid: u32,
    /// The sender's start time in clock ticks since boot: with the PID, it names one process.
    pub start_ticks: u64,
}

impl Hello {
    /// Encodes the hello.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut out = [0u8; HELLO_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&self.version.to_le_bytes());
        out[8..12].copy_from_slice(&self.pid.to_le_bytes());
        out[12..20].copy_from_slice(&self.start_ticks.to_le_bytes());
        out
    }

    /// Decodes a hello. The version is returned as read; the caller decides what it accepts.
    pub fn decode(buf: &[u8]) -> Result<Hello, WireError> {
        let buf: &[u8; HELLO_LEN] = buf
            .get(..HELLO_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(WireError::Malformed("hello (too short)"))?;
        if buf[..4] != MAGIC {
            return Err(WireError::BadMagic);
        }
        Ok(Hello {
            version: u16_at(buf, 4),
            pid: u32_at(buf, 8),
            start_ticks: u64_at(buf, 12),
        })
    }
}

/// Whether the accepting process took the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// Accepted: frames may follow.
    Ok = 0,
    /// The hello's protocol version is not spoken here.
    Version = 1,
    /// The peer's uid is not allowed.
    Denied = 2,
    /// The hello was malformed or lied about the PID.
    BadHello = 3,
}

/// The accepting process's answer to a [`Hello`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Welcome {
    /// The protocol version of the accepting process.
    pub version: u16,
    /// Whether the connection was accepted.
    pub status: Status,
    /// The accepting process's PID.
    pub pid: u32,
    /// The accepting process's start time in clock ticks since boot.
    pub start_ticks: u64,
    /// The largest message it accepts.
    pub max_message_size: u64,
}

impl Welcome {
    /// Encodes the welcome.
    pub fn encode(&self) -> [u8; WELCOME_LEN] {
        let mut out = [0u8; WELCOME_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&self.version.to_le_bytes());
        out[6] = self.status as u8;
        out[8..12].copy_from_slice(&self.pid.to_le_bytes());
        out[12..20].copy_from_slice(&self.start_ticks.to_le_bytes());
        out[20..28].copy_from_slice(&self.max_message_size.to_le_bytes());
        out
    }

    /// Decodes a welcome.
    pub fn decode(buf: &[u8]) -> Result<Welcome, WireError> {
        let buf: &[u8; WELCOME_LEN] = buf
            .get(..WELCOME_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(WireError::Malformed("welcome (too short)"))?;
        if buf[..4] != MAGIC {
            return Err(WireError::BadMagic);
        }
        let status = match buf[6] {
            0 => Status::Ok,
            1 => Status::Version,
            2 => Status::Denied,
            3 => Status::BadHello,
            _ => return Err(WireError::Malformed("welcome status")),
        };
        Ok(Welcome {
            version: u16_at(buf, 4),
            status,
            pid: u32_at(buf, 8),
            start_ticks: u64_at(buf, 12),
            max_message_size: u64_at(buf, 20),
        })
    }
}

/// The largest frame body (after the length prefix) for messages of at most `max_message` bytes.
pub fn max_frame_body(max_message: usize) -> usize {
    2 + MAX_GROUP_LEN + max_message
}

/// Writes a message frame's head (everything before the data) into `out`.
///
/// The data follows as it is; it is never copied element by element.
pub fn put_message_head(out: &mut BytesMut, group: &str, data_len: usize) {
    debug_assert!(group.len() <= MAX_GROUP_LEN);
    let body = 2 + group.len() + data_len;
    out.reserve(LEN_PREFIX + 2 + group.len());
    out.put_u32_le(body as u32);
    out.put_u8(KIND_MESSAGE);
    out.put_u8(group.len() as u8);
    out.put_slice(group.as_bytes());
}

/// Reads the length prefix at the start of `buf`.
///
/// Returns `Ok(None)` while fewer than [`LEN_PREFIX`] bytes are there, else the length of
/// the whole frame (prefix included), which is at most `LEN_PREFIX + max_frame_body(max_message)`.
/// A longer or empty claim is an error, so the caller never allocates for it.
pub fn frame_len(buf: &[u8], max_message: usize) -> Result<Option<usize>, WireError> {
    let Some(prefix) = buf.get(..LEN_PREFIX) else {
        return Ok(None);
    };
    let claimed = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as u64;
    let limit = max_frame_body(max_message) as u64;
    if claimed > limit {
        return Err(WireError::TooLong { claimed, limit });
    }
    if claimed < 2 {
        return Err(WireError::Malformed("frame (shorter than its header)"));
    }
    Ok(Some(LEN_PREFIX + claimed as usize))
}

/// A decoded message frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The group it was sent to.
    pub group: String,
    /// The payload, sharing the frame's buffer.
    pub data: Bytes,
}

/// Decodes one whole frame (prefix included), as delimited by [`frame_len`].
pub fn decode_message(mut frame: Bytes) -> Result<Message, WireError> {
    if frame.len() < LEN_PREFIX + 2 {
        return Err(WireError::Malformed("frame (too short)"));
    }
    let body_len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    if body_len != frame.len() - LEN_PREFIX {
        return Err(WireError::Malformed("frame (length does not match)"));
    }
    if frame[4] != KIND_MESSAGE {
        return Err(WireError::Malformed("frame (unknown kind)"));
    }
    let group_len = frame[5] as usize;
    let head = LEN_PREFIX + 2 + group_len;
    if frame.len() < head {
        return Err(WireError::Malformed("frame (group runs past the end)"));
    }
    let group = std::str::from_utf8(&frame[LEN_PREFIX + 2..head])
        .map_err(|_| WireError::Malformed("group name (not UTF-8)"))?
        .to_owned();
    let data = frame.split_off(head);
    Ok(Message { group, data })
}

/// Encodes an acknowledgement of every message up to `count`.
pub fn encode_ack(count: u64) -> [u8; ACK_LEN] {
    let mut out = [0u8; ACK_LEN];
    out[0] = KIND_ACK;
    out[1..].copy_from_slice(&count.to_le_bytes());
    out
}

/// Decodes an acknowledgement.
pub fn decode_ack(buf: &[u8]) -> Result<u64, WireError> {
    let buf: &[u8; ACK_LEN] = buf
        .get(..ACK_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(WireError::Malformed("ack (too short)"))?;
    if buf[0] != KIND_ACK {
        return Err(WireError::Malformed("ack (unknown kind)"));
    }
    Ok(u64_at(buf, 1))
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([buf[at], buf[at + 1]])
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().unwrap_or_default())
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().unwrap_or_default())
}
