//! Values that travel only between gproc processes on one machine (streams, and
//! descriptors): how their encoding refuses, and how a caller learns that it did.
//!
//! serde's errors keep no message through postcard, so a value that refuses to encode or
//! decode also notes, on this thread, what it is and why; the encoder's caller turns that
//! note into [`RpcError::LocalOnly`](super::RpcError::LocalOnly).

use std::cell::Cell;

/// What refused, and why.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refusal {
    pub what: &'static str,
    pub why: &'static str,
}

thread_local! {
    static REFUSED: Cell<Option<Refusal>> = const { Cell::new(None) };
}

/// Notes a refusal on this thread and returns the error that carries it.
pub(crate) fn refuse<E: std::fmt::Display>(refusal: Refusal, error: impl FnOnce(String) -> E) -> E {
    REFUSED.set(Some(refusal));
    error(format!(
        "{} cannot travel here: {}",
        refusal.what, refusal.why
    ))
}

/// The refusal noted on this thread since the last call, if any.
pub(crate) fn take_refusal() -> Option<Refusal> {
    REFUSED.take()
}

/// The error a call fails with after `refusal`.
pub(crate) fn error(refusal: Refusal) -> super::RpcError {
    super::RpcError::LocalOnly {
        what: refusal.what.to_owned(),
        why: refusal.why.to_owned(),
    }
}
