//! Names, the public side: hold one, find its holder, list them, send by name.
//!
//! The registry itself (files and locks) is `names.rs`.

use bytes::Bytes;

use crate::error::Result;
use crate::names as registry;

/// Holds `name` for this process, until it exits (however it exits: a killed process's
/// names are free at once). A name is 1 to 100 characters of `[A-Za-z0-9._-]`; a process
/// may hold several; holding one it already holds is `Ok`. This process's endpoint is
/// brought up first, so that whoever finds the name can reach it.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # gproc::Config::new().dir(dir.path()).install()?;
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # runtime.block_on(async {
/// gproc::register("calc").await?;
/// assert_eq!(gproc::lookup("calc").await?, gproc::pid());
/// gproc::send_to("calc", "to whoever holds calc").await?;
/// assert_eq!(gproc::receive().await?.data, "to whoever holds calc");
/// assert!(matches!(gproc::lookup("nobody").await, Err(gproc::Error::NoSuchName(_))));
/// # Ok::<(), gproc::Error>(())
/// # })?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::InvalidName`](crate::Error::InvalidName);
/// [`Error::NameTaken`](crate::Error::NameTaken) with the PID of the live process that
/// holds it; the errors of [`listen`](crate::listen).
pub async fn register(name: &str) -> Result<()> {
    registry::validate(name)?;
    crate::rpc::up()?;
    registry::take(name)
}

/// The PID of the process holding `name` now. Never a process that merely reused the PID
/// of a holder that exited.
///
/// # Errors
///
/// [`Error::NoSuchName`](crate::Error::NoSuchName) when no live process holds it (at
/// once: nothing is waited for); [`Error::InvalidName`](crate::Error::InvalidName).
pub async fn lookup(name: &str) -> Result<u32> {
    registry::lookup(name).map(|(pid, _)| pid)
}

/// Every name held in this directory now, with its holder, in name order.
///
/// # Errors
///
/// [`Error::Io`](crate::Error::Io) when the directory cannot be read.
pub async fn names() -> Result<Vec<(String, u32)>> {
    registry::list()
}

/// Sends `data` to the default group of the process holding `name`, as
/// [`send`](crate::send) does.
///
/// # Errors
///
/// See [`send_group_to`].
pub async fn send_to(name: &str, data: impl Into<Bytes>) -> Result<()> {
    send_group_to(name, "", data).await
}

/// Sends `data` to the queue `group` of the process holding `name`, and returns once it
/// is queued there, as [`send_group`](crate::send_group) does. The holder found is the
/// one sent to: a process that reused its PID meanwhile is refused.
///
/// # Errors
///
/// [`Error::NoSuchName`](crate::Error::NoSuchName),
/// [`Error::InvalidName`](crate::Error::InvalidName), and those of
/// [`send_group`](crate::send_group).
pub async fn send_group_to(name: &str, group: &str, data: impl Into<Bytes>) -> Result<()> {
    let (pid, start_ticks) = registry::lookup(name)?;
    crate::messaging::send_to(pid, Some(start_ticks), group, data.into()).await
}
