//! RPC benchmarks: gproc's `#[gproc::service]` against tarpc over a Unix socket, served by
//! the same peer process, with both processes pinned to one CPU and unpinned. A plain tokio
//! Unix-socket echo of the same 64 KiB is the reference for the bytes echo.
//!
//! Run with `cargo bench --bench rpc` (criterion arguments after `--` are forwarded, e.g.
//! `cargo bench --bench rpc -- unpinned/add_latency`).
//!
//! tarpc runs as its documentation shows for Unix sockets: `tarpc::serde_transport` over a
//! `tokio::net::UnixStream` framed by tokio-util's `LengthDelimitedCodec`, with its fastest
//! codec, bincode (tokio-serde's `Bincode`). Both sides carry the 64 KiB payload as
//! `bytes::Bytes` (`gproc::Bytes`), which serde writes as one byte string, never element by
//! element.
//!
//! One binary plays three roles, chosen by environment variables:
//!
//! - top level (neither variable set): re-runs itself as a driver twice, `pinned` then
//!   `unpinned`, forwarding the command-line arguments, and fails if either driver failed;
//! - `GPROC_BENCH_DRIVER=pinned|unpinned`: pins itself to one CPU (or not) before any thread
//!   starts, starts the peer as a child sharing a fresh `GPROC_DIR`, waits for its `ready`
//!   line and runs the criterion groups `<placement>/add_latency` (`gproc`, `tarpc`),
//!   `<placement>/echo_64KiB` (`gproc`, `tarpc`, `raw_uds`) and
//!   `<placement>/add_64_in_flight` (`gproc`, `tarpc`, in calls per second);
//! - `GPROC_BENCH_ROLE=peer`: serves the gproc `Bench` service, the tarpc `BenchRpc` service
//!   on a Unix socket and a length-prefixed tokio `UnixListener` echo; exits when its stdin
//!   closes or its parent exits.
//!
//! With `GPROC_BENCH_PROBE=<scenario>:<iterations>` a driver skips criterion and runs one
//! scenario a fixed number of times, printing the time per operation; run it under
//! `perf stat` or `strace -c -f` to count context switches and syscalls per call.
//! Scenarios: `add_gproc`, `add_tarpc`, `echo_gproc`, `echo_tarpc`, `echo_uds`,
//! `inflight_gproc`, `inflight_tarpc`.

mod support;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput};
use futures_util::{Future, StreamExt};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::length_delimited::LengthDelimitedCodec;
use tokio::net::{UnixListener, UnixStream};

use support::{frame, payload, uds_echo_server, uds_round_trips, Uds, PROBE, STARTUP_TIMEOUT};

/// The tarpc socket and the raw echo socket, in the shared `GPROC_DIR` (not named
/// `<pid>.sock`, so gproc's sweep of stale endpoints leaves them alone).
const TARPC_NAME: &str = "tarpc.uds";
const UDS_NAME: &str = "echo.uds";
/// Calls in flight in the throughput benchmark, one task each.
const IN_FLIGHT: u64 = 64;
const LARGE: usize = 64 * 1024;

/// The service gproc serves.
#[gproc::service]
pub trait Bench {
    /// `a + b`.
    async fn add(&self, a: i32, b: i32) -> i32;
    /// Answers `data` unchanged.
    async fn echo(&self, data: gproc::Bytes) -> gproc::Bytes;
}

/// The same service for tarpc.
#[tarpc::service]
pub trait BenchRpc {
    /// `a + b`.
    async fn add(a: i32, b: i32) -> i32;
    /// Answers `data` unchanged.
    async fn echo(data: Bytes) -> Bytes;
}

#[derive(Clone)]
struct Server;

impl Bench for Server {
    async fn add(&self, a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }

    async fn echo(&self, data: gproc::Bytes) -> gproc::Bytes {
        data
    }
}

impl BenchRpc for Server {
    async fn add(self, _: tarpc::context::Context, a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }

    async fn echo(self, _: tarpc::context::Context, data: Bytes) -> Bytes {
        data
    }
}

fn main() -> ExitCode {
    support::main("rpc", peer, run_driver)
}

/// Everything a scenario calls through.
#[derive(Clone)]
struct Clients {
    gproc: BenchClient,
    tarpc: BenchRpcClient,
    uds: Uds,
}

fn run_driver(placement: &str, dir: &Path, peer: u32) -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| format!("tokio runtime: {e}"))?;
    let clients = rt.block_on(async {
        gproc::listen()
            .await
            .map_err(|e| format!("gproc listen: {e}"))?;
        let gproc = BenchClient::new(peer);
        gproc
            .wait_served(STARTUP_TIMEOUT)
            .await
            .map_err(|e| format!("the peer does not serve Bench: {e}"))?;

        let conn = UnixStream::connect(dir.join(TARPC_NAME))
            .await
            .map_err(|e| format!("connecting to the peer's tarpc socket: {e}"))?;
        let framed = LengthDelimitedCodec::builder().new_framed(conn);
        let transport = tarpc::serde_transport::new(framed, Bincode::default());
        let tarpc = BenchRpcClient::new(tarpc::client::Config::default(), transport).spawn();

        let stream = UnixStream::connect(dir.join(UDS_NAME))
            .await
            .map_err(|e| format!("connecting to the peer's echo socket: {e}"))?;
        let uds: Uds = Arc::new(tokio::sync::Mutex::new((stream, BytesMut::new())));
        let clients = Clients { gproc, tarpc, uds };

        // One of each before measuring, so that a broken peer fails fast instead of hanging.
        let check = async {
            for scenario in [
                Scenario::AddGproc,
                Scenario::AddTarpc,
                Scenario::EchoGproc,
                Scenario::EchoTarpc,
                Scenario::EchoUds,
                Scenario::InFlightGproc,
                Scenario::InFlightTarpc,
            ] {
                scenario.run(&clients, IN_FLIGHT).await;
            }
        };
        tokio::time::timeout(STARTUP_TIMEOUT, check)
            .await
            .map_err(|_| "no answer from the peer within 30 s".to_string())?;
        Ok::<_, String>(clients)
    })?;

    if let Ok(probe) = std::env::var(PROBE) {
        return rt.block_on(run_probe(&probe, &clients));
    }

    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();

    let groups: [(&str, &[(&str, Scenario)]); 3] = [
        (
            "add_latency",
            &[("gproc", Scenario::AddGproc), ("tarpc", Scenario::AddTarpc)],
        ),
        (
            "echo_64KiB",
            &[
                ("gproc", Scenario::EchoGproc),
                ("tarpc", Scenario::EchoTarpc),
                ("raw_uds", Scenario::EchoUds),
            ],
        ),
        (
            "add_64_in_flight",
            &[
                ("gproc", Scenario::InFlightGproc),
                ("tarpc", Scenario::InFlightTarpc),
            ],
        ),
    ];
    for (name, scenarios) in groups {
        let mut group = c.benchmark_group(format!("{placement}/{name}"));
        group.throughput(Throughput::Elements(1));
        for &(label, scenario) in scenarios {
            group.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let clients = clients.clone();
                    async move { spawned(async move { scenario.run(&clients, iters).await }).await }
                })
            });
        }
        group.finish();
    }

    c.final_summary();
    Ok(())
}

/// Runs a measurement as a task on the runtime's workers, where a server's code runs,
/// rather than on the thread blocked in `block_on`.
async fn spawned<F>(fut: F) -> Duration
where
    F: Future<Output = Duration> + Send + 'static,
{
    tokio::spawn(fut).await.expect("benchmark task panicked")
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    AddGproc,
    AddTarpc,
    EchoGproc,
    EchoTarpc,
    EchoUds,
    InFlightGproc,
    InFlightTarpc,
}

impl Scenario {
    /// Runs `iters` operations and returns how long they took.
    async fn run(self, clients: &Clients, iters: u64) -> Duration {
        match self {
            Scenario::AddGproc => gproc_adds(clients.gproc.clone(), iters).await,
            Scenario::AddTarpc => tarpc_adds(clients.tarpc.clone(), iters).await,
            Scenario::EchoGproc => gproc_echoes(&clients.gproc, payload(LARGE), iters).await,
            Scenario::EchoTarpc => tarpc_echoes(&clients.tarpc, payload(LARGE), iters).await,
            Scenario::EchoUds => {
                uds_round_trips(clients.uds.clone(), frame(&payload(LARGE)), iters).await
            }
            Scenario::InFlightGproc => {
                let client = clients.gproc.clone();
                in_flight(iters, move |n| gproc_adds(client.clone(), n)).await
            }
            Scenario::InFlightTarpc => {
                let client = clients.tarpc.clone();
                in_flight(iters, move |n| tarpc_adds(client.clone(), n)).await
            }
        }
    }

    fn from_name(name: &str) -> Option<Scenario> {
        Some(match name {
            "add_gproc" => Scenario::AddGproc,
            "add_tarpc" => Scenario::AddTarpc,
            "echo_gproc" => Scenario::EchoGproc,
            "echo_tarpc" => Scenario::EchoTarpc,
            "echo_uds" => Scenario::EchoUds,
            "inflight_gproc" => Scenario::InFlightGproc,
            "inflight_tarpc" => Scenario::InFlightTarpc,
            _ => return None,
        })
    }
}

/// Runs one scenario `iterations` times and prints the time per operation.
async fn run_probe(probe: &str, clients: &Clients) -> Result<(), String> {
    let (name, iterations) = probe
        .split_once(':')
        .and_then(|(s, n)| Some((s, n.parse::<u64>().ok()?)))
        .ok_or_else(|| format!("{PROBE} must be <scenario>:<iterations>, not {probe:?}"))?;
    let scenario =
        Scenario::from_name(name).ok_or_else(|| format!("unknown probe scenario {name:?}"))?;
    let clients = clients.clone();
    let elapsed = spawned(async move { scenario.run(&clients, iterations).await }).await;
    println!(
        "probe {name}: {iterations} operations in {elapsed:?}, {:.2} µs each, {:.0}/s",
        elapsed.as_secs_f64() * 1e6 / iterations.max(1) as f64,
        iterations as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// `iters` sequential `add` calls through gproc.
async fn gproc_adds(client: BenchClient, iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        let a = i as i32;
        let sum = client.add(a, 1).await.expect("gproc add");
        assert_eq!(sum, a.wrapping_add(1));
    }
    start.elapsed()
}

/// `iters` sequential `add` calls through tarpc.
async fn tarpc_adds(client: BenchRpcClient, iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        let a = i as i32;
        let sum = client
            .add(tarpc::context::current(), a, 1)
            .await
            .expect("tarpc add");
        assert_eq!(sum, a.wrapping_add(1));
    }
    start.elapsed()
}

/// `iters` sequential echoes of `data` through gproc.
async fn gproc_echoes(client: &BenchClient, data: Bytes, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let echo = client.echo(data.clone()).await.expect("gproc echo");
        assert_eq!(echo.len(), data.len(), "echo of another size");
    }
    start.elapsed()
}

/// `iters` sequential echoes of `data` through tarpc.
async fn tarpc_echoes(client: &BenchRpcClient, data: Bytes, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let echo = client
            .echo(tarpc::context::current(), data.clone())
            .await
            .expect("tarpc echo");
        assert_eq!(echo.len(), data.len(), "echo of another size");
    }
    start.elapsed()
}

/// `iters` calls made by [`IN_FLIGHT`] tasks, each calling in a loop.
async fn in_flight<F, Fut>(iters: u64, calls: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Duration> + Send + 'static,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|i| tokio::spawn(calls(iters / IN_FLIGHT + u64::from(i < iters % IN_FLIGHT))))
        .collect();
    for task in tasks {
        task.await.expect("caller task panicked");
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
            eprintln!("[rpc bench peer] tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let dir = PathBuf::from(std::env::var_os(gproc::ENV_DIR).ok_or("GPROC_DIR is not set")?);
        gproc::listen()
            .await
            .map_err(|e| format!("gproc listen: {e}"))?;
        let tarpc = UnixListener::bind(dir.join(TARPC_NAME))
            .map_err(|e| format!("binding the tarpc socket: {e}"))?;
        let echo = UnixListener::bind(dir.join(UDS_NAME))
            .map_err(|e| format!("binding the echo socket: {e}"))?;
        tokio::spawn(tarpc_server(tarpc));
        tokio::spawn(uds_echo_server(echo));
        tokio::spawn(async {
            if let Err(e) = BenchServer::new(Server).serve().await {
                eprintln!("[rpc bench peer] serving Bench: {e}");
                std::process::exit(1);
            }
        });
        println!("ready");
        gproc::parent_exited().await;
        Ok::<_, String>(())
    });
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("[rpc bench peer] {e}");
            std::process::exit(1)
        }
    }
}

/// Serves `BenchRpc` on every connection, each request in its own task (as tarpc's
/// examples do).
async fn tarpc_server(listener: UnixListener) {
    while let Ok((conn, _)) = listener.accept().await {
        let framed = LengthDelimitedCodec::builder().new_framed(conn);
        let transport = tarpc::serde_transport::new(framed, Bincode::default());
        let requests = BaseChannel::with_defaults(transport)
            .execute(Server.serve())
            .for_each(|response| async {
                tokio::spawn(response);
            });
        tokio::spawn(requests);
    }
}
