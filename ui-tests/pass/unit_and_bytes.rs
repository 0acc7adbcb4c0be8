// Unit returns, and bytes as `gproc::Bytes` or `Vec<u8>`.
#![deny(warnings)]

#[gproc::service]
trait Blobs {
    async fn store(&self, name: String, data: gproc::Bytes);
    async fn store_vec(&self, name: String, data: Vec<u8>) -> ();
    async fn load(&self, name: String) -> gproc::Bytes;
    async fn clear(&self);
}

struct Impl;

impl Blobs for Impl {
    async fn store(&self, _name: String, _data: gproc::Bytes) {}
    async fn store_vec(&self, _name: String, _data: Vec<u8>) {}
    async fn load(&self, _name: String) -> gproc::Bytes {
        gproc::Bytes::new()
    }
    async fn clear(&self) {}
}

fn main() {
    let _local = BlobsClient::from_stub(BlobsServer::new(Impl));
}
