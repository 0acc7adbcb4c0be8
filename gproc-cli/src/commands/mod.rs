//! The subcommands, one per file, and what several of them share.

pub mod call;
pub mod inspect;
pub mod ls;
pub mod ping;
pub mod recv;
pub mod send;

use std::collections::BTreeMap;
use std::time::Duration;

use gproc::{RpcError, ServiceDescription};

use crate::failure::Failure;

/// The services `pid` serves, within `timeout`.
pub async fn services(pid: u32, timeout: Duration) -> Result<Vec<ServiceDescription>, RpcError> {
    match tokio::time::timeout(timeout, gproc::introspect(pid)).await {
        Ok(services) => services,
        Err(_) => Err(RpcError::DeadlineExceeded),
    }
}

/// Every live name of the directory, by holder.
pub async fn names_by_pid() -> Result<BTreeMap<u32, Vec<String>>, Failure> {
    let names = gproc::names()
        .await
        .map_err(|e| Failure::gproc("cannot list the names", &e))?;
    let mut by_pid: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (name, pid) in names {
        by_pid.entry(pid).or_default().push(name);
    }
    for names in by_pid.values_mut() {
        names.sort();
    }
    Ok(by_pid)
}
