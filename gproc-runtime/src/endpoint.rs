//! This process's endpoint: the listening socket, and one reader per connected peer.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};

use crate::config::settings;
use crate::error::{Error, Result};
use crate::identity::{is_alive, own_start_ticks, pid};
use crate::inbox::{queue, Msg, Queue};
use crate::messaging::RESERVED_PREFIX;
use crate::rpc::Intercepted;
use crate::wire::{self, Hello, Status, Welcome};

/// Messages at most this long are copied out of the read buffer, so that a small message
/// waiting in a queue does not pin a whole read buffer.
const COPY_BELOW: usize = 4096;
/// How much a reader asks the kernel for at once: a 64 KiB message and its head fit, and
/// the buffer stays under glibc's mmap threshold (128 KiB), so that a new one is taken
/// from the heap rather than mapped, faulted in page by page and unmapped for each message.
const READ_CHUNK: usize = 64 * 1024 + 1024;

/// Binds this process's endpoint if it is not bound yet.
///
/// # Errors
///
/// The directory is unusable ([`Error::Directory`]), or binding the socket failed.
pub(crate) fn ensure_listening() -> Result<()> {
    static BOUND: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let bound = BOUND.get_or_init(|| bind().map_err(|e| e.to_string()));
    match bound {
        Ok(()) => Ok(()),
        Err(reason) => match settings().ensure_dir() {
            Err(e) => Err(e),
            Ok(_) => Err(Error::Io(std::io::Error::other(reason.clone()))),
        },
    }
}

fn bind() -> Result<()> {
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
    let listener = std::os::unix::net::UnixListener::bind(&path)?;
    let mode = if s.allow_uids.is_empty() {
        0o600
    } else {
        0o666
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    listener.set_nonblocking(true)?;
    remove_at_exit(path.clone());
    let handle = crate::rt::handle();
    let listener = {
        let _enter = handle.enter();
        UnixListener::from_std(listener)?
    };
    handle.spawn(accept_loop(listener));
    tracing::debug!(path = %path.display(), "gproc endpoint listening");
    crate::manager::announce_ready();
    Ok(())
}

/// Removes socket files of processes that no longer exist.
///
/// A file is stale when its PID is dead *and* the file is older than the start of the
/// sweep: a process that reuses the PID and binds meanwhile has a newer file, or is alive
/// when checked.
fn sweep_stale(dir: &std::path::Path) {
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
    extern "C" fn remove() {
        if let Some(path) = PATH.get() {
            let _ = std::fs::remove_file(path);
        }
    }
    if PATH.set(path).is_ok() {
        // SAFETY: `remove` is an `extern "C"` function that does not unwind.
        unsafe { libc::atexit(remove) };
    }
}

async fn accept_loop(listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                // Served on the home runtime (see `rt`), where the receiving tasks wake.
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!("gproc: cannot hand over a connection: {e}");
                        continue;
                    }
                };
                crate::rt::io_home().spawn(async move {
                    let served = match UnixStream::from_std(stream) {
                        Ok(stream) => serve_peer(stream).await,
                        Err(e) => Err(e.into()),
                    };
                    if let Err(e) = served {
                        tracing::warn!("gproc: closed a connection: {e}");
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("gproc: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_peer(mut stream: UnixStream) -> Result<()> {
    let s = settings();
    let cred = stream.peer_cred()?;
    let peer_pid = cred.pid().unwrap_or(0) as u32;
    let refuse = |status| Welcome {
        version: wire::VERSION,
        status,
        pid: pid(),
        start_ticks: own_start_ticks(),
        max_message_size: s.max_message_size as u64,
    };
    if !s.uid_allowed(cred.uid()) {
        let _ = stream.write_all(&refuse(Status::Denied).encode()).await;
        return Err(Error::Protocol {
            pid: peer_pid,
            reason: format!("uid {} is not allowed to connect", cred.uid()),
        });
    }
    let mut hello = [0u8; wire::HELLO_LEN];
    tokio::time::timeout(s.connect_timeout, stream.read_exact(&mut hello))
        .await
        .map_err(|_| Error::Timeout)??;
    let status = match Hello::decode(&hello) {
        Ok(h) if h.version != wire::VERSION => Status::Version,
        Ok(h) if peer_pid != 0 && h.pid != peer_pid => Status::BadHello,
        Ok(_) => Status::Ok,
        Err(_) => Status::BadHello,
    };
    stream.write_all(&refuse(status).encode()).await?;
    if status != Status::Ok {
        return Err(Error::Protocol {
            pid: peer_pid,
            reason: format!("handshake refused: {status:?}"),
        });
    }
    read_messages(stream, peer_pid).await
}

/// Reads frames, queues each message in its group, and acknowledges what was queued.
///
/// When a queue is full this stops reading from this peer only, so the peer's sends wait.
async fn read_messages(stream: UnixStream, peer_pid: u32) -> Result<()> {
    let max = settings().max_message_size;
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let (mut queued, mut acked) = (0u64, 0u64);
    let mut last: Option<(String, Queue)> = None;
    let mut reserved = Reserved(Vec::new());
    let protocol = |e: wire::WireError| Error::Protocol {
        pid: peer_pid,
        reason: e.to_string(),
    };
    loop {
        while let Some(len) = wire::frame_len(&buf, max).map_err(protocol)? {
            if buf.len() < len {
                buf.reserve(len - buf.len());
                break;
            }
            let frame = buf.split_to(len).freeze();
            let message = wire::decode_message(frame).map_err(protocol)?;
            if message.group.starts_with(RESERVED_PREFIX) {
                match crate::rpc::intercept(&message.group, &message.data, peer_pid) {
                    Intercepted::No => {}
                    Intercepted::Done => {
                        queued += u64::from(message.ack_wanted);
                        continue;
                    }
                    Intercepted::Request(request) => {
                        // A service at its limit stops this reader, as a full queue does.
                        deliver(&mut wr, queued, &mut acked, &mut reserved).await?;
                        request.dispatch().await;
                        queued += u64::from(message.ack_wanted);
                        continue;
                    }
                }
            }
            // A peer usually sends to one group at a time: skip the inbox's lock for it.
            let q = match &last {
                Some((group, q)) if *group == message.group => q.clone(),
                _ => {
                    let q = queue(&message.group).ok_or_else(|| Error::Protocol {
                        pid: peer_pid,
                        reason: format!("more than {} groups in use", crate::inbox::MAX_GROUPS),
                    })?;
                    last = Some((message.group.clone(), q.clone()));
                    q
                }
            };
            if !q.try_reserve() {
                // Backpressure: hand over what has room, then stop reading until this fits.
                deliver(&mut wr, queued, &mut acked, &mut reserved).await?;
                q.reserve().await;
            }
            let ack_wanted = message.ack_wanted;
            let data = if message.data.len() < COPY_BELOW {
                Bytes::copy_from_slice(&message.data)
            } else {
                message.data
            };
            let msg = Msg {
                sender_pid: peer_pid,
                receiver_pid: pid(),
                group: message.group,
                data,
            };
            reserved.0.push((q, msg));
            // Only messages whose sender waits are counted, by both sides.
            queued += u64::from(ack_wanted);
        }
        deliver(&mut wr, queued, &mut acked, &mut reserved).await?;
        if buf.capacity() - buf.len() < READ_CHUNK / 8 {
            buf.reserve(READ_CHUNK);
        }
        if rd.read_buf(&mut buf).await? == 0 {
            if !buf.is_empty() {
                tracing::debug!(peer_pid, "gproc: peer closed in the middle of a frame");
            }
            return Ok(());
        }
    }
}

/// Messages with room reserved in their queues, not yet queued. Dropped with messages in
/// it (the connection failed, or its runtime shut down), it gives the room back: those
/// messages were not acknowledged, and their sender was told they may not have arrived.
struct Reserved(Vec<(Queue, Msg)>);

impl Drop for Reserved {
    fn drop(&mut self) {
        for (q, _) in self.0.drain(..) {
            q.release();
        }
    }
}

/// Acknowledges everything up to `queued`, then makes the reserved messages visible.
///
/// The acknowledgement goes first so that a receiver that takes a message and exits at
/// once has still acknowledged it.
async fn deliver(
    wr: &mut OwnedWriteHalf,
    queued: u64,
    acked: &mut u64,
    reserved: &mut Reserved,
) -> Result<()> {
    let acked = if queued == *acked {
        Ok(())
    } else {
        *acked = queued;
        wr.write_all(&wire::encode_ack(queued)).await
    };
    // Delivered even when the sender is gone: it was told the message may have arrived.
    for (q, msg) in reserved.0.drain(..) {
        q.push(msg);
    }
    Ok(acked?)
}
