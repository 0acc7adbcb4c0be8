//! The fixed headers of requests and replies; the bodies are postcard.

use std::time::Duration;

use bytes::{BufMut, Bytes};
use serde::Serialize;

use super::contract::RpcError;

pub(super) const REQUEST_HEAD: usize = 25;
pub(super) const REPLY_HEAD: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Call = 0,
    Cancel = 1,
    Probe = 2,
    /// A call answered as soon as it is queued, before the handler runs.
    Oneway = 3,
    /// The client takes `count:u32` more items of stream `id`.
    Credit = 4,
    /// The client dropped stream `id`: stop it.
    Stop = 5,
    /// A call whose body is the method's name and its arguments as a JSON array; the
    /// reply is JSON too (see `json`).
    Json = 6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Ok = 0,
    NotServed = 1,
    SchemaMismatch = 2,
    Decode = 3,
    Panicked = 4,
    Deadline = 5,
    /// The reply was over the caller's size limit; the body holds size and limit (u64 each).
    TooLarge = 6,
    /// An item of stream `id`; the body is the item.
    Item = 7,
    /// Stream `id` ended.
    End = 8,
    /// Stream `id` failed; the body is the status that says why (`Panicked`, `Decode`,
    /// `TooLarge`).
    Failed = 9,
    /// The reply held more descriptors than one message carries; the body holds how
    /// many (u64).
    TooManyFds = 10,
    /// A JSON call named no method of the service; the body holds the name asked for.
    NoSuchMethod = 11,
    /// A JSON call's arguments do not fit; the body holds the method's signature and why.
    BadArguments = 12,
    /// A JSON call's reply cannot be written as JSON; the body holds why.
    NotJson = 13,
}

impl Status {
    pub fn from_u8(byte: u8) -> Status {
        match byte {
            0 => Status::Ok,
            1 => Status::NotServed,
            2 => Status::SchemaMismatch,
            4 => Status::Panicked,
            5 => Status::Deadline,
            6 => Status::TooLarge,
            7 => Status::Item,
            8 => Status::End,
            9 => Status::Failed,
            10 => Status::TooManyFds,
            11 => Status::NoSuchMethod,
            12 => Status::BadArguments,
            13 => Status::NotJson,
            _ => Status::Decode,
        }
    }
}

pub(super) struct RequestHead {
    pub kind: Kind,
    pub id: u64,
    pub fingerprint: u64,
    pub timeout: Duration,
}

impl RequestHead {
    /// The request message: this head, then `body` encoded right after it, in one buffer.
    pub fn encode(&self, body: &impl Serialize) -> Result<Bytes, RpcError> {
        let mut out = Vec::with_capacity(REQUEST_HEAD + 64);
        out.put_u8(self.kind as u8);
        out.put_u64_le(self.id);
        out.put_u64_le(self.fingerprint);
        out.put_u64_le(u64::try_from(self.timeout.as_micros()).unwrap_or(u64::MAX));
        let out = postcard::to_extend(body, out).map_err(|e| {
            if let Some(refusal) = super::local::take_refusal() {
                return super::local::error(refusal);
            }
            tracing::warn!("gproc: cannot encode a request: {e}");
            RpcError::Decode
        })?;
        Ok(Bytes::from(out))
    }

    pub fn decode(data: &[u8]) -> Option<RequestHead> {
        let head = data.get(..REQUEST_HEAD)?;
        let kind = match head[0] {
            0 => Kind::Call,
            1 => Kind::Cancel,
            2 => Kind::Probe,
            3 => Kind::Oneway,
            4 => Kind::Credit,
            5 => Kind::Stop,
            6 => Kind::Json,
            _ => return None,
        };
        Some(RequestHead {
            kind,
            id: u64_at(head, 1),
            fingerprint: u64_at(head, 9),
            timeout: Duration::from_micros(u64_at(head, 17)),
        })
    }
}

/// The reply message: status and id, then `body` encoded right after them, in one buffer.
pub(super) fn encode_reply(id: u64, status: Status, body: &impl Serialize) -> Bytes {
    let mut out = Vec::with_capacity(REPLY_HEAD + 64);
    out.put_u8(status as u8);
    out.put_u64_le(id);
    match postcard::to_extend(body, out) {
        Ok(out) => Bytes::from(out),
        Err(e) => {
            tracing::warn!("gproc: cannot encode a reply: {e}");
            let mut out = Vec::with_capacity(REPLY_HEAD);
            out.put_u8(Status::Decode as u8);
            out.put_u64_le(id);
            Bytes::from(out)
        }
    }
}

/// An item of stream `id`, as the reply frame that carries it.
pub(super) fn encode_item(id: u64, item: &impl Serialize) -> Result<Bytes, RpcError> {
    let mut out = Vec::with_capacity(REPLY_HEAD + 16);
    out.put_u8(Status::Item as u8);
    out.put_u64_le(id);
    let out = postcard::to_extend(item, out).map_err(|e| {
        tracing::warn!("gproc: cannot encode a stream's item: {e}");
        RpcError::Decode
    })?;
    Ok(Bytes::from(out))
}

/// A request about stream `id` (credit or stop), which needs no fingerprint or deadline.
pub(super) fn encode_stream_request(kind: Kind, id: u64, count: u32) -> Bytes {
    let head = RequestHead {
        kind,
        id,
        fingerprint: 0,
        timeout: Duration::ZERO,
    };
    head.encode(&count).unwrap_or_default()
}

/// A reply's status, id and body; `None` for a reply too short to have a head.
pub(super) fn decode_reply(data: &Bytes) -> Option<(Status, u64, Bytes)> {
    let head = data.get(..REPLY_HEAD)?;
    Some((
        Status::from_u8(head[0]),
        u64_at(head, 1),
        data.slice(REPLY_HEAD..),
    ))
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().unwrap_or_default())
}
