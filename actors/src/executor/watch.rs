//! Giving up on a worker stuck in blocking code, without a thread of its
//! own.
//!
//! A worker whose task never returns from a poll (a `std::thread::sleep`,
//! a lock held elsewhere, a blocking read) cannot be stopped. Once the
//! shutdown deadline plus [`ABORT_GRACE`](super::drain::ABORT_GRACE) has passed,
//! the executor counts it as stuck:
//! [`ExecutorDrain::finished`](super::ExecutorDrain::finished)
//! resolves anyway, and
//! [`ExecutorDrain::wait`](super::ExecutorDrain::wait) lists it in
//! [`ShutdownReport::stuck_workers`](super::ShutdownReport::stuck_workers).
//!
//! Something has to notice that deadline. `ExecutorDrain::wait` blocks its
//! caller with a timeout, but the async wait has no thread to block, and a
//! thread kept for the purpose costs every process a thread that its exit
//! must wake to end (docs/performance-history.md, "Daemon"). So the worker that
//! began the shutdown watches: if its own tasks end only at the shutdown
//! deadline or later (the deadline aborted them, or they ran that long)
//! and another worker is still running, it waits on its runtime's timer
//! for the others and gives up on them at the deadline plus the grace.
//!
//! Before the deadline it never waits. Waiting there would hold its own
//! teardown behind every other worker's on the usual way out, where the
//! others are merely late, not stuck: with no subsystem, a daemon's exit
//! took 69 µs longer (95% CI 29 to 96 µs) when it always watched, as the
//! other worker often reaches its stop only after the watcher has
//! finished. The cost of that rule: a worker stuck in blocking code while
//! the watcher finished early (a stuck task outside a daemon's tree, the
//! tree having stopped in time) is not given up on. Nor is anything when
//! the watcher itself is the stuck one. The caller's own deadline covers
//! both: a daemon's kill stage ends the process.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

use super::drain::ABORT_GRACE;
use crate::lock::lock;
// Through the shim like every atomic of the crate. There is no loom model
// of this file: its waits are on tokio's `Notify` and timer, which do not
// build under `--cfg loom` (see docs/architecture.md, "Verification").
use crate::loom::{AtomicBool, AtomicUsize, Ordering};

/// No worker watches: the shutdown was begun from outside the executor.
const NO_WATCHER: usize = usize::MAX;

/// What the workers share about a shutdown under way. See the module docs.
#[derive(Debug)]
pub(crate) struct ShutdownWatch {
    workers: usize,
    /// Workers whose tasks have all ended, or that exited without that.
    drained: AtomicUsize,
    /// Notified as each worker drains, for the watcher.
    drained_notify: Notify,
    /// The index of the worker that began the shutdown, or `NO_WATCHER`.
    watcher: AtomicUsize,
    /// The shutdown deadline, set when the shutdown begins.
    deadline: Mutex<Option<Instant>>,
    /// Set when the watcher stopped waiting for a stuck worker.
    gave_up: AtomicBool,
    /// Set when the watcher's thread has ended, after giving up or not.
    watcher_exited: AtomicBool,
}

impl ShutdownWatch {
    pub(crate) fn new(workers: usize) -> Self {
        ShutdownWatch {
            workers,
            drained: AtomicUsize::new(0),
            drained_notify: Notify::new(),
            watcher: AtomicUsize::new(NO_WATCHER),
            deadline: Mutex::new(None),
            gave_up: AtomicBool::new(false),
            watcher_exited: AtomicBool::new(false),
        }
    }

    /// Records, before any worker is told to stop, who watches (the
    /// calling worker, if the caller is one) and the shutdown's deadline.
    pub(crate) fn begin(&self, watcher: Option<usize>, deadline: Instant) {
        *lock(&self.deadline) = Some(deadline);
        self.watcher
            .store(watcher.unwrap_or(NO_WATCHER), Ordering::Release);
    }

    /// Whether waiting for the workers is over although some have not
    /// exited: the watcher gave up on them, and has exited itself (its
    /// exit report is sent by then), so every worker that has not exited
    /// is stuck.
    pub(crate) fn settled(&self) -> bool {
        self.gave_up.load(Ordering::Acquire) && self.watcher_exited.load(Ordering::Acquire)
    }

    /// Records that worker `index` has exited (its exit report sent).
    /// Returns whether the executor's exit waiters should look again
    /// because of it: the watcher gave up, and this is its exit.
    pub(crate) fn worker_exited(&self, index: usize) -> bool {
        if !self.is_watcher(index) {
            return false;
        }
        self.watcher_exited.store(true, Ordering::Release);
        self.gave_up.load(Ordering::Acquire)
    }

    /// Whether worker `me` began the shutdown, and so watches.
    pub(crate) fn is_watcher(&self, me: usize) -> bool {
        self.watcher.load(Ordering::Acquire) == me
    }

    /// Whether worker `me`, its own tasks ended, must [`watch`](Self::watch):
    /// it is the watcher, the deadline has passed, and some worker has not
    /// drained. See the module docs for why not before the deadline.
    pub(crate) fn must_watch(&self, me: usize) -> bool {
        self.is_watcher(me)
            && !self.all_drained()
            && lock(&self.deadline).is_some_and(|deadline| Instant::now() >= deadline)
    }

    fn all_drained(&self) -> bool {
        self.drained.load(Ordering::Acquire) >= self.workers
    }

    /// Run when [`must_watch`](Self::must_watch): waits, on the worker's
    /// runtime, until every worker has drained or the deadline plus
    /// [`ABORT_GRACE`] passes. In the second case it records that it gave
    /// up; its own exit, which follows, wakes the executor's exit waiters
    /// (see [`worker_exited`](Self::worker_exited)).
    pub(crate) async fn watch(&self) {
        let Some(deadline) = *lock(&self.deadline) else {
            return;
        };
        let give_up_at = deadline + ABORT_GRACE;
        let give_up = tokio::time::sleep_until(give_up_at.into());
        let mut give_up = std::pin::pin!(give_up);
        loop {
            let notified = self.drained_notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so a drain in between wakes it.
            notified.as_mut().enable();
            if self.all_drained() {
                return;
            }
            tokio::select! {
                () = notified => {}
                () = give_up.as_mut() => {
                    self.gave_up.store(true, Ordering::Release);
                    return;
                }
            }
        }
    }
}

/// One worker's drain, counted when this is dropped: by the worker once
/// its tasks have ended, or by the unwinding of a worker that panicked
/// outside a task (which is not stuck either, so nobody waits for it).
#[derive(Debug)]
pub(crate) struct DrainReport(pub(crate) Arc<ShutdownWatch>);

impl Drop for DrainReport {
    fn drop(&mut self) {
        self.0.drained.fetch_add(1, Ordering::AcqRel);
        self.0.drained_notify.notify_waiters();
    }
}
