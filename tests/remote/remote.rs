//! The tarpc bridge (`gproc::tarpc`, feature `tarpc`) between two real processes over
//! 127.0.0.1: calls and typed errors, 200 concurrent calls, a deadline that stops the
//! handler, cancellation by dropping a call, version skew, a server SIGKILLed mid-call,
//! and a port where nothing listens.
//!
//! The server process binds two ports (Calculator and v1::Versioned, port 0 each) and
//! prints them; the test body is the client. Waits are on events (lines, replies, a
//! server's own stats), never fixed sleeps.

#[path = "../support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gproc::{Error, RpcError};
use support::*;

/// A bound on what must happen "at once" (a hang guard, not a benchmark).
const FAST: Duration = Duration::from_secs(2);
const LONG: Duration = Duration::from_secs(20);
const TEST_LIMIT: Duration = Duration::from_secs(75);

const TESTS: &[(&str, fn())] = &[
    ("tcp::calls_and_typed_errors", calls_and_typed_errors),
    ("tcp::concurrent_200", concurrent_200),
    ("tcp::deadline_stops_handler", deadline_stops_handler),
    (
        "tcp::dropped_call_stops_handler",
        dropped_call_stops_handler,
    ),
    ("tcp::version_skew_is_schema_mismatch", version_skew),
    ("tcp::server_killed_mid_call", server_killed_mid_call),
    ("tcp::nothing_listens", nothing_listens),
    ("tcp::dropping_serving_stops_it", dropping_serving_stops_it),
    ("tls::serve_io_and_connect_io", tls_serve_io_and_connect_io),
    (
        "local_only::stream_and_fd_are_clear_errors",
        stream_and_fd_are_clear_errors,
    ),
];

const ROLE_SERVER: &str = "server";
const ROLE_TLS: &str = "tls";
const ROLES: &[(&str, fn())] = &[(ROLE_SERVER, role_server), (ROLE_TLS, role_tls)];

fn main() {
    support::run_tests(TESTS, ROLES);
}

// =======================================================================================
// Services
// =======================================================================================

/// `(started, completed, stopped)` of the `sleep` calls with one tag.
type Stats = (u32, u32, u32);

#[gproc::service]
pub trait Calculator {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn div(&self, a: f64, b: f64) -> Result<f64, String>;
    /// Sleeps `ms`, counting in the stats of `tag` whether it started, completed, or was
    /// dropped before completing.
    async fn sleep(&self, tag: u64, ms: u64) -> u64;
    async fn stats(&self, tag: u64) -> Stats;
    /// Answers `2 * i + 1` once `n` calls of `gather` have arrived.
    async fn gather(&self, i: u64, n: u64) -> u64;
    /// Panics unless `n` is 0.
    async fn boom(&self, n: u32) -> u32;
}

mod v1 {
    #[gproc::service]
    pub trait Versioned {
        async fn get(&self) -> u32;
        async fn name(&self) -> String;
    }
}

mod v2 {
    #[gproc::service]
    pub trait Versioned {
        async fn get(&self) -> u64;
        async fn name(&self) -> String;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Calc {
    sleeps: Arc<Mutex<HashMap<u64, Stats>>>,
    gathered: tokio::sync::watch::Sender<u64>,
}

impl Calc {
    fn new() -> Calc {
        Calc {
            sleeps: Arc::default(),
            gathered: tokio::sync::watch::channel(0).0,
        }
    }
}

/// Counts a `sleep` handler as stopped when it is dropped before it finished.
struct Unfinished {
    sleeps: Arc<Mutex<HashMap<u64, Stats>>>,
    tag: u64,
    finished: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.finished {
            lock(&self.sleeps).entry(self.tag).or_default().2 += 1;
        }
    }
}

impl Calculator for Calc {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn div(&self, a: f64, b: f64) -> Result<f64, String> {
        if b == 0.0 {
            Err("division by zero".to_owned())
        } else {
            Ok(a / b)
        }
    }

    async fn sleep(&self, tag: u64, ms: u64) -> u64 {
        lock(&self.sleeps).entry(tag).or_default().0 += 1;
        let mut guard = Unfinished {
            sleeps: self.sleeps.clone(),
            tag,
            finished: false,
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        guard.finished = true;
        lock(&self.sleeps).entry(tag).or_default().1 += 1;
        ms
    }

    async fn stats(&self, tag: u64) -> Stats {
        lock(&self.sleeps).get(&tag).copied().unwrap_or_default()
    }

    async fn gather(&self, i: u64, n: u64) -> u64 {
        self.gathered.send_modify(|count| *count += 1);
        let mut arrived = self.gathered.subscribe();
        let all_there = arrived.wait_for(|&count| count >= n).await.is_ok();
        assert!(all_there, "the gather counter is never closed");
        2 * i + 1
    }

    async fn boom(&self, n: u32) -> u32 {
        if n != 0 {
            panic!("boom {n} (a panic the test asked for)");
        }
        n
    }
}

struct V1;

impl v1::Versioned for V1 {
    async fn get(&self) -> u32 {
        1
    }
    async fn name(&self) -> String {
        "v1".to_owned()
    }
}

// =======================================================================================
// The server process
// =======================================================================================

/// Serves Calculator and v1::Versioned on two ports of 127.0.0.1, prints
/// `ports <calculator> <versioned>`, and serves until its stdin closes.
fn role_server() {
    exit_when_stdin_closes();
    runtime().block_on(async {
        let calc = Calc::new();
        let calc = gproc::tarpc::serve("127.0.0.1:0", CalculatorServer::new(calc))
            .await
            .expect("serve Calculator over TCP");
        let versioned = gproc::tarpc::serve("127.0.0.1:0", v1::VersionedServer::new(V1))
            .await
            .expect("serve v1::Versioned over TCP");
        say(&format!(
            "ports {} {}",
            calc.local_addr().port(),
            versioned.local_addr().port()
        ));
        std::future::pending::<()>().await;
    });
}

/// Serves Calculator over TLS on a port of 127.0.0.1, with the certificate and key the
/// test wrote in `GPROC_DIR` (`server.der`, `server.key`): accepts TCP connections, makes
/// each a TLS stream with tokio-rustls, and serves it with `gproc::tarpc::serve_io`.
/// Prints `port <port>`, then `refused: <why>` for each handshake that fails.
fn role_tls() {
    use tokio_rustls::rustls;
    exit_when_stdin_closes();
    let dir = gproc_dir();
    let cert = std::fs::read(dir.join("server.der")).expect("the certificate");
    let key = std::fs::read(dir.join("server.key")).expect("the key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.into()],
        rustls::pki_types::PrivatePkcs8KeyDer::from(key).into(),
    )
    .expect("the server's certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    runtime().block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        say(&format!(
            "port {}",
            listener.local_addr().expect("addr").port()
        ));
        let server = CalculatorServer::new(Calc::new());
        loop {
            let (tcp, _) = listener.accept().await.expect("accept");
            let (acceptor, server) = (acceptor.clone(), server.clone());
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(tls) => gproc::tarpc::serve_io(tls, server).await,
                    Err(e) => say(&format!("refused: {e}")),
                }
            });
        }
    });
}

/// A CA named `ca_name`, and a certificate for `localhost` signed by it: `(ca, cert, key)`,
/// DER.
fn certificates(ca_name: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca = ca.self_signed(&ca_key).expect("the CA");
    let key = KeyPair::generate().expect("a key");
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("the certificate");
    (ca.der().to_vec(), cert.der().to_vec(), key.serialize_der())
}

/// A TLS client trusting only `ca`.
fn tls_connector(ca: Vec<u8>) -> tokio_rustls::TlsConnector {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.into()).expect("the CA as a root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn tls_serve_io_and_connect_io() {
    let (ca, cert, key) = certificates("the test's CA");
    std::fs::write(gproc_dir().join("server.der"), cert).expect("write the certificate");
    std::fs::write(gproc_dir().join("server.key"), key).expect("write the key");
    let server = spawn_peer(ROLE_TLS, &[]);
    let line = server.line_within(LONG);
    let port: u16 = line
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the TLS server says {line:?}"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    run("tls::serve_io_and_connect_io", async {
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost")
            .expect("a server name");
        // A client that trusts the server's CA: the same client type, over TLS.
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let tls = within(
            FAST,
            "TLS handshake",
            tls_connector(ca).connect(name.clone(), tcp),
        )
        .await
        .expect("a TLS handshake with a trusted certificate");
        let calc = CalculatorClient::from_stub(gproc::tarpc::connect_io(tls));
        assert_eq!(calc.add(20, 22).await.expect("add over TLS"), 42);
        assert_eq!(
            calc.div(1.0, 0.0).await.expect("div over TLS"),
            Err("division by zero".to_owned())
        );

        // A client that trusts another CA is refused in the handshake, on both sides.
        let (other_ca, _, _) = certificates("another CA");
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let refused = within(
            FAST,
            "TLS handshake",
            tls_connector(other_ca).connect(name, tcp),
        )
        .await;
        let e = refused.expect_err("a certificate from a CA the client does not trust");
        assert!(e.to_string().contains("UnknownIssuer"), "{e}");
        let said = server.line_within(LONG);
        assert!(said.starts_with("refused: "), "{said}");
        // The trusted client goes on.
        assert_eq!(calc.add(1, 2).await.expect("add after a refused client"), 3);
    });
}

/// A server process and the addresses it serves on.
struct Server {
    peer: Peer,
    calc: SocketAddr,
    versioned: SocketAddr,
}

fn server() -> Server {
    let peer = spawn_peer(ROLE_SERVER, &[]);
    let line = peer.line_within(LONG);
    let ports: Vec<u16> = line
        .strip_prefix("ports ")
        .unwrap_or_else(|| panic!("the server says {line:?}"))
        .split(' ')
        .map(|p| p.parse().expect("a port"))
        .collect();
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    Server {
        peer,
        calc: at(ports[0]),
        versioned: at(ports[1]),
    }
}

type TcpCalc = CalculatorClient<gproc::tarpc::TarpcStub<CalculatorRequest, CalculatorResponse>>;

async fn calc_client(addr: SocketAddr) -> TcpCalc {
    let stub = within(FAST, "connect", gproc::tarpc::connect(addr))
        .await
        .expect("connect to the calculator");
    CalculatorClient::from_stub(stub)
}

fn run<F: Future<Output = ()>>(name: &str, body: F) {
    block_on(within(TEST_LIMIT, name, body));
}

/// Polls the server's stats of `tag` until `done` holds.
async fn wait_stats(calc: &TcpCalc, tag: u64, what: &str, done: impl Fn(Stats) -> bool) -> Stats {
    let until = Instant::now() + LONG;
    loop {
        let stats = calc.stats(tag).await.expect("stats");
        if done(stats) {
            return stats;
        }
        assert!(Instant::now() < until, "{what}: stats {stats:?}");
        tokio::task::yield_now().await;
    }
}

// =======================================================================================
// Tests
// =======================================================================================

fn calls_and_typed_errors() {
    let server = server();
    run("tcp::calls_and_typed_errors", async {
        let calc = calc_client(server.calc).await;
        assert_eq!(calc.add(2, 3).await.expect("add"), 5);
        assert_eq!(calc.div(1.0, 4.0).await.expect("div"), Ok(0.25));
        assert_eq!(
            calc.div(1.0, 0.0).await.expect("div by zero is a value"),
            Err("division by zero".to_owned())
        );
        let panicked = calc.boom(1).await;
        assert!(
            matches!(panicked, Err(RpcError::HandlerPanicked)),
            "{panicked:?}"
        );
        assert_eq!(calc.add(5, 6).await.expect("add after a panic"), 11);
        // A second client on its own connection, and clones sharing one.
        let other = calc_client(server.calc).await;
        let clone = calc.clone();
        assert_eq!(other.add(1, 1).await.expect("another client"), 2);
        assert_eq!(clone.add(2, 2).await.expect("a clone"), 4);
    });
}

fn concurrent_200() {
    let server = server();
    run("tcp::concurrent_200", async {
        let calc = calc_client(server.calc).await;
        let calls = (0..200u64).map(|i| {
            let calc = calc.clone();
            tokio::spawn(async move { (i, calc.gather(i, 200).await) })
        });
        // Each call completes only once all 200 are running at the same time.
        for call in calls.collect::<Vec<_>>() {
            let (i, answer) = within(LONG, "200 gathered calls", call)
                .await
                .expect("join");
            assert_eq!(answer.expect("gather"), 2 * i + 1);
        }
    });
}

fn deadline_stops_handler() {
    let server = server();
    run("tcp::deadline_stops_handler", async {
        let calc = calc_client(server.calc).await;
        let short = calc.clone().with_timeout(Duration::from_millis(100));
        let started = Instant::now();
        let result = within(FAST, "a call past its deadline", short.sleep(1, 30_000)).await;
        let took = started.elapsed();
        assert!(
            matches!(result, Err(RpcError::DeadlineExceeded)),
            "{result:?}"
        );
        assert!(
            took >= Duration::from_millis(100),
            "the deadline fired after {took:?}"
        );
        let stats = wait_stats(&calc, 1, "the handler stopped", |s| s.2 == 1).await;
        assert_eq!(stats, (1, 0, 1));
        assert_eq!(calc.add(1, 2).await.expect("add after a deadline"), 3);
        // A deadline longer than the handler changes nothing.
        let long = calc.clone().with_timeout(Duration::MAX);
        assert_eq!(
            long.sleep(2, 10).await.expect("a Duration::MAX deadline"),
            10
        );
    });
}

fn dropped_call_stops_handler() {
    let server = server();
    run("tcp::dropped_call_stops_handler", async {
        let calc = calc_client(server.calc).await;
        let call = {
            let calc = calc.clone();
            tokio::spawn(async move { calc.sleep(3, 30_000).await })
        };
        wait_stats(&calc, 3, "the call started", |s| s.0 == 1).await;
        call.abort();
        let stats = wait_stats(&calc, 3, "the dropped call's handler stopped", |s| s.2 == 1).await;
        assert_eq!(stats, (1, 0, 1));
    });
}

fn version_skew() {
    let server = server();
    run("tcp::version_skew_is_schema_mismatch", async {
        let stub = gproc::tarpc::connect(server.versioned)
            .await
            .expect("connect");
        let same = v1::VersionedClient::from_stub(stub);
        assert_eq!(same.get().await.expect("v1 get"), 1);
        let stub = gproc::tarpc::connect(server.versioned)
            .await
            .expect("connect");
        let skewed = v2::VersionedClient::from_stub(stub);
        let get = skewed.get().await;
        let name = skewed.name().await;
        for (method, result) in [("get", format!("{get:?}")), ("name", format!("{name:?}"))] {
            assert_eq!(
                result, r#"Err(SchemaMismatch { service: "Versioned" })"#,
                "v2 calling {method} on a v1 server"
            );
        }
        assert_eq!(same.name().await.expect("v1 after v2"), "v1");
    });
}

fn server_killed_mid_call() {
    let mut server = server();
    let calc_addr = server.calc;
    let rt = runtime();
    let calc = rt.block_on(calc_client(calc_addr));
    let call = {
        let calc = calc.clone();
        rt.spawn(async move { calc.sleep(4, 60_000).await })
    };
    rt.block_on(wait_stats(&calc, 4, "the call started", |s| s.0 == 1));
    let killed = Instant::now();
    server.peer.kill();
    let result = rt
        .block_on(within(FAST, "a call whose server was killed", call))
        .expect("join");
    let took = killed.elapsed();
    assert!(
        matches!(result, Err(RpcError::Transport(Error::ConnectionLost))),
        "{result:?}"
    );
    println!("failed {took:?} after the kill");
    let after = rt.block_on(calc.add(1, 1));
    assert!(matches!(after, Err(RpcError::Transport(_))), "{after:?}");
}

fn nothing_listens() {
    run("tcp::nothing_listens", async {
        // A port that was free a moment ago.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let started = Instant::now();
        let result = within(
            FAST,
            "connect",
            gproc::tarpc::connect::<CalculatorRequest, CalculatorResponse>(addr),
        )
        .await;
        let took = started.elapsed();
        let e = result.expect_err("nothing listens there");
        let Error::Io(io) = &e else { panic!("{e:?}") };
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        let text = e.to_string();
        for words in ["cannot connect to Calculator", &addr.to_string(), "refused"] {
            assert!(text.contains(words), "{words:?} in {text:?}");
        }
        println!("refused in {took:?}: {text}");
        assert!(took < Duration::from_millis(500), "{took:?}");
    });
}

/// `Serving` stops serving when dropped: its port refuses new clients, and the connections
/// it accepted are closed.
fn dropping_serving_stops_it() {
    run("tcp::dropping_serving_stops_it", async {
        let calc = Calc::new();
        let serving = gproc::tarpc::serve("127.0.0.1:0", CalculatorServer::new(calc))
            .await
            .expect("serve on port 0");
        let addr = serving.local_addr();
        assert_ne!(addr.port(), 0, "the port the system picked");
        let client = calc_client(addr).await;
        assert_eq!(client.add(1, 2).await.expect("add while served"), 3);

        drop(serving);
        // The port closes, then the accepted connection: the accepting task and the
        // connections' tasks stop as their runtime gets to them, so both are polled for.
        let until = Instant::now() + FAST;
        let refused = loop {
            let again = gproc::tarpc::connect::<CalculatorRequest, CalculatorResponse>(addr).await;
            match again {
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => break e,
                other => assert!(Instant::now() < until, "connect after the drop: {other:?}"),
            }
            tokio::task::yield_now().await;
        };
        println!("refused after the drop: {refused}");
        let lost = loop {
            match within(FAST, "a call after the drop", client.add(1, 2)).await {
                Err(e) => break e,
                Ok(_) => assert!(
                    Instant::now() < until,
                    "calls still answered after the drop"
                ),
            }
        };
        assert!(
            matches!(lost, RpcError::Transport(Error::ConnectionLost)),
            "{lost:?}"
        );
    });
}

// =======================================================================================
// Local-only values
// =======================================================================================

/// A service with a stream, for the bridge's refusal of it.
#[gproc::service]
pub trait Feed {
    async fn items(&self, n: u32) -> gproc::Stream<u32>;
    async fn take(&self, fd: gproc::Fd) -> u32;
    async fn ping(&self) -> u32;
}

struct FeedImpl;

impl Feed for FeedImpl {
    async fn items(&self, n: u32) -> gproc::Stream<u32> {
        gproc::Stream::new(futures_util::stream::iter(0..n))
    }
    async fn take(&self, _fd: gproc::Fd) -> u32 {
        2
    }
    async fn ping(&self) -> u32 {
        1
    }
}

/// A method returning a stream, or taking a descriptor, called through the bridge:
/// `RpcError::LocalOnly`, which names the value, at once; the connection and the server
/// go on.
fn stream_and_fd_are_clear_errors() {
    run("local_only::stream_and_fd_are_clear_errors", async {
        let serving = gproc::tarpc::serve("127.0.0.1:0", FeedServer::new(FeedImpl))
            .await
            .expect("serve on port 0");
        let stub = gproc::tarpc::connect(serving.local_addr())
            .await
            .expect("connect");
        let feed = FeedClient::from_stub(stub);
        let result = within(FAST, "a stream over tarpc", feed.items(3)).await;
        match result {
            Err(e @ RpcError::LocalOnly { .. }) => {
                println!("over tarpc: {e}");
                assert!(e.to_string().contains("gproc::Stream"), "{e}");
            }
            other => panic!("a stream over the tarpc bridge: {other:?}"),
        }
        assert_eq!(
            within(FAST, "a call after", feed.ping())
                .await
                .expect("ping"),
            1,
            "the connection goes on"
        );
    });
}
