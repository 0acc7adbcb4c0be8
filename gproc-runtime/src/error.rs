//! The error type of raw messaging and of the process manager.

use std::path::PathBuf;
use std::process::ExitStatus;

/// What went wrong in a gproc operation.
///
/// Every variant says what happened and, where there is one, what to do about it.
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a `_` arm.
///
/// ```
/// # async fn demo() {
/// match gproc::send(999_999_999, "hello").await {
///     Ok(()) => println!("delivered"),
///     Err(gproc::Error::NoSuchProcess(pid)) => println!("{pid} is gone"),
///     Err(gproc::Error::NotListening(pid)) => println!("{pid} has no endpoint yet"),
///     Err(other) => println!("failed: {other}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No process with this PID is alive (or it is a zombie waiting to be reaped).
    #[error("no process with PID {0} is alive; check the PID, or whether the process has already exited")]
    NoSuchProcess(u32),

    /// The process is alive but has no gproc endpoint.
    #[error(
        "process {0} is alive but has no gproc endpoint; it has not called gproc::listen, send or \
         receive yet (wait for it with Process::ready), or it uses another GPROC_DIR"
    )]
    NotListening(u32),

    /// The peer refused this process's uid, this process refused the peer's, or the
    /// socket file is not accessible.
    #[error(
        "permission denied: the endpoint accepts only its own uid (and those added with \
         Config::allow_uid), or its socket is not accessible to this user"
    )]
    PermissionDenied,

    /// The message is larger than the sender's or the receiver's limit. Nothing was written.
    #[error(
        "message of {size} bytes exceeds the limit of {limit} bytes; nothing was sent. Raise \
         Config::max_message_size on both sides, or split the message"
    )]
    MessageTooLarge {
        /// The size of the message, in bytes.
        size: usize,
        /// The smaller of this process's and the receiver's limit, in bytes.
        limit: usize,
    },

    /// The connection closed before the receiver acknowledged the message.
    #[error(
        "connection lost: the receiving process closed the connection (or died) before \
         acknowledging; the message may or may not have arrived"
    )]
    ConnectionLost,

    /// An operation with a deadline did not finish in time.
    #[error("timed out; the peer may be stopped or overloaded (see Config::connect_timeout)")]
    Timeout,

    /// Group names starting with `gproc/` belong to the RPC layer and the introspection service.
    #[error("group names starting with \"gproc/\" are reserved for gproc's RPC and introspection; pick another name")]
    ReservedGroup,

    /// An I/O error from the operating system.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// The endpoint directory cannot be used safely.
    #[error("the gproc directory {path} cannot be used: {reason}")]
    Directory {
        /// The directory that was refused.
        path: PathBuf,
        /// Why it was refused, and what to do.
        reason: String,
    },

    /// [`Config::install`](crate::Config::install) was called after gproc was first used.
    #[error(
        "gproc::Config::install was called after gproc was already in use (or installed twice); \
         install the configuration once, at the start of main"
    )]
    AlreadyInitialized,

    /// The group name is not valid (too long).
    #[error("invalid group name: {0}")]
    InvalidGroup(String),

    /// The peer broke the protocol: wrong magic, another protocol version, a malformed frame.
    #[error("protocol error with process {pid}: {reason}")]
    Protocol {
        /// The peer's PID.
        pid: u32,
        /// What was wrong.
        reason: String,
    },

    /// The receiver has as many groups alive as it allows (each holding messages or a
    /// waiting receiver), and the message named another: that one message was not
    /// queued. The connection, and every other send on it, goes on.
    #[error(
        "process {pid} did not queue the message: it has {limit} groups in use (each holding \
         messages or a waiting receiver), its limit; let it receive from them, or use fewer \
         group names"
    )]
    GroupLimit {
        /// The process whose limit it is.
        pid: u32,
        /// How many groups it keeps alive at most.
        limit: usize,
    },

    /// A message was given more descriptors than one message carries (the kernel's limit
    /// for one `sendmsg`, [`MAX_FDS`](crate::MAX_FDS)). Nothing was sent, and the
    /// descriptors were closed.
    #[error(
        "{count} descriptors are too many for one message: at most {limit} cross in one; \
         nothing was sent. Send them in several messages"
    )]
    TooManyFds {
        /// How many descriptors the message was given.
        count: usize,
        /// How many one message carries at most.
        limit: usize,
    },

    /// [`Config::install`](crate::Config::install) refused a setting.
    #[error("invalid gproc configuration: {0}")]
    InvalidConfig(String),

    /// The child process exited (for example before its endpoint came up).
    #[error("process {pid} exited ({status}) before the operation completed")]
    ProcessExited {
        /// The child's PID.
        pid: u32,
        /// How it exited.
        status: ExitStatus,
    },

    /// The name is not 1 to 100 characters of `[A-Za-z0-9._-]` (or is only dots).
    #[error(
        "invalid name {0:?}: a name is 1 to 100 characters of A-Z, a-z, 0-9, '.', '_' and '-', \
         and not only dots"
    )]
    InvalidName(String),

    /// Another live process holds the name in this directory.
    #[error(
        "the name {name:?} is held by process {pid}; a name has one holder at a time (it is \
         free once that process exits): pick another name, or stop that process"
    )]
    NameTaken {
        /// The name asked for.
        name: String,
        /// The process holding it.
        pid: u32,
    },

    /// No live process holds the name in this directory.
    #[error(
        "no process holds the name {0:?} in this directory; check the name, whether its \
         holder has started (and registered it), or whether it uses another GPROC_DIR"
    )]
    NoSuchName(String),

    /// The [`Process`](crate::Process) has not been started yet.
    #[error("the process has not been started; call Process::start first")]
    NotStarted,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
