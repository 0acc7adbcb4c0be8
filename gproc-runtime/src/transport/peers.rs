//! One connection per peer process, whichever side connected.
//!
//! When both processes connect to each other at once, the connection that the lower PID
//! opened is kept: the higher PID's own attempt is answered `Superseded`, and its sends
//! wait for the other connection instead. Connections closed by a peer's exit leave the
//! table at once, so that a long-running process holds descriptors for live peers only.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;

use super::connection::Peer;
use super::driver;
use super::engine::lock;
use super::handshake::{self, Answer, Outcome, Settle};
use super::wire::Status;
use crate::config::settings;
use crate::error::{Error, Result};
use crate::identity::{is_alive, pid};

#[derive(Default)]
struct Slot {
    /// The connection this process sends on.
    primary: Option<Arc<Peer>>,
    /// Further connections the same process opened (a peer of a gproc that does not
    /// settle, or one replacing a connection not yet seen closed here): served, and
    /// promoted when the primary closes.
    others: Vec<Arc<Peer>>,
    /// A connection of ours to this PID is being made.
    connecting: bool,
}

struct Table {
    slots: Mutex<HashMap<u32, Slot>>,
    /// Told whenever a slot changes: waiters look again.
    changed: Notify,
}

/// What handshakes ask of this table.
pub(crate) static SETTLE: Settle = Settle {
    accept,
    connected,
    closed,
};

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table {
        slots: Mutex::new(HashMap::new()),
        changed: Notify::new(),
    })
}

/// The connection to `target`, connecting if there is none.
///
/// # Errors
///
/// [`Error::NoSuchProcess`] or [`Error::NotListening`] when nothing listens at its path;
/// [`Error::PermissionDenied`] for an endpoint of a uid not allowed; [`Error::Timeout`]
/// when connecting and the handshake take longer than the configured connect timeout;
/// [`Error::Protocol`] for a peer that is not a gproc of this protocol version.
pub(crate) async fn peer(target: u32) -> Result<Arc<Peer>> {
    let t = table();
    let deadline = tokio::time::Instant::now() + settings().connect_timeout;
    loop {
        let changed = t.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let connect_now = {
            let mut slots = lock(&t.slots);
            let slot = slots.entry(target).or_default();
            if let Some(peer) = slot.primary.as_ref().filter(|p| !p.is_closed()) {
                return Ok(peer.clone());
            }
            !std::mem::replace(&mut slot.connecting, true)
        };
        if connect_now {
            let made = connect(target, deadline).await;
            if let Some(slot) = lock(&t.slots).get_mut(&target) {
                slot.connecting = false;
            }
            t.changed.notify_waiters();
            match made {
                Ok(Some(peer)) => return Ok(peer),
                // Superseded: the peer's own connection is on its way.
                Ok(None) => {}
                Err(e) => {
                    forget_if_empty(target);
                    return Err(e);
                }
            }
            continue;
        }
        // Another task connects, or the peer's connection is on its way: wait for it.
        driver::attend();
        if crate::rt::timeout_at(deadline, changed).await.is_err() {
            return Err(Error::Timeout);
        }
    }
}

/// Whether a connection to `target` is open now; connects to nothing.
pub(crate) fn is_connected(target: u32) -> bool {
    lock(&table().slots)
        .get(&target)
        .and_then(|slot| slot.primary.as_ref())
        .is_some_and(|peer| !peer.is_closed())
}

/// Connects to `target` and runs the handshake. `Ok(None)` when superseded.
async fn connect(target: u32, deadline: tokio::time::Instant) -> Result<Option<Arc<Peer>>> {
    let s = settings();
    s.ensure_dir()?;
    let path = s.socket_path(target);
    let mut pause = Duration::from_micros(100);
    let stream = loop {
        match connect_now(&path) {
            Ok(stream) => break stream,
            // The listener's backlog is full: it is busy accepting. Try again shortly.
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if tokio::time::Instant::now() + pause > deadline {
                    return Err(Error::Timeout);
                }
                crate::rt::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(connect_error(target, e)),
        }
    };
    let cred = rustix::net::sockopt::socket_peercred(&stream).map_err(std::io::Error::from)?;
    if !s.uid_allowed(cred.uid.as_raw()) {
        tracing::warn!(
            target,
            uid = cred.uid.as_raw(),
            "gproc: refusing to send to an endpoint of another uid"
        );
        return Err(Error::PermissionDenied);
    }
    let outcome = handshake::connecting(stream, target, &SETTLE)?;
    driver::attend();
    match crate::rt::timeout_at(deadline, outcome).await {
        Err(_) => Err(Error::Timeout),
        Ok(Err(_)) => Err(Error::ConnectionLost),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Ok(Ok(Outcome::Established(peer)))) => Ok(Some(peer)),
        Ok(Ok(Ok(Outcome::Superseded))) => Ok(None),
    }
}

/// A non-blocking connect: for a Unix socket it either completes at once or fails with
/// `WouldBlock` when the listener's backlog is full.
fn connect_now(path: &std::path::Path) -> std::io::Result<UnixStream> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    let addr = SocketAddrUnix::new(path)?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => Ok(UnixStream::from(fd)),
        Err(rustix::io::Errno::AGAIN) => Err(ErrorKind::WouldBlock.into()),
        Err(e) => Err(e.into()),
    }
}

/// Turns a failed connect into the error a user can act on.
fn connect_error(target: u32, e: std::io::Error) -> Error {
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::ConnectionRefused if is_alive(target) => {
            Error::NotListening(target)
        }
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => Error::NoSuchProcess(target),
        ErrorKind::PermissionDenied => Error::PermissionDenied,
        _ => Error::Io(e),
    }
}

/// Decides whether an accepted connection is kept, and if so makes it visible, after
/// `answer` has written the welcome (so that the welcome comes before any frame).
///
/// The rule that settles a race: of two connections between the same two processes, the
/// one the lower PID opened is kept.
fn accept(peer: Arc<Peer>, answer: Answer<'_>) -> std::result::Result<Arc<Peer>, Status> {
    let t = table();
    if peer.pid == pid() {
        // A connection to ourselves: its other end is our primary, this one only serves.
        return answer(Status::Ok)
            .map(|()| peer)
            .map_err(|_| Status::BadHello);
    }
    let mut slots = lock(&t.slots);
    let slot = slots.entry(peer.pid).or_default();
    let live = slot.primary.clone().filter(|p| !p.is_closed());
    let ours_wins = pid() < peer.pid;
    let (status, becomes_primary, replaced) = match &live {
        // Another incarnation behind a reused PID: that one is gone.
        Some(old) if old.start_ticks != peer.start_ticks => (Status::Ok, true, live.clone()),
        Some(old) if old.initiated_here && ours_wins => (Status::Superseded, false, None),
        Some(old) if old.initiated_here => (Status::Ok, true, None),
        Some(_) => (Status::Ok, false, None),
        None if slot.connecting && ours_wins => (Status::Superseded, false, None),
        None => (Status::Ok, true, None),
    };
    if answer(status).is_err() {
        return Err(Status::BadHello);
    }
    if status != Status::Ok {
        return Err(status);
    }
    if becomes_primary {
        if let Some(old) = slot.primary.replace(peer.clone()) {
            if replaced.is_none() && !old.is_closed() {
                slot.others.push(old);
            }
        }
    } else {
        slot.others.push(peer.clone());
    }
    drop(slots);
    if let Some(old) = replaced {
        old.close("its PID now names another process");
    }
    t.changed.notify_waiters();
    Ok(peer)
}

/// Makes a connection this process opened visible.
fn connected(peer: &Arc<Peer>) {
    let t = table();
    let mut slots = lock(&t.slots);
    let slot = slots.entry(peer.pid).or_default();
    match slot.primary.as_ref().filter(|p| !p.is_closed()) {
        Some(old) if old.start_ticks == peer.start_ticks => slot.others.push(peer.clone()),
        _ => slot.primary = Some(peer.clone()),
    }
    drop(slots);
    t.changed.notify_waiters();
}

/// Forgets a closed connection; another one to the same process takes its place.
fn closed(peer: &Peer) {
    let t = table();
    let mut slots = lock(&t.slots);
    if let Some(slot) = slots.get_mut(&peer.pid) {
        slot.others
            .retain(|p| !std::ptr::eq(&**p, peer) && !p.is_closed());
        if slot
            .primary
            .as_ref()
            .is_some_and(|p| std::ptr::eq(&**p, peer))
        {
            slot.primary = slot.others.pop();
        }
        if slot.primary.is_none() && slot.others.is_empty() && !slot.connecting {
            slots.remove(&peer.pid);
        }
    }
    drop(slots);
    t.changed.notify_waiters();
}

fn forget_if_empty(target: u32) {
    let mut slots = lock(&table().slots);
    if slots
        .get(&target)
        .is_some_and(|s| s.primary.is_none() && s.others.is_empty() && !s.connecting)
    {
        slots.remove(&target);
    }
}

/// Winds up every connection to `target`: its process has exited. What it sent before
/// exiting (its last acknowledgements above all) is read first, and reading ends at the
/// end of the stream, which closes the connection; one whose reading waits for room is
/// closed at once.
pub(crate) fn forget(target: u32) {
    let peers: Vec<Arc<Peer>> = {
        let slots = lock(&table().slots);
        slots
            .get(&target)
            .map(|s| s.primary.iter().chain(&s.others).cloned().collect())
            .unwrap_or_default()
    };
    for peer in peers {
        peer.wind_up("its process exited");
    }
}

/// Writes what every connection owes its peer (acknowledgements above all), waiting for a
/// write another thread has under way: at exit, so that a message this process took just
/// before exiting is acknowledged, whichever thread read it.
pub(crate) fn flush_all() {
    let peers: Vec<Arc<Peer>> = {
        let slots = lock(&table().slots);
        slots
            .values()
            .flat_map(|s| s.primary.iter().chain(&s.others).cloned())
            .collect()
    };
    for peer in peers {
        peer.flush_owed();
    }
}
