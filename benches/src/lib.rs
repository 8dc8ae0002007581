//! Benchmarks of proc-daemon, side by side with its peers.
//!
//! The benches live in `benches/` of this crate. Run them with
//! `cargo bench -p proc-daemon-benches`; docs/PERFORMANCE.md lists each one
//! with its results and the command that reproduces it.

use std::time::Duration;

/// The `p` quantile (0.0 to 1.0, nearest rank) of `sorted`, which must be
/// sorted and not empty: the benches that time whole processes or whole
/// shutdowns report medians and p10/p90 from it.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}
