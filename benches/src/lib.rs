//! Benchmarks of proc-daemon, side by side with its peers.
//!
//! The benches live in `benches/` of this crate. Run them with
//! `cargo bench -p proc-daemon-benches`; docs/PERFORMANCE.md lists each one
//! with its results and the command that reproduces it.
