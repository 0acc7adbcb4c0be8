//! Typed calls with `#[gproc::service]` between real processes: results and typed errors,
//! concurrency, deadlines, cancellation, panicking handlers, version skew, transport
//! errors, several services beside raw messaging, introspection, `wait_served`, and
//! in-process stubs.
//!
//! Each test runs in a process of its own with a `GPROC_DIR` of its own (see
//! `tests/support/mod.rs`). Servers are this binary re-executed in the role `server`,
//! started by the harness ([`support::spawn_peer`]) or by a [`gproc::Manager`]. Tests wait on
//! events: `wait_served`, replies, messages, a peer's lines, a process's exit. Where the
//! event happens inside another process (a handler dropped there), a test polls that
//! server's `stats` method with short pauses, bounded by a few seconds.
//!
//! Run one test with `cargo test --test rpc -- deadline::stops_handler`.

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gproc::{Error, Manager, Process, RpcError};
use support::*;

/// The most a call that must be answered "at once" may take. A hang guard, not a
/// benchmark: the default deadline is 10 s, so an unanswered call would take far longer.
const FAST: Duration = Duration::from_secs(2);
/// A generous bound for an operation that should complete.
const LONG: Duration = Duration::from_secs(20);
/// The bound on a whole test body (the harness kills a test after 90 s).
const TEST_LIMIT: Duration = Duration::from_secs(75);
/// How long to poll a server's `stats` for an event in its process.
const STATS_WAIT: Duration = Duration::from_secs(5);

const TESTS: &[(&str, fn())] = &[
    ("calls::basic", calls_basic),
    ("calls::concurrent_200", calls_concurrent_200),
    ("deadline::stops_handler", deadline_stops_handler),
    ("deadline::duration_max", deadline_duration_max),
    (
        "cancel::dropped_call_stops_handler",
        cancel_dropped_call_stops_handler,
    ),
    (
        "panic::handler_panic_is_reported",
        panic_handler_panic_is_reported,
    ),
    (
        "version::skew_is_schema_mismatch",
        version_skew_is_schema_mismatch,
    ),
    ("errors::service_not_served", errors_service_not_served),
    ("errors::dead_pid", errors_dead_pid),
    ("errors::not_listening", errors_not_listening),
    ("errors::message_too_large", errors_message_too_large),
    (
        "errors::server_killed_mid_call",
        errors_server_killed_mid_call,
    ),
    ("serve::twice_in_one_process", serve_twice_in_one_process),
    ("serve::several_beside_raw", serve_several_beside_raw),
    ("introspect::lists_services", introspect_lists_services),
    ("introspect::serves_nothing", introspect_serves_nothing),
    (
        "wait_served::child_just_started",
        wait_served_child_just_started,
    ),
    (
        "wait_served::waits_until_serve",
        wait_served_waits_until_serve,
    ),
    ("wait_served::times_out", wait_served_times_out),
    (
        "wait_served::timeout_logs_what_it_saw",
        wait_served_timeout_logs_what_it_saw,
    ),
    (
        "panic::message_in_the_servers_log",
        panic_message_in_the_servers_log,
    ),
    ("in_process::no_socket", in_process_no_socket),
];

const ROLES: &[(&str, fn())] = &[
    (ROLE_SERVER, role_server),
    (ROLE_LISTENER, role_listener),
    (ROLE_IDLE, role_idle),
];

fn main() {
    support::run_tests(TESTS, ROLES);
}

// =======================================================================================
// Services
// =======================================================================================

/// What `stats` reports for one tag: `(started, completed, stopped)`, where "stopped"
/// counts handlers dropped before they finished.
type Stats = (u32, u32, u32);

#[gproc::service]
pub trait Calculator {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn div(&self, a: f64, b: f64) -> Result<f64, String>;
    /// Records `line`; `logged` returns the lines recorded.
    async fn log(&self, line: String);
    async fn logged(&self) -> Vec<String>;
    async fn echo(&self, data: Vec<u8>) -> Vec<u8>;
    /// `len` bytes: a small request with a large reply.
    async fn fill(&self, len: u64) -> Vec<u8>;
    /// Sleeps `ms`, counting in the stats of `tag` that it started, completed, or was
    /// dropped before completing.
    async fn sleep(&self, tag: u64, ms: u64) -> u64;
    async fn stats(&self, tag: u64) -> Stats;
    /// Answers `2 * i + 1` only once `n` calls of `gather` have arrived: `n` concurrent
    /// calls complete only if their handlers run concurrently.
    async fn gather(&self, i: u64, n: u64) -> u64;
    /// Panics unless `n` is 0.
    async fn boom(&self, n: u32) -> u32;
}

#[gproc::service]
pub trait Greeter {
    async fn greet(&self, name: String) -> String;
}

/// Two versions of one service, `Versioned`: same name, one return type differs.
mod v1 {
    #[gproc::service]
    pub trait Versioned {
        async fn get(&self) -> u32;
        async fn name(&self) -> String;
        async fn scale(&self, x: u32) -> u32;
    }
}

mod v2 {
    #[gproc::service]
    pub trait Versioned {
        async fn get(&self) -> u64;
        async fn name(&self) -> String;
        async fn scale(&self, x: u32) -> u32;
    }
}

/// `v1` written again with doc comments and other argument names, which the fingerprint
/// ignores: it is the same version.
mod v1_redoc {
    #[gproc::service]
    /// The first version, documented.
    pub trait Versioned {
        /// The value.
        async fn get(&self) -> u32;
        /// Who answers.
        async fn name(&self) -> String;
        /// Multiplies by ten.
        async fn scale(&self, factor: u32) -> u32;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct Calc {
    state: Arc<CalcState>,
}

struct CalcState {
    log: Mutex<Vec<String>>,
    sleeps: Mutex<HashMap<u64, Stats>>,
    gathered: tokio::sync::watch::Sender<u64>,
}

impl Default for CalcState {
    fn default() -> Self {
        CalcState {
            log: Mutex::default(),
            sleeps: Mutex::default(),
            gathered: tokio::sync::watch::channel(0).0,
        }
    }
}

impl CalcState {
    fn bump(&self, tag: u64, f: impl FnOnce(&mut Stats)) {
        f(lock(&self.sleeps).entry(tag).or_default());
    }
}

/// Counts a `sleep` handler as stopped when it is dropped before it finished.
struct Unfinished {
    state: Arc<CalcState>,
    tag: u64,
    finished: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.finished {
            self.state.bump(self.tag, |s| s.2 += 1);
        }
    }
}

impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn div(&self, a: f64, b: f64) -> Result<f64, String> {
        if b == 0.0 {
            Err("division by zero".to_owned())
        } else {
            Ok(a / b)
        }
    }

    async fn log(&self, line: String) {
        lock(&self.state.log).push(line);
    }

    async fn logged(&self) -> Vec<String> {
        lock(&self.state.log).clone()
    }

    async fn echo(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }

    async fn fill(&self, len: u64) -> Vec<u8> {
        pseudo_random(usize::try_from(len).expect("a length that fits"))
    }

    async fn sleep(&self, tag: u64, ms: u64) -> u64 {
        self.state.bump(tag, |s| s.0 += 1);
        let mut guard = Unfinished {
            state: self.state.clone(),
            tag,
            finished: false,
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        guard.finished = true;
        self.state.bump(tag, |s| s.1 += 1);
        ms
    }

    async fn stats(&self, tag: u64) -> Stats {
        lock(&self.state.sleeps)
            .get(&tag)
            .copied()
            .unwrap_or_default()
    }

    async fn gather(&self, i: u64, n: u64) -> u64 {
        self.state.gathered.send_modify(|count| *count += 1);
        let mut arrived = self.state.gathered.subscribe();
        let all_there = arrived.wait_for(|&count| count >= n).await.is_ok();
        assert!(all_there, "the gather counter is never closed");
        2 * i + 1
    }

    async fn boom(&self, n: u32) -> u32 {
        if n != 0 {
            panic!("boom {n} (a panic the test asked for)");
        }
        n
    }
}

struct Greet;

impl Greeter for Greet {
    async fn greet(&self, name: String) -> String {
        format!("hello {name}")
    }
}

struct V1;

impl v1::Versioned for V1 {
    async fn get(&self) -> u32 {
        1
    }
    async fn name(&self) -> String {
        "v1".to_owned()
    }
    async fn scale(&self, x: u32) -> u32 {
        x * 10
    }
}

struct V1Redoc;

impl v1_redoc::Versioned for V1Redoc {
    async fn get(&self) -> u32 {
        1
    }
    async fn name(&self) -> String {
        "v1 redoc".to_owned()
    }
    async fn scale(&self, factor: u32) -> u32 {
        factor * 10
    }
}

struct V2;

impl v2::Versioned for V2 {
    async fn get(&self) -> u64 {
        2
    }
    async fn name(&self) -> String {
        "v2".to_owned()
    }
    async fn scale(&self, x: u32) -> u32 {
        x * 20
    }
}

/// Every client future is `Send` (checked at compile time; never called).
#[allow(dead_code)]
fn client_futures_are_send(
    calc: &CalculatorClient,
    local: &CalculatorClient<CalculatorServer<Calc>>,
) {
    fn send<T: Send>(_: T) {}
    send(calc.add(1, 2));
    send(calc.log(String::new()));
    send(calc.wait_served(LONG));
    send(local.div(1.0, 2.0));
    send(gproc::introspect(1));
}

// =======================================================================================
// Roles
// =======================================================================================

/// Listens, says "ready", then serves what its arguments name:
/// - `calc`: [`Calculator`]; `v1`: [`v1::Versioned`];
/// - `raw`: receives raw messages in the groups `""` and `"raw"`, prints a line for each
///   (see [`raw_line`]) and echoes it back to its sender, in the same group, as `echo:<data>`;
/// - `gate`: serves only after a raw message in the group `"go"`;
/// - `rt=current`: on a current-thread runtime (else a multi-thread one);
/// - `log`: gproc's warnings and errors as `log: …` lines on stdout.
///
/// Started by the harness it exits when the test closes its stdin; started by a `Manager`
/// (its stdin is the test's, `/dev/null`) when the manager kills it.
const ROLE_SERVER: &str = "server";
/// Listens, says "ready", serves nothing.
const ROLE_LISTENER: &str = "listener";
/// Never touches gproc, so has no endpoint; waits for its stdin to close.
const ROLE_IDLE: &str = "idle";

fn role_server() {
    let args = role_args();
    let has = |key: &str| args.iter().any(|(k, _)| k == key);
    if !gproc::is_child() {
        exit_when_stdin_closes();
    }
    let rt = if args.iter().any(|(k, v)| k == "rt" && v == "current") {
        current_thread_runtime()
    } else {
        runtime()
    };
    let (calc, v1, raw, gate) = (has("calc"), has("v1"), has("raw"), has("gate"));
    if has("log") {
        log_to_stdout();
    }
    rt.block_on(async move {
        gproc::listen().await.expect("server: listen");
        ready();
        if gate {
            gproc::receive_group("go")
                .await
                .expect("server: wait for go");
        }
        let mut tasks = Vec::new();
        if calc {
            tasks.push(tokio::spawn(async {
                CalculatorServer::new(Calc::default())
                    .serve()
                    .await
                    .expect("server: serve Calculator");
            }));
        }
        if v1 {
            tasks.push(tokio::spawn(async {
                v1::VersionedServer::new(V1)
                    .serve()
                    .await
                    .expect("server: serve v1::Versioned");
            }));
        }
        if raw {
            for group in ["", "raw"] {
                tasks.push(tokio::spawn(raw_echo(group)));
            }
        }
        for task in tasks {
            task.await.expect("server task");
        }
        std::future::pending::<()>().await;
    });
}

/// The line the `raw` server prints for a raw message.
fn raw_line(group: &str, from: u32, data: &[u8]) -> String {
    format!(
        "raw group={group:?} from={from} data={:?}",
        String::from_utf8_lossy(data)
    )
}

async fn raw_echo(group: &'static str) {
    loop {
        let m = gproc::receive_group(group)
            .await
            .expect("server: raw receive");
        let mut line = raw_line(&m.group, m.sender_pid, &m.data);
        if m.group != group {
            line = format!("wrong group: {line}");
        }
        say(&line);
        let mut echo = b"echo:".to_vec();
        echo.extend_from_slice(&m.data);
        gproc::send_group(m.sender_pid, group, echo)
            .await
            .expect("server: raw echo");
    }
}

fn role_listener() {
    exit_when_stdin_closes();
    current_thread_runtime().block_on(async {
        gproc::listen().await.expect("listener: listen");
        ready();
        std::future::pending::<()>().await;
    });
}

fn role_idle() {
    exit_when_stdin_closes();
    loop {
        std::thread::park();
    }
}

// =======================================================================================
// Helpers
// =======================================================================================

/// Runs a test body on a multi-thread runtime, bounded by [`TEST_LIMIT`].
fn run<F: Future<Output = ()>>(name: &str, body: F) {
    block_on(within(TEST_LIMIT, name, body));
}

/// Starts a harness peer in the `server` role and waits until it listens.
fn server(args: &[&str]) -> Peer {
    let peer = spawn_peer(ROLE_SERVER, args);
    peer.wait_until_listening(LONG);
    peer
}

/// Starts a harness peer in the `listener` role and waits until it listens.
fn listener() -> Peer {
    let peer = spawn_peer(ROLE_LISTENER, &[]);
    peer.wait_until_listening(LONG);
    peer
}

fn exe() -> PathBuf {
    std::env::current_exe().expect("current_exe")
}

/// Starts a child of `manager` in the `server` role with `args`, not waiting for anything.
async fn start_child(manager: &Manager, args: &[&str]) -> (Process, u32) {
    let mut child = manager.new_process(exe(), args, [(ENV_ROLE, ROLE_SERVER)]);
    child.die_with_parent(true);
    let pid = within(LONG, "start a server child", child.start())
        .await
        .expect("start a server child");
    (child, pid)
}

/// A [`Calculator`] client of `pid`, once `pid` serves it.
async fn calc_client(pid: u32) -> CalculatorClient {
    let calc = CalculatorClient::new(pid);
    within(
        LONG,
        "wait until Calculator is served",
        calc.wait_served(LONG),
    )
    .await
    .unwrap_or_else(|e| panic!("{pid} does not serve Calculator: {e:?}"));
    calc
}

/// A [`v1::Versioned`] client of `pid`, once `pid` serves it.
async fn v1_client(pid: u32) -> v1::VersionedClient {
    let client = v1::VersionedClient::new(pid);
    within(
        LONG,
        "wait until v1::Versioned is served",
        client.wait_served(LONG),
    )
    .await
    .unwrap_or_else(|e| panic!("{pid} does not serve v1::Versioned: {e:?}"));
    client
}

/// Awaits a call that must succeed.
async fn ok<T>(what: &str, call: impl Future<Output = Result<T, RpcError>>) -> T {
    match within(LONG, what, call).await {
        Ok(value) => value,
        Err(e) => panic!("{what}: {e:?} ({e})"),
    }
}

/// Awaits a call that must fail, within [`FAST`]; returns its error.
async fn fails_fast<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, RpcError>>,
) -> RpcError {
    let (result, took) = timed(FAST, what, call).await;
    match result {
        Ok(value) => panic!("{what}: succeeded with {value:?}"),
        Err(e) => {
            assert!(took < FAST, "{what}: took {took:?}");
            e
        }
    }
}

/// Awaits `fut` (bounded by `limit`) and measures how long it took.
async fn timed<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = within(limit, what, fut).await;
    (out, start.elapsed())
}

/// Polls `calc.stats(tag)` until `done` holds; fails the test after [`STATS_WAIT`].
async fn wait_stats(
    calc: &CalculatorClient,
    tag: u64,
    what: &str,
    done: impl Fn(Stats) -> bool,
) -> Stats {
    let deadline = Instant::now() + STATS_WAIT;
    loop {
        let stats = ok("stats", calc.stats(tag)).await;
        if done(stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: (started, completed, stopped) of tag {tag} are still {stats:?} after {STATS_WAIT:?}"
        );
        // The event is in another process: poll, briefly.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[track_caller]
fn assert_not_served<T: std::fmt::Debug>(result: Result<T, RpcError>, name: &str, what: &str) {
    assert!(
        matches!(&result, Err(RpcError::ServiceNotServed { service }) if service == name),
        "{what}: expected ServiceNotServed {{ service: {name:?} }}, got {result:?}"
    );
}

#[track_caller]
fn assert_schema_mismatch<T: std::fmt::Debug>(result: Result<T, RpcError>, what: &str) {
    assert!(
        matches!(&result, Err(RpcError::SchemaMismatch { service }) if service == "Versioned"),
        "{what}: expected SchemaMismatch {{ service: \"Versioned\" }}, got {result:?}"
    );
}

/// Bytes that are not periodic, so that a dropped or repeated chunk shows.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// =======================================================================================
// 1. Basic calls
// =======================================================================================

fn calls_basic() {
    let peer = server(&["calc"]);
    run("calls::basic", async {
        let calc = calc_client(peer.pid()).await;
        assert_eq!(ok("add", calc.add(2, 40)).await, 42);
        assert_eq!(ok("add negatives", calc.add(-7, 3)).await, -4);
        assert_eq!(
            ok("add near i64::MAX", calc.add(i64::MAX - 1, 1)).await,
            i64::MAX
        );

        assert_eq!(ok("div", calc.div(1.0, 4.0)).await, Ok(0.25));
        assert_eq!(
            ok("div by zero", calc.div(1.0, 0.0)).await,
            Err("division by zero".to_owned()),
            "the handler's own Err comes back typed, inside Ok"
        );

        ok("log", calc.log("first".to_owned())).await;
        let () = ok("log", calc.log("second".to_owned())).await;
        assert_eq!(
            ok("logged", calc.logged()).await,
            ["first", "second"],
            "the unit calls ran on the server, in order"
        );

        let data = pseudo_random(1 << 20);
        let back = ok("echo 1 MiB", calc.echo(data.clone())).await;
        assert_eq!(back.len(), data.len(), "length of the 1 MiB echo");
        if let Some(at) = back.iter().zip(&data).position(|(a, b)| a != b) {
            panic!("the 1 MiB echo differs first at byte {at}");
        }
        assert_eq!(
            ok("echo nothing", calc.echo(Vec::new())).await,
            Vec::<u8>::new()
        );
    });
}

// =======================================================================================
// 2. Concurrency
// =======================================================================================

fn calls_concurrent_200() {
    // A current-thread server: its handlers run concurrently as tasks all the same.
    let peer = server(&["calc", "rt=current"]);
    run("calls::concurrent_200", async {
        let calc = calc_client(peer.pid()).await;

        let adds: Vec<_> = (0..200i64)
            .map(|i| {
                let calc = calc.clone();
                tokio::spawn(async move { calc.add(i, 1_000_000 * i).await })
            })
            .collect();
        for (i, task) in (0i64..).zip(adds) {
            let sum = within(LONG, "a concurrent add", task)
                .await
                .expect("join a concurrent add")
                .unwrap_or_else(|e| panic!("add #{i}: {e:?}"));
            assert_eq!(sum, 1_000_001 * i, "add #{i}");
        }

        // Each gather answers only once all 200 are in the server at the same time.
        let gathers: Vec<_> = (0..200u64)
            .map(|i| {
                let calc = calc.clone();
                tokio::spawn(async move { calc.gather(i, 200).await })
            })
            .collect();
        for (i, task) in (0u64..).zip(gathers) {
            let answer = within(LONG, "a concurrent gather", task)
                .await
                .expect("join a concurrent gather")
                .unwrap_or_else(|e| {
                    panic!("gather #{i}: {e:?} (are handlers run one after the other?)")
                });
            assert_eq!(answer, 2 * i + 1, "gather #{i}");
        }
    });
}

// =======================================================================================
// 3. Deadlines
// =======================================================================================

fn deadline_stops_handler() {
    let peer = server(&["calc"]);
    run("deadline::stops_handler", async {
        let calc = calc_client(peer.pid()).await;
        let hasty = calc.clone().with_timeout(Duration::from_millis(50));
        let (result, took) = timed(LONG, "a call past its deadline", hasty.sleep(1, 2000)).await;
        assert!(
            matches!(result, Err(RpcError::DeadlineExceeded)),
            "a 2 s handler with a 50 ms deadline: {result:?}"
        );
        assert!(
            took < Duration::from_millis(1500),
            "the 50 ms deadline failed the call only after {took:?}"
        );

        let stats = wait_stats(&calc, 1, "the handler past its deadline is stopped", |s| {
            s.2 > 0
        })
        .await;
        assert_eq!(stats, (1, 0, 1), "(started, completed, stopped)");

        assert_eq!(
            ok("add after a deadline", calc.add(1, 1)).await,
            2,
            "the server still serves"
        );

        // A deadline longer than the handler lets it finish (the deadline travels intact).
        let roomy = calc.clone().with_timeout(Duration::from_secs(5));
        assert_eq!(
            ok("a call within its deadline", roomy.sleep(2, 300)).await,
            300
        );
        assert_eq!(ok("stats", calc.stats(2)).await, (1, 1, 0));
        assert_eq!(
            ok("stats", calc.stats(1)).await,
            (1, 0, 1),
            "the stopped handler never completed"
        );
    });
}

fn deadline_duration_max() {
    let peer = server(&["calc"]);
    run("deadline::duration_max", async {
        // `Duration::MAX` is how one asks for no practical deadline.
        let calc = calc_client(peer.pid()).await.with_timeout(Duration::MAX);
        // Both spawned, so that a panic in either is reported beside the other's result.
        let call = {
            let calc = calc.clone();
            tokio::spawn(async move { calc.add(1, 2).await })
        };
        let call = within(LONG, "add with Duration::MAX", call)
            .await
            .map_err(|e| e.to_string());
        let waited = {
            let calc = calc.clone();
            tokio::spawn(async move { calc.wait_served(Duration::MAX).await })
        };
        let waited = within(LONG, "wait_served(Duration::MAX)", waited)
            .await
            .map_err(|e| e.to_string());
        assert!(
            matches!(call, Ok(Ok(3))) && matches!(waited, Ok(Ok(()))),
            "add with a Duration::MAX deadline: {call:?}; wait_served(Duration::MAX): {waited:?}"
        );
        assert_eq!(ok("add", calc_client(peer.pid()).await.add(2, 2)).await, 4);
    });
}

// =======================================================================================
// 4. Cancellation
// =======================================================================================

fn cancel_dropped_call_stops_handler() {
    let peer = server(&["calc"]);
    run("cancel::dropped_call_stops_handler", async {
        let calc = calc_client(peer.pid()).await;
        let patient = calc.clone().with_timeout(Duration::from_secs(30));

        // Dropped by select!, once the handler has started.
        tokio::select! {
            result = patient.sleep(10, 20_000) => {
                panic!("a 20 s call returned while it was being cancelled: {result:?}")
            }
            stats = wait_stats(&calc, 10, "the handler starts", |s| s.0 == 1) => {
                assert_eq!(stats, (1, 0, 0));
            }
        }
        let stats = wait_stats(&calc, 10, "the dropped call's handler is stopped", |s| {
            s.2 > 0
        })
        .await;
        assert_eq!(stats, (1, 0, 1), "(started, completed, stopped)");

        // Dropped by aborting the task that awaits it.
        let call = {
            let patient = patient.clone();
            tokio::spawn(async move { patient.sleep(11, 20_000).await })
        };
        wait_stats(&calc, 11, "the handler starts", |s| s.0 == 1).await;
        call.abort();
        let joined = within(LONG, "join the aborted call", call).await;
        assert!(
            joined.as_ref().is_err_and(|e| e.is_cancelled()),
            "aborted call: {joined:?}"
        );
        let stats = wait_stats(&calc, 11, "the aborted call's handler is stopped", |s| {
            s.2 > 0
        })
        .await;
        assert_eq!(stats, (1, 0, 1), "(started, completed, stopped)");

        assert_eq!(ok("add after cancellations", calc.add(2, 3)).await, 5);
    });
}

// =======================================================================================
// 5. Panics
// =======================================================================================

fn panic_handler_panic_is_reported() {
    let peer = server(&["calc"]);
    run("panic::handler_panic_is_reported", async {
        let calc = calc_client(peer.pid()).await;
        assert_eq!(ok("boom(0) does not panic", calc.boom(0)).await, 0);

        let in_flight = {
            let calc = calc.clone();
            tokio::spawn(async move { calc.sleep(20, 300).await })
        };
        wait_stats(&calc, 20, "the slow call starts", |s| s.0 == 1).await;

        let result = within(LONG, "a panicking handler", calc.boom(1)).await;
        assert!(
            matches!(result, Err(RpcError::HandlerPanicked)),
            "a panicking handler: {result:?}"
        );
        assert_eq!(ok("add after a panic", calc.add(3, 4)).await, 7);
        let slow = within(LONG, "the call in flight during the panic", in_flight)
            .await
            .expect("join the call in flight");
        assert_eq!(
            slow.expect("the call in flight when another handler panicked"),
            300
        );

        let again = within(LONG, "a second panicking handler", calc.boom(2)).await;
        assert!(
            matches!(again, Err(RpcError::HandlerPanicked)),
            "a second panicking handler: {again:?}"
        );
        assert_eq!(ok("add after two panics", calc.add(5, 6)).await, 11);
    });
}

// =======================================================================================
// 6. Version skew
// =======================================================================================

fn version_skew_is_schema_mismatch() {
    let peer = server(&["v1"]);
    run("version::skew_is_schema_mismatch", async {
        let pid = peer.pid();
        let current = v1_client(pid).await;
        assert_eq!(ok("v1 get", current.get()).await, 1);
        assert_eq!(ok("v1 name", current.name()).await, "v1");
        assert_eq!(ok("v1 scale", current.scale(3)).await, 30);

        let skewed = v2::VersionedClient::new(pid);
        assert_schema_mismatch(within(LONG, "v2 get", skewed.get()).await, "v2 get");
        assert_schema_mismatch(
            within(LONG, "v2 name", skewed.name()).await,
            "v2 name (same signature as v1's, other service version)",
        );
        assert_schema_mismatch(within(LONG, "v2 scale", skewed.scale(3)).await, "v2 scale");
        let (waited, took) = timed(
            LONG,
            "wait_served with v2",
            skewed.wait_served(Duration::from_secs(10)),
        )
        .await;
        assert_schema_mismatch(waited, "wait_served with v2");
        assert!(took < FAST, "wait_served with v2 took {took:?}");

        // Doc comments and argument names are not part of the version.
        let redoc = v1_redoc::VersionedClient::new(pid);
        ok("wait_served with v1 redocumented", redoc.wait_served(LONG)).await;
        assert_eq!(ok("v1 redoc get", redoc.get()).await, 1);
        assert_eq!(ok("v1 redoc scale", redoc.scale(4)).await, 40);

        ok("wait_served with v1", current.wait_served(LONG)).await;
        assert_eq!(ok("v1 get after skewed calls", current.get()).await, 1);
    });
}

// =======================================================================================
// 7. Transport errors and services not served
// =======================================================================================

fn errors_service_not_served() {
    let nothing = listener();
    let other = server(&["v1"]);
    run("errors::service_not_served", async {
        let calc = CalculatorClient::new(nothing.pid());
        let what = "a process that serves nothing";
        assert_not_served(
            Err::<(), _>(fails_fast(what, calc.add(1, 2)).await),
            "Calculator",
            what,
        );
        assert_not_served(
            Err::<(), _>(fails_fast(what, calc.log("x".to_owned())).await),
            "Calculator",
            what,
        );
        let greeter = GreeterClient::new(nothing.pid());
        assert_not_served(
            Err::<(), _>(fails_fast(what, greeter.greet("x".to_owned())).await),
            "Greeter",
            what,
        );

        v1_client(other.pid()).await;
        let what = "a process that serves another service";
        let calc = CalculatorClient::new(other.pid());
        assert_not_served(
            Err::<(), _>(fails_fast(what, calc.add(1, 2)).await),
            "Calculator",
            what,
        );
        let greeter = GreeterClient::new(other.pid());
        assert_not_served(
            Err::<(), _>(fails_fast(what, greeter.greet("x".to_owned())).await),
            "Greeter",
            what,
        );
        assert_eq!(
            ok(
                "v1 get beside unserved calls",
                v1::VersionedClient::new(other.pid()).get()
            )
            .await,
            1
        );
    });
}

fn errors_dead_pid() {
    // A process that exited without ever listening: no socket file.
    let mut idle = spawn_peer(ROLE_IDLE, &[]);
    let idle_pid = idle.pid();
    idle.kill();
    // A server killed (SIGKILL) after serving: its socket file is left behind.
    let mut killed = server(&["calc"]);
    let killed_pid = killed.pid();
    killed.kill();
    run("errors::dead_pid", async {
        let calc = CalculatorClient::new(idle_pid);
        let e = fails_fast("a call to an exited process", calc.add(1, 2)).await;
        assert!(
            matches!(e, RpcError::Transport(Error::NoSuchProcess(pid)) if pid == idle_pid),
            "a call to an exited process: {e:?}"
        );

        let calc = CalculatorClient::new(killed_pid);
        let e = fails_fast("a call to a killed server", calc.add(1, 2)).await;
        assert!(
            matches!(e, RpcError::Transport(Error::NoSuchProcess(pid)) if pid == killed_pid),
            "a call to a killed server (stale socket file): {e:?}"
        );

        // A server this process was connected to when it was killed.
        let mut served = server(&["calc"]);
        let served_pid = served.pid();
        let calc = calc_client(served_pid).await;
        assert_eq!(ok("add before the kill", calc.add(1, 2)).await, 3);
        served.kill();
        // As with raw sends (see tests/messaging.rs), the first use of the connection that
        // was open when the process died may only learn that the connection is lost.
        let e = fails_fast(
            "a call to a server killed since the last call",
            calc.add(1, 2),
        )
        .await;
        assert!(
            matches!(
                e,
                RpcError::Transport(Error::NoSuchProcess(_) | Error::ConnectionLost)
            ),
            "a call to a server killed (and reaped) since the last call: {e:?}"
        );
        let e = fails_fast("the next call to the killed server", calc.add(1, 2)).await;
        assert!(
            matches!(e, RpcError::Transport(Error::NoSuchProcess(pid)) if pid == served_pid),
            "the next call to the killed server: {e:?}"
        );

        let e = fails_fast(
            "wait_served on an exited process",
            calc.wait_served(Duration::from_secs(10)),
        )
        .await;
        assert!(
            matches!(e, RpcError::Transport(Error::NoSuchProcess(_))),
            "wait_served on an exited process fails at once: {e:?}"
        );
    });
}

fn errors_not_listening() {
    let idle = spawn_peer(ROLE_IDLE, &[]);
    let pid = idle.pid();
    run("errors::not_listening", async {
        let calc = CalculatorClient::new(pid);
        let e = fails_fast("a call to a process without an endpoint", calc.add(1, 2)).await;
        assert!(
            matches!(e, RpcError::Transport(Error::NotListening(p)) if p == pid),
            "a call to a live process without an endpoint: {e:?}"
        );
        let e = fails_fast(
            "introspection of a process without an endpoint",
            gproc::introspect(pid),
        )
        .await;
        assert!(
            matches!(e, RpcError::Transport(Error::NotListening(p)) if p == pid),
            "introspection of a live process without an endpoint: {e:?}"
        );
    });
}

fn errors_message_too_large() {
    const LIMIT: usize = 1 << 20;
    gproc::Config::new()
        .max_message_size(LIMIT)
        .install()
        .expect("install a 1 MiB limit in the test process");
    let peer = server(&["calc"]);
    run("errors::message_too_large", async {
        let calc = calc_client(peer.pid()).await;
        // A request over the limit: refused before anything is written.
        let e = fails_fast("a 2 MiB request", calc.echo(vec![7; 2 * LIMIT])).await;
        assert!(
            matches!(e, RpcError::Transport(Error::MessageTooLarge { limit, .. }) if limit == LIMIT),
            "a request over the caller's limit: {e:?}"
        );
        // A reply over the caller's limit: the server cannot deliver it, and the caller
        // must hear of it at once, not wait out the deadline for an answer that never comes.
        let calc = calc.with_timeout(Duration::from_secs(3));
        let (result, took) = timed(LONG, "a 2 MiB reply", calc.fill(2 * LIMIT as u64)).await;
        let result = result.map(|v| v.len());
        assert!(
            result.is_err() && took < FAST && !matches!(result, Err(RpcError::DeadlineExceeded)),
            "a reply over the caller's limit: {result:?} after {took:?}; expected an error at once \
             (such as Transport(MessageTooLarge)), not the deadline"
        );
        // And it says which limit, as a send would.
        assert!(
            matches!(
                result,
                Err(RpcError::Transport(Error::MessageTooLarge { size, limit }))
                    if limit == LIMIT && size > LIMIT
            ),
            "the reply's error names the caller's limit: {result:?}"
        );
        assert_eq!(ok("add after", calc.add(1, 1)).await, 2);
    });
}

fn errors_server_killed_mid_call() {
    run("errors::server_killed_mid_call", async {
        let manager = Manager::new();
        let (child, pid) = start_child(&manager, &["calc"]).await;
        let calc = calc_client(pid).await;
        let patient = calc.clone().with_timeout(Duration::from_secs(30));
        let call = tokio::spawn(async move { patient.sleep(30, 60_000).await });
        wait_stats(&calc, 30, "the long call starts", |s| s.0 == 1).await;

        let killed_at = Instant::now();
        within(LONG, "kill the server", child.kill())
            .await
            .expect("kill the server");
        let result = within(LONG, "the call whose server died", call)
            .await
            .expect("join the call");
        let took = killed_at.elapsed();
        assert!(
            matches!(result, Err(RpcError::Transport(Error::ConnectionLost))),
            "a call whose server was killed: {result:?}"
        );
        assert!(
            took < Duration::from_secs(5),
            "the call failed {took:?} after its server died (its deadline was 30 s)"
        );
    });
}

// =======================================================================================
// 9, 10. Serving
// =======================================================================================

fn serve_twice_in_one_process() {
    run("serve::twice_in_one_process", async {
        let me = gproc::pid();
        let first = tokio::spawn(CalculatorServer::new(Calc::default()).serve());
        let calc = calc_client(me).await;
        assert_eq!(ok("add, served by this process", calc.add(1, 2)).await, 3);

        let second = within(
            FAST,
            "a second serve() of the same service",
            CalculatorServer::new(Calc::default()).serve(),
        )
        .await;
        assert!(
            matches!(&second, Err(RpcError::AlreadyServed { service }) if service == "Calculator"),
            "a second serve() of Calculator: {second:?}"
        );
        assert!(!first.is_finished(), "the first serve() goes on");
        assert_eq!(ok("add after the second serve()", calc.add(2, 2)).await, 4);

        // Another service in the same process is fine.
        let greeter = tokio::spawn(GreeterServer::new(Greet).serve());
        let greet = GreeterClient::new(me);
        ok("wait until Greeter is served", greet.wait_served(LONG)).await;
        assert_eq!(
            ok("greet", greet.greet("you".to_owned())).await,
            "hello you"
        );

        // Once the first serve() has ended, the service can be served again.
        first.abort();
        let ended = within(LONG, "end the first serve()", first).await;
        assert!(ended.as_ref().is_err_and(|e| e.is_cancelled()), "{ended:?}");
        let third = tokio::spawn(CalculatorServer::new(Calc::default()).serve());
        ok(
            "wait until Calculator is served again",
            calc.wait_served(LONG),
        )
        .await;
        assert_eq!(ok("add, served again", calc.add(3, 4)).await, 7);
        assert!(!third.is_finished(), "the third serve() runs: {third:?}");
        third.abort();
        greeter.abort();
    });
}

fn serve_several_beside_raw() {
    const ROUNDS: usize = 20;
    let peer = server(&["calc", "v1", "raw"]);
    let pid = peer.pid();
    let me = gproc::pid();
    run("serve::several_beside_raw", async {
        let calc = calc_client(pid).await;
        let versioned = v1_client(pid).await;

        let slow = {
            let calc = calc.clone();
            tokio::spawn(async move { calc.sleep(40, 300).await })
        };
        let mut adds = Vec::new();
        let mut scales = Vec::new();
        for i in 0..ROUNDS {
            let n = i as u32;
            let calc = calc.clone();
            adds.push(tokio::spawn(async move { calc.add(n.into(), 1).await }));
            let versioned = versioned.clone();
            scales.push(tokio::spawn(async move { versioned.scale(n).await }));
            ok_send(gproc::send(pid, format!("d{i}"))).await;
            ok_send(gproc::send_group(pid, "raw", format!("r{i}"))).await;
        }
        // Requests the runtime answers itself travel beside the raw messages too.
        assert_not_served(
            within(LONG, "greet", GreeterClient::new(pid).greet("x".to_owned())).await,
            "Greeter",
            "a service the server does not serve",
        );
        assert_schema_mismatch(
            within(LONG, "v2 get", v2::VersionedClient::new(pid).get()).await,
            "another version",
        );
        let services = ok("introspect", gproc::introspect(pid)).await;
        assert_eq!(services.len(), 2, "{services:?}");

        for (i, task) in (0i64..).zip(adds) {
            let sum = within(LONG, "add", task).await.expect("join add");
            assert_eq!(sum.expect("add beside raw traffic"), i + 1);
        }
        for (i, task) in (0u32..).zip(scales) {
            let scaled = within(LONG, "scale", task).await.expect("join scale");
            assert_eq!(scaled.expect("scale beside raw traffic"), i * 10);
        }
        let slept = within(LONG, "the slow call", slow).await.expect("join");
        assert_eq!(slept.expect("the call in flight during raw traffic"), 300);

        // Every call has been answered: whatever RPC traffic could have leaked into a raw
        // queue is in it before these markers.
        ok_send(gproc::send(pid, "end")).await;
        ok_send(gproc::send_group(pid, "raw", "end")).await;

        // This process's own raw queues hold the echoes, and no replies.
        for (group, prefix) in [("", "d"), ("raw", "r")] {
            let expected = (0..ROUNDS)
                .map(|i| format!("echo:{prefix}{i}"))
                .chain(["echo:end".to_owned()]);
            for want in expected {
                let m = within(LONG, "receive an echo", gproc::receive_group(group))
                    .await
                    .expect("receive an echo");
                assert_eq!(
                    (
                        m.group.as_str(),
                        m.sender_pid,
                        String::from_utf8_lossy(&m.data)
                    ),
                    (group, pid, want.as_str().into()),
                    "the next raw message in group {group:?} of the test process"
                );
            }
        }
        ok_send(gproc::send(me, "marker")).await;
        let m = within(LONG, "receive my marker", gproc::receive())
            .await
            .expect("receive my marker");
        assert_eq!(
            (m.sender_pid, &m.data[..]),
            (me, &b"marker"[..]),
            "nothing else arrived in the test's default group"
        );
    });

    // The server's raw receivers saw exactly the raw messages, in order, and no RPC.
    let mut seen: HashMap<&str, Vec<String>> = HashMap::new();
    let done = |seen: &HashMap<&str, Vec<String>>, group: &str| {
        seen.get(group)
            .and_then(|lines| lines.last())
            .is_some_and(|l| *l == raw_line(group, me, b"end"))
    };
    while !(done(&seen, "") && done(&seen, "raw")) {
        let line = peer.line();
        let group = if line.starts_with(&format!("raw group={:?} ", "raw")) {
            "raw"
        } else if line.starts_with(&format!("raw group={:?} ", "")) {
            ""
        } else {
            panic!("the server's raw receivers got something else: {line}");
        };
        seen.entry(group).or_default().push(line);
    }
    for (group, prefix) in [("", "d"), ("raw", "r")] {
        let expected: Vec<String> = (0..ROUNDS)
            .map(|i| raw_line(group, me, format!("{prefix}{i}").as_bytes()))
            .chain([raw_line(group, me, b"end")])
            .collect();
        assert_eq!(
            seen[group], expected,
            "what the server's raw receiver of group {group:?} got"
        );
    }
}

async fn ok_send(send: impl Future<Output = Result<(), Error>>) {
    within(LONG, "a raw send", send)
        .await
        .unwrap_or_else(|e| panic!("a raw send: {e}"));
}

// =======================================================================================
// 11. Introspection
// =======================================================================================

fn introspect_lists_services() {
    let peer = server(&["calc", "v1"]);
    run("introspect::lists_services", async {
        let pid = peer.pid();
        calc_client(pid).await;
        v1_client(pid).await;

        let mut services = ok("introspect", gproc::introspect(pid)).await;
        services.sort_by(|a, b| a.name.cmp(&b.name));
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Calculator", "Versioned"]);

        let calc = &services[0];
        let methods: Vec<&str> = calc.methods.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            methods,
            ["add", "div", "log", "logged", "echo", "fill", "sleep", "stats", "gather", "boom"],
            "Calculator's methods, in order"
        );
        let signature = |name: &str| {
            calc.method(name)
                .map(|m| m.signature.as_str())
                .unwrap_or_else(|| panic!("no method {name}"))
        };
        assert_eq!(
            signature("add"),
            "async fn add(&self, a: i64, b: i64) -> i64"
        );
        assert_eq!(
            signature("div"),
            "async fn div(&self, a: f64, b: f64) -> Result<f64, String>"
        );
        assert_eq!(signature("log"), "async fn log(&self, line: String)");
        assert_eq!(
            signature("echo"),
            "async fn echo(&self, data: Vec<u8>) -> Vec<u8>"
        );

        // Argument names and types as text, the return type, and whether it is a Result.
        let div = calc.method("div").expect("div");
        let args = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|&(n, t)| (n.to_owned(), t.to_owned()))
                .collect()
        };
        assert_eq!(div.args, args(&[("a", "f64"), ("b", "f64")]));
        assert_eq!(div.output, "Result<f64, String>");
        assert!(div.fallible && !div.oneway, "{div:?}");
        let log = calc.method("log").expect("log");
        assert_eq!((log.output.as_str(), log.fallible), ("()", false));
        let add = calc.method("add").expect("add");
        assert_eq!((add.output.as_str(), add.fallible), ("i64", false));

        let versioned = &services[1];
        let described: Vec<(&str, &str)> = versioned
            .methods
            .iter()
            .map(|m| (m.name.as_str(), m.signature.as_str()))
            .collect();
        assert_eq!(
            described,
            [
                ("get", "async fn get(&self) -> u32"),
                ("name", "async fn name(&self) -> String"),
                ("scale", "async fn scale(&self, x: u32) -> u32"),
            ]
        );
        assert_eq!(versioned.methods[2].args, args(&[("x", "u32")]));
        assert_ne!(calc.fingerprint, versioned.fingerprint);

        let again = ok("introspect again", gproc::introspect(pid)).await;
        assert_eq!(again.len(), 2);
        assert!(
            again.iter().all(|s| services.contains(s)),
            "introspection is stable: {again:?} vs {services:?}"
        );

        // The same version built here (docs and argument names differ): same fingerprint.
        let me = gproc::pid();
        assert_eq!(
            ok("introspect this process", gproc::introspect(me)).await,
            [],
            "this process serves nothing yet"
        );
        let local = tokio::spawn(v1_redoc::VersionedServer::new(V1Redoc).serve());
        ok(
            "serve v1 redocumented here",
            v1_redoc::VersionedClient::new(me).wait_served(LONG),
        )
        .await;
        let mine = ok("introspect this process", gproc::introspect(me)).await;
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0].name, "Versioned");
        assert_eq!(
            mine[0].fingerprint, versioned.fingerprint,
            "doc comments and argument names change the fingerprint"
        );
        assert_eq!(
            mine[0].methods[2].signature, "async fn scale(&self, factor: u32) -> u32",
            "the signature text shows this trait's argument name"
        );
        local.abort();
        let _ = within(LONG, "end serving v1 here", local).await;
        assert_eq!(
            ok("introspect this process", gproc::introspect(me)).await,
            [],
            "a service whose serve() ended is no longer listed"
        );

        // Another version: another fingerprint.
        let local = tokio::spawn(v2::VersionedServer::new(V2).serve());
        ok(
            "serve v2 here",
            v2::VersionedClient::new(me).wait_served(LONG),
        )
        .await;
        let mine = ok("introspect this process", gproc::introspect(me)).await;
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_ne!(
            mine[0].fingerprint, versioned.fingerprint,
            "v1 and v2 have the same fingerprint"
        );
        assert_eq!(mine[0].methods[0].signature, "async fn get(&self) -> u64");
        local.abort();
    });
}

fn introspect_serves_nothing() {
    let peer = listener();
    run("introspect::serves_nothing", async {
        let (services, took) = timed(
            LONG,
            "introspect a process that serves nothing",
            gproc::introspect(peer.pid()),
        )
        .await;
        assert_eq!(
            services.expect("introspect a process that serves nothing"),
            []
        );
        assert!(took < FAST, "introspection took {took:?}");
    });
}

// =======================================================================================
// 12. wait_served
// =======================================================================================

fn wait_served_child_just_started() {
    run("wait_served::child_just_started", async {
        let manager = Manager::new();
        let (_child, pid) = start_child(&manager, &["calc"]).await;
        // Right after start: the child has not listened, let alone served, yet.
        let calc = CalculatorClient::new(pid);
        ok("wait_served right after start", calc.wait_served(LONG)).await;
        assert_eq!(ok("add once served", calc.add(20, 22)).await, 42);
    });
}

fn wait_served_waits_until_serve() {
    run("wait_served::waits_until_serve", async {
        let manager = Manager::new();
        let (child, pid) = start_child(&manager, &["calc", "gate"]).await;
        let calc = CalculatorClient::new(pid);
        let waiting = {
            let calc = calc.clone();
            tokio::spawn(async move { calc.wait_served(LONG).await })
        };
        within(LONG, "the child listens", child.ready(LONG))
            .await
            .expect("the child listens");
        // It listens, and waits for "go" before it serves.
        let result = within(LONG, "add before serve()", calc.add(1, 1)).await;
        assert_not_served(result, "Calculator", "a call before the child serves");
        assert!(
            !waiting.is_finished(),
            "wait_served returned before the child serves: {:?}",
            waiting.await
        );

        ok_send(gproc::send_group(pid, "go", "go")).await;
        let waited = within(LONG, "wait_served", waiting)
            .await
            .expect("join wait_served");
        waited.expect("wait_served once the child serves");
        assert_eq!(ok("add once served", calc.add(1, 1)).await, 2);
    });
}

fn wait_served_times_out() {
    let nothing = listener();
    let idle = spawn_peer(ROLE_IDLE, &[]);
    run("wait_served::times_out", async {
        let timeout = Duration::from_millis(300);
        for (what, pid) in [
            ("listens but never serves", nothing.pid()),
            ("never listens", idle.pid()),
        ] {
            let calc = CalculatorClient::new(pid);
            let (result, took) = timed(LONG, what, calc.wait_served(timeout)).await;
            assert!(
                matches!(result, Err(RpcError::DeadlineExceeded)),
                "wait_served on a process that {what}: {result:?}"
            );
            assert!(
                took >= timeout && took < Duration::from_secs(5),
                "wait_served({timeout:?}) on a process that {what} took {took:?}"
            );
        }
    });
}

/// What a user reads when `wait_served` gives up: the error is the contract's unit
/// `DeadlineExceeded`, so the cause it last saw is in gproc's log, one line per wait.
fn wait_served_timeout_logs_what_it_saw() {
    let nothing = listener();
    let idle = spawn_peer(ROLE_IDLE, &[]);
    let log = log_to_buffer();
    run("wait_served::timeout_logs_what_it_saw", async {
        for (what, pid, cause) in [
            (
                "listens but never serves",
                nothing.pid(),
                "last seen: the process does not serve Calculator",
            ),
            (
                "never listens",
                idle.pid(),
                "last seen: transport: process {pid} is alive but has no gproc endpoint",
            ),
        ] {
            log.lock().expect("log").clear();
            let calc = CalculatorClient::new(pid);
            let result = within(LONG, what, calc.wait_served(Duration::from_millis(200))).await;
            assert!(
                matches!(result, Err(RpcError::DeadlineExceeded)),
                "{what}: {result:?}"
            );
            let text = log.lock().expect("log").clone();
            let cause = cause.replace("{pid}", &pid.to_string());
            for words in [
                "WARN",
                &format!("pid={pid}"),
                "wait_served gave up after 200ms",
                &cause,
            ] {
                assert!(
                    text.contains(words),
                    "a process that {what}: {words:?} in {text:?}"
                );
            }
        }
    });
}

/// A panicking handler's message, as the server's operator reads it in gproc's log.
fn panic_message_in_the_servers_log() {
    let peer = server(&["calc", "log"]);
    run("panic::message_in_the_servers_log", async {
        let calc = calc_client(peer.pid()).await;
        let result = within(LONG, "a panicking handler", calc.boom(7)).await;
        assert!(
            matches!(result, Err(RpcError::HandlerPanicked)),
            "{result:?}"
        );
        let line = loop {
            let line = peer.line_within(LONG);
            if line.contains("panicked") {
                break line;
            }
        };
        for words in [
            "log: ERROR",
            "service=\"Calculator\"",
            &format!("peer={}", gproc::pid()),
            "a handler panicked: boom 7 (a panic the test asked for); the caller gets HandlerPanicked",
        ] {
            assert!(line.contains(words), "{words:?} in {line:?}");
        }
    });
}

// =======================================================================================
// 13. In process
// =======================================================================================

fn in_process_no_socket() {
    run("in_process::no_socket", async {
        let local = CalculatorClient::from_stub(CalculatorServer::new(Calc::default()));
        assert_eq!(ok("add", local.add(2, 3)).await, 5);
        assert_eq!(ok("div", local.div(3.0, 2.0)).await, Ok(1.5));
        assert_eq!(
            ok("div by zero", local.div(3.0, 0.0)).await,
            Err("division by zero".to_owned())
        );
        ok("log", local.log("here".to_owned())).await;
        assert_eq!(ok("logged", local.logged()).await, ["here"]);
        let data = pseudo_random(64 * 1024);
        assert_eq!(ok("echo", local.echo(data.clone())).await, data);
        assert_eq!(ok("sleep", local.sleep(1, 10)).await, 10);
        assert_eq!(ok("stats", local.stats(1)).await, (1, 1, 0));
        let boom = within(LONG, "boom", local.boom(1)).await;
        assert!(
            matches!(boom, Err(RpcError::HandlerPanicked)),
            "a panicking in-process handler: {boom:?}"
        );

        let tasks: Vec<_> = (0..20u64)
            .map(|i| {
                let local = local.clone();
                tokio::spawn(async move { local.gather(i, 20).await })
            })
            .collect();
        for (i, task) in (0u64..).zip(tasks) {
            let answer = within(LONG, "gather", task).await.expect("join gather");
            assert_eq!(answer.expect("in-process gather"), 2 * i + 1);
        }

        let versioned = v1::VersionedClient::from_stub(v1::VersionedServer::new(V1));
        assert_eq!(ok("v1 get", versioned.get()).await, 1);
    });
    assert!(
        !socket_path(gproc::pid()).exists(),
        "in-process calls bound an endpoint"
    );
    let entries: Vec<_> = std::fs::read_dir(gproc_dir())
        .expect("read GPROC_DIR")
        .map(|e| e.map(|e| e.file_name()))
        .collect();
    assert!(
        entries.is_empty(),
        "in-process calls created files in GPROC_DIR: {entries:?}"
    );
}
