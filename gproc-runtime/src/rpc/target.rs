//! Who a stub calls: a PID, or whoever holds a name now.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::contract::RpcError;

/// A stub's callee.
#[derive(Debug, Clone)]
pub(super) enum Target {
    Pid(u32),
    Name(Arc<Named>),
}

/// A callee by name: the name, and the holder found last.
#[derive(Debug)]
pub(super) struct Named {
    name: String,
    /// The PID found last; 0 before the first lookup.
    last: AtomicU32,
}

impl Target {
    pub(super) fn name(name: String) -> Target {
        Target::Name(Arc::new(Named {
            name,
            last: AtomicU32::new(0),
        }))
    }

    /// The PID to call now. By name: the holder found last while this process still has a
    /// connection to it (a connection closes when its process exits, so that PID cannot
    /// have been reused meanwhile), else whoever holds the name now.
    ///
    /// # Errors
    ///
    /// [`RpcError::Transport`] with [`Error::NoSuchName`](crate::Error::NoSuchName) or
    /// [`Error::InvalidName`](crate::Error::InvalidName).
    pub(super) fn resolve(&self) -> Result<u32, RpcError> {
        let named = match self {
            Target::Pid(pid) => return Ok(*pid),
            Target::Name(named) => named,
        };
        let last = named.last.load(Ordering::Relaxed);
        if last != 0 && crate::transport::is_connected(last) {
            return Ok(last);
        }
        let (pid, _) = crate::names::lookup(&named.name).map_err(RpcError::Transport)?;
        named.last.store(pid, Ordering::Relaxed);
        Ok(pid)
    }

    /// The PID called: the one given, or the holder of the name found last (0 before the
    /// first call).
    pub(super) fn pid(&self) -> u32 {
        match self {
            Target::Pid(pid) => *pid,
            Target::Name(named) => named.last.load(Ordering::Relaxed),
        }
    }

    pub(super) fn name_of(&self) -> Option<&str> {
        match self {
            Target::Pid(_) => None,
            Target::Name(named) => Some(&named.name),
        }
    }
}
