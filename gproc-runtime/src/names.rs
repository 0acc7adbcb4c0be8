//! Names (placeholder until the registry lands): only the validation the manager needs.

use crate::error::{Error, Result};

/// Whether `name` can be a name: 1 to 100 characters of `[A-Za-z0-9._-]`.
pub(crate) fn validate(name: &str) -> Result<()> {
    let ok = (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}
