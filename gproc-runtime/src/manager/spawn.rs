//! Starting an incarnation: gproc's variables added to the user's command, the
//! parent-death signal, and the spawn itself, always from gproc's own thread.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

use super::child::Child;
use super::ready::ready_registry;
use crate::config::settings;
use crate::error::Error;
use crate::identity::{pid, ENV_DIR, ENV_NAME, ENV_PPID};

/// Adds to `command` what a gproc child needs, and nothing else: `GPROC_PPID`, `GPROC_DIR`,
/// `GPROC_NAME` when it is to hold a name, and the parent-death signal when asked. Its
/// standard streams, working directory and the rest of its environment stay the user's.
pub(super) fn prepare(command: &mut Command, name: Option<&str>, die_with_parent: bool) {
    let parent = pid();
    command
        .env(ENV_PPID, parent.to_string())
        .env(ENV_DIR, &settings().dir);
    match name {
        Some(name) => command.env(ENV_NAME, name),
        // A name the supervisor's own environment holds is not the child's.
        None => command.env_remove(ENV_NAME),
    };
    if die_with_parent {
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
        // system calls (prctl, getppid, kill).
        unsafe {
            command.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))?;
                // The parent may have died before the prctl: then die now.
                if crate::identity::ppid_os() != parent {
                    let _ = rustix::process::kill_process(
                        rustix::process::getpid(),
                        rustix::process::Signal::KILL,
                    );
                }
                Ok(())
            });
        }
    }
}

/// Spawns `command` and registers the incarnation for ready notices. Call on the
/// background runtime: `PR_SET_PDEATHSIG` fires when the *thread* that forked exits, and a
/// runtime's worker thread may exit long before this process.
pub(super) fn spawn(command: &mut Command) -> Result<(Arc<Child>, std::process::Child), Error> {
    let mut os_child = command
        .spawn()
        .map_err(|e| spawn_failed(command.get_program(), e))?;
    let child = Arc::new(Child::new(&mut os_child));
    ready_registry().insert(child.pid, Arc::downgrade(&child));
    tracing::debug!(pid = child.pid, "gproc: started a child");
    Ok((child, os_child))
}

/// A spawn failure, with the program named and the system's error kind kept.
fn spawn_failed(program: &OsStr, e: std::io::Error) -> Error {
    let hint = match e.kind() {
        std::io::ErrorKind::NotFound => {
            "; check the path (a name without a slash is looked up in PATH)"
        }
        std::io::ErrorKind::PermissionDenied => "; check that it is executable",
        _ => "",
    };
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("cannot start {}: {e}{hint}", program.to_string_lossy()),
    ))
}
