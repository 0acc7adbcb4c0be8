//! Implementation detail of [`gproc`](https://docs.rs/gproc): the `#[gproc::service]`
//! attribute. Depend on `gproc`, which re-exports it; this crate's API is not stable on
//! its own.
//!
//! The macro works in three stages, one module each: `ast` builds a model of the trait
//! from syn, `check` validates it with every error combined, and `expand` emits the
//! trait, the request/response enums, the client and the server.

mod ast;
mod attr;
mod check;
mod expand;

use proc_macro::TokenStream;

/// Turns a trait into typed calls to a process by PID. See the `gproc` crate's docs.
///
/// # Options
///
/// `crate = "path"` names the `gproc` crate where it is not `::gproc`: after
/// `extern crate gproc as my_gproc;` or a dependency renamed in `Cargo.toml`, write
/// `#[my_gproc::service(crate = "::my_gproc")]`; through a re-export,
/// `crate = "crate::reexport::gproc"`. A relative path resolves where the trait is.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::service(attr.into(), item.into()).into()
}
