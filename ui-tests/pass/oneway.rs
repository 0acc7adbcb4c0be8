//! A one-way method: the client's call returns `Result<(), RpcError>`, and an in-process
//! server, as its own stub, runs the handler.

use std::sync::atomic::{AtomicU32, Ordering};

#[gproc::service]
pub trait Jobs {
    /// Notes a line.
    #[gproc(oneway)]
    async fn note(&self, line: String);
    async fn count(&self) -> u32;
}

#[derive(Default)]
struct Counter(AtomicU32);

impl Jobs for Counter {
    async fn note(&self, _line: String) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    async fn count(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let jobs = JobsClient::from_stub(JobsServer::new(Counter::default()));
        let queued: Result<(), gproc::RpcError> = jobs.note("hello".into()).await;
        queued.unwrap();
        assert_eq!(jobs.count().await.unwrap(), 1);
    });
}
