//! The endpoint's bring-up: the inbox installed, the socket bound and looked after (with
//! the names held), the watchdog started, and the parent told that this child listens;
//! and the listing of the directory's endpoints.
//!
//! It sits above the transport and the inbox and below the RPC layer, whose
//! `rpc::up` installs its routes first and then calls [`up`]: every entry point of the
//! public API goes through `rpc::up`, so that every endpoint answers RPC requests,
//! whether it serves anything or not.

use bytes::Bytes;

use crate::error::Result;
use crate::groups::READY_GROUP;
use crate::identity::{given_name, is_child, ppid};
use crate::names;
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
    names::sweep();
    take_given_name();
    driver::start_watchdog();
    start_upkeep();
    announce_ready();
    Ok(())
}

/// The PIDs of the live processes with an endpoint in this process's directory
/// ([`dir`](crate::dir)), in order, this one included once it listens. What `gproc ls`
/// lists; socket files left by dead processes are passed over.
///
/// A process listed may still be a PID reused by a process that is not gproc's, whose
/// predecessor's socket file was not removed yet: [`ping`](crate::ping) or
/// [`introspect`](crate::introspect) it to know.
///
/// ```
/// for pid in gproc::endpoints()? {
///     println!("{pid} has an endpoint in {}", gproc::dir().display());
/// }
/// # Ok::<(), gproc::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Io`](crate::Error::Io) when the directory cannot be read.
pub fn endpoints() -> Result<Vec<u32>> {
    Ok(listener::live_sockets(crate::config::dir())?)
}

/// Looks after the socket file for the life of the process (see [`listener::upkeep`]).
fn start_upkeep() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        crate::rt::handle().spawn(async {
            let mut every = tokio::time::interval(listener::UPKEEP);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                listener::upkeep();
                names::upkeep();
            }
        });
    });
}

/// A child its manager named takes the name, before it tells the manager that it
/// listens: whoever the manager lets know can find it by name at once.
fn take_given_name() {
    if let Some(name) = given_name() {
        if let Err(e) = names::take(&name) {
            tracing::warn!(name, "gproc: cannot take the name the manager gave: {e}");
        }
    }
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
