//! Integration tests of descriptors over raw messages (`send_fds` / `receive_fds`), with
//! real processes: what crosses, what is closed, and that nothing leaks.
//!
//! Every test runs in a process of its own with a `GPROC_DIR` of its own (see
//! `tests/support/mod.rs`); its peer is this binary re-executed as the `fdserve` role,
//! driven by lines on its stdin. Run one test with `cargo test --test fds -- fds::burst`.

mod support;

use std::fs::File;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use gproc::Error;
use support::*;

/// A generous bound for an operation that should complete.
const LONG: Duration = Duration::from_secs(20);
/// `burst_interleaved`: messages, and the size of each (the socket's buffer holds a
/// fraction of them, so that most wait in the sender and go out in batches).
const BURST: usize = 200;
const BURST_SIZE: usize = 4096;

const TESTS: &[(&str, fn())] = &[
    ("fds::pipe_write_end_crosses", pipe_write_end_crosses),
    ("fds::file_and_socket_cross", file_and_socket_cross),
    ("fds::plain_receive_closes_them", plain_receive_closes_them),
    ("fds::group_limit_closes_them", group_limit_closes_them),
    (
        "fds::receiver_exits_with_them_queued",
        receiver_exits_with_them_queued,
    ),
    (
        "fds::receiver_killed_before_acknowledging",
        receiver_killed_before_acknowledging,
    ),
    ("fds::too_many_then_the_most", too_many_then_the_most),
    ("fds::burst_interleaved", burst_interleaved),
];

const ROLES: &[(&str, fn())] = &[("fdserve", role_fdserve)];

fn main() {
    support::run_tests(TESTS, ROLES);
}

// =======================================================================================
// Helpers
// =======================================================================================

/// Everything `read` gives until its end: returns once every copy of the write end is
/// closed, in whichever process (a leaked copy hangs it, and the guard fails the test).
fn to_end(mut read: File, what: &str) -> String {
    blocking_within(LONG, what, move || {
        let mut text = String::new();
        read.read_to_string(&mut text).expect("read to the end");
        text
    })
}

fn fdserve() -> Peer {
    let peer = spawn_peer("fdserve", &[]);
    peer.wait_until_listening(LONG);
    peer
}

/// The peer's count of its own open descriptors.
fn count(peer: &mut Peer) -> usize {
    peer.write_line("count");
    let line = peer.line();
    line.strip_prefix("fds ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count, not {line:?}"))
}

/// A first message, so that the connection (and its descriptors at both ends) is up
/// before anything is counted.
fn warm_up(peer: &mut Peer) {
    gproc::blocking::send_group(peer.pid(), "warm", "up").expect("send the warm-up");
    peer.write_line("plain warm");
    peer.expect_line("plain up");
}

// =======================================================================================
// The peer
// =======================================================================================

/// Listens, then runs one command per line on stdin, each answered with one line:
///
/// - `count`: `fds <n>`, its open descriptors;
/// - `plain <group>`: `receive_group`, then `plain <data>`;
/// - `recv <group>`: `receive_fds`, then `got <data> fds=<n>` (and drops them);
/// - `write <group>`: `receive_fds`, writes the data to each descriptor, drops them, then
///   `wrote <n>`;
/// - `read <group>`: `receive_fds`, reads each descriptor to its end, then
///   `read <text>|<text>…`;
/// - `idents <group> <n>`: `n` times `receive_fds`, each answered with
///   `m <data up to ';'> <text,text…>` (each descriptor read to its end; `-` for none).
fn role_fdserve() {
    gproc::blocking::listen().expect("fdserve: listen");
    ready();
    while let Some(line) = read_line() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["count"] => say(&format!("fds {}", open_fds())),
            ["plain", group] => {
                let m = gproc::blocking::receive_group(group).expect("receive_group");
                say(&format!("plain {}", String::from_utf8_lossy(&m.data)));
            }
            ["recv", group] => {
                let (m, fds) = gproc::blocking::receive_fds(group).expect("receive_fds");
                say(&format!(
                    "got {} fds={}",
                    String::from_utf8_lossy(&m.data),
                    fds.len()
                ));
            }
            ["write", group] => {
                let (m, fds) = gproc::blocking::receive_fds(group).expect("receive_fds");
                let n = fds.len();
                for fd in fds {
                    File::from(fd).write_all(&m.data).expect("write through it");
                }
                say(&format!("wrote {n}"));
            }
            ["read", group] => {
                let (_, fds) = gproc::blocking::receive_fds(group).expect("receive_fds");
                say(&format!("read {}", read_each(fds).join("|")));
            }
            ["idents", group, n] => {
                for _ in 0..n.parse::<usize>().expect("a number") {
                    let (m, fds) = gproc::blocking::receive_fds(group).expect("receive_fds");
                    let data = String::from_utf8_lossy(&m.data);
                    let index = data.split(';').next().unwrap_or_default();
                    let texts = read_each(fds);
                    let texts = if texts.is_empty() {
                        "-".to_owned()
                    } else {
                        texts.join(",")
                    };
                    say(&format!("m {index} {texts}"));
                }
            }
            _ => panic!("fdserve: unknown command {line:?}"),
        }
    }
}

fn read_each(fds: Vec<OwnedFd>) -> Vec<String> {
    fds.into_iter()
        .map(|fd| {
            let mut text = String::new();
            File::from(fd)
                .read_to_string(&mut text)
                .expect("read a descriptor to its end");
            text
        })
        .collect()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

// =======================================================================================
// The tests
// =======================================================================================

/// A pipe's write end crosses; the receiver writes through it, and the sender reads the
/// bytes from the read end, to its end: every copy of the write end is closed by then
/// (the sender's by `send_fds`, the receiver's when it dropped it).
fn pipe_write_end_crosses() {
    let mut peer = fdserve();
    let (read, write) = pipe();
    block_on(async {
        gproc::send_fds(peer.pid(), "p", "through a pipe", vec![write])
            .await
            .expect("send_fds");
    });
    peer.write_line("write p");
    peer.expect_line("wrote 1");
    assert_eq!(to_end(read, "the pipe's end"), "through a pipe");
}

/// A regular file (the receiver reads it) and a socket (the receiver writes to it, the
/// sender reads the other end).
fn file_and_socket_cross() {
    let mut peer = fdserve();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("content");
    std::fs::write(&path, "the file's content").expect("write the file");
    let file = File::open(&path).expect("open the file");
    let (mut ours, theirs) = UnixStream::pair().expect("a socket pair");
    block_on(async {
        gproc::send_fds(peer.pid(), "f", "", vec![file.into()])
            .await
            .expect("send the file");
        gproc::send_fds(peer.pid(), "s", "over the socket", vec![theirs.into()])
            .await
            .expect("send the socket");
    });
    peer.write_line("read f");
    peer.expect_line("read the file's content");
    peer.write_line("write s");
    peer.expect_line("wrote 1");
    let got = blocking_within(LONG, "the socket's end", move || {
        let mut text = String::new();
        ours.read_to_string(&mut text).expect("read the socket");
        text
    });
    assert_eq!(got, "over the socket");
}

/// Plain `receive_group` closes the descriptors of the message it takes: the receiver
/// holds them while the message waits, and is back to its count once it took it; the
/// pipes' read ends then see their end.
fn plain_receive_closes_them() {
    let mut peer = fdserve();
    warm_up(&mut peer);
    let baseline = count(&mut peer);
    let (reads, writes): (Vec<File>, Vec<OwnedFd>) = (0..3).map(|_| pipe()).unzip();
    gproc::blocking::send_fds(peer.pid(), "g", "three", writes).expect("send_fds");
    assert_eq!(
        count(&mut peer),
        baseline + 3,
        "held with the queued message"
    );
    peer.write_line("plain g");
    peer.expect_line("plain three");
    assert_eq!(count(&mut peer), baseline, "closed by plain receive");
    for read in reads {
        assert_eq!(to_end(read, "a pipe's end"), "");
    }
}

/// A message refused for the group limit closes its descriptors at the receiver: its
/// count is back to the baseline, and the pipe's read end sees its end.
fn group_limit_closes_them() {
    let mut peer = fdserve();
    warm_up(&mut peer);
    for i in 0..gproc::MAX_GROUPS {
        gproc::blocking::send_group(peer.pid(), &format!("h{i}"), "kept")
            .unwrap_or_else(|e| panic!("send to group h{i}: {e}"));
    }
    let baseline = count(&mut peer);
    let (read, write) = pipe();
    let e = gproc::blocking::send_fds(peer.pid(), "one-too-many", "x", vec![write])
        .expect_err("a group past the limit is refused");
    assert!(matches!(e, Error::GroupLimit { .. }), "{e:?}");
    assert_eq!(
        count(&mut peer),
        baseline,
        "the refused message's descriptor"
    );
    assert_eq!(to_end(read, "the pipe's end"), "");
}

/// A message queued (acknowledged: `send_fds` is `Ok`) and never taken: the receiver's
/// exit closes its descriptors with it.
fn receiver_exits_with_them_queued() {
    let mut peer = fdserve();
    let (read, write) = pipe();
    gproc::blocking::send_fds(peer.pid(), "never", "x", vec![write])
        .expect("queued, so acknowledged");
    peer.close_stdin();
    assert!(peer.wait(LONG).success());
    assert_eq!(to_end(read, "the pipe's end"), "");
}

/// A receiver killed while stopped, the message written to its socket and not read:
/// `send_fds` fails with `ConnectionLost`, and the descriptor in flight is closed (the
/// pipe's read end sees its end).
fn receiver_killed_before_acknowledging() {
    let mut peer = fdserve();
    warm_up(&mut peer);
    stop(peer.pid());
    let (read, write) = pipe();
    let ours = proc_fd_link(write.as_raw_fd());
    let raw = write.as_raw_fd();
    let target = peer.pid();
    let sending =
        std::thread::spawn(move || gproc::blocking::send_fds(target, "g", "x", vec![write]));
    // Written: the sender's copy is closed once the write that carries it returned.
    let (written, _) = poll_until(LONG, || proc_fd_link(raw) != ours);
    assert!(written, "the sender still holds the descriptor");
    peer.kill();
    let sent = blocking_within(LONG, "send_fds to a killed receiver", move || {
        sending.join().expect("the sending thread")
    });
    assert!(matches!(sent, Err(Error::ConnectionLost)), "{sent:?}");
    assert_eq!(to_end(read, "the pipe's end"), "");
}

fn proc_fd_link(fd: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
}

/// 254 descriptors are refused before anything is sent (the next message is the first
/// the receiver gets); 253 cross, and are closed once dropped.
fn too_many_then_the_most() {
    let mut peer = fdserve();
    warm_up(&mut peer);
    let baseline = count(&mut peer);
    let null = File::open("/dev/null").expect("/dev/null");
    let nulls = |n: usize| -> Vec<OwnedFd> {
        (0..n)
            .map(|_| null.try_clone().expect("dup").into())
            .collect()
    };
    let e = gproc::blocking::send_fds(peer.pid(), "t", "too many", nulls(254))
        .expect_err("254 descriptors");
    assert!(
        matches!(
            e,
            Error::TooManyFds {
                count: 254,
                limit: 253
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    for words in ["254", "253", "nothing was sent", "several messages"] {
        assert!(text.contains(words), "the error says {words:?}: {text}");
    }
    assert_eq!(gproc::MAX_FDS, 253);
    gproc::blocking::send_group(peer.pid(), "t", "after").expect("send");
    peer.write_line("recv t");
    peer.expect_line("got after fds=0");
    gproc::blocking::send_fds(peer.pid(), "t", "the most", nulls(253)).expect("253");
    assert_eq!(count(&mut peer), baseline + 253);
    peer.write_line("recv t");
    peer.expect_line("got the most fds=253");
    assert_eq!(count(&mut peer), baseline);
}

/// 200 messages of 4 KiB, every third with 1 to 3 pipes whose content names it, sent at
/// once to a stopped receiver (so that most wait in the sender and go out in batches,
/// several frames and their descriptors per write): all arrive in order, each with its
/// own descriptors.
fn burst_interleaved() {
    let mut peer = fdserve();
    warm_up(&mut peer);
    let target = peer.pid();
    let fds_of = |i: usize| if i % 3 == 0 { 1 + (i / 3) % 3 } else { 0 };
    let messages: Vec<(String, Vec<OwnedFd>)> = (0..BURST)
        .map(|i| {
            let mut data = format!("{i};");
            data.extend(std::iter::repeat_n('.', BURST_SIZE - data.len()));
            let fds = (0..fds_of(i))
                .map(|j| {
                    let (read, mut write) = {
                        let (read, write) = pipe();
                        (read, File::from(write))
                    };
                    write
                        .write_all(format!("{i}.{j}").as_bytes())
                        .expect("fill");
                    read.into()
                })
                .collect();
            (data, fds)
        })
        .collect();
    stop(target);
    block_on(async move {
        let sends = messages
            .into_iter()
            .map(|(data, fds)| gproc::send_fds(target, "b", data, fds));
        let mut all = std::pin::pin!(futures_util::future::join_all(sends));
        // One poll starts every send in order; the stopped receiver acknowledges none.
        std::future::poll_fn(|cx| {
            assert!(all.as_mut().poll(cx).is_pending(), "a stopped receiver");
            std::task::Poll::Ready(())
        })
        .await;
        signal(target, rustix::process::Signal::CONT);
        for (i, sent) in within(LONG, "the burst", all).await.into_iter().enumerate() {
            sent.unwrap_or_else(|e| panic!("message {i}: {e}"));
        }
    });
    peer.write_line(&format!("idents b {BURST}"));
    for i in 0..BURST {
        let texts: Vec<String> = (0..fds_of(i)).map(|j| format!("{i}.{j}")).collect();
        let texts = if texts.is_empty() {
            "-".to_owned()
        } else {
            texts.join(",")
        };
        peer.expect_line(&format!("m {i} {texts}"));
    }
}
