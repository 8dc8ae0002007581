//! loom models of a task's state machine (`actors/src/executor/task_state.rs`):
//! the transitions the executor's tasks make, raced against each other.
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p proc-daemon-loom-tests --release --test task_state
//! ```
//!
//! Each model plays the worker with a one-slot run queue it owns, and the
//! wakers, the aborter and the joiner on other threads, calling exactly the
//! methods the executor calls. The stage (the future, then its result) is a
//! loom cell, so a read of the result that is not ordered after its write
//! fails the model. What is checked:
//!
//! - invariant 1: a task is never queued twice (the queue is a counter that
//!   must stay ≤ 1);
//! - invariant 2: the joiner reads the result only after the worker wrote
//!   it;
//! - invariant 3: nothing is polled after the task completed;
//! - invariant 4: a joiner that registered is woken, so `block_on` returns;
//! - an abort always takes effect on a task that never finishes by itself.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;
use proc_daemon_actors::executor::task_state::{JoinWaker, RunAction, TaskState};

/// What a task holds: its state, its joiner's waker, its stage (0: the
/// future is running, 1: finished, 2: aborted) and its run queue (how
/// many entries for it are queued).
struct Task {
    state: TaskState,
    joiner: JoinWaker,
    stage: UnsafeCell<u8>,
    queued: AtomicUsize,
    polls: AtomicUsize,
    /// What the future waits for, set by whoever then wakes it.
    ready: AtomicBool,
}

/// When the model's future finishes.
#[derive(Clone, Copy)]
enum Body {
    /// On its first poll.
    AtOnce,
    /// On the first poll that finds `ready` set.
    WhenReady,
    /// Never: only an abort ends it.
    Never,
}

const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const ABORTED: u8 = 2;

impl Task {
    /// A spawned task: scheduled and queued once, as a spawn leaves it.
    fn spawned() -> Arc<Task> {
        Arc::new(Task {
            state: TaskState::new_scheduled(),
            joiner: JoinWaker::new(),
            stage: UnsafeCell::new(RUNNING),
            queued: AtomicUsize::new(1),
            polls: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
        })
    }

    /// Queues the task, as `worker::schedule` does; invariant 1.
    fn enqueue(&self) {
        let before = self.queued.fetch_add(1, Ordering::SeqCst);
        assert_eq!(before, 0, "the task was queued twice");
    }

    /// A waker's `wake_by_ref`.
    fn wake(&self) {
        if self.state.wake() {
            self.enqueue();
        }
    }

    /// The join handle's `abort`.
    fn abort(&self) {
        if self.state.request_abort() {
            self.enqueue();
        }
    }

    /// The worker, if an entry is queued: takes it and runs the task once,
    /// as `Task::run` does. Returns whether an entry was taken.
    fn run_queued(&self, future: Body) -> bool {
        if self.queued.load(Ordering::SeqCst) == 0 {
            return false;
        }
        self.queued.fetch_sub(1, Ordering::SeqCst);
        match self.state.begin_run() {
            RunAction::Skip => {}
            RunAction::Abort => self.finish(ABORTED),
            RunAction::Poll => {
                // Invariant 3: never polled once complete.
                let stage = self.stage.with(|stage| {
                    // SAFETY: the worker's own read of the stage before
                    // COMPLETE; loom checks that no write races it.
                    unsafe { *stage }
                });
                assert_eq!(stage, RUNNING);
                self.polls.fetch_add(1, Ordering::SeqCst);
                let done = match future {
                    Body::AtOnce => true,
                    Body::WhenReady => self.ready.load(Ordering::SeqCst),
                    Body::Never => false,
                };
                if done {
                    self.finish(FINISHED);
                }
            }
        }
        true
    }

    /// `Task::finish`: writes the result, publishes COMPLETE, wakes the
    /// joiner.
    fn finish(&self, result: u8) {
        // SAFETY: the worker writes the stage before it publishes COMPLETE;
        // loom checks that no read races the write (invariant 2).
        self.stage.with_mut(|stage| unsafe { *stage = result });
        self.state.complete();
        self.joiner.wake_joiner();
    }

    /// The join handle, awaited: the result once complete (invariant 2).
    fn join(&self) -> u8 {
        block_on(std::future::poll_fn(|cx| {
            if self.joiner.complete_or_register(&self.state, cx.waker()) {
                // SAFETY: read after COMPLETE was seen with acquire
                // ordering; loom checks it is ordered after the write.
                std::task::Poll::Ready(self.stage.with(|stage| unsafe { *stage }))
            } else {
                std::task::Poll::Pending
            }
        }))
    }
}

/// A wake racing the worker's poll and the completion: the future finishes
/// once the waker has made it ready, so a wake that is lost (the task not
/// queued again after a poll that found it not ready) hangs the model. The
/// joiner, on the main thread, must see the finished result.
#[test]
fn a_wake_races_the_poll_and_the_completion() {
    loom::model(|| {
        let task = Task::spawned();
        let worker = {
            let task = task.clone();
            thread::spawn(move || {
                while !task.state.is_complete() {
                    if !task.run_queued(Body::WhenReady) {
                        thread::yield_now();
                    }
                }
                // A wake that queued the task after all is a stale entry.
                task.run_queued(Body::WhenReady);
            })
        };
        let waker = {
            let task = task.clone();
            thread::spawn(move || {
                task.ready.store(true, Ordering::SeqCst);
                task.wake();
            })
        };
        assert_eq!(task.join(), FINISHED);
        waker.join().unwrap();
        worker.join().unwrap();
        let polls = task.polls.load(Ordering::SeqCst);
        assert!((1..=2).contains(&polls), "{polls} polls");
    });
}

/// An abort racing a wake and the worker: the future never finishes by
/// itself, so the task must end aborted, whatever the order.
#[test]
fn an_abort_races_a_wake_and_the_worker() {
    loom::model(|| {
        let task = Task::spawned();
        let worker = {
            let task = task.clone();
            thread::spawn(move || {
                while !task.state.is_complete() {
                    if !task.run_queued(Body::Never) {
                        thread::yield_now();
                    }
                }
            })
        };
        let waker = {
            let task = task.clone();
            thread::spawn(move || task.wake())
        };
        task.abort();
        assert_eq!(task.join(), ABORTED);
        waker.join().unwrap();
        worker.join().unwrap();
    });
}

/// An abort racing the completion of a task that finishes on its first
/// poll: the result is either, and the task completes exactly once (the
/// stage is written once; a second write would race the joiner's read).
#[test]
fn an_abort_races_the_completion() {
    loom::model(|| {
        let task = Task::spawned();
        let worker = {
            let task = task.clone();
            thread::spawn(move || {
                while !task.state.is_complete() {
                    if !task.run_queued(Body::AtOnce) {
                        thread::yield_now();
                    }
                }
                // An abort that arrived after the completion queues nothing
                // (invariant 3); anything left is a stale entry.
                task.run_queued(Body::AtOnce);
            })
        };
        let aborter = {
            let task = task.clone();
            thread::spawn(move || task.abort())
        };
        let result = task.join();
        assert!(result == FINISHED || result == ABORTED);
        aborter.join().unwrap();
        worker.join().unwrap();
        assert!(task.polls.load(Ordering::SeqCst) <= 1);
    });
}
