//! The command line, as clap reads it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::target::Target;

/// See and poke a running family of gproc processes.
///
/// Every process that uses gproc has an endpoint in its directory; this command lists
/// them, pings them, sends them raw messages, receives theirs, and calls their services
/// with JSON arguments.
#[derive(Debug, Parser)]
#[command(name = "gproc", version, max_term_width = 100)]
#[command(
    after_help = "Exit status: 0 when it went well, 1 when a called method returned its \
    Err (printed as JSON on stdout), 2 for every other error.\n\
    RUST_LOG=gproc=debug shows gproc's log (calls, connections) on stderr."
)]
pub struct Cli {
    /// The directory of the endpoints [default: $GPROC_DIR, else $XDG_RUNTIME_DIR/gproc,
    /// else /tmp/gproc-<uid>]
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Print JSON (for `recv`, one line per message)
    #[arg(long, global = true)]
    pub json: bool,

    /// How long to wait for each answer, such as 500ms or 2s
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s",
          value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the live endpoints: pid, names, uid, uptime, services, command line
    Ls,

    /// Measure round trips to a process: min, median and max
    Ping {
        /// The process: a PID, or a name it holds
        target: Target,
        /// How many round trips
        #[arg(short = 'c', long, default_value_t = 5,
              value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
    },

    /// Send one raw message; it is delivered when this returns
    Send {
        /// The process: a PID, or a name it holds
        target: Target,
        /// The group to send in
        #[arg(short, long, default_value = "")]
        group: String,
        /// The message, or - to read it from stdin
        data: String,
    },

    /// Print this command's PID, then each raw message that arrives
    Recv {
        /// The group to receive from
        #[arg(short, long, default_value = "")]
        group: String,
        /// Stop after this many messages
        #[arg(short = 'n', long, value_name = "N")]
        count: Option<u64>,
        /// Hold this name while receiving, so that senders can use it
        #[arg(long)]
        name: Option<String>,
    },

    /// Show the services of a process: methods with their signatures, fingerprints
    Inspect {
        /// The process: a PID, or a name it holds
        target: Target,
    },

    /// Call a method with JSON arguments, and print the reply as JSON
    Call {
        /// The process: a PID, or a name it holds
        target: Target,
        /// The method, as Service.method
        #[arg(value_name = "SERVICE.METHOD")]
        method: String,
        /// The arguments, a JSON array in the method's order [default: []]
        #[arg(value_name = "JSON")]
        args: Option<String>,
    },
}

/// What every subcommand is given besides its own arguments.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub json: bool,
    pub timeout: Duration,
}
