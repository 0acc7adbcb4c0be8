//! What both benchmarks share: one executable plays the top level (which runs a pinned and
//! an unpinned driver, each a fresh process), a driver (which pins itself or not, starts the
//! peer and measures) and the peer, chosen by environment variables.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// Set to `peer` in the peer process.
pub const ROLE: &str = "GPROC_BENCH_ROLE";
/// Set to `pinned` or `unpinned` in a driver process.
pub const DRIVER: &str = "GPROC_BENCH_DRIVER";
/// `<scenario>:<iterations>`: a driver runs one scenario without criterion.
pub const PROBE: &str = "GPROC_BENCH_PROBE";
/// How long a driver waits for the peer's `ready` line, and for a first round trip.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A driver's measurements: placement, the shared `GPROC_DIR`, the peer's PID.
pub type Run = fn(&str, &Path, u32) -> Result<(), String>;

/// The benchmark's `main`: the peer role, a driver, or the top level.
pub fn main(name: &str, peer: fn() -> ExitCode, run: Run) -> ExitCode {
    if std::env::var(ROLE).is_ok_and(|r| r == "peer") {
        return peer();
    }
    match std::env::var(DRIVER) {
        Ok(placement) if placement == "pinned" || placement == "unpinned" => {
            driver(name, &placement, run)
        }
        Ok(other) => {
            eprintln!("{DRIVER} must be `pinned` or `unpinned`, not {other:?}");
            ExitCode::FAILURE
        }
        Err(_) => top_level(),
    }
}

/// Runs the pinned driver, then the unpinned one, each as a fresh process.
fn top_level() -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("cannot find this benchmark's executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let mut failed = Vec::new();
    for placement in ["pinned", "unpinned"] {
        let status = Command::new(&exe)
            .args(&args)
            .env(DRIVER, placement)
            .env_remove(ROLE)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => failed.push(format!("{placement} driver: {s}")),
            Err(e) => failed.push(format!("{placement} driver did not start: {e}")),
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in &failed {
            eprintln!("benchmark failed: {f}");
        }
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------------------
// Driver

fn driver(name: &str, placement: &str, run: Run) -> ExitCode {
    // Before any runtime or gproc thread exists: threads and the child inherit the mask.
    if placement == "pinned" {
        match pin_to_one_cpu() {
            Ok(cpu) => eprintln!("[{name} bench] pinned driver and peer to CPU {cpu}"),
            Err(e) => {
                eprintln!("[{name} bench] cannot pin to a CPU: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let cpus = rustix::thread::sched_getaffinity(None).map_or(0, |s| s.count());
        eprintln!("[{name} bench] unpinned: driver and peer may run on {cpus} CPUs");
    }

    let dir = match tempfile::Builder::new().prefix("gproc-bench-").tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("cannot create a temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = gproc::Config::new().dir(dir.path()).install() {
        eprintln!("cannot configure gproc: {e}");
        return ExitCode::FAILURE;
    }

    let mut peer = match start_peer(dir.path()) {
        Ok(peer) => peer,
        Err(e) => {
            eprintln!("cannot start the peer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = run(placement, dir.path(), peer.id());
    stop_peer(name, &mut peer);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[{name} bench] {placement} driver failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Restricts this thread (and so every thread and child started after) to the lowest CPU
/// it may run on, CPU 0 unless a cgroup excludes it.
fn pin_to_one_cpu() -> std::io::Result<usize> {
    let allowed = rustix::thread::sched_getaffinity(None)?;
    let cpu = (0..rustix::thread::CpuSet::MAX_CPU)
        .find(|&c| allowed.is_set(c))
        .unwrap_or(0);
    let mut only = rustix::thread::CpuSet::new();
    only.set(cpu);
    rustix::thread::sched_setaffinity(None, &only)?;
    Ok(cpu)
}

/// Starts the peer and waits for its `ready` line (it serves every socket by then).
fn start_peer(dir: &Path) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env(ROLE, "peer")
        .env(gproc::ENV_DIR, dir)
        .env_remove(DRIVER)
        .env_remove(PROBE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next();
        let _ = tx.send(first);
        // Keep draining, so that the peer never blocks on a full pipe.
        for _ in lines {}
    });
    match rx.recv_timeout(STARTUP_TIMEOUT) {
        Ok(Some(Ok(line))) if line.trim() == "ready" => Ok(child),
        outcome => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("the peer did not report ready: {outcome:?}"))
        }
    }
}

/// Closes the peer's stdin, which makes it exit, and reaps it.
fn stop_peer(name: &str, peer: &mut Child) {
    drop(peer.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match peer.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                eprintln!("[{name} bench] the peer did not exit; killing it");
                let _ = peer.kill();
                let _ = peer.wait();
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The plain Unix-socket reference: length-prefixed frames, echoed by the peer

/// The client end of the tokio echo connection, shared by the benchmark iterations.
pub type Uds = Arc<tokio::sync::Mutex<(UnixStream, BytesMut)>>;

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

/// Writes the length-prefixed `framed` message and reads the echoed frame, `iters` times.
pub async fn uds_round_trips(uds: Uds, framed: Bytes, iters: u64) -> Duration {
    let mut guard = uds.lock().await;
    let (stream, buf) = &mut *guard;
    let start = Instant::now();
    for _ in 0..iters {
        stream
            .write_all(&framed)
            .await
            .expect("write to echo socket");
        let echo = read_frame(stream, buf)
            .await
            .expect("read from echo socket")
            .expect("the echo socket closed");
        assert_eq!(echo.len(), framed.len(), "echo of another size");
    }
    start.elapsed()
}

/// Reads one length-prefixed frame (prefix included) with as few reads as the kernel allows;
/// `None` at a clean end of stream.
pub async fn read_frame(
    stream: &mut UnixStream,
    buf: &mut BytesMut,
) -> std::io::Result<Option<Bytes>> {
    loop {
        if buf.len() >= 4 {
            let len = 4 + u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() >= len {
                return Ok(Some(buf.split_to(len).freeze()));
            }
            buf.reserve(len - buf.len());
        } else {
            buf.reserve(64 * 1024);
        }
        if stream.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
    }
}

pub async fn uds_echo_server(listener: UnixListener) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(uds_echo(stream));
    }
}

/// Echoes each length-prefixed frame, prefix included, in one write.
pub async fn uds_echo(mut stream: UnixStream) {
    let mut buf = BytesMut::new();
    while let Ok(Some(frame)) = read_frame(&mut stream, &mut buf).await {
        if stream.write_all(&frame).await.is_err() {
            return;
        }
    }
}

/// In the peer: exits once the driver closes our stdin (it finished, or died).
pub fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(std::io::Read::read(&mut stdin, &mut buf), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
}
