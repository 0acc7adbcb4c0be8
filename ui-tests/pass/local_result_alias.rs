// Local items named like the prelude's do not leak into generated code.
#![deny(warnings)]
#![allow(dead_code, non_camel_case_types)]

type Result<T> = std::result::Result<T, String>;
struct Option;
struct Box;
struct Some;
struct Ok;
struct Err;
struct Send;
struct Sync;
struct Clone;
struct Future;
struct Arc;
struct Vec;
struct Duration;
struct u32;

#[gproc::service]
trait Store {
    async fn get(&self, key: String) -> Result<std::vec::Vec<u8>>;
    async fn put(&self, key: String, value: std::vec::Vec<u8>) -> Result<()>;
}

struct Memory;

impl Store for Memory {
    async fn get(&self, key: String) -> Result<std::vec::Vec<u8>> {
        std::result::Result::Err(key)
    }
    async fn put(&self, _key: String, _value: std::vec::Vec<u8>) -> Result<()> {
        std::result::Result::Ok(())
    }
}

fn main() {
    let _client = StoreClient::new(1);
    let _local = StoreClient::from_stub(StoreServer::new(Memory));
}
