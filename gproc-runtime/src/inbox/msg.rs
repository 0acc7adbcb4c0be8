//! A message as a receiver takes it.

use bytes::Bytes;

/// A message received from another process.
///
/// ```no_run
/// # async fn demo() -> Result<(), gproc::Error> {
/// let msg: gproc::Msg = gproc::receive().await?;
/// println!("from {} to {} in {:?}: {:?}", msg.sender_pid, msg.receiver_pid, msg.group, msg.data);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// The sending process's PID, as the kernel reported it for the connection.
    pub sender_pid: u32,
    /// This process's PID.
    pub receiver_pid: u32,
    /// The group it was sent to (`""` for [`send`](crate::send)).
    pub group: String,
    /// The payload.
    pub data: Bytes,
}
