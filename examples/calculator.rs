//! Typed calls to a child process: the parent starts itself as a child through the
//! manager; the child serves a `Calculator` and still receives raw messages on the side.
//!
//! ```text
//! cargo run --example calculator
//! ```

use std::time::{Duration, Instant};

/// A calculator served by another process.
#[gproc::service]
pub trait Calculator {
    /// `a + b`.
    async fn add(&self, a: i64, b: i64) -> i64;
    /// `a / b`, or why not.
    async fn div(&self, a: f64, b: f64) -> Result<f64, String>;
    /// Works for `ms` milliseconds, then answers how long it worked.
    async fn work(&self, ms: u64) -> u64;
}

struct Calc;

impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn div(&self, a: f64, b: f64) -> Result<f64, String> {
        if b == 0.0 {
            return Err(format!("cannot divide {a} by zero"));
        }
        Ok(a / b)
    }

    async fn work(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if gproc::is_child() {
        return child().await;
    }
    let manager = gproc::Manager::new();
    let no_args: [&str; 0] = [];
    let no_envs: [(&str, &str); 0] = [];
    let mut child = manager.new_process(std::env::current_exe()?, no_args, no_envs);
    child.die_with_parent(true);
    let pid = child.start().await?;
    let calc = CalculatorClient::new(pid);
    calc.wait_served(Duration::from_secs(5)).await?;
    println!("child {pid} serves Calculator");

    let started = Instant::now();
    let sum = calc.add(2, 40).await?;
    println!("add(2, 40)            = {sum}   ({:?})", started.elapsed());
    println!("div(1, 4)             = {:?}", calc.div(1.0, 4.0).await?);
    // The handler's own error travels typed, inside Ok: the call itself worked.
    println!("div(1, 0)             = {:?}", calc.div(1.0, 0.0).await?);
    // A deadline travels with the call; the server stops the handler when it passes.
    let hurried = calc.clone().with_timeout(Duration::from_millis(100));
    match hurried.work(2_000).await {
        Err(gproc::RpcError::DeadlineExceeded) => {
            println!("work(2000) in 100 ms  = deadline exceeded, handler stopped")
        }
        other => println!("work(2000) in 100 ms  = {other:?}"),
    }
    println!(
        "work(10)              = {:?} (the server goes on)",
        calc.work(10).await?
    );

    // Raw messages beside the typed calls.
    child.send("hello from the parent, raw").await?;
    let reply = gproc::receive().await?;
    println!(
        "raw reply from {}     : {}",
        reply.sender_pid,
        String::from_utf8_lossy(&reply.data)
    );

    for service in gproc::introspect(pid).await? {
        println!(
            "{pid} serves {} (fingerprint {:016x}):",
            service.name, service.fingerprint
        );
        for method in service.methods {
            println!("    {}", method.signature);
        }
    }
    child.kill().await?;
    Ok(())
}

/// The child: serve the calculator, and answer raw messages at the same time.
async fn child() -> Result<(), Box<dyn std::error::Error>> {
    tokio::spawn(async {
        while let Ok(msg) = gproc::receive().await {
            let answer = format!("got {} bytes", msg.data.len());
            let _ = gproc::send(msg.sender_pid, answer).await;
        }
    });
    CalculatorServer::new(Calc).serve().await?;
    Ok(())
}
