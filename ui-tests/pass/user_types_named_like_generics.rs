// The generated impls are generic over the stub (`S`) and the implementation (`T`); user
// types with those names in a signature, or a trait named `T`, still mean the user's.
#![deny(warnings)]

#[derive(serde::Serialize, serde::Deserialize)]
pub struct S(pub u8);

#[derive(serde::Serialize, serde::Deserialize)]
pub struct T(pub u8);

#[gproc::service]
trait Swap {
    async fn swap(&self, s: S) -> T;
}

struct Impl;

impl Swap for Impl {
    async fn swap(&self, s: S) -> T {
        T(s.0)
    }
}

mod trait_named_t {
    #[gproc::service]
    pub trait T {
        async fn ping(&self) -> u8;
    }

    pub struct Impl;

    impl T for Impl {
        async fn ping(&self) -> u8 {
            7
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let local = SwapClient::from_stub(SwapServer::new(Impl));
    assert_eq!(local.swap(S(3)).await.unwrap().0, 3);
    let local = trait_named_t::TClient::from_stub(trait_named_t::TServer::new(trait_named_t::Impl));
    assert_eq!(local.ping().await.unwrap(), 7);
}
