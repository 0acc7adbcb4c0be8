//! Process-wide configuration, and the endpoint directory.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::identity::ENV_DIR;

/// The default largest message: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
/// The default capacity of each group's queue, in messages.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// The largest message size [`Config::max_message_size`] accepts: a frame's length must
/// fit in its 32-bit length prefix with the frame's head.
pub const MAX_MESSAGE_SIZE_LIMIT: usize = u32::MAX as usize - 1024;
/// The most groups a process keeps alive at once. A group is alive while it holds
/// messages or a receiver waits on it, so any number of names may be used over a
/// process's life. A message that would make one more is refused, that one send failing
/// with [`Error::GroupLimit`]; a receive that would, with the same error.
pub const MAX_GROUPS: usize = 4096;
/// The default time allowed to connect to a peer and finish the handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Process-wide settings, installed once before gproc is first used.
///
/// Every setting has a default, so most programs never build a `Config`. The directory
/// is, in order: [`Config::dir`], `$GPROC_DIR`, `$XDG_RUNTIME_DIR/gproc`, `/tmp/gproc-<uid>`.
///
/// ```
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir().unwrap();
/// gproc::Config::new()
///     .dir(dir.path())
///     .max_message_size(1 << 20)
///     .queue_capacity(64)
///     .connect_timeout(Duration::from_secs(1))
///     .install()
///     .unwrap();
/// // A second install, or one after first use, is refused.
/// assert!(matches!(gproc::Config::new().install(), Err(gproc::Error::AlreadyInitialized)));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Config does nothing until install() is called"]
pub struct Config {
    dir: Option<PathBuf>,
    max_message_size: usize,
    queue_capacity: usize,
    connect_timeout: Duration,
    allow_uids: Vec<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// The defaults: 64 MiB messages, 1024 messages per group queue, 5 s connect timeout,
    /// only this process's own uid may connect.
    pub fn new() -> Self {
        Config {
            dir: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            allow_uids: Vec::new(),
        }
    }

    /// The directory holding the endpoints (overrides `$GPROC_DIR`). Children started by a
    /// [`Manager`](crate::Manager) inherit it through `GPROC_DIR`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The largest message this process sends or accepts, in bytes: from 1 to
    /// [`MAX_MESSAGE_SIZE_LIMIT`]; [`install`](Self::install) refuses any other.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How many messages each group's queue holds before senders wait: at least 1;
    /// [`install`](Self::install) refuses 0.
    pub fn queue_capacity(mut self, messages: usize) -> Self {
        self.queue_capacity = messages;
        self
    }

    /// How long connecting to a peer and the handshake may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Also talk with processes running as `uid`: accept their connections, send to their
    /// endpoints, and use an endpoint directory they own. Both sides name each other's uid.
    ///
    /// The endpoint socket is then made accessible to other users; giving that uid a
    /// directory it can reach is up to the caller.
    pub fn allow_uid(mut self, uid: u32) -> Self {
        if !self.allow_uids.contains(&uid) {
            self.allow_uids.push(uid);
        }
        self
    }

    /// Makes this configuration the process's, once its settings are checked.
    ///
    /// ```
    /// // A setting that cannot work is refused here, not at first use.
    /// let e = gproc::Config::new().queue_capacity(0).install().unwrap_err();
    /// assert!(matches!(e, gproc::Error::InvalidConfig(_)));
    /// println!("{e}"); // says what to change
    ///
    /// let e = gproc::Config::new().max_message_size(0).install().unwrap_err();
    /// assert!(e.to_string().contains("max_message_size"));
    ///
    /// // So is a directory that exists but cannot be used: here a regular file.
    /// let file = tempfile::NamedTempFile::new().unwrap();
    /// let e = gproc::Config::new().dir(file.path()).install().unwrap_err();
    /// assert!(matches!(e, gproc::Error::Directory { .. }));
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidConfig`] for a setting out of range (a zero queue capacity or
    ///   message size);
    /// - [`Error::Directory`] for a directory that exists but cannot be used (not a
    ///   directory, a symbolic link, owned by a user not allowed, or not writable);
    /// - [`Error::AlreadyInitialized`] if gproc was already used in this process, or a
    ///   configuration was already installed.
    pub fn install(self) -> Result<()> {
        self.check()?;
        let settings = Settings::from_config(self);
        SETTINGS
            .set(settings)
            .map_err(|_| Error::AlreadyInitialized)
    }
}

impl Config {
    fn check(&self) -> Result<()> {
        if !(1..=MAX_MESSAGE_SIZE_LIMIT).contains(&self.max_message_size) {
            return Err(Error::InvalidConfig(format!(
                "Config::max_message_size({}) is out of range; pass a size from 1 to \
                 {MAX_MESSAGE_SIZE_LIMIT} bytes (the default is {DEFAULT_MAX_MESSAGE_SIZE})",
                self.max_message_size
            )));
        }
        if self.queue_capacity == 0 {
            return Err(Error::InvalidConfig(format!(
                "Config::queue_capacity(0) would leave no room for any message; pass at \
                 least 1 (the default is {DEFAULT_QUEUE_CAPACITY})"
            )));
        }
        let uid = rustix::process::getuid().as_raw();
        let dir = self.dir.clone().unwrap_or_else(|| default_dir(uid));
        // A directory not there yet is made at first use; one that is there must be usable.
        if std::fs::symlink_metadata(&dir).is_ok() {
            let trusted = |owner| owner == uid || self.allow_uids.contains(&owner);
            check_dir(&dir, trusted).map_err(|reason| Error::Directory { path: dir, reason })?;
        }
        Ok(())
    }
}

/// The directory holding the endpoints in this process: [`Config::dir`], else `$GPROC_DIR`,
/// else `$XDG_RUNTIME_DIR/gproc`, else `/tmp/gproc-<uid>`. Calling it counts as first use:
/// [`Config::install`] is refused afterwards.
///
/// ```
/// let dir = gproc::dir();
/// println!("endpoints live in {}", dir.display());
/// ```
pub fn dir() -> &'static Path {
    &settings().dir
}

/// The configuration in force, with the directory resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    pub dir: PathBuf,
    pub max_message_size: usize,
    pub queue_capacity: usize,
    pub connect_timeout: Duration,
    pub allow_uids: Vec<u32>,
    pub uid: u32,
    dir_checked: OnceLock<Result<(), String>>,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// The settings in force; the defaults are installed on first use.
pub(crate) fn settings() -> &'static Settings {
    SETTINGS.get_or_init(|| Settings::from_config(Config::new()))
}

impl Settings {
    fn from_config(config: Config) -> Self {
        let uid = rustix::process::getuid().as_raw();
        Settings {
            dir: config.dir.unwrap_or_else(|| default_dir(uid)),
            max_message_size: config.max_message_size,
            queue_capacity: config.queue_capacity,
            connect_timeout: config.connect_timeout,
            allow_uids: config.allow_uids,
            uid,
            dir_checked: OnceLock::new(),
        }
    }

    /// Whether a peer running as `uid` may talk to this process.
    pub fn uid_allowed(&self, uid: u32) -> bool {
        uid == self.uid || self.allow_uids.contains(&uid)
    }

    /// The socket path of `pid`'s endpoint.
    pub fn socket_path(&self, pid: u32) -> PathBuf {
        self.dir.join(format!("{pid}.sock"))
    }

    /// Makes the directory again if it is gone, with the checks of the first use, and
    /// checks it again if it is there: for binding again after a tmp cleaner.
    pub fn recheck_dir(&self) -> Result<()> {
        prepare_dir(&self.dir, |owner| self.uid_allowed(owner)).map_err(|reason| Error::Directory {
            path: self.dir.clone(),
            reason,
        })
    }

    /// Creates the directory if needed (mode 0700) and checks that it is safe: a real
    /// directory, not a symlink, owned by this uid. Checked once per process.
    pub fn ensure_dir(&self) -> Result<&Path> {
        let checked = self
            .dir_checked
            .get_or_init(|| prepare_dir(&self.dir, |owner| self.uid_allowed(owner)));
        match checked {
            Ok(()) => Ok(&self.dir),
            Err(reason) => Err(Error::Directory {
                path: self.dir.clone(),
                reason: reason.clone(),
            }),
        }
    }
}

fn default_dir(uid: u32) -> PathBuf {
    if let Some(dir) = std::env::var_os(ENV_DIR).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(run).join("gproc");
    }
    PathBuf::from(format!("/tmp/gproc-{uid}"))
}

fn prepare_dir(dir: &Path, trusted: impl Fn(u32) -> bool) -> Result<(), String> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => return Err(format!("cannot create it: {e}")),
    }
    check_dir(dir, trusted)
}

/// Whether `dir` is safe to hold endpoints: a real directory, not a symbolic link, owned
/// by a trusted uid, and usable by this process (writable if it is its own).
fn check_dir(dir: &Path, trusted: impl Fn(u32) -> bool) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot read it: {e}"))?;
    if meta.file_type().is_symlink() {
        return Err(
            "it is a symbolic link, which another user could redirect; use a real directory".into(),
        );
    }
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    if !trusted(meta.uid()) {
        return Err(format!(
            "it is owned by uid {}, neither this process's uid nor one allowed with \
             Config::allow_uid; another user may have created it to intercept messages. Remove \
             it or set GPROC_DIR to a directory you own",
            meta.uid()
        ));
    }
    // A directory of this uid's own must take its socket; one of another uid allowed with
    // `allow_uid` need only let this process reach the sockets in it.
    let own = meta.uid() == rustix::process::getuid().as_raw();
    let access = if own {
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK
    } else {
        rustix::fs::Access::EXEC_OK
    };
    if let Err(e) = rustix::fs::access(dir, access) {
        let what = if own {
            "create its socket in it"
        } else {
            "reach the sockets in it"
        };
        return Err(format!(
            "this process cannot {what} ({e}); give its owner write and search permission \
             (mode 0700), or set GPROC_DIR to another directory"
        ));
    }
    Ok(())
}
