//! A zero-downtime restart: the listening socket of a TCP server passes from the old
//! process to the new one through a typed call returning `gproc::Fd`.
//!
//! ```text
//! cargo run --release --example handover
//! ```
//!
//! The program starts an old server process on a TCP port and connects to it in a loop,
//! one connection after another, each a request and its answer. Meanwhile it starts a
//! new process of the same program, which asks the old one for its listener
//! (`Handover::listener`, a method returning `gproc::Fd`), accepts on it, and tells the
//! old one so (`Handover::release`). The old one then stops accepting, finishes the
//! connections it has open and exits. The socket never closes, so no connection is refused: connections that
//! arrive in between wait in its backlog for whichever process accepts next.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// How many connections the client makes in all.
const CONNECTIONS: u64 = 5_000;
/// After how many the new process is started.
const RESTART_AFTER: u64 = 1_000;

/// What a server process offers its successor.
#[gproc::service]
pub trait Handover {
    /// The TCP port it serves.
    async fn port(&self) -> u16;
    /// Its listening socket, for a successor to accept on too.
    async fn listener(&self) -> Result<gproc::Fd, String>;
    /// The successor accepts: this process stops accepting, finishes its connections
    /// and exits.
    async fn release(&self);
}

struct Server {
    listener: std::net::TcpListener,
    handed_over: Arc<Notify>,
}

impl Handover for Server {
    async fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    async fn listener(&self) -> Result<gproc::Fd, String> {
        let copy = self.listener.try_clone().map_err(|e| e.to_string())?;
        Ok(gproc::Fd::new(copy))
    }

    async fn release(&self) {
        self.handed_over.notify_one();
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let result = match args.first().map(String::as_str) {
        Some("serve") => runtime.block_on(serve(None)),
        Some("take-over") => {
            let old: u32 = args
                .get(1)
                .and_then(|p| p.parse().ok())
                .expect("take-over PID");
            runtime.block_on(serve(Some(old)))
        }
        _ => runtime.block_on(orchestrate()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("handover: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A server: on a new port, or on the listener taken over from `old`.
async fn serve(old: Option<u32>) -> Result<(), Box<dyn std::error::Error>> {
    gproc::listen().await?;
    let listener = match old {
        None => std::net::TcpListener::bind("127.0.0.1:0")?,
        Some(old) => {
            let fd = HandoverClient::new(old).listener().await??;
            std::net::TcpListener::from(std::os::fd::OwnedFd::from(fd))
        }
    };
    let accepting = listener.try_clone()?;
    accepting.set_nonblocking(true)?;
    let accepting = tokio::net::TcpListener::from_std(accepting)?;
    let handed_over = Arc::new(Notify::new());
    let serving = tokio::spawn(
        HandoverServer::new(Server {
            listener,
            handed_over: handed_over.clone(),
        })
        .serve(),
    );
    let me = std::process::id();
    let mut connections = tokio::task::JoinSet::new();
    if let Some(old) = old {
        // Accepting from here on (the loop below): the old one may stop.
        let release = HandoverClient::new(old);
        tokio::spawn(async move { release.release().await });
    }
    loop {
        tokio::select! {
            accepted = accepting.accept() => {
                let (stream, _) = accepted?;
                connections.spawn(answer(stream, me));
            }
            () = handed_over.notified() => break,
        }
    }
    // Handed over: the successor accepts from now on. Finish what is open, then go.
    drop(accepting);
    while connections.join_next().await.is_some() {}
    serving.abort();
    Ok(())
}

/// Answers one request line with the serving PID.
async fn answer(stream: tokio::net::TcpStream, me: u32) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    if tokio::io::BufReader::new(read)
        .read_line(&mut line)
        .await
        .is_ok()
    {
        let _ = write.write_all(format!("{me}\n").as_bytes()).await;
    }
}

/// Starts the old server, connects in a loop, starts the new server midway.
async fn orchestrate() -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let manager = gproc::Manager::new();
    let mut old = manager.new_process(&exe, ["serve"], Vec::<(String, String)>::new());
    let old_pid = old.start().await?;
    old.ready(Duration::from_secs(10)).await?;
    let handover = HandoverClient::new(old_pid);
    handover.wait_served(Duration::from_secs(10)).await?;
    let port = handover.port().await?;
    println!("old server {old_pid} serves 127.0.0.1:{port}");

    let made = Arc::new(AtomicU64::new(0));
    let client = std::thread::spawn({
        let made = made.clone();
        move || connect_loop(port, &made)
    });
    while made.load(Ordering::SeqCst) < RESTART_AFTER {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    let mut new = manager.new_process(
        &exe,
        ["take-over".to_owned(), old_pid.to_string()],
        Vec::<(String, String)>::new(),
    );
    let new_pid = new.start().await?;
    let old_status = old.wait().await?;
    println!(
        "new server {new_pid} took the listener over; the old one exited ({old_status}) {:?} after the new one started",
        started.elapsed()
    );
    let report = tokio::task::spawn_blocking(move || client.join())
        .await?
        .map_err(|_| "the client thread panicked")?;
    new.kill().await?;
    let _ = new.wait().await;
    println!(
        "{} connections, {} refused ({} answered by the old server, {} by the new one)",
        report.made,
        report.refused,
        report.by(old_pid),
        report.by(new_pid)
    );
    if report.refused > 0 {
        return Err(format!("{} connections were refused", report.refused).into());
    }
    Ok(())
}

/// What the client saw.
struct Report {
    made: u64,
    refused: u64,
    /// The PIDs that answered, one per connection.
    answered_by: Vec<u32>,
}

impl Report {
    fn by(&self, pid: u32) -> usize {
        self.answered_by.iter().filter(|&&p| p == pid).count()
    }
}

/// Connects, sends a line and reads the answer, one connection after another,
/// [`CONNECTIONS`] times.
fn connect_loop(port: u16, made: &AtomicU64) -> Report {
    let mut report = Report {
        made: 0,
        refused: 0,
        answered_by: Vec::new(),
    };
    while report.made + report.refused < CONNECTIONS {
        let answered = TcpStream::connect(("127.0.0.1", port)).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            stream.write_all(b"hello\n")?;
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line)?;
            line.trim()
                .parse::<u32>()
                .map_err(|e| std::io::Error::other(format!("answer {line:?}: {e}")))
        });
        match answered {
            Ok(pid) => report.answered_by.push(pid),
            Err(e) => {
                eprintln!("connection {}: {e}", report.made + report.refused);
                report.refused += 1;
            }
        }
        report.made = report.answered_by.len() as u64;
        made.store(report.made, Ordering::SeqCst);
    }
    report
}
