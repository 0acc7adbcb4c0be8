#[gproc::service]
trait Upload {
    async fn put(&self, chunks: gproc::Stream<Vec<u8>>) -> u64;
}

fn main() {}
