//! Raw messaging benchmarks: gproc against a plain tokio Unix-socket ping-pong between the
//! same two processes, with both processes pinned to one CPU and unpinned.
//!
//! Run with `cargo bench --bench raw` (criterion arguments after `--` are forwarded, e.g.
//! `cargo bench --bench raw -- unpinned/roundtrip_16B`).
//!
//! One binary plays three roles, chosen by environment variables:
//!
//! - top level (neither variable set): re-runs itself as a driver twice, `pinned` then
//!   `unpinned`, forwarding the command-line arguments, and fails if either driver failed;
//! - `GPROC_BENCH_DRIVER=pinned|unpinned`: pins itself to one CPU (or not) before any thread
//!   starts, starts the peer as a child sharing a fresh `GPROC_DIR`, waits for its `ready`
//!   line and runs the criterion groups `<placement>/roundtrip_16B`, `.../roundtrip_64KiB`
//!   (each with `gproc` and `tokio_uds`) and `<placement>/ack_send_16B` (`gproc_64tasks`);
//! - `GPROC_BENCH_ROLE=peer`: echoes the default gproc group, drains the `sink` group and
//!   serves a length-prefixed tokio `UnixListener` echo; exits when its stdin closes or its
//!   parent exits.
//!
//! With `GPROC_BENCH_PROBE=<scenario>:<iterations>` a driver skips criterion and runs one
//! scenario a fixed number of times, printing the time per operation; run it under
//! `perf stat` or `strace -c -f` to count context switches and syscalls per operation.
//! Scenarios: `rt_gproc_16`, `rt_gproc_65536`, `rt_uds_16`, `rt_uds_65536`, `ack_send_16`.

mod support;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput};
use tokio::net::{UnixListener, UnixStream};

use support::{frame, payload, uds_echo_server, uds_round_trips, Uds, PROBE, STARTUP_TIMEOUT};

/// The tokio echo socket, in the shared `GPROC_DIR` (not named `<pid>.sock`, so gproc's
/// sweep of stale endpoints leaves it alone).
const UDS_NAME: &str = "echo.uds";
/// The group the throughput benchmark sends to.
const SINK: &str = "sink";
/// Concurrent senders in the throughput benchmark.
const SENDERS: u64 = 64;
const SMALL: usize = 16;
const LARGE: usize = 64 * 1024;

fn main() -> ExitCode {
    support::main("raw", peer, run_driver)
}

fn run_driver(placement: &str, dir: &Path, peer: u32) -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| format!("tokio runtime: {e}"))?;
    let uds: Uds = rt.block_on(async {
        gproc::listen()
            .await
            .map_err(|e| format!("gproc listen: {e}"))?;
        let stream = UnixStream::connect(dir.join(UDS_NAME))
            .await
            .map_err(|e| format!("connecting to the peer's echo socket: {e}"))?;
        let uds: Uds = Arc::new(tokio::sync::Mutex::new((stream, BytesMut::new())));
        // One of each before measuring, so that a broken peer fails fast instead of hanging.
        let check = async {
            for size in [SMALL, LARGE] {
                let data = payload(size);
                gproc_round_trips(peer, data.clone(), 1).await;
                uds_round_trips(uds.clone(), frame(&data), 1).await;
            }
            ack_sends(peer, 1).await;
        };
        tokio::time::timeout(STARTUP_TIMEOUT, check)
            .await
            .map_err(|_| "no answer from the peer within 30 s".to_string())?;
        Ok::<_, String>(uds)
    })?;

    if let Ok(probe) = std::env::var(PROBE) {
        return rt.block_on(run_probe(&probe, peer, uds));
    }

    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();

    for (size, label) in [(SMALL, "16B"), (LARGE, "64KiB")] {
        let data = payload(size);
        let framed = frame(&data);
        let mut group = c.benchmark_group(format!("{placement}/roundtrip_{label}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::from_parameter("gproc"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let data = data.clone();
                async move { spawned(gproc_round_trips(peer, data, iters)).await }
            })
        });
        group.bench_function(BenchmarkId::from_parameter("tokio_uds"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (uds, framed) = (uds.clone(), framed.clone());
                async move { spawned(uds_round_trips(uds, framed, iters)).await }
            })
        });
        group.finish();
    }

    let mut group = c.benchmark_group(format!("{placement}/ack_send_16B"));
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter("gproc_64tasks"), |b| {
        b.to_async(&rt)
            .iter_custom(|iters| async move { spawned(ack_sends(peer, iters)).await })
    });
    group.finish();

    c.final_summary();
    Ok(())
}

/// Runs a measurement as a task on the runtime's workers, where a server's code runs,
/// rather than on the thread blocked in `block_on`.
async fn spawned<F>(fut: F) -> Duration
where
    F: std::future::Future<Output = Duration> + Send + 'static,
{
    tokio::spawn(fut).await.expect("benchmark task panicked")
}

/// Runs one scenario `iterations` times and prints the time per operation.
async fn run_probe(probe: &str, peer: u32, uds: Uds) -> Result<(), String> {
    let (scenario, iterations) = probe
        .split_once(':')
        .and_then(|(s, n)| Some((s, n.parse::<u64>().ok()?)))
        .ok_or_else(|| format!("{PROBE} must be <scenario>:<iterations>, not {probe:?}"))?;
    let elapsed = match scenario {
        "rt_gproc_16" => spawned(gproc_round_trips(peer, payload(SMALL), iterations)).await,
        "rt_gproc_65536" => spawned(gproc_round_trips(peer, payload(LARGE), iterations)).await,
        "rt_uds_16" => spawned(uds_round_trips(uds, frame(&payload(SMALL)), iterations)).await,
        "rt_uds_65536" => spawned(uds_round_trips(uds, frame(&payload(LARGE)), iterations)).await,
        "ack_send_16" => spawned(ack_sends(peer, iterations)).await,
        other => return Err(format!("unknown probe scenario {other:?}")),
    };
    println!(
        "probe {scenario}: {iterations} operations in {elapsed:?}, {:.2} µs each, {:.0}/s",
        elapsed.as_secs_f64() * 1e6 / iterations.max(1) as f64,
        iterations as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// `send` to the peer's default group, then `receive` its echo, `iters` times.
async fn gproc_round_trips(peer: u32, data: Bytes, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        gproc::send(peer, data.clone()).await.expect("gproc::send");
        let echo = gproc::receive().await.expect("gproc::receive");
        assert_eq!(echo.data.len(), data.len(), "echo of another size");
    }
    start.elapsed()
}

/// `iters` acknowledged 16-byte sends to the peer's `sink` group from [`SENDERS`] tasks.
async fn ack_sends(peer: u32, iters: u64) -> Duration {
    let data = Bytes::from_static(&[7u8; SMALL]);
    let start = Instant::now();
    let tasks: Vec<_> = (0..SENDERS)
        .map(|i| {
            let n = iters / SENDERS + u64::from(i < iters % SENDERS);
            let data = data.clone();
            tokio::spawn(async move {
                for _ in 0..n {
                    gproc::send_group(peer, SINK, data.clone())
                        .await
                        .expect("gproc::send_group");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("sender task panicked");
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------------------
// Peer

fn peer() -> ExitCode {
    support::exit_when_stdin_closes();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("[raw bench peer] tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let dir = PathBuf::from(std::env::var_os(gproc::ENV_DIR).ok_or("GPROC_DIR is not set")?);
        gproc::listen()
            .await
            .map_err(|e| format!("gproc listen: {e}"))?;
        let listener = UnixListener::bind(dir.join(UDS_NAME))
            .map_err(|e| format!("binding the echo socket: {e}"))?;
        tokio::spawn(uds_echo_server(listener));
        tokio::spawn(gproc_echo());
        tokio::spawn(drain_sink());
        println!("ready");
        gproc::parent_exited().await;
        Ok::<_, String>(())
    });
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("[raw bench peer] {e}");
            std::process::exit(1)
        }
    }
}

/// Sends every message of the default group back to its sender.
async fn gproc_echo() {
    loop {
        match gproc::receive().await {
            Ok(msg) => {
                if let Err(e) = gproc::send(msg.sender_pid, msg.data).await {
                    eprintln!("[raw bench peer] echo to {}: {e}", msg.sender_pid);
                }
            }
            Err(e) => {
                eprintln!("[raw bench peer] receive: {e}");
                return;
            }
        }
    }
}

async fn drain_sink() {
    while gproc::receive_group(SINK).await.is_ok() {}
}
