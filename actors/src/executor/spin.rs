//! How long an idle worker watches its queues before it sleeps: at most
//! `idle_spin`, and no more than a small share of the worker's time in
//! watches that found nothing.
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
//! # Two kinds of watch
//!
//! - **After waking a task on another worker**, the worker watches for the
//!   whole `idle_spin`: it has likely just sent a message and the answer
//!   is on its way. These watches are what keep a conversation between
//!   two workers off the kernel, and they are not budgeted.
//! - **Any other watch** is budgeted, as a token bucket. The bucket fills
//!   at [`WASTE_SHARE`] of wall time (1%), up to [`BUDGET_WATCHES`] full
//!   watches; such a watch lasts `idle_spin` or what the bucket holds,
//!   whichever is less; a miss (a watch that runs out) takes the time it
//!   watched out of the bucket, however much that was, so an overrun
//!   leaves the bucket in debt; a hit (a watch that ends with work) takes
//!   nothing, since it paid for itself.
//!
//! So a worker that receives work from outside at a steady pace, far apart,
//! spends at most about 1% of a CPU on watches that find nothing, and a
//! worker in a conversation watches as before.
//!
//! # What did not work
//!
//! Budgeting every watch, or stopping them after misses in a row (with a
//! probe every 16 idle periods), trapped conversations. When the other
//! worker is asleep, its answer comes only after its wake-up, which takes
//! longer than a watch; so the watch misses, the throttle shortens the next
//! watches, and the other worker, which throttles for the same reason,
//! stays asleep too. Both then wake each other through the kernel at every
//! message, and neither can get out. Supervised spawn + stop
//! (`benches/actors.rs`, 1000 children, 2 workers) measured 4.2 µs a child
//! with a fixed watch, 5.4-6.8 µs with the misses-in-a-row throttle, and
//! 69-76 µs with every watch budgeted.
//!
//! Only the worker's own thread touches this state, so it is plain cells.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The share of wall time the bucket adds: 1 / 100.
pub(crate) const WASTE_SHARE: u32 = 100;

/// How many full watches the bucket holds.
pub(crate) const BUDGET_WATCHES: u32 = 50;

/// The watch budget of one worker. See the module docs.
#[derive(Debug)]
pub(crate) struct AdaptiveSpin {
    /// The longest watch: the builder's `idle_spin`.
    max: Duration,
    /// The most the bucket holds, in nanoseconds.
    capacity: i64,
    /// Watch time available to misses, in nanoseconds; negative while an
    /// overrun is being paid back.
    tokens: Cell<i64>,
    /// When the bucket was last filled.
    filled_at: Cell<Instant>,
    /// Set when this worker woke a task on another worker since its last
    /// watch began.
    woke_another_worker: Cell<bool>,
    /// Whether the current watch is budgeted.
    budgeted: Cell<bool>,
}

impl AdaptiveSpin {
    pub(crate) fn new(max: Duration, now: Instant) -> Self {
        let capacity = nanos(max * BUDGET_WATCHES);
        AdaptiveSpin {
            max,
            capacity,
            tokens: Cell::new(capacity),
            filled_at: Cell::new(now),
            woke_another_worker: Cell::new(false),
            budgeted: Cell::new(true),
        }
    }

    /// This worker has woken a task on another worker: the next watch is a
    /// full one, outside the budget.
    pub(crate) fn woke_another_worker(&self) {
        self.woke_another_worker.set(true);
    }

    /// The builder's `idle_spin`: the longest watch.
    pub(crate) fn max(&self) -> Duration {
        self.max
    }

    /// How long to watch in the idle period that begins at `now`.
    pub(crate) fn next_watch(&self, now: Instant) -> Duration {
        let earned = nanos(now.saturating_duration_since(self.filled_at.get()) / WASTE_SHARE);
        self.filled_at.set(now);
        let tokens = self.tokens.get().saturating_add(earned).min(self.capacity);
        self.tokens.set(tokens);
        if self.woke_another_worker.replace(false) {
            self.budgeted.set(false);
            return self.max;
        }
        self.budgeted.set(true);
        Duration::from_nanos(u64::try_from(tokens).unwrap_or(0)).min(self.max)
    }

    /// The current watch ran out with no work after `watched`.
    pub(crate) fn miss(&self, watched: Duration) {
        if self.budgeted.get() {
            self.tokens
                .set(self.tokens.get().saturating_sub(nanos(watched)));
        }
    }
}

/// `duration` in nanoseconds, saturating.
fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(20);

    #[test]
    fn a_full_bucket_gives_full_watches() {
        let start = Instant::now();
        let spin = AdaptiveSpin::new(MAX, start);
        assert_eq!(spin.next_watch(start), MAX);
        assert_eq!(spin.next_watch(start + Duration::from_secs(10)), MAX);
    }

    #[test]
    fn misses_drain_the_bucket_to_what_one_percent_of_the_time_earns() {
        let start = Instant::now();
        let spin = AdaptiveSpin::new(MAX, start);
        // One idle period every 100 µs, each watch a miss: 20% of the time
        // at first, then only what the bucket earns, 1 µs per 100 µs.
        let mut now = start;
        let mut wasted = Duration::ZERO;
        for _ in 0..10_000 {
            now += Duration::from_micros(100);
            let watch = spin.next_watch(now);
            spin.miss(watch);
            wasted += watch;
        }
        let elapsed = now - start;
        assert!(
            wasted <= MAX * BUDGET_WATCHES + elapsed / WASTE_SHARE,
            "{wasted:?} wasted in {elapsed:?}"
        );
        assert_eq!(
            spin.next_watch(now + Duration::from_micros(100)),
            Duration::from_micros(1)
        );
    }

    #[test]
    fn hits_cost_nothing() {
        let start = Instant::now();
        let spin = AdaptiveSpin::new(MAX, start);
        let mut now = start;
        for _ in 0..100_000 {
            now += Duration::from_micros(5);
            assert_eq!(spin.next_watch(now), MAX, "a hit takes no tokens");
        }
    }

    #[test]
    fn a_quiet_spell_refills_the_bucket() {
        let start = Instant::now();
        let spin = AdaptiveSpin::new(MAX, start);
        let mut now = start;
        for _ in 0..1_000 {
            now += Duration::from_micros(10);
            let watch = spin.next_watch(now);
            spin.miss(watch);
        }
        assert!(spin.next_watch(now) < MAX, "drained");
        // 1% of 100 ms is 1 ms: the whole bucket (50 watches of 20 µs).
        let later = now + Duration::from_millis(100);
        for _ in 0..BUDGET_WATCHES {
            let watch = spin.next_watch(later);
            assert_eq!(watch, MAX);
            spin.miss(watch);
        }
        assert!(spin.next_watch(later).is_zero());
    }

    #[test]
    fn an_overrun_is_paid_back_before_the_next_watch() {
        let start = Instant::now();
        let spin = AdaptiveSpin::new(MAX, start);
        for _ in 0..BUDGET_WATCHES {
            let watch = spin.next_watch(start);
            spin.miss(watch);
        }
        // A watch that took 200 µs instead of its 20 leaves 200 µs of
        // debt, which 1% of 20 ms repays.
        assert!(spin.next_watch(start).is_zero());
        spin.miss(Duration::from_micros(200));
        assert!(spin.next_watch(start + Duration::from_millis(19)).is_zero());
        assert_eq!(
            spin.next_watch(start + Duration::from_millis(22)),
            Duration::from_micros(20)
        );
    }

    #[test]
    fn a_watch_after_waking_another_worker_is_full_and_free() {
        let start = Instant::now();
        let spin = AdaptiveSpin::new(MAX, start);
        for _ in 0..BUDGET_WATCHES {
            let watch = spin.next_watch(start);
            spin.miss(watch);
        }
        assert!(spin.next_watch(start).is_zero(), "the budget is spent");
        for _ in 0..1000 {
            spin.woke_another_worker();
            let watch = spin.next_watch(start);
            assert_eq!(watch, MAX);
            spin.miss(watch);
        }
        assert!(spin.next_watch(start).is_zero(), "and was not charged");
        let later = start + Duration::from_millis(2);
        assert_eq!(spin.next_watch(later), MAX, "1% of 2 ms is one watch");
    }

    #[test]
    fn a_zero_spin_never_watches() {
        let start = Instant::now();
        let spin = AdaptiveSpin::new(Duration::ZERO, start);
        assert!(spin.next_watch(start + Duration::from_secs(1)).is_zero());
        spin.woke_another_worker();
        assert!(spin.next_watch(start + Duration::from_secs(2)).is_zero());
    }
}
