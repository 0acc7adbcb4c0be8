//! Nothing: this package holds gproc's benchmarks (`raw.rs`, `rpc.rs`, `remote.rs`, run
//! with `cargo bench -p gproc-benches --bench <name>`; see BENCHMARKS.md).
