pub use gproc_macros::service;
pub use gproc_runtime::*;
