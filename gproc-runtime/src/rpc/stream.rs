//! `gproc::Stream<T>`: a method's stream of items, server to client.
//!
//! A server builds one from any `futures::Stream` and returns it, anywhere in a method's
//! return value. Encoding the reply hands the stream to the server's outflow (see
//! `outflow`), which sends its items as the client asks for them; decoding the reply on
//! the client opens an inflow (see `inflow`) that receives them. Both happen only inside
//! a call between two gproc processes: anywhere else (another serializer, the tarpc
//! bridge) a stream does not encode, and says it is local-only.

use std::cell::RefCell;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::contract::RpcError;
use super::inflow::Opening;
use super::local::{refuse, Refusal};

/// What a stream that cannot travel says.
const LOCAL_ONLY: Refusal = Refusal {
    what: "gproc::Stream",
    why: "a stream goes only from a server to its caller, both gproc processes on one \
          machine; over the tarpc bridge or in an argument, send its items in a Vec",
};

type Items<T> = Pin<Box<dyn futures_util::Stream<Item = Result<T, RpcError>> + Send>>;

/// A stream of items a method returns: built by the server from any
/// [`futures::Stream`](futures_util::Stream), received by the client as a
/// `futures::Stream` of `Result<T, RpcError>`.
///
/// The server runs at most a small window of items ahead of the consumer, whatever its
/// speed, and each stream has its own window: a slow consumer holds up only its own
/// stream. Dropping the client's stream drops the server's. A server that dies ends it
/// with `Err(RpcError::Transport(ConnectionLost))`, then `None`. The call's deadline
/// bounds the opening of the stream, not its length.
///
/// ```no_run
/// use futures_util::StreamExt;
///
/// #[gproc::service]
/// pub trait Counter {
///     async fn count(&self, to: u32) -> gproc::Stream<u32>;
/// }
///
/// struct MyCounter;
///
/// impl Counter for MyCounter {
///     async fn count(&self, to: u32) -> gproc::Stream<u32> {
///         gproc::Stream::new(futures_util::stream::iter(1..=to))
///     }
/// }
///
/// # async fn demo(pid: u32) -> Result<(), gproc::RpcError> {
/// let counter = CounterClient::new(pid);
/// let mut numbers = counter.count(3).await?;
/// while let Some(n) = numbers.next().await {
///     println!("{}", n?);
/// }
/// # Ok(()) }
/// ```
///
/// Streams go from server to client only: in an argument, a stream does not encode.
pub struct Stream<T> {
    /// `None` once handed to the outflow.
    items: Mutex<Option<Items<T>>>,
}

impl<T: Send + 'static> Stream<T> {
    /// A stream of the items `items` yields.
    pub fn new(items: impl futures_util::Stream<Item = T> + Send + 'static) -> Self {
        Stream::from_results(items.map(Ok))
    }
}

impl<T> Stream<T> {
    pub(super) fn from_results(
        items: impl futures_util::Stream<Item = Result<T, RpcError>> + Send + 'static,
    ) -> Self {
        Stream {
            items: Mutex::new(Some(Box::pin(items))),
        }
    }
}

impl<T> futures_util::Stream for Stream<T> {
    type Item = Result<T, RpcError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let items = self
            .get_mut()
            .items
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match items {
            Some(items) => items.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

impl<T> fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("item", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

/// A stream handed over by the encoding of a reply, its items encoded as reply frames.
pub(super) struct Outgoing {
    pub id: u64,
    pub items: Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, RpcError>> + Send>>,
}

thread_local! {
    /// Set while a server encodes a reply: the streams it hands over.
    static SENDING: RefCell<Option<Vec<Outgoing>>> = const { RefCell::new(None) };
    /// Set while a client decodes a reply: where its streams come from.
    static RECEIVING: RefCell<Option<Opening>> = const { RefCell::new(None) };
}

/// Runs `encode` (a reply's encoding), collecting the streams it hands over.
pub(super) fn encoding<R>(encode: impl FnOnce() -> R) -> (R, Vec<Outgoing>) {
    let outer = SENDING.replace(Some(Vec::new()));
    let out = encode();
    let streams = SENDING.replace(outer).unwrap_or_default();
    (out, streams)
}

/// Runs `decode` (a reply's decoding), opening the streams it finds as coming from
/// `opening`.
pub(super) fn decoding<R>(opening: Opening, decode: impl FnOnce() -> R) -> R {
    let outer = RECEIVING.replace(Some(opening));
    let out = decode();
    RECEIVING.replace(outer);
    out
}

impl<T: Serialize + Send + 'static> Serialize for Stream<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let handed = SENDING.with_borrow_mut(|sending| {
            let sending = sending.as_mut()?;
            let items = self
                .items
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            // A stream sent already has nothing left to send.
            Some(items.map(|items| {
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                sending.push(Outgoing {
                    id,
                    items: Box::pin(items.map(move |item| {
                        item.and_then(|item| super::codec::encode_item(id, &item))
                    })),
                });
                id
            }))
        });
        match handed {
            Some(Some(id)) => serializer.serialize_u64(id),
            Some(None) => Err(serde::ser::Error::custom(
                "this gproc::Stream was sent already",
            )),
            None => Err(refuse(LOCAL_ONLY, serde::ser::Error::custom)),
        }
    }
}

impl<'de, T: DeserializeOwned + Send + 'static> Deserialize<'de> for Stream<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = u64::deserialize(deserializer)?;
        let opening = RECEIVING
            .with_borrow(Clone::clone)
            .ok_or_else(|| refuse(LOCAL_ONLY, serde::de::Error::custom))?;
        Ok(Stream::from_results(super::inflow::open::<T>(opening, id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_stream_yields_its_items() {
        let s = Stream::new(futures_util::stream::iter([1, 2, 3]));
        let items: Vec<_> = s.map(Result::unwrap).collect().await;
        assert_eq!(items, [1, 2, 3]);
    }

    #[test]
    fn a_stream_is_sent_once() {
        let s = Stream::new(futures_util::stream::iter([1u8]));
        let (first, handed) = encoding(|| postcard::to_allocvec(&s));
        assert!(first.is_ok());
        assert_eq!(handed.len(), 1);
        let (second, handed) = encoding(|| postcard::to_allocvec(&s));
        assert!(second.is_err(), "sent twice");
        assert!(handed.is_empty());
    }

    #[test]
    fn outside_a_call_a_stream_does_not_encode_or_decode() {
        let s = Stream::new(futures_util::stream::iter([1u8]));
        assert!(postcard::to_allocvec(&s).is_err(), "encoded outside a call");
        assert!(
            postcard::from_bytes::<Stream<u8>>(&[7]).is_err(),
            "decoded outside a call"
        );
    }
}
