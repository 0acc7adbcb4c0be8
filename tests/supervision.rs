//! Supervision against real processes: restart policies, the restart limit, the backoff,
//! the event stream, sends to the current incarnation, `exited` on a process that is not
//! a child, `new_command` keeping the user's stdio, directory and environment, and
//! grandchildren that do not take themselves for gproc children.
//!
//! Each test runs in a process of its own (see `support`). Children are this binary
//! re-executed in a role chosen by `GPROC_TEST_ROLE`. Tests wait on events only: the
//! manager's events, a message, a line on a pipe, a process's exit.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use gproc::{Event, Events, Manager, Process, Restart};

/// `(name, body)` for each test function named.
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), $name as fn())),*]
    };
}

const TESTS: &[(&str, fn())] = tests![
    on_failure_restarts_failures_not_success,
    always_restarts_success_too,
    never_is_the_default,
    restart_limit_gives_up_and_wait_resolves,
    backoff_delays_grow_as_configured,
    kill_stops_restarts,
    send_reaches_the_current_incarnation,
    exited_works_on_a_process_not_a_child,
    new_command_keeps_stdio_cwd_and_env,
    grandchild_is_not_a_gproc_child,
    by_name_client_follows_a_restart,
];

const ROLES: &[(&str, fn())] = &[
    (ROLE_WORKER, role_worker),
    (ROLE_EXIT, role_exit),
    (ROLE_DUMP, role_dump),
    (ROLE_MIDDLE, role_middle),
    (ROLE_IDENTITY, role_identity),
    (ROLE_SERVE, role_serve),
];

fn main() {
    support::run_tests(TESTS, ROLES);
}

/// A generous bound on anything a test waits for; reached only when something is broken.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// The bound on a whole test body.
const TEST_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------

/// Listens; answers every message `m` with `<its pid>:m` to the sender; `exit N` makes it
/// exit with code N.
const ROLE_WORKER: &str = "worker";
/// Exits at once with the code in `GPROC_TEST_EXIT_CODE`, without touching gproc.
const ROLE_EXIT: &str = "exit";
/// Prints its working directory and its whole environment on stdout, then exits 0.
const ROLE_DUMP: &str = "dump";
/// A gproc child that prints its identity, then starts [`ROLE_IDENTITY`] with
/// `std::process::Command` (stdout inherited), then waits.
const ROLE_MIDDLE: &str = "middle";
/// Prints its identity on stdout, then waits for the test process to exit.
const ROLE_IDENTITY: &str = "identity";

/// Serves [`Who`] (its name comes from the manager, through `Process::name`).
const ROLE_SERVE: &str = "serve";

const ENV_OWNER: &str = "GPROC_TEST_OWNER";
const ENV_EXIT_CODE: &str = "GPROC_TEST_EXIT_CODE";

/// Runs a role's body on a current-thread runtime and exits with its code; every role also
/// ends when the test process (`GPROC_TEST_OWNER`) exits.
fn run_role<F: std::future::Future<Output = i32>>(body: F) {
    let code = support::current_thread_runtime().block_on(async {
        let owner: u32 = std::env::var(ENV_OWNER)
            .ok()
            .and_then(|o| o.parse().ok())
            .expect("GPROC_TEST_OWNER is set by the test");
        tokio::select! {
            code = body => code,
            _ = gproc::exited(owner) => 0,
        }
    });
    std::process::exit(code);
}

fn role_worker() {
    run_role(async {
        gproc::listen().await.expect("listen");
        loop {
            let msg = gproc::receive().await.expect("receive");
            let text = String::from_utf8_lossy(&msg.data).into_owned();
            if let Some(code) = text.strip_prefix("exit ") {
                return code.parse().expect("an exit code");
            }
            let reply = format!("{}:{text}", gproc::pid());
            gproc::send(msg.sender_pid, reply)
                .await
                .expect("answer the sender");
        }
    });
}

fn role_exit() {
    let code = std::env::var(ENV_EXIT_CODE)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    std::process::exit(code);
}

fn role_dump() {
    let cwd = std::env::current_dir().expect("current_dir");
    println!("cwd={}", cwd.display());
    for (key, value) in std::env::vars_os() {
        println!("env {}={}", key.to_string_lossy(), value.to_string_lossy());
    }
}

/// The lines [`ROLE_IDENTITY`] and [`ROLE_MIDDLE`] print: `<who> key=value ...`.
fn identity_line(who: &str) -> String {
    format!(
        "{who} pid={} is_child={} ppid={} ppid_os={}",
        gproc::pid(),
        gproc::is_child(),
        gproc::ppid(),
        gproc::ppid_os()
    )
}

fn role_middle() {
    println!("{}", identity_line("middle"));
    let mut grandchild = Command::new(exe())
        .env(support::ENV_ROLE, ROLE_IDENTITY)
        .spawn()
        .expect("start the grandchild with std::process::Command");
    println!("grandchild {}", grandchild.id());
    // Reaped when it exits, as a parent that knows nothing of gproc would.
    std::thread::spawn(move || grandchild.wait());
    run_role(std::future::pending());
}

/// Answers who it is.
#[gproc::service]
pub trait Who {
    /// The PID of the process that answers.
    async fn whoami(&self) -> u32;
}

struct Me;

impl Who for Me {
    async fn whoami(&self) -> u32 {
        gproc::pid()
    }
}

fn role_serve() {
    run_role(async {
        WhoServer::new(Me).serve().await.expect("serve");
        0
    });
}

fn role_identity() {
    println!("{}", identity_line("identity"));
    run_role(std::future::pending());
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Runs a test body on a multi-thread runtime, bounded by [`TEST_LIMIT`].
fn run<F: std::future::Future<Output = ()>>(name: &str, body: F) {
    support::block_on(support::within(TEST_LIMIT, name, body));
}

fn exe() -> PathBuf {
    std::env::current_exe().expect("current_exe")
}

/// This binary in `role`, as a command the test may change further.
fn command(role: &str) -> Command {
    let mut command = Command::new(exe());
    command
        .env(support::ENV_ROLE, role)
        .env(ENV_OWNER, gproc::pid().to_string());
    command
}

/// A worker that exits with `code` at once, restarted by `restart` with a short backoff.
fn exiting(manager: &Manager, code: i32, restart: Restart) -> Process {
    let mut command = command(ROLE_EXIT);
    command.env(ENV_EXIT_CODE, code.to_string());
    let mut process = manager.new_command(command);
    process
        .restart(restart)
        .restart_backoff(Duration::from_millis(1), Duration::from_millis(4));
    process
}

/// The next event; fails the test after [`EVENT_TIMEOUT`].
async fn next(events: &mut Events) -> Event {
    support::within(EVENT_TIMEOUT, "the next event", events.next())
        .await
        .expect("the manager is alive, so the stream goes on")
}

async fn expect_started(events: &mut Events) -> u32 {
    match next(events).await {
        Event::Started { pid, .. } => pid,
        other => panic!("expected Started, got {other:?}"),
    }
}

async fn expect_exited(events: &mut Events, pid: u32) -> ExitStatus {
    match next(events).await {
        Event::Exited { pid: p, status } if p == pid => status,
        other => panic!("expected Exited of {pid}, got {other:?}"),
    }
}

async fn expect_restarting(events: &mut Events, pid: u32) -> Duration {
    match next(events).await {
        Event::Restarting { pid: p, after } if p == pid => after,
        other => panic!("expected Restarting of {pid}, got {other:?}"),
    }
}

/// Sends `text` to the current incarnation and returns the PID that answered.
async fn ask(process: &Process, text: &str) -> u32 {
    process
        .send(text.to_owned())
        .await
        .unwrap_or_else(|e| panic!("send {text:?}: {e}"));
    let msg = support::within(EVENT_TIMEOUT, "an answer", gproc::receive())
        .await
        .expect("receive");
    let answer = String::from_utf8_lossy(&msg.data).into_owned();
    let (pid, echoed) = answer.split_once(':').expect("<pid>:<text>");
    assert_eq!(echoed, text);
    let pid: u32 = pid.parse().expect("a pid");
    assert_eq!(pid, msg.sender_pid, "the answer's sender");
    pid
}

/// No event is waiting now: the child has stopped for good.
fn assert_quiet(events: &mut Events) {
    if let Some(event) = events.try_next() {
        panic!("expected no more events, got {event:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Restart policies
// ---------------------------------------------------------------------------------------

/// `OnFailure`: exit 1 and SIGKILL restart the worker, exit 0 ends it, and each step's
/// events come in order with the right PIDs.
fn on_failure_restarts_failures_not_success() {
    run("on_failure", async {
        let manager = Manager::new();
        let mut events = manager.events();
        let mut worker = manager.new_command(command(ROLE_WORKER));
        worker
            .restart(Restart::OnFailure)
            .restart_backoff(Duration::from_millis(1), Duration::from_millis(10));
        let first = worker.start().await.expect("start");
        assert_eq!(expect_started(&mut events).await, first);
        assert_eq!(ask(&worker, "hello").await, first);

        // Exit 1: restarted.
        worker.send("exit 1").await.expect("send exit 1");
        assert_eq!(expect_exited(&mut events, first).await.code(), Some(1));
        expect_restarting(&mut events, first).await;
        let second = expect_started(&mut events).await;
        assert_ne!(second, first);
        assert_eq!(worker.pid(), Some(second));
        assert_eq!(ask(&worker, "again").await, second);

        // SIGKILL from outside the manager: restarted.
        support::signal(second, rustix::process::Signal::KILL);
        let status = expect_exited(&mut events, second).await;
        assert_eq!(status.signal(), Some(9), "{status}");
        expect_restarting(&mut events, second).await;
        let third = expect_started(&mut events).await;
        assert_eq!(ask(&worker, "third").await, third);

        // Exit 0: not restarted, and `wait` resolves with it.
        worker.send("exit 0").await.expect("send exit 0");
        assert_eq!(expect_exited(&mut events, third).await.code(), Some(0));
        let status = support::within(EVENT_TIMEOUT, "wait", worker.wait())
            .await
            .expect("wait");
        assert!(status.success(), "{status}");
        assert_quiet(&mut events);
        assert_eq!(manager.pids(), vec![third]);
    });
}

/// `Always`: a clean exit restarts too (twice here, then the limit of 2 gives up).
fn always_restarts_success_too() {
    run("always", async {
        let manager = Manager::new();
        let mut events = manager.events();
        let mut worker = exiting(&manager, 0, Restart::Always);
        worker.restart_limit(2, Duration::from_secs(60));
        worker.start().await.expect("start");
        let mut pid = 0;
        for restart in 0..=2 {
            pid = expect_started(&mut events).await;
            assert!(expect_exited(&mut events, pid).await.success());
            if restart < 2 {
                expect_restarting(&mut events, pid).await;
            }
        }
        assert_eq!(next(&mut events).await, Event::GaveUp { pid, restarts: 2 });
        assert!(worker.wait().await.expect("wait").success());
    });
}

/// Without a policy, the first exit is the last, whatever its status.
fn never_is_the_default() {
    run("never", async {
        let manager = Manager::new();
        let mut events = manager.events();
        let mut command = command(ROLE_EXIT);
        command.env(ENV_EXIT_CODE, "3");
        let mut worker = manager.new_command(command);
        let pid = worker.start().await.expect("start");
        assert_eq!(expect_started(&mut events).await, pid);
        assert_eq!(expect_exited(&mut events, pid).await.code(), Some(3));
        let status = worker.wait().await.expect("wait");
        assert_eq!(status.code(), Some(3));
        assert_quiet(&mut events);
    });
}

/// `restart_limit(3, 60 s)` on a worker that always fails: three restarts, then
/// `GaveUp { restarts: 3 }`, and `wait` resolves with the last failure.
fn restart_limit_gives_up_and_wait_resolves() {
    run("limit", async {
        let manager = Manager::new();
        let mut events = manager.events();
        let mut worker = exiting(&manager, 1, Restart::OnFailure);
        worker.restart_limit(3, Duration::from_secs(60));
        worker.start().await.expect("start");
        let mut pids = Vec::new();
        for restart in 0..=3 {
            let pid = expect_started(&mut events).await;
            pids.push(pid);
            assert_eq!(expect_exited(&mut events, pid).await.code(), Some(1));
            if restart < 3 {
                expect_restarting(&mut events, pid).await;
            }
        }
        let last = *pids.last().expect("four incarnations");
        match next(&mut events).await {
            Event::GaveUp { pid, restarts } => {
                assert_eq!(pid, last);
                assert_eq!(restarts, 3);
            }
            other => panic!("expected GaveUp, got {other:?}"),
        }
        let status = support::within(EVENT_TIMEOUT, "wait", worker.wait())
            .await
            .expect("wait");
        assert_eq!(status.code(), Some(1));
        assert_eq!(worker.pid(), Some(last));
        let distinct: std::collections::BTreeSet<_> = pids.iter().collect();
        assert_eq!(distinct.len(), 4, "four incarnations, four PIDs: {pids:?}");
        assert_quiet(&mut events);
    });
}

/// `restart_backoff(40 ms, 160 ms)`: the delays announced are 40, 80, 160, 160 ms, and
/// the time from each exit to the next start, measured from the events, is at least that.
fn backoff_delays_grow_as_configured() {
    run("backoff", async {
        let manager = Manager::new();
        let mut events = manager.events();
        let mut worker = exiting(&manager, 1, Restart::OnFailure);
        worker
            .restart_backoff(Duration::from_millis(40), Duration::from_millis(160))
            .restart_limit(4, Duration::from_secs(60));
        worker.start().await.expect("start");
        let mut pid = expect_started(&mut events).await;
        let mut announced = Vec::new();
        let mut measured = Vec::new();
        for _ in 0..4 {
            expect_exited(&mut events, pid).await;
            let exited_at = Instant::now();
            announced.push(expect_restarting(&mut events, pid).await);
            pid = expect_started(&mut events).await;
            measured.push(exited_at.elapsed());
        }
        println!("announced {announced:?}, measured {measured:?}");
        let ms = Duration::from_millis;
        assert_eq!(announced, [ms(40), ms(80), ms(160), ms(160)]);
        for (after, took) in announced.iter().zip(&measured) {
            assert!(
                took >= after,
                "started {took:?} after the exit, before {after:?}"
            );
            assert!(
                *took < *after + Duration::from_secs(5),
                "started {took:?} after the exit, announced {after:?}"
            );
        }
        expect_exited(&mut events, pid).await;
        assert!(matches!(
            next(&mut events).await,
            Event::GaveUp { restarts: 4, .. }
        ));
    });
}

/// `kill` is for good: no restart, even under `Always`, and `wait` resolves.
fn kill_stops_restarts() {
    run("kill", async {
        let manager = Manager::new();
        let mut events = manager.events();
        let mut worker = manager.new_command(command(ROLE_WORKER));
        worker.restart(Restart::Always);
        let pid = worker.start().await.expect("start");
        assert_eq!(expect_started(&mut events).await, pid);
        worker.kill().await.expect("kill");
        let status = expect_exited(&mut events, pid).await;
        assert_eq!(status.signal(), Some(9));
        assert_eq!(worker.wait().await.expect("wait").signal(), Some(9));
        assert_quiet(&mut events);
        // The stream ends with the manager.
        drop(manager);
        assert_eq!(events.next().now_or_never(), Some(None));
    });
}

/// `Process::send` goes to the incarnation running now, across restarts.
fn send_reaches_the_current_incarnation() {
    run("send", async {
        let manager = Manager::new();
        let mut events = manager.events();
        let mut worker = manager.new_command(command(ROLE_WORKER));
        worker
            .restart(Restart::OnFailure)
            .restart_backoff(Duration::from_millis(1), Duration::from_millis(1));
        let mut pid = worker.start().await.expect("start");
        expect_started(&mut events).await;
        for round in 0..3 {
            assert_eq!(ask(&worker, &format!("round {round}")).await, pid);
            support::signal(pid, rustix::process::Signal::KILL);
            expect_exited(&mut events, pid).await;
            expect_restarting(&mut events, pid).await;
            let next_pid = expect_started(&mut events).await;
            assert_ne!(next_pid, pid);
            pid = next_pid;
        }
        assert_eq!(ask(&worker, "last").await, pid);
        assert_eq!(manager.pids(), vec![pid]);
        assert!(
            manager.get(pid).is_some(),
            "get finds the current incarnation"
        );
        let statuses = manager.stop_all(Duration::from_secs(5)).await;
        assert_eq!(statuses.len(), 1);
    });
}

// ---------------------------------------------------------------------------------------
// exited, new_command, grandchildren
// ---------------------------------------------------------------------------------------

/// Starts [`ROLE_MIDDLE`] with its stdout piped; returns its lines as they come.
async fn start_middle(manager: &Manager) -> (Process, std::sync::mpsc::Receiver<String>) {
    let mut command = command(ROLE_MIDDLE);
    command.stdout(Stdio::piped());
    let mut middle = manager.new_command(command);
    middle.start().await.expect("start the middle child");
    let stdout = middle.take_stdout().expect("a piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (middle, rx)
}

/// The first line from `lines` starting with `prefix`, without it.
fn line_starting(lines: &std::sync::mpsc::Receiver<String>, prefix: &str) -> String {
    loop {
        let line = lines
            .recv_timeout(EVENT_TIMEOUT)
            .unwrap_or_else(|e| panic!("no line starting with {prefix:?}: {e}"));
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest.trim().to_owned();
        }
    }
}

/// `key=value` words of a line.
fn fields(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `gproc::exited` on a grandchild (started by the test's child, not by this process):
/// pending while it runs, resolved when it is killed; at once for a PID that is gone; an
/// error for PID 0.
fn exited_works_on_a_process_not_a_child() {
    run("exited", async {
        let manager = Manager::new();
        let (_middle, lines) = start_middle(&manager).await;
        let grandchild: u32 = line_starting(&lines, "grandchild ").parse().expect("a PID");
        let mut exited = Box::pin(gproc::exited(grandchild));
        assert!(
            (&mut exited).now_or_never().is_none(),
            "exited resolved for a running process"
        );
        // Not our child: no Process, no wait; a signal from outside.
        support::signal(grandchild, rustix::process::Signal::KILL);
        support::within(EVENT_TIMEOUT, "exited(grandchild)", exited)
            .await
            .expect("exited");
        // Gone now (reaped by its parent, or a zombie): Ok at once.
        support::within(EVENT_TIMEOUT, "exited again", gproc::exited(grandchild))
            .await
            .expect("exited of a gone process");
        assert!(matches!(
            gproc::exited(0).await,
            Err(gproc::Error::NoSuchProcess(0))
        ));
    });
}

/// `new_command` keeps what the user set: a piped stdout the parent reads, the working
/// directory, a cleared environment with one variable; gproc adds only its own.
fn new_command_keeps_stdio_cwd_and_env() {
    run("new_command", async {
        let cwd = tempfile::tempdir().expect("a working directory");
        let manager = Manager::new();
        for name in [None, Some("dumper")] {
            let mut command = Command::new(exe());
            command
                .env_clear()
                .env(support::ENV_ROLE, ROLE_DUMP)
                .env("FOO", "bar")
                .current_dir(cwd.path())
                .stdout(Stdio::piped());
            let mut child = manager.new_command(command);
            if let Some(name) = name {
                child.name(name);
            }
            let pid = child.start().await.expect("start");
            let mut stdout = child.take_stdout().expect("the piped stdout");
            assert!(child.take_stdout().is_none(), "taken once");
            let output = tokio::task::spawn_blocking(move || {
                let mut output = String::new();
                std::io::Read::read_to_string(&mut stdout, &mut output).map(|_| output)
            })
            .await
            .expect("join")
            .expect("read the child's stdout");
            assert!(child.wait().await.expect("wait").success());

            let reported_cwd = output
                .lines()
                .find_map(|l| l.strip_prefix("cwd="))
                .expect("a cwd line");
            assert_eq!(
                std::fs::canonicalize(reported_cwd).expect("canonical"),
                std::fs::canonicalize(cwd.path()).expect("canonical")
            );
            let env: BTreeMap<&str, &str> = output
                .lines()
                .filter_map(|l| l.strip_prefix("env "))
                .filter_map(|l| l.split_once('='))
                .collect();
            let mut expected = BTreeMap::from([
                ("FOO", "bar".to_owned()),
                (support::ENV_ROLE, ROLE_DUMP.to_owned()),
                (gproc::ENV_PPID, gproc::pid().to_string()),
                (
                    gproc::ENV_DIR,
                    support::gproc_dir().to_string_lossy().into_owned(),
                ),
            ]);
            if let Some(name) = name {
                expected.insert(gproc::ENV_NAME, name.to_owned());
            }
            let expected: BTreeMap<&str, &str> =
                expected.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(env, expected, "child {pid}'s environment");
        }
    });
}

/// A gproc child is a child of the test; the process it starts with
/// `std::process::Command` inherits `GPROC_PPID` but does not claim the test as its gproc
/// parent: `is_child` is false and `ppid` is its real parent.
fn grandchild_is_not_a_gproc_child() {
    run("grandchild", async {
        let manager = Manager::new();
        let (middle, lines) = start_middle(&manager).await;
        let middle_pid = middle.pid().expect("started");
        let me = gproc::pid().to_string();

        let report = fields(&line_starting(&lines, "middle "));
        assert_eq!(report["pid"], middle_pid.to_string());
        assert_eq!(report["is_child"], "true", "{report:?}");
        assert_eq!(report["ppid"], me);

        let report = fields(&line_starting(&lines, "identity "));
        assert_eq!(report["is_child"], "false", "{report:?}");
        assert_eq!(report["ppid"], middle_pid.to_string(), "{report:?}");
        assert_eq!(report["ppid_os"], middle_pid.to_string(), "{report:?}");
        manager.kill_all().await;
    });
}

// ---------------------------------------------------------------------------------------
// Names across restarts
// ---------------------------------------------------------------------------------------

/// A named worker under `OnFailure`, a `by_name` client: it answers as the first
/// incarnation; after a SIGKILL its calls fail while no incarnation is up (the backoff
/// keeps it down for 300 ms), and once the next incarnation is up the same client reaches
/// it, with no new client built.
fn by_name_client_follows_a_restart() {
    run("by_name_restart", async {
        let manager = Manager::new();
        let mut events = manager.events();
        let mut worker = manager.new_command(command(ROLE_SERVE));
        worker
            .name("who")
            .restart(Restart::OnFailure)
            .restart_backoff(Duration::from_millis(300), Duration::from_millis(300));
        let first = worker.start().await.expect("start");
        assert_eq!(
            next(&mut events).await,
            Event::Started {
                pid: first,
                name: Some("who".into())
            }
        );
        let client = WhoClient::by_name("who").with_timeout(Duration::from_secs(5));
        client
            .wait_served(EVENT_TIMEOUT)
            .await
            .expect("served by name");
        assert_eq!(client.whoami().await.expect("call"), first);
        assert_eq!(gproc::lookup("who").await.expect("lookup"), first);

        support::signal(first, rustix::process::Signal::KILL);
        expect_exited(&mut events, first).await;
        expect_restarting(&mut events, first).await;
        // Down: no incarnation holds the name.
        let down = client.whoami().await;
        assert!(
            matches!(down, Err(gproc::RpcError::Transport(_))),
            "a call while no incarnation is up: {down:?}"
        );
        let second = expect_started(&mut events).await;
        // Up again: the same client waits for it by name, then reaches it.
        client
            .wait_served(EVENT_TIMEOUT)
            .await
            .expect("served again");
        assert_eq!(gproc::lookup("who").await.expect("lookup"), second);
        assert_eq!(client.whoami().await.expect("the same client"), second);
        worker.kill().await.expect("kill");
    });
}
