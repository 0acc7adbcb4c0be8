//! A method returning a stream, called in-process (the server as its own client's stub):
//! the items come in order, each `Ok`.

use futures_util::StreamExt;

#[gproc::service]
pub trait Counter {
    async fn count(&self, to: u32) -> gproc::Stream<u32>;
}

struct MyCounter;

impl Counter for MyCounter {
    async fn count(&self, to: u32) -> gproc::Stream<u32> {
        gproc::Stream::new(futures_util::stream::iter(1..=to))
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let counter = CounterClient::from_stub(CounterServer::new(MyCounter));
        let items: Vec<u32> = counter
            .count(3)
            .await
            .unwrap()
            .map(|item| item.unwrap())
            .collect()
            .await;
        assert_eq!(items, [1, 2, 3]);
    });
}
