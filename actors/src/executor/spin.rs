//! How long an idle worker watches its queues before it sleeps, adapted to
//! whether watching pays.
//!
//! A worker that runs out of tasks can watch its remote queue for a while
//! ([`ExecutorBuilder::idle_spin`](super::ExecutorBuilder::idle_spin))
//! before it parks. When work arrives within the watch, as in a
//! conversation between actors on two workers, the watch saves a park and
//! a wake-up: tens of microseconds of latency on a virtual machine. When it
//! does not, the watch is CPU burnt for nothing. `benches/idle_spin.rs`
//! measured both (docs/PERFORMANCE.md, "Idle spin"): with one message every
//! 1 ms or every 100 µs, a fixed 20 µs watch cost about six times the CPU of
//! no watch and bought no latency; with one every 10 µs it cost 3.5 times
//! the CPU and cut the median latency from 12 µs to 1 µs.
//!
//! So the watch adapts, with two rules:
//!
//! - a watch that ends with work counts as a hit, one that runs out as a
//!   miss. After [`MISSES_BEFORE_BACKOFF`] misses in a row the worker
//!   stops watching and parks at once;
//! - while it is backed off, every [`PROBE_EVERY`]th idle period still
//!   watches for the whole spin: a probe. One hit, from a probe or any
//!   other watch, restores the full watch.
//!
//! A backed-off worker therefore spends about `idle_spin / PROBE_EVERY` per
//! idle period on probes, and a workload whose gaps turn short again gets
//! its watch back within [`PROBE_EVERY`] idle periods. Only the worker's
//! own thread touches this state, so it is plain cells.

use std::cell::Cell;
use std::time::Duration;

/// Misses in a row after which a worker stops watching.
pub(crate) const MISSES_BEFORE_BACKOFF: u32 = 3;

/// While backed off, one idle period in this many still watches in full.
pub(crate) const PROBE_EVERY: u32 = 16;

/// The adaptive idle watch of one worker. See the module docs.
#[derive(Debug)]
pub(crate) struct AdaptiveSpin {
    /// The longest watch: the builder's `idle_spin`.
    max: Duration,
    /// Misses since the last hit.
    misses: Cell<u32>,
    /// Idle periods since the worker backed off, to time the probes.
    backed_off_idles: Cell<u32>,
}

impl AdaptiveSpin {
    pub(crate) fn new(max: Duration) -> Self {
        AdaptiveSpin {
            max,
            misses: Cell::new(0),
            backed_off_idles: Cell::new(0),
        }
    }

    /// The builder's `idle_spin`: the longest watch.
    pub(crate) fn max(&self) -> Duration {
        self.max
    }

    /// How long to watch in the idle period that begins now.
    pub(crate) fn next_watch(&self) -> Duration {
        if self.misses.get() < MISSES_BEFORE_BACKOFF {
            return self.max;
        }
        let idles = self.backed_off_idles.get().wrapping_add(1);
        self.backed_off_idles.set(idles);
        if idles.is_multiple_of(PROBE_EVERY) {
            self.max
        } else {
            Duration::ZERO
        }
    }

    /// Work arrived while the worker watched.
    pub(crate) fn hit(&self) {
        self.misses.set(0);
        self.backed_off_idles.set(0);
    }

    /// A watch ran out with no work.
    pub(crate) fn miss(&self) {
        self.misses.set(self.misses.get().saturating_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(20);

    fn watches(spin: &AdaptiveSpin, periods: u32) -> Vec<Duration> {
        (0..periods).map(|_| spin.next_watch()).collect()
    }

    #[test]
    fn a_watch_that_keeps_finding_work_stays_full() {
        let spin = AdaptiveSpin::new(MAX);
        for _ in 0..100 {
            assert_eq!(spin.next_watch(), MAX);
            spin.hit();
        }
    }

    #[test]
    fn misses_in_a_row_back_off_to_no_watch_but_for_probes() {
        let spin = AdaptiveSpin::new(MAX);
        for _ in 0..MISSES_BEFORE_BACKOFF {
            assert_eq!(spin.next_watch(), MAX);
            spin.miss();
        }
        let backed_off = watches(&spin, PROBE_EVERY * 2);
        let probes = backed_off.iter().filter(|w| **w == MAX).count();
        assert_eq!(probes, 2, "one full watch every {PROBE_EVERY} periods");
        assert!(backed_off.iter().all(|w| *w == MAX || w.is_zero()));
        assert_eq!(backed_off[PROBE_EVERY as usize - 1], MAX);
    }

    #[test]
    fn one_miss_between_hits_does_not_back_off() {
        let spin = AdaptiveSpin::new(MAX);
        for _ in 0..50 {
            for _ in 0..MISSES_BEFORE_BACKOFF - 1 {
                spin.miss();
            }
            spin.hit();
            assert_eq!(spin.next_watch(), MAX);
        }
    }

    #[test]
    fn a_hit_restores_the_full_watch() {
        let spin = AdaptiveSpin::new(MAX);
        for _ in 0..MISSES_BEFORE_BACKOFF + 5 {
            spin.miss();
        }
        assert!(spin.next_watch().is_zero());
        spin.hit();
        assert_eq!(watches(&spin, 5), vec![MAX; 5]);
    }

    #[test]
    fn a_zero_spin_never_watches() {
        let spin = AdaptiveSpin::new(Duration::ZERO);
        assert!(
            watches(&spin, 3 * PROBE_EVERY)
                .iter()
                .all(Duration::is_zero)
        );
    }
}
