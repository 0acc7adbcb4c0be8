//! How an endpoint treats its peers, with real processes: the descriptors a long-running
//! process holds (live peers only, whatever number came and went), one stopped client
//! never holding up the others, and one connection per pair of processes whichever side
//! connected first (or both at once).
//!
//! These tests specify the "Connections" paragraph of DESIGN.md. Every test runs in a
//! process of its own with a `GPROC_DIR` of its own (see `tests/support/mod.rs`); peers are
//! this binary re-executed in a role. Tests read the descriptors of their peers from
//! `/proc/<pid>/fd` and `/proc/<pid>/net/unix` (the peers run as the test's uid) and, to
//! tell which socket is connected to which, ask `ss` (iproute2) when it is installed. They
//! wait on events; where the event is a descriptor closing in another process, they poll
//! `/proc` briefly, bounded by a few seconds.
//!
//! Run one test with `cargo test --test peers -- peers_one_connection_per_pair`.

mod support;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gproc::RpcError;
use support::*;

/// A generous bound for an operation that should complete.
const LONG: Duration = Duration::from_secs(20);
/// How long a connection to a dead peer may stay open: "closed at once", polled.
const PROMPT: Duration = Duration::from_secs(5);
/// How long two processes that both connected may take to settle on one connection.
const SETTLE: Duration = Duration::from_secs(2);
/// The bound on a whole test body (the harness kills a test after 90 s).
const TEST_LIMIT: Duration = Duration::from_secs(75);

/// `peers_fd_baseline_after_200_short_lived`: how many peers, and how many alive at once.
const SHORT_LIVED: usize = 200;
const SHORT_LIVED_AT_ONCE: usize = 8;
/// `peers_stopped_client_does_not_starve_others`: the stopped client's calls in flight,
/// the size of each reply (so that the replies are far more than a socket buffer holds),
/// the server's queue capacity, the other client's calls, and the bound on each of them.
const FLOOD_CALLS: usize = 4000;
const FLOOD_REPLY_LEN: u32 = 4096;
const FLOOD_SERVER_CAP: usize = 64;
const FLOOD_ROUNDS: usize = 4;
const OTHER_CALLS: u64 = 200;
const OTHER_CALL_LIMIT: Duration = Duration::from_secs(2);
/// `peers_one_connection_simultaneous_20_pairs`.
const PAIRS: usize = 20;
const PAIR_MESSAGES: usize = 20;

const TESTS: &[(&str, fn())] = &[
    (
        "peers_fd_baseline_after_200_short_lived",
        peers_fd_baseline_after_200_short_lived,
    ),
    (
        "peers_stopped_client_does_not_starve_others",
        peers_stopped_client_does_not_starve_others,
    ),
    (
        "peers_one_connection_per_pair",
        peers_one_connection_per_pair,
    ),
    (
        "peers_one_connection_simultaneous_20_pairs",
        peers_one_connection_simultaneous_20_pairs,
    ),
    (
        "peers_connection_to_exited_peer_closed",
        peers_connection_to_exited_peer_closed,
    ),
    (
        "peers_answered_while_the_receiver_makes_no_call",
        peers_answered_while_the_receiver_makes_no_call,
    ),
];

const ROLES: &[(&str, fn())] = &[
    (ROLE_SERVER, role_server),
    (ROLE_SHORT, role_short),
    (ROLE_LINGER, role_linger),
    (ROLE_FLOOD, role_flood),
    (ROLE_PAIR, role_pair),
    (ROLE_ASLEEP, role_asleep),
];

fn main() {
    support::run_tests(TESTS, ROLES);
}

// =======================================================================================
// The service
// =======================================================================================

#[gproc::service]
pub trait Peers {
    /// `n + 1`.
    async fn ping(&self, n: u64) -> u64;
    /// `len` bytes at once: a small request with a reply of some size.
    async fn fill(&self, len: u32) -> Vec<u8>;
    /// How many `fill` calls this server has answered.
    async fn filled(&self) -> u64;
}

#[derive(Default)]
struct PeersImpl {
    filled: AtomicU64,
}

impl Peers for PeersImpl {
    async fn ping(&self, n: u64) -> u64 {
        n + 1
    }

    async fn fill(&self, len: u32) -> Vec<u8> {
        self.filled.fetch_add(1, Ordering::Relaxed);
        vec![0x5a; len as usize]
    }

    async fn filled(&self) -> u64 {
        self.filled.load(Ordering::Relaxed)
    }
}

// =======================================================================================
// Roles
// =======================================================================================

/// Listens, says "ready", serves [`Peers`], and sends every raw message of the default
/// group back to its sender as `echo:<data>`. Exits when the test closes its stdin.
/// `cap=<n>`: with a queue capacity of `n` messages.
const ROLE_SERVER: &str = "server";
/// `server=<pid>`: one raw exchange and one call with the server, "done", exits.
const ROLE_SHORT: &str = "short";
/// `server=<pid>`: one raw exchange and one call with the server, "done", then stays
/// until the test closes its stdin (or kills it).
const ROLE_LINGER: &str = "linger";
/// `server=<pid>`: says "connected" once the server serves [`Peers`], waits for a line
/// `go`, starts [`FLOOD_CALLS`] `fill` calls at once, says `issued <n>` once
/// every one of them has been polled, then `replies ok=<n> err=<n> first_err=<e>` once
/// all of them have finished.
const ROLE_FLOOD: &str = "flood";
/// Listens, serves [`Peers`], says "ready", then runs the commands the test writes on its
/// stdin, one at a time (see [`pair_command`]). Exits when the test closes its stdin.
const ROLE_PAIR: &str = "pair";
/// Listens, then makes no gproc call (its runtime, if any, not running) until the test
/// writes `drain <n>` on its stdin: then it receives `n` messages and says `got <n>`.
/// Argument: `flavor=current_thread` or `flavor=blocking`.
const ROLE_ASLEEP: &str = "asleep";
/// `peers_answered_while_the_receiver_makes_no_call`: messages sent to the sleeping peer.
const ASLEEP_MESSAGES: usize = 50;

fn arg(key: &str) -> Option<String> {
    role_args()
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn server_arg() -> u32 {
    arg("server")
        .expect("server=<pid>")
        .parse()
        .expect("server=<pid> is a PID")
}

fn role_server() {
    if let Some(cap) = arg("cap") {
        gproc::Config::new()
            .queue_capacity(cap.parse().expect("cap=<messages>"))
            .install()
            .expect("server: install the Config");
    }
    exit_when_stdin_closes();
    runtime().block_on(async {
        gproc::listen().await.expect("server: listen");
        let rpc = tokio::spawn(async {
            PeersServer::new(PeersImpl::default())
                .serve()
                .await
                .expect("server: serve Peers");
        });
        let raw = tokio::spawn(async {
            loop {
                let m = gproc::receive().await.expect("server: raw receive");
                let mut echo = b"echo:".to_vec();
                echo.extend_from_slice(&m.data);
                // A short-lived peer may be gone by now: that is its business.
                if let Err(e) = gproc::send(m.sender_pid, echo).await {
                    eprintln!("server: cannot echo to {}: {e}", m.sender_pid);
                }
            }
        });
        ready();
        rpc.await.expect("server: the Peers task");
        raw.await.expect("server: the raw task");
    });
}

/// One raw message to `server` and its echo, then one typed call.
async fn exchange_with(server: u32) {
    let me = std::process::id();
    let data = format!("hello from {me}");
    within(
        LONG,
        "send to the server",
        gproc::send(server, data.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("{me}: send to the server {server}: {e}"));
    let m = within(LONG, "receive the echo", gproc::receive())
        .await
        .unwrap_or_else(|e| panic!("{me}: receive the echo: {e}"));
    assert_eq!(m.sender_pid, server, "{me}: the echo comes from the server");
    assert_eq!(m.data, format!("echo:{data}").as_bytes(), "{me}: the echo");
    let client = PeersClient::new(server);
    let n = within(LONG, "call the server", client.ping(u64::from(me)))
        .await
        .unwrap_or_else(|e| panic!("{me}: ping the server {server}: {e:?}"));
    assert_eq!(n, u64::from(me) + 1, "{me}: ping's answer");
}

fn role_short() {
    let server = server_arg();
    current_thread_runtime().block_on(async {
        within(LONG, "listen", gproc::listen())
            .await
            .expect("short: listen");
        exchange_with(server).await;
    });
    say("done");
    // Returns from `main`: a clean exit.
}

fn role_linger() {
    let server = server_arg();
    exit_when_stdin_closes();
    current_thread_runtime().block_on(async {
        within(LONG, "listen", gproc::listen())
            .await
            .expect("linger: listen");
        exchange_with(server).await;
        say("done");
        std::future::pending::<()>().await;
    });
}

fn role_asleep() {
    let blocking = std::env::args().any(|a| a == "flavor=blocking");
    let runtime = (!blocking).then(current_thread_runtime);
    match &runtime {
        Some(rt) => rt.block_on(gproc::listen()).expect("asleep: listen"),
        None => gproc::blocking::listen().expect("asleep: listen"),
    }
    ready();
    // No gproc call from here on, and the runtime does not run: only gproc's own thread
    // can accept, queue and acknowledge.
    while let Some(line) = read_line() {
        let Some(n) = line.strip_prefix("drain ") else {
            continue;
        };
        let n: usize = n.parse().expect("asleep: a count");
        let receive_all = async {
            for _ in 0..n {
                gproc::receive().await.expect("asleep: receive");
            }
        };
        match &runtime {
            Some(rt) => rt.block_on(receive_all),
            None => gproc::blocking::block_on(receive_all),
        }
        say(&format!("got {n}"));
    }
}

fn role_flood() {
    let server = server_arg();
    // A current-thread runtime: every call's task is polled once before the runtime turns
    // to anything else of this process's own tasks.
    current_thread_runtime().block_on(async move {
        let client = PeersClient::new(server).with_timeout(Duration::from_secs(60));
        // The connection is made, and the service there, before the flood.
        within(LONG, "wait_served", client.wait_served(LONG))
            .await
            .expect("flood: the server serves Peers");
        say("connected");
        let go = tokio::task::spawn_blocking(read_line)
            .await
            .expect("read go");
        assert_eq!(go.as_deref(), Some("go"), "flood: the test's go");
        exit_when_stdin_closes();
        let polled = Arc::new(AtomicUsize::new(0));
        let all_polled = Arc::new(tokio::sync::Notify::new());
        let mut calls = Vec::with_capacity(FLOOD_CALLS);
        for _ in 0..FLOOD_CALLS {
            let client = client.clone();
            let polled = polled.clone();
            let all_polled = all_polled.clone();
            calls.push(tokio::spawn(async move {
                let mut call = pin!(client.fill(FLOOD_REPLY_LEN));
                let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
                if polled.fetch_add(1, Ordering::SeqCst) + 1 == FLOOD_CALLS {
                    all_polled.notify_one();
                }
                match first {
                    Poll::Ready(result) => result,
                    Poll::Pending => call.await,
                }
            }));
        }
        within(LONG, "poll every call once", all_polled.notified()).await;
        say(&format!("issued {}", polled.load(Ordering::SeqCst)));
        let (mut ok, mut err, mut first_err) = (0usize, 0usize, None);
        for call in calls {
            match call.await.expect("flood: a call task") {
                Ok(reply) if reply.len() == FLOOD_REPLY_LEN as usize => ok += 1,
                Ok(reply) => {
                    err += 1;
                    first_err.get_or_insert(format!("a reply of {} bytes", reply.len()));
                }
                Err(e) => {
                    err += 1;
                    first_err.get_or_insert(format!("{e:?}"));
                }
            }
        }
        let first_err = first_err.unwrap_or_else(|| "none".to_owned());
        say(&format!("replies ok={ok} err={err} first_err={first_err}"));
        std::future::pending::<()>().await;
    });
}

fn role_pair() {
    let (tx, mut commands) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Some(line) = read_line() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    runtime().block_on(async move {
        gproc::listen().await.expect("pair: listen");
        let rpc = tokio::spawn(async {
            PeersServer::new(PeersImpl::default())
                .serve()
                .await
                .expect("pair: serve Peers");
        });
        ready();
        let mut other = None;
        while let Some(line) = commands.recv().await {
            say(&pair_command(&line, &mut other).await);
        }
        rpc.abort();
    });
    // The test closed stdin: returns from `main`, a clean exit.
}

/// Runs one command of the `pair` role and returns the line to print:
/// - `peer <pid>`: talk to `pid` from now on; `peer <pid>`.
/// - `send <prefix> <n> [<at>]`: at `<at>` (nanoseconds since the Unix epoch; default now),
///   sends `<prefix>0` … `<prefix><n-1>` to the peer, one after the other, each
///   acknowledged; `sent <prefix> <n>`.
/// - `call <x> [<at>]`: at `<at>`, `ping(x)` on the peer; `called <x + 1>`.
/// - `expect <prefix> <n>`: receives `n` raw messages, which must be `<prefix>0` … from
///   the peer, in order; `expected <prefix> <n>`.
///
/// A command that fails answers `failed: <what>`.
async fn pair_command(line: &str, other: &mut Option<u32>) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = |i: usize| words.get(i).map(|w| w.parse::<u128>().expect("<at> nanos"));
    match words.as_slice() {
        ["peer", pid] => {
            *other = Some(pid.parse().expect("peer <pid>"));
            format!("peer {pid}")
        }
        ["send", prefix, n, ..] => {
            let (peer, n): (u32, usize) = (other.expect("peer first"), n.parse().expect("n"));
            wait_until(at(3)).await;
            for i in 0..n {
                let data = format!("{prefix}{i}");
                match within(LONG, "send to the peer", gproc::send(peer, data)).await {
                    Ok(()) => {}
                    Err(e) => return format!("failed: send {prefix}{i} to {peer}: {e}"),
                }
            }
            format!("sent {prefix} {n}")
        }
        ["call", x, ..] => {
            let (peer, x): (u32, u64) = (other.expect("peer first"), x.parse().expect("x"));
            wait_until(at(2)).await;
            match within(LONG, "call the peer", PeersClient::new(peer).ping(x)).await {
                Ok(y) => format!("called {y}"),
                Err(e) => format!("failed: ping({x}) on {peer}: {e:?}"),
            }
        }
        ["expect", prefix, n] => {
            let (peer, n): (u32, usize) = (other.expect("peer first"), n.parse().expect("n"));
            for i in 0..n {
                let m = match within(LONG, "receive from the peer", gproc::receive()).await {
                    Ok(m) => m,
                    Err(e) => return format!("failed: receive {prefix}{i}: {e}"),
                };
                let want = format!("{prefix}{i}");
                if m.sender_pid != peer || m.data != want.as_bytes() {
                    return format!(
                        "failed: expected {want:?} from {peer}, got {:?} from {}",
                        String::from_utf8_lossy(&m.data),
                        m.sender_pid
                    );
                }
            }
            format!("expected {prefix} {n}")
        }
        _ => panic!("pair: unknown command {line:?}"),
    }
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// Waits until `at` (nanoseconds since the Unix epoch): sleeps until shortly before, then
/// spins, so that two processes given the same instant act within microseconds.
async fn wait_until(at: Option<u128>) {
    let Some(at) = at else { return };
    let left = at.saturating_sub(now_nanos());
    let spin = 2_000_000;
    if left > spin {
        tokio::time::sleep(Duration::from_nanos((left - spin) as u64)).await;
    }
    while now_nanos() < at {
        std::hint::spin_loop();
    }
}

// =======================================================================================
// Descriptors of another process, from /proc
// =======================================================================================

/// How many descriptors `pid` has open.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}"))
        .count()
}

/// The Unix stream sockets `pid` holds connected, by inode: `incoming` (accepted by its
/// listener: they carry its socket's path) and `outgoing` (connected by it: no path).
/// Its listening socket is in neither.
#[derive(Debug, Default)]
struct Connected {
    incoming: Vec<u64>,
    outgoing: Vec<u64>,
}

impl Connected {
    fn total(&self) -> usize {
        self.incoming.len() + self.outgoing.len()
    }

    fn all(&self) -> HashSet<u64> {
        self.incoming
            .iter()
            .chain(&self.outgoing)
            .copied()
            .collect()
    }

    fn summary(&self) -> String {
        format!(
            "{} connected ({} accepted, {} connected by it)",
            self.total(),
            self.incoming.len(),
            self.outgoing.len()
        )
    }
}

/// The inodes of the sockets among `pid`'s descriptors.
fn socket_inodes(pid: u32) -> Vec<u64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}"));
    dir.filter_map(|entry| {
        // A descriptor closed while we look is not there any more: skip it.
        let target = std::fs::read_link(entry.ok()?.path()).ok()?;
        let target = target.to_str()?;
        target
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// `pid`'s connected Unix stream sockets (see [`Connected`]), from `/proc/<pid>/fd` and
/// `/proc/<pid>/net/unix` (whose `St` is 03 for a connected socket, and whose last column
/// is the path an accepted socket shares with its listener).
fn connected(pid: u32) -> Connected {
    let inodes = socket_inodes(pid);
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/unix"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/net/unix: {e}"));
    // Num RefCount Protocol Flags Type St Inode [Path]
    let mut by_inode: HashMap<u64, (String, String, Option<String>)> = HashMap::new();
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 7 {
            continue;
        }
        let Ok(inode) = cols[6].parse::<u64>() else {
            continue;
        };
        by_inode.insert(
            inode,
            (
                cols[4].to_owned(),
                cols[5].to_owned(),
                cols.get(7).map(|p| (*p).to_owned()),
            ),
        );
    }
    let own = format!("/{pid}.sock");
    let mut out = Connected::default();
    for inode in inodes {
        let Some((kind, state, path)) = by_inode.get(&inode) else {
            continue; // not a Unix socket, or closed meanwhile
        };
        // Type 0001 is SOCK_STREAM, St 03 is SS_CONNECTED.
        if kind != "0001" || state != "03" {
            continue;
        }
        match path {
            Some(p) if p.ends_with(&own) => out.incoming.push(inode),
            Some(_) => {}
            None => out.outgoing.push(inode),
        }
    }
    out
}

/// Every connected Unix stream socket of this network namespace, by inode, with its
/// peer's inode: from `ss -xanH` (iproute2, which asks the kernel through sock_diag; no
/// file in `/proc` says who a Unix socket's peer is). `None` when `ss` is not there.
fn unix_peers() -> Option<HashMap<u64, u64>> {
    let out = std::process::Command::new("ss")
        .args(["-x", "-a", "-n", "-H"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    // Netid State Recv-Q Send-Q Local-Address Local-Inode Peer-Address Peer-Inode
    let text = String::from_utf8_lossy(&out.stdout);
    let peers = text
        .lines()
        .filter(|line| line.starts_with("u_str"))
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let n = cols.len();
            if n < 8 {
                return None;
            }
            Some((cols[n - 3].parse().ok()?, cols[n - 1].parse().ok()?))
        })
        .collect();
    Some(peers)
}

/// Whether `ss` can tell this test who a socket's peer is (checked once).
fn have_ss() -> bool {
    static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAVE.get_or_init(|| unix_peers().is_some())
}

/// The sockets of `pid` whose peer is one of `other`'s sockets: its connections to
/// `other`, by inode. `None` without `ss`.
fn links(pid: u32, other: u32) -> Option<Vec<u64>> {
    if !have_ss() {
        return None;
    }
    let theirs: HashSet<u64> = socket_inodes(other).into_iter().collect();
    let mine = socket_inodes(pid);
    let peers = unix_peers()?;
    Some(
        mine.into_iter()
            .filter(|inode| peers.get(inode).is_some_and(|peer| theirs.contains(peer)))
            .collect(),
    )
}

/// A process that listens and then makes no gproc call at all, its current-thread
/// runtime not running (or with no runtime): its peers' messages are still accepted,
/// queued and acknowledged (gproc's own thread keeps watch), none lost.
fn peers_answered_while_the_receiver_makes_no_call() {
    run("peers_answered_while_the_receiver_makes_no_call", async {
        for flavor in ["current_thread", "blocking"] {
            let mut peer = listening_peer(ROLE_ASLEEP, &[&format!("flavor={flavor}")]);
            let pid = peer.pid();
            for i in 0..ASLEEP_MESSAGES {
                within(
                    LONG,
                    "a send to a process that makes no call",
                    gproc::send(pid, format!("m{i}")),
                )
                .await
                .unwrap_or_else(|e| panic!("{flavor}: send {i} to a sleeping peer: {e}"));
            }
            peer.write_line(&format!("drain {ASLEEP_MESSAGES}"));
            assert_eq!(
                peer.line(),
                format!("got {ASLEEP_MESSAGES}"),
                "{flavor}: the sleeping peer queued every acknowledged message"
            );
            // A message taken by a call that then returns, the peer making no call after
            // it: its acknowledgement, owed with no frame to carry it, still goes out.
            peer.write_line("drain 1");
            within(
                LONG,
                "a send taken by the peer's last call",
                gproc::send(pid, "last"),
            )
            .await
            .unwrap_or_else(|e| panic!("{flavor}: the last send: {e}"));
            assert_eq!(peer.line(), "got 1", "{flavor}: the last message");
        }
    });
}

// =======================================================================================
// Helpers
// =======================================================================================

/// Runs a test body on a multi-thread runtime, bounded by [`TEST_LIMIT`].
fn run<F: Future<Output = ()>>(name: &str, body: F) {
    block_on(within(TEST_LIMIT, name, body));
}

/// Starts a peer in `role` with `args` and waits until it listens.
fn listening_peer(role: &str, args: &[&str]) -> Peer {
    let peer = spawn_peer(role, args);
    peer.wait_until_listening(LONG);
    peer
}

/// Waits for the peer's "done" and its successful exit.
fn finish_short_lived(mut peer: Peer) {
    peer.expect_line("done");
    let status = peer.wait(LONG);
    assert!(
        status.success(),
        "short-lived peer {} failed: {status}",
        peer.pid()
    );
}

// =======================================================================================
// 1. Descriptors after many short-lived peers
// =======================================================================================

/// A server that 200 short-lived peers have talked to (raw message, echo, typed call)
/// holds, once they have all exited, as many descriptors as before them.
fn peers_fd_baseline_after_200_short_lived() {
    let server = listening_peer(ROLE_SERVER, &[]);
    let pid = server.pid();
    let server_arg = format!("server={pid}");
    run("peers_fd_baseline_after_200_short_lived", async move {
        // Warm-up: the test's own exchange, so that what it leaves open is in the baseline.
        let client = PeersClient::new(pid);
        within(LONG, "wait_served", client.wait_served(LONG))
            .await
            .expect("the server serves Peers");
        within(LONG, "warm-up exchange", exchange_with(pid)).await;
        let baseline = fd_count(pid);
        println!(
            "server {pid}: {baseline} descriptors before the peers ({})",
            connected(pid).summary()
        );

        // The peers, and the wait for the server to forget them, block this thread.
        let (now, back, took) = tokio::task::block_in_place(|| {
            let started = Instant::now();
            let mut peak = baseline;
            let mut live = VecDeque::new();
            for _ in 0..SHORT_LIVED {
                if live.len() == SHORT_LIVED_AT_ONCE {
                    finish_short_lived(live.pop_front().expect("a live peer"));
                    peak = peak.max(fd_count(pid));
                }
                live.push_back(spawn_peer(ROLE_SHORT, &[&server_arg]));
            }
            for peer in live {
                finish_short_lived(peer);
            }
            let right_after = fd_count(pid);
            println!(
                "{SHORT_LIVED} short-lived peers done in {:?}; server: peak {peak} \
                 descriptors seen, {right_after} right after the last exited",
                started.elapsed()
            );
            let mut now = right_after;
            let (back, took) = poll_until(PROMPT, || {
                now = fd_count(pid);
                now <= baseline
            });
            (now, back, took)
        });
        println!(
            "server {pid}: {now} descriptors {took:?} after the last peer exited \
             (baseline {baseline}; {})",
            connected(pid).summary()
        );
        assert!(
            back,
            "server {pid} still holds {now} descriptors {PROMPT:?} after all \
             {SHORT_LIVED} peers exited, {} more than its baseline of {baseline} \
             ({}): connections to dead peers are not closed",
            now - baseline,
            connected(pid).summary()
        );
        // And it still serves.
        within(LONG, "exchange after the peers", exchange_with(pid)).await;
    });
    drop(server);
}

// =======================================================================================
// 2. A stopped client does not starve the others
// =======================================================================================

/// Client A has 4000 calls in flight, and the server's answers to them (4 KiB each, far
/// more than a socket buffer holds) wait for A, which is stopped (SIGSTOP) and reads
/// nothing. Meanwhile client B (this process) makes 200 calls one after the other; each
/// must succeed within 2 s. Then A continues (SIGCONT) and gets all 4000 replies.
///
/// A says when it has issued its calls (every call's future polled once); the test then
/// stops A. What reaches the server by then is a matter of timing: so that it is a lot,
/// the server is itself stopped while A issues its calls (they pile up in the socket and
/// in A), and continued just before A is stopped, so that it gets them in one burst. The
/// server runs with a queue capacity of [`FLOOD_SERVER_CAP`], so that the backlog is
/// larger than anything sized by the capacity that the server might share between its
/// peers (such as how many requests a service runs at once). And as the backlog still
/// varies from run to run, the whole is done [`FLOOD_ROUNDS`] times, with a fresh A each.
fn peers_stopped_client_does_not_starve_others() {
    let server = listening_peer(ROLE_SERVER, &[&format!("cap={FLOOD_SERVER_CAP}")]);
    let pid = server.pid();
    run("peers_stopped_client_does_not_starve_others", async move {
        let b = PeersClient::new(pid);
        within(LONG, "wait_served", b.wait_served(LONG))
            .await
            .expect("the server serves Peers");
        let first = within(LONG, "B's first call", b.ping(1)).await;
        assert_eq!(first.ok(), Some(2), "B's first call");
        for round in 0..FLOOD_ROUNDS {
            flood_round(pid, &b, round).await;
        }
    });
    drop(server);
}

/// One round of [`peers_stopped_client_does_not_starve_others`], with a fresh client A.
async fn flood_round(pid: u32, b: &PeersClient, round: usize) {
    use rustix::process::Signal;
    let answered = |n: Result<Result<u64, RpcError>, tokio::time::error::Elapsed>| match n {
        Ok(Ok(n)) => n.to_string(),
        Ok(Err(e)) => format!("{e:?}"),
        Err(_) => format!("no answer within {OTHER_CALL_LIMIT:?}"),
    };
    let before = answered(tokio::time::timeout(OTHER_CALL_LIMIT, b.filled()).await);

    let mut flood = spawn_peer(ROLE_FLOOD, &[&format!("server={pid}")]);
    let a = flood.pid();
    tokio::task::block_in_place(|| {
        flood.expect_line("connected");
        stop(pid);
        flood.write_line("go");
        let issued = flood.line_within(LONG);
        assert_eq!(issued, format!("issued {FLOOD_CALLS}"), "client A {a}");
        signal(pid, Signal::CONT);
        stop(a);
    });
    println!("round {round}: client A {a}: {FLOOD_CALLS} calls issued, A stopped");

    // B's calls, while A is stopped.
    let started = Instant::now();
    let (mut done, mut slowest, mut failure) = (0, Duration::ZERO, None);
    for i in 0..OTHER_CALLS {
        let t = Instant::now();
        match tokio::time::timeout(OTHER_CALL_LIMIT, b.ping(i)).await {
            Ok(Ok(n)) if n == i + 1 => {}
            Ok(Ok(n)) => failure = Some(format!("call {i}: ping({i}) answered {n}")),
            Ok(Err(e)) => failure = Some(format!("call {i}: {e:?}")),
            Err(_) => {
                failure = Some(format!(
                    "call {i}: no reply within {OTHER_CALL_LIMIT:?} (while A is stopped)"
                ))
            }
        }
        if failure.is_some() {
            break;
        }
        done += 1;
        slowest = slowest.max(t.elapsed());
    }
    // How far the server got with A's calls (with B's deadline: it may be the server
    // that does not answer).
    let after = answered(tokio::time::timeout(OTHER_CALL_LIMIT, b.filled()).await);
    println!(
        "round {round}: client B: {done} of {OTHER_CALLS} calls answered while A was \
         stopped, in {:?} (slowest {slowest:?}); the server's count of fill calls \
         answered: {before} before A, {after} after B's calls",
        started.elapsed()
    );

    signal(a, Signal::CONT);
    let replies = tokio::task::block_in_place(|| flood.line_within(Duration::from_secs(60)));
    println!("round {round}: client A {a}, continued: {replies}");
    let ok: Option<usize> = replies
        .strip_prefix("replies ok=")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    if let Some(failure) = failure {
        panic!(
            "round {round}: client B was held up by the stopped client A: {failure}; {done} \
             calls had succeeded. (A after SIGCONT: {replies})"
        );
    }
    assert_eq!(
        ok,
        Some(FLOOD_CALLS),
        "round {round}: client A got {replies:?} after SIGCONT"
    );
    drop(flood);
}

// =======================================================================================
// 3. One connection per pair of processes
// =======================================================================================

/// Two `pair` peers that know each other.
struct Pair {
    a: Peer,
    b: Peer,
}

impl Pair {
    fn start() -> Pair {
        let mut a = spawn_peer(ROLE_PAIR, &[]);
        let mut b = spawn_peer(ROLE_PAIR, &[]);
        a.wait_until_listening(LONG);
        b.wait_until_listening(LONG);
        let (pa, pb) = (a.pid(), b.pid());
        command(&mut a, &format!("peer {pb}"), &format!("peer {pb}"));
        command(&mut b, &format!("peer {pa}"), &format!("peer {pa}"));
        Pair { a, b }
    }

    /// `(connections of a, connections of b)`.
    fn connected(&self) -> (Connected, Connected) {
        (connected(self.a.pid()), connected(self.b.pid()))
    }

    fn describe(&self) -> String {
        let (ca, cb) = self.connected();
        let (a, b) = (self.a.pid(), self.b.pid());
        let between = match (links(a, b), links(b, a)) {
            (Some(ab), Some(ba)) => format!(
                "; {} socket(s) of A connected to B, {} of B connected to A (ss)",
                ab.len(),
                ba.len()
            ),
            _ => String::new(),
        };
        format!("A {a}: {}; B {b}: {}{between}", ca.summary(), cb.summary())
    }

    /// Whether there is exactly one connection between the two: with `ss`, exactly one
    /// socket of each side whose peer is a socket of the other; without, exactly one
    /// connected socket on each side (neither talks to anyone else).
    fn one_connection(&self) -> bool {
        let (a, b) = (self.a.pid(), self.b.pid());
        match (links(a, b), links(b, a)) {
            (Some(ab), Some(ba)) => ab.len() == 1 && ba.len() == 1,
            _ => {
                let (ca, cb) = self.connected();
                ca.total() == 1 && cb.total() == 1
            }
        }
    }

    /// Waits (up to `limit`) until [`one_connection`](Self::one_connection) holds.
    fn one_connection_within(&self, limit: Duration) -> bool {
        poll_until(limit, || self.one_connection()).0
    }

    /// Whether there is no connection between the two (nor any other).
    fn no_connection(&self) -> bool {
        let (ca, cb) = self.connected();
        ca.total() == 0 && cb.total() == 0
    }
}

/// Writes `cmd` to a `pair` peer and checks its answer.
#[track_caller]
fn command(peer: &mut Peer, cmd: &str, want: &str) {
    peer.write_line(cmd);
    let got = peer.line_within(LONG);
    assert_eq!(
        got,
        want,
        "peer {} answered {cmd:?} with {got:?}",
        peer.pid()
    );
}

/// A raw message each way and a typed call each way; whichever side makes the first
/// contact (a raw send from A; a call from B), the two processes end with exactly one
/// connection between them, used both ways.
fn peers_one_connection_per_pair() {
    for (round, first) in ["A sends first", "B calls first"].into_iter().enumerate() {
        let mut p = Pair::start();
        assert!(
            p.no_connection(),
            "round {round}: before any exchange: {}",
            p.describe()
        );
        if round == 0 {
            command(&mut p.a, "send a 1", "sent a 1");
        } else {
            command(&mut p.b, "call 41", "called 42");
        }
        let after_first = p.describe();
        println!("round {round} ({first}): after the first contact: {after_first}");
        if round == 0 {
            command(&mut p.b, "expect a 1", "expected a 1");
            command(&mut p.b, "send b 3", "sent b 3");
            command(&mut p.a, "expect b 3", "expected b 3");
            command(&mut p.b, "call 41", "called 42");
        } else {
            command(&mut p.b, "send b 3", "sent b 3");
            command(&mut p.a, "expect b 3", "expected b 3");
            command(&mut p.a, "send a 1", "sent a 1");
            command(&mut p.b, "expect a 1", "expected a 1");
        }
        command(&mut p.a, "call 1", "called 2");
        command(&mut p.a, "send a 2", "sent a 2");
        command(&mut p.b, "expect a 2", "expected a 2");
        let one = p.one_connection_within(SETTLE);
        let after_all = p.describe();
        println!("round {round} ({first}): after both ways, raw and RPC: {after_all}");
        assert!(
            one,
            "round {round} ({first}): two processes that talk both ways must share exactly \
             one connection; after the first contact: {after_first}; after all: {after_all}"
        );
    }
}

/// Twenty fresh pairs whose two sides make their first contact at the same instant (raw
/// sends in even rounds, calls in odd ones), then exchange raw messages both ways and calls
/// both ways: every message arrives, and each pair ends with exactly one connection.
fn peers_one_connection_simultaneous_20_pairs() {
    let mut failures = Vec::new();
    let mut settle = SETTLE;
    let started = Instant::now();
    for round in 0..PAIRS {
        let mut p = Pair::start();
        let at = (now_nanos() + 100_000_000).to_string();
        if round % 2 == 0 {
            let cmd_a = format!("send a {PAIR_MESSAGES} {at}");
            let cmd_b = format!("send b {PAIR_MESSAGES} {at}");
            p.a.write_line(&cmd_a);
            p.b.write_line(&cmd_b);
            let want_a = format!("sent a {PAIR_MESSAGES}");
            let want_b = format!("sent b {PAIR_MESSAGES}");
            assert_eq!(p.a.line_within(LONG), want_a, "round {round}: A");
            assert_eq!(p.b.line_within(LONG), want_b, "round {round}: B");
        } else {
            p.a.write_line(&format!("call 10 {at}"));
            p.b.write_line(&format!("call 20 {at}"));
            assert_eq!(p.a.line_within(LONG), "called 11", "round {round}: A");
            assert_eq!(p.b.line_within(LONG), "called 21", "round {round}: B");
            let (sa, sb) = (
                format!("send a {PAIR_MESSAGES}"),
                format!("send b {PAIR_MESSAGES}"),
            );
            command(&mut p.a, &sa, &format!("sent a {PAIR_MESSAGES}"));
            command(&mut p.b, &sb, &format!("sent b {PAIR_MESSAGES}"));
        }
        let want = |x: &str| format!("expected {x} {PAIR_MESSAGES}");
        command(&mut p.a, &format!("expect b {PAIR_MESSAGES}"), &want("b"));
        command(&mut p.b, &format!("expect a {PAIR_MESSAGES}"), &want("a"));
        command(&mut p.a, "call 1", "called 2");
        command(&mut p.b, "call 2", "called 3");

        let mut one = p.one_connection_within(settle);
        let settled = p.describe();
        if one {
            // Settled for good: more traffic both ways keeps to that one connection.
            command(&mut p.a, "send c 1", "sent c 1");
            command(&mut p.b, "expect c 1", "expected c 1");
            command(&mut p.b, "send d 1", "sent d 1");
            command(&mut p.a, "expect d 1", "expected d 1");
            one = p.one_connection();
        }
        if !one {
            failures.push(format!("round {round}: {settled}; then {}", p.describe()));
            // Known to fail already: do not wait on the remaining rounds.
            settle = Duration::ZERO;
        }
    }
    println!(
        "{PAIRS} pairs, every message and call delivered, in {:?}; {} without exactly one \
         connection",
        started.elapsed(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {PAIRS} pairs that contacted each other at the same instant did not end with \
         exactly one connection:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// =======================================================================================
// 4. The connection to a killed peer is closed
// =======================================================================================

/// A peer talks to a server (raw and RPC) and is SIGKILLed: the server's sockets for it
/// are closed within a few seconds.
fn peers_connection_to_exited_peer_closed() {
    let server = listening_peer(ROLE_SERVER, &[]);
    let pid = server.pid();
    // Nobody has talked to the server yet: what it holds connected now is not the peer's.
    let before = connected(pid).all();
    let mut peer = spawn_peer(ROLE_LINGER, &[&format!("server={pid}")]);
    peer.expect_line("done");
    let after = connected(pid);
    // The server's sockets whose peer is one of the peer's (by `ss`), else every socket
    // it connected or accepted since.
    let theirs: HashSet<u64> = match links(pid, peer.pid()) {
        Some(links) => links.into_iter().collect(),
        None => after.all().difference(&before).copied().collect(),
    };
    println!(
        "server {pid}: {} connected before the peer; with the peer {}: {}, {} of them \
         connected to the peer{} ({} descriptors in all)",
        before.len(),
        peer.pid(),
        after.summary(),
        theirs.len(),
        if have_ss() { " (ss)" } else { "" },
        fd_count(pid)
    );
    assert!(
        !theirs.is_empty(),
        "server {pid} holds no connection of the peer {} it has just answered: {}",
        peer.pid(),
        after.summary()
    );

    let status = peer.kill();
    assert!(!status.success(), "the peer was killed: {status}");
    let mut left = theirs.clone();
    let (closed, took) = poll_until(PROMPT, || {
        let now: HashSet<u64> = socket_inodes(pid).into_iter().collect();
        left = theirs.intersection(&now).copied().collect();
        left.is_empty()
    });
    println!(
        "server {pid}: {} of the peer's {} sockets still open {took:?} after SIGKILL ({})",
        left.len(),
        theirs.len(),
        connected(pid).summary()
    );
    assert!(
        closed,
        "server {pid} still holds {} of the {} sockets of its SIGKILLed peer after {PROMPT:?} \
         (inodes {left:?}; {})",
        left.len(),
        theirs.len(),
        connected(pid).summary()
    );

    // The server goes on serving.
    block_on(within(LONG, "exchange after the kill", async {
        within(LONG, "listen", gproc::listen())
            .await
            .expect("listen");
        exchange_with(pid).await;
    }));
    drop(server);
}
