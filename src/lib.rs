//! Inter-process messaging addressed by PID.
//!
//! A process sends bytes to another process's PID with [`send`]; the receiving process
//! takes them from a queue with [`receive`]. A [`Manager`] starts child processes that
//! know their parent ([`ppid`]) and can be reached the same way. gproc is the Rust
//! successor of GoFrame's `gproc` (Go), whose messaging API is `Send(pid, data)` and
//! `Receive()`. It runs on Linux, over Unix-domain sockets.
//!
//! The smallest complete program: a process sending to itself.
//!
//! ```
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Endpoints in a directory of our own, so that the example leaves nothing behind.
//!     // Most programs skip this and use the default directory.
//!     let dir = tempfile::tempdir()?;
//!     gproc::Config::new().dir(dir.path()).install()?;
//!
//!     let runtime = tokio::runtime::Builder::new_current_thread()
//!         .enable_all()
//!         .build()?;
//!     runtime.block_on(async {
//!         gproc::send(gproc::pid(), "hello").await?; // returns once it is queued
//!         let msg = gproc::receive().await?;
//!         assert_eq!(msg.sender_pid, gproc::pid());
//!         assert_eq!(msg.data, "hello");
//!         Ok::<(), gproc::Error>(())
//!     })?;
//!     Ok(())
//! }
//! ```
//!
//! `cargo run --release --example demo` shows more: three worker processes, messages
//! both ways in several groups, round-trip times, and the error for a dead PID.
//!
//! # Messaging
//!
//! - [`send`]`(pid, data)` and [`send_group`]`(pid, group, data)` deliver `data` (anything
//!   that converts into [`Bytes`]) to a queue of process `pid`. They return `Ok` only once
//!   the receiving process has queued the message: delivery is acknowledged.
//! - [`receive`] and [`receive_group`]`(group)` wait for the next message of a queue and
//!   return a [`Msg`]: sender PID, receiver PID, group, data. `send` and `receive` use the
//!   default group `""`.
//! - [`listen`] binds this process's endpoint at once. Without it, the endpoint is bound
//!   on the first `send` or `receive`; a process only receives once it is bound.
//!
//! Messages from one sender to one receiver arrive in order. Each group has a bounded
//! queue ([`Config::queue_capacity`]); when it is full, the receiver stops reading from
//! that sender, and its `send` waits until there is room. No message is ever dropped
//! silently: it is queued, or `send` returns an error. Group names starting with
//! [`RESERVED_PREFIX`] (`gproc/`) belong to gproc itself.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # gproc::Config::new().dir(dir.path()).install()?;
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # runtime.block_on(async {
//! let me = gproc::pid();
//! gproc::send_group(me, "jobs", "first").await?;
//! gproc::send_group(me, "jobs", "second").await?;
//! gproc::send(me, "other queue").await?;
//! assert_eq!(gproc::receive_group("jobs").await?.data, "first");
//! assert_eq!(gproc::receive_group("jobs").await?.data, "second");
//! assert_eq!(gproc::receive().await?.group, "");
//! # Ok::<(), gproc::Error>(())
//! # })?;
//! # Ok(()) }
//! ```
//!
//! Each process listens on a Unix socket, `<dir>/<pid>.sock`, in a directory created
//! with mode 0700. A receiver accepts only peers running as its own uid (checked with
//! `SO_PEERCRED`) unless [`Config::allow_uid`] says otherwise. The connection handshake
//! carries each side's PID and start time, so that a process that reused a PID is told
//! apart from the one that had it. A clean exit removes the socket; sockets left by dead
//! processes are removed when another endpoint binds in the same directory.
//!
//! Identity: [`pid`], [`ppid`] (the parent that started this process through a
//! [`Manager`], else the OS parent), [`ppid_os`], [`is_child`], [`start_time`] (from the
//! OS) and [`uptime`].
//!
//! # The manager
//!
//! [`Manager::new_process`] prepares a child; [`Process::start`] runs it with
//! `GPROC_PPID` and `GPROC_DIR` set, so that [`ppid`] and messaging work in it at once.
//! [`Process::ready`] waits until the child's endpoint is up. A background reaper
//! collects every exited child and removes its socket; [`Process::wait`] returns its exit
//! status. Dropping the manager kills the children it still manages
//! ([`Process::detach`] lets one outlive it).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     if gproc::is_child() {
//!         // The worker: answer each job in the group "results".
//!         loop {
//!             let job = gproc::receive_group("jobs").await?;
//!             gproc::send_group(job.sender_pid, "results", job.data).await?;
//!         }
//!     }
//!     let manager = gproc::Manager::new();
//!     let no_args: [&str; 0] = [];
//!     let no_envs: [(&str, &str); 0] = [];
//!     let mut worker = manager.new_process(std::env::current_exe()?, no_args, no_envs);
//!     worker.die_with_parent(true); // killed by the kernel if this process dies
//!     let pid = worker.start().await?;
//!     worker.ready(Duration::from_secs(5)).await?;
//!
//!     gproc::send_group(pid, "jobs", "ping").await?;
//!     let reply = gproc::receive_group("results").await?;
//!     assert_eq!(reply.sender_pid, pid);
//!
//!     for (pid, result) in manager.send_all("to every child").await {
//!         println!("{pid}: {result:?}"); // one result per child
//!     }
//!     worker.signal(gproc::Signal::Term)?;
//!     println!("worker exited: {}", worker.wait().await?);
//!     Ok(())
//! }
//! ```
//!
//! A child can also watch its parent: [`parent_exited`] resolves when the process
//! [`ppid`] names has exited; any process can wait for any other with [`exited`].
//!
//! # Supervision
//!
//! A child with a [`Restart`] policy is started again when it exits: [`Restart::OnFailure`]
//! after a non-zero code or a signal, [`Restart::Always`] after any exit. Restarts wait a
//! delay that doubles from one restart to the next ([`Process::restart_backoff`]), and
//! stop for good once too many came within a window ([`Process::restart_limit`]).
//! [`Manager::events`] tells of every [`Event`]: `Started`, `Exited`, `Restarting`,
//! `GaveUp`. A restarted child has a new PID; [`Process::pid`], [`Process::send`] and
//! [`Process::signal`] follow the current incarnation, and a [name](Process::name) follows
//! it for everyone else. [`Manager::new_command`] takes a [`std::process::Command`] as
//! built, with its standard streams, working directory and environment.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     if gproc::is_child() {
//!         // A worker that fails now and then.
//!         let job = gproc::receive().await?;
//!         std::process::exit(if job.data == "fail" { 1 } else { 0 });
//!     }
//!     let manager = gproc::Manager::new();
//!     let mut events = manager.events();
//!     let mut worker = manager.new_command(std::process::Command::new(std::env::current_exe()?));
//!     worker
//!         .name("worker")
//!         .restart(gproc::Restart::OnFailure)
//!         .restart_limit(5, Duration::from_secs(60))
//!         .restart_backoff(Duration::from_millis(100), Duration::from_secs(10));
//!     worker.start().await?;
//!     worker.send("fail").await?; // exits 1: restarted after 100 ms
//!     let mut restarting = false;
//!     while let Some(event) = events.next().await {
//!         match event {
//!             gproc::Event::Restarting { pid, after } => {
//!                 println!("{pid} failed; starting again after {after:?}");
//!                 restarting = true;
//!             }
//!             gproc::Event::Started { pid, .. } if restarting => {
//!                 println!("started again as {pid}");
//!                 break;
//!             }
//!             other => println!("{other:?}"),
//!         }
//!     }
//!     worker.send("done").await?; // exits 0: not restarted
//!     println!("worker done: {}", worker.wait().await?);
//!     Ok(())
//! }
//! ```
//!
//! # Typed calls
//!
//! [`macro@service`] turns a trait into calls on a process by PID: it generates a client
//! stub, `{Trait}Client`, and a dispatcher, `{Trait}Server`, that serves the trait's
//! implementation. Arguments and results travel as messages in the reserved group
//! `gproc/rpc/{Trait}`, so a process can serve a service and use raw messaging at once.
//! A call returns `Result<T, `[`RpcError`]`>`.
//!
//! ```
//! #[gproc::service]
//! pub trait Calculator {
//!     async fn add(&self, a: i64, b: i64) -> i64;
//! }
//!
//! struct Calc;
//!
//! impl Calculator for Calc {
//!     async fn add(&self, a: i64, b: i64) -> i64 {
//!         a + b
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # runtime.block_on(async {
//! // On the serving process: `CalculatorServer::new(Calc).serve().await?`, and on the
//! // calling one: `CalculatorClient::new(pid)`. A server is also a client's stub, which
//! // tests the logic without processes:
//! let calc = CalculatorClient::from_stub(CalculatorServer::new(Calc));
//! assert_eq!(calc.add(1, 2).await?, 3);
//! # Ok::<(), gproc::RpcError>(())
//! # })?;
//! # Ok(()) }
//! ```
//!
//! What a call does, beyond the method:
//!
//! - **Deadlines.** Every call has one: 10 seconds, or the client's
//!   `.with_timeout(duration)`. It travels with the request as time remaining, so no clock
//!   skew between processes distorts it; the server stops the handler when it passes, and
//!   the call returns [`RpcError::DeadlineExceeded`].
//! - **Cancellation.** Dropping a call's future (a `select!` that took another branch, a
//!   task aborted) tells the server, which drops the handler's future.
//! - **Version checks.** Each service has a fingerprint of its name and method signatures;
//!   a client built from another version of the trait gets [`RpcError::SchemaMismatch`]
//!   on every call, never a garbled value.
//! - **Failures.** A PID that serves nothing answers [`RpcError::ServiceNotServed`] at
//!   once; a dead or silent PID gives [`RpcError::Transport`] with [`Error::NoSuchProcess`]
//!   or [`Error::NotListening`]; a server that dies during a call fails it promptly with
//!   `Transport(ConnectionLost)`; a panicking handler answers [`RpcError::HandlerPanicked`]
//!   and the server goes on.
//! - **Start-up.** `client.wait_served(timeout)` waits until a child that has just been
//!   started reaches `serve()`.
//! - **Introspection.** Every endpoint answers [`introspect`]: the services it serves, their
//!   methods with signature text, and fingerprints.
//!
//! Handlers run concurrently, each in a task of its own on the runtime that called
//! `serve()`, so their futures must be `Send`. Every argument and result must be serde
//! (`Serialize + DeserializeOwned`); [`Bytes`] payloads are copied whole, never element by
//! element. See `examples/calculator.rs` for a parent calling a child.
//!
//! # Streams
//!
//! A method returning [`Stream<T>`] sends items as the server's stream yields them. The
//! server builds it from any `futures::Stream`; the client gets a `futures::Stream` of
//! `Result<T, RpcError>`. Flow control is per stream: the server runs at most a small
//! window of items ahead of the consumer, so memory stays bounded however slow the
//! client, and a slow stream holds up nothing else. Dropping the client's stream drops
//! the server's; a server that dies ends it with `Err(RpcError::Transport(ConnectionLost))`
//! and then `None`. The call's deadline bounds opening the stream, not its length.
//!
//! ```
//! use futures_util::StreamExt;
//!
//! #[gproc::service]
//! pub trait Jobs {
//!     async fn progress(&self, job: u64) -> gproc::Stream<u32>;
//! }
//!
//! struct MyJobs;
//!
//! impl Jobs for MyJobs {
//!     async fn progress(&self, _job: u64) -> gproc::Stream<u32> {
//!         gproc::Stream::new(futures_util::stream::iter([25, 50, 100]))
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # runtime.block_on(async {
//! // `JobsClient::new(pid)` across processes; in-process here.
//! let jobs = JobsClient::from_stub(JobsServer::new(MyJobs));
//! let mut progress = jobs.progress(7).await?;
//! while let Some(percent) = progress.next().await {
//!     println!("{}%", percent?);
//! }
//! # Ok::<(), gproc::RpcError>(())
//! # })?;
//! # Ok(()) }
//! ```
//!
//! # Descriptors
//!
//! [`Fd`] may appear anywhere in a method's arguments or return value, inside the user's
//! own types too: it crosses by `SCM_RIGHTS` and arrives as a new descriptor of the same
//! open file (a listening socket, a pipe, a file). Raw messages carry them too, with
//! [`send_fds`] and [`receive_fds`]; a message taken with plain [`receive`] has its
//! descriptors closed, and so has a message that is refused or never taken. More than
//! [`MAX_FDS`] in one message is [`Error::TooManyFds`], before anything is sent.
//! `examples/handover.rs` hands a TCP listener to a new process for a restart in which no
//! connection is refused.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! pub struct Job {
//!     name: String,
//!     output: gproc::Fd,
//! }
//!
//! #[gproc::service]
//! pub trait Worker {
//!     async fn run(&self, job: Job) -> Result<(), String>;
//! }
//!
//! struct MyWorker;
//!
//! impl Worker for MyWorker {
//!     async fn run(&self, job: Job) -> Result<(), String> {
//!         let mut output = UnixStream::from(job.output.into_owned());
//!         write!(output, "{} done", job.name).map_err(|e| e.to_string())
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # runtime.block_on(async {
//! let (mut ours, theirs) = UnixStream::pair()?;
//! // `WorkerClient::new(pid)` across processes; in-process here.
//! let worker = WorkerClient::from_stub(WorkerServer::new(MyWorker));
//! worker.run(Job { name: "backup".into(), output: gproc::Fd::new(theirs) }).await??;
//! let mut said = String::new();
//! ours.read_to_string(&mut said)?;
//! assert_eq!(said, "backup done");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok(()) }
//! ```
//!
//! # One-way calls
//!
//! `#[gproc(oneway)]` on a method returning `()` makes its call return once the serving
//! process has queued the request, without waiting for the handler, which runs on with no
//! deadline. Errors before that point (a dead PID, a service not served, another
//! version) are still reported.
//!
//! ```
//! #[gproc::service]
//! pub trait Log {
//!     #[gproc(oneway)]
//!     async fn note(&self, line: String);
//! }
//! # struct Printer;
//! # impl Log for Printer {
//! #     async fn note(&self, line: String) { println!("{line}"); }
//! # }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # runtime.block_on(async {
//! # let log = LogClient::from_stub(LogServer::new(Printer));
//! log.note("started".into()).await?; // returns once queued
//! # Ok::<(), gproc::RpcError>(())
//! # })?;
//! # Ok(()) }
//! ```
//!
//! # The caller
//!
//! Inside a handler, [`caller()`] names the calling process: its PID and uid, from the
//! kernel's credentials of the connection (never from anything the caller claims), and
//! the call's deadline as an `Instant` of this process. Outside a handler it is `None`.
//!
//! ```
//! #[gproc::service]
//! pub trait Admin {
//!     async fn stop(&self) -> Result<(), String>;
//! }
//!
//! struct Server {
//!     owner: u32,
//! }
//!
//! impl Admin for Server {
//!     async fn stop(&self) -> Result<(), String> {
//!         match gproc::caller() {
//!             Some(caller) if caller.uid == self.owner => Ok(()),
//!             Some(caller) => Err(format!("uid {} may not stop this server", caller.uid)),
//!             None => Err("not called by another process".into()),
//!         }
//!     }
//! }
//! ```
//!
//! # Errors
//!
//! Every fallible function returns [`Error`] (`#[non_exhaustive]`); its messages say what
//! happened and what to do. The ones to handle most often:
//!
//! - [`Error::NoSuchProcess`]: no process has this PID; [`Error::NotListening`]: it is
//!   alive but has no endpoint (yet). Both come back within milliseconds.
//! - [`Error::ConnectionLost`]: the receiver closed the connection or died before
//!   acknowledging; the message may or may not have arrived.
//! - [`Error::MessageTooLarge`]: over the sender's or the receiver's limit; nothing was
//!   written.
//! - [`Error::PermissionDenied`]: the receiver does not accept this uid, or the other way
//!   round.
//! - [`Error::Timeout`]: connecting took longer than [`Config::connect_timeout`].
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # gproc::Config::new().dir(dir.path()).install()?;
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # runtime.block_on(async {
//! let gone = 999_999_999; // above any PID the kernel hands out
//! match gproc::send(gone, "hello").await {
//!     Err(gproc::Error::NoSuchProcess(pid)) => assert_eq!(pid, gone),
//!     other => panic!("unexpected: {other:?}"),
//! }
//! # });
//! # Ok(()) }
//! ```
//!
//! # Configuration
//!
//! Every setting has a default: the directory is `$GPROC_DIR`, else
//! `$XDG_RUNTIME_DIR/gproc`, else `/tmp/gproc-<uid>`; messages up to
//! [`DEFAULT_MAX_MESSAGE_SIZE`] (64 MiB), checked before anything is written;
//! [`DEFAULT_QUEUE_CAPACITY`] messages per group queue; [`DEFAULT_CONNECT_TIMEOUT`]; only
//! this process's uid may connect. To change them, install a [`Config`] once, before
//! gproc is first used; later, [`Config::install`] returns [`Error::AlreadyInitialized`].
//!
//! ```
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), gproc::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! gproc::Config::new()
//!     .dir(dir.path()) // children started by a Manager inherit it
//!     .max_message_size(1 << 20)
//!     .queue_capacity(64)
//!     .connect_timeout(Duration::from_secs(1))
//!     .install()?;
//! # Ok(()) }
//! ```
//!
//! # The blocking API
//!
//! [`blocking`] has the same functions for code without an async runtime, and
//! [`blocking::block_on`] runs any gproc future (a typed call, a stream, the manager) on
//! the calling thread. While it waits, that thread reads gproc's sockets itself, so a reply
//! wakes it with no other thread in between; do not call them from inside an async task.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # gproc::Config::new().dir(dir.path()).install()?;
//! gproc::blocking::send_group(gproc::pid(), "notes", "no runtime needed")?;
//! let msg = gproc::blocking::receive_group("notes")?;
//! assert_eq!(msg.data, "no runtime needed");
//! # Ok(()) }
//! ```
//!
//! The async functions work from any tokio runtime, multi-thread or current-thread, and
//! keep working when one runtime is dropped and another is built. Two processes share one
//! connection, whichever connected first. Each runtime that uses gproc reads gproc's
//! sockets itself, in a small task of its own, so a message wakes its receiving task on
//! the same thread, with no hop to another; connections belong to no runtime, and
//! outlive every one. While the process makes no gproc call at all, or its runtime is not
//! running, a watchdog on gproc's own thread keeps answering peers within milliseconds.
//!
//! # Explanation
//!
//! For the `Calculator` above, `#[gproc::service]` emits, in outline (the paths it really
//! writes are fully qualified, through `::gproc::__private`, so a user depends on `gproc`
//! alone):
//!
//! ```text
//! // The trait, each `async fn` turned into a method returning a `Send` future, so that
//! // handlers can run in tasks of their own. Implement it with `async fn` as written.
//! pub trait Calculator {
//!     fn add(&self, a: i64, b: i64) -> impl Future<Output = i64> + Send;
//! }
//!
//! // One request variant per method (UpperCamelCase), one response variant per method.
//! #[derive(Serialize, Deserialize)]
//! pub enum CalculatorRequest { Add { a: i64, b: i64 } }
//! #[derive(Serialize, Deserialize)]
//! pub enum CalculatorResponse { Add(i64) }
//!
//! // The client: cheap to clone, generic over the stub it calls through.
//! pub struct CalculatorClient<S = PidStub<CalculatorRequest, CalculatorResponse>> { stub: S }
//! impl CalculatorClient {
//!     pub fn new(pid: u32) -> Self;
//!     pub fn with_timeout(self, timeout: Duration) -> Self;
//!     pub fn wait_served(&self, timeout: Duration) -> impl Future<Output = Result<(), RpcError>> + Send + '_;
//!     pub fn pid(&self) -> u32;
//! }
//! impl<S: Stub<Req = CalculatorRequest, Resp = CalculatorResponse>> CalculatorClient<S> {
//!     pub fn from_stub(stub: S) -> Self;
//!     pub fn add(&self, a: i64, b: i64) -> impl Future<Output = Result<i64, RpcError>> + Send + '_;
//! }
//!
//! // The server: dispatches each request to the implementation.
//! pub struct CalculatorServer<T> { inner: Arc<T> }
//! impl<T: Calculator + Send + Sync + 'static> CalculatorServer<T> {
//!     pub fn new(service: T) -> Self;
//!     pub fn serve(self) -> impl Future<Output = Result<(), RpcError>> + Send;
//! }
//! impl<T: Calculator + Send + Sync + 'static> Serve for CalculatorServer<T> { /* match on the request */ }
//! ```
//!
//! The runtime owns the contract: [`rpc::Serve`] (what a server implements) and
//! [`rpc::Stub`] (what a client calls through). [`rpc::PidStub`] calls a process by PID;
//! every `Serve` is also a `Stub`, which is how `from_stub(CalculatorServer::new(..))`
//! calls a server in-process. The service's name, fingerprint and method signatures are
//! computed at expansion; sockets, encoding (postcard), deadlines, cancellation and task
//! spawning live in the runtime, not in the generated code.

pub use gproc_macros::service;
pub use gproc_runtime::*;
