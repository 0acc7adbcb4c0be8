//! The process's one epoll instance: the listener and every connection are registered in
//! it, edge-triggered, each under a token.
//!
//! Edge-triggered, because a level-triggered source is put back on the ready list each
//! time it is reported, and for an epoll watched from another epoll (a runtime's reactor,
//! see `driver`) that wakes the watcher once more for nothing: two passes per message
//! instead of one. So every source is read until the kernel has nothing more (a short
//! read, or `EAGAIN`), or, when a queue is full, resumed by whoever makes room.
//!
//! The epoll descriptor is itself pollable: it turns readable when one of its sources is
//! ready. That is what lets any runtime wait for all of gproc's sockets with one
//! registration of its own (see `driver`), and a blocking thread with one `poll(2)`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::epoll::{self, Event, EventData, EventFlags};

/// The token of the listening socket.
pub(crate) const LISTENER: u64 = 0;

/// Events taken from the kernel at once.
pub(crate) const BATCH: usize = 64;

/// What a source waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interest {
    pub read: bool,
    pub write: bool,
}

impl Interest {
    fn flags(self) -> EventFlags {
        let mut flags = EventFlags::RDHUP | EventFlags::ET;
        if self.read {
            flags |= EventFlags::IN;
        }
        if self.write {
            flags |= EventFlags::OUT;
        }
        flags
    }
}

/// One ready source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ready {
    pub token: u64,
    pub readable: bool,
    pub writable: bool,
    /// The peer hung up or the socket failed: reading tells which.
    pub closed: bool,
}

pub(crate) struct Poller {
    epoll: OwnedFd,
}

impl Poller {
    pub fn new() -> std::io::Result<Self> {
        Ok(Poller {
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    pub fn add(&self, source: impl AsFd, token: u64, interest: Interest) -> std::io::Result<()> {
        Ok(epoll::add(
            &self.epoll,
            source,
            EventData::new_u64(token),
            interest.flags(),
        )?)
    }

    pub fn modify(&self, source: impl AsFd, token: u64, interest: Interest) -> std::io::Result<()> {
        Ok(epoll::modify(
            &self.epoll,
            source,
            EventData::new_u64(token),
            interest.flags(),
        )?)
    }

    pub fn delete(&self, source: impl AsFd) {
        // Fails only for a source that is not registered: nothing to undo then.
        let _ = epoll::delete(&self.epoll, source);
    }

    /// The sources ready now, without waiting; at most [`BATCH`].
    pub fn ready_now(&self, out: &mut Vec<Ready>) -> std::io::Result<()> {
        let mut events = [Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0),
        }; BATCH];
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let n = loop {
            match epoll::wait(&self.epoll, &mut events, Some(&zero)) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        out.extend(events[..n].iter().map(|e| {
            let flags = e.flags;
            Ready {
                token: e.data.u64(),
                readable: flags.intersects(EventFlags::IN | EventFlags::PRI),
                writable: flags.contains(EventFlags::OUT),
                closed: flags.intersects(EventFlags::HUP | EventFlags::ERR | EventFlags::RDHUP),
            }
        }));
        Ok(())
    }
}
