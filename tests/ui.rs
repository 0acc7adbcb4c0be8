//! Compile-time tests of `#[gproc::service]`: every misuse is an error under the offending
//! tokens (`ui-tests/fail`), and hygiene holds in hostile scopes (`ui-tests/pass`).
//!
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test --test ui`, then read
//! the diff: each error must sit under the tokens it is about.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui-tests/fail/*.rs");
    t.pass("ui-tests/pass/*.rs");
}
