//! A tour of gproc in one command: the program starts three copies of itself as workers
//! through a [`gproc::Manager`], each holding a name and serving a typed service, talks
//! to them in several groups, calls them by name, measures round trips, shows the error
//! for a dead PID, and stops them all.
//!
//! ```text
//! cargo run --release --example demo
//! ```
//!
//! With `-- --hold`, it leaves the workers up after the tour, for a look with the `gproc`
//! command from another shell, until it is told to go on (or Ctrl-C ends it, and the
//! workers with it):
//!
//! ```text
//! cargo build --release -p gproc-cli
//! cargo run --release --example demo -- --hold &
//! target/release/gproc ls
//! target/release/gproc inspect demo-worker-0
//! target/release/gproc call demo-worker-0 Worker.square '[12]'
//! target/release/gproc send demo --group control go on
//! ```
//!
//! Groups used:
//! - `"status"`:  worker -> parent, one line when a worker is up, one per broadcast;
//! - `"jobs"`:    parent -> worker, work items (and `stop`);
//! - `"results"`: worker -> the job's sender, one reply per job;
//! - `""`:        the default group, which [`gproc::Manager::send_all`] sends to.

use std::error::Error;
use std::time::{Duration, Instant};

/// Set (to the worker's index) in a worker's environment; the parent has it unset.
const ROLE_ENV: &str = "GPROC_DEMO_WORKER";
const WORKERS: usize = 3;
const SMALL_ROUND_TRIPS: usize = 1000;
const LARGE_ROUND_TRIPS: usize = 100;
const LARGE_SIZE: usize = 64 * 1024;

type Res<T = ()> = Result<T, Box<dyn Error + Send + Sync>>;

/// What each worker serves besides its raw groups; `gproc inspect` shows it, and
/// `gproc call` calls it with JSON.
#[gproc::service]
pub trait Worker {
    /// `n` squared.
    async fn square(&self, n: i64) -> i64;
    /// `a / b`, or why not.
    async fn divide(&self, a: i64, b: i64) -> Result<i64, String>;
    /// Who the worker is, and how much it has done.
    async fn status(&self) -> WorkerStatus;
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct WorkerStatus {
    pub index: usize,
    pub pid: u32,
    pub calls: u64,
}

struct Work {
    index: usize,
    calls: std::sync::atomic::AtomicU64,
}

impl Work {
    fn count(&self) -> u64 {
        1 + self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

impl Worker for Work {
    async fn square(&self, n: i64) -> i64 {
        self.count();
        n.saturating_mul(n)
    }

    async fn divide(&self, a: i64, b: i64) -> Result<i64, String> {
        self.count();
        a.checked_div(b)
            .ok_or_else(|| format!("cannot divide {a} by {b}"))
    }

    async fn status(&self) -> WorkerStatus {
        WorkerStatus {
            index: self.index,
            pid: gproc::pid(),
            calls: self.count(),
        }
    }
}

// A multi-thread runtime, as most programs have: gproc's connections then live on it, and
// a message wakes its receiving task without a hop to another thread.
#[tokio::main]
async fn main() -> Res {
    match std::env::var(ROLE_ENV) {
        Ok(index) => worker(index.parse()?).await,
        Err(_) => parent().await,
    }
}

// ---------------------------------------------------------------------------------------
// Worker

async fn worker(index: usize) -> Res {
    gproc::listen().await?;
    let parent = gproc::ppid();
    let dir = std::env::var(gproc::ENV_DIR).unwrap_or_default();
    let up = format!("worker {index} up (GPROC_PPID={parent}, GPROC_DIR={dir})");
    let work = Work {
        index,
        calls: Default::default(),
    };
    tokio::spawn(WorkerServer::new(work).serve());
    gproc::send_group(parent, "status", up).await?;
    tokio::spawn(answer_broadcasts(index, parent));
    loop {
        let job = gproc::receive_group("jobs").await?;
        if &job.data[..] == b"stop" {
            return Ok(());
        }
        gproc::send_group(job.sender_pid, "results", run_job(job.data)).await?;
    }
}

/// `square N` is answered with N*N; anything else is echoed.
fn run_job(data: gproc::Bytes) -> gproc::Bytes {
    let square = std::str::from_utf8(&data)
        .ok()
        .and_then(|s| s.strip_prefix("square "))
        .and_then(|n| n.parse::<i64>().ok());
    match square {
        Some(n) => (n * n).to_string().into(),
        None => data,
    }
}

/// Reports each message of the default group (from `send_all`) in `"status"`.
async fn answer_broadcasts(index: usize, parent: u32) -> Res {
    loop {
        let msg = gproc::receive().await?;
        let text = String::from_utf8_lossy(&msg.data);
        let line = format!("worker {index} got {text:?}");
        gproc::send_group(parent, "status", line).await?;
    }
}

// ---------------------------------------------------------------------------------------
// Parent

async fn parent() -> Res {
    let started = Instant::now();
    println!("gproc demo: parent PID {}", gproc::pid());
    let manager = gproc::Manager::new();
    let workers = start_workers(&manager).await?;
    let pids: Vec<u32> = workers.iter().map(|w| w.pid).collect();
    section("status", "worker -> parent in \"status\"");
    for (pid, text) in status_lines(pids.len()).await? {
        row(&pid.to_string(), &text);
    }
    jobs(&pids).await?;
    typed_calls().await?;
    broadcast(&manager).await?;
    round_trips(pids[0]).await?;
    if std::env::args().any(|a| a == "--hold") {
        hold().await?;
    }
    dead_pid(&manager, &workers[WORKERS - 1]).await?;
    stop(&manager, &workers[..WORKERS - 1]).await?;
    println!("\ndone in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

struct Spawned {
    pid: u32,
    process: gproc::Process,
}

fn section(title: &str, what: &str) {
    println!("\n{title:<18}{what}");
}

fn row(label: &str, text: &str) {
    println!("  {label:<16}{text}");
}

async fn start_workers(manager: &gproc::Manager) -> Res<Vec<Spawned>> {
    section(
        "workers",
        "Manager::new_process, name, die_with_parent(true), start, ready",
    );
    let exe = std::env::current_exe()?;
    let no_args: [&str; 0] = [];
    let mut workers = Vec::new();
    for index in 0..WORKERS {
        let t = Instant::now();
        let envs = [(ROLE_ENV, index.to_string())];
        let mut process = manager.new_process(&exe, no_args, envs);
        process.name(format!("demo-worker-{index}"));
        process.die_with_parent(true);
        let pid = process.start().await?;
        process.ready(Duration::from_secs(5)).await?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        row(
            &format!("worker {index}"),
            &format!("pid {pid:<8} demo-worker-{index}, listening after {ms:4.1} ms"),
        );
        workers.push(Spawned { pid, process });
    }
    Ok(workers)
}

/// Receives `count` messages from the `"status"` group, sorted by sender PID.
async fn status_lines(count: usize) -> Res<Vec<(u32, String)>> {
    let mut lines = Vec::new();
    for _ in 0..count {
        let msg = tokio::time::timeout(Duration::from_secs(5), gproc::receive_group("status"))
            .await
            .map_err(|_| "no status message within 5 s")??;
        lines.push((
            msg.sender_pid,
            String::from_utf8_lossy(&msg.data).into_owned(),
        ));
    }
    lines.sort();
    Ok(lines)
}

async fn jobs(pids: &[u32]) -> Res {
    section("jobs", "parent -> worker in \"jobs\", reply in \"results\"");
    for (i, &pid) in pids.iter().enumerate() {
        let job = format!("square {}", 12 + i);
        gproc::send_group(pid, "jobs", job.clone()).await?;
        let reply = gproc::receive_group("results").await?;
        let answer = String::from_utf8_lossy(&reply.data);
        row(
            &pid.to_string(),
            &format!("{job} -> {answer} (reply from {})", reply.sender_pid),
        );
    }
    Ok(())
}

/// Typed calls by name: the same workers, through their `Worker` service.
async fn typed_calls() -> Res {
    section("typed calls", "WorkerClient::by_name(\"demo-worker-N\")");
    for index in 0..WORKERS {
        let name = format!("demo-worker-{index}");
        let worker = WorkerClient::by_name(name.as_str());
        worker.wait_served(Duration::from_secs(5)).await?;
        let t = Instant::now();
        let square = worker.square(7 + index as i64).await?;
        let us = t.elapsed().as_secs_f64() * 1e6;
        let divided = worker.divide(1, index as i64).await?;
        let status = worker.status().await?;
        row(
            &name,
            &format!(
                "square({}) = {square} in {us:.0} µs, divide(1, {index}) = {divided:?}, {status:?}",
                7 + index
            ),
        );
    }
    Ok(())
}

/// Leaves the workers up (`--hold`) until a message comes in the group `"control"` of
/// the name `demo`, which this process holds: a look with the `gproc` command meanwhile.
async fn hold() -> Res {
    gproc::register("demo").await?;
    section(
        "holding",
        "the workers stay up; from another shell, try (then the last line to go on)",
    );
    for command in [
        "gproc ls",
        "gproc inspect demo-worker-0",
        "gproc call demo-worker-0 Worker.square '[12]'",
        "gproc call demo-worker-1 Worker.divide '[1, 0]'",
        "gproc ping demo-worker-2 -c 5",
        "gproc send demo --group control 'go on'",
    ] {
        row("", command);
    }
    row(
        "",
        &format!("(in {}; Ctrl-C here ends it all)", gproc::dir().display()),
    );
    let msg = gproc::receive_group("control").await?;
    let text = String::from_utf8_lossy(&msg.data);
    row(
        "control",
        &format!("{text:?} from {}: going on", msg.sender_pid),
    );
    Ok(())
}

async fn broadcast(manager: &gproc::Manager) -> Res {
    section(
        "send_all",
        "default group; each worker answers in \"status\"",
    );
    let results = manager.send_all("hello, all").await;
    let answers = status_lines(results.len()).await?;
    for (pid, result) in &results {
        let answer = answers.iter().find(|(from, _)| from == pid);
        let answer = answer.map_or("", |(_, text)| text.as_str());
        row(&pid.to_string(), &format!("{:<6}{answer}", short(result)));
    }
    Ok(())
}

async fn round_trips(pid: u32) -> Res {
    section(
        "round trips",
        "parent -> worker 0 in \"jobs\" -> parent in \"results\"",
    );
    let small = gproc::Bytes::from_static(b"0123456789abcdef");
    for _ in 0..100 {
        round_trip(pid, small.clone()).await?; // warm-up
    }
    let mut times = Vec::with_capacity(SMALL_ROUND_TRIPS);
    for _ in 0..SMALL_ROUND_TRIPS {
        times.push(round_trip(pid, small.clone()).await?);
    }
    report(
        &format!("{} B x{SMALL_ROUND_TRIPS}", small.len()),
        &mut times,
    );
    let large: Vec<u8> = (0..LARGE_SIZE).map(|i| i as u8).collect();
    let large = gproc::Bytes::from(large);
    let mut times = Vec::with_capacity(LARGE_ROUND_TRIPS);
    for _ in 0..LARGE_ROUND_TRIPS {
        times.push(round_trip(pid, large.clone()).await?);
    }
    report(&format!("64 KiB x{LARGE_ROUND_TRIPS}"), &mut times);
    Ok(())
}

/// Sends `data` as a job and waits for its echo; the time from send to reply.
async fn round_trip(pid: u32, data: gproc::Bytes) -> Res<Duration> {
    let t = Instant::now();
    gproc::send_group(pid, "jobs", data.clone()).await?;
    let reply = gproc::receive_group("results").await?;
    let elapsed = t.elapsed();
    if reply.data != data || reply.sender_pid != pid {
        return Err(format!("round trip to {pid}: wrong reply from {}", reply.sender_pid).into());
    }
    Ok(elapsed)
}

fn report(label: &str, times: &mut [Duration]) {
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let (min, median, p99) = (us(times[0]), us(at(0.5)), us(at(0.99)));
    let text = format!("min {min:6.1} µs   median {median:6.1} µs   p99 {p99:6.1} µs");
    row(label, &text);
}

async fn dead_pid(manager: &gproc::Manager, victim: &Spawned) -> Res {
    let pid = victim.pid;
    section("dead PID", "Process::kill, then gproc::send to its PID");
    victim.process.kill().await?;
    let status = victim.process.wait().await?;
    row(&format!("kill {pid}"), &format!("reaped, {status}"));
    let result = gproc::send(pid, "anyone there?").await;
    row(&format!("send {pid}"), &short(&result));
    match &result {
        Err(e @ gproc::Error::NoSuchProcess(_)) => row("", &format!("\"{e}\"")),
        _ => return Err(format!("expected NoSuchProcess, got {result:?}").into()),
    }
    let results = manager.send_all("still there?").await;
    let delivered = results.iter().filter(|(_, r)| r.is_ok()).count();
    let summary: Vec<String> = results
        .iter()
        .map(|(pid, r)| format!("{pid} {}", short(r)))
        .collect();
    row("send_all", &summary.join(", "));
    status_lines(delivered).await?; // the survivors' answers
    Ok(())
}

async fn stop(manager: &gproc::Manager, workers: &[Spawned]) -> Res {
    section("stop", "\"stop\" in \"jobs\", then Manager::wait_all");
    for w in workers {
        gproc::send_group(w.pid, "jobs", "stop").await?;
    }
    let all = tokio::time::timeout(Duration::from_secs(3), manager.wait_all()).await;
    let Ok(all) = all else {
        manager.kill_all().await;
        return Err("workers did not stop within 3 s; killed them".into());
    };
    for (pid, status) in all {
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        row(&pid.to_string(), &status);
    }
    Ok(())
}

/// `Ok`, or the error's variant name.
fn short(result: &gproc::Result<()>) -> String {
    match result {
        Ok(()) => "Ok".into(),
        Err(e) => {
            let debug = format!("{e:?}");
            let end = debug.find(['(', ' ', '{']).unwrap_or(debug.len());
            format!("Err({})", &debug[..end])
        }
    }
}
