//! Benchmarks of proc-daemon, side by side with its peers.
//!
//! The benches live in `benches/` of this crate. Run them with
//! `cargo bench -p proc-daemon-benches`; docs/PERFORMANCE.md lists each one
//! with its results and the command that reproduces it.

pub mod counted;

use std::path::PathBuf;
use std::time::Duration;

/// The value after `--name` on this process's command line, if any.
///
/// The bench binaries that are not criterion benches (`daemon_exit`,
/// `actor_memory` and the others) take their options this way;
/// `cargo bench` adds its own `--bench`, which they ignore.
pub fn arg_value(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == name {
            return args.next();
        }
    }
    None
}

/// The value after `--name`, parsed, or `default` when the option is
/// absent. A value that does not parse stops the bench with a message
/// naming the option, rather than running with a silent default.
pub fn arg_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match arg_value(name) {
        None => default,
        Some(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name} {text:?}: not a valid value")),
    }
}

/// Resident memory of this process, in bytes.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("statm's second field");
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page_size).expect("a positive page size")
}

/// Writes a bench binary's results as JSON to the path given with
/// `--json`, if one was given. `cargo xtask perf-report` reads these files
/// (never the printed text) to generate docs/PERFORMANCE.md's tables.
pub fn write_json_results(results: &serde_json::Value) {
    let Some(path) = arg_value("--json").map(PathBuf::from) else {
        return;
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|err| panic!("creating {}: {err}", parent.display()));
    }
    let text = serde_json::to_string_pretty(results).expect("JSON values always serialise");
    std::fs::write(&path, text).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}

/// The `p` quantile (0.0 to 1.0, nearest rank) of `sorted`, which must be
/// sorted and not empty: the benches that time whole processes or whole
/// shutdowns report medians and p10/p90 from it.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

/// The median of `values` (the upper middle one for an even count), which
/// must not be empty. Sorts `values` in place.
pub fn median_of<T: PartialOrd + Copy>(values: &mut [T]) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN among the samples"));
    values[values.len() / 2]
}

/// The median of the per-round differences `a[i] - b[i]` between two
/// roles measured in the same rounds, with a 95% bootstrap confidence
/// interval, in microseconds.
///
/// On a noisy machine the difference of two medians moves with whatever
/// slowed the machine down during part of a run; pairing each round's
/// samples cancels that drift, and the interval says whether a difference
/// is more than noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedDifference {
    /// The median difference.
    pub median_us: f64,
    /// The 2.5th percentile of the bootstrapped medians.
    pub low_us: f64,
    /// The 97.5th percentile of the bootstrapped medians.
    pub high_us: f64,
}

/// See [`PairedDifference`]. `a` and `b` hold one sample per round, in
/// round order, and must be as long as each other and not empty. The
/// resampling is seeded, so a given set of samples always gives the same
/// interval.
pub fn paired_difference(a: &[Duration], b: &[Duration]) -> PairedDifference {
    assert_eq!(a.len(), b.len(), "one sample per round in each role");
    assert!(!a.is_empty(), "no rounds");
    let differences: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(a, b)| (a.as_secs_f64() - b.as_secs_f64()) * 1e6)
        .collect();
    let median_us = median(differences.clone());
    // xorshift64: a fixed, dependency-free generator is enough to resample.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next_index = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % differences.len() as u64) as usize
    };
    const RESAMPLES: usize = 2000;
    let mut medians: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            median(
                (0..differences.len())
                    .map(|_| differences[next_index()])
                    .collect(),
            )
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    PairedDifference {
        median_us,
        low_us: medians[RESAMPLES * 25 / 1000],
        high_us: medians[RESAMPLES * 975 / 1000],
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_micros(v)).collect()
    }

    #[test]
    fn a_constant_difference_is_found_exactly_despite_drift() {
        // Both roles drift together from 700 to 1190 µs; b is 30 µs faster.
        let a: Vec<u64> = (0..50).map(|i| 700 + i * 10).collect();
        let b: Vec<u64> = a.iter().map(|v| v - 30).collect();
        let paired = paired_difference(&micros(&a), &micros(&b));
        assert!((paired.median_us - 30.0).abs() < 1e-6, "{paired:?}");
        assert!((paired.low_us - 30.0).abs() < 1e-6 && (paired.high_us - 30.0).abs() < 1e-6);
    }

    #[test]
    fn noise_around_no_difference_gives_an_interval_around_zero() {
        let a = micros(&[100, 120, 90, 110, 100, 95, 105, 115, 85, 100]);
        let b = micros(&[110, 100, 100, 100, 95, 105, 100, 100, 100, 95]);
        let paired = paired_difference(&a, &b);
        assert!(paired.low_us < 0.0 && paired.high_us > 0.0, "{paired:?}");
        assert!(paired.low_us <= paired.median_us && paired.median_us <= paired.high_us);
    }
}
