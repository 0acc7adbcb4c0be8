// A program that only calls a service compiles without warnings about the unused server
// side, and one that only serves it without warnings about the client.
#![deny(warnings)]

mod client_side {
    #[gproc::service]
    pub trait Calculator {
        async fn add(&self, a: i64, b: i64) -> i64;
    }

    pub async fn call(pid: u32) -> Result<i64, gproc::RpcError> {
        CalculatorClient::new(pid).add(1, 2).await
    }
}

mod server_side {
    #[gproc::service]
    trait Calculator {
        async fn add(&self, a: i64, b: i64) -> i64;
    }

    struct Impl;

    impl Calculator for Impl {
        async fn add(&self, a: i64, b: i64) -> i64 {
            a + b
        }
    }

    pub async fn serve() -> Result<(), gproc::RpcError> {
        CalculatorServer::new(Impl).serve().await
    }
}

fn main() {
    drop(client_side::call(1));
    drop(server_side::serve());
}
