//! One worker: a named OS thread, optionally pinned to one CPU, that runs
//! its tasks from its own run queues inside a tokio current-thread runtime.
//!
//! A worker never steals and is never stolen from: a task stays on the
//! worker it was spawned on, so its cache lines and its NUMA memory stay
//! local, and a message between two actors on the same worker never
//! crosses a core.
//!
//! # Why the worker has its own run queues
//!
//! tokio's current-thread scheduler wakes its thread through the I/O
//! driver on *every* wake-up from another thread: a write to an eventfd,
//! then an `epoll_wait` and a read on the woken side, even when the thread
//! is awake. Between two workers that costs microseconds per message. So
//! the tasks spawned here do not go through tokio's scheduler. Each worker
//! keeps:
//!
//! - a local queue (a `VecDeque`, no atomics) for wake-ups on its own
//!   thread;
//! - a remote queue (this crate's lock-free unbounded mailbox) for spawns
//!   and wake-ups from other threads.
//!
//! The runtime's `block_on` future (`serve`) runs the queues when tokio
//! polls it, and the runtime's park hook runs them too: when the worker is
//! about to sleep it first watches the remote queue for
//! [`idle_spin`](super::ExecutorBuilder::idle_spin) at most, running what
//! arrives; after waking a task on another worker it watches in full, and
//! otherwise watches that find nothing are held to about 1% of the
//! worker's time (spin.rs).
//! Only then does it register with the remote queue, so that a producer
//! wakes the runtime (the one place an eventfd write remains: waking a
//! worker that is really asleep). tokio stays in charge of what it is good
//! at: timers, sockets, `select!`, and any tokio task a user spawns inside
//! an actor.
//!
//! # Counters
//!
//! The counters in [`WorkerShared`] are plain atomics so that metrics can
//! read them from any thread without a lock. Polls are counted by the one
//! thread that polls the worker's tasks, so that counter is a load and a
//! store rather than a locked read-modify-write on every poll.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::spin::AdaptiveSpin;
use super::task::{NOT_REGISTERED, Runnable};
use super::topology::Cpu;
use super::watch::{DrainReport, ShutdownWatch};
use crate::mailbox::{self, TryRecvError, TrySendError};

/// Tasks a worker runs before it lets tokio poll its timers and sockets.
const BATCH: usize = 128;

/// How long `Serve` or the park hook keeps running tasks that keep
/// arriving before it hands the thread back to tokio for its timers and
/// sockets.
const MAX_TURN_IN_PARK_HOOK: Duration = Duration::from_micros(500);

/// How long the park hook spins on the CPU before it starts yielding it
/// between looks at the remote queue.
const PURE_SPIN: Duration = Duration::from_micros(2);

/// While a shutdown is under way (see [`WorkerShared::hurry`]), how long an
/// idle worker watches its queues before it sleeps: long enough to span
/// the gap between a worker's cancelled tasks and the stop that follows
/// (100-200 µs measured on the way out of a daemon), and no longer: a
/// spinning worker holds its CPU, and yielding does not reliably hand it
/// to a thread waiting there. With 1 ms, daemon_exit was no faster, and
/// one daemon_shutdown run with 40 subsystems had a p90 of 1.7-1.9 ms
/// against 0.6-0.7 ms without spinning.
const HURRY_SPIN: Duration = Duration::from_micros(250);

/// The most a worker spins in all because of a shutdown under way. Past
/// it, the worker sleeps as usual, so a shutdown whose cleanup takes
/// seconds does not keep a core busy for them.
const HURRY_BUDGET: Duration = Duration::from_millis(20);

/// The number of CPUs a `cpu_set_t` holds (glibc's `CPU_SETSIZE`).
const CPU_SET_CAPACITY: usize = 1024;

thread_local! {
    /// The worker this thread is, if it is one.
    static LOCAL: RefCell<Option<Rc<WorkerLocal>>> = const { RefCell::new(None) };

    /// The worker's exit report, sent when this thread-local is destroyed.
    /// It is the first thread-local with a destructor that a worker thread
    /// sets, and glibc runs thread-local destructors in reverse order of
    /// registration (`__cxa_thread_atexit_impl`), so the report goes out
    /// after every other thread-local value of the thread was dropped,
    /// including any a user's task left behind. Nothing of the thread's own
    /// code runs after it, which is why the executor need not join the
    /// thread.
    static EXIT_REPORT: RefCell<Option<ExitGuard>> = const { RefCell::new(None) };
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
    LOCAL.with(|local| local.borrow().as_ref().map(|local| local.shared.me))
}

/// The calling thread's worker, if it is one.
fn local() -> Option<Rc<WorkerLocal>> {
    LOCAL.with(|local| local.borrow().clone())
}

/// What a worker shares with the executor, with its tasks and with every
/// thread that wakes them.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    me: CurrentWorker,
    /// Spawns and wake-ups from other threads.
    remote: mailbox::Sender<Arc<dyn Runnable>>,
    spawned: AtomicU64,
    alive: AtomicUsize,
    polls: AtomicU64,
    /// Idle watches that ended with work, and that ran out (spin.rs).
    /// Written only by the worker's own thread.
    watch_hits: AtomicU64,
    watch_misses: AtomicU64,
    watch_missed_nanos: AtomicU64,
    /// Tasks this worker took from its remote queue: spawns and wake-ups
    /// handed over by other threads. Written only by the worker's thread.
    handoffs: AtomicU64,
    /// Tasks still alive when the shutdown deadline passed, which the
    /// worker then aborted.
    aborted_at_deadline: AtomicUsize,
    /// Set when a shutdown is under way (`ExecutorDrain::prepare`):
    /// the worker spins longer before it sleeps.
    hurry: AtomicBool,
    /// Set when the stop has been sent: a spinning worker lets tokio poll
    /// `Serve`, which receives it.
    stop_sent: AtomicBool,
}

impl std::fmt::Debug for dyn Runnable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runnable")
    }
}

impl WorkerShared {
    pub(crate) fn task_spawned(&self) {
        self.spawned.fetch_add(1, Ordering::Relaxed);
        self.alive.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn task_ended(&self) {
        if self.alive.fetch_sub(1, Ordering::AcqRel) == 1 {
            // A stopping worker waits for its last task; let it look.
            if let Some(local) =
                local().filter(|local| local.shared.me == self.me && local.stopping.get())
            {
                local.wake_main();
            }
        }
    }

    /// Counts one poll. Only the worker's own thread polls its tasks, so a
    /// plain load and store cannot lose a count.
    #[inline]
    pub(crate) fn count_poll(&self) {
        let polls = self.polls.load(Ordering::Relaxed);
        self.polls.store(polls + 1, Ordering::Relaxed);
    }

    /// Asks the worker to spin, not sleep, while it is idle during the
    /// shutdown that is under way (bounded by [`HURRY_BUDGET`]).
    pub(crate) fn hurry(&self) {
        self.hurry.store(true, Ordering::Relaxed);
    }

    /// Records that the stop was sent, so that a spinning worker stops
    /// spinning and receives it.
    pub(crate) fn stop_sent(&self) {
        self.stop_sent.store(true, Ordering::Release);
    }

    /// How many tasks the shutdown deadline caught on this worker.
    pub(crate) fn aborted_at_deadline(&self) -> usize {
        self.aborted_at_deadline.load(Ordering::Acquire)
    }

    /// A snapshot of the counters.
    pub(crate) fn metrics(&self) -> WorkerMetrics {
        WorkerMetrics {
            worker: self.me.index,
            spawned: self.spawned.load(Ordering::Relaxed),
            alive: self.alive.load(Ordering::Relaxed),
            polls: self.polls.load(Ordering::Relaxed),
            idle_watch_hits: self.watch_hits.load(Ordering::Relaxed),
            idle_watch_misses: self.watch_misses.load(Ordering::Relaxed),
            idle_watch_missed_time: Duration::from_nanos(
                self.watch_missed_nanos.load(Ordering::Relaxed),
            ),
            handoffs: self.handoffs.load(Ordering::Relaxed),
        }
    }

    /// Counts a task taken from the remote queue. Only the worker's own
    /// thread takes them, so this is a load and a store.
    fn count_handoff(&self) {
        let handoffs = self.handoffs.load(Ordering::Relaxed);
        self.handoffs.store(handoffs + 1, Ordering::Relaxed);
    }

    /// Counts an idle watch that ended with work. Only the worker's own
    /// thread counts, so this is a load and a store.
    fn count_watch_hit(&self) {
        let hits = self.watch_hits.load(Ordering::Relaxed);
        self.watch_hits.store(hits + 1, Ordering::Relaxed);
    }

    /// Counts an idle watch that ran out after `watched`, as
    /// [`count_watch_hit`](Self::count_watch_hit) does.
    fn count_watch_miss(&self, watched: Duration) {
        let misses = self.watch_misses.load(Ordering::Relaxed);
        self.watch_misses.store(misses + 1, Ordering::Relaxed);
        let nanos = self.watch_missed_nanos.load(Ordering::Relaxed);
        let watched = u64::try_from(watched.as_nanos()).unwrap_or(u64::MAX);
        self.watch_missed_nanos
            .store(nanos.saturating_add(watched), Ordering::Relaxed);
    }

    /// Sends a task to the remote queue. If the worker has exited, the task
    /// can never run there: it is aborted here, which is sound because a
    /// task that fails to enter the queue is in no queue and on no worker.
    fn push_remote(&self, task: Arc<dyn Runnable>) {
        if let Err(TrySendError::Closed(task) | TrySendError::Full(task)) =
            self.remote.try_send(task)
        {
            task.abort_now();
        }
    }
}

/// Queues a newly spawned task, or one that was woken, on `worker`.
pub(crate) fn schedule(worker: &Arc<WorkerShared>, task: Arc<dyn Runnable>) {
    match local() {
        Some(local) if Arc::ptr_eq(&local.shared, worker) => local.push_local(task),
        Some(local) => {
            // An answer may be on its way back: watch for it in full
            // (spin.rs).
            local.idle_watch.woke_another_worker();
            worker.push_remote(task);
        }
        None => worker.push_remote(task),
    }
}

/// Keeps a task that has started but not finished in its worker's
/// registry, so that shutdown can abort it wherever its wakers are. Worker
/// thread only.
pub(crate) fn register(task: Arc<dyn Runnable>) {
    if task.registry_slot().load(Ordering::Relaxed) != NOT_REGISTERED {
        return;
    }
    if let Some(local) = local() {
        let slot = local.registry.borrow_mut().insert(task.clone());
        task.registry_slot().store(slot, Ordering::Relaxed);
    }
}

/// Drops a finished task from its worker's registry. Worker thread only.
pub(crate) fn unregister(task: &dyn Runnable) {
    let slot = task.registry_slot().swap(NOT_REGISTERED, Ordering::Relaxed);
    if slot == NOT_REGISTERED {
        return;
    }
    if let Some(local) = local() {
        // Take it out first and drop it after the borrow ends: dropping the
        // last reference to a task runs user code.
        let removed = local.registry.borrow_mut().remove(slot);
        drop(removed);
    }
}

/// The tasks a worker has started and not finished.
#[derive(Default)]
struct Registry {
    slots: Vec<Option<Arc<dyn Runnable>>>,
    free: Vec<usize>,
}

impl Registry {
    fn insert(&mut self, task: Arc<dyn Runnable>) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(task);
                slot
            }
            None => {
                self.slots.push(Some(task));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, slot: usize) -> Option<Arc<dyn Runnable>> {
        let task = self.slots.get_mut(slot)?.take();
        if task.is_some() {
            self.free.push(slot);
        }
        task
    }

    fn take_all(&mut self) -> Vec<Arc<dyn Runnable>> {
        self.free.clear();
        std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect()
    }
}

/// What only the worker's own thread touches.
struct WorkerLocal {
    shared: Arc<WorkerShared>,
    local_queue: RefCell<VecDeque<Arc<dyn Runnable>>>,
    remote: RefCell<mailbox::Receiver<Arc<dyn Runnable>>>,
    registry: RefCell<Registry>,
    /// The waker of the runtime's `block_on` future.
    main_waker: RefCell<Option<Waker>>,
    /// Set while this thread is running the queues, so that a wake-up from
    /// a task needs no call into tokio.
    running: Cell<bool>,
    /// Set once the main future has been woken, until it is polled.
    main_woken: Cell<bool>,
    stopping: Cell<bool>,
    /// How long to watch for work before parking (spin.rs).
    idle_watch: AdaptiveSpin,
    /// Time spent in the park hook because of [`WorkerShared::hurry`].
    hurried: Cell<Duration>,
}

impl WorkerLocal {
    fn push_local(&self, task: Arc<dyn Runnable>) {
        self.local_queue.borrow_mut().push_back(task);
        if !self.running.get() {
            // Woken by tokio-side code (a timer, a socket, a tokio task):
            // nobody is running the queue, so ask tokio to poll `serve`.
            self.wake_main();
        }
    }

    fn wake_main(&self) {
        if !self.main_woken.replace(true)
            && let Some(waker) = self.main_waker.borrow().as_ref()
        {
            waker.wake_by_ref();
        }
    }

    fn next_task(&self) -> Option<Arc<dyn Runnable>> {
        let local = self.local_queue.borrow_mut().pop_front();
        local.or_else(|| {
            let task = self.remote.borrow_mut().try_recv().ok()?;
            self.shared.count_handoff();
            Some(task)
        })
    }

    /// Runs up to `limit` tasks; returns how many ran.
    fn run_tasks(&self, limit: usize) -> usize {
        let was_running = self.running.replace(true);
        let mut ran = 0;
        while ran < limit {
            let Some(task) = self.next_task() else {
                break;
            };
            task.run();
            ran += 1;
        }
        self.running.set(was_running);
        ran
    }

    /// Runs tasks until the queues are empty or `turn` has passed. Returns
    /// whether it stopped for time, with work likely left.
    fn run_for(&self, turn: Duration) -> bool {
        let started = Instant::now();
        while self.run_tasks(BATCH) == BATCH {
            if started.elapsed() >= turn {
                return true;
            }
        }
        false
    }

    /// The park hook: run what is there, watch for remote work for as long
    /// as the adaptive watch says (at most `idle_spin`; spin.rs), then
    /// register with the remote queue and let tokio park.
    fn before_park(&self) {
        let entered = Instant::now();
        let mut last_work = entered;
        let hurrying =
            self.shared.hurry.load(Ordering::Relaxed) && self.hurried.get() < HURRY_BUDGET;
        let spin = if hurrying {
            self.idle_watch.max().max(HURRY_SPIN)
        } else {
            self.idle_watch.next_watch(entered)
        };
        // Set once the queues have been found empty: work after that
        // arrived during the watch.
        let mut watching = false;
        loop {
            let ran = self.run_tasks(BATCH);
            let now = Instant::now();
            if ran > 0 {
                if watching && !hurrying {
                    self.shared.count_watch_hit();
                }
                watching = false;
                last_work = now;
                if now.duration_since(entered) >= MAX_TURN_IN_PARK_HOOK {
                    // Still busy: let tokio poll its timers and sockets
                    // without sleeping, then come back through `serve`.
                    self.wake_main();
                    return;
                }
                continue;
            }
            let idle_for = now.duration_since(last_work);
            if idle_for >= spin {
                if !spin.is_zero() && !hurrying {
                    self.idle_watch.miss(idle_for);
                    self.shared.count_watch_miss(idle_for);
                }
                break;
            }
            if self.shared.stop_sent.load(Ordering::Acquire) && !self.stopping.get() {
                break;
            }
            watching = true;
            if idle_for < PURE_SPIN {
                // One pause per look, not a burst: a `pause` takes about
                // 140 cycles on Intel cores since Skylake (Intel's
                // optimization reference manual), so a burst of 32 left
                // up to 1.5 µs between looks, all of it added to the
                // latency of whatever arrived meanwhile. Interleaved runs
                // of a cross-worker ask (1 vs 32 pauses, 10 rounds of
                // 500,000 asks each): median 1.83 vs 2.13 µs per round
                // trip with glibc's allocator, 1.61 vs 1.86 µs with
                // mimalloc.
                std::hint::spin_loop();
            } else {
                // Past the first microseconds, give the CPU to any other
                // runnable thread between looks: with more threads than
                // CPUs, the thread this worker waits for may need this one.
                std::thread::yield_now();
            }
        }
        if hurrying {
            self.hurried.set(self.hurried.get() + entered.elapsed());
        }
        if let Some(task) = self.arm_remote() {
            self.local_queue.borrow_mut().push_back(task);
            self.wake_main();
        }
    }

    /// Registers the main waker with the remote queue, so that the next
    /// remote push wakes the runtime. Returns a task that arrived meanwhile.
    fn arm_remote(&self) -> Option<Arc<dyn Runnable>> {
        let waker = self.main_waker.borrow().clone()?;
        let mut cx = Context::from_waker(&waker);
        match self.remote.borrow_mut().poll_recv(&mut cx) {
            Poll::Ready(Some(task)) => {
                self.shared.count_handoff();
                Some(task)
            }
            Poll::Ready(None) | Poll::Pending => None,
        }
    }

    /// Aborts every task this worker still has: started ones from the
    /// registry, queued ones from both queues. Returns how many it aborted.
    fn abort_all(&self) -> usize {
        let mut aborted = 0;
        let started = self.registry.borrow_mut().take_all();
        for task in started {
            task.registry_slot()
                .store(NOT_REGISTERED, Ordering::Relaxed);
            aborted += usize::from(task.abort_now());
        }
        loop {
            let queued = self.local_queue.borrow_mut().pop_front();
            let Some(task) = queued.or_else(|| self.remote.borrow_mut().try_recv().ok()) else {
                break;
            };
            aborted += usize::from(task.abort_now());
        }
        aborted
    }

    /// After the worker's last poll: refuse further remote pushes and abort
    /// what raced in before the refusal.
    ///
    /// First it parks a no-op waker in the remote queue in place of the
    /// runtime's. The queue outlives the worker (every task and the
    /// executor hold its sending side), and the runtime's waker would keep
    /// the runtime's driver alive with it, so the driver's descriptors
    /// (epoll, eventfd, timer) would be closed by whichever thread drops the
    /// executor last: on a daemon's way out, the thread that `run` returns
    /// on. Replaced, they are closed here, with the runtime.
    fn close(&self) {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            // The borrow ends before the abort, which may touch the queue.
            let next = self.remote.borrow_mut().poll_recv(&mut cx);
            let Poll::Ready(Some(task)) = next else {
                break;
            };
            task.abort_now();
        }
        self.remote.borrow_mut().close();
        loop {
            let next = self.remote.borrow_mut().try_recv();
            match next {
                Ok(task) => {
                    task.abort_now();
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
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
    /// Idle watches that found work before they ran out (see
    /// [`ExecutorBuilder::idle_spin`](super::ExecutorBuilder::idle_spin)).
    pub idle_watch_hits: u64,
    /// Idle watches that ran out with no work, after which the worker
    /// parked.
    pub idle_watch_misses: u64,
    /// The time those watches took: CPU spent watching for nothing. The
    /// watch budget keeps it to about 1% of the worker's wall time, plus
    /// a burst of 50 watches (`idle_spin`'s docs).
    pub idle_watch_missed_time: Duration,
    /// Tasks this worker took from its remote queue: spawns and wake-ups
    /// handed over by other threads. (Workers never steal, so this is the
    /// only way work moves between them.)
    pub handoffs: u64,
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
    /// Wakes async waiters (`ExecutorDrain::finished`) when the
    /// last worker exits: waking them at each exit would only put them
    /// back to sleep.
    pub(crate) exited: Arc<tokio::sync::Notify>,
    /// Workers that have not exited yet.
    pub(crate) running: Arc<AtomicUsize>,
    /// The stuck-worker watch (watch.rs), told when the watcher exits.
    pub(crate) watch: Arc<ShutdownWatch>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        // The executor may be gone; then nobody is waiting.
        let _ = self.exits.send(self.index);
        let last = self.running.fetch_sub(1, Ordering::AcqRel) == 1;
        let watcher_gave_up = self.watch.worker_exited(self.index);
        if last || watcher_gave_up {
            self.exited.notify_waiters();
        }
    }
}

/// A worker's shared half and the receiving end of its remote queue,
/// created together by the builder.
pub(crate) fn new_worker(
    me: CurrentWorker,
) -> (Arc<WorkerShared>, mailbox::Receiver<Arc<dyn Runnable>>) {
    let (remote, inbox) = mailbox::unbounded();
    let shared = Arc::new(WorkerShared {
        me,
        remote,
        spawned: AtomicU64::new(0),
        alive: AtomicUsize::new(0),
        polls: AtomicU64::new(0),
        watch_hits: AtomicU64::new(0),
        watch_misses: AtomicU64::new(0),
        watch_missed_nanos: AtomicU64::new(0),
        handoffs: AtomicU64::new(0),
        aborted_at_deadline: AtomicUsize::new(0),
        hurry: AtomicBool::new(false),
        stop_sent: AtomicBool::new(false),
    });
    (shared, inbox)
}

/// Everything a worker thread needs, moved into it at start.
pub(crate) struct WorkerStart {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) shared: Arc<WorkerShared>,
    pub(crate) inbox: mailbox::Receiver<Arc<dyn Runnable>>,
    pub(crate) idle_spin: Duration,
    /// The CPU to pin to, if pinning is on.
    pub(crate) pin_to: Option<Cpu>,
    /// Set by the first worker whose pinning is refused, so the refusal
    /// is logged once per executor, not once per worker.
    pub(crate) pin_refusal_logged: Arc<AtomicBool>,
    /// Receives the pinning outcome before any task runs.
    pub(crate) pinned: mpsc::Sender<Option<Cpu>>,
    /// Receives the shutdown deadline; a dropped sender means "now".
    pub(crate) stop: oneshot::Receiver<Instant>,
    /// The executor's stuck-worker watch (watch.rs).
    pub(crate) watch: Arc<ShutdownWatch>,
    pub(crate) exit: ExitGuard,
}

/// The runtime's park hook (see the module docs). Does nothing on a
/// thread that is not a worker, such as the blocking pool's.
pub(crate) fn before_park() {
    if let Some(local) = local() {
        local.before_park();
    }
}

/// The body of a worker thread.
pub(crate) fn run(start: WorkerStart) {
    let WorkerStart {
        runtime,
        shared,
        inbox,
        idle_spin,
        pin_to,
        pin_refusal_logged,
        pinned,
        stop,
        watch,
        exit,
    } = start;
    // First: see `EXIT_REPORT`. Were the thread-local already destroyed
    // (it cannot be, this early), the guard reports at once instead.
    let _ = EXIT_REPORT.try_with(|slot| *slot.borrow_mut() = Some(exit));
    let outcome =
        pin_to.and_then(|cpu| pin_current_thread(cpu, shared.me.index, &pin_refusal_logged));
    let local = Rc::new(WorkerLocal {
        shared: shared.clone(),
        local_queue: RefCell::new(VecDeque::new()),
        remote: RefCell::new(inbox),
        registry: RefCell::new(Registry::default()),
        main_waker: RefCell::new(None),
        running: Cell::new(false),
        main_woken: Cell::new(false),
        stopping: Cell::new(false),
        idle_watch: AdaptiveSpin::new(idle_spin, Instant::now()),
        hurried: Cell::new(Duration::ZERO),
    });
    LOCAL.with(|slot| *slot.borrow_mut() = Some(local.clone()));
    // The builder waits for this before it returns.
    let _ = pinned.send(outcome);
    // Dropped once the tasks have ended, or by unwinding on a panic.
    let drain = DrainReport(watch.clone());
    let aborted = runtime.block_on(Serve::new(local.clone(), stop));
    shared.aborted_at_deadline.store(aborted, Ordering::Release);
    drop(drain);
    // The worker that began the shutdown waits here for any still running
    // (see watch.rs); every other worker goes straight on.
    if watch.must_watch(shared.me.index) {
        runtime.block_on(watch.watch());
    }
    local.close();
    // Tokio tasks that user code spawned on this runtime are dropped with it.
    drop(runtime);
    LOCAL.with(|slot| *slot.borrow_mut() = None);
}

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

/// The runtime's `block_on` future: runs the queues until told to stop,
/// then until the worker's tasks have all ended or the deadline passes.
/// Resolves to the number of tasks the deadline aborted.
struct Serve {
    local: Rc<WorkerLocal>,
    stop: oneshot::Receiver<Instant>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Serve {
    fn new(local: Rc<WorkerLocal>, stop: oneshot::Receiver<Instant>) -> Self {
        Serve {
            local,
            stop,
            deadline: None,
        }
    }
}

impl Future for Serve {
    type Output = usize;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let this = self.get_mut();
        let local = &*this.local;
        local.main_woken.set(false);
        {
            let mut main_waker = local.main_waker.borrow_mut();
            if !main_waker
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
            {
                *main_waker = Some(cx.waker().clone());
            }
        }
        let tokio_tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        if local.run_for(MAX_TURN_IN_PARK_HOOK) && tokio_tasks > 0 {
            // More is queued, and busy tokio tasks could keep the runtime
            // from parking (and so from calling the park hook, which
            // otherwise picks the work up): come back after tokio's turn.
            local.wake_main();
        }
        if this.deadline.is_none()
            && let Poll::Ready(deadline) = Pin::new(&mut this.stop).poll(cx)
        {
            // A dropped sender (the executor dropped without `shutdown`)
            // means stop now.
            let deadline = deadline.unwrap_or_else(|_| Instant::now());
            local.stopping.set(true);
            this.deadline = Some(Box::pin(tokio::time::sleep_until(deadline.into())));
        }
        if let Some(deadline) = this.deadline.as_mut() {
            if local.shared.alive.load(Ordering::Acquire) == 0 {
                return Poll::Ready(0);
            }
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(local.abort_all());
            }
        }
        if tokio_tasks > 0 {
            // tokio tasks share the thread and may keep it from parking,
            // so the park hook may not run: listen for remote work now.
            if let Some(task) = local.arm_remote() {
                local.local_queue.borrow_mut().push_back(task);
                local.wake_main();
            }
        }
        Poll::Pending
    }
}
