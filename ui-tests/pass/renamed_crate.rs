// `crate = "..."` names gproc when it is reached by another path: here through a
// renamed `extern crate` and through a re-export in a local module. (A dependency renamed
// in Cargo.toml, `my_gproc = { package = "gproc" }`, is the same as the first case:
// `#[my_gproc::service(crate = "::my_gproc")]`.)
#![deny(warnings)]
#![allow(dead_code)]

extern crate gproc as my_gproc;

mod reexport {
    pub use ::gproc as rpc;
}

#[my_gproc::service(crate = "::my_gproc")]
trait ByExternCrate {
    async fn ping(&self) -> u64;
}

#[reexport::rpc::service(crate = "crate::reexport::rpc")]
trait ByReexport {
    async fn ping(&self) -> u64;
}

mod nested {
    // A relative path resolves where the trait is, as any path in the user's code does.
    #[super::reexport::rpc::service(crate = "super::reexport::rpc")]
    pub trait Relative {
        async fn ping(&self) -> u64;
    }
}

fn main() {
    let _a = ByExternCrateClient::new(1);
    let _b = ByReexportClient::new(1);
    let _c = nested::RelativeClient::new(1);
}
