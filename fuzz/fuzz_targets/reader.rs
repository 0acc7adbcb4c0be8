//! Drives a connection's reading half over a real socket with an arbitrary byte stream,
//! as a peer would send it after the handshake: frames of every kind (acknowledged and
//! quiet messages, acknowledgements, refusals), whole, cut anywhere, or broken, with
//! every fifth message first refused for want of room and taken when reading resumes.
//! The first byte picks the receive limit; when it is odd, the next 28 bytes go to the
//! accepting side's hello decoder first, as a handshake would.
#![no_main]

use gproc_runtime::wire::{self, Hello};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, mut rest)) = input.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        let (hello, frames) = rest.split_at(rest.len().min(wire::HELLO_LEN));
        if let Ok(h) = Hello::decode(hello) {
            assert_eq!(Hello::decode(&h.encode()), Ok(h));
        }
        rest = frames;
    }
    let max = if mode < 32 { (mode >> 1) as usize } else { 1 << 16 };
    let (messages, acks, refusals, ended) = wire::replay(rest, max);
    // Every frame takes at least 6 bytes; reading ends at the end of the stream or at the
    // first broken rule, and says which.
    assert!(6 * (messages + acks + refusals) <= rest.len(), "more frames than bytes allow");
    assert!(!ended.is_empty());
});
