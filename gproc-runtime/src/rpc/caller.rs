//! Who called: the process, its user, and the call's deadline, for the handler that
//! serves the call.

use std::future::Future;
use std::time::Instant;

/// The process whose call a handler is serving, as [`caller`] reports it.
///
/// `pid` and `uid` come from the kernel's credentials of the connection the call came
/// on (`SO_PEERCRED`), never from anything the caller claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caller {
    /// The calling process's PID.
    pub pid: u32,
    /// The calling process's user ID.
    pub uid: u32,
    /// When the call's deadline passes, on this process's clock: the time the caller
    /// had left when the request was read, added to the moment it was read. A one-way
    /// call's handler has no deadline: a year from the moment it started.
    pub deadline: Instant,
}

tokio::task_local! {
    static CALLER: Caller;
}

/// The caller of the handler running now; `None` outside a handler.
///
/// A handler can check who calls it, for example to serve only its own user:
///
/// ```
/// #[gproc::service]
/// pub trait Admin {
///     async fn shutdown(&self) -> Result<(), String>;
/// }
///
/// struct MyAdmin;
///
/// impl Admin for MyAdmin {
///     async fn shutdown(&self) -> Result<(), String> {
///         use std::os::unix::fs::MetadataExt;
///         let caller = gproc::caller().ok_or("not called over gproc")?;
///         let me = std::fs::metadata("/proc/self").map_err(|e| e.to_string())?.uid();
///         if caller.uid != me {
///             return Err(format!("uid {} may not stop this server", caller.uid));
///         }
///         Ok(())
///     }
/// }
/// ```
///
/// A handler called in-process (a server used as its own client's stub) or through the
/// tarpc bridge has no caller: `None`. So has a task the handler spawned, as the
/// caller belongs to the handler's own task.
pub fn caller() -> Option<Caller> {
    CALLER.try_with(|caller| *caller).ok()
}

/// Runs `handler` with `caller` as what [`caller`] returns inside it.
pub(super) fn serving<F: Future>(caller: Caller, handler: F) -> impl Future<Output = F::Output> {
    CALLER.scope(caller, handler)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn none_outside_a_handler_and_the_callers_inside() {
        assert_eq!(caller(), None);
        let who = Caller {
            pid: 42,
            uid: 1000,
            deadline: Instant::now(),
        };
        let inside = serving(who, async { caller() }).await;
        assert_eq!(inside, Some(who));
        assert_eq!(caller(), None, "the scope ends with the handler");
    }
}
