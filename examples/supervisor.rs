//! A supervisor: three named workers restarted when they fail, and a client that calls
//! them by name across a restart.
//!
//! ```text
//! cargo run --release --example supervisor
//! ```
//!
//! The program starts itself three times as `worker-1`, `worker-2` and `worker-3`
//! (`Restart::OnFailure`), calls each by name, kills `worker-2` with `SIGKILL`, prints the
//! events (exit, restart, start), and calls `worker-2` by name again with the same
//! client: the calls fail only while no incarnation is up. Then it stops everything with
//! `SIGTERM` and exits.

use std::time::{Duration, Instant};

use gproc::{Event, Restart, RpcError};

/// What each worker serves.
#[gproc::service]
pub trait Work {
    /// The PID of the process that answers.
    async fn whoami(&self) -> u32;
    /// `x * x`.
    async fn square(&self, x: u64) -> u64;
}

struct Worker;

impl Work for Worker {
    async fn whoami(&self) -> u32 {
        gproc::pid()
    }

    async fn square(&self, x: u64) -> u64 {
        x * x
    }
}

const WORKERS: [&str; 3] = ["worker-1", "worker-2", "worker-3"];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if gproc::is_child() {
        // A worker: serve until told to stop (SIGTERM ends the process).
        WorkServer::new(Worker).serve().await?;
        return Ok(());
    }
    let begun = Instant::now();
    let manager = gproc::Manager::new();
    let mut events = manager.events();
    let mut workers = Vec::new();
    for name in WORKERS {
        let mut worker = manager.new_command(std::process::Command::new(std::env::current_exe()?));
        worker
            .name(name)
            .restart(Restart::OnFailure)
            .restart_limit(5, Duration::from_secs(60))
            .restart_backoff(Duration::from_millis(100), Duration::from_secs(5))
            .die_with_parent(true);
        worker.start().await?;
        workers.push(worker);
    }
    for name in WORKERS {
        let client = WorkClient::by_name(name);
        client.wait_served(Duration::from_secs(5)).await?;
        println!(
            "{name}: pid {}, square(7) = {}",
            client.whoami().await?,
            client.square(7).await?
        );
    }
    print_events(&mut events);

    // Kill worker-2 as a crash would, and follow it by name with the same client.
    let client = WorkClient::by_name("worker-2").with_timeout(Duration::from_secs(1));
    let old = client.whoami().await?;
    println!("\nkilling worker-2 (pid {old}) with SIGKILL");
    workers[1].signal(gproc::Signal::Kill)?;
    let killed_at = Instant::now();
    let mut failures = 0;
    let new = loop {
        match client.whoami().await {
            Ok(pid) if pid != old => break pid,
            // The old incarnation may still answer for an instant before it dies.
            Ok(_) => {}
            Err(RpcError::Transport(e)) => {
                failures += 1;
                if failures == 1 {
                    println!("  while it is down: {e}");
                }
            }
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    println!(
        "worker-2 answers again as pid {new}, {:.0?} after the kill ({failures} calls failed \
         meanwhile); same client, square(9) = {}",
        killed_at.elapsed(),
        client.square(9).await?
    );
    print_events(&mut events);

    println!("\nstopping every worker (SIGTERM)");
    for (pid, status) in manager.stop_all(Duration::from_secs(2)).await {
        println!("  {pid}: {}", status?);
    }
    print_events(&mut events);
    println!("done in {:.2?}", begun.elapsed());
    Ok(())
}

/// Prints the events that happened so far.
fn print_events(events: &mut gproc::Events) {
    while let Some(event) = events.try_next() {
        match event {
            Event::Started { pid, name } => {
                println!("  event: started    {pid} ({})", name.unwrap_or_default())
            }
            Event::Exited { pid, status } => println!("  event: exited     {pid} ({status})"),
            Event::Restarting { pid, after } => {
                println!("  event: restarting {pid} after {after:?}")
            }
            Event::GaveUp { pid, restarts } => {
                println!("  event: gave up    {pid} after {restarts} restarts")
            }
        }
    }
}
