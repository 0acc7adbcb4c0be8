//! Who a subcommand talks to: a PID, or a name that a process holds.

use std::fmt;
use std::str::FromStr;

use gproc::Error;

use crate::failure::Failure;

/// A process, as the operator named it.
#[derive(Debug, Clone)]
pub enum Target {
    Pid(u32),
    Name(String),
}

impl FromStr for Target {
    type Err = String;

    /// Digits are a PID; anything else is a name (checked when it is looked up).
    fn from_str(text: &str) -> Result<Target, String> {
        if text.is_empty() {
            return Err("give a PID or a name".into());
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse() {
                Ok(0) | Err(_) => Err(format!("{text} is not a PID")),
                Ok(pid) => Ok(Target::Pid(pid)),
            };
        }
        Ok(Target::Name(text.to_owned()))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pid(pid) => write!(f, "{pid}"),
            Target::Name(name) => f.write_str(name),
        }
    }
}

impl Target {
    /// The PID to talk to now: the one given, or the holder of the name.
    pub async fn resolve(&self) -> Result<u32, Failure> {
        match self {
            Target::Pid(pid) => Ok(*pid),
            Target::Name(name) => gproc::lookup(name).await.map_err(|e| match e {
                Error::NoSuchName(_) => Failure::new(format!(
                    "no process holds the name {name} in {} (`gproc ls` lists the names held)",
                    gproc::dir().display()
                )),
                other => Failure::gproc(&format!("cannot look up {name}"), &other),
            }),
        }
    }
}
