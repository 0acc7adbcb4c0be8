//! The plain Unix-socket reference: a ping-pong of frames (u32 little-endian length, then
//! the payload), echoed by the peer, over a tokio `UnixStream` for the runtime flavors and
//! a `std` one for the blocking flavor. Each side reads with as few `read`s as the kernel
//! allows (all that is there, into one buffer) and writes a frame with one `write_all`.

use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The client end of a tokio connection, shared by the benchmark iterations.
pub type TokioUds = Arc<tokio::sync::Mutex<Conn<tokio::net::UnixStream>>>;
/// The client end of a `std` connection, shared by the benchmark iterations.
pub type StdUds = Arc<std::sync::Mutex<Conn<std::os::unix::net::UnixStream>>>;

/// `size` bytes of payload.
pub fn payload(size: usize) -> Bytes {
    (0..size).map(|i| i as u8).collect::<Vec<u8>>().into()
}

/// `data` behind its u32 little-endian length.
pub fn frame(data: &[u8]) -> Bytes {
    let mut framed = Vec::with_capacity(4 + data.len());
    framed.extend_from_slice(&(data.len() as u32).to_le_bytes());
    framed.extend_from_slice(data);
    framed.into()
}

/// The bytes read from a connection: whole frames are handed out, a partial one waits for
/// the next read.
struct Frames {
    buf: Vec<u8>,
    /// `buf[start..filled]` is read and not handed out yet.
    start: usize,
    filled: usize,
}

impl Frames {
    fn new() -> Frames {
        Frames {
            buf: vec![0; 4096],
            start: 0,
            filled: 0,
        }
    }

    /// The length of the frame at `start` (prefix included), once its prefix is read.
    fn pending_len(&self) -> Option<usize> {
        let prefix = self.buf[self.start..self.filled].get(..4)?;
        Some(4 + u32::from_le_bytes(prefix.try_into().expect("4 bytes")) as usize)
    }

    /// The next whole frame (prefix included) in `buf`, valid until the next [`Self::spare`].
    fn next(&mut self) -> Option<Range<usize>> {
        let len = self.pending_len()?;
        if self.filled - self.start < len {
            return None;
        }
        let frame = self.start..self.start + len;
        self.start += len;
        Some(frame)
    }

    /// Room to read into, once a partial frame is moved to the front and the buffer holds
    /// all of it. Call only when [`Self::next`] answered `None`.
    fn spare(&mut self) -> &mut [u8] {
        self.buf.copy_within(self.start..self.filled, 0);
        self.filled -= self.start;
        self.start = 0;
        let need = self.pending_len().unwrap_or(4);
        if need > self.buf.len() {
            self.buf.resize(need, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// `n` bytes were read into [`Self::spare`]; `false` at the end of the stream, and an
    /// error if it ends inside a frame.
    fn filled(&mut self, n: usize) -> std::io::Result<bool> {
        if n == 0 {
            return if self.filled == self.start {
                Ok(false)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        self.filled += n;
        Ok(true)
    }
}

/// One end of a connection of the reference ping-pong.
pub struct Conn<S> {
    stream: S,
    frames: Frames,
}

impl<S> Conn<S> {
    pub fn new(stream: S) -> Conn<S> {
        Conn {
            stream,
            frames: Frames::new(),
        }
    }
}

impl Conn<tokio::net::UnixStream> {
    pub async fn connect(path: &Path) -> Result<TokioUds, String> {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| format!("connecting to the peer's echo socket: {e}"))?;
        Ok(Arc::new(tokio::sync::Mutex::new(Conn::new(stream))))
    }

    /// The next frame; `None` at a clean end of stream.
    async fn read_frame(&mut self) -> std::io::Result<Option<Range<usize>>> {
        loop {
            if let Some(frame) = self.frames.next() {
                return Ok(Some(frame));
            }
            let n = self.stream.read(self.frames.spare()).await?;
            if !self.frames.filled(n)? {
                return Ok(None);
            }
        }
    }

    /// Writes `framed` and reads its echo, `iters` times.
    pub async fn round_trips(&mut self, framed: &[u8], iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.stream
                .write_all(framed)
                .await
                .expect("write to echo socket");
            let echo = self
                .read_frame()
                .await
                .expect("read from echo socket")
                .expect("the echo socket closed");
            assert_eq!(echo.len(), framed.len(), "echo of another size");
        }
        start.elapsed()
    }

    /// Echoes each frame, prefix included, in one write.
    async fn echo(mut self) {
        while let Ok(Some(frame)) = self.read_frame().await {
            if self
                .stream
                .write_all(&self.frames.buf[frame])
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

impl Conn<std::os::unix::net::UnixStream> {
    pub fn connect(path: &Path) -> Result<StdUds, String> {
        let stream = std::os::unix::net::UnixStream::connect(path)
            .map_err(|e| format!("connecting to the peer's echo socket: {e}"))?;
        Ok(Arc::new(std::sync::Mutex::new(Conn::new(stream))))
    }

    /// The next frame; `None` at a clean end of stream.
    fn read_frame(&mut self) -> std::io::Result<Option<Range<usize>>> {
        loop {
            if let Some(frame) = self.frames.next() {
                return Ok(Some(frame));
            }
            let n = self.stream.read(self.frames.spare())?;
            if !self.frames.filled(n)? {
                return Ok(None);
            }
        }
    }

    /// Writes `framed` and reads its echo, `iters` times.
    pub fn round_trips(&mut self, framed: &[u8], iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.stream.write_all(framed).expect("write to echo socket");
            let echo = self
                .read_frame()
                .expect("read from echo socket")
                .expect("the echo socket closed");
            assert_eq!(echo.len(), framed.len(), "echo of another size");
        }
        start.elapsed()
    }

    /// Echoes each frame, prefix included, in one write.
    fn echo(mut self) {
        while let Ok(Some(frame)) = self.read_frame() {
            if self.stream.write_all(&self.frames.buf[frame]).is_err() {
                return;
            }
        }
    }
}

/// `iters` round trips of `framed` on a shared tokio connection.
pub async fn tokio_round_trips(uds: TokioUds, framed: Bytes, iters: u64) -> Duration {
    uds.lock().await.round_trips(&framed, iters).await
}

/// `iters` round trips of `framed` on a shared `std` connection.
pub fn std_round_trips(uds: &StdUds, framed: &[u8], iters: u64) -> Duration {
    uds.lock()
        .expect("a benchmark thread panicked")
        .round_trips(framed, iters)
}

/// The peer's echo server on a runtime: a task per connection.
pub async fn tokio_echo_server(listener: tokio::net::UnixListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(Conn::new(stream).echo());
    }
}

/// The peer's echo server of the blocking flavor, bound at `path`: a thread per
/// connection.
pub fn std_echo_server(path: &Path) -> Result<(), String> {
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("binding the echo socket: {e}"))?;
    super::spawn_server("echo-accept", move || {
        for stream in listener.incoming() {
            let conn = Conn::new(stream?);
            std::thread::Builder::new()
                .name("echo".into())
                .spawn(move || conn.echo())?;
        }
        Ok::<_, std::io::Error>(())
    })
}
