//! High-resolution timing through `quanta` (feature `high-res-timing`).
//!
//! `quanta` reads the CPU's time-stamp counter where it is invariant and
//! calibrated, and falls back to the OS monotonic clock elsewhere, so a
//! reading costs a few nanoseconds instead of a system call. Use it to time
//! hot paths; use `std::time::Instant` where a few tens of nanoseconds do not
//! matter.
//!
//! ```
//! use proc_daemon::timing;
//!
//! let t0 = timing::now();
//! let t1 = timing::now();
//! assert!(t1 >= t0);
//! let elapsed = t1.duration_since(t0);
//! println!("Elapsed: {} nanoseconds", elapsed.as_nanos());
//! ```

use std::sync::OnceLock;

pub use quanta::Instant;

/// The process-wide calibrated clock, created on first use.
fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// The current instant, with nanosecond resolution.
///
/// Instants from this function are monotonic and comparable with each other
/// across threads.
#[inline]
pub fn now() -> Instant {
    clock().now()
}

/// The clock behind [`now`], for callers that want `quanta`'s raw
/// counter API (`raw()` and `delta()`).
pub fn clock_ref() -> &'static quanta::Clock {
    clock()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn measures_at_least_the_time_slept() {
        let start = now();
        std::thread::sleep(Duration::from_millis(20));
        let elapsed = now().duration_since(start);
        assert!(elapsed >= Duration::from_millis(20), "{elapsed:?}");
    }

    #[test]
    fn is_monotonic_across_threads() {
        let before = now();
        let during = std::thread::spawn(now).join().unwrap();
        let after = now();
        assert!(before <= during && during <= after);
    }
}
