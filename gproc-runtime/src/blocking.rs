//! The messaging API for code without an async runtime.
//!
//! Each function runs its async counterpart on gproc's background runtime and blocks the
//! calling thread until it is done. Do not call them from inside an async task: use the
//! async functions there.
//!
//! ```no_run
//! fn main() -> Result<(), gproc::Error> {
//!     gproc::blocking::listen()?;
//!     let msg = gproc::blocking::receive()?;
//!     gproc::blocking::send(msg.sender_pid, "pong")?;
//!     Ok(())
//! }
//! ```

use bytes::Bytes;

use crate::error::Result;
use crate::inbox::Msg;
use crate::rt::block_on;

/// Blocking [`crate::listen`].
///
/// # Errors
///
/// As [`crate::listen`].
pub fn listen() -> Result<()> {
    block_on(crate::listen())
}

/// Blocking [`crate::send`].
///
/// # Errors
///
/// As [`crate::send_group`].
pub fn send(pid: u32, data: impl Into<Bytes>) -> Result<()> {
    let data = data.into();
    block_on(async move { crate::send(pid, data).await })
}

/// Blocking [`crate::send_group`].
///
/// # Errors
///
/// As [`crate::send_group`].
pub fn send_group(pid: u32, group: &str, data: impl Into<Bytes>) -> Result<()> {
    let (group, data) = (group.to_owned(), data.into());
    block_on(async move { crate::send_group(pid, &group, data).await })
}

/// Blocking [`crate::receive`].
///
/// # Errors
///
/// As [`crate::receive_group`].
pub fn receive() -> Result<Msg> {
    block_on(crate::receive())
}

/// Blocking [`crate::receive_group`].
///
/// # Errors
///
/// As [`crate::receive_group`].
pub fn receive_group(group: &str) -> Result<Msg> {
    let group = group.to_owned();
    block_on(async move { crate::receive_group(&group).await })
}
