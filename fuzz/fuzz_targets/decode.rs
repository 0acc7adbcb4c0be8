//! Drives the wire decoders the way a connection's reader does: the input is the byte
//! stream a peer sends after the handshake (hello or welcome first, then frames of every
//! kind: acknowledged and quiet messages, with or without a descriptor count,
//! acknowledgements, refusals), both directions alike.
#![no_main]

use gproc_runtime::wire::{self, Frame, Hello, Welcome, WireError};
use gproc_runtime::Bytes;
use libfuzzer_sys::fuzz_target;

/// A small receive limit, so that inputs can reach and cross it.
const MAX_MESSAGE: usize = 1 << 20;

fuzz_target!(|input: &[u8]| {
    // What the connecting side reads first: a welcome.
    if let Ok(w) = Welcome::decode(input) {
        assert_eq!(Welcome::decode(&w.encode()), Ok(w));
    }
    for chunk in input.chunks(wire::ACK_LEN) {
        if let Ok(count) = wire::decode_ack(chunk) {
            assert_eq!(wire::encode_ack(count)[..], chunk[..wire::ACK_LEN]);
        }
    }

    // What the accepting side reads first: a hello; then either side reads frames.
    let (hello, mut rest) = input.split_at(input.len().min(wire::HELLO_LEN));
    if let Ok(h) = Hello::decode(hello) {
        assert_eq!(Hello::decode(&h.encode()), Ok(h));
    }
    // The limit also varies a little, from the first byte, to cover tiny limits.
    let max = match input.first() {
        Some(&b) if b < 16 => usize::from(b),
        _ => MAX_MESSAGE,
    };
    let bound = wire::LEN_PREFIX + wire::max_frame_body(max);
    loop {
        match wire::frame_len(rest, max) {
            Ok(None) => {
                assert!(rest.len() < wire::LEN_PREFIX);
                break;
            }
            Ok(Some(len)) => {
                assert!(
                    len <= bound,
                    "frame_len returned {len}, over the bound {bound}"
                );
                assert!(len >= wire::LEN_PREFIX + 2);
                if rest.len() < len {
                    // The reader waits for more; a truncated frame must not decode.
                    assert!(wire::decode_frame(Bytes::copy_from_slice(rest)).is_err());
                    break;
                }
                let (frame, tail) = rest.split_at(len);
                match wire::decode_frame(Bytes::copy_from_slice(frame)) {
                    Ok(Frame::Message(m)) => {
                        assert!(m.group.len() <= wire::MAX_GROUP_LEN);
                        // A count byte after the group length when descriptors come with it.
                        let fds = wire::fd_count(frame);
                        assert!(fds <= wire::MAX_FDS);
                        assert!(m.fds.is_empty(), "the decoder makes no descriptors");
                        let head = wire::LEN_PREFIX + 2 + usize::from(fds > 0);
                        assert_eq!(len, head + m.group.len() + m.data.len());
                        assert_eq!(&frame[len - m.data.len()..], &m.data[..]);
                    }
                    Ok(Frame::Ack(count)) => {
                        assert_eq!(len, wire::ACK_LEN);
                        assert_eq!(wire::encode_ack(count)[..], frame[..]);
                    }
                    Ok(Frame::Refusal { number, why }) => {
                        assert_eq!(len, wire::REFUSAL_LEN);
                        assert_eq!(wire::encode_refusal(number, why)[..], frame[..]);
                    }
                    Err(WireError::Malformed(_)) => break,
                    Err(e) => panic!("decode_frame returned {e:?}"),
                }
                rest = tail;
            }
            Err(WireError::TooLong { claimed, limit }) => {
                assert!(claimed > limit);
                assert_eq!(limit as usize, wire::max_frame_body(max));
                break;
            }
            Err(WireError::Malformed(_)) => break,
            Err(e) => panic!("frame_len returned {e:?}"),
        }
    }
});
