//! Errors: one line on stderr, and the exit status.

use std::process::ExitCode;
use std::time::Duration;

use gproc::{Error, RpcError};

/// The status of a call whose method returned its `Err`.
pub const METHOD_ERR: u8 = 1;
/// The status of every other error.
pub const FAILED: u8 = 2;

/// What went wrong, as one line for the operator.
#[derive(Debug)]
pub struct Failure(String);

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure(message.into())
    }

    /// `what` failed because of a transport error.
    pub fn gproc(what: &str, error: &Error) -> Failure {
        Failure(format!("{what}: {error}"))
    }

    /// `what`, a call with a deadline of `timeout`, failed.
    pub fn rpc(what: &str, error: &RpcError, timeout: Duration) -> Failure {
        match error {
            RpcError::DeadlineExceeded => Failure(format!(
                "{what}: no answer within {} (a handler is stopped at its deadline); raise it with --timeout",
                humantime::format_duration(timeout)
            )),
            RpcError::Transport(e) => Failure::gproc(what, e),
            other => Failure(format!("{what}: {other}")),
        }
    }
}

/// Prints `failure` on stderr, on one line, and gives the exit status of a failure.
pub fn report(failure: &Failure) -> ExitCode {
    let line = failure.0.replace('\n', " ");
    let mut err = anstream::stderr();
    let style = anstyle::Style::new()
        .bold()
        .fg_color(Some(anstyle::AnsiColor::Red.into()));
    use std::io::Write as _;
    let _ = writeln!(err, "{style}gproc: error:{style:#} {line}");
    ExitCode::from(FAILED)
}
