//! What the bridge puts inside tarpc's messages: the request as opaque bytes behind the
//! service's fingerprint, and an answer that says what went wrong on the server.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A call: the service's fingerprint, then the request enum, postcard-encoded.
///
/// The request stays opaque until the fingerprint is checked: a client of another version of
/// the trait gets `SchemaMismatch` even when its request would decode (garbled) as one of
/// this version's, and a request that does not decode never closes the connection.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Call {
    pub(super) fingerprint: u64,
    pub(super) body: Bytes,
}

impl tarpc::RequestName for Call {
    fn name(&self) -> &str {
        "gproc"
    }
}

/// The server's answer to a [`Call`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer<Resp> {
    /// The handler's response.
    Ok(Resp),
    /// The server serves another version of the service.
    SchemaMismatch,
    /// The request did not decode as one of the service's.
    Undecodable,
    /// The handler panicked.
    Panicked,
    /// The response would be over the limit of a frame.
    TooLarge {
        /// Its size, in bytes.
        size: u64,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The response holds a value that travels only between gproc processes on one
    /// machine (a stream).
    LocalOnly {
        /// The value's type.
        what: String,
        /// Where it can travel.
        why: String,
    },
}
