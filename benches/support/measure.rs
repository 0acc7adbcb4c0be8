//! What a driver measures: rows of operations, run on a runtime or on the driver's thread,
//! and the helpers that spread a count of operations over concurrent tasks or threads.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

/// One benchmark of a driver: where it is reported and how it runs.
pub struct Row<'a> {
    /// The criterion group, below `<placement>/<flavor>/`.
    pub group: &'static str,
    /// The benchmark's name in its group.
    pub label: &'static str,
    /// Its scenario name in probe mode.
    pub probe: &'static str,
    /// How many operations to run once before measuring.
    pub check: u64,
    pub op: Op<'a>,
}

/// Runs a number of operations and answers how long they took.
pub struct Op<'a>(Box<dyn Fn(u64) -> Duration + 'a>);

impl<'a> Op<'a> {
    /// Operations measured by a future, run as a task on `runtime`: on a multi-thread
    /// runtime that is one of its workers, where a server's code runs, rather than the
    /// thread blocked in `block_on`.
    pub fn task<F, Fut>(runtime: &'a Runtime, measure: F) -> Op<'a>
    where
        F: Fn(u64) -> Fut + 'a,
        Fut: Future<Output = Duration> + Send + 'static,
    {
        Op(Box::new(move |iters| {
            runtime
                .block_on(runtime.spawn(measure(iters)))
                .expect("benchmark task panicked")
        }))
    }

    /// Operations measured on the driver's own thread, with no runtime.
    pub fn blocking(measure: impl Fn(u64) -> Duration + 'a) -> Op<'a> {
        Op(Box::new(measure))
    }

    pub fn run(&self, iters: u64) -> Duration {
        (self.0)(iters)
    }
}

/// Worker `i`'s share when `iters` operations are spread over `workers`.
pub fn share(iters: u64, workers: usize, i: usize) -> u64 {
    let workers = workers as u64;
    iters / workers + u64::from((i as u64) < iters % workers)
}

/// Times `iters` calls of `op` (with the iteration's index) on this thread.
pub fn timed(iters: u64, mut op: impl FnMut(u64)) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        op(i);
    }
    start.elapsed()
}

/// `iters` operations spread over `tasks` tasks, `work(i, share)` in task `i`; the time
/// until the last is done.
pub async fn in_tasks<F, Fut>(tasks: usize, iters: u64, work: F) -> Duration
where
    F: Fn(usize, u64) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send,
{
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|i| tokio::spawn(work(i, share(iters, tasks, i))))
        .collect();
    for handle in handles {
        handle.await.expect("worker task panicked");
    }
    start.elapsed()
}

/// What [`Threads::run`] runs on each thread: `work(i, share)` on thread `i`.
pub type Work = Arc<dyn Fn(usize, u64) + Send + Sync>;

/// Threads for the blocking flavor's concurrent scenarios, the counterpart of
/// [`in_tasks`]; started once, so that a sample does not pay for starting threads.
pub struct Threads {
    work: Vec<mpsc::Sender<(Work, u64)>>,
    done: mpsc::Receiver<std::thread::Result<()>>,
}

impl Threads {
    pub fn new(count: usize) -> Threads {
        let (done_tx, done) = mpsc::channel();
        let work = (0..count)
            .map(|i| {
                let (tx, rx) = mpsc::channel::<(Work, u64)>();
                let done = done_tx.clone();
                std::thread::Builder::new()
                    .name(format!("bench-worker-{i}"))
                    .spawn(move || {
                        for (work, n) in rx {
                            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(i, n)));
                            if done.send(outcome).is_err() {
                                return;
                            }
                        }
                    })
                    .expect("cannot start a benchmark thread");
                tx
            })
            .collect();
        Threads { work, done }
    }

    /// `iters` operations spread over the threads; the time until the last is done.
    pub fn run(&self, iters: u64, work: Work) -> Duration {
        let start = Instant::now();
        for (i, tx) in self.work.iter().enumerate() {
            tx.send((work.clone(), share(iters, self.work.len(), i)))
                .expect("a benchmark thread is gone");
        }
        for _ in &self.work {
            if let Err(panic) = self.done.recv().expect("a benchmark thread is gone") {
                std::panic::resume_unwind(panic);
            }
        }
        start.elapsed()
    }
}
