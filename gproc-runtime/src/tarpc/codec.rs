//! Framing and encoding on the network: tarpc's length-delimited frames, each holding one
//! postcard-encoded tarpc message.

use std::io;
use std::marker::PhantomData;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tarpc::serde_transport::Transport;
use tarpc::tokio_serde::{Deserializer, Serializer};
use tarpc::tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::settings;

/// What a frame may hold beyond a message's own bytes: tarpc's request id, context and
/// trace ids, and the bridge's envelope.
const FRAME_OVERHEAD: usize = 4096;

/// A [`tokio_serde`](tarpc::tokio_serde) codec that encodes with postcard: the codec of
/// gproc's bridge, on both sides.
///
/// Usable for a plain tarpc service too (`tarpc::serde_transport::new(framed,
/// Postcard::default())`), which is how the benchmarks compare the bridge with tarpc on the
/// same codec.
pub struct Postcard<Item, SinkItem> {
    _types: PhantomData<fn(SinkItem) -> Item>,
}

impl<Item, SinkItem> Default for Postcard<Item, SinkItem> {
    fn default() -> Self {
        Postcard {
            _types: PhantomData,
        }
    }
}

impl<Item, SinkItem> std::fmt::Debug for Postcard<Item, SinkItem> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Postcard")
    }
}

impl<Item: DeserializeOwned, SinkItem> Deserializer<Item> for Postcard<Item, SinkItem> {
    type Error = io::Error;

    fn deserialize(self: Pin<&mut Self>, src: &BytesMut) -> Result<Item, io::Error> {
        postcard::from_bytes(src).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("an undecodable tarpc message ({e}): the peer is not a gproc bridge of this version"),
            )
        })
    }
}

impl<Item, SinkItem: Serialize> Serializer<SinkItem> for Postcard<Item, SinkItem> {
    type Error = io::Error;

    fn serialize(self: Pin<&mut Self>, item: &SinkItem) -> Result<Bytes, io::Error> {
        postcard::to_allocvec(item)
            .map(Bytes::from)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }
}

/// The bridge's transport over `io`: frames of at most the configured
/// [`max_message_size`](crate::Config::max_message_size) plus room for tarpc's own fields,
/// so a peer's length claim can never make this process allocate more.
pub(super) fn transport<Io, Item, SinkItem>(
    io: Io,
) -> Transport<Io, Item, SinkItem, Postcard<Item, SinkItem>>
where
    Io: AsyncRead + AsyncWrite,
    Item: DeserializeOwned,
    SinkItem: Serialize,
{
    let frames = LengthDelimitedCodec::builder()
        .max_frame_length(settings().max_message_size.saturating_add(FRAME_OVERHEAD))
        .new_codec();
    tarpc::serde_transport::new(Framed::new(io, frames), Postcard::default())
}
