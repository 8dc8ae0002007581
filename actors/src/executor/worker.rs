//! One worker: a named OS thread, optionally pinned to one CPU, running a
//! tokio current-thread runtime until the executor stops it.
//!
//! A worker never steals and is never stolen from: a task stays on the
//! worker it was spawned on, so its cache lines and its NUMA memory stay
//! local, and a message between two actors on the same worker never
//! crosses a core.
//!
//! The counters in [`WorkerShared`] are plain atomics so that metrics can
//! read them from any thread without a lock. Polls are counted by the one
//! thread that polls the worker's tasks, so that counter is a load and a
//! store rather than a locked read-modify-write on every poll.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use tokio::sync::{Notify, oneshot};

use super::topology::Cpu;

thread_local! {
    /// The executor and worker this thread is, if it is a worker.
    static CURRENT: Cell<Option<CurrentWorker>> = const { Cell::new(None) };
}

/// Identifies the worker a thread belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CurrentWorker {
    /// The executor's unique number.
    pub(crate) executor: u64,
    /// The worker's index in its executor.
    pub(crate) index: usize,
}

/// The worker the calling thread is, if any.
pub(crate) fn current() -> Option<CurrentWorker> {
    CURRENT.with(Cell::get)
}

/// What a worker shares with the executor and with its tasks.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    spawned: AtomicU64,
    alive: AtomicUsize,
    polls: AtomicU64,
    /// Set when the worker has been told to stop; read by a task's
    /// accounting so the last task to end wakes the stopping worker.
    stopping: AtomicBool,
    /// Woken when the last alive task ends while the worker is stopping.
    idle: Notify,
    /// Tasks still alive when the shutdown deadline passed, which the
    /// worker then dropped.
    aborted_at_deadline: AtomicUsize,
}

impl WorkerShared {
    pub(crate) fn new() -> Self {
        WorkerShared {
            spawned: AtomicU64::new(0),
            alive: AtomicUsize::new(0),
            polls: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            idle: Notify::new(),
            aborted_at_deadline: AtomicUsize::new(0),
        }
    }

    pub(crate) fn task_started(&self) {
        self.spawned.fetch_add(1, Ordering::Relaxed);
        self.alive.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn task_ended(&self) {
        // SeqCst on `alive` and `stopping`, here and in `serve`: of this
        // decrement and the worker's `stopping` store, each side sees the
        // other's write or is seen by it, so the worker either reads zero
        // or is notified. `Notify` keeps a permit, so an early notify is
        // not lost.
        if self.alive.fetch_sub(1, Ordering::SeqCst) == 1 && self.stopping.load(Ordering::SeqCst) {
            self.idle.notify_one();
        }
    }

    /// Counts one poll. Only the worker's own thread polls its tasks, so a
    /// plain load and store cannot lose a count.
    pub(crate) fn count_poll(&self) {
        let polls = self.polls.load(Ordering::Relaxed);
        self.polls.store(polls + 1, Ordering::Relaxed);
    }

    /// How many tasks the shutdown deadline caught on this worker.
    pub(crate) fn aborted_at_deadline(&self) -> usize {
        self.aborted_at_deadline.load(Ordering::Acquire)
    }

    /// A snapshot of the counters.
    pub(crate) fn metrics(&self, index: usize) -> WorkerMetrics {
        WorkerMetrics {
            worker: index,
            spawned: self.spawned.load(Ordering::Relaxed),
            alive: self.alive.load(Ordering::Relaxed),
            polls: self.polls.load(Ordering::Relaxed),
        }
    }
}

/// One worker's counters, read without a lock. Each field is read on its
/// own, so a snapshot taken while tasks run is approximate across fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// The worker's index.
    pub worker: usize,
    /// Tasks spawned on this worker since it started.
    pub spawned: u64,
    /// Tasks spawned on this worker that have not ended yet.
    pub alive: usize,
    /// Polls of this worker's tasks since it started.
    pub polls: u64,
}

/// Where a worker runs, fixed when the executor is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// The worker's index, as [`Executor::spawn_on`](super::Executor::spawn_on) takes it.
    pub index: usize,
    /// The NUMA node the worker belongs to (the kernel's node number).
    /// Without pinning this is the node of the CPU it would have been
    /// pinned to; the scheduler may still run it elsewhere.
    pub node: usize,
    /// The CPU the worker is pinned to, or `None` if it runs unpinned
    /// (pinning off, or refused by the system).
    pub pinned_cpu: Option<Cpu>,
    /// The OS thread's name.
    pub thread_name: String,
}

/// Sent to the executor when a worker thread exits, however it exits.
pub(crate) struct ExitGuard {
    pub(crate) index: usize,
    pub(crate) exits: mpsc::Sender<usize>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        // The executor may be gone; then nobody is waiting.
        let _ = self.exits.send(self.index);
    }
}

/// Everything a worker thread needs, moved into it at start.
pub(crate) struct WorkerStart {
    pub(crate) me: CurrentWorker,
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) shared: Arc<WorkerShared>,
    /// The CPU to pin to, if pinning is on.
    pub(crate) pin_to: Option<Cpu>,
    /// Set by the first worker whose pinning is refused, so the refusal
    /// is logged once per executor, not once per worker.
    pub(crate) pin_refusal_logged: Arc<AtomicBool>,
    /// Receives the pinning outcome before any task runs.
    pub(crate) pinned: mpsc::Sender<Option<Cpu>>,
    /// Receives the shutdown deadline; a dropped sender means "now".
    pub(crate) stop: oneshot::Receiver<Instant>,
    pub(crate) exit: ExitGuard,
}

/// The body of a worker thread.
pub(crate) fn run(start: WorkerStart) {
    let WorkerStart {
        me,
        runtime,
        shared,
        pin_to,
        pin_refusal_logged,
        pinned,
        stop,
        exit,
    } = start;
    let _exit = exit;
    let outcome = pin_to.and_then(|cpu| pin_current_thread(cpu, me.index, &pin_refusal_logged));
    // The builder waits for this before it returns.
    let _ = pinned.send(outcome);
    CURRENT.with(|current| current.set(Some(me)));
    runtime.block_on(serve(&shared, stop));
    // Dropping the runtime drops every task still on it: the ones the
    // shutdown deadline caught, whose handles now report `Aborted`.
    drop(runtime);
    CURRENT.with(|current| current.set(None));
}

/// The number of CPUs a `cpu_set_t` holds (glibc's `CPU_SETSIZE`).
const CPU_SET_CAPACITY: usize = 1024;

/// Pins the calling thread to `cpu`. On refusal, logs once per executor
/// and returns `None`: the worker runs unpinned rather than failing.
fn pin_current_thread(cpu: Cpu, worker: usize, refusal_logged: &AtomicBool) -> Option<Cpu> {
    // `core_affinity` builds a fixed-size `cpu_set_t`, which panics on a
    // CPU number past its capacity; such a CPU counts as a refusal.
    if cpu < CPU_SET_CAPACITY && core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        return Some(cpu);
    }
    if !refusal_logged.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            worker,
            cpu,
            "the system refused to pin an executor worker to its CPU; workers run unpinned where refused"
        );
    }
    None
}

/// Runs the worker's tasks until told to stop, then until its tasks have
/// all ended or the deadline passes.
async fn serve(shared: &WorkerShared, stop: oneshot::Receiver<Instant>) {
    // A dropped sender (the executor dropped without `shutdown`) means
    // stop now.
    let deadline = stop.await.unwrap_or_else(|_| Instant::now());
    shared.stopping.store(true, Ordering::SeqCst);
    let deadline = tokio::time::Instant::from_std(deadline);
    loop {
        let idle = shared.idle.notified();
        if shared.alive.load(Ordering::SeqCst) == 0 {
            return;
        }
        tokio::select! {
            () = idle => {}
            () = tokio::time::sleep_until(deadline) => {
                let alive = shared.alive.load(Ordering::SeqCst);
                shared.aborted_at_deadline.store(alive, Ordering::Release);
                return;
            }
        }
    }
}
