//! Call shapes beyond request and response, between real processes: the caller's identity
//! inside a handler (`gproc::caller()`) and one-way calls (`#[gproc(oneway)]`).
//!
//! Each test runs in a process of its own with a `GPROC_DIR` of its own (see
//! `tests/support/mod.rs`); servers are this binary re-executed in the role `server`.
//! Tests wait on events (replies, a peer's lines, a handler's count of started and
//! finished calls), never on fixed sleeps.
//!
//! Run one test with `cargo test --test call_shapes -- oneway::returns_before_the_handler`.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gproc::{Error, RpcError};
use support::*;

/// A generous bound for an operation that should complete.
const LONG: Duration = Duration::from_secs(20);
/// The uid of the other user some tests run a client as.
const NOBODY: u32 = 65534;

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
];

const ROLES: &[(&str, fn())] = &[(ROLE_SERVER, role_server), (ROLE_CLIENT, role_client)];

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
}

#[derive(Default)]
struct ShapesImpl {
    notes: Mutex<std::collections::HashMap<u32, Arc<(AtomicU32, AtomicU32)>>>,
}

impl ShapesImpl {
    fn counts(&self, tag: u32) -> Arc<(AtomicU32, AtomicU32)> {
        self.notes.lock().unwrap().entry(tag).or_default().clone()
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
}

// =======================================================================================
// Roles
// =======================================================================================

/// `[allow=<uid>]`: serves `Shapes` until stdin closes.
const ROLE_SERVER: &str = "server";
/// `server=<pid> [allow=<uid>] whoami|note=<tag>,<ms>`: one call, its result printed, then exits.
const ROLE_CLIENT: &str = "client";

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

// =======================================================================================
// Helpers
// =======================================================================================

fn server(args: &[&str]) -> Peer {
    let peer = spawn_peer(ROLE_SERVER, args);
    peer.wait_until_listening(LONG);
    peer
}

fn my_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Polls `notes(tag)` until `done` holds, for at most [`LONG`]; returns the last counts.
async fn notes_until(
    client: &ShapesClient,
    tag: u32,
    done: impl Fn((u32, u32)) -> bool,
) -> (u32, u32) {
    let until = Instant::now() + LONG;
    loop {
        let counts = client.notes(tag).await.expect("notes");
        if done(counts) || Instant::now() > until {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
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
    if !is_root() {
        skip("not running as root: cannot start a client as another uid");
    }
    if let Err(why) = exe_for_others() {
        skip(&format!(
            "uid {NOBODY} cannot execute the test binary: {why}"
        ));
    }
    let dir = gproc_dir();
    if let Err(why) = path_searchable_by_others(dir.parent().unwrap_or(&dir)) {
        skip(&format!("uid {NOBODY} cannot reach GPROC_DIR: {why}"));
    }
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
        let counts = notes_until(&client, 1, |(_, f)| f == 1).await;
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
        let counts = notes_until(&shapes, 7, |(_, f)| f == 1).await;
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
