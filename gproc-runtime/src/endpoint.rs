//! The endpoint's bring-up: the inbox installed, the socket bound, the watchdog started,
//! and the parent told that this child listens.
//!
//! It sits above the transport and the inbox and below the RPC layer, whose
//! `rpc::up` installs its routes first and then calls [`up`]: every entry point of the
//! public API goes through `rpc::up`, so that every endpoint answers RPC requests,
//! whether it serves anything or not.

use bytes::Bytes;

use crate::error::Result;
use crate::groups::READY_GROUP;
use crate::identity::{is_child, ppid};
use crate::transport::{self, driver, listener, Hold};

/// Brings this process's endpoint up if it is not up yet. Cheap once it is.
///
/// # Errors
///
/// The directory is unusable ([`Error::Directory`](crate::Error::Directory)), or binding
/// the socket failed. A later call tries again.
pub(crate) fn up() -> Result<()> {
    crate::inbox::install();
    if listener::is_bound() {
        return Ok(());
    }
    listener::bind()?;
    driver::start_watchdog();
    announce_ready();
    Ok(())
}

/// A managed child tells its parent that it listens.
fn announce_ready() {
    if !is_child() {
        return;
    }
    let parent = ppid();
    crate::rt::handle().spawn(async move {
        let told = async {
            let peer = transport::peer(parent).await?;
            match peer.send_message(READY_GROUP, &Bytes::new(), true, Hold::Never)? {
                Some(ack) => ack.await,
                None => Ok(()),
            }
        };
        if let Err(e) = told.await {
            tracing::debug!(
                parent,
                "gproc: could not tell the parent that this child listens: {e}"
            );
        }
    });
}
