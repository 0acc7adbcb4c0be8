//! What both benchmarks share. One executable plays every role, chosen by environment
//! variables:
//!
//! - the top level (neither [`ROLE`] nor [`DRIVER`] set) re-runs itself as one driver per
//!   placement and flavor, each a fresh process (`pinned` then `unpinned`, each with
//!   `multi_thread`, `current_thread` and `blocking`), forwarding its arguments, and fails if
//!   any driver failed; [`FLAVOR`] (or a probe's flavor) limits it to one flavor;
//! - a driver (`GPROC_BENCH_DRIVER=pinned|unpinned`, `GPROC_BENCH_FLAVOR=<flavor>`, which
//!   defaults to `multi_thread`) pins itself to one CPU or not before any thread starts,
//!   starts the peer with the same flavor in a fresh `GPROC_DIR`, waits for its `ready` line
//!   and measures: the criterion groups `<placement>/<flavor>/<scenario>`, or one probe;
//! - the peer (`GPROC_BENCH_ROLE=peer`, `GPROC_BENCH_FLAVOR=<flavor>`) serves everything the
//!   driver measures, on a runtime of the flavor or, for `blocking`, on threads of its own,
//!   and exits when its stdin closes (the driver finished, or died).
//!
//! The flavors ([`Flavor`]): `multi_thread` (`Runtime::new()` in both processes),
//! `current_thread` (`Builder::new_current_thread().enable_all()` in both) and `blocking`
//! (`gproc::blocking`, no runtime in either process for gproc and the plain sockets).
//!
//! With `GPROC_BENCH_PROBE=[<flavor>/]<scenario>:<iterations>` a driver skips criterion and
//! runs one scenario a fixed number of times, printing the time per operation; run it under
//! `perf stat` or `strace -c -f` (`benches/counts.sh` does both) to count context switches
//! and syscalls per operation.

mod measure;
mod uds;

pub use measure::*;
pub use uds::*;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

/// Set to `peer` in the peer process.
pub const ROLE: &str = "GPROC_BENCH_ROLE";
/// Set to `pinned` or `unpinned` in a driver process.
pub const DRIVER: &str = "GPROC_BENCH_DRIVER";
/// The [`Flavor`] of a driver and its peer; at the top level, the only flavor to run.
pub const FLAVOR: &str = "GPROC_BENCH_FLAVOR";
/// `[<flavor>/]<scenario>:<iterations>`: a driver runs one scenario without criterion.
pub const PROBE: &str = "GPROC_BENCH_PROBE";
/// How long a driver waits for the peer's `ready` line, and for a first round trip.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

const PLACEMENTS: [&str; 2] = ["pinned", "unpinned"];

/// How the driver and the peer run their I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// A multi-thread tokio runtime, `Runtime::new()`.
    MultiThread,
    /// A current-thread tokio runtime with I/O and time enabled.
    CurrentThread,
    /// No runtime: `gproc::blocking` and `std` sockets, concurrency by threads.
    Blocking,
}

impl Flavor {
    pub const ALL: [Flavor; 3] = [Flavor::MultiThread, Flavor::CurrentThread, Flavor::Blocking];

    pub fn name(self) -> &'static str {
        match self {
            Flavor::MultiThread => "multi_thread",
            Flavor::CurrentThread => "current_thread",
            Flavor::Blocking => "blocking",
        }
    }

    pub fn from_name(name: &str) -> Result<Flavor, String> {
        Flavor::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                format!("unknown flavor {name:?} (multi_thread, current_thread or blocking)")
            })
    }

    /// A tokio runtime of this flavor; `None` for [`Flavor::Blocking`].
    pub fn runtime(self) -> Result<Option<Runtime>, String> {
        let runtime = match self {
            Flavor::MultiThread => Runtime::new(),
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            Flavor::Blocking => return Ok(None),
        };
        runtime
            .map(Some)
            .map_err(|e| format!("{} tokio runtime: {e}", self.name()))
    }
}

/// A benchmark: what its peer serves and what its driver measures.
pub trait Benchmark {
    /// Names the benchmark in messages.
    const NAME: &'static str;

    /// In the peer, on a runtime of the flavor, once gproc listens: binds and spawns every
    /// server, then returns.
    async fn serve(dir: &Path) -> Result<(), String>;

    /// In the peer of the blocking flavor, once gproc listens: binds every server and starts
    /// it on threads of its own, then returns.
    fn serve_blocking(dir: &Path) -> Result<(), String>;

    /// In a driver: connects to the peer's servers and calls [`Driver::measure`].
    fn run(driver: &Driver) -> Result<(), String>;
}

/// The benchmark's `main`: the peer role, a driver, or the top level.
pub fn main<B: Benchmark>() -> ExitCode {
    if std::env::var(ROLE).is_ok_and(|r| r == "peer") {
        return peer::<B>();
    }
    let outcome = match std::env::var(DRIVER) {
        Ok(placement) => match PLACEMENTS.into_iter().find(|&p| p == placement) {
            Some(placement) => driver::<B>(placement),
            None => Err(format!(
                "{DRIVER} must be `pinned` or `unpinned`, not {placement:?}"
            )),
        },
        Err(_) => top_level(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("[{} bench] {e}", B::NAME);
            ExitCode::FAILURE
        }
    }
}

/// `$GPROC_BENCH_FLAVOR`, if set.
fn env_flavor() -> Result<Option<Flavor>, String> {
    match std::env::var(FLAVOR) {
        Ok(name) => Flavor::from_name(&name).map(Some),
        Err(_) => Ok(None),
    }
}

/// The flavor named by [`FLAVOR`] or by the probe, which must agree.
fn chosen_flavor(probe: Option<&Probe>) -> Result<Option<Flavor>, String> {
    let from_probe = probe.and_then(|p| p.flavor);
    match (env_flavor()?, from_probe) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "{FLAVOR}={} and {PROBE} for {} disagree",
            a.name(),
            b.name()
        )),
        (a, b) => Ok(a.or(b)),
    }
}

/// Runs one driver per placement and flavor, each as a fresh process.
fn top_level() -> Result<(), String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this benchmark's executable: {e}"))?;
    let probe = Probe::from_env()?;
    let flavors = match chosen_flavor(probe.as_ref())? {
        Some(flavor) => vec![flavor],
        None => Flavor::ALL.to_vec(),
    };
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let mut failed = Vec::new();
    for placement in PLACEMENTS {
        for &flavor in &flavors {
            let status = Command::new(&exe)
                .args(&args)
                .env(DRIVER, placement)
                .env(FLAVOR, flavor.name())
                .env_remove(ROLE)
                .status();
            let which = format!("{placement} {} driver", flavor.name());
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => failed.push(format!("{which}: {s}")),
                Err(e) => failed.push(format!("{which} did not start: {e}")),
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("benchmark failed: {}", failed.join("; ")))
    }
}

// ---------------------------------------------------------------------------------------
// Driver

/// What a driver measures with: its flavor and placement, the shared `GPROC_DIR`, the
/// peer's PID.
pub struct Driver {
    pub flavor: Flavor,
    pub placement: &'static str,
    pub dir: PathBuf,
    pub peer: u32,
    probe: Option<Probe>,
}

fn driver<B: Benchmark>(placement: &'static str) -> Result<(), String> {
    let probe = Probe::from_env()?;
    let flavor = chosen_flavor(probe.as_ref())?.unwrap_or(Flavor::MultiThread);
    let what = format!("{} {placement} driver", flavor.name());
    // Before any runtime or gproc thread exists: threads and the child inherit the mask.
    if placement == "pinned" {
        let cpu = pin_to_one_cpu().map_err(|e| format!("cannot pin to a CPU: {e}"))?;
        eprintln!(
            "[{} bench] {what}: driver and peer pinned to CPU {cpu}",
            B::NAME
        );
    } else {
        let cpus = rustix::thread::sched_getaffinity(None).map_or(0, |s| s.count());
        eprintln!(
            "[{} bench] {what}: driver and peer may run on {cpus} CPUs",
            B::NAME
        );
    }

    let dir = tempfile::Builder::new()
        .prefix("gproc-bench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    gproc::Config::new()
        .dir(dir.path())
        .install()
        .map_err(|e| format!("cannot configure gproc: {e}"))?;

    let mut peer =
        start_peer(dir.path(), flavor).map_err(|e| format!("cannot start the peer: {e}"))?;
    let driver = Driver {
        flavor,
        placement,
        dir: dir.path().to_owned(),
        peer: peer.id(),
        probe,
    };
    let result = B::run(&driver);
    stop_peer(B::NAME, &mut peer);
    result.map_err(|e| format!("{what} failed: {e}"))
}

/// Restricts this thread (and so every thread and child started after) to the lowest CPU
/// it may run on, CPU 0 unless a cgroup excludes it.
fn pin_to_one_cpu() -> std::io::Result<usize> {
    let allowed = rustix::thread::sched_getaffinity(None)?;
    let cpu = (0..rustix::thread::CpuSet::MAX_CPU)
        .find(|&c| allowed.is_set(c))
        .unwrap_or(0);
    let mut only = rustix::thread::CpuSet::new();
    only.set(cpu);
    rustix::thread::sched_setaffinity(None, &only)?;
    Ok(cpu)
}

/// Starts the peer and waits for its `ready` line (it serves every socket by then).
fn start_peer(dir: &Path, flavor: Flavor) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env(ROLE, "peer")
        .env(FLAVOR, flavor.name())
        .env(gproc::ENV_DIR, dir)
        .env_remove(DRIVER)
        .env_remove(PROBE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next();
        let _ = tx.send(first);
        // Keep draining, so that the peer never blocks on a full pipe.
        for _ in lines {}
    });
    match rx.recv_timeout(STARTUP_TIMEOUT) {
        Ok(Some(Ok(line))) if line.trim() == "ready" => Ok(child),
        outcome => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("the peer did not report ready: {outcome:?}"))
        }
    }
}

/// Closes the peer's stdin, which makes it exit, and reaps it.
fn stop_peer(name: &str, peer: &mut Child) {
    drop(peer.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match peer.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                eprintln!("[{name} bench] the peer did not exit; killing it");
                let _ = peer.kill();
                let _ = peer.wait();
                return;
            }
        }
    }
}

impl Driver {
    /// Runs each row once (its `check` operations, so that a broken peer fails fast instead
    /// of hanging), then the probe named by [`PROBE`], or else every row under criterion,
    /// grouped as `<placement>/<flavor>/<group>` in the order of first appearance.
    pub fn measure(&self, rows: &[Row<'_>]) -> Result<(), String> {
        {
            let _watchdog = Watchdog::start("no answer from the peer within 30 s");
            for row in rows {
                row.op.run(row.check);
            }
        }

        if let Some(probe) = &self.probe {
            let row = rows
                .iter()
                .find(|r| r.probe == probe.scenario)
                .ok_or_else(|| {
                    let known: Vec<_> = rows.iter().map(|r| r.probe).collect();
                    format!(
                        "unknown probe scenario {:?} (known: {})",
                        probe.scenario,
                        known.join(", ")
                    )
                })?;
            let elapsed = row.op.run(probe.iterations);
            println!(
                "probe {}/{}: {} operations in {elapsed:?}, {:.2} µs each, {:.0}/s",
                self.flavor.name(),
                probe.scenario,
                probe.iterations,
                elapsed.as_secs_f64() * 1e6 / probe.iterations.max(1) as f64,
                probe.iterations as f64 / elapsed.as_secs_f64()
            );
            return Ok(());
        }

        // Without plots: drawing them takes longer than measuring on this 2-core machine
        // (~9 s per benchmark); the medians and the comparison with the last run remain.
        let mut c = criterion::Criterion::default()
            .without_plots()
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .configure_from_args();
        let mut groups: Vec<&str> = Vec::new();
        for row in rows {
            if !groups.contains(&row.group) {
                groups.push(row.group);
            }
        }
        for name in groups {
            let mut group =
                c.benchmark_group(format!("{}/{}/{name}", self.placement, self.flavor.name()));
            group.throughput(criterion::Throughput::Elements(1));
            for row in rows.iter().filter(|r| r.group == name) {
                group.bench_function(criterion::BenchmarkId::from_parameter(row.label), |b| {
                    b.iter_custom(|iters| row.op.run(iters))
                });
            }
            group.finish();
        }
        c.final_summary();
        Ok(())
    }
}

/// `GPROC_BENCH_PROBE`, parsed.
struct Probe {
    flavor: Option<Flavor>,
    scenario: String,
    iterations: u64,
}

impl Probe {
    fn from_env() -> Result<Option<Probe>, String> {
        let Ok(probe) = std::env::var(PROBE) else {
            return Ok(None);
        };
        let malformed =
            || format!("{PROBE} must be [<flavor>/]<scenario>:<iterations>, not {probe:?}");
        let (name, iterations) = probe.split_once(':').ok_or_else(malformed)?;
        let iterations = iterations.parse().map_err(|_| malformed())?;
        let (flavor, scenario) = match name.split_once('/') {
            Some((flavor, scenario)) => (Some(Flavor::from_name(flavor)?), scenario),
            None => (None, name),
        };
        Ok(Some(Probe {
            flavor,
            scenario: scenario.to_owned(),
            iterations,
        }))
    }
}

/// Ends the process with an error unless dropped within [`STARTUP_TIMEOUT`]: the blocking
/// flavor has no timeout of its own for a peer that never answers.
struct Watchdog {
    _disarm: std::sync::mpsc::Sender<()>,
}

impl Watchdog {
    fn start(what: &'static str) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if rx.recv_timeout(STARTUP_TIMEOUT) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                eprintln!("benchmark driver: {what}");
                std::process::exit(1);
            }
        });
        Watchdog { _disarm: tx }
    }
}

// ---------------------------------------------------------------------------------------
// Peer

fn peer<B: Benchmark>() -> ExitCode {
    exit_when_stdin_closes();
    match serve::<B>() {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("[{} bench peer] {e}", B::NAME);
            std::process::exit(1)
        }
    }
}

/// Serves until the driver goes away.
fn serve<B: Benchmark>() -> Result<(), String> {
    let flavor = env_flavor()?.ok_or_else(|| format!("{FLAVOR} is not set"))?;
    let dir = PathBuf::from(std::env::var_os(gproc::ENV_DIR).ok_or("GPROC_DIR is not set")?);
    match flavor.runtime()? {
        Some(runtime) => runtime.block_on(async {
            gproc::listen()
                .await
                .map_err(|e| format!("gproc listen: {e}"))?;
            B::serve(&dir).await?;
            println!("ready");
            gproc::parent_exited().await;
            Ok(())
        }),
        None => {
            gproc::blocking::listen().map_err(|e| format!("gproc listen: {e}"))?;
            B::serve_blocking(&dir)?;
            println!("ready");
            // The servers run on threads of their own; the stdin watch ends the process.
            loop {
                std::thread::park();
            }
        }
    }
}

/// In the peer: exits once the driver closes our stdin (it finished, or died).
fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(std::io::Read::read(&mut stdin, &mut buf), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
}

/// In the peer: runs `server` on a thread of its own (the blocking flavor's servers). If it
/// fails, the peer exits with its error, so that the driver fails at once rather than wait.
pub fn spawn_server<E: std::fmt::Display>(
    name: &'static str,
    server: impl FnOnce() -> Result<(), E> + Send + 'static,
) -> Result<(), String> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || exit_on_error(name, server()))
        .map(drop)
        .map_err(|e| format!("starting thread {name}: {e}"))
}

/// In the peer: runs `server` as a task on the current runtime, as [`spawn_server`] does
/// on a thread.
pub fn spawn_server_task<E: std::fmt::Display>(
    name: &'static str,
    server: impl Future<Output = Result<(), E>> + Send + 'static,
) {
    tokio::spawn(async move { exit_on_error(name, server.await) });
}

fn exit_on_error<E: std::fmt::Display>(name: &str, outcome: Result<(), E>) {
    if let Err(e) = outcome {
        eprintln!("[bench peer] {name}: {e}");
        std::process::exit(1);
    }
}

/// Binds the driver's gproc endpoint: from `runtime`, so that gproc sees the flavor's
/// runtime first (it keeps its connections on the first multi-thread runtime that calls
/// it), or with the blocking API when there is none.
pub fn listen(runtime: Option<&Runtime>) -> Result<(), String> {
    match runtime {
        Some(runtime) => runtime.block_on(gproc::listen()),
        None => gproc::blocking::listen(),
    }
    .map_err(|e| format!("gproc listen: {e}"))
}
