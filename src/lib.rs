pub use gproc_runtime::*;
