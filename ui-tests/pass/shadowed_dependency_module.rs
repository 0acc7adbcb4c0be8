// Modules named like gproc's dependencies do not capture generated paths, which all
// start at `::gproc::__private`, `::core` or `::std`.
#![deny(warnings)]
#![allow(dead_code)]

mod serde {}
mod tokio {}
mod gproc_runtime {}
mod postcard {}
mod core {}
mod std {}
mod __private {}

#[gproc::service]
trait Echo {
    async fn echo(&self, line: String) -> String;
}

struct Impl;

impl Echo for Impl {
    async fn echo(&self, line: String) -> String {
        line
    }
}

fn main() {
    let _client = EchoClient::new(1);
    let _local = EchoClient::from_stub(EchoServer::new(Impl));
}
