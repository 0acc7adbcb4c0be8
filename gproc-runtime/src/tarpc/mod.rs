//! Beyond one machine: the same `#[gproc::service]` trait served and called through
//! [tarpc](https://docs.rs/tarpc/0.38) over TCP, or over any byte stream (TLS, an SSH
//! tunnel). Behind the `tarpc` feature.
//!
//! ```
//! use std::time::Duration;
//!
//! #[gproc::service]
//! trait Calculator {
//!     async fn div(&self, a: f64, b: f64) -> Result<f64, String>;
//! }
//!
//! struct Calc;
//! impl Calculator for Calc {
//!     async fn div(&self, a: f64, b: f64) -> Result<f64, String> {
//!         if b == 0.0 { Err("division by zero".into()) } else { Ok(a / b) }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The server: any port; it serves until `serving` is dropped.
//! let serving = gproc::tarpc::serve("127.0.0.1:0", CalculatorServer::new(Calc)).await?;
//!
//! // The client, on this machine or another: the same client type as by PID.
//! let calc = CalculatorClient::from_stub(gproc::tarpc::connect(serving.local_addr()).await?)
//!     .with_timeout(Duration::from_secs(2));
//! assert_eq!(calc.div(1.0, 4.0).await?, Ok(0.25));
//! assert_eq!(calc.div(1.0, 0.0).await?, Err("division by zero".to_owned()));
//! # Ok(())
//! # }
//! ```
//!
//! # What travels
//!
//! tarpc 0.38's own protocol: its `serde_transport` (length-delimited frames) carrying its
//! `ClientMessage` and `Response`, encoded with postcard (see [`Postcard`]). The server is
//! driven by tarpc's `BaseChannel` and `InFlightRequest::execute`, the client by tarpc's
//! client `Channel`: no protocol of gproc's own on the network. Inside tarpc's messages a
//! request is the service's fingerprint and the postcard encoding of the generated request
//! enum; a response is the generated response enum or what went wrong.
//!
//! Postcard rather than bincode: measured here with plain tarpc over TCP loopback on the
//! same service (`cargo bench -p gproc-benches --features tarpc --bench remote`, BENCHMARKS.md), a call
//! took 30.8 µs with postcard and 36.1 µs with bincode on a multi-thread runtime, 29.9
//! and 32.5 µs on a current-thread one (medians of three, both processes on one CPU).
//! Postcard's frames are smaller too (varints), and it is the codec gproc already uses
//! locally, so one encoding serves both paths.
//!
//! # The same semantics as by PID
//!
//! - Errors are gproc's [`RpcError`](crate::RpcError): typed errors are values of the
//!   method's return type, `SchemaMismatch` for a client of another version of the trait
//!   (the request stays undecoded), `HandlerPanicked`, `DeadlineExceeded`, and
//!   `Transport(ConnectionLost)` when the server dies or the connection breaks.
//! - A call's deadline travels as the time remaining (tarpc's context does so), so no
//!   clock skew can distort it; the server stops the handler when it passes.
//! - Dropping a call's future sends tarpc's cancellation; the server stops the handler.
//! - Messages are bounded by [`Config::max_message_size`](crate::Config::max_message_size)
//!   both ways; a frame over it closes that connection, a reply over it fails its call
//!   with `MessageTooLarge`.
//!
//! What stays local: PIDs, `wait_served`, introspection, and (when they come) streams and
//! file descriptors, which cannot cross a machine boundary.

mod client;
mod codec;
mod envelope;
mod server;

pub use client::{connect, connect_io, TarpcStub};
pub use codec::Postcard;
pub use server::{serve, serve_io, Serving};
