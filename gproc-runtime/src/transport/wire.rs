//! The wire format: handshake and frames. Pure functions, no I/O, so that they can be
//! fuzzed and property-tested.
//!
//! A connection carries traffic both ways: after the handshake, either side sends messages
//! and acknowledges the other's.
//!
//! ```text
//! connecting -> accepting  Hello    "GPRC" version:u16 flags:u16 pid:u32 start_ticks:u64
//!                                   max_message_size:u64                                (28 bytes)
//! accepting -> connecting  Welcome  "GPRC" version:u16 status:u8 0:u8 pid:u32 start_ticks:u64
//!                                   max_message_size:u64                                (28 bytes)
//! either way               Message  len:u32 kind:u8 group_len:u8 group data             (4 + len bytes)
//!                                   (kind 1: acknowledged; kind 3: quiet, not counted)
//!                                   with descriptors: kind | 0x80, then fds:u8 (1..=253)
//!                                   before the group
//! either way               Ack      len:u32 = 9, kind:u8 = 2, count:u64                 (13 bytes)
//!                                   (every acknowledged message up to `count` is queued)
//! either way               Refusal  len:u32 = 10, kind:u8 = 4, number:u64, reason:u8    (14 bytes)
//!                                   (acknowledged message `number` was not queued, for
//!                                   `reason`; it comes before any Ack that counts it)
//! ```
//!
//! An acknowledgement is cumulative, and it is written in the same `writev` as the next
//! frame going the other way when there is one (see `transport::writer`). A refused
//! message is counted by the acknowledgements that follow its refusal, as if queued: the
//! one send fails, and the connection goes on.
//!
//! A message with descriptors (since version 4) says how many it carries; the descriptors
//! themselves travel as `SCM_RIGHTS` ancillary data with the `sendmsg` that writes the
//! frame's first byte (or an earlier one), so that the receiver, which keeps the
//! descriptors it reads in arrival order, has them all once the whole frame is read.
//!
//! Integers are little-endian. No length read from the wire is used before it is checked
//! against the receiver's limit.

use std::os::fd::{AsRawFd, OwnedFd};

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol version this build speaks.
pub const VERSION: u16 = 4;
/// The first four bytes of both handshake messages.
pub const MAGIC: [u8; 4] = *b"GPRC";
/// The size of [`Hello`] on the wire.
pub const HELLO_LEN: usize = 28;
/// The size of [`Welcome`] on the wire.
pub const WELCOME_LEN: usize = 28;
/// The size of an acknowledgement on the wire, its length prefix included.
pub const ACK_LEN: usize = 13;
/// The size of a refusal on the wire, its length prefix included.
pub const REFUSAL_LEN: usize = 14;
/// The size of a frame's length prefix.
pub const LEN_PREFIX: usize = 4;
/// The longest group name, in bytes.
pub const MAX_GROUP_LEN: usize = 255;
/// The most descriptors one message carries: the kernel's limit for one `sendmsg`
/// (`SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;
/// The longest message head: length, kind, group length, descriptor count, group.
pub const MAX_HEAD_LEN: usize = LEN_PREFIX + 3 + MAX_GROUP_LEN;

const KIND_MESSAGE: u8 = 1;
const KIND_ACK: u8 = 2;
/// A message whose sender does not wait for its acknowledgement (an RPC request or reply,
/// whose answer says it arrived): the receiver need not acknowledge it at once.
const KIND_MESSAGE_QUIET: u8 = 3;
const KIND_REFUSAL: u8 = 4;
/// Set in a message's kind when a descriptor count follows the group length.
const WITH_FDS: u8 = 0x80;

/// Why a receiver did not queue a message (see [`Frame::Refusal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The receiver has as many groups alive as it allows, and this message named a new one.
    GroupLimit,
    /// A reason this build does not know (a newer peer's).
    Other(u8),
}

impl Refused {
    fn code(self) -> u8 {
        match self {
            Refused::GroupLimit => 1,
            Refused::Other(code) => code,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            1 => Refused::GroupLimit,
            code => Refused::Other(code),
        }
    }
}

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
            WireError::Version(v) => write!(
                f,
                "peer speaks protocol version {v}, this build speaks {VERSION}"
            ),
            WireError::TooLong { claimed, limit } => {
                write!(
                    f,
                    "frame of {claimed} bytes is longer than the limit of {limit}"
                )
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
    /// The largest message the sender accepts.
    pub max_message_size: u64,
}

impl Hello {
    /// Encodes the hello.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut out = [0u8; HELLO_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&self.version.to_le_bytes());
        out[8..12].copy_from_slice(&self.pid.to_le_bytes());
        out[12..20].copy_from_slice(&self.start_ticks.to_le_bytes());
        out[20..28].copy_from_slice(&self.max_message_size.to_le_bytes());
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
            max_message_size: u64_at(buf, 20),
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
    /// The hello was malformed or lied about the PID or start time.
    BadHello = 3,
    /// Both processes connected to each other at once, and the connection that the lower
    /// PID opened is kept: the connecting side waits for it instead.
    Superseded = 4,
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
            4 => Status::Superseded,
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
///
/// Saturates instead of overflowing, so that any limit, `usize::MAX` included, is safe.
pub fn max_frame_body(max_message: usize) -> usize {
    (MAX_HEAD_LEN - LEN_PREFIX).saturating_add(max_message)
}

/// Writes a message frame's head (everything before the data) into `out`.
///
/// The data follows as it is; it is never copied element by element.
pub fn put_message_head(out: &mut BytesMut, group: &str, data_len: usize) {
    put_head(out, group, data_len, KIND_MESSAGE);
}

/// As [`put_message_head`], for a message whose sender does not wait for its
/// acknowledgement: the receiver may acknowledge it later, with the next message that
/// wants one (cumulative acknowledgements cover both).
pub fn put_quiet_message_head(out: &mut BytesMut, group: &str, data_len: usize) {
    put_head(out, group, data_len, KIND_MESSAGE_QUIET);
}

fn put_head(out: &mut BytesMut, group: &str, data_len: usize, kind: u8) {
    let mut head = [0u8; MAX_HEAD_LEN];
    let len = write_head(&mut head, group, data_len, kind, 0);
    out.put_slice(&head[..len]);
}

/// Writes a message frame's head into `out` and returns it: acknowledged with `acked`,
/// quiet otherwise, saying that `fds` descriptors come with it. The group is at most
/// [`MAX_GROUP_LEN`] bytes and `fds` at most [`MAX_FDS`] (both checked by the caller).
pub fn message_head<'a>(
    out: &'a mut [u8; MAX_HEAD_LEN],
    group: &str,
    data_len: usize,
    acked: bool,
    fds: usize,
) -> &'a [u8] {
    let kind = if acked {
        KIND_MESSAGE
    } else {
        KIND_MESSAGE_QUIET
    };
    let len = write_head(out, group, data_len, kind, fds.min(MAX_FDS) as u8);
    &out[..len]
}

fn write_head(
    out: &mut [u8; MAX_HEAD_LEN],
    group: &str,
    data_len: usize,
    kind: u8,
    fds: u8,
) -> usize {
    let group = &group.as_bytes()[..group.len().min(MAX_GROUP_LEN)];
    let mut at = LEN_PREFIX + 2;
    if fds > 0 {
        out[LEN_PREFIX] = kind | WITH_FDS;
        out[at] = fds;
        at += 1;
    } else {
        out[LEN_PREFIX] = kind;
    }
    let body = at - LEN_PREFIX + group.len() + data_len;
    out[..LEN_PREFIX].copy_from_slice(&(body as u32).to_le_bytes());
    out[LEN_PREFIX + 1] = group.len() as u8;
    out[at..at + group.len()].copy_from_slice(group);
    at + group.len()
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
    // Capped so that the prefix can be added below even where `usize` is 32 bits.
    let limit = max_frame_body(max_message).min(usize::MAX - LEN_PREFIX) as u64;
    if claimed > limit {
        return Err(WireError::TooLong { claimed, limit });
    }
    if claimed < 2 {
        return Err(WireError::Malformed("frame (shorter than its header)"));
    }
    Ok(Some(LEN_PREFIX + claimed as usize))
}

/// A decoded message frame.
///
/// Its descriptors are owned: dropping the message closes them.
#[derive(Debug)]
pub struct Message {
    /// The group it was sent to.
    pub group: String,
    /// The payload, sharing the frame's buffer.
    pub data: Bytes,
    /// Whether its sender waits for the acknowledgement.
    pub ack_wanted: bool,
    /// The descriptors that came with it, in the order they were sent. Empty as
    /// [`decode_message`] returns it: the reader, which receives them beside the bytes,
    /// puts the [`fd_count`] of the frame here.
    pub fds: Vec<OwnedFd>,
}

/// Equal when group, data and acknowledgement agree and the descriptors are the same
/// numbers in this process (not: the same open files).
impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        let raw = |m: &Message| m.fds.iter().map(AsRawFd::as_raw_fd).collect::<Vec<_>>();
        self.group == other.group
            && self.data == other.data
            && self.ack_wanted == other.ack_wanted
            && raw(self) == raw(other)
    }
}

impl Eq for Message {}

/// How many descriptors the message frame starting `frame` says it carries: 0 for any
/// other frame, and for bytes too short to tell (the decoder refuses those).
pub fn fd_count(frame: &[u8]) -> usize {
    match frame.get(LEN_PREFIX) {
        Some(kind) if kind & WITH_FDS != 0 => frame.get(LEN_PREFIX + 2).map_or(0, |&n| n.into()),
        _ => 0,
    }
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
    let ack_wanted = match frame[4] & !WITH_FDS {
        KIND_MESSAGE => true,
        KIND_MESSAGE_QUIET => false,
        _ => return Err(WireError::Malformed("frame (unknown kind)")),
    };
    let mut at = LEN_PREFIX + 2;
    if frame[4] & WITH_FDS != 0 {
        match frame.get(at) {
            None => return Err(WireError::Malformed("frame (too short)")),
            Some(0) => return Err(WireError::Malformed("frame (a count of 0 descriptors)")),
            Some(&n) if usize::from(n) > MAX_FDS => {
                return Err(WireError::Malformed("frame (more descriptors than 253)"))
            }
            Some(_) => at += 1,
        }
    }
    let group_len = frame[5] as usize;
    let head = at + group_len;
    if frame.len() < head {
        return Err(WireError::Malformed("frame (group runs past the end)"));
    }
    let group = std::str::from_utf8(&frame[at..head])
        .map_err(|_| WireError::Malformed("group name (not UTF-8)"))?
        .to_owned();
    let data = frame.split_off(head);
    Ok(Message {
        group,
        data,
        ack_wanted,
        fds: Vec::new(),
    })
}

/// Encodes an acknowledgement of every acknowledged message up to `count`, as a frame.
pub fn encode_ack(count: u64) -> [u8; ACK_LEN] {
    let mut out = [0u8; ACK_LEN];
    out[..LEN_PREFIX].copy_from_slice(&((ACK_LEN - LEN_PREFIX) as u32).to_le_bytes());
    out[LEN_PREFIX] = KIND_ACK;
    out[LEN_PREFIX + 1..].copy_from_slice(&count.to_le_bytes());
    out
}

/// Decodes an acknowledgement frame (prefix included).
pub fn decode_ack(buf: &[u8]) -> Result<u64, WireError> {
    let buf: &[u8; ACK_LEN] = buf
        .get(..ACK_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(WireError::Malformed("ack (too short)"))?;
    if u32_at(buf, 0) as usize != ACK_LEN - LEN_PREFIX {
        return Err(WireError::Malformed("ack (wrong length)"));
    }
    if buf[LEN_PREFIX] != KIND_ACK {
        return Err(WireError::Malformed("ack (unknown kind)"));
    }
    Ok(u64_at(buf, LEN_PREFIX + 1))
}

/// Encodes the refusal of acknowledged message `number` (counted from 1), as a frame.
pub fn encode_refusal(number: u64, why: Refused) -> [u8; REFUSAL_LEN] {
    let mut out = [0u8; REFUSAL_LEN];
    out[..LEN_PREFIX].copy_from_slice(&((REFUSAL_LEN - LEN_PREFIX) as u32).to_le_bytes());
    out[LEN_PREFIX] = KIND_REFUSAL;
    out[LEN_PREFIX + 1..REFUSAL_LEN - 1].copy_from_slice(&number.to_le_bytes());
    out[REFUSAL_LEN - 1] = why.code();
    out
}

/// One whole frame, decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A message for one of the receiver's groups.
    Message(Message),
    /// The sender has queued every acknowledged message up to this count.
    Ack(u64),
    /// The sender did not queue acknowledged message `number`, for this reason.
    Refusal {
        /// The message's number among the acknowledged ones, counted from 1.
        number: u64,
        /// Why.
        why: Refused,
    },
}

/// Decodes one whole frame (prefix included), as delimited by [`frame_len`].
pub fn decode_frame(frame: Bytes) -> Result<Frame, WireError> {
    match frame.get(LEN_PREFIX) {
        Some(&KIND_REFUSAL) => {
            // Both the bytes given and the length they claim (found by the `decode` fuzz
            // target: a truncated frame of another length decoded).
            if frame.len() != REFUSAL_LEN || u32_at(&frame, 0) as usize != REFUSAL_LEN - LEN_PREFIX
            {
                return Err(WireError::Malformed("refusal (wrong length)"));
            }
            Ok(Frame::Refusal {
                number: u64_at(&frame, LEN_PREFIX + 1),
                why: Refused::from_code(frame[REFUSAL_LEN - 1]),
            })
        }
        Some(&KIND_ACK) => {
            if frame.len() != ACK_LEN {
                return Err(WireError::Malformed("ack (wrong length)"));
            }
            decode_ack(&frame).map(Frame::Ack)
        }
        _ => decode_message(frame).map(Frame::Message),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A valid frame (prefix included) for `group` and `data`, as the sender writes it.
    fn frame(group: &str, data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        put_message_head(&mut out, group, data.len());
        out.extend_from_slice(data);
        out.to_vec()
    }

    /// A frame with an arbitrary length field and body.
    fn raw_frame(claimed: u32, body: &[u8]) -> Vec<u8> {
        let mut out = claimed.to_le_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    /// The largest whole-frame length `frame_len` may return, computed without overflow.
    fn bound(max_message: usize) -> u128 {
        LEN_PREFIX as u128 + 3 + MAX_GROUP_LEN as u128 + max_message as u128
    }

    fn malformed(r: Result<impl std::fmt::Debug, WireError>) -> &'static str {
        match r {
            Err(WireError::Malformed(what)) => what,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    /// Group names of at most [`MAX_GROUP_LEN`] bytes, multi-byte characters included.
    fn group() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(any::<char>(), 0..128).prop_map(|chars| {
                let mut s = String::new();
                for c in chars {
                    if s.len() + c.len_utf8() > MAX_GROUP_LEN {
                        break;
                    }
                    s.push(c);
                }
                s
            }),
            "[a-z/._-]{0,32}",
            Just("g".repeat(MAX_GROUP_LEN)),
            Just("é".repeat(MAX_GROUP_LEN / 2) + "x"),
        ]
    }

    /// Receive limits: small, the defaults, and extremes that could overflow arithmetic.
    fn limit() -> impl Strategy<Value = usize> {
        prop_oneof![
            0..=64usize,
            0..=(2usize << 20),
            Just(1usize << 20),
            Just(64usize << 20),
            Just(u32::MAX as usize - 1024),
            Just(u32::MAX as usize),
            Just(usize::MAX - MAX_GROUP_LEN - 2),
            Just(usize::MAX),
            any::<usize>(),
        ]
    }

    fn status() -> impl Strategy<Value = Status> {
        prop_oneof![
            Just(Status::Ok),
            Just(Status::Version),
            Just(Status::Denied),
            Just(Status::BadHello),
            Just(Status::Superseded),
        ]
    }

    /// Bytes that often start with something valid, so that decoders get past their first check.
    fn bytes_with_prefix() -> impl Strategy<Value = Vec<u8>> {
        let prefix = prop_oneof![
            Just(Vec::new()),
            Just(MAGIC.to_vec()),
            Just(vec![9, 0, 0, 0, KIND_ACK]),
            any::<u32>().prop_map(|n| n.to_le_bytes().to_vec()),
            (0u32..300, any::<u8>()).prop_map(|(n, g)| {
                let mut v = n.to_le_bytes().to_vec();
                v.extend_from_slice(&[KIND_MESSAGE, g]);
                v
            }),
        ];
        (prefix, prop::collection::vec(any::<u8>(), 0..400)).prop_map(|(mut p, rest)| {
            p.extend(rest);
            p
        })
    }

    // ---- Each WireError case ----

    #[test]
    fn bad_magic() {
        let mut hello = Hello {
            version: VERSION,
            pid: 1,
            start_ticks: 2,
            max_message_size: 3,
        }
        .encode();
        hello[0] = b'X';
        assert_eq!(Hello::decode(&hello), Err(WireError::BadMagic));
        let mut welcome = Welcome {
            version: VERSION,
            status: Status::Ok,
            pid: 1,
            start_ticks: 2,
            max_message_size: 3,
        }
        .encode();
        welcome[3] = b'c';
        assert_eq!(Welcome::decode(&welcome), Err(WireError::BadMagic));
        assert_eq!(
            WireError::BadMagic.to_string(),
            "not a gproc peer (bad magic)"
        );
    }

    #[test]
    fn version_is_returned_not_judged() {
        // The decoder hands the version over; the caller refuses it (endpoint, conn).
        let hello = Hello {
            version: VERSION + 1,
            pid: 7,
            start_ticks: 8,
            max_message_size: 9,
        };
        assert_eq!(Hello::decode(&hello.encode()), Ok(hello));
        assert_eq!(
            WireError::Version(9).to_string(),
            format!("peer speaks protocol version 9, this build speaks {VERSION}")
        );
    }

    #[test]
    fn too_long() {
        let limit = max_frame_body(1 << 20) as u64;
        for claimed in [limit + 1, u64::from(u32::MAX)] {
            let buf = raw_frame(claimed as u32, &[KIND_MESSAGE, 0]);
            assert_eq!(
                frame_len(&buf, 1 << 20),
                Err(WireError::TooLong { claimed, limit })
            );
        }
        // Exactly at the limit is fine: the reader then waits for the rest.
        let buf = raw_frame(limit as u32, &[]);
        assert_eq!(
            frame_len(&buf, 1 << 20),
            Ok(Some(LEN_PREFIX + limit as usize))
        );
        // The largest claim against the default limit and against no room for data at all.
        let buf = raw_frame(u32::MAX, &[]);
        assert!(matches!(
            frame_len(&buf, 64 << 20),
            Err(WireError::TooLong { .. })
        ));
        assert_eq!(
            frame_len(&buf, 0),
            Err(WireError::TooLong {
                claimed: u32::MAX as u64,
                limit: 258
            })
        );
        assert_eq!(
            WireError::TooLong {
                claimed: 10,
                limit: 5
            }
            .to_string(),
            "frame of 10 bytes is longer than the limit of 5"
        );
    }

    #[test]
    fn malformed_handshakes() {
        let hello = Hello {
            version: VERSION,
            pid: 1,
            start_ticks: 2,
            max_message_size: 3,
        }
        .encode();
        assert_eq!(
            malformed(Hello::decode(&hello[..HELLO_LEN - 1])),
            "hello (too short)"
        );
        assert_eq!(malformed(Hello::decode(&[])), "hello (too short)");
        let welcome = Welcome {
            version: VERSION,
            status: Status::Denied,
            pid: 1,
            start_ticks: 2,
            max_message_size: 3,
        }
        .encode();
        assert_eq!(
            malformed(Welcome::decode(&welcome[..WELCOME_LEN - 1])),
            "welcome (too short)"
        );
        for bad in [5u8, 6, 0x80, 0xFF] {
            let mut w = welcome;
            w[6] = bad;
            assert_eq!(malformed(Welcome::decode(&w)), "welcome status");
        }
    }

    #[test]
    fn malformed_frames() {
        for claimed in [0u32, 1] {
            let buf = raw_frame(claimed, &[KIND_MESSAGE, 0]);
            assert_eq!(
                malformed(frame_len(&buf, 1024)),
                "frame (shorter than its header)"
            );
        }
        assert_eq!(malformed(decode_message(Bytes::new())), "frame (too short)");
        assert_eq!(
            malformed(decode_message(Bytes::from(raw_frame(1, &[KIND_MESSAGE])))),
            "frame (too short)"
        );
        let good = frame("g", b"data");
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(
            malformed(decode_message(Bytes::from(longer))),
            "frame (length does not match)"
        );
        assert_eq!(
            malformed(decode_message(Bytes::from(good[..good.len() - 1].to_vec()))),
            "frame (length does not match)"
        );
        for kind in [0u8, KIND_ACK, 4, 0xFF] {
            let mut f = good.clone();
            f[4] = kind;
            assert_eq!(
                malformed(decode_message(Bytes::from(f))),
                "frame (unknown kind)"
            );
        }
        let mut quiet = BytesMut::new();
        put_quiet_message_head(&mut quiet, "g", 4);
        quiet.extend_from_slice(b"data");
        let decoded = decode_message(quiet.freeze()).expect("a quiet frame decodes");
        assert!(
            !decoded.ack_wanted,
            "a quiet frame wants no acknowledgement"
        );
        assert!(
            decode_message(Bytes::from(good.clone()))
                .expect("decodes")
                .ack_wanted
        );
        let mut f = good.clone();
        f[5] = 6; // "g" + "data" is 5 bytes.
        assert_eq!(
            malformed(decode_message(Bytes::from(f))),
            "frame (group runs past the end)"
        );
        let f = raw_frame(4, &[KIND_MESSAGE, 2, 0xC3, 0x28]);
        assert_eq!(
            malformed(decode_message(Bytes::from(f))),
            "group name (not UTF-8)"
        );
        assert_eq!(WireError::Malformed("x").to_string(), "malformed x");
    }

    #[test]
    fn malformed_acks() {
        let ack = encode_ack(5);
        assert_eq!(
            malformed(decode_ack(&ack[..ACK_LEN - 1])),
            "ack (too short)"
        );
        for kind in [0u8, KIND_MESSAGE, 3, 0xFF] {
            let mut a = ack;
            a[LEN_PREFIX] = kind;
            assert_eq!(malformed(decode_ack(&a)), "ack (unknown kind)");
        }
        let mut a = ack;
        a[0] = 10;
        assert_eq!(malformed(decode_ack(&a)), "ack (wrong length)");
        assert_eq!(
            decode_frame(Bytes::copy_from_slice(&ack)),
            Ok(Frame::Ack(5))
        );
        let mut longer = ack.to_vec();
        longer.push(0);
        assert_eq!(
            malformed(decode_frame(Bytes::from(longer))),
            "ack (wrong length)"
        );
    }

    #[test]
    fn refusal_round_trip_and_bad_lengths() {
        let r = encode_refusal(7, Refused::GroupLimit);
        assert_eq!(frame_len(&r, 0), Ok(Some(REFUSAL_LEN)));
        assert_eq!(
            decode_frame(Bytes::copy_from_slice(&r)),
            Ok(Frame::Refusal {
                number: 7,
                why: Refused::GroupLimit
            })
        );
        let other = encode_refusal(u64::MAX, Refused::Other(200));
        assert_eq!(
            decode_frame(Bytes::copy_from_slice(&other)),
            Ok(Frame::Refusal {
                number: u64::MAX,
                why: Refused::Other(200)
            })
        );
        let mut longer = r.to_vec();
        longer.push(0);
        assert_eq!(
            malformed(decode_frame(Bytes::from(longer))),
            "refusal (wrong length)"
        );
        assert_eq!(
            malformed(decode_frame(Bytes::copy_from_slice(&r[..REFUSAL_LEN - 1]))),
            "refusal (wrong length)"
        );
        // Fourteen bytes that claim another length: the start of a longer frame.
        let mut claims_more = r;
        claims_more[0] = 129;
        assert_eq!(
            malformed(decode_frame(Bytes::copy_from_slice(&claims_more))),
            "refusal (wrong length)"
        );
    }

    /// Found by `decoders_never_panic`: `max_frame_body` added the limit without checking, so
    /// `frame_len` with a limit near `usize::MAX` panicked (debug) or wrapped to a tiny limit
    /// (release), refusing every frame.
    #[test]
    fn frame_len_with_huge_limit_does_not_overflow() {
        assert_eq!(max_frame_body(usize::MAX), usize::MAX);
        assert_eq!(max_frame_body(usize::MAX - 258), usize::MAX);
        assert_eq!(max_frame_body(usize::MAX - 259), usize::MAX - 1);
        let f = frame("g", b"data");
        for max in [usize::MAX, usize::MAX - 1, usize::MAX - 258] {
            assert_eq!(frame_len(&f, max), Ok(Some(f.len())));
            assert_eq!(frame_len(&[0, 0, 0, 0], max).map_err(|_| ()), Err(()));
            let huge = raw_frame(u32::MAX, &[]);
            assert_eq!(
                frame_len(&huge, max),
                Ok(Some(LEN_PREFIX + u32::MAX as usize))
            );
        }
    }

    #[test]
    fn frame_len_needs_the_prefix() {
        for n in 0..LEN_PREFIX {
            assert_eq!(frame_len(&[0xFF; LEN_PREFIX][..n], 0), Ok(None));
        }
    }

    #[test]
    fn heads_with_descriptors() {
        let mut head = [0u8; MAX_HEAD_LEN];
        for (acked, fds) in [(true, 1), (false, 7), (true, MAX_FDS)] {
            let mut f = message_head(&mut head, "grp", 4, acked, fds).to_vec();
            f.extend_from_slice(b"data");
            assert_eq!(f.len(), LEN_PREFIX + 3 + 3 + 4);
            assert_eq!(frame_len(&f, 4), Ok(Some(f.len())));
            assert_eq!(fd_count(&f), fds);
            let m = decode_message(Bytes::from(f)).expect("decodes");
            assert_eq!((m.group.as_str(), &m.data[..]), ("grp", &b"data"[..]));
            assert_eq!(m.ack_wanted, acked);
            assert!(
                m.fds.is_empty(),
                "the reader, not the decoder, puts them here"
            );
        }
        // Without descriptors, the head is the one of version 3.
        let plain = message_head(&mut head, "g", 0, true, 0).to_vec();
        assert_eq!(plain, [3, 0, 0, 0, KIND_MESSAGE, 1, b'g']);
        assert_eq!(fd_count(&plain), 0);
        // The largest head fits the largest group and a count.
        let long = "g".repeat(MAX_GROUP_LEN);
        assert_eq!(
            message_head(&mut head, &long, 0, false, 1).len(),
            MAX_HEAD_LEN
        );
        for (count, what) in [
            (0u8, "frame (a count of 0 descriptors)"),
            (254, "frame (more descriptors than 253)"),
        ] {
            let f = raw_frame(4, &[KIND_MESSAGE | WITH_FDS, 1, count, b'g']);
            assert_eq!(malformed(decode_message(Bytes::from(f))), what);
        }
        let f = raw_frame(2, &[KIND_MESSAGE | WITH_FDS, 0]);
        assert_eq!(
            malformed(decode_message(Bytes::from(f))),
            "frame (too short)"
        );
        assert_eq!(fd_count(&encode_ack(3)), 0);
        assert_eq!(fd_count(&[]), 0);
    }

    #[test]
    fn empty_group_and_data() {
        let f = frame("", b"");
        assert_eq!(f, [2, 0, 0, 0, KIND_MESSAGE, 0]);
        assert_eq!(frame_len(&f, 0), Ok(Some(6)));
        let m = decode_message(Bytes::from(f)).unwrap();
        assert_eq!((m.group.as_str(), m.data.as_ref()), ("", &b""[..]));
    }

    proptest! {
        // Failures are not persisted to a file: each one found becomes a named unit test.
        #![proptest_config(ProptestConfig {
            cases: 2048,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        // ---- (a) No decoder panics on any input ----

        #[test]
        fn decoders_never_panic(buf in bytes_with_prefix(), max in limit()) {
            let _ = Hello::decode(&buf);
            let _ = Welcome::decode(&buf);
            let _ = decode_ack(&buf);
            let _ = frame_len(&buf, max);
            let _ = decode_frame(Bytes::from(buf.clone()));
            let _ = decode_message(Bytes::from(buf));
        }

        #[test]
        fn decode_message_never_panics_on_a_consistent_length(
            kind in prop_oneof![
                Just(KIND_MESSAGE),
                Just(KIND_MESSAGE | WITH_FDS),
                Just(KIND_MESSAGE_QUIET | WITH_FDS),
                any::<u8>(),
            ],
            group_len in any::<u8>(),
            rest in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut body = vec![kind, group_len];
            body.extend(rest);
            let f = raw_frame(body.len() as u32, &body);
            let fds = fd_count(&f);
            if let Ok(m) = decode_message(Bytes::from(f)) {
                prop_assert!([KIND_MESSAGE, KIND_MESSAGE_QUIET].contains(&(kind & !WITH_FDS)));
                prop_assert_eq!(m.group.len(), usize::from(group_len));
                let count_len = usize::from(kind & WITH_FDS != 0);
                prop_assert_eq!(fds > 0, count_len == 1);
                prop_assert!(fds <= MAX_FDS);
                prop_assert_eq!(m.group.len() + m.data.len() + 2 + count_len, body.len());
            }
        }

        // ---- (b) frame_len's bound ----

        #[test]
        fn frame_len_is_bounded(
            claimed in prop_oneof![any::<u32>(), Just(u32::MAX), 0u32..1024],
            rest in prop::collection::vec(any::<u8>(), 0..8),
            max in limit(),
        ) {
            let buf = raw_frame(claimed, &rest);
            let body_limit = 3 + MAX_GROUP_LEN as u128 + max as u128;
            match frame_len(&buf, max) {
                Ok(Some(n)) => {
                    prop_assert!(n as u128 <= bound(max));
                    prop_assert_eq!(n as u128, LEN_PREFIX as u128 + u128::from(claimed));
                    prop_assert!(u128::from(claimed) <= body_limit && claimed >= 2);
                }
                Ok(None) => prop_assert!(false, "4 bytes of prefix are there"),
                Err(WireError::TooLong { claimed: c, limit: l }) => {
                    prop_assert!(u128::from(claimed) > body_limit);
                    prop_assert_eq!(c, u64::from(claimed));
                    prop_assert!(u128::from(l) < u128::from(c));
                }
                Err(WireError::Malformed(_)) => prop_assert!(claimed < 2),
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }

        #[test]
        fn huge_claims_are_refused(
            claimed in prop_oneof![Just(u32::MAX), Just(0x8000_0000u32), any::<u32>()],
            max in 0usize..=(64 << 20),
        ) {
            prop_assume!(u64::from(claimed) > max_frame_body(max) as u64);
            let buf = raw_frame(claimed, &[KIND_MESSAGE, 0]);
            let is_too_long = matches!(frame_len(&buf, max), Err(WireError::TooLong { .. }));
            prop_assert!(is_too_long);
        }

        // ---- (c) Round trips ----

        #[test]
        fn hello_round_trips(
            version in any::<u16>(),
            pid in any::<u32>(),
            start_ticks in any::<u64>(),
            max_message_size in any::<u64>(),
        ) {
            let hello = Hello { version, pid, start_ticks, max_message_size };
            let wire = hello.encode();
            prop_assert_eq!(Hello::decode(&wire), Ok(hello));
            prop_assert_eq!(wire.len(), HELLO_LEN);
        }

        #[test]
        fn welcome_round_trips(
            version in any::<u16>(),
            status in status(),
            pid in any::<u32>(),
            start_ticks in any::<u64>(),
            max_message_size in any::<u64>(),
        ) {
            let welcome = Welcome { version, status, pid, start_ticks, max_message_size };
            prop_assert_eq!(Welcome::decode(&welcome.encode()), Ok(welcome));
        }

        #[test]
        fn ack_round_trips(count in any::<u64>()) {
            prop_assert_eq!(decode_ack(&encode_ack(count)), Ok(count));
            prop_assert_eq!(frame_len(&encode_ack(count), 0), Ok(Some(ACK_LEN)));
        }

        #[test]
        fn message_round_trips(
            group in group(),
            data in prop::collection::vec(any::<u8>(), 0..2048),
            spare in prop_oneof![Just(0usize), 0usize..4096],
        ) {
            let max = data.len() + spare;
            let f = frame(&group, &data);
            prop_assert_eq!(frame_len(&f, max), Ok(Some(f.len())));
            let m = decode_message(Bytes::from(f)).unwrap();
            prop_assert_eq!(m.group, group);
            prop_assert_eq!(m.data.as_ref(), &data[..]);
        }

        /// Frames back to back, split the way the endpoint's reader splits them.
        #[test]
        fn stream_round_trips(
            messages in prop::collection::vec(
                (group(), prop::collection::vec(any::<u8>(), 0..300)),
                0..8,
            ),
        ) {
            let mut stream = Vec::new();
            for (g, d) in &messages {
                stream.extend(frame(g, d));
            }
            let mut buf = BytesMut::from(&stream[..]);
            let mut got = Vec::new();
            while let Some(len) = frame_len(&buf, 300).unwrap() {
                prop_assert!(len <= buf.len());
                let m = decode_message(buf.split_to(len).freeze()).unwrap();
                got.push((m.group, m.data.to_vec()));
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, messages);
        }

        // ---- (d) Truncations ask for more, never succeed wrongly ----

        #[test]
        fn truncated_frames_need_more(
            group in group(),
            data in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            let f = frame(&group, &data);
            let max = data.len();
            for cut in 0..f.len() {
                match frame_len(&f[..cut], max) {
                    Ok(None) => prop_assert!(cut < LEN_PREFIX),
                    Ok(Some(n)) => {
                        prop_assert!(n > cut);
                        prop_assert_eq!(n, f.len());
                    }
                    Err(e) => prop_assert!(false, "cut at {cut}: {e:?}"),
                }
                prop_assert!(decode_message(Bytes::copy_from_slice(&f[..cut])).is_err());
            }
        }

        // ---- (e) The length field must match the frame ----

        #[test]
        fn length_mismatch_is_an_error(
            group in group(),
            data in prop::collection::vec(any::<u8>(), 0..512),
            claimed in any::<u32>(),
        ) {
            let mut f = frame(&group, &data);
            let actual = (f.len() - LEN_PREFIX) as u32;
            prop_assume!(claimed != actual);
            f[..LEN_PREFIX].copy_from_slice(&claimed.to_le_bytes());
            prop_assert!(decode_message(Bytes::from(f)).is_err());
        }

        #[test]
        fn slice_longer_or_shorter_than_its_length_is_an_error(
            group in group(),
            data in prop::collection::vec(any::<u8>(), 1..512),
            extra in prop::collection::vec(any::<u8>(), 1..16),
            cut in 1usize..16,
        ) {
            let f = frame(&group, &data);
            let mut longer = f.clone();
            longer.extend(extra);
            prop_assert!(decode_message(Bytes::from(longer)).is_err());
            let shorter = &f[..f.len() - cut.min(data.len())];
            prop_assert!(decode_message(Bytes::copy_from_slice(shorter)).is_err());
        }
    }
}
