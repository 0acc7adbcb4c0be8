//! Beyond one machine: the same service through gproc's tarpc bridge over TCP loopback,
//! beside plain tarpc over TCP loopback with the same codec (postcard, gproc's) and with
//! bincode, and beside gproc's local path (by PID, over its Unix socket), so that users see
//! what leaving the machine costs.
//!
//! ```text
//! cargo bench -p gproc-benches --features tarpc --bench remote
//! GPROC_BENCH_FLAVOR=current_thread GPROC_BENCH_PROBE=add_bridge:20000 cargo bench -p gproc-benches --features tarpc --bench remote
//! ```
//!
//! Placements and flavors as in `benches/support` (pinned and unpinned; multi-thread,
//! current-thread, and blocking, where the TCP clients and servers run on a current-thread
//! runtime, since tarpc needs one). Groups: `tcp_add_latency` (`bridge`, `tarpc_postcard`,
//! `tarpc_bincode`, `gproc_local`) and `tcp_add_64_in_flight` (the same, in calls per
//! second). Probes: `add_bridge`, `add_tarpc`, `add_bincode`, `add_local`, `inflight_bridge`,
//! `inflight_tarpc`, `inflight_bincode`, `inflight_local`.

// Shared with the other benchmarks; this one uses part of it.
#[allow(dead_code, unused_imports)]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gproc::tarpc::{Postcard, TarpcStub};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::length_delimited::LengthDelimitedCodec;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

use support::{in_tasks, spawn_server, Benchmark, Driver, Flavor, Op, Row, STARTUP_TIMEOUT};

/// Where the peer writes its three TCP ports: bridge, tarpc with postcard, with bincode.
const PORTS: &str = "tcp.ports";
const IN_FLIGHT: usize = 64;

#[gproc::service]
pub trait Bench {
    /// `a + b`.
    async fn add(&self, a: i32, b: i32) -> i32;
}

#[tarpc::service]
pub trait BenchRpc {
    /// `a + b`.
    async fn add(a: i32, b: i32) -> i32;
}

#[derive(Clone)]
struct Server;

impl Bench for Server {
    async fn add(&self, a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }
}

impl BenchRpc for Server {
    async fn add(self, _: tarpc::context::Context, a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }
}

fn main() -> ExitCode {
    support::main::<Remote>()
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Bridge,
    Postcard,
    Bincode,
    Local,
}

impl Route {
    const ALL: [Route; 4] = [Route::Bridge, Route::Postcard, Route::Bincode, Route::Local];

    fn label(self) -> &'static str {
        match self {
            Route::Bridge => "bridge",
            Route::Postcard => "tarpc_postcard",
            Route::Bincode => "tarpc_bincode",
            Route::Local => "gproc_local",
        }
    }

    fn probe(self, in_flight: bool) -> &'static str {
        match (self, in_flight) {
            (Route::Bridge, false) => "add_bridge",
            (Route::Postcard, false) => "add_tarpc",
            (Route::Bincode, false) => "add_bincode",
            (Route::Local, false) => "add_local",
            (Route::Bridge, true) => "inflight_bridge",
            (Route::Postcard, true) => "inflight_tarpc",
            (Route::Bincode, true) => "inflight_bincode",
            (Route::Local, true) => "inflight_local",
        }
    }
}

struct Remote;

/// Binds the three TCP servers on 127.0.0.1, writes their ports, and serves them on this
/// runtime; serves `Bench` locally too.
async fn serve_all(dir: &Path) -> Result<(), String> {
    let bridge = gproc::tarpc::serve("127.0.0.1:0", BenchServer::new(Server))
        .await
        .map_err(|e| format!("the bridge: {e}"))?;
    let postcard = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let bincode = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let ports = format!(
        "{} {} {}",
        bridge.local_addr().port(),
        postcard.local_addr().map_err(|e| e.to_string())?.port(),
        bincode.local_addr().map_err(|e| e.to_string())?.port()
    );
    std::fs::write(dir.join(PORTS), ports).map_err(|e| e.to_string())?;
    tokio::spawn(tarpc_server(postcard, false));
    tokio::spawn(tarpc_server(bincode, true));
    tokio::spawn(BenchServer::new(Server).serve());
    // The bridge serves while `bridge` lives: for the peer's whole life.
    std::mem::forget(bridge);
    Ok(())
}

/// Plain tarpc, as its documentation shows: each request in its own task.
async fn tarpc_server(listener: TcpListener, bincode: bool) {
    while let Ok((conn, _)) = listener.accept().await {
        let _ = conn.set_nodelay(true);
        let framed = LengthDelimitedCodec::builder().new_framed(conn);
        if bincode {
            let transport = tarpc::serde_transport::new(framed, Bincode::default());
            tokio::spawn(
                BaseChannel::with_defaults(transport)
                    .execute(Server.serve())
                    .for_each(|r| async {
                        tokio::spawn(r);
                    }),
            );
        } else {
            let transport = tarpc::serde_transport::new(framed, Postcard::default());
            tokio::spawn(
                BaseChannel::with_defaults(transport)
                    .execute(Server.serve())
                    .for_each(|r| async {
                        tokio::spawn(r);
                    }),
            );
        }
    }
}

impl Benchmark for Remote {
    const NAME: &'static str = "remote";

    async fn serve(dir: &Path) -> Result<(), String> {
        serve_all(dir).await
    }

    fn serve_blocking(dir: &Path) -> Result<(), String> {
        let dir = dir.to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        spawn_server("tcp", move || {
            let runtime = Flavor::CurrentThread.runtime()?.expect("a tokio flavor");
            runtime.block_on(async {
                let _ = tx.send(serve_all(&dir).await);
                std::future::pending::<()>().await;
            });
            Ok::<(), String>(())
        })?;
        rx.recv().map_err(|e| e.to_string())?
    }

    fn run(driver: &Driver) -> Result<(), String> {
        let runtime = match driver.flavor.runtime()? {
            Some(runtime) => runtime,
            None => Flavor::CurrentThread.runtime()?.expect("a tokio flavor"),
        };
        support::listen(Some(&runtime))?;
        let local = BenchClient::new(driver.peer);
        runtime
            .block_on(local.wait_served(STARTUP_TIMEOUT))
            .map_err(|e| format!("the peer does not serve Bench: {e}"))?;
        let ports: Vec<u16> = std::fs::read_to_string(driver.dir.join(PORTS))
            .map_err(|e| format!("the peer's ports: {e}"))?
            .split(' ')
            .map(|p| p.parse().map_err(|e| format!("a port: {e}")))
            .collect::<Result<_, _>>()?;
        let at = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
        let clients = runtime.block_on(async {
            let bridge: BenchClient<TarpcStub<BenchRequest, BenchResponse>> =
                BenchClient::from_stub(
                    gproc::tarpc::connect(at(0))
                        .await
                        .map_err(|e| format!("connect to the bridge: {e}"))?,
                );
            let postcard = {
                let conn = tcp(at(1)).await?;
                let framed = LengthDelimitedCodec::builder().new_framed(conn);
                let transport = tarpc::serde_transport::new(framed, Postcard::default());
                BenchRpcClient::new(tarpc::client::Config::default(), transport).spawn()
            };
            let bincode = {
                let conn = tcp(at(2)).await?;
                let framed = LengthDelimitedCodec::builder().new_framed(conn);
                let transport = tarpc::serde_transport::new(framed, Bincode::default());
                BenchRpcClient::new(tarpc::client::Config::default(), transport).spawn()
            };
            Ok::<_, String>(Clients {
                bridge,
                postcard,
                bincode,
                local,
            })
        })?;
        let mut rows = Vec::new();
        for in_flight in [false, true] {
            for path in Route::ALL {
                rows.push(Row {
                    group: if in_flight {
                        "tcp_add_64_in_flight"
                    } else {
                        "tcp_add_latency"
                    },
                    label: path.label(),
                    probe: path.probe(in_flight),
                    check: if in_flight { IN_FLIGHT as u64 } else { 1 },
                    op: clients.op(&runtime, path, in_flight),
                });
            }
        }
        driver.measure(&rows)
    }
}

async fn tcp(addr: SocketAddr) -> Result<TcpStream, String> {
    let conn = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    conn.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(conn)
}

struct Clients {
    bridge: BenchClient<TarpcStub<BenchRequest, BenchResponse>>,
    postcard: BenchRpcClient,
    bincode: BenchRpcClient,
    local: BenchClient,
}

impl Clients {
    fn op<'a>(&self, runtime: &'a Runtime, path: Route, in_flight: bool) -> Op<'a> {
        let tasks = if in_flight { IN_FLIGHT } else { 1 };
        match path {
            Route::Bridge => {
                let c = self.bridge.clone();
                Op::task(runtime, move |n| {
                    let c = c.clone();
                    in_tasks(tasks, n, move |_, k| gproc_adds(c.clone(), k))
                })
            }
            Route::Local => {
                let c = self.local.clone();
                Op::task(runtime, move |n| {
                    let c = c.clone();
                    in_tasks(tasks, n, move |_, k| gproc_adds(c.clone(), k))
                })
            }
            Route::Postcard | Route::Bincode => {
                let c = match path {
                    Route::Postcard => self.postcard.clone(),
                    _ => self.bincode.clone(),
                };
                Op::task(runtime, move |n| {
                    let c = c.clone();
                    in_tasks(tasks, n, move |_, k| tarpc_adds(c.clone(), k))
                })
            }
        }
    }
}

async fn gproc_adds<S>(client: BenchClient<S>, iters: u64) -> Duration
where
    S: gproc::rpc::Stub<Req = BenchRequest, Resp = BenchResponse>,
{
    let start = Instant::now();
    for i in 0..iters {
        let sum = client.add(i as i32, 1).await.expect("gproc add");
        assert_eq!(sum, (i as i32).wrapping_add(1));
    }
    start.elapsed()
}

async fn tarpc_adds(client: BenchRpcClient, iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        let sum = client
            .add(tarpc::context::current(), i as i32, 1)
            .await
            .expect("tarpc add");
        assert_eq!(sum, (i as i32).wrapping_add(1));
    }
    start.elapsed()
}
