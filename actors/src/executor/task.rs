//! Tasks: a spawned future, its state, its waker and its join handle.
//!
//! A task belongs to one worker for its whole life. Only that worker's
//! thread polls its future or drops it, so the future needs no lock; the
//! state word and the join waker are the only parts other threads touch.
//!
//! The state word, which wakers, the join handle and the worker share,
//! lives in [`task_state`](super::task_state), with its invariants; it is
//! model-checked with loom there. What this file adds holds by the same
//! invariants: the stage (the future, then its result) is touched by the
//! owning worker's thread until `COMPLETE` is published, and by the one
//! [`JoinHandle`] after that; a waker may outlive the task's worker, and
//! waking a complete task does nothing.
//!
//! A [`JoinHandle`] reports how the task ended: its output, a panic with its
//! message, an abort, or a rejection because the executor was already
//! shutting down. Nothing is dropped silently.

use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use super::task_state::{JoinWaker, RunAction, TaskState};
use super::worker::{self, WorkerShared};
use crate::panic::panic_message;

/// Marks a task that is not in its worker's registry.
pub(crate) const NOT_REGISTERED: usize = usize::MAX;

/// What a worker's run queues and registry hold: a task, without its
/// future's type.
pub(crate) trait Runnable: Send + Sync + 'static {
    /// Polls the task once, or finishes it as aborted if `abort` was
    /// called. Only the owning worker's thread calls this.
    fn run(self: Arc<Self>);

    /// Drops the future and completes the task as aborted, unless it is
    /// already complete. Returns whether it aborted anything. Only the
    /// owning worker's thread calls this, or the spawner for a task that
    /// never reached a queue.
    fn abort_now(&self) -> bool;

    /// The task's slot in its worker's registry. Only the owning worker's
    /// thread reads or writes it.
    fn registry_slot(&self) -> &AtomicUsize;
}

/// The future, then its result, then nothing once the join handle took it.
enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Taken,
}

/// A spawned future and everything about it. See the module docs.
pub(crate) struct Task<F: Future> {
    state: TaskState,
    worker: Arc<WorkerShared>,
    stage: UnsafeCell<Stage<F>>,
    registry_slot: AtomicUsize,
    /// The waker of whoever awaits the join handle.
    join_waker: JoinWaker,
}

// SAFETY: `stage` is the only field that is not `Sync` by itself. By the
// module's invariant 2 it is accessed by one thread at a time: the owning
// worker's thread until `COMPLETE` is published with release ordering, and
// after that only the join handle, which reads `COMPLETE` with acquire
// ordering first. The future and its output move between threads (spawned
// on one, polled on the worker, output read on another), hence the `Send`
// bounds.
unsafe impl<F> Sync for Task<F>
where
    F: Future + Send,
    F::Output: Send,
{
}

impl<F> Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// A new task, already marked scheduled: the spawner queues it.
    pub(crate) fn new(future: F, worker: Arc<WorkerShared>) -> Arc<Self> {
        Arc::new(Task {
            state: TaskState::new_scheduled(),
            worker,
            stage: UnsafeCell::new(Stage::Running(future)),
            registry_slot: AtomicUsize::new(NOT_REGISTERED),
            join_waker: JoinWaker::new(),
        })
    }

    /// Polls the future with a waker that points at this task.
    fn poll_future(self: &Arc<Self>) -> Option<Result<F::Output, JoinError>> {
        // SAFETY: `Arc::as_ptr` of a live `Arc` (we hold one) turned back
        // into an `Arc` that is never dropped (`ManuallyDrop`), so the
        // reference count is neither raised nor lowered: the waker borrows
        // our reference for the duration of the poll. A future that keeps
        // the waker clones it, and `Waker::clone` takes a reference of its
        // own. This saves two atomic operations on every poll.
        let waker = ManuallyDrop::new(Waker::from(unsafe { Arc::from_raw(Arc::as_ptr(self)) }));
        let mut cx = Context::from_waker(&waker);
        // SAFETY: invariant 2: this is the owning worker's thread and
        // `COMPLETE` is clear (checked by `run`), so no other thread touches
        // the stage.
        let stage = unsafe { &mut *self.stage.get() };
        let Stage::Running(future) = stage else {
            return None;
        };
        // SAFETY: the future lives in the task's heap allocation and is
        // never moved out of it: it is dropped in place by `finish` (which
        // overwrites the stage) or by the task's own drop.
        let future = unsafe { Pin::new_unchecked(future) };
        match catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))) {
            Ok(Poll::Ready(output)) => Some(Ok(output)),
            Ok(Poll::Pending) => None,
            Err(payload) => Some(Err(JoinError::Panicked {
                message: panic_message(payload.as_ref()),
            })),
        }
    }

    /// Drops the future, stores the result, publishes `COMPLETE` and wakes
    /// the joiner. Worker thread only (or the spawner of a task that never
    /// reached a queue).
    fn finish(&self, result: Result<F::Output, JoinError>) {
        // SAFETY: invariant 2, as in `poll_future`.
        let stage = unsafe { &mut *self.stage.get() };
        // Dropping the future runs user code, which may panic; the task's
        // result stands either way.
        let dropped = catch_unwind(AssertUnwindSafe(|| {
            *stage = Stage::Finished(result);
        }));
        if dropped.is_err() {
            tracing::error!("a task's future panicked while being dropped");
        }
        self.state.complete();
        self.worker.task_ended();
        self.join_waker.wake_joiner();
    }
}

impl<F> Runnable for Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn run(self: Arc<Self>) {
        match self.state.begin_run() {
            RunAction::Skip => return,
            RunAction::Abort => {
                self.abort_now();
                worker::unregister(&*self);
                return;
            }
            RunAction::Poll => {}
        }
        self.worker.count_poll();
        match self.poll_future() {
            Some(result) => {
                self.finish(result);
                worker::unregister(&*self);
            }
            // Started and waiting: from now on shutdown must be able to
            // find it even if no queue holds it.
            None if self.registry_slot.load(Ordering::Relaxed) == NOT_REGISTERED => {
                worker::register(self);
            }
            None => {}
        }
    }

    fn abort_now(&self) -> bool {
        if self.state.is_complete() {
            return false;
        }
        self.finish(Err(JoinError::Aborted));
        true
    }

    fn registry_slot(&self) -> &AtomicUsize {
        &self.registry_slot
    }
}

impl<F> Wake for Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Queued only if not already queued, and not complete.
        if self.state.wake() {
            worker::schedule(&self.worker, self.clone());
        }
    }
}

/// The join handle's view of a task, without the future's type.
trait JoinTarget<T>: Send + Sync {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    fn abort(self: Arc<Self>);
    fn is_finished(&self) -> bool;
}

impl<F> JoinTarget<F::Output> for Task<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, JoinError>> {
        if !self
            .join_waker
            .complete_or_register(&self.state, cx.waker())
        {
            return Poll::Pending;
        }
        // SAFETY: invariant 2: COMPLETE is set (read with acquire), so the
        // worker is done with the stage, and this join handle is the only
        // one (it is not `Clone`) and holds `&mut` to itself while polling.
        let stage = unsafe { &mut *self.stage.get() };
        match std::mem::replace(stage, Stage::Taken) {
            Stage::Finished(result) => Poll::Ready(result),
            Stage::Running(_) | Stage::Taken => {
                panic!("a JoinHandle was polled after it returned its result")
            }
        }
    }

    fn abort(self: Arc<Self>) {
        if self.state.request_abort() {
            // Not queued: queue it so its worker sees the request.
            let worker = self.worker.clone();
            worker::schedule(&worker, self);
        }
    }

    fn is_finished(&self) -> bool {
        self.state.is_complete()
    }
}

/// Why a task produced no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The task was aborted: through [`JoinHandle::abort`], or by
    /// [`Executor::shutdown`](super::Executor::shutdown) at its timeout.
    #[error("the task was aborted")]
    Aborted,
    /// The task panicked. The panic was caught; the worker it ran on keeps
    /// running.
    #[error("the task panicked: {message}")]
    Panicked {
        /// The panic's message, or a note that its payload was not a string.
        message: String,
    },
    /// The executor was shutting down when the task was spawned, so it
    /// never started.
    #[error("the executor is shut down; the task was not started")]
    ShutDown,
    /// The blocking pool could not start its thread (the system refused
    /// one), so the closure never ran.
    #[error("the blocking pool could not start a thread: {error}")]
    NoThread {
        /// The system's error.
        error: String,
    },
}

impl JoinError {
    fn from_tokio(error: tokio::task::JoinError) -> Self {
        match error.try_into_panic() {
            Ok(payload) => JoinError::Panicked {
                message: panic_message(payload.as_ref()),
            },
            Err(_) => JoinError::Aborted,
        }
    }
}

/// An owned permission to wait for a task's output, or to abort it.
///
/// Dropping the handle detaches the task; it keeps running. Awaiting it
/// gives the task's output or a [`JoinError`] saying why there is none.
#[must_use = "dropping a JoinHandle detaches the task; await it or call abort()"]
pub struct JoinHandle<T> {
    state: HandleState<T>,
}

enum HandleState<T> {
    /// A task on a worker.
    Task(Arc<dyn JoinTarget<T>>),
    /// A closure on the blocking pool, awaited by a task on the pool's
    /// driver (see `blocking.rs`), which reports the closure's own result.
    Blocking(tokio::task::JoinHandle<Result<T, tokio::task::JoinError>>),
    /// Refused: the executor was shutting down.
    Rejected,
    /// Never started, for this reason.
    Failed(JoinError),
}

impl<T: Send + 'static> JoinHandle<T> {
    pub(crate) fn task<F>(task: Arc<Task<F>>) -> Self
    where
        F: Future<Output = T> + Send + 'static,
    {
        JoinHandle {
            state: HandleState::Task(task),
        }
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn blocking(
        handle: tokio::task::JoinHandle<Result<T, tokio::task::JoinError>>,
    ) -> Self {
        JoinHandle {
            state: HandleState::Blocking(handle),
        }
    }

    pub(crate) fn rejected() -> Self {
        JoinHandle {
            state: HandleState::Rejected,
        }
    }

    pub(crate) fn failed(error: JoinError) -> Self {
        JoinHandle {
            state: HandleState::Failed(error),
        }
    }

    /// Aborts the task. A task on a worker has its future dropped on its
    /// worker, before its next poll; awaiting the handle then gives
    /// [`JoinError::Aborted`] (or the output, if it completed first). A
    /// blocking closure that has not started yet never starts; one that is
    /// running runs to its end, because a thread cannot be interrupted, but
    /// its output is discarded.
    pub fn abort(&self) {
        match &self.state {
            HandleState::Task(task) => task.clone().abort(),
            HandleState::Blocking(handle) => handle.abort(),
            HandleState::Rejected | HandleState::Failed(_) => {}
        }
    }

    /// Whether the task has ended (completed, panicked or been aborted).
    pub fn is_finished(&self) -> bool {
        match &self.state {
            HandleState::Task(task) => task.is_finished(),
            HandleState::Blocking(handle) => handle.is_finished(),
            HandleState::Rejected | HandleState::Failed(_) => true,
        }
    }

    /// Blocks the calling thread until the task ends, then gives what
    /// awaiting the handle would. For `main`, tests and other plain
    /// threads: called from inside an async task it would block that
    /// task's worker, so await the handle there instead.
    pub fn join(self) -> Result<T, JoinError> {
        crate::mailbox::park::block_on(self)
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `JoinHandle` is `Unpin`: every variant is.
        match &mut self.get_mut().state {
            HandleState::Task(task) => task.poll_join(cx),
            HandleState::Blocking(handle) => Pin::new(handle).poll(cx).map(|result| {
                result
                    .map_err(JoinError::from_tokio)?
                    .map_err(JoinError::from_tokio)
            }),
            HandleState::Rejected => Poll::Ready(Err(JoinError::ShutDown)),
            HandleState::Failed(error) => Poll::Ready(Err(error.clone())),
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.state {
            HandleState::Task(_) => "task",
            HandleState::Blocking(_) => "blocking",
            HandleState::Rejected => "rejected",
            HandleState::Failed(_) => "failed",
        };
        f.debug_struct("JoinHandle")
            .field("kind", &kind)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// The task harness without a worker thread: the test thread plays the
/// worker, popping tasks from the remote queue and running them. These run
/// under Miri (see `.ci/run`), which checks the `unsafe` blocks above: the
/// borrowed waker, the stage hand-off and the pinning.
#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};

    use super::*;
    use crate::executor::worker::{CurrentWorker, new_worker};
    use crate::mailbox::Receiver;

    fn worker() -> (Arc<WorkerShared>, Receiver<Arc<dyn Runnable>>) {
        new_worker(CurrentWorker {
            executor: u64::MAX,
            index: 0,
        })
    }

    fn spawn<F>(worker: &Arc<WorkerShared>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        worker.task_spawned();
        let task = Task::new(future, worker.clone());
        super::worker::schedule(worker, task.clone());
        JoinHandle::task(task)
    }

    /// Plays the worker: runs whatever is queued. Returns how many ran.
    fn run_queued(inbox: &mut Receiver<Arc<dyn Runnable>>) -> usize {
        let mut ran = 0;
        while let Ok(task) = inbox.try_recv() {
            task.run();
            ran += 1;
        }
        ran
    }

    /// Counts its drops.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Pending until `slot` has been woken, keeping the waker it was given.
    struct WaitForWake {
        slot: Arc<Mutex<Option<Waker>>>,
        polled: bool,
    }

    impl Future for WaitForWake {
        type Output = &'static str;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
            if self.polled {
                return Poll::Ready("woken");
            }
            self.polled = true;
            *self.slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn a_task_runs_and_its_handle_gets_the_output() {
        let (worker, mut inbox) = worker();
        let handle = spawn(&worker, async { String::from("output") });
        assert!(!handle.is_finished());
        assert_eq!(run_queued(&mut inbox), 1);
        assert!(handle.is_finished());
        assert_eq!(handle.join(), Ok(String::from("output")));
        assert_eq!(worker.metrics().alive, 0);
        assert_eq!(worker.metrics().polls, 1);
    }

    #[test]
    fn a_kept_waker_woken_from_another_thread_runs_the_task_again() {
        let (worker, mut inbox) = worker();
        let slot = Arc::new(Mutex::new(None));
        let handle = spawn(
            &worker,
            WaitForWake {
                slot: slot.clone(),
                polled: false,
            },
        );
        assert_eq!(run_queued(&mut inbox), 1);
        assert!(!handle.is_finished());
        let waker = slot
            .lock()
            .unwrap()
            .take()
            .expect("the future kept its waker");
        std::thread::spawn(move || {
            waker.wake_by_ref();
            // A second wake before the task runs queues it only once.
            waker.wake();
        })
        .join()
        .unwrap();
        assert_eq!(run_queued(&mut inbox), 1);
        assert_eq!(handle.join(), Ok("woken"));
    }

    #[test]
    fn a_waiting_join_handle_is_woken_by_completion_on_another_thread() {
        let (worker, mut inbox) = worker();
        let slot = Arc::new(Mutex::new(None));
        let handle = spawn(
            &worker,
            WaitForWake {
                slot: slot.clone(),
                polled: false,
            },
        );
        run_queued(&mut inbox);
        let joiner = std::thread::spawn(move || handle.join());
        // Give the joiner a chance to register its waker first; correct
        // either way.
        std::thread::yield_now();
        slot.lock().unwrap().take().unwrap().wake();
        run_queued(&mut inbox);
        assert_eq!(joiner.join().unwrap(), Ok("woken"));
    }

    #[test]
    fn a_panic_becomes_a_join_error_with_its_message() {
        let (worker, mut inbox) = worker();
        let handle = spawn(&worker, async {
            let reason = "on purpose";
            panic!("task failed {reason}")
        });
        run_queued(&mut inbox);
        assert_eq!(
            handle.join(),
            Err(JoinError::Panicked {
                message: "task failed on purpose".to_owned()
            })
        );
        assert_eq!(worker.metrics().alive, 0);
    }

    #[test]
    fn abort_drops_the_future_once_before_or_after_it_started() {
        let (worker, mut inbox) = worker();
        let drops = Arc::new(AtomicUsize::new(0));

        // Aborted while queued, never polled.
        let guard = Counted(drops.clone());
        let handle = spawn(&worker, async move {
            let _guard = guard;
        });
        handle.abort();
        run_queued(&mut inbox);
        assert_eq!(handle.join(), Err(JoinError::Aborted));
        assert_eq!(drops.load(Ordering::SeqCst), 1);

        // Aborted while waiting on a waker nobody will use.
        let guard = Counted(drops.clone());
        let handle = spawn(&worker, async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        run_queued(&mut inbox);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "still running");
        handle.abort();
        run_queued(&mut inbox);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        assert_eq!(handle.join(), Err(JoinError::Aborted));
        assert_eq!(worker.metrics().alive, 0);
    }

    #[test]
    fn an_output_nobody_joins_is_dropped_with_the_task() {
        let (worker, mut inbox) = worker();
        let drops = Arc::new(AtomicUsize::new(0));
        let output = Counted(drops.clone());
        drop(spawn(&worker, async move { output }));
        run_queued(&mut inbox);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "dropped with the last reference"
        );
    }

    #[test]
    fn a_task_that_never_ran_is_dropped_with_its_queue() {
        let (worker, inbox) = worker();
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = Counted(drops.clone());
        drop(spawn(&worker, async move {
            let _guard = guard;
        }));
        drop(inbox);
        drop(worker);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_push_to_a_closed_queue_aborts_the_task_there() {
        let (worker, mut inbox) = worker();
        inbox.close();
        let handle = spawn(&worker, async { 1 });
        assert_eq!(handle.join(), Err(JoinError::Aborted));
        assert_eq!(worker.metrics().alive, 0);
    }
}
