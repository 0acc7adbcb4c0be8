// A service without methods still expands to a client and a server.
#![deny(warnings)]

#[gproc::service]
trait Nothing {}

struct Impl;

impl Nothing for Impl {}

fn main() {
    let client = NothingClient::new(1);
    let _ = client.pid();
    let _local = NothingClient::from_stub(NothingServer::new(Impl));
    let info = <NothingRequest as gproc::__private::ServiceRequest>::info();
    assert_eq!(info.name, "Nothing");
    assert!(info.methods.is_empty());
}
