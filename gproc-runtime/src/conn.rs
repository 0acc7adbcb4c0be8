//! Outgoing connections: one per receiving PID, shared by every sender in this process.
//!
//! Senders hand their message to the connection's writer task, which writes whatever has
//! queued up in one go; the receiver acknowledges cumulatively, and a reader task completes
//! the waiting sends in order. So 64 concurrent senders cost a few syscalls, not 64.

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::settings;
use crate::error::{Error, Result};
use crate::identity::{is_alive, own_start_ticks, pid};
use crate::wire::{self, Hello, Status, Welcome};

/// Messages at most this long are copied into the batch buffer; longer ones are written
/// from their own buffer.
const INLINE_BELOW: usize = 16 * 1024;
/// A batch stops growing at this many bytes.
const BATCH_BYTES: usize = 256 * 1024;
/// How many messages may wait for the writer before senders wait.
const OUTGOING_CAPACITY: usize = 1024;

type Done = oneshot::Sender<Result<()>>;

struct Outgoing {
    group: String,
    data: Bytes,
    done: Done,
}

/// A connection to one receiving process.
pub(crate) struct Conn {
    tx: mpsc::Sender<Outgoing>,
    closed: Arc<watch::Sender<bool>>,
    /// The receiver's start time, from its welcome.
    pub peer_start_ticks: u64,
    /// The largest message the receiver accepts.
    pub peer_max: usize,
}

/// Sends waiting for their acknowledgement, oldest first.
#[derive(Default)]
struct Pending {
    waiting: VecDeque<Done>,
    closed: bool,
}

impl Pending {
    fn fail_all(&mut self) {
        self.closed = true;
        for done in self.waiting.drain(..) {
            let _ = done.send(Err(Error::ConnectionLost));
        }
    }
}

type Slots = Mutex<HashMap<u32, Arc<tokio::sync::Mutex<Option<Arc<Conn>>>>>>;

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(Default::default)
}

/// The open connection to `pid`, connecting if there is none.
pub(crate) async fn get(target: u32) -> Result<Arc<Conn>> {
    let slot = {
        let mut map = slots().lock().unwrap_or_else(|e| e.into_inner());
        map.entry(target).or_default().clone()
    };
    let mut guard = slot.lock().await;
    if let Some(conn) = guard.as_ref().filter(|c| !*c.closed.borrow()) {
        return Ok(conn.clone());
    }
    let conn = Arc::new(crate::rt::run(connect(target)).await?);
    *guard = Some(conn.clone());
    Ok(conn)
}

/// Forgets the connection to `pid`, if any (its process has exited).
pub(crate) fn forget(target: u32) {
    slots()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&target);
}

impl Conn {
    /// Resolves once the connection has closed (the receiver exited or dropped it).
    pub(crate) async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|&closed| closed).await;
    }

    /// Queues a message and waits for the receiver's acknowledgement.
    pub(crate) async fn send(&self, group: &str, data: Bytes) -> Result<()> {
        let (done, acked) = oneshot::channel();
        let out = Outgoing {
            group: group.to_owned(),
            data,
            done,
        };
        self.tx.send(out).await.map_err(|_| Error::ConnectionLost)?;
        acked.await.unwrap_or(Err(Error::ConnectionLost))
    }
}

async fn connect(target: u32) -> Result<Conn> {
    let s = settings();
    s.ensure_dir()?;
    let path = s.socket_path(target);
    let mut stream = match tokio::time::timeout(s.connect_timeout, UnixStream::connect(&path)).await
    {
        Err(_) => return Err(Error::Timeout),
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(connect_error(target, e)),
    };
    let cred = stream.peer_cred()?;
    if !s.uid_allowed(cred.uid()) {
        tracing::warn!(
            target,
            uid = cred.uid(),
            "gproc: refusing to send to an endpoint of another uid"
        );
        return Err(Error::PermissionDenied);
    }
    let hello = Hello {
        version: wire::VERSION,
        pid: pid(),
        start_ticks: own_start_ticks(),
    };
    let welcome = tokio::time::timeout(s.connect_timeout, handshake(&mut stream, hello))
        .await
        .map_err(|_| Error::Timeout)?
        .map_err(|e| match e {
            Error::Io(io) if io.kind() == ErrorKind::UnexpectedEof => Error::ConnectionLost,
            e => e,
        })?;
    let protocol = |reason: String| Error::Protocol {
        pid: target,
        reason,
    };
    match welcome.status {
        Status::Ok => {}
        Status::Denied => return Err(Error::PermissionDenied),
        Status::Version => {
            return Err(protocol(format!(
                "it speaks protocol version {}, this build speaks {}; upgrade one side",
                welcome.version,
                wire::VERSION
            )))
        }
        Status::BadHello => return Err(protocol("it refused our handshake".into())),
    }
    if welcome.pid != target {
        return Err(protocol(format!(
            "its socket answers as PID {}",
            welcome.pid
        )));
    }
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(OUTGOING_CAPACITY);
    let closed = Arc::new(watch::channel(false).0);
    let pending = Arc::new(Mutex::new(Pending::default()));
    tokio::spawn(write_batches(wr, rx, pending.clone()));
    tokio::spawn(read_acks(rd, pending, closed.clone(), target));
    Ok(Conn {
        tx,
        closed,
        peer_start_ticks: welcome.start_ticks,
        peer_max: usize::try_from(welcome.max_message_size).unwrap_or(usize::MAX),
    })
}

async fn handshake(stream: &mut UnixStream, hello: Hello) -> Result<Welcome> {
    stream.write_all(&hello.encode()).await?;
    let mut buf = [0u8; wire::WELCOME_LEN];
    stream.read_exact(&mut buf).await?;
    Welcome::decode(&buf).map_err(|e| Error::Protocol {
        pid: hello.pid,
        reason: e.to_string(),
    })
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

async fn write_batches(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    pending: Arc<Mutex<Pending>>,
) {
    let mut batch = BytesMut::with_capacity(BATCH_BYTES);
    let mut large: Vec<(usize, Bytes)> = Vec::new();
    let mut dones = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut bytes = 0;
        while let Some(out) = next.take() {
            bytes += out.data.len() + wire::MAX_GROUP_LEN;
            wire::put_message_head(&mut batch, &out.group, out.data.len());
            if out.data.len() < INLINE_BELOW {
                batch.extend_from_slice(&out.data);
            } else {
                large.push((batch.len(), out.data));
            }
            dones.push(out.done);
            if bytes < BATCH_BYTES {
                next = rx.try_recv().ok();
            }
        }
        {
            let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.closed {
                for done in dones.drain(..) {
                    let _ = done.send(Err(Error::ConnectionLost));
                }
            } else {
                p.waiting.extend(dones.drain(..));
            }
        }
        if write_batch(&mut wr, &mut batch, &mut large).await.is_err() {
            pending.lock().unwrap_or_else(|e| e.into_inner()).fail_all();
        }
    }
}

/// Writes `batch`, splicing each large payload in at its offset without copying it.
async fn write_batch(
    wr: &mut OwnedWriteHalf,
    batch: &mut BytesMut,
    large: &mut Vec<(usize, Bytes)>,
) -> std::io::Result<()> {
    let mut from = 0;
    for (at, data) in large.drain(..) {
        wr.write_all(&batch[from..at]).await?;
        wr.write_all(&data).await?;
        from = at;
    }
    wr.write_all(&batch[from..]).await?;
    batch.clear();
    Ok(())
}

async fn read_acks(
    mut rd: OwnedReadHalf,
    pending: Arc<Mutex<Pending>>,
    closed: Arc<watch::Sender<bool>>,
    target: u32,
) {
    let mut acked = 0u64;
    let mut buf = [0u8; wire::ACK_LEN];
    while rd.read_exact(&mut buf).await.is_ok() {
        let count = match wire::decode_ack(&buf) {
            Ok(count) if count >= acked => count,
            _ => {
                tracing::warn!(
                    target,
                    "gproc: malformed acknowledgement; closing the connection"
                );
                break;
            }
        };
        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
        for _ in acked..count {
            match p.waiting.pop_front() {
                Some(done) => {
                    let _ = done.send(Ok(()));
                }
                None => break,
            }
        }
        acked = count;
    }
    closed.send_replace(true);
    pending.lock().unwrap_or_else(|e| e.into_inner()).fail_all();
    tracing::debug!(target, "gproc: connection closed");
}
