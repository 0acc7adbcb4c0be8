//! Implementation detail of [`gproc`](https://docs.rs/gproc): the `#[gproc::service]`
//! attribute lives here once the RPC layer lands. Depend on `gproc`, not on this crate.
