//! What happens to a manager's children, as a stream of [`Event`]s.

use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::mpsc;

/// Something that happened to a child of a [`Manager`](crate::Manager), in the order it
/// happened: see [`Manager::events`](crate::Manager::events).
///
/// A child's life reads `Started`, `Exited`, then, when its [restart
/// policy](crate::Restart) starts it again, `Restarting` and the next incarnation's
/// `Started` with its new PID; or `GaveUp` when its [restart
/// limit](crate::Process::restart_limit) is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An incarnation of a child started (its first, or a restart).
    Started {
        /// The new incarnation's PID.
        pid: u32,
        /// The name it holds once its endpoint is up ([`Process::name`](crate::Process::name)).
        name: Option<String>,
    },
    /// An incarnation exited and was reaped.
    Exited {
        /// Its PID.
        pid: u32,
        /// How it exited.
        status: ExitStatus,
    },
    /// The child is started again after `after`: `pid` is the incarnation that exited.
    Restarting {
        /// The PID of the incarnation that exited.
        pid: u32,
        /// The delay before the next start (the [backoff](crate::Process::restart_backoff)).
        after: Duration,
    },
    /// The child exited once too often within its restart limit and stays down; its
    /// [`wait`](crate::Process::wait) resolves.
    GaveUp {
        /// The PID of the last incarnation.
        pid: u32,
        /// How many times it was restarted over its life.
        restarts: u32,
    },
}

/// The receiving end of [`Manager::events`](crate::Manager::events): a
/// [`Stream`](futures_util::Stream) of [`Event`]s, or [`next`](Self::next) without any
/// stream combinator.
///
/// It holds every event from its creation on, unread ones included (events are few: one
/// per start, exit and restart), and ends once its manager is dropped and the events
/// before that are read.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    /// The next event; `None` once the manager is gone.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is already there, without waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

/// Where a manager's events go: one channel per [`Events`] alive.
#[derive(Debug, Default)]
pub(super) struct Hub {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Event>>>,
}

impl Hub {
    pub(super) fn subscribe(&self) -> Events {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().push(tx);
        Events { rx }
    }

    /// Gives `event` to every subscriber, forgetting those dropped.
    pub(super) fn emit(&self, event: Event) {
        tracing::debug!(?event, "gproc: child event");
        self.lock().retain(|tx| tx.send(event.clone()).is_ok());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::UnboundedSender<Event>>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }
}
