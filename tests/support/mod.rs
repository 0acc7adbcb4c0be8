//! Shared machinery for the integration tests that start real processes.
//!
//! A gproc endpoint belongs to a process, so every test runs in a process of its own, with a
//! `GPROC_DIR` of its own. A test binary that uses this module declares `harness = false`
//! and its `main` is one line:
//!
//! ```ignore
//! mod support;
//! fn main() {
//!     support::run_tests(TESTS, ROLES);
//! }
//! ```
//!
//! The same binary plays three parts, chosen by environment variables:
//!
//! - no variable: the harness ([`libtest_mimic`]). Each trial re-executes this binary with
//!   `GPROC_TEST_RUN=<name>` and `GPROC_DIR=<fresh temporary directory>`, in a process group
//!   of its own, captures its output, and fails (printing the output) when it fails. A test
//!   that does not finish in [`TEST_TIMEOUT`] is killed with its whole process group. A test
//!   that calls [`skip`] is reported as ignored, with its reason.
//! - `GPROC_TEST_RUN=<name>`: runs that one test body and exits (0, or 101 on panic).
//! - `GPROC_TEST_ROLE=<role>`: runs a peer role (see [`spawn_peer`]) and returns from `main`.
//!
//! Peers talk to the test through their standard streams: a role prints lines on stdout
//! (`"ready"` once it listens, see [`ready`]) that the test reads with [`Peer::line`], and
//! reads lines on stdin that the test writes with [`Peer::write_line`]. Synchronisation is
//! always on such events, never on fixed sleeps.

#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libtest_mimic::{Completion, Failed, Trial};

/// Names the peer role this process plays.
pub const ENV_ROLE: &str = "GPROC_TEST_ROLE";
/// Names the test this process runs.
pub const ENV_RUN: &str = "GPROC_TEST_RUN";
/// The harness's PID, given to each test process (its OS parent).
pub const ENV_HARNESS_PID: &str = "GPROC_TEST_HARNESS_PID";
/// When the harness spawned the test process, in nanoseconds since the Unix epoch.
pub const ENV_SPAWNED_AT: &str = "GPROC_TEST_SPAWNED_AT";
/// The exit code of a test that skipped itself (as automake's).
pub const SKIP_EXIT_CODE: i32 = 77;
/// A test process running longer than this is killed, with every peer it started.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// The default time to wait for a peer's next line.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------

/// Runs this binary as the harness, a single test, or a peer role (see the module docs).
///
/// In role and single-test mode this returns once the role or test returned, so `main`
/// returns normally (a role's clean exit is part of what is tested). In harness mode it
/// exits the process with the harness's status.
pub fn run_tests(tests: &[(&str, fn())], roles: &[(&str, fn())]) {
    if let Some(role) = std::env::var_os(ENV_ROLE) {
        let role = role.to_string_lossy().into_owned();
        let Some((_, body)) = roles.iter().find(|(name, _)| *name == role) else {
            panic!("unknown peer role {role:?}");
        };
        body();
        return;
    }
    if let Some(name) = std::env::var_os(ENV_RUN) {
        let name = name.to_string_lossy().into_owned();
        let Some((_, body)) = tests.iter().find(|(n, _)| *n == name) else {
            panic!("unknown test {name:?}");
        };
        body();
        return;
    }

    let mut names: Vec<&str> = tests.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        panic!("two tests are named {:?}", w[0]);
    }

    let args = libtest_mimic::Arguments::from_args();
    let show_output = args.nocapture || args.show_output;
    let trials = tests
        .iter()
        .map(|&(name, _)| {
            let name = name.to_owned();
            Trial::ignorable_test(name.clone(), move || run_isolated(&name, show_output))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// Runs test `name` in a fresh process with a fresh `GPROC_DIR`.
fn run_isolated(name: &str, show_output: bool) -> Result<Completion, Failed> {
    let dir = tempfile::Builder::new()
        .prefix("gproc-test-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary GPROC_DIR: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let spawned_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut child = Command::new(exe)
        .env(ENV_RUN, name)
        .env(gproc::ENV_DIR, dir.path())
        .env_remove(ENV_ROLE)
        .env_remove(gproc::ENV_PPID)
        .env(ENV_HARNESS_PID, std::process::id().to_string())
        .env(ENV_SPAWNED_AT, spawned_at.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so that a hung test is killed with every peer it started.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the test process: {e}"))?;
    let pgid = child.id();
    let stdout = collect(child.stdout.take().expect("piped stdout"));
    let stderr = collect(child.stderr.take().expect("piped stderr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let (status, timed_out) = match rx.recv_timeout(TEST_TIMEOUT) {
        Ok(status) => (status, false),
        Err(_) => {
            kill_group(pgid);
            (rx.recv().map_err(|e| format!("waiter: {e}"))?, true)
        }
    };
    // Whatever the test left running (it should leave nothing) goes with it, so that
    // reading the pipes to their end cannot hang.
    kill_group(pgid);
    let status = status.map_err(|e| format!("cannot wait for the test process: {e}"))?;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let output = format!(
        "---- {name} stdout ----\n{}\n---- {name} stderr ----\n{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    drop(dir);
    if timed_out {
        return Err(format!("timed out after {TEST_TIMEOUT:?} and was killed\n{output}").into());
    }
    match status.code() {
        Some(0) => {
            if show_output {
                println!("{output}");
            }
            Ok(Completion::Completed)
        }
        Some(SKIP_EXIT_CODE) => {
            let stdout = String::from_utf8_lossy(&stdout);
            let reason = stdout
                .lines()
                .find_map(|l| l.strip_prefix("skipped: "))
                .unwrap_or("skipped")
                .to_owned();
            Ok(Completion::ignored_with(reason))
        }
        _ => Err(format!("test process failed ({status})\n{output}").into()),
    }
}

fn collect(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
}

fn kill_group(pgid: u32) {
    if let Some(pgid) = rustix::process::Pid::from_raw(pgid as i32) {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
}

/// Ends this test as skipped, with `reason` shown by the harness. Call it before starting
/// any peer: it exits at once, without running destructors.
pub fn skip(reason: &str) -> ! {
    println!("skipped: {reason}");
    let _ = std::io::stdout().flush();
    std::process::exit(SKIP_EXIT_CODE)
}

/// The harness's PID (the OS parent of the test process).
pub fn harness_pid() -> u32 {
    std::env::var(ENV_HARNESS_PID)
        .expect("GPROC_TEST_HARNESS_PID is set by the harness")
        .parse()
        .expect("GPROC_TEST_HARNESS_PID is a PID")
}

/// When the harness spawned this test process (taken just before `spawn`).
pub fn spawned_at() -> SystemTime {
    let nanos: u64 = std::env::var(ENV_SPAWNED_AT)
        .expect("GPROC_TEST_SPAWNED_AT is set by the harness")
        .parse()
        .expect("GPROC_TEST_SPAWNED_AT is a number");
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

/// This test's `GPROC_DIR`, as it is in the environment now.
pub fn gproc_dir() -> PathBuf {
    PathBuf::from(std::env::var_os(gproc::ENV_DIR).expect("GPROC_DIR is set"))
}

/// The socket path of `pid`'s endpoint in [`gproc_dir`].
pub fn socket_path(pid: u32) -> PathBuf {
    gproc_dir().join(format!("{pid}.sock"))
}

// ---------------------------------------------------------------------------------------
// Runtimes and time limits
// ---------------------------------------------------------------------------------------

/// A multi-thread tokio runtime with two workers and every driver enabled.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build a multi-thread runtime")
}

/// A current-thread tokio runtime with every driver enabled.
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a current-thread runtime")
}

/// Runs `fut` to completion on a fresh multi-thread runtime.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    runtime().block_on(fut)
}

/// Awaits `fut`, failing the test if it takes longer than `limit` (a hang guard: pick a
/// generous limit, it is not a benchmark).
pub async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: did not finish within {limit:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Peers
// ---------------------------------------------------------------------------------------

/// Builds a peer: this test binary re-executed as `GPROC_TEST_ROLE=<role>`.
///
/// The peer inherits the environment (so `GPROC_DIR`), with `GPROC_PPID` removed unless
/// set with [`PeerBuilder::env`]; its stdin and stdout are pipes to the test, its stderr
/// is the test's (so it shows up in the test's output).
pub struct PeerBuilder {
    cmd: Command,
    role: String,
    /// Holds the copy of this binary a peer of another uid runs from, if one was needed.
    exe_dir: Option<tempfile::TempDir>,
}

impl PeerBuilder {
    /// A peer playing `role`.
    pub fn new(role: &str) -> Self {
        Self::with_exe(role, std::env::current_exe().expect("current_exe"), None)
    }

    /// A peer playing `role` as `uid` (and gid `uid`, no supplementary groups). Needs root.
    /// When this binary is out of other users' reach (a checkout under `/root`), the peer
    /// runs from a copy in a temporary directory they can reach.
    pub fn new_as(role: &str, uid: u32) -> Self {
        let (exe, dir) =
            exe_for_others().unwrap_or_else(|e| panic!("no binary for uid {uid}: {e}"));
        let mut builder = Self::with_exe(role, exe, dir);
        builder.cmd.uid(uid).gid(uid);
        builder
    }

    fn with_exe(role: &str, exe: PathBuf, exe_dir: Option<tempfile::TempDir>) -> Self {
        let mut cmd = Command::new(exe);
        cmd.env(ENV_ROLE, role)
            .env_remove(ENV_RUN)
            .env_remove(gproc::ENV_PPID)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        PeerBuilder {
            cmd,
            role: role.to_owned(),
            exe_dir,
        }
    }

    /// Adds an argument (a role reads them with `std::env::args().skip(1)`).
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Starts the peer.
    pub fn spawn(mut self) -> Peer {
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start peer {:?}: {e}", self.role));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            child,
            stdin,
            lines,
            role: self.role,
            exited: None,
            _exe_dir: self.exe_dir,
        }
    }
}

/// Starts a peer playing `role` with `args` (see [`PeerBuilder`]).
pub fn spawn_peer(role: &str, args: &[&str]) -> Peer {
    PeerBuilder::new(role).args(args).spawn()
}

/// A running peer. Dropping it kills it (SIGKILL) and reaps it.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    role: String,
    exited: Option<ExitStatus>,
    /// Dropped after the peer (fields drop in order, and `Drop` kills the peer first).
    _exe_dir: Option<tempfile::TempDir>,
}

impl Peer {
    /// The peer's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the peer printed on stdout; fails the test after `timeout`, or when
    /// the peer closed its stdout (it exited) first.
    pub fn line_within(&self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "peer {:?} ({}) printed no line within {timeout:?}",
                self.role,
                self.pid()
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                "peer {:?} ({}) closed its stdout (exited?) before printing the expected line",
                self.role,
                self.pid()
            ),
        }
    }

    /// The next line the peer printed, within [`PEER_TIMEOUT`].
    pub fn line(&self) -> String {
        self.line_within(PEER_TIMEOUT)
    }

    /// The next line of the peer that is not a log line (see [`log_to_stdout`]).
    pub fn said_within(&self, within: Duration) -> String {
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = self.line_within(left);
            if !line.starts_with("log: ") {
                return line;
            }
        }
    }

    /// Asserts that the next line the peer prints is `expected`.
    #[track_caller]
    pub fn expect_line(&self, expected: &str) {
        let line = self.line();
        assert_eq!(line, expected, "peer {:?} ({})", self.role, self.pid());
    }

    /// Waits until the peer listens: it prints `"ready"` right after `gproc::listen()`
    /// returned. Then checks that its socket file is there.
    #[track_caller]
    pub fn wait_until_listening(&self, timeout: Duration) {
        let line = self.line_within(timeout);
        assert_eq!(
            line,
            "ready",
            "peer {:?} ({}) did not get ready",
            self.role,
            self.pid()
        );
        let path = socket_path(self.pid());
        assert!(
            path.exists(),
            "peer {} said it listens, but {} does not exist",
            self.pid(),
            path.display()
        );
    }

    /// Writes one line to the peer's stdin.
    pub fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the peer's stdin is open");
        writeln!(stdin, "{line}").expect("write to the peer's stdin");
        stdin.flush().expect("flush the peer's stdin");
    }

    /// Closes the peer's stdin (roles that wait on stdin take that as "exit").
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Kills the peer with SIGKILL and reaps it.
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for a killed peer");
        self.exited = Some(status);
        status
    }

    /// Waits (up to `timeout`, else fails the test) for the peer to exit, and reaps it.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "peer {:?} ({}) did not exit within {timeout:?}",
                    self.role,
                    self.pid()
                );
            }
            // Polling an exit for at most a few milliseconds more than needed; the
            // condition, not the sleep, decides.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The role side
// ---------------------------------------------------------------------------------------

/// Tells the test that this peer listens (see [`Peer::wait_until_listening`]).
pub fn ready() {
    say("ready");
}

/// Prints one line to the test and flushes it.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("write to the test");
    out.flush().expect("flush to the test");
}

/// Reads the next line the test wrote to this peer's stdin; `None` once it closed it.
pub fn read_line() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches('\n').to_owned()),
    }
}

/// Exits this peer once the test closes its stdin (or dies), so that no peer outlives its
/// test. For roles that do not otherwise read stdin.
pub fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().lock().read_to_end(&mut sink);
        std::process::exit(0);
    });
}

/// The role's arguments as `key=value` pairs (a bare word is `word=""`).
pub fn role_args() -> Vec<(String, String)> {
    std::env::args()
        .skip(1)
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (a, String::new()),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Other helpers
// ---------------------------------------------------------------------------------------

/// Whether a process of another uid can execute this test binary: every directory on its
/// path must be searchable, and the file executable, by "others". `Err` says what is not.
pub fn exe_usable_by_others() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let meta = std::fs::metadata(&exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    if meta.permissions().mode() & 0o001 == 0 {
        return Err(format!(
            "{} is not executable by other users",
            exe.display()
        ));
    }
    path_searchable_by_others(exe.parent().unwrap_or(Path::new("/")))
}

/// A path to this test binary that other users can execute: the binary itself when they
/// can reach it, else a copy in a fresh temporary directory (returned, to be kept alive).
pub fn exe_for_others() -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    if exe_usable_by_others().is_ok() {
        return Ok((exe, None));
    }
    let dir = tempfile::Builder::new()
        .prefix("gproc-test-exe-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let copy = dir.path().join(exe.file_name().unwrap_or_default());
    std::fs::copy(&exe, &copy).map_err(|e| format!("copy {}: {e}", exe.display()))?;
    for path in [dir.path(), copy.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    }
    path_searchable_by_others(dir.path())?;
    Ok((copy, Some(dir)))
}

/// Whether every directory from `/` down to `dir` is searchable by "others".
pub fn path_searchable_by_others(dir: &Path) -> Result<(), String> {
    for d in dir.ancestors() {
        let meta = std::fs::metadata(d).map_err(|e| format!("{}: {e}", d.display()))?;
        if meta.permissions().mode() & 0o001 == 0 {
            return Err(format!("{} is not searchable by other users", d.display()));
        }
    }
    Ok(())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

/// Runs blocking `f` on a thread of its own and fails the test if it does not return within
/// `limit` (a hang guard for the blocking API, which has no timeouts of its own).
pub fn blocking_within<T, F>(limit: Duration, what: &str, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(out)) => out,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what}: did not return within {limit:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Processes: signals and states
// ---------------------------------------------------------------------------------------

/// Polls `cond` on a fresh reading of `/proc` until it holds or `limit` passes; returns
/// whether it held and how long that took. The event is something in another process (a
/// descriptor closing, a state changing), which nothing here can wait on: poll, briefly.
pub fn poll_until(limit: Duration, mut cond: impl FnMut() -> bool) -> (bool, Duration) {
    let start = Instant::now();
    loop {
        if cond() {
            return (true, start.elapsed());
        }
        if start.elapsed() >= limit {
            return (false, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn signal(pid: u32, sig: rustix::process::Signal) {
    let target = rustix::process::Pid::from_raw(pid as i32).expect("a PID");
    rustix::process::kill_process(target, sig)
        .unwrap_or_else(|e| panic!("signal {sig:?} to {pid}: {e}"));
}

/// Stops `pid` (SIGSTOP) and waits until it is stopped.
pub fn stop(pid: u32) {
    signal(pid, rustix::process::Signal::STOP);
    let (stopped, _) = poll_until(Duration::from_secs(5), || proc_state(pid) == 'T');
    assert!(stopped, "{pid} did not stop: state {}", proc_state(pid));
}

/// The state letter of `pid` (field 3 of `/proc/<pid>/stat`): `T` once it is stopped.
pub fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/stat: {e}"));
    let rest = &stat[stat.rfind(')').expect("comm ends with ')'") + 1..];
    rest.trim_start().chars().next().expect("a state")
}

/// gproc's log, warnings and up, on stdout as `log: …` lines.
pub fn log_to_stdout() {
    log_to_stdout_at(tracing::Level::WARN);
}

/// gproc's log, `level` and up, on stdout as `log: …` lines.
pub fn log_to_stdout_at(level: tracing::Level) {
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_writer(|| LogLines)
        .init();
}

/// gproc's log, warnings and up, into the returned text (this process's own log, for a
/// test body to read).
pub fn log_to_buffer() -> std::sync::Arc<std::sync::Mutex<String>> {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let writer = LogText(text.clone());
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_writer(move || writer.clone())
        .init();
    text
}

#[derive(Clone)]
struct LogText(std::sync::Arc<std::sync::Mutex<String>>);

impl std::io::Write for LogText {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut text = self.0.lock().unwrap_or_else(|e| e.into_inner());
        text.push_str(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes each log line as `log: <line>` on stdout, whole.
struct LogLines;

impl std::io::Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        for line in text.lines() {
            say(&format!("log: {}", line.trim()));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The resident memory of process `pid` (`std::process::id()` for this one), in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// A pipe: (read end, write end), close-on-exec.
pub fn pipe() -> (std::fs::File, std::os::fd::OwnedFd) {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
    (std::fs::File::from(read), write)
}

/// The uid of the other user some tests run a peer as.
pub const NOBODY: u32 = 65534;

/// Skips the test unless a peer can run as [`NOBODY`] and reach this test's `GPROC_DIR`.
pub fn require_other_uid() {
    if !is_root() {
        skip("not running as root: cannot start a peer as another uid");
    }
    if let Err(why) = exe_for_others() {
        skip(&format!(
            "uid {NOBODY} cannot execute the test binary or a copy of it: {why}"
        ));
    }
    let dir = gproc_dir();
    if let Err(why) = path_searchable_by_others(dir.parent().unwrap_or(&dir)) {
        skip(&format!("uid {NOBODY} cannot reach GPROC_DIR: {why}"));
    }
}
