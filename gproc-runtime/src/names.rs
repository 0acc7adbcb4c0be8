//! Names: files in the endpoint directory, each held by a lock while its holder lives.
//!
//! The name `N` is the file `<dir>/N.name`, holding `"<pid> <start ticks>\n"` of its
//! holder, who keeps an exclusive `flock` on it for as long as it holds the name. The lock,
//! not the file, says who holds a name: the kernel drops it when the holder exits however
//! it exits (SIGKILL included), so a dead holder's name is free at once, and a file left
//! behind names nobody. The directory's permissions (0700) keep other users out, as they
//! do for the sockets.
//!
//! Taking a name: write the content into a fresh temporary file, lock it, then `link` it
//! to `N.name`, which fails if the name file exists: the file is never seen unlocked, or
//! empty, while it is held. An existing file that can be locked is stale: its taker
//! removes it while holding its lock (after checking that the path still names the file
//! it locked) and links again. Two takers racing for a stale file: the first to lock it
//! removes it, the other fails to lock it and sees a dead holder in it, so it looks again;
//! of the links that follow, one wins. So there is exactly one holder at any time.
//!
//! Looking a name up: a lock taken on the file means nobody holds it; a lock refused
//! means somebody does, and the content names them, believed only if that PID is alive
//! with the start time recorded (a process that reused a dead holder's PID is not it).
//!
//! This file sits at the bottom with the configuration: it knows files and processes,
//! not the transport. The public functions are in `naming.rs`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rustix::fs::{flock, FlockOperation};

use crate::config::settings;
use crate::error::{Error, Result};
use crate::identity::{is_alive, own_start_ticks, pid, start_ticks};

/// The longest name, in bytes (each character is one byte).
pub(crate) const MAX_NAME_LEN: usize = 100;
const SUFFIX: &str = ".name";
const TEMP_SUFFIX: &str = ".name-tmp";
/// How many times a taker looks again when it meets a name being cleaned up.
const ATTEMPTS: u32 = 200;

/// Whether `name` can be a name: 1 to 100 characters of `[A-Za-z0-9._-]`, not only dots
/// (`.` and `..` are not file names a directory can hold).
pub(crate) fn validate(name: &str) -> Result<()> {
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.bytes().all(|b| b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}

/// A name this process holds: its locked file, and what identifies that file.
struct Held {
    /// Open (and locked) for as long as the name is held: closing it gives the name up.
    _file: File,
    inode: (u64, u64),
}

/// The names this process holds.
static HELD: Mutex<BTreeMap<String, Held>> = Mutex::new(BTreeMap::new());

fn held() -> MutexGuard<'static, BTreeMap<String, Held>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

fn path_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{SUFFIX}"))
}

fn inode_of(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// Whether `path` names the file `inode`.
fn names_inode(path: &Path, inode: (u64, u64)) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| inode_of(&m) == inode)
}

/// Takes `name` for this process. Taking a name it already holds is `Ok`. The directory
/// must exist (the endpoint is up).
///
/// # Errors
///
/// [`Error::InvalidName`], [`Error::NameTaken`] with the live holder's PID, [`Error::Io`].
pub(crate) fn take(name: &str) -> Result<()> {
    validate(name)?;
    let dir = settings().dir.clone();
    let path = path_of(&dir, name);
    let mut held = held();
    if let Some(h) = held.get(name) {
        if names_inode(&path, h.inode) {
            return Ok(());
        }
    }
    let h = take_at(&dir, &path)?;
    held.insert(name.to_owned(), h);
    drop(held);
    remove_at_exit();
    tracing::debug!(name, "gproc: took a name");
    Ok(())
}

fn take_at(dir: &Path, path: &Path) -> Result<Held> {
    let mut last_seen = None;
    for _ in 0..ATTEMPTS {
        let (file, temp) = locked_temp(dir)?;
        let linked = std::fs::hard_link(&temp, path);
        let _ = std::fs::remove_file(&temp);
        match linked {
            Ok(()) => {
                let inode = inode_of(&file.metadata()?);
                return Ok(Held { _file: file, inode });
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        drop(file);
        match inspect(path)? {
            Found::Holder(holder) => {
                return Err(Error::NameTaken {
                    name: name_in(path),
                    pid: holder,
                })
            }
            // Gone meanwhile, or stale and removed: link again.
            Found::Nothing | Found::Removed => {}
            // Locked, but the holder it names is dead: someone is removing it now.
            Found::Dying(recorded) => {
                last_seen = recorded;
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
    // Still locked by someone who is not the holder it names: a descendant that
    // inherited the descriptor through a fork without exec keeps the lock.
    tracing::warn!(
        path = %path.display(),
        "gproc: a name file stays locked although the holder it names has exited (a forked \
         process may have inherited its descriptor)"
    );
    Err(Error::NameTaken {
        name: name_in(path),
        pid: last_seen.unwrap_or(0),
    })
}

fn name_in(path: &Path) -> String {
    path.file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.strip_suffix(SUFFIX))
        .unwrap_or_default()
        .to_owned()
}

/// A new temporary file in `dir` holding this process's record, locked exclusively.
fn locked_temp(dir: &Path) -> Result<(File, PathBuf)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".{}.{}{TEMP_SUFFIX}",
        pid(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)?;
    let written = flock(&file, FlockOperation::NonBlockingLockExclusive)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(file, "{} {}", pid(), own_start_ticks()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e.into());
    }
    Ok((file, temp))
}

/// What a name file says.
enum Found {
    /// No file.
    Nothing,
    /// Held by this live process.
    Holder(u32),
    /// Locked, but not by the live process it names (`None`: unreadable).
    Dying(Option<u32>),
    /// Nobody held it; the stale file was removed.
    Removed,
}

/// Looks at the name file at `path`, removing it if it is stale.
fn inspect(path: &Path) -> Result<Found> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(e.into()),
    };
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            // Nobody holds it. Remove it only if the path still names the file locked.
            let inode = inode_of(&file.metadata()?);
            if names_inode(path, inode) {
                let _ = std::fs::remove_file(path);
            }
            Ok(Found::Removed)
        }
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let recorded = read_record(&mut file);
            Ok(match recorded {
                Some((holder, ticks)) if is_alive(holder) && start_ticks(holder) == Some(ticks) => {
                    Found::Holder(holder)
                }
                other => Found::Dying(other.map(|(p, _)| p)),
            })
        }
        Err(e) => Err(std::io::Error::from(e).into()),
    }
}

fn read_record(file: &mut File) -> Option<(u32, u64)> {
    let mut text = String::new();
    file.take(64).read_to_string(&mut text).ok()?;
    let mut words = text.split_whitespace();
    let pid = words.next()?.parse().ok()?;
    let ticks = words.next()?.parse().ok()?;
    Some((pid, ticks))
}

/// The PID holding `name` now, and its start ticks.
///
/// # Errors
///
/// [`Error::InvalidName`], [`Error::NoSuchName`] when nobody holds it, [`Error::Io`].
pub(crate) fn lookup(name: &str) -> Result<(u32, u64)> {
    validate(name)?;
    let path = path_of(&settings().dir, name);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(Error::NoSuchName(name.into())),
        Err(e) => return Err(e.into()),
    };
    // A shared lock granted: nobody holds the name (the stale file is left to the sweep).
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => return Err(Error::NoSuchName(name.into())),
        Err(rustix::io::Errno::WOULDBLOCK) => {}
        Err(e) => return Err(std::io::Error::from(e).into()),
    }
    match read_record(&mut file) {
        Some((holder, ticks)) if is_alive(holder) && start_ticks(holder) == Some(ticks) => {
            Ok((holder, ticks))
        }
        _ => Err(Error::NoSuchName(name.into())),
    }
}

/// Every name held in the directory now, with its holder, in name order.
pub(crate) fn list() -> Result<Vec<(String, u32)>> {
    let entries = match std::fs::read_dir(&settings().dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut names: Vec<(String, u32)> = entries
        .flatten()
        .filter_map(|entry| {
            let file = entry.file_name();
            let name = file.to_str()?.strip_suffix(SUFFIX)?;
            validate(name).ok()?;
            Some((name.to_owned(), lookup(name).ok()?.0))
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Takes again the names whose files went (a tmp cleaner removed them, or the whole
/// directory, which the endpoint's upkeep has made again by now). A name another process
/// took meanwhile is given up, with a warning. Called by the endpoint's upkeep.
pub(crate) fn upkeep() {
    let dir = settings().dir.clone();
    let mut held = held();
    let lost: Vec<String> = held
        .iter()
        .filter(|(name, h)| !names_inode(&path_of(&dir, name), h.inode))
        .map(|(name, _)| name.clone())
        .collect();
    for name in lost {
        match take_at(&dir, &path_of(&dir, &name)) {
            Ok(h) => {
                tracing::info!(
                    name,
                    "gproc: a name's file was removed; took the name again"
                );
                held.insert(name, h);
            }
            Err(Error::NameTaken { pid, .. }) => {
                tracing::warn!(
                    name,
                    holder = pid,
                    "gproc: a name's file was removed and another process took the name"
                );
                held.remove(&name);
            }
            // The directory is not back yet: next time.
            Err(e) => tracing::debug!(name, "gproc: cannot take a name again yet: {e}"),
        }
    }
}

/// Removes the files of names nobody holds, and temporary files of dead processes.
/// Called when the endpoint binds.
pub(crate) fn sweep() {
    let dir = settings().dir.clone();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        if file.ends_with(SUFFIX) {
            if let Ok(Found::Removed) = inspect(&entry.path()) {
                tracing::debug!(path = %entry.path().display(), "gproc: removed a stale name file");
            }
        } else if let Some(rest) = file.strip_suffix(TEMP_SUFFIX) {
            let owner = rest
                .strip_prefix('.')
                .and_then(|r| r.split('.').next())
                .and_then(|p| p.parse::<u32>().ok());
            if owner.is_some_and(|p| p != pid() && !is_alive(p)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Removes this process's name files when it exits normally (a killed process leaves
/// them, unlocked, to the next sweep).
fn remove_at_exit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn at_exit() {
        let dir = settings().dir.clone();
        // `try_lock`: exit may be called while another thread holds the table.
        let Ok(held) = HELD.try_lock() else {
            return;
        };
        for (name, h) in held.iter() {
            let path = path_of(&dir, name);
            if names_inode(&path, h.inode) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    ONCE.call_once(|| {
        // SAFETY: `at_exit` is an `extern "C"` function that does not unwind.
        unsafe { libc::atexit(at_exit) };
    });
}
