//! What tools see of a running process, between real processes: the JSON call path
//! (`gproc::call_json`, what the `gproc` command's `call` uses) and the tracing spans of
//! calls and connections.
//!
//! Each test runs in a process of its own with a `GPROC_DIR` of its own (see
//! `tests/support/mod.rs`); the server is this binary re-executed in the role `server`.
//! Run one test with `cargo test --test tools -- json::typed_results`.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gproc::{RpcError, ServiceDescription};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::*;

const LONG: Duration = Duration::from_secs(20);
/// The most an error that must come "at once" may take: a hang guard.
const FAST: Duration = Duration::from_secs(2);

const TESTS: &[(&str, fn())] = &[
    ("json::typed_results", json_typed_results),
    ("json::bad_calls", json_bad_calls),
    ("json::fingerprint_deadline_not_served", json_checks),
    ("json::beside_the_binary_path", json_beside_binary),
    ("trace::call_and_connection_spans", trace_spans),
];

const ROLES: &[(&str, fn())] = &[("server", role_server)];

fn main() {
    support::run_tests(TESTS, ROLES);
}

// =======================================================================================
// The service
// =======================================================================================

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub item: String,
    pub qty: u32,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub item: String,
    pub qty: u32,
    pub total_cents: u64,
    pub express: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShopError {
    OutOfStock { item: String, left: u32 },
    Closed,
}

#[gproc::service]
pub trait Shop {
    async fn add(&self, a: i64, b: i64) -> i64;
    /// A struct argument, a struct reply, and a typed error.
    async fn order(&self, order: Order, express: bool) -> Result<Receipt, ShopError>;
    async fn hello(&self) -> String;
    /// Sleeps `ms`; `naps` counts the naps started and those stopped before their end.
    async fn nap(&self, ms: u64) -> u64;
    async fn naps(&self) -> (u32, u32);
    async fn boom(&self) -> u32;
    /// Replies JSON cannot carry: a stream, a map with keys that are not strings.
    async fn count(&self, n: u64) -> gproc::Stream<u64>;
    async fn grid(&self) -> HashMap<(u8, u8), u8>;
    /// An argument JSON cannot carry.
    async fn size(&self, file: gproc::Fd) -> u64;
    #[gproc(oneway)]
    async fn note(&self, line: String);
    async fn notes(&self) -> Vec<String>;
}

#[derive(Default)]
struct MyShop {
    naps: Mutex<(u32, u32)>,
    notes: Mutex<Vec<String>>,
}

struct Napping<'a>(&'a Mutex<(u32, u32)>, bool);

impl Drop for Napping<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.lock().unwrap().1 += 1;
        }
    }
}

impl Shop for MyShop {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn order(&self, order: Order, express: bool) -> Result<Receipt, ShopError> {
        match order.item.as_str() {
            "closed" => Err(ShopError::Closed),
            "tea" if order.qty > 3 => Err(ShopError::OutOfStock {
                item: order.item,
                left: 3,
            }),
            _ => Ok(Receipt {
                total_cents: u64::from(order.qty) * 250 + if express { 500 } else { 0 },
                item: order.item,
                qty: order.qty,
                express,
            }),
        }
    }

    async fn hello(&self) -> String {
        format!("hello from {}", gproc::pid())
    }

    async fn nap(&self, ms: u64) -> u64 {
        self.naps.lock().unwrap().0 += 1;
        let mut napping = Napping(&self.naps, false);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        napping.1 = true;
        ms
    }

    async fn naps(&self) -> (u32, u32) {
        *self.naps.lock().unwrap()
    }

    async fn boom(&self) -> u32 {
        panic!("boom on purpose")
    }

    async fn count(&self, n: u64) -> gproc::Stream<u64> {
        gproc::Stream::new(futures_util::stream::iter(0..n))
    }

    async fn grid(&self) -> HashMap<(u8, u8), u8> {
        HashMap::from([((0, 0), 1)])
    }

    async fn size(&self, file: gproc::Fd) -> u64 {
        let file = std::fs::File::from(std::os::fd::OwnedFd::from(file));
        file.metadata().map(|m| m.len()).unwrap_or(0)
    }

    async fn note(&self, line: String) {
        self.notes.lock().unwrap().push(line);
    }

    async fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }
}

/// Serves `Shop`; with `log`, gproc's debug log goes to stdout as `log: …` lines.
fn role_server() {
    exit_when_stdin_closes();
    let log = role_args().iter().any(|(k, _)| k == "log");
    runtime().block_on(async {
        gproc::listen().await.expect("server: listen");
        ready();
        // After "ready", which must be the first line.
        if log {
            log_to_stdout_at(tracing::Level::DEBUG);
        }
        ShopServer::new(MyShop::default())
            .serve()
            .await
            .expect("server: serve Shop");
    });
}

// =======================================================================================
// Helpers
// =======================================================================================

fn start_server(args: &[&str]) -> Peer {
    let peer = spawn_peer("server", args);
    peer.wait_until_listening(LONG);
    peer
}

fn run(test: &str, body: impl Future<Output = ()>) {
    let rt = runtime();
    rt.block_on(within(Duration::from_secs(75), test, body));
}

/// The server's description of `Shop`, once it serves it.
async fn shop(pid: u32) -> ServiceDescription {
    ok("wait_served", ShopClient::new(pid).wait_served(LONG)).await;
    let services = ok("introspect", gproc::introspect(pid)).await;
    services
        .into_iter()
        .find(|s| s.name == "Shop")
        .expect("Shop is listed")
}

async fn ok<T>(what: &str, call: impl Future<Output = Result<T, RpcError>>) -> T {
    match within(LONG, what, call).await {
        Ok(value) => value,
        Err(e) => panic!("{what}: {e:?} ({e})"),
    }
}

async fn call(
    pid: u32,
    shop: &ServiceDescription,
    method: &str,
    args: Value,
) -> Result<Value, Value> {
    let what = format!("{method}({args})");
    ok(&what, gproc::call_json(pid, shop, method, &args, LONG)).await
}

async fn fails(pid: u32, shop: &ServiceDescription, method: &str, args: Value) -> RpcError {
    let what = format!("{method}({args}), which must fail");
    match within(
        FAST,
        &what,
        gproc::call_json(pid, shop, method, &args, LONG),
    )
    .await
    {
        Ok(reply) => panic!("{what}: answered {reply:?}"),
        Err(e) => e,
    }
}

// =======================================================================================
// The JSON call path
// =======================================================================================

fn json_typed_results() {
    let server = start_server(&[]);
    run("json::typed_results", async {
        let pid = server.pid();
        let shop = shop(pid).await;

        assert_eq!(call(pid, &shop, "add", json!([40, 2])).await, Ok(json!(42)));
        assert_eq!(
            call(pid, &shop, "hello", json!([])).await,
            Ok(json!(format!("hello from {pid}"))),
            "a method without arguments takes []"
        );

        // A struct argument (with an optional field left out), a struct reply.
        let receipt = call(
            pid,
            &shop,
            "order",
            json!([{"item": "tea", "qty": 2}, true]),
        )
        .await;
        assert_eq!(
            receipt,
            Ok(json!({"item": "tea", "qty": 2, "total_cents": 1000, "express": true}))
        );
        let with_note = json!([{"item": "cake", "qty": 1, "note": "candles"}, false]);
        assert_eq!(
            call(pid, &shop, "order", with_note).await,
            Ok(json!({"item": "cake", "qty": 1, "total_cents": 250, "express": false}))
        );

        // A typed error is the method's error, with its JSON, not a failed call.
        let out = call(
            pid,
            &shop,
            "order",
            json!([{"item": "tea", "qty": 9}, false]),
        )
        .await;
        assert_eq!(out, Err(json!({"OutOfStock": {"item": "tea", "left": 3}})));
        let closed = call(
            pid,
            &shop,
            "order",
            json!([{"item": "closed", "qty": 1}, false]),
        )
        .await;
        assert_eq!(closed, Err(json!("Closed")));

        // A one-way method answers null once its handler ran.
        assert_eq!(
            call(pid, &shop, "note", json!(["first"])).await,
            Ok(Value::Null)
        );
        assert_eq!(
            call(pid, &shop, "notes", json!([])).await,
            Ok(json!(["first"]))
        );

        // The binary client decodes what the JSON path ordered the same way.
        let typed = ShopClient::new(pid);
        let order = Order {
            item: "tea".into(),
            qty: 2,
            note: None,
        };
        let receipt = ok("order, binary", typed.order(order, true)).await;
        assert_eq!(
            serde_json::to_value(receipt.expect("Ok")).expect("to JSON"),
            json!({"item": "tea", "qty": 2, "total_cents": 1000, "express": true})
        );
    });
}

fn json_bad_calls() {
    let server = start_server(&[]);
    run("json::bad_calls", async {
        let pid = server.pid();
        let shop = shop(pid).await;

        // A method the description lacks: refused here. One it has but the server
        // lacks (a doctored description): refused there.
        let e = fails(pid, &shop, "ghost", json!([])).await;
        assert!(
            matches!(&e, RpcError::NoSuchMethod { service, method } if service == "Shop" && method == "ghost"),
            "{e:?}"
        );
        let mut doctored = shop.clone();
        let mut ghost = doctored.methods[0].clone();
        ghost.name = "ghost".into();
        doctored.methods.push(ghost);
        let e = fails(pid, &doctored, "ghost", json!([])).await;
        assert!(
            matches!(&e, RpcError::NoSuchMethod { method, .. } if method == "ghost"),
            "the server's answer: {e:?}"
        );
        assert_eq!(
            e.to_string(),
            "Shop has no method ghost; `gproc inspect` lists its methods"
        );

        // Arguments that do not fit: not an array, too few, too many, a wrong type, a
        // struct with a field missing, a descriptor.
        let bad = |e: RpcError| match e {
            RpcError::BadArguments { method, why } => (method, why),
            other => panic!("expected BadArguments, got {other:?}"),
        };
        let (method, why) = bad(fails(pid, &shop, "add", json!({"a": 1})).await);
        assert_eq!(method, "async fn add(&self, a: i64, b: i64) -> i64");
        assert_eq!(why, "the arguments are a JSON array, not an object");
        let (_, why) = bad(fails(pid, &shop, "add", json!([1])).await);
        assert_eq!(
            why,
            "add takes 2 arguments [a: i64, b: i64], the call gave 1"
        );
        let (_, why) = bad(fails(pid, &shop, "add", json!([1, 2, 3])).await);
        assert!(why.contains("the call gave 3"), "{why}");
        let (_, why) = bad(fails(pid, &shop, "add", json!([1, "two"])).await);
        assert!(
            why.contains("invalid type: string \"two\", expected i64"),
            "{why}"
        );
        let (_, why) = bad(fails(pid, &shop, "order", json!([{"item": "tea"}, true])).await);
        assert!(why.contains("missing field `qty`"), "{why}");
        let (_, why) = bad(fails(pid, &shop, "size", json!([3])).await);
        assert!(why.contains("gproc::Fd cannot travel here"), "{why}");

        // Replies JSON cannot carry.
        for (method, args, expected) in [
            ("count", json!([3]), "gproc::Stream cannot travel here"),
            ("grid", json!([]), "key must be a string"),
        ] {
            match fails(pid, &shop, method, args).await {
                RpcError::NotJson { why } => assert!(why.contains(expected), "{method}: {why}"),
                other => panic!("{method}: expected NotJson, got {other:?}"),
            }
        }

        // A panicking handler, as on the binary path.
        let e = fails(pid, &shop, "boom", json!([])).await;
        assert!(matches!(e, RpcError::HandlerPanicked), "{e:?}");

        // The server goes on, on both paths.
        assert_eq!(call(pid, &shop, "add", json!([1, 2])).await, Ok(json!(3)));
        assert_eq!(ok("add, binary", ShopClient::new(pid).add(1, 2)).await, 3);
    });
}

fn json_checks() {
    let server = start_server(&[]);
    run("json::fingerprint_deadline_not_served", async {
        let pid = server.pid();
        let shop = shop(pid).await;

        // Another version of the service: its fingerprint differs.
        let mut other = shop.clone();
        other.fingerprint ^= 1;
        let e = fails(pid, &other, "add", json!([1, 2])).await;
        assert!(
            matches!(&e, RpcError::SchemaMismatch { service } if service == "Shop"),
            "{e:?}"
        );

        // A service it does not serve.
        let mut absent = shop.clone();
        absent.name = "Absent".into();
        let e = fails(pid, &absent, "add", json!([1, 2])).await;
        assert!(
            matches!(&e, RpcError::ServiceNotServed { service } if service == "Absent"),
            "{e:?}"
        );

        // A deadline: the call fails when it passes, and the server stops the handler.
        let started = std::time::Instant::now();
        let e = within(
            FAST,
            "a nap past its deadline",
            gproc::call_json(
                pid,
                &shop,
                "nap",
                &json!([60_000]),
                Duration::from_millis(150),
            ),
        )
        .await
        .expect_err("a 60 s nap with a 150 ms deadline");
        assert!(matches!(e, RpcError::DeadlineExceeded), "{e:?}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(150), "{took:?}");
        println!("deadline: DeadlineExceeded after {took:?} (deadline 150 ms)");
        // The stop happens in the server: poll its count, with short pauses.
        let polling = std::time::Instant::now();
        while call(pid, &shop, "naps", json!([])).await != Ok(json!([1, 1])) {
            assert!(
                polling.elapsed() < Duration::from_secs(5),
                "the server stopped the handler (naps = [started, stopped])"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let waited = polling.elapsed();
        println!("the server's handler was stopped within {waited:?}");
    });
}

fn json_beside_binary() {
    let server = start_server(&[]);
    run("json::beside_the_binary_path", async {
        let pid = server.pid();
        let shop = shop(pid).await;
        let typed = ShopClient::new(pid);
        // Interleaved on one connection, each answered on its own path.
        let mut calls = Vec::new();
        for i in 0..50i64 {
            let (typed, shop) = (typed.clone(), shop.clone());
            calls.push(tokio::spawn(async move {
                let binary = typed.add(i, 1).await.expect("binary add");
                let args = json!([i, 2]);
                let json = gproc::call_json(pid, &shop, "add", &args, LONG)
                    .await
                    .expect("JSON add");
                (binary, json)
            }));
        }
        for (i, call) in calls.into_iter().enumerate() {
            let (binary, json) = call.await.expect("task");
            let i = i as i64;
            assert_eq!((binary, json), (i + 1, Ok(json!(i + 2))));
        }
    });
}

// =======================================================================================
// Tracing
// =======================================================================================

/// A span as the capturing layer saw it: its name and every field recorded on it.
#[derive(Debug, Clone, Default)]
struct Seen {
    name: String,
    fields: BTreeMap<String, String>,
}

/// Records the spans and events of this process.
#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<HashMap<u64, Seen>>>,
    events: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut seen = Seen {
            name: attrs.metadata().name().to_owned(),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen.fields));
        self.spans.lock().unwrap().insert(id.into_u64(), seen);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(seen) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.events.lock().unwrap().push(fields);
    }
}

impl Capture {
    /// The spans named `name` whose method is `method`.
    fn spans(&self, name: &str, method: &str) -> Vec<Seen> {
        self.spans
            .lock()
            .unwrap()
            .values()
            .filter(|s| {
                s.name == name && s.fields.get("method").map(String::as_str) == Some(method)
            })
            .cloned()
            .collect()
    }

    fn said(&self, text: &str) -> Vec<BTreeMap<String, String>> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|e| e.get("message").is_some_and(|m| m.contains(text)))
            .cloned()
            .collect()
    }
}

fn trace_spans() {
    use tracing_subscriber::layer::SubscriberExt;

    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let server = start_server(&["log"]);
    run("trace::call_and_connection_spans", async {
        let pid = server.pid();
        let client = ShopClient::new(pid);
        ok("wait_served", client.wait_served(LONG)).await;
        assert_eq!(ok("add", client.add(2, 3)).await, 5);
        let e = client
            .clone()
            .with_timeout(Duration::from_millis(100))
            .nap(60_000)
            .await
            .expect_err("past its deadline");
        assert!(matches!(e, RpcError::DeadlineExceeded), "{e:?}");

        // The caller's spans: service, method, pid, outcome, duration.
        let adds = capture.spans("call", "add");
        assert_eq!(adds.len(), 1, "one span per call: {adds:?}");
        let add = &adds[0].fields;
        assert_eq!(
            add.get("service").map(String::as_str),
            Some("Shop"),
            "{add:?}"
        );
        assert_eq!(add.get("pid"), Some(&pid.to_string()), "{add:?}");
        assert_eq!(
            add.get("outcome").map(String::as_str),
            Some("ok"),
            "{add:?}"
        );
        assert!(
            add.get("duration").is_some_and(|d| d.ends_with('s')),
            "{add:?}"
        );
        let naps = capture.spans("call", "nap");
        assert_eq!(naps.len(), 1, "{naps:?}");
        assert_eq!(
            naps[0].fields.get("outcome").map(String::as_str),
            Some("deadline"),
            "{naps:?}"
        );
        // The connection's life: opened once, to the server.
        let opened = capture.said("connection open");
        assert!(
            opened
                .iter()
                .any(|e| e.get("peer") == Some(&pid.to_string())),
            "a connection-open event naming the server: {opened:?}"
        );

        // The server's side, in its own log: a `serve` span per call with the caller's
        // pid, its outcome and its duration.
        let me = gproc::pid();
        let mut lines = Vec::new();
        let (mut add_line, mut nap_line) = (None, None);
        while add_line.is_none() || nap_line.is_none() {
            let line = server.line_within(LONG);
            let serving = |method: &str| {
                line.contains(&format!(
                    "serve{{service=\"Shop\" method=\"{method}\" peer={me}"
                ))
            };
            if serving("add") && line.contains("outcome=\"ok\"") && line.contains("duration=") {
                add_line = Some(line.clone());
            }
            // The server's deadline and the caller's cancel (sent when its own deadline
            // drops the call) race: either stops the handler.
            let stopped = ["outcome=\"deadline\"", "outcome=\"cancelled\""];
            if serving("nap") && stopped.iter().any(|o| line.contains(o)) {
                nap_line = Some(line.clone());
            }
            lines.push(line);
        }
        println!("the server's log of the call:");
        for line in lines
            .iter()
            .filter(|l| l.contains("serve{") || l.contains("connection"))
        {
            println!("  {line}");
        }
    });
    // The client's own log lines, as an operator reads them.
    let calls = capture.said("gproc: call ended: ok");
    assert!(!calls.is_empty(), "an event at the call's end");
}
