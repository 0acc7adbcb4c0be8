//! Nothing: this package holds the trybuild cases of `#[gproc::service]` (`fail/`,
//! `pass/`), run by `ui.rs` (`cargo test -p gproc-ui-tests`).
