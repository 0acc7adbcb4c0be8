//! The listening socket `<dir>/<pid>.sock`: bound at first use, accepted from by the
//! driver, and bound again if its file or directory is removed.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::engine::{engine, lock, Source};
use super::handshake;
use super::pass;
use super::peers::SETTLE;
use super::poller::{Interest, Ready, LISTENER};
use super::wire::Status;
use crate::config::settings;
use crate::error::Result;
use crate::identity::{is_alive, pid};

/// The socket bound now, and what identifies its file.
struct Bound {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file, to tell it from a file put in its place.
    file: (u64, u64),
}

static BOUND: Mutex<Option<Arc<Bound>>> = Mutex::new(None);
static IS_BOUND: AtomicBool = AtomicBool::new(false);

/// Binds the endpoint at `<dir>/<pid>.sock`, replacing a stale file, and starts accepting.
///
/// # Errors
///
/// The directory is unusable ([`Error::Directory`](crate::Error::Directory)), or binding
/// the socket failed.
pub(crate) fn bind() -> Result<()> {
    let mut bound = lock(&BOUND);
    if bound.is_some() {
        return Ok(());
    }
    let s = settings();
    let dir = s.ensure_dir()?;
    sweep_stale(dir);
    let new = bind_at(s.socket_path(pid()))?;
    remove_at_exit(new.path.clone());
    engine().poller.add(&new.listener, LISTENER, READ)?;
    tracing::debug!(path = %new.path.display(), "gproc endpoint listening");
    *bound = Some(Arc::new(new));
    IS_BOUND.store(true, Ordering::Release);
    engine().set_source(LISTENER, Arc::new(Listener));
    Ok(())
}

const READ: Interest = Interest {
    read: true,
    write: false,
};

/// A listening socket at `path`, replacing whatever file is there: at our own path, only a
/// dead process that had our PID, or a cleaner's leftover, can have put one.
fn bind_at(path: PathBuf) -> Result<Bound> {
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::debug!(path = %path.display(), "replaced a stale socket file"),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let listener = UnixListener::bind(&path)?;
    let mode = if settings().allow_uids.is_empty() {
        0o600
    } else {
        0o666
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    listener.set_nonblocking(true)?;
    let meta = std::fs::symlink_metadata(&path)?;
    Ok(Bound {
        listener,
        file: (meta.dev(), meta.ino()),
        path,
    })
}

/// Whether the endpoint is bound.
pub(crate) fn is_bound() -> bool {
    IS_BOUND.load(Ordering::Acquire)
}

/// Looks at the socket file, and binds again if it is gone or is no longer ours (a tmp
/// cleaner removed it, or the whole directory): the directory is made again with the
/// checks of the first bind, and peers reach this process again with no call from its
/// user. Existing connections are not touched. Called every [`UPKEEP`] by the watchdog's
/// runtime.
pub(crate) fn upkeep() {
    let Some(current) = lock(&BOUND).clone() else {
        return;
    };
    let ours = std::fs::symlink_metadata(&current.path)
        .is_ok_and(|m| m.file_type().is_socket() && (m.dev(), m.ino()) == current.file);
    if ours {
        return;
    }
    let why = match rebind(&current) {
        Ok(()) => {
            tracing::info!(
                path = %current.path.display(),
                "gproc: the endpoint's socket file was removed; bound again at the same path"
            );
            None
        }
        Err(e) => Some(e.to_string()),
    };
    // Said once per new reason, not every half second.
    static LAST: Mutex<Option<String>> = Mutex::new(None);
    let mut last = lock(&LAST);
    if why.is_some() && *last != why {
        tracing::error!(
            path = %current.path.display(),
            "gproc: the endpoint's socket file was removed and cannot be bound again \
             (new peers cannot reach this process until it can; trying again every \
             {UPKEEP:?}): {}",
            why.as_deref().unwrap_or_default()
        );
    }
    *last = why;
}

/// How often [`upkeep`] looks at the socket file.
pub(crate) const UPKEEP: std::time::Duration = std::time::Duration::from_millis(250);

fn rebind(old: &Bound) -> Result<()> {
    settings().recheck_dir()?;
    let new = bind_at(old.path.clone())?;
    engine().poller.add(&new.listener, LISTENER, READ)?;
    let replaced = lock(&BOUND).replace(Arc::new(new));
    if let Some(replaced) = replaced {
        engine().poller.delete(&replaced.listener);
        // Whoever connected to the old socket before its file went is still taken.
        accept_from(&replaced.listener);
    }
    Ok(())
}

/// The listener as a source of the poller.
struct Listener;

impl Source for Listener {
    fn ready(self: Arc<Self>, _ready: Ready) {
        accept_all();
    }

    /// Accepts what an earlier accept left waiting (when the process was out of
    /// descriptors): edge-triggered, the listener is not reported again for it.
    fn tick(self: Arc<Self>, _now: Instant) {
        accept_all();
    }
}

/// Accepts every connection waiting, and starts its handshake.
fn accept_all() {
    let Some(current) = lock(&BOUND).clone() else {
        return;
    };
    accept_from(&current.listener);
}

fn accept_from(listener: &UnixListener) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of descriptors and the like: the connection waits in the backlog,
                // and the driver comes back on its next pass.
                tracing::warn!("gproc: accept failed: {e}");
                return;
            }
        };
        if let Err(e) = stream.set_nonblocking(true) {
            tracing::warn!("gproc: cannot take a connection: {e}");
            continue;
        }
        let cred = match rustix::net::sockopt::socket_peercred(&stream) {
            Ok(cred) => cred,
            Err(e) => {
                tracing::warn!("gproc: cannot read a connection's credentials: {e}");
                continue;
            }
        };
        let peer_pid = cred.pid.as_raw_nonzero().get() as u32;
        if !settings().uid_allowed(cred.uid.as_raw()) {
            tracing::warn!(
                peer = peer_pid,
                uid = cred.uid.as_raw(),
                "gproc: closed a connection: uid {} is not allowed to connect",
                cred.uid.as_raw()
            );
            let refusal = handshake::welcome(Status::Denied).encode();
            let _ = rustix::net::send(
                &stream,
                &refusal,
                rustix::net::SendFlags::NOSIGNAL | rustix::net::SendFlags::DONTWAIT,
            );
            continue;
        }
        handshake::accepted(stream, peer_pid, &SETTLE);
    }
}

/// Removes socket files of processes that no longer exist.
///
/// A file is stale when its PID is dead *and* the file is older than the start of the
/// sweep: a process that reuses the PID and binds meanwhile has a newer file, or is alive
/// when checked.
fn sweep_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let started = std::time::SystemTime::now();
    for entry in entries.flatten() {
        let Some(stale_pid) = socket_pid(&entry.file_name()) else {
            continue;
        };
        if stale_pid == pid() || is_alive(stale_pid) {
            continue;
        }
        let older = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified < started);
        if older {
            tracing::debug!(path = %entry.path().display(), "gproc: removed the socket of a dead process");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The PID a file name `<pid>.sock` names.
fn socket_pid(name: &std::ffi::OsStr) -> Option<u32> {
    name.to_str()?.strip_suffix(".sock")?.parse().ok()
}

/// The PIDs of the live processes with a socket file in `dir`, in order; the files of
/// dead processes are passed over. A missing directory has none.
pub(crate) fn live_sockets(dir: &Path) -> std::io::Result<Vec<u32>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|entry| socket_pid(&entry.file_name()))
        .filter(|&pid| is_alive(pid))
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

fn remove_at_exit(path: PathBuf) {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn at_exit() {
        // A process that takes a message and exits at once has acknowledged it, even if
        // another thread was still counting it, or writing the acknowledgement, as this
        // one exited. (Bounded: exit may be called from inside a delivery.)
        super::connection::settle_deliveries(std::time::Duration::from_millis(100));
        pass::flush_dirty();
        super::peers::flush_all();
        if let Some(path) = PATH.get() {
            let _ = std::fs::remove_file(path);
        }
    }
    if PATH.set(path).is_ok() {
        // SAFETY: `at_exit` is an `extern "C"` function that does not unwind.
        unsafe { libc::atexit(at_exit) };
    }
}
