//! The `gproc` command against real processes: every subcommand, its JSON, its errors, its
//! columns and colours, and the log an operator turns on.
//!
//! Each test runs in a process of its own with a `GPROC_DIR` of its own (see
//! `tests/support/mod.rs`), which the `gproc` command inherits. Servers are this binary
//! re-executed in the role `server`; the command is the built binary
//! (`CARGO_BIN_EXE_gproc`). Run one test with `cargo test -p gproc-cli --test cli -- ls::`.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::*;

const LONG: Duration = Duration::from_secs(20);

const TESTS: &[(&str, fn())] = &[
    ("ls::lists_live_endpoints", ls_lists_live_endpoints),
    ("ping::by_pid_and_by_name", ping_by_pid_and_name),
    (
        "send::argument_stdin_group_name",
        send_argument_stdin_group_name,
    ),
    (
        "recv::prints_pid_then_messages",
        recv_prints_pid_then_messages,
    ),
    (
        "inspect::services_and_call_lines",
        inspect_services_and_call_lines,
    ),
    (
        "call::json_reply_and_typed_err",
        call_json_reply_and_typed_err,
    ),
    ("errors::one_line_and_nonzero", errors_one_line_and_nonzero),
    (
        "output::colour_only_on_a_terminal",
        output_colour_only_on_a_terminal,
    ),
    (
        "output::rust_log_follows_a_call",
        output_rust_log_follows_a_call,
    ),
];

const ROLES: &[(&str, fn())] = &[("server", role_server), ("idle", role_idle)];

fn main() {
    support::run_tests(TESTS, ROLES);
}

// =======================================================================================
// The service the servers serve
// =======================================================================================

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub item: String,
    pub qty: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShopError {
    OutOfStock { item: String, left: u32 },
}

#[gproc::service]
pub trait Shop {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn order(&self, order: Order) -> Result<u64, ShopError>;
    async fn nap(&self, ms: u64) -> u64;
}

struct MyShop;

impl Shop for MyShop {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn order(&self, order: Order) -> Result<u64, ShopError> {
        if order.qty > 3 {
            return Err(ShopError::OutOfStock {
                item: order.item,
                left: 3,
            });
        }
        Ok(u64::from(order.qty) * 250)
    }

    async fn nap(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

/// Serves `Shop`, holding the name given as `name=N`; prints `ready` once it serves.
fn role_server() {
    exit_when_stdin_closes();
    let name = role_args()
        .into_iter()
        .find_map(|(k, v)| (k == "name").then_some(v));
    runtime().block_on(async move {
        gproc::listen().await.expect("server: listen");
        if let Some(name) = name {
            gproc::register(&name).await.expect("server: register");
        }
        let serving = tokio::spawn(ShopServer::new(MyShop).serve());
        ShopClient::new(gproc::pid())
            .wait_served(LONG)
            .await
            .expect("server: serves");
        ready();
        serving.await.expect("serve task").expect("server: serve");
    });
}

/// A process with no endpoint: it never uses gproc.
fn role_idle() {
    ready();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

// =======================================================================================
// Running the command
// =======================================================================================

fn gproc_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gproc"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    cmd
}

/// Runs `gproc args` to its end (a hang guard bounds it).
fn gproc(args: &[&str]) -> Output {
    run_cmd(gproc_cmd(args), args)
}

fn run_cmd(mut cmd: Command, args: &[&str]) -> Output {
    let what = format!("gproc {}", args.join(" "));
    blocking_within(LONG, &what.clone(), move || {
        cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"))
    })
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The output of a run that must succeed.
#[track_caller]
fn ok(args: &[&str]) -> String {
    let out = gproc(args);
    assert!(
        out.status.success(),
        "gproc {args:?}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// The JSON a run that must succeed printed.
#[track_caller]
fn ok_json(args: &[&str]) -> Value {
    let text = ok(args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("gproc {args:?}: not JSON ({e}): {text}"))
}

/// A run that must fail: its one line on stderr, checked to be one line, and its status.
#[track_caller]
fn fails(args: &[&str]) -> (i32, String) {
    let out = gproc(args);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "gproc {args:?} succeeded: {}",
        stdout(&out)
    );
    assert_eq!(
        err.lines().count(),
        1,
        "gproc {args:?}: one line on stderr: {err:?}"
    );
    assert!(err.starts_with("gproc: error: "), "gproc {args:?}: {err:?}");
    assert!(
        out.stdout.is_empty(),
        "gproc {args:?}: nothing on stdout: {}",
        stdout(&out)
    );
    (
        out.status.code().expect("an exit code"),
        err.trim_end().to_owned(),
    )
}

fn server(args: &[&str]) -> Peer {
    let peer = spawn_peer("server", args);
    peer.wait_until_listening(LONG);
    peer
}

/// A `gproc` process left running, whose stdout lines the test reads as they come.
struct Running {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = gproc_cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gproc");
        let out = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(LONG)
            .expect("a line from gproc within the limit")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait(mut self) -> std::process::ExitStatus {
        blocking_within(LONG, "gproc exits", move || {
            self.child.wait().expect("wait")
        })
    }
}

fn rt() -> tokio::runtime::Runtime {
    current_thread_runtime()
}

/// The column at which `word` starts in `line` (in characters).
fn column(line: &str, word: &str) -> usize {
    let at = line
        .find(word)
        .unwrap_or_else(|| panic!("{word:?} in {line:?}"));
    line[..at].chars().count()
}

// =======================================================================================
// ls
// =======================================================================================

fn ls_lists_live_endpoints() {
    let alpha = server(&["name=alpha"]);
    let plain = server(&[]);
    let idle = spawn_peer("idle", &[]);
    idle.expect_line("ready");
    let dir = gproc_dir();
    // Files no live endpoint stands behind: a dead process's, and one whose PID a process
    // without an endpoint has now.
    let mut dead = spawn_peer("idle", &[]);
    dead.expect_line("ready");
    let dead_pid = dead.pid();
    dead.kill();
    std::fs::write(dir.join(format!("{dead_pid}.sock")), b"").expect("a dead PID's file");
    std::fs::write(dir.join(format!("{}.sock", idle.pid())), b"").expect("a reused PID's file");

    let listing = ok_json(&["ls", "--json"]);
    let list = listing.as_array().expect("an array");
    let pids: Vec<u64> = list
        .iter()
        .map(|e| e["pid"].as_u64().expect("pid"))
        .collect();
    let mut expected = vec![u64::from(alpha.pid()), u64::from(plain.pid())];
    expected.sort_unstable();
    assert_eq!(
        pids, expected,
        "only the live endpoints, in order: {listing}"
    );
    let entry = |pid: u32| {
        list.iter()
            .find(|e| e["pid"] == json!(pid))
            .expect("listed")
    };
    let a = entry(alpha.pid());
    assert_eq!(a["names"], json!(["alpha"]));
    assert_eq!(entry(plain.pid())["names"], json!([]));
    assert_eq!(a["uid"], json!(rustix::process::getuid().as_raw()));
    assert_eq!(a["services"][0]["name"], json!("Shop"));
    assert_eq!(a["error"], Value::Null);
    let uptime = a["uptime_s"].as_f64().expect("uptime");
    assert!((0.0..60.0).contains(&uptime), "{uptime}");
    let exe = std::env::current_exe().expect("exe");
    assert_eq!(a["command"][0], json!(exe.to_string_lossy()), "{a}");

    // For people: a header and one row each, in aligned columns, no colour off a terminal.
    let text = ok(&["ls"]);
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is a pipe: {text:?}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let header = lines[0];
    for word in ["PID", "NAMES", "UID", "UPTIME", "SERVICES", "COMMAND"] {
        assert!(header.contains(word), "{header}");
    }
    let row = lines
        .iter()
        .find(|l| l.starts_with(&alpha.pid().to_string()))
        .expect("alpha's row");
    assert_eq!(column(row, "alpha"), column(header, "NAMES"), "{text}");
    assert_eq!(column(row, "Shop"), column(header, "SERVICES"), "{text}");
    assert_eq!(
        column(row, &exe.to_string_lossy()[..20]),
        column(header, "COMMAND"),
        "{text}"
    );
    assert!(!text.contains(&dead_pid.to_string()), "{text}");
    println!("{text}");

    // --dir names another directory: empty there.
    let other = tempfile::tempdir().expect("a directory");
    let other = other.path().to_str().expect("UTF-8");
    assert_eq!(ok_json(&["--dir", other, "ls", "--json"]), json!([]));
}

// =======================================================================================
// ping
// =======================================================================================

fn ping_by_pid_and_name() {
    let peer = server(&["name=pinged"]);
    let text = ok(&["ping", &peer.pid().to_string(), "-c", "3"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "three round trips and a summary: {text}");
    let summary = lines[3];
    assert!(
        summary.starts_with(&format!("3 round trips to {}: min ", peer.pid()))
            && summary.contains(", median ")
            && summary.contains(", max "),
        "{summary}"
    );
    println!("{text}");

    let stats = ok_json(&["ping", "pinged", "-c", "4", "--json"]);
    assert_eq!(stats["pid"], json!(peer.pid()));
    assert_eq!(stats["count"], json!(4));
    let times = stats["times_us"].as_array().expect("times");
    assert_eq!(times.len(), 4);
    let (min, median, max) = (
        stats["min_us"].as_f64().expect("min"),
        stats["median_us"].as_f64().expect("median"),
        stats["max_us"].as_f64().expect("max"),
    );
    assert!(0.0 < min && min <= median && median <= max, "{stats}");
    let out = gproc(&["ping", "pinged", "-c", "0"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a usage error: {}",
        stderr(&out)
    );
}

// =======================================================================================
// send
// =======================================================================================

fn send_argument_stdin_group_name() {
    let rt = rt();
    rt.block_on(async {
        gproc::listen().await.expect("listen");
        gproc::register("sink").await.expect("register");
    });
    let me = gproc::pid().to_string();

    // From an argument, to a PID.
    let said = ok(&["send", &me, "hello there"]);
    assert_eq!(
        said.trim(),
        format!("delivered 11 bytes to {me} (group \"\")")
    );
    let msg = rt
        .block_on(within(LONG, "receive", gproc::receive()))
        .expect("message");
    assert_eq!(msg.data, "hello there");
    assert_eq!(msg.group, "");

    // From stdin (bytes that are not UTF-8 too), in a group, to a name.
    let data: Vec<u8> = vec![0, 159, 146, 150, b'\n', 255];
    let mut cmd = gproc_cmd(&["send", "sink", "--group", "jobs", "-", "--json"]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("gproc send -");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&data)
        .expect("write stdin");
    let out = blocking_within(LONG, "gproc send -", move || {
        child.wait_with_output().expect("wait")
    });
    assert!(out.status.success(), "{}", stderr(&out));
    let said: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        said,
        json!({"pid": gproc::pid(), "group": "jobs", "bytes": 6})
    );
    let msg = rt
        .block_on(within(LONG, "receive jobs", gproc::receive_group("jobs")))
        .expect("message");
    assert_eq!(msg.data.as_ref(), data.as_slice());
    assert_eq!(msg.group, "jobs");
    assert_ne!(
        msg.sender_pid,
        gproc::pid(),
        "sent by the command's own process"
    );
}

// =======================================================================================
// recv
// =======================================================================================

fn recv_prints_pid_then_messages() {
    let rt = rt();
    // For people: its PID first, then each message with its sender and group.
    let recv = Running::start(&["recv", "-n", "2", "--group", "news"]);
    let first = recv.line();
    assert!(
        first.starts_with(&format!("pid {} ", recv.pid())),
        "{first}"
    );
    let pid = recv.pid();
    rt.block_on(async {
        gproc::send_group(pid, "news", "first").await.expect("send");
        gproc::send_group(pid, "other", "not for it")
            .await
            .expect("send");
        gproc::send_group(pid, "news", "line\nbreak")
            .await
            .expect("send");
    });
    let me = gproc::pid();
    assert_eq!(
        recv.line(),
        format!("from {me} group \"news\" 5 bytes: first")
    );
    assert_eq!(
        recv.line(),
        format!("from {me} group \"news\" 10 bytes: line\\nbreak")
    );
    assert!(recv.wait().success(), "it stops after -n 2");

    // For programs: one JSON line each; it holds a name senders can use.
    let recv = Running::start(&["recv", "-n", "1", "--name", "inbox", "--json"]);
    let head: Value = serde_json::from_str(&recv.line()).expect("JSON");
    assert_eq!(head["pid"], json!(recv.pid()));
    assert_eq!(head["name"], json!("inbox"));
    rt.block_on(async {
        gproc::send_to("inbox", vec![1u8, 2, 255])
            .await
            .expect("send by name");
    });
    let msg: Value = serde_json::from_str(&recv.line()).expect("JSON");
    assert_eq!(
        msg,
        json!({"sender": me, "group": "", "bytes": 3, "data_hex": "0102ff"})
    );
    assert!(recv.wait().success());
}

// =======================================================================================
// inspect
// =======================================================================================

fn inspect_services_and_call_lines() {
    let peer = server(&["name=shop"]);
    let pid = peer.pid();
    let services = rt()
        .block_on(within(LONG, "introspect", gproc::introspect(pid)))
        .expect("introspect");
    let fingerprint = format!("{:016x}", services[0].fingerprint);

    let text = ok(&["inspect", "shop"]);
    println!("{text}");
    assert!(
        text.starts_with(&format!("{pid} (shop) serves 1 service")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Shop  fingerprint {fingerprint}")),
        "{text}"
    );
    for signature in [
        "async fn add(&self, a: i64, b: i64) -> i64",
        "async fn order(&self, order: Order) -> Result<u64, ShopError>",
        "async fn nap(&self, ms: u64) -> u64",
    ] {
        assert!(text.contains(signature), "{signature} in {text}");
    }
    // The call line it shows is one that runs.
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("gproc call shop Shop.add "))
        .expect("a call line for add");
    assert_eq!(line, "gproc call shop Shop.add '[0, 0]'");
    assert_eq!(ok(&["call", "shop", "Shop.add", "[0, 0]"]).trim(), "0");

    let described = ok_json(&["inspect", &pid.to_string(), "--json"]);
    assert_eq!(described["pid"], json!(pid));
    assert_eq!(described["names"], json!(["shop"]));
    let shop = &described["services"][0];
    assert_eq!(shop["name"], json!("Shop"));
    assert_eq!(shop["fingerprint"], json!(fingerprint));
    let order = &shop["methods"][1];
    assert_eq!(order["name"], json!("order"));
    assert_eq!(order["args"], json!([{"name": "order", "type": "Order"}]));
    assert_eq!(order["output"], json!("Result<u64, ShopError>"));
    assert_eq!(order["fallible"], json!(true));
}

// =======================================================================================
// call
// =======================================================================================

fn call_json_reply_and_typed_err() {
    let peer = server(&["name=shop"]);
    let pid = peer.pid().to_string();
    assert_eq!(ok_json(&["call", &pid, "Shop.add", "[40, 2]"]), json!(42));
    // A struct argument; by name.
    let order = r#"[{"item": "tea", "qty": 2}]"#;
    assert_eq!(ok_json(&["call", "shop", "Shop.order", order]), json!(500));
    // A typed Err: its JSON on stdout, status 1.
    let out = gproc(&[
        "call",
        "shop",
        "Shop.order",
        r#"[{"item": "tea", "qty": 9}]"#,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err: Value = serde_json::from_slice(&out.stdout).expect("the Err's JSON");
    assert_eq!(err, json!({"OutOfStock": {"item": "tea", "left": 3}}));
    assert!(
        stderr(&out).contains("Shop.order returned Err"),
        "{}",
        stderr(&out)
    );
}

// =======================================================================================
// errors
// =======================================================================================

fn errors_one_line_and_nonzero() {
    let peer = server(&["name=shop"]);
    let pid = peer.pid().to_string();
    let idle = spawn_peer("idle", &[]);
    idle.expect_line("ready");
    let mut dead = spawn_peer("idle", &[]);
    dead.expect_line("ready");
    let dead_pid = dead.pid().to_string();
    dead.kill();
    let idle_pid = idle.pid().to_string();

    let cases: &[(&[&str], &str)] = &[
        (&["ping", &dead_pid], "is alive; check the PID"),
        (
            &["call", &dead_pid, "Shop.add", "[1, 2]"],
            "no process with PID",
        ),
        (&["inspect", &idle_pid], "has no gproc endpoint"),
        (&["send", &idle_pid, "x"], "has no gproc endpoint"),
        (
            &["call", "nobody", "Shop.add", "[1, 2]"],
            "no process holds the name nobody",
        ),
        (
            &["call", &pid, "Absent.add", "[1, 2]"],
            "does not serve Absent; it serves Shop",
        ),
        (
            &["call", &pid, "Shop.mul", "[1, 2]"],
            "Shop has no method mul; its methods are add, order, nap",
        ),
        (
            &["call", &pid, "Shop.add", "[1, 2"],
            "the arguments are not JSON",
        ),
        (
            &["call", &pid, "Shop.add", r#"{"a": 1}"#],
            "the arguments are a JSON array",
        ),
        (
            &["call", &pid, "Shop.add", "[1]"],
            "add takes 2 arguments [a: i64, b: i64], the call gave 1",
        ),
        (
            &["call", &pid, "Shop.add", r#"[1, "two"]"#],
            "invalid type: string \"two\", expected i64",
        ),
        (
            &["call", &pid, "add", "[1, 2]"],
            "name the method as Service.method",
        ),
        (
            &["call", &pid, "Shop.nap", "[60000]", "--timeout", "200ms"],
            "no answer within 200ms",
        ),
    ];
    for (args, expected) in cases {
        let (code, line) = fails(args);
        assert_eq!(code, 2, "gproc {args:?}: {line}");
        assert!(
            line.contains(expected),
            "gproc {args:?}: {line:?} should say {expected:?}"
        );
        println!("gproc {}\n  -> {line}", args.join(" "));
    }
    // Usage errors are clap's, with status 2 too.
    let out = gproc(&["call"]);
    assert_eq!(out.status.code(), Some(2));
}

// =======================================================================================
// output
// =======================================================================================

fn output_colour_only_on_a_terminal() {
    let peer = server(&["name=coloured"]);
    // Off a terminal: none (checked by every test above as well).
    assert!(!ok(&["ls"]).contains('\x1b'));
    // On a terminal: colour in the table.
    let on_tty = on_a_terminal(&["ls"]);
    assert!(on_tty.contains("\x1b["), "colour on a terminal: {on_tty:?}");
    assert!(on_tty.contains(&peer.pid().to_string()));
    // JSON is never coloured, even on a terminal (pretty-printed there).
    let json_on_tty = on_a_terminal(&["ls", "--json"]);
    assert!(!json_on_tty.contains('\x1b'), "{json_on_tty:?}");
    let parsed: Value = serde_json::from_str(&json_on_tty.replace("\r\n", "\n")).expect("JSON");
    assert_eq!(parsed[0]["names"], json!(["coloured"]));
}

/// What `gproc args` prints with its stdout on a pseudo-terminal.
fn on_a_terminal(args: &[&str]) -> String {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().expect("a path"))
        .expect("open the terminal");
    let mut cmd = gproc_cmd(args);
    cmd.stdout(slave).env("TERM", "xterm");
    let out = run_cmd(cmd, args);
    assert!(out.status.success(), "{}", stderr(&out));
    // The command has exited: what it wrote waits in the terminal's buffer.
    let mut master = std::fs::File::from(master);
    let mut text = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let mut fds = [rustix::event::PollFd::new(
            &master,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(_) => break,
            Ok(_) => match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.extend_from_slice(&buf[..n]),
            },
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn output_rust_log_follows_a_call() {
    let peer = server(&["name=logged"]);
    let mut cmd = gproc_cmd(&["call", "logged", "Shop.add", "[1, 2]"]);
    cmd.env("RUST_LOG", "gproc=debug");
    let out = run_cmd(cmd, &["call"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "3");
    let log = stderr(&out);
    println!("{log}");
    let pid = peer.pid();
    assert!(
        log.lines()
            .any(|l| l.contains("connection open") && l.contains(&format!("peer={pid}"))),
        "the connection: {log}"
    );
    let ended = log
        .lines()
        .find(|l| l.contains("call ended: ok"))
        .unwrap_or_else(|| panic!("the call's end: {log}"));
    for field in [
        "call{service=\"Shop\" method=\"add\"".to_owned(),
        format!("pid={pid}"),
        "outcome=\"ok\"".to_owned(),
        "duration=".to_owned(),
    ] {
        assert!(ended.contains(&field), "{field} in {ended}");
    }
}
