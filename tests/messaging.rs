//! Integration tests of identity, endpoints and raw messaging, with real processes.
//!
//! Every test runs in a process of its own with a `GPROC_DIR` of its own (see
//! `tests/support/mod.rs`); its peers are this binary re-executed in a role.
//! Run one test with `cargo test --test messaging -- delivery::echo`.

mod support;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gproc::{Config, Error, Msg};
use support::*;

/// The most a call that must be "answered within milliseconds" may take. A hang guard, not
/// a benchmark.
const FAST: Duration = Duration::from_secs(1);
/// A generous bound for an operation that should complete.
const LONG: Duration = Duration::from_secs(20);

const TESTS: &[(&str, fn())] = &[
    ("identity::pid_and_os_parent", identity_pid_and_os_parent),
    (
        "identity::child_sees_gproc_ppid",
        identity_child_sees_gproc_ppid,
    ),
    (
        "identity::start_time_is_os_start",
        identity_start_time_is_os_start,
    ),
    ("identity::uptime_grows", identity_uptime_grows),
    ("endpoint::socket_file", endpoint_socket_file),
    ("endpoint::listen_twice", endpoint_listen_twice),
    (
        "endpoint::creates_missing_dir",
        endpoint_creates_missing_dir,
    ),
    (
        "endpoint::symlink_dir_refused",
        endpoint_symlink_dir_refused,
    ),
    (
        "endpoint::foreign_dir_refused",
        endpoint_foreign_dir_refused,
    ),
    (
        "endpoint::xdg_runtime_dir_fallback",
        endpoint_xdg_runtime_dir_fallback,
    ),
    ("endpoint::tmp_fallback", endpoint_tmp_fallback),
    (
        "endpoint::stale_socket_replaced",
        endpoint_stale_socket_replaced,
    ),
    (
        "endpoint::clean_exit_removes_socket",
        endpoint_clean_exit_removes_socket,
    ),
    ("delivery::echo", delivery_echo),
    (
        "delivery::groups_are_separate",
        delivery_groups_are_separate,
    ),
    ("delivery::msg_fields", delivery_msg_fields),
    ("delivery::order_10000", delivery_order_10000),
    ("delivery::large_8mib", delivery_large_8mib),
    (
        "delivery::concurrent_64_tasks",
        delivery_concurrent_64_tasks,
    ),
    ("errors::dead_pid", errors_dead_pid),
    ("errors::pid_out_of_range", errors_pid_out_of_range),
    (
        "errors::killed_peer_stale_socket",
        errors_killed_peer_stale_socket,
    ),
    ("errors::not_listening", errors_not_listening),
    ("errors::too_large_for_sender", errors_too_large_for_sender),
    (
        "errors::too_large_for_receiver",
        errors_too_large_for_receiver,
    ),
    ("errors::reserved_group", errors_reserved_group),
    (
        "errors::full_queue_backpressure",
        errors_full_queue_backpressure,
    ),
    (
        "errors::receiver_killed_mid_stream",
        errors_receiver_killed_mid_stream,
    ),
    ("errors::uid_denied", errors_uid_denied),
    ("errors::uid_allowed", errors_uid_allowed),
    (
        "errors::uid_refused_at_handshake",
        errors_uid_refused_at_handshake,
    ),
    ("runtimes::current_thread", runtimes_current_thread),
    ("runtimes::multi_thread", runtimes_multi_thread),
    (
        "runtimes::dropped_and_recreated",
        runtimes_dropped_and_recreated,
    ),
    ("runtimes::blocking_api", runtimes_blocking_api),
    (
        "runtimes::home_dropped_mid_stream",
        runtimes_home_dropped_mid_stream,
    ),
];

const ROLES: &[(&str, fn())] = &[
    ("echo", role_echo),
    ("report", role_report),
    ("count", role_count),
    ("seq", role_seq),
    ("slow", role_slow),
    ("sendto", role_sendto),
    ("idle", role_idle),
    ("exit", role_exit),
    ("identity", role_identity),
    ("listen_then_exit", role_listen_then_exit),
    ("rawconnect", role_rawconnect),
    ("stream", role_stream),
];

fn main() {
    support::run_tests(TESTS, ROLES);
}

// =======================================================================================
// Shared helpers
// =======================================================================================

/// One received message as a line; roles print it, tests build the line they expect.
fn describe(group: &str, from: u32, to: u32, data: &[u8]) -> String {
    let shown = match std::str::from_utf8(data) {
        Ok(s) if s.len() <= 64 => format!("{s:?}"),
        _ => format!("<{} bytes>", data.len()),
    };
    format!("msg group={group:?} from={from} to={to} data={shown}")
}

fn describe_msg(m: &Msg) -> String {
    describe(&m.group, m.sender_pid, m.receiver_pid, &m.data)
}

fn me() -> u32 {
    std::process::id()
}

/// Fields 3 and on of `/proc/<pid>/stat` (index 0 is field 3, the state).
fn proc_stat(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    let rest = &stat[stat.rfind(')').expect("comm ends with ')'") + 1..];
    rest.split_whitespace().map(str::to_owned).collect()
}

/// This process's start time, from `/proc/self/stat` field 22 and `btime` in `/proc/stat`.
fn os_start_time() -> SystemTime {
    let ticks: u64 = proc_stat(me())[22 - 3].parse().expect("starttime");
    let btime: u64 = std::fs::read_to_string("/proc/stat")
        .expect("read /proc/stat")
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .expect("btime line")
        .trim()
        .parse()
        .expect("btime");
    let hz = clock_ticks_per_second();
    UNIX_EPOCH + Duration::from_secs(btime) + Duration::from_secs_f64(ticks as f64 / hz as f64)
}

/// `AT_CLKTCK` from this process's auxiliary vector (what `sysconf(_SC_CLK_TCK)` reads).
fn clock_ticks_per_second() -> u64 {
    const AT_CLKTCK: u64 = 17;
    let auxv = std::fs::read("/proc/self/auxv").expect("read /proc/self/auxv");
    auxv.chunks_exact(16)
        .map(|pair| {
            let word =
                |at: usize| u64::from_ne_bytes(pair[at..at + 8].try_into().expect("8 bytes"));
            (word(0), word(8))
        })
        .find(|&(key, _)| key == AT_CLKTCK)
        .map(|(_, hz)| hz)
        .expect("AT_CLKTCK in /proc/self/auxv")
}

fn abs_diff(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap_or_default()
}

/// Sends `data` to `pid` (an echo peer) and checks that the echo comes back.
async fn roundtrip(pid: u32, data: &str) {
    within(
        LONG,
        "send to the echo peer",
        gproc::send(pid, data.to_owned()),
    )
    .await
    .unwrap_or_else(|e| panic!("send {data:?} to echo peer {pid}: {e}"));
    let m = within(LONG, "receive the echo", gproc::receive())
        .await
        .expect("receive the echo");
    assert_eq!(m.data, data.as_bytes(), "echo of {data:?}");
    assert_eq!(m.sender_pid, pid, "the echo comes from the echo peer");
    assert_eq!(m.receiver_pid, me());
    assert_eq!(m.group, "");
}

async fn listen() {
    within(LONG, "listen", gproc::listen())
        .await
        .expect("gproc::listen");
}

fn set_mode(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Checks that the next message this process receives in its default group is one it
/// sends itself now: nothing else arrived before it.
async fn assert_nothing_received_before_marker() {
    within(LONG, "send a marker to myself", gproc::send(me(), "marker"))
        .await
        .expect("send a marker to myself");
    let m = within(LONG, "receive the marker", gproc::receive())
        .await
        .expect("receive");
    assert_eq!(
        describe_msg(&m),
        describe("", me(), me(), b"marker"),
        "a message arrived before the marker"
    );
}

// =======================================================================================
// Roles
// =======================================================================================

fn arg<'a>(args: &'a [(String, String)], key: &str) -> Option<&'a str> {
    args.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn has(args: &[(String, String)], key: &str) -> bool {
    arg(args, key).is_some()
}

/// Installs a `Config` from `max=<bytes>`, `cap=<messages>`, `allow=<uid>[,<uid>…]`.
fn install_role_config(args: &[(String, String)]) {
    let mut config = Config::new();
    let mut any = false;
    for (k, v) in args {
        match k.as_str() {
            "max" => config = config.max_message_size(v.parse().expect("max=<bytes>")),
            "cap" => config = config.queue_capacity(v.parse().expect("cap=<messages>")),
            "allow" => {
                for uid in v.split(',') {
                    config = config.allow_uid(uid.parse().expect("allow=<uid>"));
                }
            }
            _ => continue,
        }
        any = true;
    }
    if any {
        config.install().expect("install the peer's Config");
    }
}

/// `groups=a,b` (default: the default group only); `groups=,g` is `""` and `"g"`.
fn role_groups(args: &[(String, String)]) -> Vec<String> {
    match arg(args, "groups") {
        Some(g) => g.split(',').map(str::to_owned).collect(),
        None => vec![String::new()],
    }
}

/// Listens, then sends every message it receives back to its sender, in the same group.
fn role_echo() {
    let args = role_args();
    install_role_config(&args);
    exit_when_stdin_closes();
    block_on(async {
        gproc::listen().await.expect("echo: listen");
        ready();
        let mut tasks = Vec::new();
        for group in role_groups(&args) {
            tasks.push(tokio::spawn(async move {
                loop {
                    let m = gproc::receive_group(&group).await.expect("echo: receive");
                    if let Err(e) = gproc::send_group(m.sender_pid, &group, m.data).await {
                        eprintln!("echo: cannot answer {}: {e}", m.sender_pid);
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("echo task");
        }
    });
}

/// Listens, then prints a line (see [`describe`]) for every message it receives.
/// `hold`: waits for a line on stdin before receiving anything.
fn role_report() {
    let args = role_args();
    install_role_config(&args);
    block_on(async {
        gproc::listen().await.expect("report: listen");
        ready();
        if has(&args, "hold") {
            read_line();
        }
        exit_when_stdin_closes();
        let mut tasks = Vec::new();
        for group in role_groups(&args) {
            tasks.push(tokio::spawn(async move {
                loop {
                    let m = gproc::receive_group(&group).await.expect("report: receive");
                    say(&describe_msg(&m));
                }
            }));
        }
        for t in tasks {
            t.await.expect("report task");
        }
    });
}

/// Counts messages `"<task>:<n>"` until `"end"`, then prints how many, how many distinct,
/// and how many arrived out of order within their task.
fn role_count() {
    exit_when_stdin_closes();
    block_on(async {
        gproc::listen().await.expect("count: listen");
        ready();
        let (mut total, mut disordered) = (0usize, 0usize);
        let mut seen = HashSet::new();
        let mut last: HashMap<String, u64> = HashMap::new();
        loop {
            let m = gproc::receive().await.expect("count: receive");
            if m.data == "end" {
                break;
            }
            total += 1;
            let text = String::from_utf8_lossy(&m.data).into_owned();
            if let Some((task, n)) = text.split_once(':') {
                let n: u64 = n.parse().unwrap_or(0);
                if last.get(task).is_some_and(|&prev| prev >= n) {
                    disordered += 1;
                }
                last.insert(task.to_owned(), n);
            }
            seen.insert(text);
        }
        say(&format!(
            "count total={total} distinct={} disordered={disordered}",
            seen.len()
        ));
    });
}

/// Receives little-endian u64 sequence numbers until `"end"`; prints how many, and the
/// first one that was not the next expected.
fn role_seq() {
    exit_when_stdin_closes();
    block_on(async {
        gproc::listen().await.expect("seq: listen");
        ready();
        let mut received = 0u64;
        let mut first_mismatch = None;
        loop {
            let m = gproc::receive().await.expect("seq: receive");
            if m.data == "end" {
                break;
            }
            let n = <[u8; 8]>::try_from(&m.data[..])
                .map(u64::from_le_bytes)
                .ok();
            if n != Some(received) && first_mismatch.is_none() {
                first_mismatch = Some((received, n));
            }
            received += 1;
        }
        say(&format!(
            "seq received={received} first_mismatch={first_mismatch:?}"
        ));
    });
}

/// Listens and receives slowly (a few milliseconds per message), printing `"got"` for each.
fn role_slow() {
    let args = role_args();
    install_role_config(&args);
    exit_when_stdin_closes();
    block_on(async {
        gproc::listen().await.expect("slow: listen");
        ready();
        loop {
            gproc::receive().await.expect("slow: receive");
            say("got");
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });
}

/// `target=<pid>` then items `send:<data>` (gproc::send) or `group:<group>:<data>`
/// (gproc::send_group); prints `ok` or `err <Debug>` for each, in order.
fn role_sendto() {
    let args = role_args();
    install_role_config(&args);
    let target: u32 = arg(&args, "target")
        .expect("target=<pid>")
        .parse()
        .expect("target pid");
    let items: Vec<(Option<String>, String)> = std::env::args()
        .skip(1)
        .filter_map(|a| {
            if let Some(data) = a.strip_prefix("send:") {
                Some((None, data.to_owned()))
            } else {
                let (group, data) = a.strip_prefix("group:")?.split_once(':')?;
                Some((Some(group.to_owned()), data.to_owned()))
            }
        })
        .collect();
    block_on(async {
        for (group, data) in items {
            let sent = match group {
                None => gproc::send(target, data).await,
                Some(group) => gproc::send_group(target, &group, data).await,
            };
            match sent {
                Ok(()) => say("ok"),
                Err(e) => say(&format!("err {e:?}")),
            }
        }
    });
}

/// Never touches gproc: prints `started` and waits for stdin to close.
fn role_idle() {
    say("started");
    while read_line().is_some() {}
}

/// Exits at once.
fn role_exit() {}

/// Prints what gproc says about this process's identity.
fn role_identity() {
    say(&format!(
        "is_child={} ppid={} ppid_os={} pid={}",
        gproc::is_child(),
        gproc::ppid(),
        gproc::ppid_os(),
        gproc::pid()
    ));
}

/// Listens, says ready, waits for a line, then exits: `mode=return` returns from `main`,
/// `mode=exit` calls `std::process::exit(0)`.
fn role_listen_then_exit() {
    let args = role_args();
    gproc::blocking::listen().expect("listen");
    ready();
    read_line();
    match arg(&args, "mode") {
        Some("exit") => std::process::exit(0),
        Some("return") => {}
        other => panic!("mode={other:?}"),
    }
}

/// Connects to the socket `path=<path>` by hand and prints the handshake status the
/// endpoint answers before anything is sent (status byte 6 of the welcome, see
/// `gproc-runtime/src/wire.rs`: 0 ok, 2 denied), then whether it closed the connection.
fn role_rawconnect() {
    use std::io::Read;
    let args = role_args();
    let path = arg(&args, "path").expect("path=<socket>");
    let mut stream = match std::os::unix::net::UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) => {
            say(&format!("connect failed: {e}"));
            return;
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set_read_timeout");
    let mut welcome = [0u8; 28];
    if let Err(e) = stream.read_exact(&mut welcome) {
        say(&format!("no welcome: {e}"));
        return;
    }
    say(&format!(
        "welcome magic={} status={}",
        &welcome[..4] == b"GPRC",
        welcome[6]
    ));
    let mut more = [0u8; 1];
    match stream.read(&mut more) {
        Ok(0) => say("closed"),
        Ok(_) => say("more data"),
        Err(e) => say(&format!("read error: {e}")),
    }
}

// =======================================================================================
// Identity
// =======================================================================================

fn identity_pid_and_os_parent() {
    assert_eq!(gproc::pid(), std::process::id());

    let stat_ppid: u32 = proc_stat(me())[4 - 3].parse().expect("ppid field");
    let getppid = rustix::process::getppid()
        .map(|p| p.as_raw_nonzero().get() as u32)
        .unwrap_or(0);
    assert_eq!(stat_ppid, getppid);
    assert_eq!(gproc::ppid_os(), stat_ppid, "ppid_os() is the OS parent");
    assert_eq!(
        gproc::ppid_os(),
        harness_pid(),
        "the harness started this process"
    );

    assert!(std::env::var_os(gproc::ENV_PPID).is_none());
    assert!(!gproc::is_child(), "no GPROC_PPID: not a child");
    assert_eq!(
        gproc::ppid(),
        gproc::ppid_os(),
        "not a child: ppid() is the OS parent"
    );
}

fn identity_child_sees_gproc_ppid() {
    // GPROC_PPID naming the process that started it: a gproc child of it.
    let child = PeerBuilder::new("identity")
        .env(gproc::ENV_PPID, me().to_string())
        .spawn();
    child.expect_line(&format!(
        "is_child=true ppid={0} ppid_os={0} pid={1}",
        me(),
        child.pid()
    ));

    // GPROC_PPID naming an ancestor (the harness, our own parent), as a process started
    // by a gproc child without gproc inherits it: not a claim, so not a child.
    let inherited = PeerBuilder::new("identity")
        .env(gproc::ENV_PPID, harness_pid().to_string())
        .spawn();
    inherited.expect_line(&format!(
        "is_child=false ppid={0} ppid_os={0} pid={1}",
        me(),
        inherited.pid()
    ));

    let plain = spawn_peer("identity", &[]);
    plain.expect_line(&format!(
        "is_child=false ppid={0} ppid_os={0} pid={1}",
        me(),
        plain.pid()
    ));
}

fn identity_start_time_is_os_start() {
    let t0 = SystemTime::now();
    let first = gproc::start_time();
    let second = gproc::start_time();
    assert_eq!(first, second, "start_time() is the same on every call");
    assert!(
        first <= t0,
        "start_time() {first:?} is later than a point taken before it was first called ({t0:?}): \
         it is not the process's start"
    );
    // btime has a resolution of one second.
    let spawned = spawned_at();
    assert!(
        first + Duration::from_millis(1500) >= spawned,
        "start_time() {first:?} is long before the harness spawned this process ({spawned:?})"
    );
    let os = os_start_time();
    let diff = abs_diff(first, os);
    assert!(
        diff <= Duration::from_millis(1100),
        "start_time() {first:?} is {diff:?} away from the start in /proc ({os:?})"
    );
}

fn identity_uptime_grows() {
    let u1 = gproc::uptime();
    let since_spawn = SystemTime::now()
        .duration_since(spawned_at())
        .unwrap_or_default();
    assert!(
        u1 + Duration::from_millis(1500) >= since_spawn,
        "uptime {u1:?} is shorter than the time since the harness spawned us ({since_spawn:?})"
    );
    assert!(
        u1 < Duration::from_secs(60),
        "uptime {u1:?} of a process that just started"
    );
    let measured = Instant::now();
    std::thread::sleep(Duration::from_millis(50));
    let u2 = gproc::uptime();
    let elapsed = measured.elapsed();
    assert!(
        u2 >= u1 + elapsed - Duration::from_millis(20),
        "uptime went from {u1:?} to {u2:?} in {elapsed:?}"
    );
}

// =======================================================================================
// Endpoint
// =======================================================================================

fn endpoint_socket_file() {
    block_on(listen());
    let path = socket_path(me());
    let meta = std::fs::symlink_metadata(&path)
        .unwrap_or_else(|e| panic!("{} after listen(): {e}", path.display()));
    assert!(
        meta.file_type().is_socket(),
        "{} is not a socket",
        path.display()
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");
    assert_eq!(
        meta.uid(),
        rustix::process::getuid().as_raw(),
        "socket owner"
    );
}

fn endpoint_listen_twice() {
    block_on(async {
        listen().await;
        let ino = std::fs::metadata(socket_path(me())).expect("socket").ino();
        gproc::listen().await.expect("a second listen() is Ok");
        gproc::listen().await.expect("a third listen() is Ok");
        assert_eq!(
            std::fs::metadata(socket_path(me())).expect("socket").ino(),
            ino,
            "listen() again rebound the socket"
        );
        // Still one working endpoint.
        assert_nothing_received_before_marker().await;
    });
    gproc::blocking::listen().expect("blocking::listen() after listen() is Ok");
}

fn endpoint_creates_missing_dir() {
    let dir = gproc_dir().join("made").join("by-gproc");
    assert!(!dir.exists());
    std::env::set_var(gproc::ENV_DIR, &dir);
    block_on(listen());
    let meta = std::fs::symlink_metadata(&dir).expect("listen() created GPROC_DIR");
    assert!(meta.is_dir());
    assert_eq!(mode_of(&dir), 0o700, "mode of the directory gproc created");
    assert_eq!(meta.uid(), rustix::process::getuid().as_raw());
    assert!(
        std::fs::symlink_metadata(dir.join(format!("{}.sock", me())))
            .expect("socket in the new directory")
            .file_type()
            .is_socket()
    );
}

fn endpoint_symlink_dir_refused() {
    let base = gproc_dir();
    let real = base.join("real");
    std::fs::create_dir(&real).expect("mkdir real");
    set_mode(&real, 0o700);
    let link = base.join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    std::env::set_var(gproc::ENV_DIR, &link);
    block_on(async {
        match gproc::listen().await {
            Err(Error::Directory { path, reason }) => {
                assert_eq!(path, link, "the error names the refused directory");
                assert!(!reason.is_empty());
                println!("refused as expected: {reason}");
            }
            other => panic!(
                "listen() with a symlinked GPROC_DIR: expected Error::Directory, got {other:?}"
            ),
        }
        match within(LONG, "receive", gproc::receive()).await {
            Err(Error::Directory { .. }) => {}
            other => panic!(
                "receive() with a symlinked GPROC_DIR: expected Error::Directory, got {other:?}"
            ),
        }
        // Sending has no endpoint of its own to bind: it may refuse the directory, or find
        // no endpoint behind it; it must not succeed.
        match within(LONG, "send", gproc::send(me(), "x")).await {
            Err(Error::Directory { .. }) | Err(Error::NotListening(_)) => {}
            other => panic!(
                "send() to myself with a symlinked GPROC_DIR: expected Error::Directory or \
                 NotListening, got {other:?}"
            ),
        }
    });
    assert_eq!(
        std::fs::read_dir(&real).expect("read_dir").count(),
        0,
        "nothing may be created through the symlink"
    );
}

fn endpoint_foreign_dir_refused() {
    if !is_root() {
        skip("not running as root: cannot give a directory to another uid");
    }
    let dir = gproc_dir().join("foreign");
    std::fs::create_dir(&dir).expect("mkdir");
    set_mode(&dir, 0o700);
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).expect("chown");
    std::env::set_var(gproc::ENV_DIR, &dir);
    block_on(async {
        match gproc::listen().await {
            Err(Error::Directory { path, reason }) => {
                assert_eq!(path, dir);
                println!("refused as expected: {reason}");
            }
            other => panic!(
                "listen() in a directory owned by uid {NOBODY}: expected Error::Directory, got {other:?}"
            ),
        }
    });
    assert_eq!(std::fs::read_dir(&dir).expect("read_dir").count(), 0);
}

fn endpoint_xdg_runtime_dir_fallback() {
    let xdg = gproc_dir().join("xdg-runtime");
    std::fs::create_dir(&xdg).expect("mkdir");
    set_mode(&xdg, 0o700);
    std::env::remove_var(gproc::ENV_DIR);
    std::env::set_var("XDG_RUNTIME_DIR", &xdg);
    block_on(listen());
    let dir = xdg.join("gproc");
    let socket = dir.join(format!("{}.sock", me()));
    assert!(std::fs::symlink_metadata(&socket)
        .unwrap_or_else(|e| panic!("{}: {e}", socket.display()))
        .file_type()
        .is_socket());
    assert_eq!(mode_of(&dir), 0o700, "mode of $XDG_RUNTIME_DIR/gproc");
}

fn endpoint_tmp_fallback() {
    std::env::remove_var(gproc::ENV_DIR);
    std::env::remove_var("XDG_RUNTIME_DIR");
    let uid = rustix::process::getuid().as_raw();
    let dir = std::path::PathBuf::from(format!("/tmp/gproc-{uid}"));
    block_on(listen());
    let socket = dir.join(format!("{}.sock", me()));
    let meta =
        std::fs::symlink_metadata(&socket).unwrap_or_else(|e| panic!("{}: {e}", socket.display()));
    assert!(meta.file_type().is_socket());
    let dir_meta = std::fs::symlink_metadata(&dir).expect("stat the directory");
    assert!(dir_meta.is_dir() && dir_meta.uid() == uid);
    // The socket file goes when this process exits; nothing else is left in /tmp by us.
}

fn endpoint_stale_socket_replaced() {
    let path = socket_path(me());
    // What a dead process with our PID would have left: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind a stale socket"));
    assert!(path.exists());
    assert_eq!(
        std::os::unix::net::UnixStream::connect(&path)
            .expect_err("nobody listens on the stale socket")
            .kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    block_on(async {
        gproc::listen()
            .await
            .expect("listen() replaces a stale socket file at its own path");
        assert_nothing_received_before_marker().await;
    });
}

fn endpoint_clean_exit_removes_socket() {
    for mode in ["return", "exit"] {
        let mut peer = spawn_peer("listen_then_exit", &[&format!("mode={mode}")]);
        peer.wait_until_listening(PEER_TIMEOUT);
        let path = socket_path(peer.pid());
        peer.write_line("exit");
        let status = peer.wait(PEER_TIMEOUT);
        assert!(status.success(), "peer (mode={mode}) exited with {status}");
        assert!(
            !path.exists(),
            "{} is still there after the peer exited cleanly (mode={mode})",
            path.display()
        );
    }
}

// =======================================================================================
// Delivery
// =======================================================================================

fn delivery_echo() {
    let echo = spawn_peer("echo", &[]);
    echo.wait_until_listening(PEER_TIMEOUT);
    // No explicit listen(): the endpoint is bound on first use, so the echo can answer.
    block_on(roundtrip(echo.pid(), "hello"));
}

fn delivery_groups_are_separate() {
    block_on(listen());
    let peer = spawn_peer(
        "sendto",
        &[
            &format!("target={}", me()),
            "group:a:to-a",
            "send:to-default",
            "group::via-empty-group",
            "group:b:to-b",
        ],
    );
    for _ in 0..4 {
        peer.expect_line("ok");
    }
    let from = peer.pid();
    block_on(async {
        // "to-a" was sent (and acknowledged) first, but receive() sees the default group only.
        let m = within(LONG, "receive", gproc::receive())
            .await
            .expect("receive");
        assert_eq!(describe_msg(&m), describe("", from, me(), b"to-default"));
        let m = within(LONG, "receive", gproc::receive())
            .await
            .expect("receive");
        assert_eq!(
            describe_msg(&m),
            describe("", from, me(), b"via-empty-group")
        );
        let m = within(LONG, "receive_group(b)", gproc::receive_group("b"))
            .await
            .expect("receive_group");
        assert_eq!(describe_msg(&m), describe("b", from, me(), b"to-b"));
        let m = within(LONG, "receive_group(a)", gproc::receive_group("a"))
            .await
            .expect("receive_group");
        assert_eq!(describe_msg(&m), describe("a", from, me(), b"to-a"));
        // Nothing else is left in the default group.
        assert_nothing_received_before_marker().await;
    });
}

fn delivery_msg_fields() {
    let peer = spawn_peer("report", &["groups=,g"]);
    peer.wait_until_listening(PEER_TIMEOUT);
    let to = peer.pid();
    block_on(async {
        gproc::send(to, "plain").await.expect("send");
        gproc::send_group(to, "g", "grouped")
            .await
            .expect("send_group");
        gproc::send_group(to, "", "empty-group")
            .await
            .expect("send_group \"\"");
    });
    // The peer receives each group in its own task: lines of different groups may
    // interleave, lines of one group keep their order.
    let lines: Vec<String> = (0..3).map(|_| peer.line()).collect();
    let default: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("msg group=\"\""))
        .collect();
    let g: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("msg group=\"g\""))
        .collect();
    assert_eq!(
        default,
        [
            &describe("", me(), to, b"plain"),
            &describe("", me(), to, b"empty-group")
        ],
        "all lines: {lines:?}"
    );
    assert_eq!(
        g,
        [&describe("g", me(), to, b"grouped")],
        "all lines: {lines:?}"
    );
}

fn delivery_order_10000() {
    const N: u64 = 10_000;
    let peer = spawn_peer("seq", &[]);
    peer.wait_until_listening(PEER_TIMEOUT);
    let to = peer.pid();
    block_on(within(Duration::from_secs(60), "10,000 sends", async {
        for i in 0..N {
            gproc::send(to, i.to_le_bytes().to_vec())
                .await
                .unwrap_or_else(|e| panic!("send #{i}: {e}"));
        }
        gproc::send(to, "end").await.expect("send end");
    }));
    peer.expect_line(&format!("seq received={N} first_mismatch=None"));
}

fn delivery_large_8mib() {
    let data: Vec<u8> = (0..8usize << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let echo = spawn_peer("echo", &[]);
    echo.wait_until_listening(PEER_TIMEOUT);
    block_on(async {
        within(LONG, "send 8 MiB", gproc::send(echo.pid(), data.clone()))
            .await
            .expect("send 8 MiB");
        let m = within(LONG, "receive 8 MiB", gproc::receive())
            .await
            .expect("receive 8 MiB");
        assert_eq!(m.sender_pid, echo.pid());
        assert_eq!(m.data.len(), data.len(), "length of the echoed message");
        if let Some(at) = m.data.iter().zip(&data).position(|(a, b)| a != b) {
            panic!("the echoed 8 MiB differ first at byte {at}");
        }
    });
}

fn delivery_concurrent_64_tasks() {
    const TASKS: usize = 64;
    const EACH: usize = 50;
    let peer = spawn_peer("count", &[]);
    peer.wait_until_listening(PEER_TIMEOUT);
    let to = peer.pid();
    block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                tokio::spawn(async move {
                    for n in 0..EACH {
                        gproc::send(to, format!("{t}:{n}"))
                            .await
                            .map_err(|e| format!("task {t}, message {n}: {e}"))?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for task in tasks {
            within(LONG, "a sending task", task)
                .await
                .expect("task panicked")
                .unwrap_or_else(|e| panic!("{e}"));
        }
        gproc::send(to, "end").await.expect("send end");
    });
    let total = TASKS * EACH;
    peer.expect_line(&format!(
        "count total={total} distinct={total} disordered=0"
    ));
}

// =======================================================================================
// Errors
// =======================================================================================

/// Sends to `pid` and checks that it fails fast with `NoSuchProcess(pid)`.
async fn expect_no_such_process(pid: u32) {
    let started = Instant::now();
    let sent = within(LONG, "send to a dead PID", gproc::send(pid, "anyone?")).await;
    let took = started.elapsed();
    assert!(
        matches!(sent, Err(Error::NoSuchProcess(p)) if p == pid),
        "send to dead PID {pid}: expected NoSuchProcess({pid}), got {sent:?}"
    );
    assert!(took < FAST, "send to dead PID {pid} took {took:?}");
    let sent = within(
        LONG,
        "send_group to a dead PID",
        gproc::send_group(pid, "g", "x"),
    )
    .await;
    assert!(
        matches!(sent, Err(Error::NoSuchProcess(p)) if p == pid),
        "send_group to dead PID {pid}: expected NoSuchProcess({pid}), got {sent:?}"
    );
}

fn errors_dead_pid() {
    let mut peer = spawn_peer("exit", &[]);
    let pid = peer.pid();
    assert!(peer.wait(PEER_TIMEOUT).success());
    block_on(expect_no_such_process(pid));
}

fn errors_pid_out_of_range() {
    // PIDs above i32::MAX do not exist; u32::MAX is -1 as a pid_t, which kill(2) reads as
    // "every process".
    block_on(async {
        for pid in [u32::MAX, 3_000_000_000, i32::MAX as u32 + 1] {
            expect_no_such_process(pid).await;
        }
    });
}

fn errors_killed_peer_stale_socket() {
    // Bind first: our own bind sweeps files of dead processes, and this test is about a
    // file left after that.
    block_on(listen());

    // No connection to it yet.
    let mut peer = spawn_peer("echo", &[]);
    peer.wait_until_listening(PEER_TIMEOUT);
    let pid = peer.pid();
    peer.kill();
    assert!(
        socket_path(pid).exists(),
        "precondition: a SIGKILLed process leaves its socket file"
    );
    block_on(expect_no_such_process(pid));

    // With a connection open when it dies.
    let mut peer = spawn_peer("echo", &[]);
    peer.wait_until_listening(PEER_TIMEOUT);
    let pid = peer.pid();
    block_on(roundtrip(pid, "before the kill"));
    peer.kill();
    block_on(async {
        let started = Instant::now();
        let sent = within(LONG, "send to a killed peer", gproc::send(pid, "after")).await;
        assert!(
            matches!(
                sent,
                Err(Error::ConnectionLost) | Err(Error::NoSuchProcess(_))
            ),
            "send to a killed peer: {sent:?}"
        );
        assert!(started.elapsed() < FAST, "took {:?}", started.elapsed());
        // Once the connection is known to be gone, the next send says the process is gone.
        expect_no_such_process(pid).await;
    });
}

fn errors_not_listening() {
    let idle = spawn_peer("idle", &[]);
    idle.expect_line("started");
    block_on(async {
        let started = Instant::now();
        let sent = within(
            LONG,
            "send to a PID without endpoint",
            gproc::send(idle.pid(), "x"),
        )
        .await;
        let took = started.elapsed();
        assert!(
            matches!(sent, Err(Error::NotListening(p)) if p == idle.pid()),
            "expected NotListening({}), got {sent:?}",
            idle.pid()
        );
        assert!(took < FAST, "took {took:?}");
    });
}

fn errors_too_large_for_sender() {
    Config::new()
        .max_message_size(1024)
        .install()
        .expect("install");
    let peer = spawn_peer("report", &[]);
    peer.wait_until_listening(PEER_TIMEOUT);
    let to = peer.pid();
    block_on(async {
        let sent = gproc::send(to, vec![7u8; 1025]).await;
        assert!(
            matches!(
                sent,
                Err(Error::MessageTooLarge {
                    size: 1025,
                    limit: 1024
                })
            ),
            "1025 bytes with a limit of 1024: {sent:?}"
        );
        let sent = gproc::send_group(to, "g", vec![7u8; 1 << 20]).await;
        assert!(
            matches!(sent, Err(Error::MessageTooLarge { size, limit: 1024 }) if size == 1 << 20),
            "1 MiB with a limit of 1024: {sent:?}"
        );
        within(LONG, "send", gproc::send(to, "small"))
            .await
            .expect("small message");
        within(LONG, "send", gproc::send(to, vec![b'x'; 1024]))
            .await
            .expect("a message of exactly the limit");
    });
    peer.expect_line(&describe("", me(), to, b"small"));
    peer.expect_line(&describe("", me(), to, &[b'x'; 1024]));
}

fn errors_too_large_for_receiver() {
    let peer = spawn_peer("report", &["max=1000"]);
    peer.wait_until_listening(PEER_TIMEOUT);
    let to = peer.pid();
    block_on(async {
        let sent = within(LONG, "send", gproc::send(to, vec![0u8; 1001])).await;
        assert!(
            matches!(
                sent,
                Err(Error::MessageTooLarge {
                    size: 1001,
                    limit: 1000
                })
            ),
            "1001 bytes to a receiver with a limit of 1000: {sent:?}"
        );
        within(LONG, "send", gproc::send(to, "small"))
            .await
            .expect("small message");
        within(LONG, "send", gproc::send(to, vec![b'y'; 1000]))
            .await
            .expect("a message of exactly the receiver's limit");
    });
    peer.expect_line(&describe("", me(), to, b"small"));
    peer.expect_line(&describe("", me(), to, &[b'y'; 1000]));
}

fn errors_reserved_group() {
    block_on(async {
        for group in ["gproc/x", "gproc/", "gproc/rpc/Calculator"] {
            let sent = within(LONG, "send_group", gproc::send_group(me(), group, "x")).await;
            assert!(
                matches!(sent, Err(Error::ReservedGroup)),
                "send_group({group:?}): {sent:?}"
            );
            let got = within(LONG, "receive_group", gproc::receive_group(group)).await;
            assert!(
                matches!(got, Err(Error::ReservedGroup)),
                "receive_group({group:?}): {got:?}"
            );
        }
        // Only the prefix "gproc/" is reserved.
        for group in ["gproc", "gproc-x", "x/gproc/"] {
            within(
                LONG,
                "send_group",
                gproc::send_group(me(), group, group.to_owned()),
            )
            .await
            .unwrap_or_else(|e| panic!("send_group({group:?}): {e}"));
            let m = within(LONG, "receive_group", gproc::receive_group(group))
                .await
                .unwrap_or_else(|e| panic!("receive_group({group:?}): {e}"));
            assert_eq!(
                describe_msg(&m),
                describe(group, me(), me(), group.as_bytes())
            );
        }
    });
    let sent = gproc::blocking::send_group(me(), "gproc/x", "x");
    assert!(
        matches!(sent, Err(Error::ReservedGroup)),
        "blocking::send_group: {sent:?}"
    );
    let got = blocking_within(LONG, "blocking::receive_group", || {
        gproc::blocking::receive_group("gproc/x")
    });
    assert!(
        matches!(got, Err(Error::ReservedGroup)),
        "blocking::receive_group: {got:?}"
    );
}

fn errors_full_queue_backpressure() {
    const CAPACITY: usize = 4;
    const TOTAL: usize = 12;
    let mut peer = spawn_peer("report", &[&format!("cap={CAPACITY}"), "hold"]);
    peer.wait_until_listening(PEER_TIMEOUT);
    let to = peer.pid();
    block_on(async {
        for i in 1..=CAPACITY {
            within(
                LONG,
                "a send that fits in the queue",
                gproc::send(to, format!("m{i}")),
            )
            .await
            .expect("send");
        }
        let completed = Arc::new(AtomicUsize::new(0));
        let done = completed.clone();
        let mut rest = tokio::spawn(async move {
            for i in CAPACITY + 1..=TOTAL {
                gproc::send(to, format!("m{i}")).await?;
                done.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<(), Error>(())
        });
        // Asserting that it is *still pending*: a short wait is enough.
        let waited = tokio::time::timeout(Duration::from_millis(300), &mut rest).await;
        assert!(
            waited.is_err(),
            "the send after the receiver's queue of {CAPACITY} filled up did not wait: {waited:?}"
        );
        assert_eq!(
            completed.load(Ordering::SeqCst),
            0,
            "a send completed while the queue was full"
        );

        peer.write_line("go");
        within(
            LONG,
            "the waiting sends once the receiver drains",
            &mut rest,
        )
        .await
        .expect("sending task")
        .expect("sends after the receiver started receiving");
    });
    for i in 1..=TOTAL {
        peer.expect_line(&describe("", me(), to, format!("m{i}").as_bytes()));
    }
}

fn errors_receiver_killed_mid_stream() {
    const TASKS: usize = 64;
    let mut peer = spawn_peer("slow", &["cap=8"]);
    peer.wait_until_listening(PEER_TIMEOUT);
    let pid = peer.pid();
    block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                tokio::spawn(async move {
                    let mut delivered = 0usize;
                    loop {
                        match gproc::send(pid, vec![t as u8; 1024]).await {
                            Ok(()) => delivered += 1,
                            Err(e) => return (delivered, e),
                        }
                    }
                })
            })
            .collect();
        // The stream is flowing once the receiver has taken a few messages.
        for _ in 0..20 {
            assert_eq!(peer.line(), "got");
        }
        peer.kill();
        let mut lost = 0;
        for (t, task) in tasks.into_iter().enumerate() {
            let (delivered, e) =
                within(LONG, "a send in flight when the receiver was killed", task)
                    .await
                    .expect("sending task panicked");
            match e {
                Error::ConnectionLost => lost += 1,
                Error::NoSuchProcess(p) | Error::NotListening(p) if p == pid => {}
                other => {
                    panic!("task {t} (after {delivered} delivered): unexpected error {other:?}")
                }
            }
        }
        assert!(
            lost > 0,
            "no send that was in flight reported ConnectionLost"
        );
        println!("{lost} of {TASKS} tasks had a send in flight: ConnectionLost");
    });
}

fn errors_uid_denied() {
    require_other_uid();
    block_on(listen());
    set_mode(&gproc_dir(), 0o755);
    // The sender accepts our uid as a receiver, so a refusal is the receiver's.
    let sender = PeerBuilder::new_as("sendto", NOBODY)
        .args([
            format!("target={}", me()),
            format!("allow={}", rustix::process::getuid().as_raw()),
            "send:from-nobody".to_owned(),
        ])
        .spawn();
    let result = sender.line();
    assert_eq!(
        result, "err PermissionDenied",
        "uid {NOBODY} sending to an endpoint that accepts only its own uid"
    );
    block_on(assert_nothing_received_before_marker());
}

fn errors_uid_allowed() {
    require_other_uid();
    Config::new().allow_uid(NOBODY).install().expect("install");
    block_on(listen());
    set_mode(&gproc_dir(), 0o755);
    let socket_mode = mode_of(&socket_path(me()));
    assert_eq!(
        socket_mode & 0o006,
        0o006,
        "with allow_uid the socket is accessible to other users (mode {socket_mode:o})"
    );
    let sender = PeerBuilder::new_as("sendto", NOBODY)
        .args([
            format!("target={}", me()),
            format!("allow={}", rustix::process::getuid().as_raw()),
            "send:from-nobody".to_owned(),
        ])
        .spawn();
    let result = sender.line();
    assert_eq!(
        result, "ok",
        "uid {NOBODY} sending to an endpoint that allows it"
    );
    block_on(async {
        let m = within(LONG, "receive", gproc::receive())
            .await
            .expect("receive");
        assert_eq!(
            describe_msg(&m),
            describe("", sender.pid(), me(), b"from-nobody")
        );
    });
}

fn errors_uid_refused_at_handshake() {
    require_other_uid();
    // Another uid is allowed, so the socket file is open to everyone: the refusal must come
    // from the credentials check, not from file permissions.
    Config::new()
        .allow_uid(NOBODY - 1)
        .install()
        .expect("install");
    block_on(listen());
    set_mode(&gproc_dir(), 0o755);
    let client = PeerBuilder::new_as("rawconnect", NOBODY)
        .arg(format!("path={}", socket_path(me()).display()))
        .spawn();
    client.expect_line("welcome magic=true status=2");
    client.expect_line("closed");
    block_on(assert_nothing_received_before_marker());
}

// =======================================================================================
// Runtimes
// =======================================================================================

fn runtimes_current_thread() {
    let echo = spawn_peer("echo", &[]);
    echo.wait_until_listening(PEER_TIMEOUT);
    current_thread_runtime().block_on(async {
        roundtrip(echo.pid(), "current-thread").await;
        let pid = echo.pid();
        tokio::spawn(async move { roundtrip(pid, "spawned on current-thread").await })
            .await
            .expect("task");
    });
}

fn runtimes_multi_thread() {
    let echo = spawn_peer("echo", &[]);
    echo.wait_until_listening(PEER_TIMEOUT);
    runtime().block_on(async {
        roundtrip(echo.pid(), "multi-thread").await;
        let pid = echo.pid();
        tokio::spawn(async move { roundtrip(pid, "spawned on multi-thread").await })
            .await
            .expect("task");
    });
}

fn runtimes_dropped_and_recreated() {
    let echo = spawn_peer("echo", &["groups=,late"]);
    echo.wait_until_listening(PEER_TIMEOUT);
    let pid = echo.pid();

    let rt = runtime();
    rt.block_on(roundtrip(pid, "first runtime"));
    // Receives cancelled with their runtime must not swallow a later message.
    rt.block_on(async {
        let waited =
            tokio::time::timeout(Duration::from_millis(20), gproc::receive_group("late")).await;
        assert!(
            waited.is_err(),
            "nothing was sent to \"late\" yet: {waited:?}"
        );
    });
    rt.spawn(async {
        let _ = gproc::receive_group("late").await;
    });
    drop(rt);

    let rt = current_thread_runtime();
    rt.block_on(async {
        roundtrip(pid, "second runtime").await;
        within(LONG, "send_group", gproc::send_group(pid, "late", "late-1"))
            .await
            .expect("send_group");
        let m = within(LONG, "receive_group(late)", gproc::receive_group("late"))
            .await
            .expect("receive_group");
        assert_eq!(describe_msg(&m), describe("late", pid, me(), b"late-1"));
    });
    drop(rt);

    runtime().block_on(roundtrip(pid, "third runtime"));
}

fn runtimes_blocking_api() {
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "no runtime here"
    );
    gproc::blocking::listen().expect("blocking::listen");
    assert!(socket_path(me()).exists());
    let echo = spawn_peer("echo", &["groups=,g"]);
    echo.wait_until_listening(PEER_TIMEOUT);
    let pid = echo.pid();
    blocking_within(LONG, "blocking send/receive", move || {
        gproc::blocking::send(pid, "b1").expect("blocking::send");
        let m = gproc::blocking::receive().expect("blocking::receive");
        assert_eq!(describe_msg(&m), describe("", pid, me(), b"b1"));
        gproc::blocking::send_group(pid, "g", "b2").expect("blocking::send_group");
        let m = gproc::blocking::receive_group("g").expect("blocking::receive_group");
        assert_eq!(describe_msg(&m), describe("g", pid, me(), b"b2"));
    });
    // From the main thread too, and from several threads at once.
    gproc::blocking::send(me(), "to myself").expect("blocking::send to myself");
    let m = blocking_within(LONG, "blocking::receive", gproc::blocking::receive).expect("receive");
    assert_eq!(describe_msg(&m), describe("", me(), me(), b"to myself"));
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                gproc::blocking::send_group(me(), "threads", format!("t{t}")).expect("send")
            });
        }
    });
    let mut got: Vec<String> = (0..4)
        .map(|_| {
            let m = blocking_within(LONG, "blocking::receive_group", || {
                gproc::blocking::receive_group("threads")
            })
            .expect("receive_group");
            String::from_utf8_lossy(&m.data).into_owned()
        })
        .collect();
    got.sort();
    assert_eq!(got, ["t0", "t1", "t2", "t3"]);
}

/// Sends `n=<N>` numbered messages (u64 LE) to `target=<pid>` one after the other, printing
/// `err <i>` for each send that failed, then sends "end" until it is acknowledged and
/// prints `done`.
fn role_stream() {
    let args = role_args();
    let target: u32 = arg(&args, "target")
        .expect("target=<pid>")
        .parse()
        .expect("target pid");
    let n: u64 = arg(&args, "n").expect("n=<count>").parse().expect("count");
    exit_when_stdin_closes();
    block_on(async {
        for i in 0..n {
            if gproc::send(target, i.to_le_bytes().to_vec()).await.is_err() {
                say(&format!("err {i}"));
            }
        }
        while gproc::send(target, "end").await.is_err() {}
        say("done");
    });
}

/// The runtime carrying this process's connections (the first multi-thread one) is dropped
/// while a peer streams to it: every message whose send returned `Ok` is still received,
/// once and in order, afterwards (with no runtime at all), and the stream goes on.
fn runtimes_home_dropped_mid_stream() {
    const N: u64 = 20_000;
    let rt = runtime();
    rt.block_on(gproc::listen()).expect("listen");
    let stream = spawn_peer("stream", &[&format!("target={}", me()), &format!("n={N}")]);
    let mut received = Vec::new();
    rt.block_on(async {
        while received.len() < 1000 {
            let m = within(LONG, "receive", gproc::receive())
                .await
                .expect("receive");
            received.push(u64::from_le_bytes(m.data[..].try_into().expect("8 bytes")));
        }
    });
    drop(rt);
    blocking_within(LONG, "receive the rest", move || {
        loop {
            let m = gproc::blocking::receive().expect("blocking receive");
            if m.data == "end" {
                break;
            }
            received.push(u64::from_le_bytes(m.data[..].try_into().expect("8 bytes")));
        }
        let mut failed = HashSet::new();
        loop {
            let line = stream.line();
            if line == "done" {
                break;
            }
            let i: u64 = line
                .strip_prefix("err ")
                .expect("err <i>")
                .parse()
                .expect("index");
            failed.insert(i);
        }
        assert!(
            received.windows(2).all(|w| w[0] < w[1]),
            "messages arrived out of order or twice"
        );
        let got: HashSet<u64> = received.iter().copied().collect();
        let lost: Vec<u64> = (0..N)
            .filter(|i| !got.contains(i) && !failed.contains(i))
            .collect();
        assert!(lost.is_empty(), "acknowledged but never received: {lost:?}");
        assert!(
            failed.len() < 100,
            "{} sends failed around the runtime's drop",
            failed.len()
        );
    });
}
