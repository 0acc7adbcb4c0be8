//! `gproc::Fd`: a file descriptor in a method's arguments or return value.
//!
//! Encoding a request or a reply collects the descriptors in it (each duplicated, so the
//! value keeps its own), and the message carries them by `SCM_RIGHTS`; the value encodes
//! as the descriptor's place among them. Decoding takes each one from the message that
//! brought it. Anywhere else (the tarpc bridge, another serializer) a descriptor does not
//! encode, and says it is local-only.

use std::cell::RefCell;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::local::{refuse, Refusal};

const LOCAL_ONLY: Refusal = Refusal {
    what: "gproc::Fd",
    why: "a descriptor crosses only between gproc processes on one machine (by \
          SCM_RIGHTS), not through the tarpc bridge or a stream's items",
};

/// A file descriptor that crosses to another process in a call: anywhere in a method's
/// arguments or return value, inside the user's own types too.
///
/// It arrives as a new descriptor of the same open file (a listening socket, a pipe's
/// end, a file), as `SCM_RIGHTS` passes it. The sender keeps its own: sending duplicates
/// it. A message that is not taken closes the descriptors it carried.
///
/// ```no_run
/// use std::net::TcpListener;
///
/// #[gproc::service]
/// pub trait Handover {
///     /// The listening socket, for the process that takes over.
///     async fn listener(&self) -> Result<gproc::Fd, String>;
/// }
///
/// # async fn demo(old_server: u32) -> Result<(), Box<dyn std::error::Error>> {
/// let handover = HandoverClient::new(old_server);
/// let fd = handover.listener().await??;
/// let listener = TcpListener::from(std::os::fd::OwnedFd::from(fd));
/// # Ok(()) }
/// ```
pub struct Fd(OwnedFd);

impl Fd {
    /// The descriptor of `fd`: an `OwnedFd`, or what turns into one (a `File`, a
    /// `TcpListener`, a `UnixStream`, a pipe's end).
    pub fn new(fd: impl Into<OwnedFd>) -> Fd {
        Fd(fd.into())
    }

    /// The descriptor, owned.
    pub fn into_owned(self) -> OwnedFd {
        self.0
    }
}

impl From<OwnedFd> for Fd {
    fn from(fd: OwnedFd) -> Fd {
        Fd(fd)
    }
}

impl From<Fd> for OwnedFd {
    fn from(fd: Fd) -> OwnedFd {
        fd.0
    }
}

impl AsFd for Fd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl fmt::Debug for Fd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Fd").field(&self.0.as_raw_fd()).finish()
    }
}

thread_local! {
    /// Set while a request or reply is encoded: the descriptors it carries.
    static SENDING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    /// Set while a request or reply is decoded: the descriptors its message brought,
    /// each taken by the value that names it.
    static RECEIVING: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// Runs `encode`, collecting the descriptors of the values it encodes.
pub(super) fn encoding<R>(encode: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    let outer = SENDING.replace(Some(Vec::new()));
    let out = encode();
    let fds = SENDING.replace(outer).unwrap_or_default();
    (out, fds)
}

/// Runs `decode` with `fds`, the descriptors the message brought; those no value took
/// are closed.
pub(super) fn decoding<R>(fds: Vec<OwnedFd>, decode: impl FnOnce() -> R) -> R {
    let outer = RECEIVING.replace(Some(fds.into_iter().map(Some).collect()));
    let out = decode();
    RECEIVING.replace(outer);
    out
}

impl Serialize for Fd {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let place = SENDING.with_borrow_mut(|sending| {
            let sending = sending.as_mut()?;
            Some(self.0.try_clone().map(|copy| {
                sending.push(copy);
                sending.len() - 1
            }))
        });
        match place {
            Some(Ok(place)) => serializer.serialize_u32(place as u32),
            Some(Err(e)) => Err(serde::ser::Error::custom(format_args!(
                "cannot duplicate a descriptor to send it: {e}"
            ))),
            None => Err(refuse(LOCAL_ONLY, serde::ser::Error::custom)),
        }
    }
}

impl<'de> Deserialize<'de> for Fd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let place = u32::deserialize(deserializer)? as usize;
        let taken = RECEIVING.with_borrow_mut(|receiving| {
            let receiving = receiving.as_mut()?;
            Some(receiving.get_mut(place).and_then(Option::take))
        });
        match taken {
            Some(Some(fd)) => Ok(Fd(fd)),
            Some(None) => Err(serde::de::Error::custom(format_args!(
                "descriptor {place} is not in the message (or was taken twice)"
            ))),
            None => Err(refuse(LOCAL_ONLY, serde::de::Error::custom)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[derive(Serialize, Deserialize)]
    struct Pair {
        name: String,
        first: Fd,
        second: Fd,
    }

    #[test]
    fn descriptors_travel_beside_the_bytes_by_place() {
        let (mut a_read, a_write) = std::os::unix::net::UnixStream::pair().unwrap();
        let (mut b_read, b_write) = std::os::unix::net::UnixStream::pair().unwrap();
        let pair = Pair {
            name: "pipes".into(),
            first: Fd::new(a_write),
            second: Fd::new(b_write),
        };
        let (bytes, fds) = encoding(|| postcard::to_allocvec(&pair).unwrap());
        assert_eq!(fds.len(), 2);
        drop(pair);
        let back: Pair = decoding(fds, || postcard::from_bytes(&bytes).unwrap());
        assert_eq!(back.name, "pipes");
        std::os::unix::net::UnixStream::from(back.first.into_owned())
            .write_all(b"one")
            .unwrap();
        std::os::unix::net::UnixStream::from(back.second.into_owned())
            .write_all(b"two")
            .unwrap();
        let (mut one, mut two) = (String::new(), String::new());
        a_read.read_to_string(&mut one).unwrap();
        b_read.read_to_string(&mut two).unwrap();
        assert_eq!((one.as_str(), two.as_str()), ("one", "two"));
    }

    #[test]
    fn outside_a_call_a_descriptor_does_not_encode() {
        let (_read, write) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(postcard::to_allocvec(&Fd::new(write)).is_err());
        let refusal = super::super::local::take_refusal().expect("noted");
        assert_eq!(refusal.what, "gproc::Fd");
    }

    #[test]
    fn a_place_the_message_does_not_have_is_an_error() {
        let bytes = postcard::to_allocvec(&3u32).unwrap();
        let result = decoding(Vec::new(), || postcard::from_bytes::<Fd>(&bytes));
        assert!(result.is_err());
    }
}
