//! Raw messaging benchmarks: gproc against a plain Unix-socket ping-pong between the same
//! two processes, on three flavors of driver and peer (a multi-thread tokio runtime, a
//! current-thread one, and the blocking API with no runtime), with both processes pinned to
//! one CPU and unpinned.
//!
//! Run with `cargo bench -p gproc-benches --bench raw` (criterion arguments after `--` are forwarded, e.g.
//! `cargo bench -p gproc-benches --bench raw -- unpinned/blocking/roundtrip_16B`;
//! `GPROC_BENCH_FLAVOR=blocking cargo bench -p gproc-benches --bench raw` runs one flavor's drivers only).
//! The roles (top level, drivers, peer) are described in `benches/support/mod.rs`.
//!
//! Criterion groups, each `<placement>/<flavor>/<scenario>`:
//!
//! - `roundtrip_16B`, `roundtrip_64KiB`: `gproc` (`send` to the peer's default group, which
//!   echoes it, then `receive`) beside the reference ping-pong of the same flavor:
//!   `tokio_uds` (a tokio `UnixStream` on the same runtime) or, for `blocking`, `std_uds` (a
//!   `std::os::unix::net::UnixStream`);
//! - `ack_send_16B`: acknowledged 16-byte sends to the peer's `sink` group from 64 tasks
//!   (`gproc_64tasks`; 64 threads for `blocking`, `gproc_64threads`), beside 64 tasks (or
//!   threads) each doing 16-byte ping-pongs on a connection of its own, the echo standing
//!   for the acknowledgement (`tokio_uds_64tasks`, `std_uds_64threads`).
//!
//! Probe scenarios (`GPROC_BENCH_PROBE=[<flavor>/]<scenario>:<iterations>`): `rt_gproc_16`,
//! `rt_uds_16`, `rt_gproc_65536`, `rt_uds_65536`, `ack_gproc_16`, `ack_uds_16`.

mod support;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Runtime;

use support::{
    frame, in_tasks, payload, spawn_server, spawn_server_task, std_echo_server, std_round_trips,
    timed, tokio_echo_server, tokio_round_trips, Benchmark, Conn, Driver, Op, Row, StdUds, Threads,
    TokioUds,
};

/// The echo socket, in the shared `GPROC_DIR` (not named `<pid>.sock`, so gproc's sweep of
/// stale endpoints leaves it alone).
const UDS_NAME: &str = "echo.uds";
/// The group the throughput benchmark sends to.
const SINK: &str = "sink";
/// Concurrent senders in the throughput benchmark.
const SENDERS: usize = 64;
const SMALL: usize = 16;
const LARGE: usize = 64 * 1024;

fn main() -> ExitCode {
    support::main::<Raw>()
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// `send` 16 bytes and `receive` their echo.
    RoundTripSmall,
    /// `send` 64 KiB and `receive` their echo.
    RoundTripLarge,
    /// Acknowledged 16-byte sends from [`SENDERS`] tasks or threads.
    AckSends,
}

/// gproc, or the reference Unix-socket ping-pong.
#[derive(Debug, Clone, Copy)]
enum Who {
    Gproc,
    Uds,
}

impl Scenario {
    const ALL: [Scenario; 3] = [
        Scenario::RoundTripSmall,
        Scenario::RoundTripLarge,
        Scenario::AckSends,
    ];

    fn group(self) -> &'static str {
        match self {
            Scenario::RoundTripSmall => "roundtrip_16B",
            Scenario::RoundTripLarge => "roundtrip_64KiB",
            Scenario::AckSends => "ack_send_16B",
        }
    }

    fn size(self) -> usize {
        match self {
            Scenario::RoundTripSmall | Scenario::AckSends => SMALL,
            Scenario::RoundTripLarge => LARGE,
        }
    }

    fn probe(self, who: Who) -> &'static str {
        match (self, who) {
            (Scenario::RoundTripSmall, Who::Gproc) => "rt_gproc_16",
            (Scenario::RoundTripSmall, Who::Uds) => "rt_uds_16",
            (Scenario::RoundTripLarge, Who::Gproc) => "rt_gproc_65536",
            (Scenario::RoundTripLarge, Who::Uds) => "rt_uds_65536",
            (Scenario::AckSends, Who::Gproc) => "ack_gproc_16",
            (Scenario::AckSends, Who::Uds) => "ack_uds_16",
        }
    }
}

struct Raw;

impl Benchmark for Raw {
    const NAME: &'static str = "raw";

    async fn serve(dir: &Path) -> Result<(), String> {
        let listener = tokio::net::UnixListener::bind(dir.join(UDS_NAME))
            .map_err(|e| format!("binding the echo socket: {e}"))?;
        spawn_server_task("echo", tokio_echo_server(listener));
        spawn_server_task("gproc-echo", gproc_echo());
        spawn_server_task("gproc-sink", drain_sink());
        Ok(())
    }

    fn serve_blocking(dir: &Path) -> Result<(), String> {
        std_echo_server(&dir.join(UDS_NAME))?;
        spawn_server("gproc-echo", || -> Result<(), gproc::Error> {
            loop {
                let msg = gproc::blocking::receive()?;
                gproc::blocking::send(msg.sender_pid, msg.data)?;
            }
        })?;
        spawn_server("gproc-sink", || -> Result<(), gproc::Error> {
            loop {
                gproc::blocking::receive_group(SINK)?;
            }
        })
    }

    fn run(driver: &Driver) -> Result<(), String> {
        let path = driver.dir.join(UDS_NAME);
        let runtime = driver.flavor.runtime()?;
        support::listen(runtime.as_ref())?;
        let side = match runtime {
            Some(runtime) => {
                let conns = runtime.block_on(async {
                    let mut conns = Vec::with_capacity(SENDERS);
                    for _ in 0..SENDERS {
                        conns.push(Conn::<tokio::net::UnixStream>::connect(&path).await?);
                    }
                    Ok::<_, String>(conns)
                })?;
                Side::Tokio { runtime, conns }
            }
            None => Side::Blocking {
                conns: Arc::new(
                    (0..SENDERS)
                        .map(|_| Conn::<std::os::unix::net::UnixStream>::connect(&path))
                        .collect::<Result<_, _>>()?,
                ),
                threads: Threads::new(SENDERS),
            },
        };
        let rows: Vec<Row> = Scenario::ALL
            .into_iter()
            .flat_map(|scenario| [Who::Gproc, Who::Uds].map(|who| (scenario, who)))
            .map(|(scenario, who)| Row {
                group: scenario.group(),
                label: side.label(scenario, who),
                probe: scenario.probe(who),
                check: match scenario {
                    Scenario::AckSends => SENDERS as u64,
                    _ => 1,
                },
                op: side.op(driver.peer, scenario, who),
            })
            .collect();
        driver.measure(&rows)
    }
}

/// A driver's end of the reference sockets, and where its operations run.
enum Side {
    /// A runtime of the driver's flavor, and [`SENDERS`] tokio connections.
    Tokio {
        runtime: Runtime,
        conns: Vec<TokioUds>,
    },
    /// No runtime: [`SENDERS`] `std` connections, and as many threads.
    Blocking {
        conns: Arc<Vec<StdUds>>,
        threads: Threads,
    },
}

impl Side {
    fn label(&self, scenario: Scenario, who: Who) -> &'static str {
        let blocking = matches!(self, Side::Blocking { .. });
        match (scenario, who, blocking) {
            (Scenario::AckSends, Who::Gproc, false) => "gproc_64tasks",
            (Scenario::AckSends, Who::Gproc, true) => "gproc_64threads",
            (Scenario::AckSends, Who::Uds, false) => "tokio_uds_64tasks",
            (Scenario::AckSends, Who::Uds, true) => "std_uds_64threads",
            (_, Who::Gproc, _) => "gproc",
            (_, Who::Uds, false) => "tokio_uds",
            (_, Who::Uds, true) => "std_uds",
        }
    }

    fn op(&self, peer: u32, scenario: Scenario, who: Who) -> Op<'_> {
        let data = payload(scenario.size());
        let framed = frame(&data);
        let round_trip = !matches!(scenario, Scenario::AckSends);
        match (self, who) {
            (Side::Tokio { runtime, .. }, Who::Gproc) if round_trip => {
                Op::task(runtime, move |n| gproc_round_trips(peer, data.clone(), n))
            }
            (Side::Tokio { runtime, conns }, Who::Uds) if round_trip => {
                let uds = conns[0].clone();
                Op::task(runtime, move |n| {
                    tokio_round_trips(uds.clone(), framed.clone(), n)
                })
            }
            (Side::Tokio { runtime, .. }, Who::Gproc) => Op::task(runtime, move |n| {
                let data = data.clone();
                in_tasks(SENDERS, n, move |_, k| gproc_sends(peer, data.clone(), k))
            }),
            (Side::Tokio { runtime, conns }, Who::Uds) => {
                let conns = conns.clone();
                Op::task(runtime, move |n| {
                    let (conns, framed) = (conns.clone(), framed.clone());
                    in_tasks(SENDERS, n, move |i, k| {
                        tokio_round_trips(conns[i].clone(), framed.clone(), k)
                    })
                })
            }
            (Side::Blocking { .. }, Who::Gproc) if round_trip => Op::blocking(move |n| {
                timed(n, |_| {
                    gproc::blocking::send(peer, data.clone()).expect("gproc::blocking::send");
                    let echo = gproc::blocking::receive().expect("gproc::blocking::receive");
                    assert_eq!(echo.data.len(), data.len(), "echo of another size");
                })
            }),
            (Side::Blocking { conns, .. }, Who::Uds) if round_trip => {
                Op::blocking(move |n| std_round_trips(&conns[0], &framed, n))
            }
            (Side::Blocking { threads, .. }, Who::Gproc) => Op::blocking(move |n| {
                let data = data.clone();
                threads.run(
                    n,
                    Arc::new(move |_, k| {
                        for _ in 0..k {
                            gproc::blocking::send_group(peer, SINK, data.clone())
                                .expect("gproc::blocking::send_group");
                        }
                    }),
                )
            }),
            (Side::Blocking { conns, threads }, Who::Uds) => Op::blocking(move |n| {
                let (conns, framed) = (conns.clone(), framed.clone());
                threads.run(
                    n,
                    Arc::new(move |i, k| {
                        std_round_trips(&conns[i], &framed, k);
                    }),
                )
            }),
        }
    }
}

/// `send` to the peer's default group, then `receive` its echo, `iters` times.
async fn gproc_round_trips(peer: u32, data: Bytes, iters: u64) -> Duration {
    let start = std::time::Instant::now();
    for _ in 0..iters {
        gproc::send(peer, data.clone()).await.expect("gproc::send");
        let echo = gproc::receive().await.expect("gproc::receive");
        assert_eq!(echo.data.len(), data.len(), "echo of another size");
    }
    start.elapsed()
}

/// `iters` acknowledged sends of `data` to the peer's `sink` group.
async fn gproc_sends(peer: u32, data: Bytes, iters: u64) {
    for _ in 0..iters {
        gproc::send_group(peer, SINK, data.clone())
            .await
            .expect("gproc::send_group");
    }
}

// ---------------------------------------------------------------------------------------
// Peer

/// Sends every message of the default group back to its sender.
async fn gproc_echo() -> Result<(), gproc::Error> {
    loop {
        let msg = gproc::receive().await?;
        gproc::send(msg.sender_pid, msg.data).await?;
    }
}

/// Takes every message of the `sink` group.
async fn drain_sink() -> Result<(), gproc::Error> {
    loop {
        gproc::receive_group(SINK).await?;
    }
}
