//! `gproc`: see and poke a running family of gproc processes, as `busctl` and
//! `varlinkctl` do for D-Bus and varlink.
//!
//! ```text
//! gproc ls                                   live endpoints: pid, names, uid, uptime, services, command
//! gproc ping PID|NAME [-c N]                 round trips, with min / median / max
//! gproc send PID|NAME [--group G] DATA|-     one raw message (-: stdin)
//! gproc recv [--group G] [-n N] [--name N]   print this command's PID, then what arrives
//! gproc inspect PID|NAME                     services, methods with signatures, fingerprints
//! gproc call PID|NAME Service.method [JSON]  a typed call with JSON arguments; the reply as JSON
//! ```
//!
//! `--dir` picks the directory, `--json` prints JSON, `--timeout` bounds each answer.
//! Errors are one line on stderr. Exit status: 0 when it went well, 1 when a called method
//! returned its `Err` (printed as JSON on stdout), 2 for every other error.
//! `RUST_LOG=gproc=debug` shows gproc's log, calls and connections, on stderr.
//!
//! Files: `cli.rs` (the arguments), `commands/` (one file per subcommand), `target.rs`
//! (PID or name), `procfs.rs` (what `/proc` says of a process), `output.rs` (columns,
//! colours, JSON), `failure.rs` (errors and exit statuses).

mod cli;
mod commands;
mod failure;
mod output;
mod procfs;
mod target;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use failure::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_log();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return failure::report(&Failure::new(format!("cannot start a runtime: {e}"))),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(failure) => failure::report(&failure),
    }
}

async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    if let Some(dir) = &cli.dir {
        gproc::Config::new()
            .dir(dir)
            .install()
            .map_err(|e| Failure::new(format!("cannot use --dir {}: {e}", dir.display())))?;
    }
    let options = cli::Options {
        json: cli.json,
        timeout: cli.timeout,
    };
    match cli.command {
        Command::Ls => commands::ls::run(&options).await,
        Command::Ping { target, count } => commands::ping::run(&options, &target, count).await,
        Command::Send {
            target,
            group,
            data,
        } => commands::send::run(&options, &target, &group, &data).await,
        Command::Recv { group, count, name } => {
            commands::recv::run(&options, &group, count, name.as_deref()).await
        }
        Command::Inspect { target } => commands::inspect::run(&options, &target).await,
        Command::Call {
            target,
            method,
            args,
        } => commands::call::run(&options, &target, &method, args.as_deref()).await,
    }
}

/// gproc's log on stderr, as `RUST_LOG` asks (nothing without it).
fn init_log() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
