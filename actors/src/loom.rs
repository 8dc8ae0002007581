//! The std/loom shim.
//!
//! Every atomic, cell, `Arc` and thread operation of the lock-free code goes
//! through this module. A normal build gets the `std` types; a build with
//! `RUSTFLAGS="--cfg loom"` gets loom's, so that the models in `loom-tests/`
//! check the very algorithm that ships rather than a copy of it. This is
//! the pattern tokio uses in its own `src/loom`.
//!
//! Two helpers smooth over the differences:
//!
//! - [`UnsafeCell`] has loom's closure API (`with`, `with_mut`) in both
//!   builds, so loom can track every access to a slot.
//! - [`seqcst_fence_for_loom`] is a `SeqCst` fence under loom and nothing
//!   otherwise. The wake-up protocols rely on the single total order of
//!   `SeqCst` read-modify-writes and loads (a store-buffering pattern).
//!   loom models `SeqCst` accesses as `AcqRel` (loom's README, "SeqCst
//!   accesses"), which would report lost wake-ups that cannot happen; it
//!   does model `SeqCst` fences exactly. Under loom the fence restores the
//!   guarantee the std build gets from its `SeqCst` accesses.

#[cfg(loom)]
pub(crate) use loom::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence},
    },
    thread,
};

#[cfg(not(loom))]
pub(crate) use std::{
    hint,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering},
    },
    thread,
};

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `std::cell::UnsafeCell` with loom's closure-based API.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a unique pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// A `SeqCst` fence under loom, nothing otherwise. See the module docs.
#[inline(always)]
pub(crate) fn seqcst_fence_for_loom() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

/// Gives the CPU to the producer that is still waking this receiver's
/// previous park, before the receiver asks to be polled again.
///
/// The receiver re-polls itself instead of waiting for that producer (see
/// `RecvSignal::park`). The producer is usually a few instructions from
/// done, but its wake-up of a parked worker includes a system call, and if
/// the producer is preempted in it (on a 2-vCPU machine, often by the very
/// worker it woke), a receiver that only re-polled would run its task
/// again and again on that CPU until the producer got it back: measured
/// with `benches/idle_spin.rs` at `idle_spin = 0`, one message a
/// millisecond cost 0.3 CPU-seconds a second this way, and 0.005 with this
/// yield. `sched_yield` lets a preempted producer on this CPU run first;
/// with none, it returns at once.
///
/// It is reached only in that race, never on a receiver's ordinary park,
/// and it yields only every [`REPOLLS_PER_NOTIFIER_YIELD`]th time on a
/// thread: a producer merely finishing its wake-up on another CPU is gone
/// after a re-poll or two, and in one A/B run of `benches/mailbox.rs`
/// yielding every time made the two-producer bounded rows 12-17% slower
/// than not yielding. This variant and no yield at all, alternated three
/// times, fell within each other's spread in every row. A preempted
/// producer keeps the receiver re-polling long enough to reach a yield
/// within microseconds.
///
/// Under loom it is loom's `yield_now` every time, which tells the model
/// this thread cannot progress until another one does; otherwise loom would
/// explore schedules in which the receiver re-polls forever.
#[inline(always)]
pub(crate) fn yield_to_notifier() {
    #[cfg(loom)]
    thread::yield_now();
    #[cfg(not(loom))]
    {
        std::thread_local! {
            static REPOLLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        let repolls = REPOLLS.with(|count| {
            let next = count.get().wrapping_add(1);
            count.set(next);
            next
        });
        if repolls.is_multiple_of(REPOLLS_PER_NOTIFIER_YIELD) {
            std::thread::yield_now();
        }
    }
}

/// See [`yield_to_notifier`].
#[cfg(not(loom))]
const REPOLLS_PER_NOTIFIER_YIELD: u32 = 16;

/// Waits a little, for a condition another thread is about to make true.
///
/// Spins with the CPU's pause hint for a few rounds, then yields the
/// thread. Under loom every call yields, so the model lets the other thread
/// run instead of exploring the spin.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    step: u32,
}

impl Backoff {
    const SPIN_LIMIT: u32 = 6;
    const YIELD_LIMIT: u32 = 10;

    pub(crate) fn new() -> Self {
        Backoff { step: 0 }
    }

    /// Backs off after a lost race (a failed compare-and-swap).
    #[inline]
    pub(crate) fn spin(&mut self) {
        #[cfg(loom)]
        thread::yield_now();
        #[cfg(not(loom))]
        for _ in 0..1u32 << self.step.min(Self::SPIN_LIMIT) {
            hint::spin_loop();
        }
        if self.step <= Self::SPIN_LIMIT {
            self.step += 1;
        }
    }

    /// Waits for another thread to finish a step (a slot being written),
    /// or, before parking a thread, for a message likely to come soon.
    #[inline]
    pub(crate) fn snooze(&mut self) {
        #[cfg(not(loom))]
        if self.step <= Self::SPIN_LIMIT {
            for _ in 0..1u32 << self.step {
                hint::spin_loop();
            }
            self.step += 1;
            return;
        }
        thread::yield_now();
        if self.step <= Self::YIELD_LIMIT {
            self.step += 1;
        }
    }

    /// Whether waiting longer is better done by parking the thread.
    #[inline]
    pub(crate) fn is_completed(&self) -> bool {
        self.step > Self::YIELD_LIMIT
    }
}
