//! Bad input on a live endpoint: garbage, truncated frames and huge length claims written
//! straight into a process's socket. Each bad connection is closed, nothing is allocated
//! beyond the limit, and the process goes on serving every other peer with flat memory.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use gproc_runtime::wire;
use support::{block_on, exit_when_stdin_closes, ready, rss_kib, spawn_peer, within, Peer};

const TESTS: &[(&str, fn())] = &[
    (
        "garbage::each_bad_connection_is_closed",
        each_bad_connection_is_closed,
    ),
    (
        "garbage::endpoint_keeps_serving_with_flat_memory",
        endpoint_keeps_serving_with_flat_memory,
    ),
];

const ROLES: &[(&str, fn())] = &[("echo", role_echo)];

fn main() {
    support::run_tests(TESTS, ROLES);
}

/// Listens and echoes every message in the default group back to its sender.
fn role_echo() {
    exit_when_stdin_closes();
    block_on(async {
        gproc::listen().await.expect("echo: listen");
        ready();
        loop {
            let m = gproc::receive().await.expect("echo: receive");
            gproc::send(m.sender_pid, m.data)
                .await
                .expect("echo: answer");
        }
    });
}

/// A valid hello from this process, so that the frames after it reach the decoders.
fn hello() -> [u8; wire::HELLO_LEN] {
    wire::our_hello().encode()
}

/// One kind of bad input: the bytes written after connecting.
fn attacks() -> Vec<(&'static str, Vec<u8>)> {
    let mut huge_claim = hello().to_vec();
    huge_claim.extend_from_slice(&u32::MAX.to_le_bytes());
    huge_claim.extend_from_slice(&[1, 0]);

    let mut under_limit_claim_then_close = hello().to_vec();
    under_limit_claim_then_close.extend_from_slice(&(60u32 << 20).to_le_bytes());
    under_limit_claim_then_close.extend_from_slice(&[1, 0, 1, 2, 3]);

    let mut wrong_version = hello();
    wrong_version[4..6].copy_from_slice(&999u16.to_le_bytes());

    let mut lying_pid = hello();
    lying_pid[8..12].copy_from_slice(&1u32.to_le_bytes());

    let mut unknown_kind = hello().to_vec();
    unknown_kind.extend_from_slice(&[8, 0, 0, 0, 77, 0, 1, 2, 3, 4, 5, 6]);

    let mut group_past_end = hello().to_vec();
    group_past_end.extend_from_slice(&[4, 0, 0, 0, 1, 200, b'a', b'b']);

    let mut zero_length = hello().to_vec();
    zero_length.extend_from_slice(&[0, 0, 0, 0]);

    let mut not_utf8_group = hello().to_vec();
    not_utf8_group.extend_from_slice(&[5, 0, 0, 0, 1, 2, 0xff, 0xfe, b'x']);

    let noise: Vec<u8> = (0..256 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    vec![
        ("random bytes instead of a handshake", noise),
        ("truncated handshake", hello()[..7].to_vec()),
        ("length claim of 4 GiB", huge_claim),
        ("60 MiB claimed, 5 bytes sent", under_limit_claim_then_close),
        ("unknown protocol version", wrong_version.to_vec()),
        ("handshake with another PID", lying_pid.to_vec()),
        ("frame of an unknown kind", unknown_kind),
        ("group running past the frame", group_past_end),
        ("zero-length frame", zero_length),
        ("group name not UTF-8", not_utf8_group),
    ]
}

/// Writes `bytes` into a fresh connection to `pid`'s endpoint, then reads until the
/// endpoint closes it. Returns whether it closed (rather than timing out).
fn attack(pid: u32, bytes: &[u8], close_early: bool) -> bool {
    let mut stream =
        UnixStream::connect(support::socket_path(pid)).expect("connect to the endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    // The endpoint may close before taking everything: a failed write is fine.
    let _ = stream.write_all(bytes);
    if close_early {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/<pid>/fd")
        .count()
}

async fn echo_round_trip(peer: &Peer, payload: &[u8]) {
    within(Duration::from_secs(10), "echo round trip", async {
        gproc::send(peer.pid(), payload.to_vec())
            .await
            .expect("send to the echo peer");
        let m = gproc::receive().await.expect("receive the echo");
        assert_eq!(m.sender_pid, peer.pid());
        assert_eq!(m.data.as_ref(), payload, "the echo came back intact");
    })
    .await;
}

/// Every kind of bad input gets its connection closed by the endpoint, promptly, and a
/// well-behaved peer is served right after each one.
fn each_bad_connection_is_closed() {
    let peer = spawn_peer("echo", &[]);
    peer.line();
    block_on(async {
        for (what, bytes) in attacks() {
            // "60 MiB claimed": the endpoint waits for the rest; closing our side ends it.
            let close_early = what.starts_with("60 MiB") || what.starts_with("truncated");
            let pid = peer.pid();
            let closed = tokio::task::spawn_blocking(move || attack(pid, &bytes, close_early))
                .await
                .expect("attack thread");
            assert!(closed, "{what}: the endpoint did not close the connection");
            echo_round_trip(&peer, what.as_bytes()).await;
        }
    });
}

/// Hundreds of bad connections, interleaved with good traffic: the good traffic is served
/// throughout, and the endpoint's resident memory does not grow.
fn endpoint_keeps_serving_with_flat_memory() {
    let peer = spawn_peer("echo", &[]);
    peer.line();
    block_on(async {
        // Warm up the peer's allocator and buffers before the baseline.
        let big = vec![7u8; 1 << 20];
        for _ in 0..20 {
            echo_round_trip(&peer, &big).await;
        }
        let attacks = attacks();
        let round = |n: usize| {
            let (what, bytes) = attacks[n % attacks.len()].clone();
            let close_early = what.starts_with("60 MiB") || what.starts_with("truncated");
            let pid = peer.pid();
            tokio::task::spawn_blocking(move || {
                assert!(attack(pid, &bytes, close_early), "{what}: not closed")
            })
        };
        for n in 0..50 {
            round(n).await.expect("attack");
        }
        echo_round_trip(&peer, &big).await;
        let (baseline, baseline_fds) = (rss_kib(peer.pid()), open_fds(peer.pid()));
        for n in 0..400 {
            round(n).await.expect("attack");
            if n % 20 == 0 {
                echo_round_trip(&peer, b"still there?").await;
            }
        }
        echo_round_trip(&peer, &big).await;
        let (after, after_fds) = (rss_kib(peer.pid()), open_fds(peer.pid()));
        // Every bad connection was closed by the endpoint before `attack` returned.
        assert!(
            after_fds <= baseline_fds,
            "the endpoint holds {after_fds} descriptors after the attacks, {baseline_fds} before"
        );
        // 400 bad connections, 40 of which claimed 60 MiB: any leak of a connection's
        // buffers or tasks shows as many MiB. Allocator noise stays well under the bound.
        assert!(
            after <= baseline + 8 * 1024,
            "the endpoint's memory grew from {baseline} KiB to {after} KiB under bad input"
        );
    });
}
