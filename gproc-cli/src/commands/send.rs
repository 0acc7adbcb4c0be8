//! `gproc send`: one raw message, from an argument or from stdin.

use std::io::Read as _;
use std::process::ExitCode;

use serde_json::json;

use crate::cli::Options;
use crate::failure::Failure;
use crate::output;
use crate::target::Target;

pub async fn run(
    options: &Options,
    target: &Target,
    group: &str,
    data: &str,
) -> Result<ExitCode, Failure> {
    let data = if data == "-" {
        read_stdin()?
    } else {
        data.as_bytes().to_vec()
    };
    let pid = target.resolve().await?;
    let len = data.len();
    let sent = tokio::time::timeout(options.timeout, gproc::send_group(pid, group, data)).await;
    let what = format!("cannot send to {target}");
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Failure::gproc(&what, &e)),
        Err(_) => {
            return Err(Failure::new(format!(
                "{what}: not acknowledged within {} (is it stopped, or its queue full?); raise it with --timeout",
                humantime::format_duration(options.timeout)
            )))
        }
    }
    if options.json {
        output::json(&json!({"pid": pid, "group": group, "bytes": len}))?;
    } else {
        output::line(format!("delivered {len} bytes to {pid} (group {group:?})"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// All of stdin, refused beyond the largest message this process may send.
fn read_stdin() -> Result<Vec<u8>, Failure> {
    let limit = gproc::DEFAULT_MAX_MESSAGE_SIZE;
    let mut data = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| Failure::new(format!("cannot read stdin: {e}")))?;
    if data.len() > limit {
        return Err(Failure::new(format!(
            "stdin holds more than {limit} bytes, the largest message; nothing was sent"
        )));
    }
    Ok(data)
}
