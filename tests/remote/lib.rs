//! Nothing: this package holds `remote.rs`, the tarpc bridge's tests between real
//! processes (`cargo test -p gproc-remote-tests --features tarpc`).
