//! The same service beyond one machine: a server process serves a `Calculator` on a TCP
//! port through tarpc, and a client process calls it by address, with the client type,
//! the typed errors and the deadlines it would use by PID.
//!
//! ```text
//! cargo run --release --features tarpc --example remote
//! ```
//!
//! Run as `remote serve ADDR` it is only the server; as `remote call ADDR` only the
//! client, for two machines.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A calculator served to other machines.
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

type Outcome<T> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Outcome<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", addr] => serve(addr).await,
        ["call", addr] => call(addr).await,
        [] => both().await,
        _ => Err("usage: remote [serve ADDR | call ADDR]".into()),
    }
}

/// Serves on `addr` and prints the address bound; ends when standard input closes.
async fn serve(addr: &str) -> Outcome<()> {
    let serving = gproc::tarpc::serve(addr, CalculatorServer::new(Calc)).await?;
    println!("serving {}", serving.local_addr());
    tokio::task::spawn_blocking(|| std::io::stdin().lines().count()).await?;
    Ok(())
}

/// Calls the calculator at `addr`.
async fn call(addr: &str) -> Outcome<()> {
    let started = Instant::now();
    let calc = CalculatorClient::from_stub(gproc::tarpc::connect(addr).await?);
    println!("connected to {addr} in {:?}", started.elapsed());

    let started = Instant::now();
    let sum = calc.add(2, 3).await?;
    println!("add(2, 3) = {sum} in {:?}", started.elapsed());
    println!("div(1, 4) = {:?}", calc.div(1.0, 4.0).await?);
    // A typed error is a value of the method's return type, not a transport failure.
    println!("div(1, 0) = {:?}", calc.div(1.0, 0.0).await?);

    // The deadline travels as time remaining; the server stops the handler when it passes.
    let hasty = calc.clone().with_timeout(Duration::from_millis(100));
    let started = Instant::now();
    match hasty.work(2_000).await {
        Err(gproc::RpcError::DeadlineExceeded) => {
            println!(
                "work(2000 ms) with a 100 ms deadline: DeadlineExceeded after {:?}",
                started.elapsed()
            )
        }
        other => return Err(format!("a 2 s call with a 100 ms deadline: {other:?}").into()),
    }
    println!(
        "add(20, 22) = {} (the server serves on)",
        calc.add(20, 22).await?
    );
    Ok(())
}

/// Starts this program as the server process on a free port of 127.0.0.1, calls it,
/// and stops it.
async fn both() -> Outcome<()> {
    let mut server = Command::new(std::env::current_exe()?)
        .args(["serve", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(server.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("serving ")
        .ok_or_else(|| format!("the server said {line:?}"))?
        .to_owned();
    println!("server process {} serves {addr}", server.id());

    let called = call(&addr).await;

    server.stdin.take().ok_or("no stdin")?.flush()?; // dropped here: the server ends
    let status = server.wait()?;
    println!("server exited: {status}");
    called?;
    if !status.success() {
        return Err(format!("the server exited with {status}").into());
    }
    Ok(())
}
