//! The transport: one Unix-socket connection per pair of processes, carrying messages,
//! acknowledgements, RPC requests and replies both ways.
//!
//! # The files, in the order data flows through them
//!
//! - [`listener`] binds `<dir>/<pid>.sock` and accepts; [`handshake`] turns an accepted or
//!   a connected socket into a [`Peer`], on either side, with one piece of code;
//!   [`peers`] keeps one connection per peer process and settles the race when both
//!   processes connect to each other at once (the lower PID's connection is kept).
//! - [`reader`] reads frames from a peer and hands each message to the [`Sink`] that the
//!   layer above installed (the inbox); [`writer`] writes frames, carrying the
//!   acknowledgement owed to the peer in the same `writev` as any frame going its way.
//!   A message's descriptors cross as `SCM_RIGHTS` beside its bytes (see [`wire`]).
//! - [`driver`] decides *who* runs the two: the task or thread that waits.
//!
//! # Where I/O runs, and why
//!
//! Waking a thread costs more than a whole Unix-socket round trip on one CPU, so nothing
//! on the hot path may hand work to another thread. Every socket of the process is
//! registered in one epoll instance ([`poller`]), and that epoll descriptor is itself
//! registered in each tokio runtime that uses gproc, where a small *driver task* waits
//! for it to turn readable and then reads the ready sockets itself. The messages it reads
//! wake the receiving tasks of the same runtime, on the same thread, as a plain tokio
//! socket would. The blocking API does the same on the caller's thread: while it waits,
//! it polls the epoll descriptor and reads the sockets itself.
//!
//! An endpoint must answer its peers even while its process makes no gproc call, or
//! while its only runtime is a current-thread runtime that is not running (a
//! `#[tokio::test]` between tests). So gproc's own background thread keeps watch: every
//! few milliseconds it looks whether events wait that no driver took, and if so it
//! drives them itself and keeps watching until a user's driver comes back. When nothing
//! happens at all it sleeps on the epoll descriptor, so an idle process costs nothing.
//! Writes need no driver: a sender writes its frame itself, and only what the socket
//! does not take at once waits for the driver to flush it when the socket turns writable.

pub(crate) mod connection;
pub(crate) mod driver;
pub(crate) mod engine;
pub(crate) mod handshake;
pub(crate) mod listener;
pub(crate) mod pass;
pub(crate) mod peers;
pub(crate) mod poller;
pub(crate) mod reader;
pub mod wire;
pub(crate) mod writer;

pub(crate) use connection::{install_sink, Delivery, Peer, Sink};
pub(crate) use engine::lock;
pub(crate) use peers::{forget, is_connected, peer};
pub(crate) use writer::Hold;
