//! GoFrame's gproc example, ported: the program starts itself as a child through the
//! manager; the child sends the time to its parent every second, and the parent prints
//! what it receives.
//!
//! ```text
//! cargo run --example seed              # runs until Ctrl-C
//! cargo run --example seed -- --count 3 # stops after three messages
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if gproc::is_child() {
        return child().await;
    }
    let count = parse_count()?;
    println!("parent {} starting a child", gproc::pid());
    let manager = gproc::Manager::new();
    let no_args: [&str; 0] = [];
    let no_envs: [(&str, &str); 0] = [];
    let mut child = manager.new_process(std::env::current_exe()?, no_args, no_envs);
    child.die_with_parent(true);
    child.start().await?;
    let mut received = 0u64;
    while count.is_none_or(|n| received < n) {
        let msg = gproc::receive().await?;
        println!(
            "receive from {}, data: {}",
            msg.sender_pid,
            String::from_utf8_lossy(&msg.data)
        );
        received += 1;
    }
    child.kill().await?;
    Ok(())
}

/// The child: every second, send the time to the parent.
async fn child() -> Result<(), Box<dyn std::error::Error>> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
        let line = format!(
            "{}.{:03} (unix time, from child {})",
            now.as_secs(),
            now.subsec_millis(),
            gproc::pid()
        );
        gproc::send(gproc::ppid(), line).await?;
    }
}

fn parse_count() -> Result<Option<u64>, String> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => Ok(None),
        (Some("--count"), Some(n)) => n.parse().map(Some).map_err(|e| format!("--count {n}: {e}")),
        _ => Err("usage: seed [--count N]".into()),
    }
}
