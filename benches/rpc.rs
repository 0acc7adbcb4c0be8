//! RPC benchmarks: gproc's `#[gproc::service]` against tarpc over a Unix socket, served by
//! the same peer process, on three flavors of driver and peer (a multi-thread tokio
//! runtime, a current-thread one, and blocking), with both processes pinned to one CPU and
//! unpinned. A plain Unix-socket echo of the same 64 KiB is the reference for the bytes
//! echo, and a plain 16-byte ping-pong the reference for `add`'s latency. A server stream
//! (`gproc::Stream`) is measured beside a loop of raw acknowledged sends of the same size.
//!
//! Run with `cargo bench -p gproc-benches --bench rpc` (criterion arguments after `--` are forwarded, e.g.
//! `cargo bench -p gproc-benches --bench rpc -- unpinned/current_thread/add_latency`;
//! `GPROC_BENCH_FLAVOR=blocking cargo bench -p gproc-benches --bench rpc` runs one flavor's drivers only).
//! The roles (top level, drivers, peer) are described in `benches/support/mod.rs`.
//!
//! tarpc runs as its documentation shows for Unix sockets: `tarpc::serde_transport` over a
//! `tokio::net::UnixStream` framed by tokio-util's `LengthDelimitedCodec`, with its fastest
//! codec, bincode (tokio-serde's `Bincode`), each request spawned as a task
//! (`BaseChannel::execute`), on a runtime of the driver's flavor. Both sides carry the
//! 64 KiB payload as `bytes::Bytes` (`gproc::Bytes`), which serde writes as one byte
//! string, never element by element.
//!
//! The blocking flavor: the driver calls gproc with no runtime, each call run to completion
//! by [`block_on`] on the calling thread (64 threads for the calls in flight); the plain
//! echo is a `std` `UnixStream`. tarpc cannot run without a runtime, so there it runs on a
//! current-thread runtime in both processes (labelled `tarpc_current_thread`). gproc's
//! `serve()` needs a tokio runtime (it spawns each handler on the caller's runtime), so the blocking flavor's peer serves it from a current-thread runtime
//! on a thread of its own (see [`on_current_thread`]).
//!
//! Criterion groups, each `<placement>/<flavor>/<scenario>`: `add_latency` (`gproc`,
//! `tarpc`, and the plain 16-byte ping-pong `tokio_uds` or `std_uds`), `echo_64KiB`
//! (`gproc`, `tarpc`, `tokio_uds` or `std_uds`), `add_64_in_flight` (`gproc`, `tarpc`, in
//! calls per second) and `stream_16B` (in items or messages per second):
//!
//! - `stream_items`: one call of `items(n)`, a `gproc::Stream<[u8; 16]>` of `n` items (an
//!   operation is an item: a sample of `n` iterations is one stream of `n` items, its
//!   opening included), consumed as fast as they come; for `blocking`, the call and each
//!   `next()` run by `gproc::blocking::block_on`, as a program with no runtime reads it;
//! - `send_loop`: `n` raw `gproc::send_group(peer, "sink", 16 bytes)`, each awaited
//!   (acknowledged) before the next (`gproc::blocking::send_group` for `blocking`); the
//!   peer drains the group.
//!
//! Probe scenarios (`GPROC_BENCH_PROBE=[<flavor>/]<scenario>:<iterations>`): `add_gproc`,
//! `add_tarpc`, `add_uds`, `echo_gproc`, `echo_tarpc`, `echo_uds`, `inflight_gproc`,
//! `inflight_tarpc`, `stream_items`, `send_loop`.

mod support;

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::length_delimited::LengthDelimitedCodec;
use tokio::net::UnixListener;
use tokio::runtime::Runtime;

use support::{
    frame, in_tasks, payload, spawn_server, spawn_server_task, std_echo_server, std_round_trips,
    timed, tokio_echo_server, tokio_round_trips, Benchmark, Conn, Driver, Flavor, Op, Row, StdUds,
    Threads, TokioUds, STARTUP_TIMEOUT,
};

/// The tarpc socket and the raw echo socket, in the shared `GPROC_DIR` (not named
/// `<pid>.sock`, so gproc's sweep of stale endpoints leaves them alone).
const TARPC_NAME: &str = "tarpc.uds";
const UDS_NAME: &str = "echo.uds";
/// Calls in flight in the throughput benchmark, one task (or thread) each.
const IN_FLIGHT: usize = 64;
const SMALL: usize = 16;
const LARGE: usize = 64 * 1024;
/// The group the send loop sends to, drained by the peer.
const SINK: &str = "sink";
/// Items of the stream checked before measuring: several windows of credit (64 items).
const STREAM_CHECK: u64 = 1000;

/// A stream's item: the same 16 bytes as a send of the send loop (postcard writes a byte
/// array as its bytes, no length), its index in the first 8, little-endian.
type Item = [u8; SMALL];

fn item(i: u64) -> Item {
    let mut item = [0u8; SMALL];
    item[..8].copy_from_slice(&i.to_le_bytes());
    item
}

/// Runs a gproc future to completion on this thread, with no runtime: how the blocking
/// flavor calls gproc's async RPC client. `gproc::blocking::block_on` replaces this body
/// when the new transport brings it.
fn block_on<F: Future>(fut: F) -> F::Output {
    gproc::blocking::block_on(fut)
}

/// The service gproc serves.
#[gproc::service]
pub trait Bench {
    /// `a + b`.
    async fn add(&self, a: i32, b: i32) -> i32;
    /// Answers `data` unchanged.
    async fn echo(&self, data: gproc::Bytes) -> gproc::Bytes;
    /// `n` items, each [`item`]`(i)` for `i` in `0..n`.
    async fn items(&self, n: u64) -> gproc::Stream<Item>;
}

/// The same service for tarpc (no stream: `items` is gproc's only).
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

    async fn items(&self, n: u64) -> gproc::Stream<Item> {
        gproc::Stream::new(futures_util::stream::iter((0..n).map(item)))
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
    support::main::<Rpc>()
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    AddGproc,
    AddTarpc,
    /// The plain 16-byte ping-pong, `add`'s reference.
    AddUds,
    EchoGproc,
    EchoTarpc,
    EchoUds,
    InFlightGproc,
    InFlightTarpc,
    /// One stream of 16-byte items.
    StreamItems,
    /// Acknowledged 16-byte sends, one after the other.
    SendLoop,
}

impl Scenario {
    const ALL: [Scenario; 10] = [
        Scenario::AddGproc,
        Scenario::AddTarpc,
        Scenario::AddUds,
        Scenario::EchoGproc,
        Scenario::EchoTarpc,
        Scenario::EchoUds,
        Scenario::InFlightGproc,
        Scenario::InFlightTarpc,
        Scenario::StreamItems,
        Scenario::SendLoop,
    ];

    fn group(self) -> &'static str {
        match self {
            Scenario::AddGproc | Scenario::AddTarpc | Scenario::AddUds => "add_latency",
            Scenario::EchoGproc | Scenario::EchoTarpc | Scenario::EchoUds => "echo_64KiB",
            Scenario::InFlightGproc | Scenario::InFlightTarpc => "add_64_in_flight",
            Scenario::StreamItems | Scenario::SendLoop => "stream_16B",
        }
    }

    fn probe(self) -> &'static str {
        match self {
            Scenario::AddGproc => "add_gproc",
            Scenario::AddTarpc => "add_tarpc",
            Scenario::AddUds => "add_uds",
            Scenario::EchoGproc => "echo_gproc",
            Scenario::EchoTarpc => "echo_tarpc",
            Scenario::EchoUds => "echo_uds",
            Scenario::InFlightGproc => "inflight_gproc",
            Scenario::InFlightTarpc => "inflight_tarpc",
            Scenario::StreamItems => "stream_items",
            Scenario::SendLoop => "send_loop",
        }
    }

    fn label(self, flavor: Flavor) -> &'static str {
        let blocking = flavor == Flavor::Blocking;
        match self {
            Scenario::AddGproc | Scenario::EchoGproc | Scenario::InFlightGproc => "gproc",
            Scenario::AddTarpc | Scenario::EchoTarpc | Scenario::InFlightTarpc if blocking => {
                "tarpc_current_thread"
            }
            Scenario::AddTarpc | Scenario::EchoTarpc | Scenario::InFlightTarpc => "tarpc",
            Scenario::AddUds | Scenario::EchoUds if blocking => "std_uds",
            Scenario::AddUds | Scenario::EchoUds => "tokio_uds",
            Scenario::StreamItems => "stream_items",
            Scenario::SendLoop => "send_loop",
        }
    }
}

struct Rpc;

impl Benchmark for Rpc {
    const NAME: &'static str = "rpc";

    async fn serve(dir: &Path) -> Result<(), String> {
        let tarpc = UnixListener::bind(dir.join(TARPC_NAME))
            .map_err(|e| format!("binding the tarpc socket: {e}"))?;
        let echo = UnixListener::bind(dir.join(UDS_NAME))
            .map_err(|e| format!("binding the echo socket: {e}"))?;
        spawn_server_task("tarpc", tarpc_server(tarpc));
        spawn_server_task("echo", tokio_echo_server(echo));
        spawn_server_task("gproc-serve", BenchServer::new(Server).serve());
        spawn_server_task("gproc-sink", drain_sink());
        Ok(())
    }

    fn serve_blocking(dir: &Path) -> Result<(), String> {
        std_echo_server(&dir.join(UDS_NAME))?;
        let tarpc = std::os::unix::net::UnixListener::bind(dir.join(TARPC_NAME))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("binding the tarpc socket: {e}"))?;
        spawn_server("tarpc", move || {
            on_current_thread(async move {
                let listener = UnixListener::from_std(tarpc)?;
                tarpc_server(listener).await
            })
        })?;
        // The sink's drain is a task beside the server rather than a blocking thread of
        // its own: a second thread waiting on gproc would read the sockets in turn with
        // the runtime, and hand it the requests it read (a wake-up more per call).
        spawn_server("gproc-serve", || {
            on_current_thread(async {
                spawn_server_task("gproc-sink", drain_sink());
                BenchServer::new(Server).serve().await
            })
        })
    }

    fn run(driver: &Driver) -> Result<(), String> {
        let flavor_runtime = driver.flavor.runtime()?;
        support::listen(flavor_runtime.as_ref())?;
        let blocking = flavor_runtime.is_none();
        // With no runtime of the flavor, tarpc's runs on a current-thread one.
        let runtime = match flavor_runtime {
            Some(runtime) => runtime,
            None => Flavor::CurrentThread.runtime()?.expect("a tokio flavor"),
        };

        let gproc = BenchClient::new(driver.peer);
        let served = gproc.wait_served(STARTUP_TIMEOUT);
        if blocking {
            block_on(served)
        } else {
            runtime.block_on(served)
        }
        .map_err(|e| format!("the peer does not serve Bench: {e}"))?;

        let tarpc = runtime.block_on(async {
            let conn = tokio::net::UnixStream::connect(driver.dir.join(TARPC_NAME))
                .await
                .map_err(|e| format!("connecting to the peer's tarpc socket: {e}"))?;
            let framed = LengthDelimitedCodec::builder().new_framed(conn);
            let transport = tarpc::serde_transport::new(framed, Bincode::default());
            Ok::<_, String>(
                BenchRpcClient::new(tarpc::client::Config::default(), transport).spawn(),
            )
        })?;

        let uds_path = driver.dir.join(UDS_NAME);
        let mode = if blocking {
            Mode::Blocking {
                uds: Conn::<std::os::unix::net::UnixStream>::connect(&uds_path)?,
                threads: Threads::new(IN_FLIGHT),
            }
        } else {
            Mode::Tokio(runtime.block_on(Conn::<tokio::net::UnixStream>::connect(&uds_path))?)
        };
        let clients = Clients {
            runtime,
            gproc,
            tarpc,
            mode,
        };

        let rows: Vec<Row> = Scenario::ALL
            .into_iter()
            .map(|scenario| Row {
                group: scenario.group(),
                label: scenario.label(driver.flavor),
                probe: scenario.probe(),
                check: match scenario {
                    Scenario::InFlightGproc | Scenario::InFlightTarpc => IN_FLIGHT as u64,
                    Scenario::StreamItems => STREAM_CHECK,
                    _ => 1,
                },
                op: clients.op(driver.peer, scenario),
            })
            .collect();
        driver.measure(&rows)
    }
}

/// Everything a driver calls through.
struct Clients {
    /// The flavor's runtime, or for the blocking flavor the current-thread one of tarpc.
    runtime: Runtime,
    gproc: BenchClient,
    tarpc: BenchRpcClient,
    mode: Mode,
}

/// How gproc and the plain echo run.
enum Mode {
    /// On [`Clients::runtime`], with a tokio connection for the echo.
    Tokio(TokioUds),
    /// On the driver's thread (and [`IN_FLIGHT`] threads), with a `std` connection.
    Blocking { uds: StdUds, threads: Threads },
}

impl Clients {
    fn op(&self, peer: u32, scenario: Scenario) -> Op<'_> {
        let runtime = &self.runtime;
        let (gproc, tarpc) = (self.gproc.clone(), self.tarpc.clone());
        let data = payload(LARGE);
        let small = payload(SMALL);
        match (scenario, &self.mode) {
            (Scenario::AddTarpc, _) => Op::task(runtime, move |n| tarpc_adds(tarpc.clone(), n)),
            (Scenario::EchoTarpc, _) => Op::task(runtime, move |n| {
                tarpc_echoes(tarpc.clone(), data.clone(), n)
            }),
            (Scenario::InFlightTarpc, _) => Op::task(runtime, move |n| {
                let tarpc = tarpc.clone();
                in_tasks(IN_FLIGHT, n, move |_, k| tarpc_adds(tarpc.clone(), k))
            }),
            (Scenario::AddGproc, Mode::Tokio(_)) => {
                Op::task(runtime, move |n| gproc_adds(gproc.clone(), n))
            }
            (Scenario::EchoGproc, Mode::Tokio(_)) => Op::task(runtime, move |n| {
                gproc_echoes(gproc.clone(), data.clone(), n)
            }),
            (Scenario::InFlightGproc, Mode::Tokio(_)) => Op::task(runtime, move |n| {
                let gproc = gproc.clone();
                in_tasks(IN_FLIGHT, n, move |_, k| gproc_adds(gproc.clone(), k))
            }),
            (Scenario::EchoUds, Mode::Tokio(uds)) => {
                let (uds, framed) = (uds.clone(), frame(&data));
                Op::task(runtime, move |n| {
                    tokio_round_trips(uds.clone(), framed.clone(), n)
                })
            }
            (Scenario::AddUds, Mode::Tokio(uds)) => {
                let (uds, framed) = (uds.clone(), frame(&small));
                Op::task(runtime, move |n| {
                    tokio_round_trips(uds.clone(), framed.clone(), n)
                })
            }
            (Scenario::StreamItems, Mode::Tokio(_)) => {
                Op::task(runtime, move |n| gproc_stream(gproc.clone(), n))
            }
            (Scenario::SendLoop, Mode::Tokio(_)) => {
                Op::task(runtime, move |n| gproc_sends(peer, small.clone(), n))
            }
            (Scenario::AddGproc, Mode::Blocking { .. }) => {
                Op::blocking(move |n| gproc_adds_blocking(&gproc, n))
            }
            (Scenario::EchoGproc, Mode::Blocking { .. }) => Op::blocking(move |n| {
                timed(n, |_| {
                    check_echo(
                        &data,
                        block_on(gproc.echo(data.clone())).expect("gproc echo"),
                    )
                })
            }),
            (Scenario::InFlightGproc, Mode::Blocking { threads, .. }) => Op::blocking(move |n| {
                let gproc = gproc.clone();
                threads.run(
                    n,
                    Arc::new(move |_, k| {
                        gproc_adds_blocking(&gproc, k);
                    }),
                )
            }),
            (Scenario::EchoUds, Mode::Blocking { uds, .. }) => {
                let framed = frame(&data);
                Op::blocking(move |n| std_round_trips(uds, &framed, n))
            }
            (Scenario::AddUds, Mode::Blocking { uds, .. }) => {
                let framed = frame(&small);
                Op::blocking(move |n| std_round_trips(uds, &framed, n))
            }
            (Scenario::StreamItems, Mode::Blocking { .. }) => {
                Op::blocking(move |n| gproc_stream_blocking(&gproc, n))
            }
            (Scenario::SendLoop, Mode::Blocking { .. }) => Op::blocking(move |n| {
                timed(n, |_| {
                    gproc::blocking::send_group(peer, SINK, small.clone())
                        .expect("gproc::blocking::send_group")
                })
            }),
        }
    }
}

fn check_sum(i: u64, sum: i32) {
    assert_eq!(sum, (i as i32).wrapping_add(1));
}

fn check_echo(data: &Bytes, echo: Bytes) {
    assert_eq!(echo.len(), data.len(), "echo of another size");
}

/// `iters` sequential `add` calls through gproc.
async fn gproc_adds(client: BenchClient, iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        check_sum(i, client.add(i as i32, 1).await.expect("gproc add"));
    }
    start.elapsed()
}

/// `iters` sequential `add` calls through gproc, each run to completion by [`block_on`].
fn gproc_adds_blocking(client: &BenchClient, iters: u64) -> Duration {
    timed(iters, |i| {
        check_sum(i, block_on(client.add(i as i32, 1)).expect("gproc add"))
    })
}

/// `iters` sequential `add` calls through tarpc.
async fn tarpc_adds(client: BenchRpcClient, iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        let sum = client
            .add(tarpc::context::current(), i as i32, 1)
            .await
            .expect("tarpc add");
        check_sum(i, sum);
    }
    start.elapsed()
}

/// `iters` sequential echoes of `data` through gproc.
async fn gproc_echoes(client: BenchClient, data: Bytes, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        check_echo(&data, client.echo(data.clone()).await.expect("gproc echo"));
    }
    start.elapsed()
}

/// Checks that a stream's item `i` is [`item`]`(i)`, there before the stream's end at `n`.
fn check_item(i: u64, n: u64, got: Option<Result<Item, gproc::RpcError>>) {
    let got = got.unwrap_or_else(|| panic!("the stream ended after {i} of {n} items"));
    assert_eq!(got.expect("gproc stream item"), item(i), "item {i}");
}

/// Checks that a stream of `n` items ends after them.
fn check_end(n: u64, end: Option<Result<Item, gproc::RpcError>>) {
    assert!(end.is_none(), "the stream went on after {n} items");
}

/// One stream of `n` items through gproc, each taken as soon as it is there.
async fn gproc_stream(client: BenchClient, n: u64) -> Duration {
    let start = Instant::now();
    let mut items = client.items(n).await.expect("gproc items");
    for i in 0..n {
        check_item(i, n, items.next().await);
    }
    check_end(n, items.next().await);
    start.elapsed()
}

/// [`gproc_stream`] with no runtime: the call and each `next()` run by [`block_on`].
fn gproc_stream_blocking(client: &BenchClient, n: u64) -> Duration {
    let start = Instant::now();
    let mut items = block_on(client.items(n)).expect("gproc items");
    for i in 0..n {
        check_item(i, n, block_on(items.next()));
    }
    check_end(n, block_on(items.next()));
    start.elapsed()
}

/// `iters` acknowledged sends of `data` to the peer's [`SINK`] group, one after the other.
async fn gproc_sends(peer: u32, data: Bytes, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        gproc::send_group(peer, SINK, data.clone())
            .await
            .expect("gproc::send_group");
    }
    start.elapsed()
}

/// `iters` sequential echoes of `data` through tarpc.
async fn tarpc_echoes(client: BenchRpcClient, data: Bytes, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let echo = client
            .echo(tarpc::context::current(), data.clone())
            .await
            .expect("tarpc echo");
        check_echo(&data, echo);
    }
    start.elapsed()
}

// ---------------------------------------------------------------------------------------
// Peer

/// Runs a server of the blocking flavor that needs a runtime (tarpc's, and gproc's
/// `serve()`, which spawns each handler on its runtime) on a current-thread runtime of the
/// calling thread.
fn on_current_thread<E: std::fmt::Display>(
    server: impl Future<Output = Result<(), E>>,
) -> Result<(), String> {
    Flavor::CurrentThread
        .runtime()?
        .expect("a tokio flavor")
        .block_on(server)
        .map_err(|e| e.to_string())
}

/// Takes every message of the [`SINK`] group.
async fn drain_sink() -> Result<(), gproc::Error> {
    loop {
        gproc::receive_group(SINK).await?;
    }
}

/// Serves `BenchRpc` on every connection, each request in its own task (as tarpc's
/// examples do), on the runtime this runs on.
async fn tarpc_server(listener: UnixListener) -> std::io::Result<()> {
    loop {
        let (conn, _) = listener.accept().await?;
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
