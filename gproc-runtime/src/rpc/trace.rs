//! The tracing spans of calls, on both sides: what an operator follows with
//! `RUST_LOG=gproc=debug`.
//!
//! A call on the calling side is a span `call` (service, method, pid, outcome, duration),
//! on the serving side a span `serve` (service, method, peer, outcome, duration). When
//! the call ends, its outcome and duration are recorded on the span and one event says
//! so; a call dropped before it ended (cancelled, or stopped at its deadline on the
//! server) says `cancelled`. When no subscriber wants them, a span costs a check and
//! nothing is timed.

use std::fmt::Display;
use std::time::Instant;

use tracing::field::{debug, Empty};
use tracing::Span;

use super::contract::RpcError;

/// A call's span, and when it started (only when the span is enabled).
pub(super) struct Traced {
    span: Span,
    /// What ends: "call" or "handler".
    what: &'static str,
    started: Option<Instant>,
    ended: bool,
}

impl Traced {
    /// The span of a call from this process.
    pub(super) fn call(service: &str, method: &str) -> Traced {
        let span = tracing::debug_span!(
            "call",
            service,
            method,
            pid = Empty,
            outcome = Empty,
            duration = Empty
        );
        Traced::new(span, "call")
    }

    /// The span of a handler serving a call from `peer`.
    pub(super) fn serve(service: &str, method: &str, peer: u32) -> Traced {
        let span = tracing::debug_span!(
            "serve",
            service,
            method,
            peer,
            outcome = Empty,
            duration = Empty
        );
        Traced::new(span, "handler")
    }

    fn new(span: Span, what: &'static str) -> Traced {
        let started = (!span.is_disabled()).then(Instant::now);
        Traced {
            span,
            what,
            started,
            ended: false,
        }
    }

    pub(super) fn span(&self) -> &Span {
        &self.span
    }

    /// The PID a call goes to, once it is known (by name, after the lookup).
    pub(super) fn pid(&self, pid: u32) {
        self.span.record("pid", pid);
    }

    /// Records how the call ended: `outcome` is a short word, `error` what went wrong.
    pub(super) fn end(&mut self, outcome: &str, error: Option<&dyn Display>) {
        self.ended = true;
        let Some(started) = self.started else {
            return;
        };
        let took = started.elapsed();
        self.span.record("outcome", outcome);
        self.span.record("duration", debug(took));
        let _inside = self.span.enter();
        let what = self.what;
        match error {
            None => tracing::debug!("gproc: {what} ended: {outcome}"),
            Some(error) => tracing::debug!("gproc: {what} ended: {outcome}: {error}"),
        }
    }

    /// Records the end of a call from its result.
    pub(super) fn end_with<T>(&mut self, result: &Result<T, RpcError>) {
        match result {
            Ok(_) => self.end("ok", None),
            Err(e) => self.end(outcome(e), Some(e)),
        }
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if !self.ended {
            self.end("cancelled", None);
        }
    }
}

/// The short word for how a call failed.
pub(super) fn outcome(error: &RpcError) -> &'static str {
    match error {
        RpcError::Transport(_) => "transport",
        RpcError::DeadlineExceeded => "deadline",
        RpcError::ServiceNotServed { .. } => "not-served",
        RpcError::SchemaMismatch { .. } => "schema-mismatch",
        RpcError::Decode => "decode",
        RpcError::HandlerPanicked => "panicked",
        RpcError::LocalOnly { .. } => "local-only",
        RpcError::AlreadyServed { .. } => "already-served",
        RpcError::NoSuchMethod { .. } => "no-such-method",
        RpcError::BadArguments { .. } => "bad-arguments",
        RpcError::NotJson { .. } => "not-json",
    }
}
