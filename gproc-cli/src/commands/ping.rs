//! `gproc ping`: round trips to a process's endpoint.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use crate::cli::Options;
use crate::failure::Failure;
use crate::output::{self, DIM, PID};
use crate::target::Target;

pub async fn run(options: &Options, target: &Target, count: u32) -> Result<ExitCode, Failure> {
    let pid = target.resolve().await?;
    let mut times = Vec::new();
    for seq in 1..=count {
        let answered = tokio::time::timeout(options.timeout, gproc::ping(pid)).await;
        let took = match answered {
            Ok(Ok(took)) => took,
            Ok(Err(e)) => {
                return Err(Failure::rpc(
                    &format!("cannot ping {target}"),
                    &e,
                    options.timeout,
                ))
            }
            Err(_) => {
                let e = gproc::RpcError::DeadlineExceeded;
                return Err(Failure::rpc(
                    &format!("cannot ping {target}"),
                    &e,
                    options.timeout,
                ));
            }
        };
        if !options.json {
            let first = if seq == 1 { " (connecting)" } else { "" };
            output::line(format!(
                "{} {}: {}{}",
                output::styled(DIM, format!("#{seq}")),
                output::styled(PID, pid),
                output::human(took),
                output::styled(DIM, first)
            ))?;
        }
        times.push(took);
    }
    let (min, median, max) = summary(&mut times);
    if options.json {
        let all: Vec<f64> = times.iter().copied().map(output::micros).collect();
        output::json(&json!({
            "pid": pid,
            "count": count,
            "min_us": output::micros(min),
            "median_us": output::micros(median),
            "max_us": output::micros(max),
            "times_us": all,
        }))?;
    } else {
        output::line(format!(
            "{count} round trip{} to {pid}: min {}, median {}, max {}",
            if count == 1 { "" } else { "s" },
            output::human(min),
            output::human(median),
            output::human(max)
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Min, median and max of `times` (not empty), which it leaves in the order measured.
fn summary(times: &mut [Duration]) -> (Duration, Duration, Duration) {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    };
    (sorted[0], median, sorted[n - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(summary(&mut [ms(3), ms(1), ms(2)]), (ms(1), ms(2), ms(3)));
        assert_eq!(
            summary(&mut [ms(4), ms(1), ms(2), ms(9)]),
            (ms(1), ms(3), ms(9))
        );
        assert_eq!(summary(&mut [ms(7)]), (ms(7), ms(7), ms(7)));
    }
}
