//! The process manager against real processes: start, ready notices, messages, signals,
//! the reaper, the registry, drop, `die_with_parent` and `parent_exited`.
//!
//! Each test runs in a process of its own (see `support`). Its children are this binary
//! re-executed through `Manager::new_process` in a role chosen by `GPROC_TEST_ROLE`; they
//! report back with gproc messages to `ppid()`. Tests wait on events only: a message, a
//! child's exit (`Process::wait`, or a pidfd for processes the test did not start), never
//! on fixed sleeps.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use gproc::{Error, Manager, Msg, Process, Signal};
use rustix::process::{Pid, WaitOptions, WaitStatus};
use tokio::io::unix::AsyncFd;

/// `(name, body)` for each test function named.
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), $name as fn())),*]
    };
}

const TESTS: &[(&str, fn())] = tests![
    start_returns_pid_and_child_knows_parent,
    start_twice_is_not_started,
    unstarted_process_is_not_started,
    start_of_missing_program_names_it,
    ready_resolves_once_child_listens,
    ready_times_out_when_child_never_listens,
    ready_reports_child_that_exits_first,
    send_delivers_to_child_in_order,
    send_to_exited_child_is_no_such_process,
    send_all_reports_every_child,
    signal_term_terminates_child,
    kill_then_wait_is_sigkill,
    wait_returns_exit_code_to_every_caller,
    signal_kill_and_wait_all_report_every_child,
    reaper_leaves_no_zombie,
    reaper_removes_socket_of_killed_child,
    registry_lists_gets_and_removes,
    drop_kills_children_but_not_detached,
    die_with_parent_kills_grandchild,
    grandchild_survives_without_die_with_parent,
    parent_exited_resolves_when_parent_dies,
    seed_child_sends_time_to_parent,
];

const ROLES: &[(&str, fn())] = &[
    (ROLE_REPORT, role_report),
    (ROLE_ECHO, role_echo),
    (ROLE_IDLE, role_idle),
    (ROLE_EXIT, role_exit),
    (ROLE_MIDDLE, role_middle),
    (ROLE_ORPHAN, role_orphan),
    (ROLE_SEED, role_seed),
];

fn main() {
    support::run_tests(TESTS, ROLES);
}

/// A generous bound on anything a test waits for; reached only when something is broken.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// The bound on a whole test body.
const TEST_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Roles: what a child started by the manager does
// ---------------------------------------------------------------------------------------

/// Sends its identity (`key=value` lines) to `ppid()`, then exits 0.
const ROLE_REPORT: &str = "report";
/// Listens, then answers every message `m` with `echo:m` to its sender; `exit` makes it exit 0.
const ROLE_ECHO: &str = "echo";
/// Never touches gproc (so never listens); waits to be killed.
const ROLE_IDLE: &str = "idle";
/// Exits at once with the code in `GPROC_TEST_EXIT_CODE`, without touching gproc.
const ROLE_EXIT: &str = "exit";
/// Starts a grandchild in the role `GPROC_TEST_GRANDCHILD` (with `die_with_parent` if
/// `GPROC_TEST_DIE_WITH_PARENT=1`), waits until it is ready, sends its PID to `ppid()`,
/// then waits to be killed.
const ROLE_MIDDLE: &str = "middle";
/// Listens, awaits `gproc::parent_exited()`, writes `GPROC_TEST_MARKER`, exits with
/// [`ORPHAN_EXIT_CODE`].
const ROLE_ORPHAN: &str = "orphan";
/// The seed example's child: sends the time to `ppid()` on every tick, forever.
const ROLE_SEED: &str = "seed";

const ENV_OWNER: &str = "GPROC_TEST_OWNER";
const ENV_EXIT_CODE: &str = "GPROC_TEST_EXIT_CODE";
const ENV_GRANDCHILD: &str = "GPROC_TEST_GRANDCHILD";
const ENV_DIE_WITH_PARENT: &str = "GPROC_TEST_DIE_WITH_PARENT";
const ENV_MARKER: &str = "GPROC_TEST_MARKER";
const ORPHAN_EXIT_CODE: i32 = 42;
const MARKER_TEXT: &str = "parent exited";

/// Runs a role's body on a current-thread runtime and exits with its code. Every role also
/// ends when the test process (`GPROC_TEST_OWNER`) exits, so that none outlives its test
/// even when the test fails half-way.
fn run_role<F: std::future::Future<Output = i32>>(body: F) {
    let code = support::current_thread_runtime().block_on(async {
        tokio::select! {
            code = body => code,
            () = owner_exited() => 0,
        }
    });
    // `exit` runs the atexit handlers, so a role that listened removes its socket file.
    std::process::exit(code);
}

async fn owner_exited() {
    let owner: u32 = std::env::var(ENV_OWNER)
        .expect("GPROC_TEST_OWNER is set by the test")
        .parse()
        .expect("GPROC_TEST_OWNER is a PID");
    // `None`: it is already gone.
    if let Some(watch) = ExitWatch::open(owner) {
        watch.exited().await;
    }
}

fn role_report() {
    run_role(async {
        let report = [
            format!("pid={}", gproc::pid()),
            format!("ppid={}", gproc::ppid()),
            format!("is_child={}", gproc::is_child()),
            format!("GPROC_PPID={}", env_or_empty(gproc::ENV_PPID)),
            format!("GPROC_DIR={}", env_or_empty(gproc::ENV_DIR)),
        ]
        .join("\n");
        gproc::send(gproc::ppid(), report)
            .await
            .expect("report to the parent");
        0
    });
}

fn role_echo() {
    run_role(async {
        gproc::listen().await.expect("listen");
        loop {
            let msg = gproc::receive().await.expect("receive");
            if &msg.data[..] == b"exit" {
                return 0;
            }
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&msg.data);
            gproc::send(msg.sender_pid, reply)
                .await
                .expect("echo to the sender");
        }
    });
}

fn role_idle() {
    run_role(std::future::pending());
}

fn role_exit() {
    let code = std::env::var(ENV_EXIT_CODE)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    std::process::exit(code);
}

fn role_middle() {
    run_role(async {
        let role = std::env::var(ENV_GRANDCHILD).expect("GPROC_TEST_GRANDCHILD is set");
        let die = std::env::var(ENV_DIE_WITH_PARENT).as_deref() == Ok("1");
        let manager = Manager::new();
        let mut grandchild = manager.new_process(exe(), NO_ARGS, [(support::ENV_ROLE, role)]);
        grandchild.die_with_parent(die);
        let pid = grandchild.start().await.expect("start the grandchild");
        grandchild
            .ready(EVENT_TIMEOUT)
            .await
            .expect("the grandchild gets ready");
        gproc::send(gproc::ppid(), pid.to_string())
            .await
            .expect("report the grandchild's PID");
        std::future::pending::<()>().await;
        0
    });
}

fn role_orphan() {
    run_role(async {
        gproc::listen().await.expect("listen");
        gproc::parent_exited().await;
        let marker = std::env::var_os(ENV_MARKER).expect("GPROC_TEST_MARKER is set");
        std::fs::write(marker, MARKER_TEXT).expect("write the marker");
        ORPHAN_EXIT_CODE
    });
}

fn role_seed() {
    run_role(async {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        loop {
            tick.tick().await;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970");
            let line = format!(
                "{}.{:03} (unix time, from child {})",
                now.as_secs(),
                now.subsec_millis(),
                gproc::pid()
            );
            gproc::send(gproc::ppid(), line)
                .await
                .expect("send the time to the parent");
        }
    });
}

fn env_or_empty(key: &str) -> String {
    std::env::var(key).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Helpers for the tests
// ---------------------------------------------------------------------------------------

const NO_ARGS: [&str; 0] = [];

/// Runs a test body on a multi-thread runtime, bounded by [`TEST_LIMIT`].
fn run<F: std::future::Future<Output = ()>>(name: &str, body: F) {
    support::block_on(support::within(TEST_LIMIT, name, body));
}

fn exe() -> PathBuf {
    std::env::current_exe().expect("current_exe")
}

/// A child of `manager` playing `role`, with `envs` added; not started.
fn child(manager: &Manager, role: &str, envs: &[(&str, &str)]) -> Process {
    let owner = gproc::pid().to_string();
    let mut all: Vec<(String, String)> = vec![
        (support::ENV_ROLE.into(), role.into()),
        (ENV_OWNER.into(), owner),
    ];
    all.extend(envs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    manager.new_process(exe(), NO_ARGS, all)
}

/// Starts a child playing `role`, checking that `start` and `pid` agree.
async fn start(manager: &Manager, role: &str, envs: &[(&str, &str)]) -> (Process, u32) {
    let mut process = child(manager, role, envs);
    let pid = process.start().await.expect("start a child");
    assert_eq!(process.pid(), Some(pid), "pid() after start");
    (process, pid)
}

/// Starts an echo child and waits until it listens.
async fn start_echo(manager: &Manager) -> (Process, u32) {
    let (process, pid) = start(manager, ROLE_ECHO, &[]).await;
    process
        .ready(EVENT_TIMEOUT)
        .await
        .expect("the echo child gets ready");
    (process, pid)
}

/// The next message to this process's default group.
async fn receive() -> Msg {
    support::within(EVENT_TIMEOUT, "receive a message", gproc::receive())
        .await
        .expect("receive")
}

/// The next message, which must come from `pid`.
async fn receive_from(pid: u32) -> Msg {
    let msg = receive().await;
    assert_eq!(msg.sender_pid, pid, "sender of {:?}", msg.data);
    msg
}

/// Sends a fresh token to `pid` (an echo role) and checks the echo: `pid` is alive and
/// running its code now.
async fn round_trip(pid: u32) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let token = format!("token-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    gproc::send(pid, token.clone())
        .await
        .unwrap_or_else(|e| panic!("send to {pid}: {e}"));
    let msg = receive_from(pid).await;
    assert_eq!(msg.data, format!("echo:{token}").as_bytes());
}

fn signal_of(status: std::process::ExitStatus) -> Option<i32> {
    status.signal()
}

/// A pidfd of a process, readable once it has exited. Works for any process of this uid,
/// not only children, and across PID reuse.
struct ExitWatch(AsyncFd<OwnedFd>);

impl ExitWatch {
    /// `None` if `pid` no longer exists.
    fn open(pid: u32) -> Option<Self> {
        let raw = Pid::from_raw(pid as i32)?;
        let fd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()).ok()?;
        // SAFETY: the `OwnedFd` is open and owned by the `AsyncFd` for all its life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| e.to_string())
            .expect("register a pidfd");
        Some(ExitWatch(fd))
    }

    fn must_open(pid: u32) -> Self {
        Self::open(pid).unwrap_or_else(|| panic!("process {pid} does not exist"))
    }

    async fn exited(&self) {
        let _ = self.0.readable().await.expect("poll a pidfd");
    }

    /// Waits until the process exits; fails the test after [`EVENT_TIMEOUT`].
    async fn expect_exit(&self, what: &str) {
        support::within(EVENT_TIMEOUT, what, self.exited()).await;
    }
}

/// Whether `pid` exists and is not a zombie.
fn is_running(pid: u32) -> bool {
    proc_state(pid).is_some_and(|state| state != 'Z')
}

/// The state letter of `/proc/<pid>/stat` (`R`, `S`, `Z`…), `None` if there is no such process.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Makes this test process the reaper of its orphaned descendants, so that a grandchild
/// whose parent died is reparented here (not to a PID 1 that may never reap it) and its
/// exit status can be checked with [`reap_orphan`].
fn become_subreaper() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .expect("PR_SET_CHILD_SUBREAPER");
}

/// Collects an orphan reparented to this process that has exited.
fn reap_orphan(pid: u32) -> WaitStatus {
    let raw = Pid::from_raw(pid as i32).expect("a PID");
    match rustix::process::waitpid(Some(raw), WaitOptions::NOHANG) {
        Ok(Some((_, status))) => status,
        Ok(None) => panic!("orphan {pid} has exited but cannot be collected yet"),
        Err(e) => panic!("orphan {pid} is not a child of this subreaper: {e}"),
    }
}

/// Kills a process this test did not start (SIGKILL).
fn kill_pid(pid: u32) {
    let raw = Pid::from_raw(pid as i32).expect("a PID");
    rustix::process::kill_process(raw, rustix::process::Signal::KILL).expect("kill");
}

// ---------------------------------------------------------------------------------------
// 1. start
// ---------------------------------------------------------------------------------------

fn start_returns_pid_and_child_knows_parent() {
    run("start", async {
        let manager = Manager::new();
        let mut process = child(&manager, ROLE_REPORT, &[]);
        assert_eq!(process.pid(), None, "pid() before start");
        let pid = process.start().await.expect("start");
        assert_eq!(process.pid(), Some(pid));

        let msg = receive_from(pid).await;
        assert_eq!(msg.receiver_pid, gproc::pid());
        let text = String::from_utf8(msg.data.to_vec()).expect("UTF-8 report");
        let report: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let me = gproc::pid().to_string();
        assert_eq!(report["pid"], pid.to_string(), "{text}");
        assert_eq!(report["ppid"], me, "the child's ppid(): {text}");
        assert_eq!(report["is_child"], "true", "{text}");
        assert_eq!(report["GPROC_PPID"], me, "{text}");
        assert_eq!(
            report["GPROC_DIR"],
            support::gproc_dir().to_str().expect("UTF-8 dir"),
            "{text}"
        );

        let status = process.wait().await.expect("wait");
        assert_eq!(status.code(), Some(0), "{status}");
    });
}

/// A program that does not exist: the error a user sees names it, and keeps the
/// system's kind.
fn start_of_missing_program_names_it() {
    run("start a missing program", async {
        let manager = Manager::new();
        let missing = support::gproc_dir().join("no-such-program");
        let mut process = manager.new_process(&missing, ["--flag"], Vec::<(String, String)>::new());
        let e = process
            .start()
            .await
            .expect_err("a missing program does not start");
        let text = e.to_string();
        assert!(
            matches!(&e, gproc::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound),
            "{e:?}"
        );
        assert!(
            text.contains(missing.to_str().expect("UTF-8 path")),
            "the error names the program: {text}"
        );
        assert!(
            text.contains("check the path"),
            "the error says what to do: {text}"
        );
        assert_eq!(process.pid(), None, "nothing was started");
    });
}

fn start_twice_is_not_started() {
    run("start twice", async {
        let manager = Manager::new();
        let (mut process, first) = start(&manager, ROLE_IDLE, &[]).await;
        assert!(matches!(process.start().await, Err(Error::NotStarted)));
        // A clone of an unstarted process has no command to run.
        let mut unstarted = child(&manager, ROLE_IDLE, &[]);
        let mut clone = unstarted.clone();
        assert!(matches!(clone.start().await, Err(Error::NotStarted)));
        assert_eq!(clone.pid(), None);
        let pid = unstarted.start().await.expect("the original starts");
        assert_eq!(manager.pids().len(), 2);
        assert!(manager.pids().contains(&pid));
        assert!(manager.pids().contains(&first));
        for (pid, result) in manager.kill_all().await {
            result.unwrap_or_else(|e| panic!("kill {pid}: {e}"));
        }
    });
}

fn unstarted_process_is_not_started() {
    run("unstarted", async {
        let manager = Manager::new();
        let process = child(&manager, ROLE_IDLE, &[]);
        assert!(matches!(
            process.ready(Duration::from_millis(1)).await,
            Err(Error::NotStarted)
        ));
        assert!(matches!(process.send("x").await, Err(Error::NotStarted)));
        assert!(matches!(
            process.signal(Signal::Term),
            Err(Error::NotStarted)
        ));
        assert!(matches!(process.kill().await, Err(Error::NotStarted)));
        assert!(matches!(process.wait().await, Err(Error::NotStarted)));
        assert!(manager.pids().is_empty());
    });
}

// ---------------------------------------------------------------------------------------
// 2. ready
// ---------------------------------------------------------------------------------------

fn ready_resolves_once_child_listens() {
    run("ready", async {
        let manager = Manager::new();
        let (process, pid) = start(&manager, ROLE_ECHO, &[]).await;
        process.ready(EVENT_TIMEOUT).await.expect("ready");
        assert!(support::socket_path(pid).exists(), "socket after ready");
        // Ready means a send cannot fail with NotListening.
        process.send("first").await.expect("send right after ready");
        assert_eq!(receive_from(pid).await.data, &b"echo:first"[..]);
        // Ready again: at once.
        process.ready(EVENT_TIMEOUT).await.expect("ready twice");
        process.kill().await.expect("kill");
    });
}

fn ready_times_out_when_child_never_listens() {
    run("ready timeout", async {
        let manager = Manager::new();
        let (process, _pid) = start(&manager, ROLE_IDLE, &[]).await;
        let timeout = Duration::from_millis(300);
        let began = Instant::now();
        let result = process.ready(timeout).await;
        let took = began.elapsed();
        assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
        assert!(took >= timeout, "returned after {took:?}");
        assert!(took < EVENT_TIMEOUT, "returned after {took:?}");
        process.kill().await.expect("kill");
    });
}

fn ready_reports_child_that_exits_first() {
    run("ready exited", async {
        let manager = Manager::new();
        let (process, pid) = start(&manager, ROLE_EXIT, &[(ENV_EXIT_CODE, "7")]).await;
        match process.ready(EVENT_TIMEOUT).await {
            Err(Error::ProcessExited { pid: p, status }) => {
                assert_eq!(p, pid);
                assert_eq!(status.code(), Some(7), "{status}");
            }
            other => panic!("expected ProcessExited, got {other:?}"),
        }
    });
}

// ---------------------------------------------------------------------------------------
// 3. send
// ---------------------------------------------------------------------------------------

fn send_delivers_to_child_in_order() {
    run("send", async {
        let manager = Manager::new();
        let (process, pid) = start_echo(&manager).await;
        for i in 0..5 {
            process.send(format!("m{i}")).await.expect("send");
        }
        for i in 0..5 {
            let msg = receive_from(pid).await;
            assert_eq!(msg.data, format!("echo:m{i}").as_bytes());
        }
        process.send("exit").await.expect("send exit");
        let status = process.wait().await.expect("wait");
        assert_eq!(status.code(), Some(0), "{status}");
    });
}

fn send_to_exited_child_is_no_such_process() {
    run("send exited", async {
        let manager = Manager::new();
        let (process, pid) = start_echo(&manager).await;
        process.kill().await.expect("kill");
        match process.send("late").await {
            Err(Error::NoSuchProcess(p)) => assert_eq!(p, pid),
            other => panic!("expected NoSuchProcess, got {other:?}"),
        }
    });
}

fn send_all_reports_every_child() {
    run("send_all", async {
        let manager = Manager::new();
        // Started in this order, the exited child sits between the other two.
        let (_first, first) = start_echo(&manager).await;
        let (gone, gone_pid) = start(&manager, ROLE_EXIT, &[]).await;
        let (_last, last) = start_echo(&manager).await;
        assert_eq!(gone.wait().await.expect("wait").code(), Some(0));

        let results = manager.send_all("to everyone").await;
        assert_eq!(results.len(), 3, "{results:?}");
        let pids: BTreeSet<u32> = results.iter().map(|(p, _)| *p).collect();
        assert_eq!(pids, BTreeSet::from([first, gone_pid, last]));
        for (pid, result) in &results {
            if *pid == gone_pid {
                assert!(
                    matches!(result, Err(Error::NoSuchProcess(p)) if *p == gone_pid),
                    "{pid}: {result:?}"
                );
            } else {
                assert!(result.is_ok(), "{pid}: {result:?}");
            }
        }
        let mut echoed = BTreeSet::new();
        for _ in 0..2 {
            let msg = receive().await;
            assert_eq!(msg.data, &b"echo:to everyone"[..]);
            echoed.insert(msg.sender_pid);
        }
        assert_eq!(echoed, BTreeSet::from([first, last]));
    });
}

// ---------------------------------------------------------------------------------------
// 4. signal, kill, wait
// ---------------------------------------------------------------------------------------

fn signal_term_terminates_child() {
    run("signal", async {
        let manager = Manager::new();
        let (process, pid) = start(&manager, ROLE_IDLE, &[]).await;
        process.signal(Signal::Term).expect("SIGTERM");
        let status = process.wait().await.expect("wait");
        assert_eq!(signal_of(status), Some(15), "{status}");
        match process.signal(Signal::Term) {
            Err(Error::NoSuchProcess(p)) => assert_eq!(p, pid),
            other => panic!("signal to an exited child: expected NoSuchProcess, got {other:?}"),
        }
    });
}

fn kill_then_wait_is_sigkill() {
    run("kill", async {
        let manager = Manager::new();
        let (process, _pid) = start(&manager, ROLE_IDLE, &[]).await;
        process.kill().await.expect("kill");
        let status = process.wait().await.expect("wait");
        assert_eq!(signal_of(status), Some(9), "{status}");
        // Killing an exited child is Ok.
        process.kill().await.expect("kill again");
    });
}

fn wait_returns_exit_code_to_every_caller() {
    run("wait", async {
        let manager = Manager::new();
        let (process, pid) = start(&manager, ROLE_EXIT, &[(ENV_EXIT_CODE, "3")]).await;
        let other = manager.get(pid).expect("a second handle");
        let clone = process.clone();
        let (a, b, c) = tokio::join!(process.wait(), other.wait(), clone.wait());
        for status in [a, b, c] {
            assert_eq!(status.expect("wait").code(), Some(3));
        }
        // And again, after the fact.
        assert_eq!(process.wait().await.expect("wait again").code(), Some(3));
    });
}

fn signal_kill_and_wait_all_report_every_child() {
    run("signal_all", async {
        let manager = Manager::new();
        let mut pids = BTreeSet::new();
        for _ in 0..3 {
            pids.insert(start(&manager, ROLE_IDLE, &[]).await.1);
        }
        assert_eq!(manager.pids(), pids.iter().copied().collect::<Vec<_>>());

        let signalled = manager.signal_all(Signal::Term);
        assert_eq!(
            signalled.iter().map(|(p, _)| *p).collect::<BTreeSet<_>>(),
            pids
        );
        for (pid, result) in &signalled {
            assert!(result.is_ok(), "{pid}: {result:?}");
        }
        let waited = manager.wait_all().await;
        assert_eq!(
            waited.iter().map(|(p, _)| *p).collect::<BTreeSet<_>>(),
            pids
        );
        for (pid, status) in &waited {
            let status = status.as_ref().expect("wait");
            assert_eq!(signal_of(*status), Some(15), "{pid}: {status}");
        }
        // Every one has exited: one NoSuchProcess per child.
        let again = manager.signal_all(Signal::Term);
        assert_eq!(again.len(), 3);
        for (pid, result) in &again {
            assert!(
                matches!(result, Err(Error::NoSuchProcess(p)) if p == pid),
                "{pid}: {result:?}"
            );
        }

        // kill_all, with one child already gone: still Ok for each.
        let manager = Manager::new();
        let mut pids = BTreeSet::new();
        for _ in 0..2 {
            pids.insert(start(&manager, ROLE_IDLE, &[]).await.1);
        }
        let (gone, gone_pid) = start(&manager, ROLE_EXIT, &[(ENV_EXIT_CODE, "5")]).await;
        pids.insert(gone_pid);
        gone.wait().await.expect("wait");
        let killed = manager.kill_all().await;
        assert_eq!(
            killed.iter().map(|(p, _)| *p).collect::<BTreeSet<_>>(),
            pids
        );
        for (pid, result) in &killed {
            assert!(result.is_ok(), "{pid}: {result:?}");
        }
        for (pid, status) in manager.wait_all().await {
            let status = status.expect("wait");
            if pid == gone_pid {
                assert_eq!(status.code(), Some(5), "{pid}: {status}");
            } else {
                assert_eq!(signal_of(status), Some(9), "{pid}: {status}");
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// 5. the reaper
// ---------------------------------------------------------------------------------------

fn reaper_leaves_no_zombie() {
    run("reaper", async {
        let manager = Manager::new();
        let (process, pid) = start_echo(&manager).await;
        let watch = ExitWatch::must_open(pid);
        process.send("exit").await.expect("tell it to exit");
        drop(process);
        // It exits with nobody waiting on it...
        watch.expect_exit("the child exits").await;
        // ...and the reaper has collected it: `wait` only reads what the reaper recorded.
        let handle = manager.get(pid).expect("still registered");
        let status = handle.wait().await.expect("wait");
        assert_eq!(status.code(), Some(0), "{status}");
        assert_eq!(
            proc_state(pid),
            None,
            "/proc/{pid} still exists after the reaper recorded its status"
        );
        assert!(
            !support::socket_path(pid).exists(),
            "a clean exit removes the socket file"
        );
        // Still listed (exited children stay until removed).
        assert_eq!(manager.pids(), vec![pid]);
    });
}

fn reaper_removes_socket_of_killed_child() {
    run("reaper socket", async {
        let manager = Manager::new();
        let (process, pid) = start_echo(&manager).await;
        let socket = support::socket_path(pid);
        assert!(socket.exists(), "{} after ready", socket.display());
        process.kill().await.expect("kill");
        assert!(
            !socket.exists(),
            "{} is left behind by a child killed with SIGKILL",
            socket.display()
        );
        assert_eq!(proc_state(pid), None, "/proc/{pid} after kill()");
        let status = process.wait().await.expect("wait");
        assert_eq!(signal_of(status), Some(9), "{status}");
    });
}

// ---------------------------------------------------------------------------------------
// 6. the registry
// ---------------------------------------------------------------------------------------

fn registry_lists_gets_and_removes() {
    run("registry", async {
        let manager = Manager::new();
        let (_a, a) = start_echo(&manager).await;
        let (b_process, b) = start_echo(&manager).await;
        let mut both = vec![a, b];
        both.sort_unstable();
        assert_eq!(manager.pids(), both);
        assert_eq!(manager.get(a).expect("get a").pid(), Some(a));
        assert_eq!(manager.get(b).expect("get b").pid(), Some(b));
        assert!(manager.get(gproc::pid()).is_none(), "not a child");

        let removed = manager.remove(a).expect("remove a");
        assert_eq!(removed.pid(), Some(a));
        assert_eq!(manager.pids(), vec![b]);
        assert!(manager.get(a).is_none());
        assert!(manager.remove(a).is_none(), "removed twice");

        // Dropping the manager kills b, not the removed a.
        let b_watch = ExitWatch::must_open(b);
        drop(manager);
        b_watch
            .expect_exit("the managed child dies with the manager")
            .await;
        assert_eq!(signal_of(b_process.wait().await.expect("wait b")), Some(9));
        round_trip(a).await;

        // The removed handle still works.
        removed.kill().await.expect("kill a");
        assert_eq!(signal_of(removed.wait().await.expect("wait a")), Some(9));
    });
}

// ---------------------------------------------------------------------------------------
// 7. drop
// ---------------------------------------------------------------------------------------

fn drop_kills_children_but_not_detached() {
    run("drop", async {
        let manager = Manager::new();
        let (plain, plain_pid) = start_echo(&manager).await;
        let (detached, detached_pid) = start_echo(&manager).await;
        detached.detach();
        let plain_watch = ExitWatch::must_open(plain_pid);
        let detached_watch = ExitWatch::must_open(detached_pid);

        drop(manager);
        plain_watch
            .expect_exit("a child dies with its manager")
            .await;
        let status = plain.wait().await.expect("wait");
        assert_eq!(signal_of(status), Some(9), "{status}");

        // The detached child still answers, after the manager's drop sent its signals.
        round_trip(detached_pid).await;
        assert!(is_running(detached_pid));

        // Clean up through the handle, which outlives the manager.
        detached.kill().await.expect("kill the detached child");
        detached_watch
            .expect_exit("the detached child is killed")
            .await;
        assert_eq!(signal_of(detached.wait().await.expect("wait")), Some(9));
    });
}

// ---------------------------------------------------------------------------------------
// 8. die_with_parent
// ---------------------------------------------------------------------------------------

/// Starts a middle process that starts a grandchild in `role`; returns the middle's handle
/// and the grandchild's PID (which it sent once the grandchild was ready).
async fn start_middle(
    manager: &Manager,
    role: &str,
    die_with_parent: bool,
    envs: &[(&str, &str)],
) -> (Process, u32) {
    let die = if die_with_parent { "1" } else { "0" };
    let mut all = vec![(ENV_GRANDCHILD, role), (ENV_DIE_WITH_PARENT, die)];
    all.extend_from_slice(envs);
    let (middle, middle_pid) = start(manager, ROLE_MIDDLE, &all).await;
    let msg = receive_from(middle_pid).await;
    let grandchild: u32 = std::str::from_utf8(&msg.data)
        .expect("UTF-8")
        .parse()
        .expect("a PID");
    (middle, grandchild)
}

fn die_with_parent_kills_grandchild() {
    run("die_with_parent", async {
        become_subreaper();
        let manager = Manager::new();
        let (middle, grandchild) = start_middle(&manager, ROLE_ECHO, true, &[]).await;
        let watch = ExitWatch::must_open(grandchild);
        round_trip(grandchild).await;

        middle.kill().await.expect("SIGKILL the middle process");
        watch
            .expect_exit("the grandchild dies with its parent")
            .await;
        let status = reap_orphan(grandchild);
        assert_eq!(status.terminating_signal(), Some(9), "{status:?}");
    });
}

fn grandchild_survives_without_die_with_parent() {
    run("no die_with_parent", async {
        become_subreaper();
        let manager = Manager::new();
        let (middle, grandchild) = start_middle(&manager, ROLE_ECHO, false, &[]).await;
        let watch = ExitWatch::must_open(grandchild);

        middle.kill().await.expect("SIGKILL the middle process");
        // A parent-death signal is queued while the parent exits, before it can be reaped:
        // an answer now proves there was none.
        round_trip(grandchild).await;
        assert!(is_running(grandchild));

        kill_pid(grandchild);
        watch.expect_exit("the orphan is killed").await;
        let status = reap_orphan(grandchild);
        assert_eq!(status.terminating_signal(), Some(9), "{status:?}");
    });
}

// ---------------------------------------------------------------------------------------
// 9. parent_exited
// ---------------------------------------------------------------------------------------

fn parent_exited_resolves_when_parent_dies() {
    run("parent_exited", async {
        become_subreaper();
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let marker = scratch.path().join("marker");
        let marker_str = marker.to_str().expect("UTF-8 path");
        let manager = Manager::new();
        let (middle, grandchild) =
            start_middle(&manager, ROLE_ORPHAN, false, &[(ENV_MARKER, marker_str)]).await;
        let watch = ExitWatch::must_open(grandchild);
        assert!(
            is_running(grandchild),
            "the grandchild waits for its parent"
        );
        assert!(!marker.exists());

        middle.kill().await.expect("SIGKILL the middle process");
        watch
            .expect_exit("the grandchild sees its parent exit")
            .await;
        let status = reap_orphan(grandchild);
        assert_eq!(status.exit_status(), Some(ORPHAN_EXIT_CODE), "{status:?}");
        assert_eq!(
            std::fs::read_to_string(&marker).expect("the marker"),
            MARKER_TEXT
        );
    });
}

// ---------------------------------------------------------------------------------------
// 10. the seed example, ported
// ---------------------------------------------------------------------------------------

fn seed_child_sends_time_to_parent() {
    run("seed", async {
        let manager = Manager::new();
        let mut process = child(&manager, ROLE_SEED, &[]);
        process.die_with_parent(true);
        let pid = process.start().await.expect("start");
        for _ in 0..3 {
            let msg = receive_from(pid).await;
            let text = String::from_utf8(msg.data.to_vec()).expect("UTF-8");
            assert!(
                text.ends_with(&format!("(unix time, from child {pid})")),
                "{text}"
            );
            let seconds: f64 = text
                .split_whitespace()
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("no time in {text:?}"));
            assert!(seconds > 1.0e9, "{text}");
        }
        process.kill().await.expect("kill");
    });
}
