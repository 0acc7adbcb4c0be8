//! The listening socket `<dir>/<pid>.sock`: bound once, accepted from by the driver.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use std::sync::Arc;
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

static BOUND: OnceLock<UnixListener> = OnceLock::new();

/// Binds the endpoint at `<dir>/<pid>.sock`, replacing a stale file, and starts accepting.
///
/// # Errors
///
/// The directory is unusable ([`Error::Directory`](crate::Error::Directory)), or binding
/// the socket failed.
pub(crate) fn bind() -> Result<()> {
    static BINDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _binding = lock(&BINDING);
    if BOUND.get().is_some() {
        return Ok(());
    }
    let s = settings();
    let dir = s.ensure_dir()?;
    sweep_stale(dir);
    let path = s.socket_path(pid());
    // A file at our own path can only be left over by a dead process that had our PID.
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::debug!(path = %path.display(), "replaced a stale socket file"),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let listener = UnixListener::bind(&path)?;
    let mode = if s.allow_uids.is_empty() {
        0o600
    } else {
        0o666
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    listener.set_nonblocking(true)?;
    remove_at_exit(path.clone());
    let interest = Interest {
        read: true,
        write: false,
    };
    engine().poller.add(&listener, LISTENER, interest)?;
    let _ = BOUND.set(listener);
    engine().set_source(LISTENER, Arc::new(Listener));
    tracing::debug!(path = %path.display(), "gproc endpoint listening");
    Ok(())
}

/// Whether the endpoint is bound.
pub(crate) fn is_bound() -> bool {
    BOUND.get().is_some()
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
    let Some(listener) = BOUND.get() else {
        return;
    };
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
        let name = entry.file_name();
        let Some(stale_pid) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".sock"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
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

fn remove_at_exit(path: PathBuf) {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    extern "C" fn at_exit() {
        // A process that takes a message and exits at once has acknowledged it.
        pass::flush_dirty();
        if let Some(path) = PATH.get() {
            let _ = std::fs::remove_file(path);
        }
    }
    if PATH.set(path).is_ok() {
        // SAFETY: `at_exit` is an `extern "C"` function that does not unwind.
        unsafe { libc::atexit(at_exit) };
    }
}
