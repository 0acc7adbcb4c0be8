//! Call shapes beyond request and response, between real processes: the caller's identity
//! inside a handler (`gproc::caller()`), one-way calls (`#[gproc(oneway)]`) and server
//! streams (`gproc::Stream`).
//!
//! Each test runs in a process of its own with a `GPROC_DIR` of its own (see
//! `tests/support/mod.rs`); servers are this binary re-executed in the role `server`.
//! Tests wait on events (replies, a peer's lines, a handler's count of started and
//! finished calls), never on fixed sleeps.
//!
//! Run one test with `cargo test --test call_shapes -- oneway::returns_before_the_handler`.

mod support;

use std::io::{Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gproc::{Error, RpcError};
use support::*;

/// A generous bound for an operation that should complete.
const LONG: Duration = Duration::from_secs(20);

const TESTS: &[(&str, fn())] = &[
    ("caller::pid_uid_and_deadline", caller_pid_uid_and_deadline),
    ("caller::uid_of_another_user", caller_uid_of_another_user),
    (
        "oneway::returns_before_the_handler",
        oneway_returns_before_the_handler,
    ),
    ("oneway::outlives_its_caller", oneway_outlives_its_caller),
    (
        "oneway::errors_before_queueing",
        oneway_errors_before_queueing,
    ),
    ("stream::items_in_order", stream_items_in_order),
    (
        "stream::window_bounds_the_server",
        stream_window_bounds_the_server,
    ),
    (
        "stream::slow_stream_holds_up_nothing_else",
        stream_slow_stream_holds_up_nothing_else,
    ),
    (
        "stream::dropped_stops_the_server",
        stream_dropped_stops_the_server,
    ),
    ("stream::server_killed", stream_server_killed),
    (
        "stream::deadline_bounds_opening_only",
        stream_deadline_bounds_opening_only,
    ),
    ("stream::panic_is_reported", stream_panic_is_reported),
    (
        "stream::million_items_slow_consumer",
        stream_million_items_slow_consumer,
    ),
    ("stream::hundred_at_once", stream_hundred_at_once),
    ("fd::pipe_inside_a_struct", fd_pipe_inside_a_struct),
    ("fd::file_and_socket_returned", fd_file_and_socket_returned),
    ("fd::none_left_open", fd_none_left_open),
    ("fd::too_many_for_one_call", fd_too_many_for_one_call),
    (
        "blocking::call_stream_and_manager_without_a_runtime",
        blocking_call_stream_and_manager_without_a_runtime,
    ),
];

const ROLES: &[(&str, fn())] = &[
    (ROLE_SERVER, role_server),
    (ROLE_CLIENT, role_client),
    (ROLE_BLOCKING, role_blocking),
];

fn main() {
    support::run_tests(TESTS, ROLES);
}

// =======================================================================================
// The service
// =======================================================================================

/// What a handler saw of its caller: `(pid, uid, milliseconds left)`.
type Seen = Option<(u32, u32, u64)>;

#[gproc::service]
pub trait Shapes {
    /// What `gproc::caller()` says inside the handler, and in a task the handler spawned.
    async fn whoami(&self) -> (Seen, Seen);
    /// Sleeps `ms`, counting in `tag`'s stats that it started and finished.
    #[gproc(oneway)]
    async fn note(&self, tag: u32, ms: u64);
    /// `(started, finished)` calls of `note` with `tag`.
    async fn notes(&self, tag: u32) -> (u32, u32);
    /// `0..spec.n`, as `spec` says.
    async fn count(&self, spec: Count) -> gproc::Stream<u64>;
    /// `(produced, dropped)` of the `count` streams with `tag`: items taken from them,
    /// and streams dropped.
    async fn produced(&self, tag: u32) -> (u64, u32);
    /// The server's resident memory, in KiB.
    async fn rss(&self) -> u64;
    /// Writes `target.label` through `target.pipe`; returns how many bytes it wrote.
    async fn write_to(&self, target: Target) -> u64;
    /// A file holding `text` (read from its start), and a socket whose other end has
    /// written `text` and closed.
    async fn file_and_socket(&self, text: String) -> Result<(gproc::Fd, gproc::Fd), String>;
    /// How many descriptors the server holds.
    async fn fds(&self) -> u64;
    /// How many descriptors came in `fds`.
    async fn how_many(&self, fds: Vec<gproc::Fd>) -> u64;
}

/// A descriptor inside a type of the user's own.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Target {
    label: String,
    pipe: gproc::Fd,
}

/// What a `count` stream does.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Count {
    tag: u32,
    n: u64,
    /// The handler sleeps this long before it returns the stream.
    open_ms: u64,
    /// The stream sleeps this long before each item.
    pause_ms: u64,
    /// The stream panics instead of yielding this item.
    panic_at: u64,
}

impl Count {
    fn new(tag: u32, n: u64) -> Count {
        Count {
            tag,
            n,
            open_ms: 0,
            pause_ms: 0,
            panic_at: u64::MAX,
        }
    }
}

#[derive(Default)]
struct ShapesImpl {
    notes: Mutex<std::collections::HashMap<u32, Arc<(AtomicU32, AtomicU32)>>>,
    streams: Mutex<std::collections::HashMap<u32, Arc<(AtomicU64, AtomicU32)>>>,
}

impl ShapesImpl {
    fn counts(&self, tag: u32) -> Arc<(AtomicU32, AtomicU32)> {
        self.notes.lock().unwrap().entry(tag).or_default().clone()
    }

    fn stream_counts(&self, tag: u32) -> Arc<(AtomicU64, AtomicU32)> {
        self.streams.lock().unwrap().entry(tag).or_default().clone()
    }
}

/// Counts its stream as dropped when dropped.
struct DropGuard(Arc<(AtomicU64, AtomicU32)>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0 .1.fetch_add(1, Ordering::SeqCst);
    }
}

fn seen() -> Seen {
    gproc::caller().map(|c| {
        let left = c.deadline.saturating_duration_since(Instant::now());
        (c.pid, c.uid, left.as_millis() as u64)
    })
}

impl Shapes for ShapesImpl {
    async fn whoami(&self) -> (Seen, Seen) {
        let spawned = tokio::spawn(async { seen() }).await.expect("the task");
        (seen(), spawned)
    }

    async fn note(&self, tag: u32, ms: u64) {
        let counts = self.counts(tag);
        counts.0.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        counts.1.fetch_add(1, Ordering::SeqCst);
    }

    async fn notes(&self, tag: u32) -> (u32, u32) {
        let counts = self.counts(tag);
        (
            counts.0.load(Ordering::SeqCst),
            counts.1.load(Ordering::SeqCst),
        )
    }

    async fn count(&self, spec: Count) -> gproc::Stream<u64> {
        tokio::time::sleep(Duration::from_millis(spec.open_ms)).await;
        let guard = DropGuard(self.stream_counts(spec.tag));
        gproc::Stream::new(futures_util::stream::unfold(
            (0, guard),
            move |(i, guard)| async move {
                if i == spec.n {
                    return None;
                }
                if spec.pause_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(spec.pause_ms)).await;
                }
                assert!(i != spec.panic_at, "the stream panics at item {i}");
                guard.0 .0.fetch_add(1, Ordering::SeqCst);
                Some((i, (i + 1, guard)))
            },
        ))
    }

    async fn produced(&self, tag: u32) -> (u64, u32) {
        let counts = self.stream_counts(tag);
        (
            counts.0.load(Ordering::SeqCst),
            counts.1.load(Ordering::SeqCst),
        )
    }

    async fn rss(&self) -> u64 {
        rss_kib(std::process::id())
    }

    async fn write_to(&self, target: Target) -> u64 {
        let mut pipe = std::fs::File::from(target.pipe.into_owned());
        pipe.write_all(target.label.as_bytes())
            .expect("write to the pipe");
        target.label.len() as u64
    }

    async fn file_and_socket(&self, text: String) -> Result<(gproc::Fd, gproc::Fd), String> {
        let mut file = tempfile::tempfile().map_err(|e| e.to_string())?;
        file.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        file.seek(std::io::SeekFrom::Start(0))
            .map_err(|e| e.to_string())?;
        let (mut ours, theirs) =
            std::os::unix::net::UnixStream::pair().map_err(|e| e.to_string())?;
        ours.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        Ok((gproc::Fd::new(file), gproc::Fd::new(theirs)))
    }

    async fn fds(&self) -> u64 {
        fd_count(std::process::id())
    }

    async fn how_many(&self, fds: Vec<gproc::Fd>) -> u64 {
        fds.len() as u64
    }
}

fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/<pid>/fd")
        .count() as u64
}

// =======================================================================================
// Roles
// =======================================================================================

/// `[allow=<uid>]`: serves `Shapes` until stdin closes.
const ROLE_SERVER: &str = "server";
/// `server=<pid> [allow=<uid>] whoami|note=<tag>,<ms>`: one call, its result printed, then exits.
const ROLE_CLIENT: &str = "client";

/// `server=<pid>`: with no tokio runtime at all, under `gproc::blocking::block_on`: a
/// typed call, a stream, and a child started, awaited ready, called, killed and waited
/// for through a `Manager`; a line for each.
const ROLE_BLOCKING: &str = "blocking";

fn role_server() {
    let args = role_args();
    if let Some((_, uid)) = args.iter().find(|(k, _)| k == "allow") {
        gproc::Config::new()
            .allow_uid(uid.parse().expect("allow=<uid>"))
            .install()
            .expect("server: install the Config");
    }
    exit_when_stdin_closes();
    runtime().block_on(async {
        gproc::listen().await.expect("server: listen");
        let serving = tokio::spawn(ShapesServer::new(ShapesImpl::default()).serve());
        ready();
        serving
            .await
            .expect("server: the serving task")
            .expect("server: serve Shapes");
    });
}

fn role_client() {
    let args = role_args();
    let value = |key: &str| args.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    if let Some(uid) = value("allow") {
        gproc::Config::new()
            .allow_uid(uid.parse().expect("allow=<uid>"))
            .install()
            .expect("client: install the Config");
    }
    let server: u32 = value("server")
        .expect("server=<pid>")
        .parse()
        .expect("a PID");
    let client = ShapesClient::new(server);
    current_thread_runtime().block_on(async {
        if value("whoami").is_some() {
            let (inside, _) = client.whoami().await.expect("client: whoami");
            let (pid, uid, _) = inside.expect("client: a caller inside the handler");
            say(&format!("pid={pid} uid={uid}"));
        }
        if let Some(note) = value("note") {
            let (tag, ms) = note.split_once(',').expect("note=<tag>,<ms>");
            client
                .note(tag.parse().expect("a tag"), ms.parse().expect("ms"))
                .await
                .expect("client: note");
            say("queued");
        }
    });
    // Returns from `main`: the process exits, whatever its handlers still do.
}

fn role_blocking() {
    let server: u32 = role_args()
        .iter()
        .find(|(k, _)| k == "server")
        .and_then(|(_, v)| v.parse().ok())
        .expect("server=<pid>");
    let thread = std::thread::current().id();
    let on_this_thread = || assert_eq!(std::thread::current().id(), thread);
    gproc::blocking::block_on(async {
        assert!(
            tokio::runtime::Handle::try_current().is_err(),
            "no tokio runtime here"
        );
        let client = ShapesClient::new(server);
        let (inside, _) = client.whoami().await.expect("blocking: a typed call");
        on_this_thread();
        let (pid, _, _) = inside.expect("a caller");
        say(&format!("call pid={pid}"));

        let mut stream = client
            .count(Count::new(11, 1_000))
            .await
            .expect("blocking: open a stream");
        let mut items = 0;
        while let Some(item) = stream.next().await {
            assert_eq!(item.expect("blocking: an item"), items);
            items += 1;
        }
        on_this_thread();
        say(&format!("stream items={items}"));

        let manager = gproc::Manager::new();
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = manager.new_process(exe, Vec::<String>::new(), [(ENV_ROLE, ROLE_SERVER)]);
        let pid = child.start().await.expect("blocking: start a child");
        child
            .ready(LONG)
            .await
            .expect("blocking: the child's endpoint");
        let shapes = ShapesClient::new(pid);
        shapes
            .wait_served(LONG)
            .await
            .expect("blocking: the child serves");
        let (inside, _) = shapes.whoami().await.expect("blocking: call the child");
        assert_eq!(inside.map(|(p, _, _)| p), Some(std::process::id()));
        child.kill().await.expect("blocking: kill the child");
        let status = child.wait().await.expect("blocking: wait for the child");
        on_this_thread();
        say(&format!("manager killed={}", !status.success()));
    });
}

// =======================================================================================
// Helpers
// =======================================================================================

/// A server process, once it serves `Shapes` (it says "ready" as it listens, a moment
/// before its `serve()` runs).
fn server(args: &[&str]) -> Peer {
    let peer = spawn_peer(ROLE_SERVER, args);
    peer.wait_until_listening(LONG);
    block_on(ShapesClient::new(peer.pid()).wait_served(LONG)).expect("the server serves Shapes");
    peer
}

fn my_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Asks the server with `ask` until `done` holds of its answer, for at most [`LONG`];
/// returns the last answer.
async fn ask_until<T, F>(ask: impl Fn() -> F, done: impl Fn(&T) -> bool) -> T
where
    F: std::future::Future<Output = Result<T, RpcError>>,
{
    let until = Instant::now() + LONG;
    loop {
        let answer = ask().await.expect("a call to the server");
        if done(&answer) || Instant::now() > until {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// =======================================================================================
// The caller
// =======================================================================================

/// Inside a handler, `gproc::caller()` names the calling process, its uid and the call's
/// deadline; in a task the handler spawned, and in the test itself, it is `None`.
fn caller_pid_uid_and_deadline() {
    let server = server(&[]);
    block_on(async {
        assert_eq!(gproc::caller(), None, "outside a handler");
        let client = ShapesClient::new(server.pid()).with_timeout(Duration::from_secs(7));
        let (inside, spawned) = within(LONG, "whoami", client.whoami())
            .await
            .expect("whoami");
        let (pid, uid, left_ms) = inside.expect("a caller inside the handler");
        println!("the handler saw pid {pid}, uid {uid}, {left_ms} ms left of 7000");
        assert_eq!(pid, std::process::id(), "the caller's PID");
        assert_eq!(uid, my_uid(), "the caller's uid");
        assert!(
            (5_000..=7_000).contains(&left_ms),
            "the deadline is the caller's 7 s, less the time the request took: {left_ms} ms"
        );
        assert_eq!(spawned, None, "a task the handler spawned has no caller");
    });
}

/// A client running as another user is named by its own uid, which the server reads from
/// the connection's credentials.
fn caller_uid_of_another_user() {
    require_other_uid();
    let dir = gproc_dir();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let server = server(&[&format!("allow={NOBODY}")]);
    let client = PeerBuilder::new_as(ROLE_CLIENT, NOBODY)
        // The client accepts the server's uid (root) as a peer.
        .args([
            format!("server={}", server.pid()),
            format!("allow={}", my_uid()),
            "whoami".to_owned(),
        ])
        .spawn();
    let line = client.line_within(LONG);
    assert_eq!(
        line,
        format!("pid={} uid={NOBODY}", client.pid()),
        "the server saw the client's own PID and uid"
    );
}

// =======================================================================================
// One-way calls
// =======================================================================================

/// A one-way call to a handler that sleeps a second returns once the request is queued:
/// the handler has started and not finished when the call returns, and finishes later.
fn oneway_returns_before_the_handler() {
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        client.wait_served(LONG).await.expect("served");
        let started = Instant::now();
        within(LONG, "a one-way call", client.note(1, 1_000))
            .await
            .expect("the one-way call");
        let took = started.elapsed();
        let (begun, finished) = client.notes(1).await.expect("notes");
        println!("a one-way call to a 1 s handler returned in {took:?}");
        assert_eq!(finished, 0, "the call returned before the handler finished");
        assert!(begun <= 1);
        let counts = ask_until(|| client.notes(1), |&(_, f)| f == 1).await;
        assert_eq!(counts, (1, 1), "the handler ran to its end");
    });
}

/// The handler of a one-way call runs to its end after its caller has exited.
fn oneway_outlives_its_caller() {
    let server = server(&[]);
    let mut client = spawn_peer(
        ROLE_CLIENT,
        &[&format!("server={}", server.pid()), "note=7,300"],
    );
    client.expect_line("queued");
    let status = client.wait(LONG);
    assert!(status.success(), "the client exited: {status}");
    block_on(async {
        let shapes = ShapesClient::new(server.pid());
        let counts = ask_until(|| shapes.notes(7), |&(_, f)| f == 1).await;
        assert_eq!(
            counts,
            (1, 1),
            "the handler finished after its caller exited"
        );
    });
}

/// What a one-way call cannot queue is an error, as for any call: a dead PID, a process
/// that does not serve the service.
fn oneway_errors_before_queueing() {
    block_on(async {
        let mut gone = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let dead = gone.id();
        gone.wait().expect("wait");
        let result = within(LONG, "to a dead PID", ShapesClient::new(dead).note(1, 0)).await;
        assert!(
            matches!(result, Err(RpcError::Transport(Error::NoSuchProcess(pid))) if pid == dead),
            "a one-way call to a dead PID: {result:?}"
        );
        gproc::listen().await.expect("listen");
        let me = std::process::id();
        let result = within(LONG, "to ourselves", ShapesClient::new(me).note(1, 0)).await;
        assert!(
            matches!(&result, Err(RpcError::ServiceNotServed { service }) if service == "Shapes"),
            "a one-way call to a process that does not serve Shapes: {result:?}"
        );
    });
}

// =======================================================================================
// Streams
// =======================================================================================

/// How many items a server may run ahead of its consumer (gproc's stream window), and
/// how many the consumer takes before it grants more (half of it).
const WINDOW: u64 = 64;

/// Takes the next `n` items of `stream`, checking that they go on from `from`.
async fn take_in_order(stream: &mut gproc::Stream<u64>, from: u64, n: u64) {
    for expected in from..from + n {
        let item = within(LONG, "the next item", stream.next()).await;
        match item {
            Some(Ok(i)) => assert_eq!(i, expected, "items arrive in order"),
            other => panic!("item {expected}: {other:?}"),
        }
    }
}

/// 10,000 items arrive in order, then the end.
fn stream_items_in_order() {
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        let mut stream = client.count(Count::new(1, 10_000)).await.expect("open");
        take_in_order(&mut stream, 0, 10_000).await;
        assert!(stream.next().await.is_none(), "the end after the last item");
        assert!(stream.next().await.is_none(), "and it stays ended");
    });
}

/// The server takes items from its stream only as far as the consumer's window: a
/// consumer that takes 10 items and waits leaves the server stopped at the window (64),
/// and once it has taken 32 (half a window), it grants 32 more, and no more.
fn stream_window_bounds_the_server() {
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        let mut stream = client.count(Count::new(2, u64::MAX)).await.expect("open");
        take_in_order(&mut stream, 0, 10).await;
        let (produced, _) = ask_until(|| client.produced(2), |&(p, _)| p >= WINDOW).await;
        assert_eq!(
            produced, WINDOW,
            "the server runs a window ahead, no further"
        );
        // Round trips to the server while the consumer waits: it stays at the window.
        for _ in 0..20 {
            assert_eq!(client.produced(2).await.expect("produced").0, WINDOW);
        }
        take_in_order(&mut stream, 10, WINDOW / 2 - 10).await;
        let (produced, _) = ask_until(|| client.produced(2), |&(p, _)| p >= WINDOW * 3 / 2).await;
        assert_eq!(
            produced,
            WINDOW * 3 / 2,
            "half a window taken, half a window granted"
        );
        for _ in 0..20 {
            assert_eq!(
                client.produced(2).await.expect("produced").0,
                WINDOW * 3 / 2
            );
        }
    });
}

/// A stream nobody reads holds up neither another stream on the same connection nor
/// calls.
fn stream_slow_stream_holds_up_nothing_else() {
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        let mut stalled = client.count(Count::new(3, u64::MAX)).await.expect("open");
        take_in_order(&mut stalled, 0, 1).await;
        ask_until(|| client.produced(3), |&(p, _)| p >= WINDOW).await;
        let mut busy = client.count(Count::new(4, 20_000)).await.expect("open");
        take_in_order(&mut busy, 0, 20_000).await;
        assert!(busy.next().await.is_none());
        for i in 0..100 {
            let (_, dropped) = within(LONG, "a call beside the streams", client.produced(3))
                .await
                .expect("a call beside the streams");
            assert_eq!(dropped, 0, "call {i}: the stalled stream is still open");
        }
        take_in_order(&mut stalled, 1, 10).await;
    });
}

/// Dropping the client's stream drops the server's (its drop guard counts).
fn stream_dropped_stops_the_server() {
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        let mut stream = client.count(Count::new(5, u64::MAX)).await.expect("open");
        take_in_order(&mut stream, 0, 5).await;
        let dropped_at = Instant::now();
        drop(stream);
        let (produced, dropped) = ask_until(|| client.produced(5), |&(_, d)| d == 1).await;
        println!(
            "the server's stream was dropped {:?} after the client's, {produced} items made",
            dropped_at.elapsed()
        );
        assert_eq!(dropped, 1, "the server's stream was dropped");
        assert!(produced <= 5 + WINDOW, "{produced} items made for 5 taken");
    });
}

/// A server SIGKILLed while a stream is open ends it with a transport error, then `None`.
fn stream_server_killed() {
    let mut server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        let mut stream = client
            .count(Count {
                pause_ms: 1,
                ..Count::new(6, u64::MAX)
            })
            .await
            .expect("open");
        take_in_order(&mut stream, 0, 3).await;
        let killed_at = Instant::now();
        server.kill();
        let mut next = 3;
        let error = loop {
            match within(LONG, "items until the error", stream.next()).await {
                Some(Ok(i)) => {
                    assert_eq!(i, next, "items in order until the error");
                    next += 1;
                }
                Some(Err(e)) => break e,
                None => panic!("the stream ended without an error after its server died"),
            }
        };
        println!(
            "the stream failed {:?} after the kill: {error}",
            killed_at.elapsed()
        );
        assert!(
            matches!(error, RpcError::Transport(Error::ConnectionLost)),
            "a stream whose server died: {error:?}"
        );
        assert!(stream.next().await.is_none(), "None after the error");
    });
}

/// The deadline bounds the opening of a stream, not its length: a stream that takes 1 s
/// arrives whole under a 300 ms deadline, while a handler that takes longer than the
/// deadline to open it fails with `DeadlineExceeded`.
fn stream_deadline_bounds_opening_only() {
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid()).with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let mut stream = client
            .count(Count {
                pause_ms: 100,
                ..Count::new(7, 10)
            })
            .await
            .expect("open");
        take_in_order(&mut stream, 0, 10).await;
        assert!(stream.next().await.is_none());
        println!("a 300 ms deadline, a stream of {:?}", started.elapsed());
        let late = client
            .count(Count {
                open_ms: 2_000,
                ..Count::new(8, 10)
            })
            .await;
        assert!(
            matches!(late, Err(RpcError::DeadlineExceeded)),
            "a stream opened after the deadline: {late:?}"
        );
    });
}

/// A server's stream that panics ends the client's with `HandlerPanicked`, then `None`;
/// the server serves on.
fn stream_panic_is_reported() {
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        let mut stream = client
            .count(Count {
                panic_at: 3,
                ..Count::new(9, 10)
            })
            .await
            .expect("open");
        take_in_order(&mut stream, 0, 3).await;
        let e = stream.next().await;
        assert!(
            matches!(e, Some(Err(RpcError::HandlerPanicked))),
            "a panicking stream: {e:?}"
        );
        assert!(stream.next().await.is_none());
        assert_eq!(client.produced(9).await.expect("serves on"), (3, 1));
    });
}

/// 1,000,000 small items to a consumer that pauses 1 ms every 1,000 items: both
/// processes' memory stays bounded, as the server runs at most a window ahead.
fn stream_million_items_slow_consumer() {
    const ITEMS: u64 = 1_000_000;
    const BOUND_KIB: u64 = 8 * 1024;
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        let mut stream = client.count(Count::new(10, ITEMS)).await.expect("open");
        let me = std::process::id();
        let (mut server_base, mut client_base) = (0, 0);
        let (mut server_max, mut client_max) = (0, 0);
        let started = Instant::now();
        for i in 0..ITEMS {
            let item = stream.next().await;
            assert!(matches!(item, Some(Ok(n)) if n == i), "item {i}: {item:?}");
            if i % 1_000 == 999 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if i == 50_000 {
                server_base = client.rss().await.expect("rss");
                client_base = rss_kib(me);
            }
            if i > 50_000 && i % 50_000 == 0 {
                server_max = server_max.max(client.rss().await.expect("rss"));
                client_max = client_max.max(rss_kib(me));
            }
        }
        assert!(stream.next().await.is_none());
        println!(
            "{ITEMS} items in {:?}; server RSS {server_base} -> max {server_max} KiB, \
             client {client_base} -> max {client_max} KiB",
            started.elapsed()
        );
        assert!(
            server_max < server_base + BOUND_KIB,
            "the server's memory grew from {server_base} to {server_max} KiB"
        );
        assert!(
            client_max < client_base + BOUND_KIB,
            "the client's memory grew from {client_base} to {client_max} KiB"
        );
    });
}

/// 100 streams open at once on one connection, read concurrently: each arrives whole and
/// in order.
fn stream_hundred_at_once() {
    const STREAMS: u32 = 100;
    const ITEMS: u64 = 2_000;
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        let mut streams = Vec::new();
        for s in 0..STREAMS {
            streams.push(
                client
                    .count(Count::new(100 + s, ITEMS))
                    .await
                    .expect("open"),
            );
        }
        let started = Instant::now();
        let reads = streams.into_iter().map(|mut stream| async move {
            take_in_order(&mut stream, 0, ITEMS).await;
            assert!(stream.next().await.is_none());
        });
        within(LONG, "100 streams", futures_util::future::join_all(reads)).await;
        println!(
            "{STREAMS} streams of {ITEMS} items at once on one connection: {:?}",
            started.elapsed()
        );
        let ss = std::fs::read_dir(format!("/proc/{}/fd", std::process::id()))
            .expect("fds")
            .count();
        println!("{ss} descriptors open in the client");
    });
}

// =======================================================================================
// Blocking
// =======================================================================================

/// A program with no tokio runtime makes a typed call, reads a stream and runs a child
/// through a `Manager`, all under `gproc::blocking::block_on` on its own thread.
fn blocking_call_stream_and_manager_without_a_runtime() {
    let server = server(&[]);
    let mut peer = spawn_peer(ROLE_BLOCKING, &[&format!("server={}", server.pid())]);
    assert_eq!(peer.line_within(LONG), format!("call pid={}", peer.pid()));
    assert_eq!(peer.line_within(LONG), "stream items=1000");
    // The child shares the program's stdout, and says "ready" there too.
    let line = std::iter::repeat_with(|| peer.line_within(LONG))
        .find(|line| line != "ready")
        .expect("a line");
    assert_eq!(line, "manager killed=true");
    let status = peer.wait(LONG);
    assert!(status.success(), "the blocking program exited: {status}");
}

// =======================================================================================
// Descriptors
// =======================================================================================

/// A pipe's write end, inside a struct, crosses to the server, which writes through it;
/// this process reads what it wrote from the read end.
fn fd_pipe_inside_a_struct() {
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        let (mut read_end, write_end) = pipe();
        let target = Target {
            label: "written by the server".into(),
            pipe: gproc::Fd::new(write_end),
        };
        let n = within(LONG, "write_to", client.write_to(target))
            .await
            .expect("write_to");
        // Our copy went with the request; the server's closed after its write: EOF.
        let mut got = String::new();
        read_end.read_to_string(&mut got).expect("read the pipe");
        assert_eq!(got, "written by the server");
        assert_eq!(n, got.len() as u64);
    });
}

/// A method returns a file and a socket: this process reads the file from its start, and
/// what the server wrote into the socket's other end.
fn fd_file_and_socket_returned() {
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        let (file, socket) = within(LONG, "file_and_socket", client.file_and_socket("hi".into()))
            .await
            .expect("the call")
            .expect("the server made them");
        let mut text = String::new();
        std::fs::File::from(file.into_owned())
            .read_to_string(&mut text)
            .expect("read the file");
        assert_eq!(text, "hi", "the file's content");
        let mut socket = std::os::unix::net::UnixStream::from(socket.into_owned());
        let mut said = String::new();
        socket.read_to_string(&mut said).expect("read the socket");
        assert_eq!(said, "hi", "what the server wrote into the socket");
    });
}

/// After 200 calls that pass descriptors both ways, neither process holds more
/// descriptors than before them.
fn fd_none_left_open() {
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        // Warm-up: the connection and whatever the first calls open for good.
        let _ = client
            .file_and_socket("warm".into())
            .await
            .expect("warm-up");
        let (server_before, client_before) = (
            client.fds().await.expect("fds"),
            fd_count(std::process::id()),
        );
        for i in 0..100 {
            let (_read_end, write_end) = pipe();
            let target = Target {
                label: format!("{i}"),
                pipe: gproc::Fd::new(write_end),
            };
            client.write_to(target).await.expect("write_to");
            let pair = client.file_and_socket(format!("{i}")).await.expect("call");
            drop(pair.expect("made"));
        }
        let (server_after, client_after) = (
            client.fds().await.expect("fds"),
            fd_count(std::process::id()),
        );
        println!(
            "descriptors: server {server_before} -> {server_after}, \
             client {client_before} -> {client_after}"
        );
        assert_eq!(server_after, server_before, "the server's descriptors");
        assert_eq!(client_after, client_before, "the client's descriptors");
    });
}

/// 253 descriptors cross in one call; 254 are `TooManyFds` before anything is sent, and
/// the server's descriptors are as before.
fn fd_too_many_for_one_call() {
    let server = server(&[]);
    block_on(async {
        let client = ShapesClient::new(server.pid());
        let before = client.fds().await.expect("fds");
        let copies = |n: usize| -> Vec<gproc::Fd> {
            let file = std::fs::File::open("/dev/null").expect("/dev/null");
            (0..n)
                .map(|_| gproc::Fd::new(file.try_clone().expect("dup")))
                .collect()
        };
        let n = client.how_many(copies(253)).await.expect("253 descriptors");
        assert_eq!(n, 253);
        let result = client.how_many(copies(254)).await;
        assert!(
            matches!(
                result,
                Err(RpcError::Transport(Error::TooManyFds {
                    count: 254,
                    limit: 253
                }))
            ),
            "254 descriptors in one call: {result:?}"
        );
        assert_eq!(client.fds().await.expect("fds"), before, "none left open");
    });
}
