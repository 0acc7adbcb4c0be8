//! The signals a manager sends.

/// A signal to send to a process.
///
/// ```no_run
/// # async fn demo(child: &gproc::Process) -> Result<(), gproc::Error> {
/// child.signal(gproc::Signal::Term)?;
/// let status = child.wait().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// `SIGTERM`: ask to terminate.
    Term,
    /// `SIGKILL`: terminate at once; cannot be caught.
    Kill,
    /// `SIGINT`: interrupt, as Ctrl-C.
    Int,
    /// `SIGHUP`: hang-up; by convention, reload configuration.
    Hup,
    /// `SIGQUIT`: quit with a core dump.
    Quit,
    /// `SIGUSR1`: user-defined.
    Usr1,
    /// `SIGUSR2`: user-defined.
    Usr2,
}

impl Signal {
    pub(super) fn to_rustix(self) -> rustix::process::Signal {
        use rustix::process::Signal as S;
        match self {
            Signal::Term => S::TERM,
            Signal::Kill => S::KILL,
            Signal::Int => S::INT,
            Signal::Hup => S::HUP,
            Signal::Quit => S::QUIT,
            Signal::Usr1 => S::USR1,
            Signal::Usr2 => S::USR2,
        }
    }
}
