//! `gproc ls`: the live endpoints of the directory.

use std::process::ExitCode;

use gproc::{Error, RpcError};
use serde_json::{json, Value};

use crate::cli::Options;
use crate::failure::Failure;
use crate::output::{self, Cell, Table, DIM, NAME, PID, SERVICE, WARN};
use crate::procfs;

/// One endpoint, as listed.
struct Entry {
    pid: u32,
    names: Vec<String>,
    uid: Option<u32>,
    uptime: Option<std::time::Duration>,
    command: Vec<String>,
    /// The services' names and fingerprints, or why it did not say.
    services: Result<Vec<(String, u64)>, String>,
}

pub async fn run(options: &Options) -> Result<ExitCode, Failure> {
    let me = gproc::pid();
    let pids = gproc::endpoints()
        .map_err(|e| Failure::gproc(&format!("cannot read {}", gproc::dir().display()), &e))?;
    let mut names = super::names_by_pid().await?;
    // Every endpoint is asked at once: a stopped one costs one timeout, not one each.
    let mut asked = tokio::task::JoinSet::new();
    for pid in pids.into_iter().filter(|&pid| pid != me) {
        let timeout = options.timeout;
        asked.spawn(async move { (pid, super::services(pid, timeout).await) });
    }
    let mut entries = Vec::new();
    while let Some(answer) = asked.join_next().await {
        let Ok((pid, services)) = answer else {
            continue;
        };
        let services = match services {
            Ok(list) => Ok(list.into_iter().map(|s| (s.name, s.fingerprint)).collect()),
            // The file of a process that is gone, or of a PID now used by a process that
            // is not gproc's: not an endpoint.
            Err(RpcError::Transport(Error::NoSuchProcess(_) | Error::NotListening(_))) => continue,
            Err(RpcError::DeadlineExceeded) => Err(format!(
                "no answer within {}",
                humantime::format_duration(options.timeout)
            )),
            Err(e) => Err(e.to_string()),
        };
        let Some(command) = procfs::command(pid) else {
            continue;
        };
        entries.push(Entry {
            pid,
            names: names.remove(&pid).unwrap_or_default(),
            uid: procfs::uid(pid),
            uptime: procfs::uptime(pid),
            command,
            services,
        });
    }
    entries.sort_by_key(|e| e.pid);
    if options.json {
        let list: Vec<Value> = entries.iter().map(to_json).collect();
        output::json(&Value::Array(list))?;
    } else {
        print_table(&entries)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(e: &Entry) -> Value {
    let (services, error) = match &e.services {
        Ok(list) => {
            let list: Vec<Value> = list
                .iter()
                .map(|(name, fp)| json!({"name": name, "fingerprint": output::fingerprint(*fp)}))
                .collect();
            (Value::Array(list), Value::Null)
        }
        Err(why) => (Value::Null, Value::String(why.clone())),
    };
    json!({
        "pid": e.pid,
        "names": e.names,
        "uid": e.uid,
        "uptime_s": e.uptime.map(|d| (d.as_secs_f64() * 100.0).round() / 100.0),
        "command": e.command,
        "services": services,
        "error": error,
    })
}

fn print_table(entries: &[Entry]) -> Result<(), Failure> {
    if entries.is_empty() {
        return output::line(output::styled(
            DIM,
            format!("no endpoints in {}", gproc::dir().display()),
        ));
    }
    let mut table = Table::new(&["PID", "NAMES", "UID", "UPTIME", "SERVICES", "COMMAND"]);
    for e in entries {
        let names = if e.names.is_empty() {
            Cell::new("-", DIM)
        } else {
            Cell::new(e.names.join(","), NAME)
        };
        let services = match &e.services {
            Ok(list) if list.is_empty() => Cell::new("-", DIM),
            Ok(list) => {
                let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
                Cell::new(names.join(","), SERVICE)
            }
            Err(why) => Cell::new(format!("? ({why})"), WARN),
        };
        table.row(vec![
            Cell::new(e.pid.to_string(), PID),
            names,
            Cell::plain(e.uid.map_or("?".into(), |u| u.to_string())),
            Cell::plain(e.uptime.map_or("?".into(), output::age)),
            services,
            Cell::plain(shorten(&e.command.join(" "), 60)),
        ]);
    }
    table.print()
}

/// `text`, cut to `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}
