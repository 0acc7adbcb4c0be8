//! Outgoing connections: one per receiving PID, shared by every sender in this process.
//!
//! A sender writes its frame itself when the connection is idle (no thread hop, one
//! syscall). Under load its frame joins the writer task's next batch, written in one go, so
//! 64 concurrent senders cost a few syscalls, not 64. The receiver acknowledges cumulatively,
//! counting only the frames whose sender waits (RPC frames are "quiet": their reply says
//! they arrived), and a reader task completes the waiting sends in order. The tasks live on
//! the runtime chosen by [`crate::rt::io_home`] and close the connection when it shuts down.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, IoSlice};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::config::settings;
use crate::error::{Error, Result};
use crate::identity::{is_alive, own_start_ticks, pid};
use crate::wire::{self, Hello, Status, Welcome};

/// Messages at most this long are copied into the batch buffer; longer ones are written
/// from their own buffer.
const INLINE_BELOW: usize = 16 * 1024;
/// A batch stops growing at this many bytes.
const BATCH_BYTES: usize = 256 * 1024;
/// How many messages may wait for the writer task before senders wait.
const OUTGOING_CAPACITY: usize = 1024;
/// The largest frame head: length, kind, group length, group.
const MAX_HEAD: usize = wire::LEN_PREFIX + 2 + wire::MAX_GROUP_LEN;

type Done = oneshot::Sender<Result<()>>;

/// Resolves once the receiver acknowledged a message, or with [`Error::ConnectionLost`].
pub(crate) struct Ack(oneshot::Receiver<Result<()>>);

impl std::future::Future for Ack {
    type Output = Result<()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<()>> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::ConnectionLost)))
    }
}

/// A message waiting for the writer task.
struct Outgoing {
    /// The frame head, or what is left of it.
    head: Bytes,
    /// The payload, or what is left of it.
    data: Bytes,
    /// Its place among the queued messages; released once written.
    _permit: OwnedSemaphorePermit,
}

/// A connection to one receiving process.
///
/// A sender writes its frame straight to the socket when the connection is idle and the
/// socket takes it whole: no hand-over to another thread. Otherwise the frame waits in
/// `queue` for the writer task, which writes everything queued in one go. Either way the
/// sender then waits for the receiver's cumulative acknowledgement.
pub(crate) struct Conn {
    stream: Arc<UnixStream>,
    shared: Arc<Shared>,
    /// The receiver's start time, from its welcome.
    pub peer_start_ticks: u64,
    /// The largest message the receiver accepts.
    pub peer_max: usize,
}

struct Shared {
    state: Mutex<State>,
    /// Room in `queue`.
    room: Arc<Semaphore>,
    /// Wakes the writer task.
    work: Notify,
    closed: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    /// Frames for the writer task, in order.
    queue: VecDeque<Outgoing>,
    /// Whether the writer task has frames to write: senders must then queue behind them.
    writer_busy: bool,
    /// Sends waiting for their acknowledgement, in the order their frames were written.
    waiting: VecDeque<Done>,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the connection closed and fails every send not yet acknowledged.
    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.queue.clear();
        for done in st.waiting.drain(..) {
            let _ = done.send(Err(Error::ConnectionLost));
        }
        drop(st);
        self.closed.send_replace(true);
        self.work.notify_one();
    }
}

type Slots = Mutex<HashMap<u32, Arc<tokio::sync::Mutex<Option<Arc<Conn>>>>>>;

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(Default::default)
}

/// Open connections by PID: the fast path of [`get`], a plain lookup.
fn open() -> &'static Mutex<HashMap<u32, Arc<Conn>>> {
    static OPEN: OnceLock<Mutex<HashMap<u32, Arc<Conn>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// The open connection to `pid`, connecting if there is none.
pub(crate) async fn get(target: u32) -> Result<Arc<Conn>> {
    let cached = open()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&target)
        .cloned();
    if let Some(conn) = cached.filter(|c| !*c.shared.closed.borrow()) {
        return Ok(conn);
    }
    // Connecting is serialized per PID, so that concurrent first sends share one connection.
    let slot = {
        let mut map = slots().lock().unwrap_or_else(|e| e.into_inner());
        map.entry(target).or_default().clone()
    };
    let mut guard = slot.lock().await;
    if let Some(conn) = guard.as_ref().filter(|c| !*c.shared.closed.borrow()) {
        return Ok(conn.clone());
    }
    // A connection cut before its handshake finished carried nothing: try once more. It
    // happens when the runtime it was to live on shuts down meanwhile (see `rt`).
    let mut tries = 0;
    let conn = loop {
        let home = crate::rt::io_home();
        let made = crate::rt::run_on(&home, connect(target))
            .await
            .unwrap_or(Err(Error::ConnectionLost));
        tries += 1;
        match made {
            Err(Error::ConnectionLost) if tries < 2 => continue,
            made => break Arc::new(made?),
        }
    };
    *guard = Some(conn.clone());
    open()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(target, conn.clone());
    Ok(conn)
}

/// Forgets the connection to `pid`, if any (its process has exited).
pub(crate) fn forget(target: u32) {
    open()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&target);
    slots()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&target);
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Ends the writer task, and the ack reader through the shutdown.
        self.shared.close();
        let _ = rustix::net::shutdown(&*self.stream, rustix::net::Shutdown::Both);
    }
}

impl Conn {
    /// Resolves once the connection has closed (the receiver exited or dropped it).
    pub(crate) async fn closed(&self) {
        let mut rx = self.shared.closed.subscribe();
        let _ = rx.wait_for(|&closed| closed).await;
    }

    /// Writes a message (or queues it for the writer task) and returns, without waiting,
    /// what resolves with its acknowledgement. For callers that learn of delivery another
    /// way (an RPC reply) and watch [`closed`](Self::closed) for failure.
    pub(crate) async fn post(&self, group: &str, data: Bytes) -> Result<Ack> {
        let (done, acked) = oneshot::channel();
        self.write(group, data, Some(done), false).await?;
        Ok(Ack(acked))
    }

    /// Writes a message (or queues it for the writer task) that the receiver need not
    /// acknowledge: for callers that learn of delivery another way (an RPC reply) and
    /// watch [`closed`](Self::closed) for failure.
    ///
    /// With `batch`, the caller knows that more messages follow (other calls are in
    /// flight): the frame joins the writer's next batch instead of a syscall of its own.
    pub(crate) async fn post_quiet(&self, group: &str, data: Bytes, batch: bool) -> Result<()> {
        self.write(group, data, None, batch).await
    }

    async fn write(&self, group: &str, data: Bytes, done: Option<Done>, batch: bool) -> Result<()> {
        let permit = self
            .shared
            .room
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::ConnectionLost)?;
        let mut head = BytesMut::with_capacity(MAX_HEAD);
        match done {
            Some(_) => wire::put_message_head(&mut head, group, data.len()),
            None => wire::put_quiet_message_head(&mut head, group, data.len()),
        }
        if self
            .enqueue(head.freeze(), data, done, permit, batch)
            .is_err()
        {
            self.shared.close();
        }
        Ok(())
    }

    /// Writes the frame now if nothing waits before it, else queues it for the writer task.
    /// Either way `done` waits for the acknowledgement in write order.
    fn enqueue(
        &self,
        mut head: Bytes,
        mut data: Bytes,
        done: Option<Done>,
        permit: OwnedSemaphorePermit,
        batch: bool,
    ) -> std::io::Result<()> {
        let mut st = self.shared.lock();
        if st.closed {
            if let Some(done) = done {
                let _ = done.send(Err(Error::ConnectionLost));
            }
            return Ok(());
        }
        // An idle connection writes at once, for latency. Under load (sends already waiting
        // for acknowledgements) the frame joins the writer's next batch, for throughput.
        let idle = !batch && st.waiting.is_empty() && !st.writer_busy;
        // Only acknowledged messages are counted (by both sides), so only they wait here.
        st.waiting.extend(done);
        if idle && try_write_frame(&self.stream, &mut head, &mut data)? {
            return Ok(());
        }
        st.writer_busy = true;
        st.queue.push_back(Outgoing {
            head,
            data,
            _permit: permit,
        });
        drop(st);
        self.shared.work.notify_one();
        Ok(())
    }
}

/// Writes as much of a frame as the socket takes now. `Ok(true)` when all of it went;
/// otherwise `head` and `data` keep what is left.
fn try_write_frame(
    stream: &UnixStream,
    head: &mut Bytes,
    data: &mut Bytes,
) -> std::io::Result<bool> {
    while !head.is_empty() || !data.is_empty() {
        let slices = [IoSlice::new(head), IoSlice::new(data)];
        match stream.try_write_vectored(&slices) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                let from_head = n.min(head.len());
                head.advance(from_head);
                data.advance(n - from_head);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
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
    let stream = Arc::new(stream);
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        room: Arc::new(Semaphore::new(OUTGOING_CAPACITY)),
        work: Notify::new(),
        closed: watch::channel(false).0,
    });
    tokio::spawn(write_queued(stream.clone(), shared.clone()));
    tokio::spawn(read_acks(stream.clone(), shared.clone(), target));
    Ok(Conn {
        stream,
        shared,
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

/// Closes the connection when the task holding it ends, however it ends: also when the
/// runtime it lives on shuts down and drops it.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Writes queued frames, as many at once as fit in a batch, until the queue is empty.
async fn write_queued(stream: Arc<UnixStream>, shared: Arc<Shared>) {
    let _close = CloseOnDrop(shared.clone());
    let mut batch = BytesMut::with_capacity(BATCH_BYTES);
    let mut large: Vec<(usize, Bytes)> = Vec::new();
    loop {
        shared.work.notified().await;
        // Let the other senders that are ready run first, so that their frames join this
        // batch: woken by the first of them, the writer would otherwise run right after it
        // (tokio runs a task woken by the running one next) and write one frame a syscall.
        tokio::task::yield_now().await;
        loop {
            let taken = {
                let mut st = shared.lock();
                if st.closed {
                    return;
                }
                if st.queue.is_empty() {
                    st.writer_busy = false;
                    break;
                }
                take_batch(&mut st.queue, &mut batch, &mut large)
            };
            let written = write_batch(&stream, &mut batch, &mut large).await;
            drop(taken);
            if written.is_err() {
                shared.close();
                return;
            }
        }
    }
}

/// Moves frames from the queue into `batch` (small payloads copied, large ones listed in
/// `large` by their offset). Returns the frames' permits, to be released once written.
fn take_batch(
    queue: &mut VecDeque<Outgoing>,
    batch: &mut BytesMut,
    large: &mut Vec<(usize, Bytes)>,
) -> Vec<Outgoing> {
    let mut taken = Vec::new();
    let mut bytes = 0;
    while let Some(mut out) = queue.pop_front() {
        bytes += out.head.len() + out.data.len();
        batch.extend_from_slice(&out.head);
        if out.data.len() < INLINE_BELOW {
            batch.extend_from_slice(&out.data);
        } else {
            large.push((batch.len(), std::mem::take(&mut out.data)));
        }
        taken.push(out);
        if bytes >= BATCH_BYTES {
            break;
        }
    }
    taken
}

/// Writes `batch`, splicing each large payload in at its offset without copying it.
async fn write_batch(
    stream: &UnixStream,
    batch: &mut BytesMut,
    large: &mut Vec<(usize, Bytes)>,
) -> std::io::Result<()> {
    let mut from = 0;
    for (at, data) in large.drain(..) {
        write_all(stream, &batch[from..at]).await?;
        write_all(stream, &data).await?;
        from = at;
    }
    write_all(stream, &batch[from..]).await?;
    batch.clear();
    Ok(())
}

async fn write_all(stream: &UnixStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        stream.writable().await?;
        match stream.try_write(buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads cumulative acknowledgements and completes the waiting sends in order.
async fn read_acks(stream: Arc<UnixStream>, shared: Arc<Shared>, target: u32) {
    let _close = CloseOnDrop(shared.clone());
    let mut acked = 0u64;
    let mut buf = [0u8; wire::ACK_LEN * 64];
    let mut filled = 0;
    loop {
        if stream.readable().await.is_err() {
            break;
        }
        match read_draining(&stream, &mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                continue
            }
            Err(_) => break,
        }
        let whole = filled - filled % wire::ACK_LEN;
        let Some(count) = last_ack(&buf[..whole], acked) else {
            tracing::warn!(
                target,
                "gproc: malformed acknowledgement; closing the connection"
            );
            break;
        };
        buf.copy_within(whole..filled, 0);
        filled -= whole;
        let mut st = shared.lock();
        for _ in acked..count {
            match st.waiting.pop_front() {
                Some(done) => {
                    let _ = done.send(Ok(()));
                }
                None => break,
            }
        }
        acked = count;
    }
    shared.close();
    tracing::debug!(target, "gproc: connection closed");
}

/// Reads what the socket holds. A read that does not fill `buf` drained the socket: the
/// readiness is then cleared as well, saving the `EAGAIN` read that would learn it.
fn read_draining(stream: &UnixStream, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    let read = stream.try_io(tokio::io::Interest::READABLE, || {
        got = rustix::io::read(stream, &mut *buf)?;
        if got > 0 && got < buf.len() {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(got)
    });
    match read {
        Err(e) if e.kind() == ErrorKind::WouldBlock && got > 0 => Ok(got),
        other => other,
    }
}

/// The highest count among whole acknowledgements; `None` if one is malformed or goes back.
fn last_ack(acks: &[u8], mut acked: u64) -> Option<u64> {
    for ack in acks.chunks_exact(wire::ACK_LEN) {
        let count = wire::decode_ack(ack).ok()?;
        if count < acked {
            return None;
        }
        acked = count;
    }
    Some(acked)
}
