//! Group names: the reserved ones, all here, and the check of a user's.

use crate::error::{Error, Result};
use crate::transport::wire::MAX_GROUP_LEN;

/// The prefix of group names reserved for gproc's own services.
pub const RESERVED_PREFIX: &str = "gproc/";
/// The prefix of the groups that carry RPC requests, followed by the service name.
pub(crate) const REQUEST_PREFIX: &str = "gproc/rpc/";
/// The group RPC replies come back in.
pub(crate) const REPLY_GROUP: &str = "gproc/reply";
/// The group of the built-in introspection service.
pub(crate) const INTROSPECT_GROUP: &str = "gproc/introspect";
/// The group a managed child's endpoint uses to tell its manager that it listens.
pub(crate) const READY_GROUP: &str = "gproc/ready";

/// Checks a group name a user gave.
///
/// # Errors
///
/// [`Error::ReservedGroup`] for a `gproc/` name, [`Error::InvalidGroup`] for one longer
/// than 255 bytes.
pub(crate) fn check(group: &str) -> Result<()> {
    if group.starts_with(RESERVED_PREFIX) {
        return Err(Error::ReservedGroup);
    }
    if group.len() > MAX_GROUP_LEN {
        return Err(Error::InvalidGroup(format!(
            "{} bytes is longer than the limit of {MAX_GROUP_LEN}",
            group.len()
        )));
    }
    Ok(())
}
