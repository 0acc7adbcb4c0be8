//! `gproc recv`: this command's PID, then each raw message that arrives.

use std::process::ExitCode;

use gproc::Msg;
use serde_json::{json, Value};

use crate::cli::Options;
use crate::failure::Failure;
use crate::output::{self, DIM, PID};

pub async fn run(
    options: &Options,
    group: &str,
    count: Option<u64>,
    name: Option<&str>,
) -> Result<ExitCode, Failure> {
    gproc::listen()
        .await
        .map_err(|e| Failure::gproc("cannot listen", &e))?;
    if let Some(name) = name {
        gproc::register(name)
            .await
            .map_err(|e| Failure::gproc(&format!("cannot hold the name {name}"), &e))?;
    }
    let me = gproc::pid();
    if options.json {
        output::json(&json!({"pid": me, "group": group, "name": name, "dir": gproc::dir()}))?;
    } else {
        output::line(format!(
            "pid {} {}",
            output::styled(PID, me),
            output::styled(
                DIM,
                format!("receiving in group {group:?} in {}", gproc::dir().display())
            )
        ))?;
    }
    let mut received = 0;
    while count.is_none_or(|n| received < n) {
        // Ctrl-C ends it; the socket file it leaves is swept by the next endpoint to bind.
        // (tokio's `signal` feature is left out: in a workspace build it would give every
        // runtime of the tests a socket pair of its own.)
        let msg = gproc::receive_group(group)
            .await
            .map_err(|e| Failure::gproc("cannot receive", &e))?;
        received += 1;
        if options.json {
            output::json(&to_json(&msg))?;
        } else {
            output::line(format!(
                "from {} group {:?} {} bytes: {}",
                output::styled(PID, msg.sender_pid),
                msg.group,
                msg.data.len(),
                text_of(&msg.data)
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(msg: &Msg) -> Value {
    let mut value = json!({
        "sender": msg.sender_pid,
        "group": msg.group,
        "bytes": msg.data.len(),
    });
    match std::str::from_utf8(&msg.data) {
        Ok(text) => value["data"] = Value::String(text.to_owned()),
        Err(_) => value["data_hex"] = Value::String(hex(&msg.data)),
    }
    value
}

/// The message as text: UTF-8 shown with its control characters escaped, anything else
/// in hex.
fn text_of(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) => text.escape_debug().to_string(),
        Err(_) => format!("(not UTF-8) {}", hex(data)),
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}
