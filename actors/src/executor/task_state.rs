//! A task's state word and its joiner's waker: the part of a task that
//! several threads touch, on its own so that loom can check it.
//!
//! [`Task`](super::task) owns the future and runs it; everything it
//! decides from the state word goes through this module, which reaches its
//! atomics and its mutex only through the crate's loom shim. Under
//! `--cfg loom` this module is compiled on its own (the rest of the
//! executor needs tokio, which does not build under loom), and the models
//! in `loom-tests/tests/task_state.rs` drive the very transitions the
//! executor uses: a wake racing the poll, the completion and an abort, and
//! the join handle racing the completion.
//!
//! # The state word
//!
//! | bit | set by | meaning |
//! |---|---|---|
//! | `SCHEDULED` | a wake, an abort, or the spawn | the task is in (or on its way to) a run queue |
//! | `COMPLETE` | the worker | the future is gone and the stage holds the result |
//! | `CANCELLED` | [`TaskState::request_abort`] | drop the future at the next run |
//!
//! Invariants:
//!
//! 1. A task is in at most one run queue at a time: only the caller that
//!    turns `SCHEDULED` from 0 to 1 queues it ([`TaskState::wake`] and
//!    [`TaskState::request_abort`] say whether that was the caller), and
//!    the worker clears the bit just before it polls
//!    ([`TaskState::begin_run`]), so a wake during the poll queues it again.
//! 2. The result is written by the worker before [`TaskState::complete`]
//!    publishes `COMPLETE` with release ordering, and read by the joiner
//!    only after it saw `COMPLETE` with acquire ordering.
//! 3. Waking or aborting a complete task never queues it.
//! 4. A joiner that registers its waker is woken by the completion, or sees
//!    the completion itself ([`JoinWaker`]): the worker publishes
//!    `COMPLETE` before it takes the waker, and the joiner checks again
//!    under the lock.

// `pub` items in a `pub(crate)` module: under `--cfg loom` this module is
// `proc_daemon_actors::executor::task_state`, and the loom models call them.
#![cfg_attr(not(loom), allow(unreachable_pub))]

use std::task::Waker;

use crate::loom::{AtomicUsize, Mutex, Ordering};

const SCHEDULED: usize = 1;
const COMPLETE: usize = 1 << 1;
const CANCELLED: usize = 1 << 2;

/// The atomic state word of one task. See the module docs.
#[derive(Debug)]
pub struct TaskState(AtomicUsize);

/// What the worker does with a task it took from its run queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAction {
    /// The task is complete (a stale queue entry): nothing.
    Skip,
    /// An abort was requested: drop the future and complete as aborted.
    Abort,
    /// Poll the future.
    Poll,
}

impl Default for TaskState {
    fn default() -> Self {
        TaskState::new_scheduled()
    }
}

impl TaskState {
    /// A new task's state: scheduled, since its spawner queues it.
    pub fn new_scheduled() -> Self {
        TaskState(AtomicUsize::new(SCHEDULED))
    }

    /// The worker took the task from its queue: clears `SCHEDULED` before
    /// the poll (invariant 1) and says what to do.
    pub fn begin_run(&self) -> RunAction {
        let state = self.0.fetch_and(!SCHEDULED, Ordering::AcqRel);
        if state & COMPLETE != 0 {
            RunAction::Skip
        } else if state & CANCELLED != 0 {
            RunAction::Abort
        } else {
            RunAction::Poll
        }
    }

    /// A wake: returns whether the caller must queue the task (it was not
    /// queued and is not complete).
    pub fn wake(&self) -> bool {
        let state = self.0.fetch_or(SCHEDULED, Ordering::AcqRel);
        state & (SCHEDULED | COMPLETE) == 0
    }

    /// An abort request: marks the task cancelled; returns whether the
    /// caller must queue it so that its worker sees the request.
    pub fn request_abort(&self) -> bool {
        let state = self.0.fetch_or(CANCELLED | SCHEDULED, Ordering::AcqRel);
        state & (SCHEDULED | COMPLETE) == 0
    }

    /// Publishes `COMPLETE`, after the result is written (invariant 2).
    pub fn complete(&self) {
        self.0.fetch_or(COMPLETE, Ordering::AcqRel);
    }

    /// Whether the task is complete; once true, its result may be read.
    pub fn is_complete(&self) -> bool {
        self.0.load(Ordering::Acquire) & COMPLETE != 0
    }
}

/// The waker of whoever awaits a task's join handle. A mutex: it is taken
/// once per task and registered at most once per poll of the handle, never
/// on the hot path of a message.
#[derive(Debug, Default)]
pub struct JoinWaker(Mutex<Option<Waker>>);

impl JoinWaker {
    /// A slot with no waker.
    pub fn new() -> Self {
        JoinWaker(Mutex::new(None))
    }

    /// The worker, after [`TaskState::complete`]: wakes the joiner, if one
    /// registered.
    pub fn wake_joiner(&self) {
        let joiner = self.lock().take();
        if let Some(joiner) = joiner {
            joiner.wake();
        }
    }

    /// The joiner: returns `true` if `state` is complete (the result may
    /// be taken); otherwise registers `waker` to be woken by the
    /// completion and returns `false`.
    pub fn complete_or_register(&self, state: &TaskState, waker: &Waker) -> bool {
        if state.is_complete() {
            return true;
        }
        let mut joiner = self.lock();
        // Checked again under the lock: the worker publishes COMPLETE
        // before it takes the waker, so either it sees this waker or this
        // sees COMPLETE (invariant 4).
        if state.is_complete() {
            return true;
        }
        match joiner.as_ref() {
            Some(registered) if registered.will_wake(waker) => {}
            _ => *joiner = Some(waker.clone()),
        }
        false
    }

    fn lock(&self) -> crate::loom::MutexGuard<'_, Option<Waker>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
