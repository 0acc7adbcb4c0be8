//! Compile-time tests of `#[gproc::service]`: every misuse is an error under the offending
//! tokens (`fail/`), and hygiene holds in hostile scopes (`pass/`).
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p gproc-ui-tests`, then read
//! the diff: each error must sit under the tokens it is about.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("fail/*.rs");
    t.pass("pass/*.rs");
}
