// A server is its own client in-process, through the blanket `Stub` impl, and every
// future the client returns is `Send`.
#![deny(warnings)]

use std::time::Duration;

#[gproc::service]
pub trait Calculator {
    async fn add(&self, a: i64, b: i64) -> i64;
    async fn div(&self, a: f64, b: f64) -> Result<f64, String>;
    async fn log(&self, line: String);
}

struct Impl;

impl Calculator for Impl {
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
    async fn log(&self, _line: String) {}
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let local = CalculatorClient::from_stub(CalculatorServer::new(Impl));

    let add = local.add(1, 2);
    assert_send(&add);
    assert_eq!(add.await.unwrap(), 3);

    let div = local.div(1.0, 0.0);
    assert_send(&div);
    assert_eq!(div.await.unwrap(), Err("division by zero".to_owned()));

    let log = local.log("hello".to_owned());
    assert_send(&log);
    log.await.unwrap();

    // The by-PID client's futures are `Send` too (built, not awaited: no process here).
    let remote = CalculatorClient::new(1).with_timeout(Duration::from_millis(10));
    assert_send(&remote.add(1, 2));
    assert_send(&remote.div(1.0, 2.0));
    assert_send(&remote.log(String::new()));
    assert_send(&remote.wait_served(Duration::from_millis(10)));
    assert_send(&CalculatorServer::new(Impl).serve());
}
