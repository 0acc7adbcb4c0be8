//! Who this process is: PID, parent, start time.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable through which a [`Manager`](crate::Manager) tells a child its
/// parent's PID.
pub const ENV_PPID: &str = "GPROC_PPID";
/// The environment variable naming the endpoint directory.
pub const ENV_DIR: &str = "GPROC_DIR";
/// The environment variable through which a [`Manager`](crate::Manager) tells a child the
/// name to hold ([`Process::name`](crate::Process::name)).
pub const ENV_NAME: &str = "GPROC_NAME";

/// This process's PID.
///
/// ```
/// assert_eq!(gproc::pid(), std::process::id());
/// ```
pub fn pid() -> u32 {
    // Cached: it is read for every message received. A process that forks without exec
    // cannot go on using gproc in the child anyway (its I/O thread does not survive).
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// The gproc parent: `GPROC_PPID` if this process was started by a [`Manager`](crate::Manager),
/// else the OS parent.
pub fn ppid() -> u32 {
    gproc_ppid().unwrap_or_else(ppid_os)
}

/// The OS parent's PID (`getppid`). It changes to a subreaper or 1 when the parent exits.
pub fn ppid_os() -> u32 {
    rustix::process::getppid()
        .map(|p| p.as_raw_nonzero().get() as u32)
        .unwrap_or(0)
}

/// Whether this process was started by a gproc [`Manager`](crate::Manager): `GPROC_PPID`
/// names its OS parent.
///
/// The variable alone is not enough: the processes a child starts without gproc (with
/// `std::process::Command`, a shell) inherit its environment, and would take themselves
/// for children of the supervisor. So the claim holds only where `GPROC_PPID` is the
/// process that started this one. It is checked once, at gproc's first use in this
/// process, and kept: a child whose manager exits later (and that the OS gives to
/// another parent) stays a child. A child that first uses gproc after its manager has
/// already exited is not one.
///
/// ```
/// // A test binary is not started by a gproc Manager.
/// assert!(!gproc::is_child());
/// assert_eq!(gproc::ppid(), gproc::ppid_os());
/// ```
pub fn is_child() -> bool {
    gproc_ppid().is_some()
}

/// `GPROC_PPID`, if it names the process that started this one; read once.
fn gproc_ppid() -> Option<u32> {
    static CLAIM: OnceLock<Option<u32>> = OnceLock::new();
    *CLAIM.get_or_init(|| {
        let claimed = std::env::var(ENV_PPID)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|&p| p != 0)?;
        let parent = ppid_os();
        if claimed != parent {
            tracing::debug!(
                claimed,
                parent,
                "gproc: {ENV_PPID} names another process than this one's parent (it was \
                 inherited from an ancestor): this process is not a gproc child"
            );
            return None;
        }
        Some(claimed)
    })
}

/// The name this process is to hold, if its manager gave it one (`GPROC_NAME`, taken
/// only from the manager that started this process: see [`is_child`]).
pub(crate) fn given_name() -> Option<String> {
    if !is_child() {
        return None;
    }
    std::env::var(ENV_NAME).ok().filter(|n| !n.is_empty())
}

/// When this process started, as the OS recorded it (not when gproc was first used).
///
/// ```
/// let started = gproc::start_time();
/// assert!(started <= std::time::SystemTime::now());
/// ```
pub fn start_time() -> SystemTime {
    static START: OnceLock<SystemTime> = OnceLock::new();
    *START.get_or_init(|| {
        start_ticks(pid())
            .and_then(ticks_to_system_time)
            .unwrap_or_else(SystemTime::now)
    })
}

/// How long this process has been running, measured from [`start_time`].
pub fn uptime() -> Duration {
    SystemTime::now()
        .duration_since(start_time())
        .unwrap_or_default()
}

/// The start time of `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
///
/// Together with the PID it identifies a process across PID reuse.
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process's start time in clock ticks since boot, cached.
pub(crate) fn own_start_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| start_ticks(pid()).unwrap_or(0))
}

/// Whether `pid` is a zombie (exited, not yet reaped).
pub(crate) fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(false)
}

/// Whether a process with this PID exists and is not a zombie.
pub(crate) fn is_alive(pid: u32) -> bool {
    let Some(p) = os_pid(pid) else {
        return false;
    };
    match rustix::process::test_kill_process(p) {
        Ok(()) => !is_zombie(pid),
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

fn ticks_to_system_time(ticks: u64) -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    let since_boot =
        Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz);
    Some(UNIX_EPOCH + Duration::from_secs(btime) + since_boot)
}

/// `pid` as the OS's PID type; `None` for 0 and for values no PID can have.
pub(crate) fn os_pid(pid: u32) -> Option<rustix::process::Pid> {
    rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)
}
