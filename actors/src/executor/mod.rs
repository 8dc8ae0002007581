//! The executor: a pool of worker threads, pinned to cores in NUMA order.
//!
//! ```
//! use std::time::Duration;
//! use proc_daemon_actors::executor::Executor;
//!
//! let executor = Executor::builder().worker_threads(2).build()?;
//! let handle = executor.spawn(async {
//!     tokio::time::sleep(Duration::from_millis(1)).await;
//!     6 * 7
//! });
//! assert_eq!(handle.join()?, 42);
//! let report = executor.shutdown(Duration::from_secs(1))?;
//! assert_eq!(report.aborted_tasks, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Why not tokio's multi-thread runtime
//!
//! An actor owns its state and handles one message at a time, so it gains
//! nothing from moving between threads and loses its warm cache and its
//! NUMA-local memory each time it does. Each worker here is a named OS
//! thread running a tokio *current-thread* runtime: tokio timers, sockets
//! and `tokio::select!` work inside actors as usual, but a task stays on the
//! worker where it was spawned, and a wake-up from a task on the same
//! worker never crosses a core. There is no work stealing; placement is
//! decided once, at spawn.
//!
//! The tasks themselves do not go through tokio's scheduler: each worker
//! has its own run queues (`task.rs`, `worker.rs`), so that a wake-up from
//! another worker costs a queue push instead of tokio's eventfd write, and
//! a worker about to sleep first watches for such wake-ups for
//! [`ExecutorBuilder::idle_spin`]. docs/executor.md has the design and the
//! measurements behind it.
//!
//! # Placement
//!
//! - With `thread_pinning`, worker *i* is pinned to the *i*-th CPU of
//!   [`Topology::cpus_for_workers`]: node by node, physical cores before
//!   hyper-thread siblings, wrapping around when there are more workers
//!   than CPUs. Only CPUs the process may use are considered (its affinity
//!   mask, as set by `taskset` or a cgroup cpuset). Where the system refuses
//!   to pin, the executor logs one warning and runs that worker unpinned.
//! - [`Executor::spawn`] places round-robin. With `numa_aware`, a spawn from
//!   inside a worker stays among the workers of that worker's NUMA node;
//!   from any other thread, or without `numa_aware`, it cycles over all
//!   workers.
//! - [`Executor::spawn_on`] and [`Executor::spawn_on_node`] place
//!   explicitly; [`Executor::spawn_blocking`] sends synchronous work to a
//!   separate, unpinned blocking pool.
//!
//! # Shutdown
//!
//! [`Executor::shutdown`] stops accepting tasks, lets the running ones
//! finish until its timeout, drops (aborts) what is left, and joins the
//! worker threads. A worker stuck in blocking code cannot be interrupted;
//! it is reported in [`ShutdownReport::stuck_workers`] and left behind.
//! Dropping the last `Executor` handle without calling `shutdown` stops the
//! workers at once, aborting their tasks, and does not wait for them.
//!
//! Tasks that hold an `Executor` handle keep it alive, so call `shutdown`
//! rather than rely on drop.
//!
//! # Metrics
//!
//! [`Executor::metrics`] reads each worker's counters (tasks spawned,
//! alive, polls) from atomics, without a lock.
//!
//! The `performance.worker_threads`, `thread_pinning` and `numa_aware`
//! config keys map onto [`ExecutorBuilder`]; proc-daemon's
//! `PerformanceConfig::executor_builder` does the mapping.

mod blocking;
pub(crate) mod drain;
mod spin;
mod task;
pub(crate) mod task_state;
pub mod topology;
mod watch;
mod worker;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use blocking::BlockingPool;
use task::Task;
pub use drain::ExecutorDrain;
pub use task::{JoinError, JoinHandle};
use topology::Topology;
use watch::ShutdownWatch;
use worker::{CurrentWorker, ExitGuard, WorkerShared, WorkerStart};
pub use worker::{WorkerInfo, WorkerMetrics};

/// The default for [`ExecutorBuilder::idle_spin`].
pub const DEFAULT_IDLE_SPIN: Duration = Duration::from_micros(20);

/// The default for [`ExecutorBuilder::max_blocking_threads`], tokio's own.
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 512;

/// Gives each executor a number, so a worker thread knows which executor
/// it belongs to.
static NEXT_EXECUTOR_ID: AtomicU64 = AtomicU64::new(1);

/// Configures and starts an [`Executor`].
///
/// The defaults match proc-daemon's `[performance]` defaults: one worker
/// per allowed CPU, no pinning, no NUMA-local placement.
#[derive(Debug, Clone)]
pub struct ExecutorBuilder {
    worker_threads: usize,
    thread_pinning: bool,
    numa_aware: bool,
    thread_name: String,
    max_blocking_threads: usize,
    idle_spin: Duration,
    topology: Option<Topology>,
    #[cfg(feature = "test-util")]
    start_paused: bool,
}

impl Default for ExecutorBuilder {
    fn default() -> Self {
        ExecutorBuilder {
            worker_threads: 0,
            thread_pinning: false,
            numa_aware: false,
            thread_name: "pd-worker".to_owned(),
            max_blocking_threads: DEFAULT_MAX_BLOCKING_THREADS,
            idle_spin: DEFAULT_IDLE_SPIN,
            topology: None,
            #[cfg(feature = "test-util")]
            start_paused: false,
        }
    }
}

impl ExecutorBuilder {
    /// The number of workers; 0 means one per CPU the process may use.
    pub fn worker_threads(mut self, workers: usize) -> Self {
        self.worker_threads = workers;
        self
    }

    /// Pins each worker to one CPU, in NUMA order.
    pub fn thread_pinning(mut self, pin: bool) -> Self {
        self.thread_pinning = pin;
        self
    }

    /// Keeps a spawn from inside a worker on that worker's NUMA node.
    pub fn numa_aware(mut self, numa_aware: bool) -> Self {
        self.numa_aware = numa_aware;
        self
    }

    /// The prefix of the threads' names (default `pd-worker`): worker *i*
    /// is `{prefix}-{i}` and the blocking pool's threads are
    /// `{prefix}-blk`. Linux shows the first 15 bytes of a thread's name
    /// (in `top -H`, `/proc/*/task/*/comm`), so keep the prefix short.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// The most closures [`Executor::spawn_blocking`] runs at once; more
    /// wait in a queue. Must be at least 1.
    pub fn max_blocking_threads(mut self, threads: usize) -> Self {
        self.max_blocking_threads = threads;
        self
    }

    /// The longest a worker that has run out of tasks keeps watching for a
    /// task woken from another thread before it parks (default
    /// [`DEFAULT_IDLE_SPIN`]). Parking and being woken costs tens of
    /// microseconds on a virtual machine, far more than a message between
    /// two workers, so a short watch turns most cross-worker wake-ups into
    /// a few hundred nanoseconds.
    ///
    /// A worker that has just woken a task on another worker watches in
    /// full: an answer is likely on its way. Its other watches are
    /// budgeted: the time they spend finding no work is held to about 1% of
    /// the worker's wall time, with room for a burst of 50 such watches
    /// after a quiet spell, and a watch that finds work costs the budget
    /// nothing. So workers in a conversation, or whose messages come in
    /// quick succession, keep the watch, and a worker whose messages come
    /// from outside and far apart stops paying up to this much CPU each
    /// time it goes idle (docs/executor.md, "The idle watch").
    /// A watch also delays by up to this much a timer or socket event that
    /// arrives during it. `Duration::ZERO` parks at once, always. An idle
    /// worker never wakes up periodically either way.
    pub fn idle_spin(mut self, spin: Duration) -> Self {
        self.idle_spin = spin;
        self
    }

    /// Places workers by `topology` instead of the detected one. For tests
    /// and for callers that detect the topology themselves (for example
    /// with hwloc).
    pub fn topology(mut self, topology: Topology) -> Self {
        self.topology = Some(topology);
        self
    }

    /// Starts every worker's clock paused, as tokio's `start_paused` does
    /// (feature `test-util`): time stands still until every task on a
    /// worker waits on a timer, then jumps to the earliest one. For testing
    /// timeouts, backoff and health checks without waiting for them. Each
    /// worker has its own clock, so use one worker when tasks on several
    /// compare times.
    #[cfg(feature = "test-util")]
    pub fn start_paused(mut self, paused: bool) -> Self {
        self.start_paused = paused;
        self
    }

    /// Starts the workers and the blocking pool. Returns once every worker
    /// is running and pinned (or has logged that it could not be).
    pub fn build(self) -> Result<Executor, ExecutorError> {
        if self.max_blocking_threads == 0 {
            return Err(ExecutorError::NoBlockingThreads);
        }
        let topology = self.topology.unwrap_or_else(Topology::detect);
        let cpus = topology.cpus_for_workers();
        if cpus.is_empty() {
            return Err(ExecutorError::NoCpus);
        }
        let worker_count = if self.worker_threads == 0 {
            cpus.len()
        } else {
            self.worker_threads
        };
        let id = NEXT_EXECUTOR_ID.fetch_add(1, Ordering::Relaxed);
        // Made first, on this (unpinned) thread, whose CPU mask it keeps
        // for its threads: see blocking.rs.
        let blocking = BlockingPool::new(&self.thread_name, self.max_blocking_threads);
        let (exits_tx, exits_rx) = mpsc::channel();
        let exit_notify = Arc::new(tokio::sync::Notify::new());
        let running_workers = Arc::new(AtomicUsize::new(worker_count));
        let watch = Arc::new(ShutdownWatch::new(worker_count));
        let pin_refusal_logged = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(worker_count);
        let mut startups = Vec::with_capacity(worker_count);
        for index in 0..worker_count {
            let cpu = cpus[index % cpus.len()];
            let node = topology.node_of(cpu).unwrap_or(0);
            let mut runtime = tokio::runtime::Builder::new_current_thread();
            runtime.enable_all().on_thread_park(worker::before_park);
            #[cfg(feature = "test-util")]
            runtime.start_paused(self.start_paused);
            let runtime = runtime.build().map_err(ExecutorError::Runtime)?;
            let (shared, inbox) = worker::new_worker(CurrentWorker {
                executor: id,
                index,
            });
            let (stop_tx, stop_rx) = oneshot::channel();
            let (pinned_tx, pinned_rx) = mpsc::channel();
            let thread_name = format!("{}-{index}", self.thread_name);
            let start = WorkerStart {
                runtime,
                shared: shared.clone(),
                inbox,
                idle_spin: self.idle_spin,
                pin_to: self.thread_pinning.then_some(cpu),
                pin_refusal_logged: pin_refusal_logged.clone(),
                pinned: pinned_tx,
                stop: stop_rx,
                watch: watch.clone(),
                exit: ExitGuard {
                    index,
                    exits: exits_tx.clone(),
                    exited: exit_notify.clone(),
                    running: running_workers.clone(),
                    watch: watch.clone(),
                },
            };
            // Detached: the worker reports its own exit (see
            // `ExecutorDrain::wait`), so the handle is never joined.
            std::thread::Builder::new()
                .name(thread_name.clone())
                .spawn(move || worker::run(start))
                .map_err(|source| ExecutorError::Thread {
                    name: thread_name.clone(),
                    source,
                })?;
            startups.push(pinned_rx);
            workers.push(Worker {
                info: WorkerInfo {
                    index,
                    node,
                    pinned_cpu: None,
                    thread_name,
                },
                shared,
                stop: Mutex::new(Some(stop_tx)),
            });
        }
        for (worker, pinned) in workers.iter_mut().zip(startups) {
            // An error means the thread died before it reported. Returning
            // drops the stop senders, which stops the other workers.
            worker.info.pinned_cpu = pinned.recv().map_err(|_| ExecutorError::WorkerDied {
                name: worker.info.thread_name.clone(),
            })?;
        }
        let mut nodes: Vec<NodeWorkers> = Vec::new();
        for worker in &workers {
            match nodes.iter_mut().find(|node| node.id == worker.info.node) {
                Some(node) => node.workers.push(worker.info.index),
                None => nodes.push(NodeWorkers {
                    id: worker.info.node,
                    workers: vec![worker.info.index],
                    next: AtomicUsize::new(0),
                }),
            }
        }
        let exited = Mutex::new(vec![false; workers.len()]);
        Ok(Executor {
            inner: Arc::new(Inner {
                id,
                workers,
                nodes,
                next: AtomicUsize::new(0),
                numa_aware: self.numa_aware,
                accepting: AtomicBool::new(true),
                exits: Mutex::new(exits_rx),
                exited,
                exit_notify,
                watch,
                shutdown_window: Mutex::new(None),
                blocking,
                topology,
            }),
        })
    }
}

/// The executor could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// The topology holds no CPU this process may use.
    #[error("no CPU to run executor workers on: the topology and the affinity mask share none")]
    NoCpus,
    /// `max_blocking_threads` was 0.
    #[error("max_blocking_threads must be at least 1")]
    NoBlockingThreads,
    /// A tokio runtime could not be created.
    #[error("could not create a worker's tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A worker thread exited before it was ready (it panicked while
    /// starting).
    #[error("executor thread `{name}` died while starting")]
    WorkerDied {
        /// The thread's name.
        name: String,
    },
    /// A worker thread could not be started.
    #[error("could not start executor thread `{name}`: {source}")]
    Thread {
        /// The thread's name.
        name: String,
        /// Why the OS refused.
        #[source]
        source: std::io::Error,
    },
}

/// A spawn named a worker or node that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// [`Executor::spawn_on`] got an index past the last worker.
    #[error("no worker {worker}: the executor has {workers} (0..{workers})")]
    NoSuchWorker {
        /// The index asked for.
        worker: usize,
        /// How many workers there are.
        workers: usize,
    },
    /// [`Executor::spawn_on_node`] got a node with no worker on it.
    #[error("no worker on NUMA node {node}; workers are on nodes {nodes:?}")]
    NoWorkerOnNode {
        /// The node asked for.
        node: usize,
        /// The nodes that have workers.
        nodes: Vec<usize>,
    },
}

/// [`Executor::shutdown`] could not finish its work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// It was called from a task on one of the executor's own workers,
    /// which cannot wait for itself to exit. The workers were told to stop
    /// at the deadline; nothing waited for them.
    #[error(
        "Executor::shutdown was called from its own worker {worker}, which cannot wait for itself; the workers will stop at the deadline"
    )]
    CalledFromOwnWorker {
        /// The calling worker.
        worker: usize,
    },
    /// Another call already shut the executor down.
    #[error("the executor is already shut down")]
    AlreadyShutDown,
    /// [`ExecutorDrain::wait`] was called before
    /// [`ExecutorDrain::begin`].
    #[error("ExecutorDrain::wait was called before ExecutorDrain::begin")]
    NotStarted,
}

/// What [`Executor::shutdown`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Tasks still running at the timeout, which were dropped (aborted).
    pub aborted_tasks: usize,
    /// Workers that had not exited by the deadline plus
    /// [`ABORT_GRACE`](drain::ABORT_GRACE) (100 ms):
    /// a task on them blocks the thread. Their threads are left running.
    pub stuck_workers: Vec<usize>,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

/// A pool of worker threads running tasks. Cloning gives another handle to
/// the same pool. See the module docs.
#[derive(Debug, Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    workers: Vec<Worker>,
    nodes: Vec<NodeWorkers>,
    /// The round-robin cursor over all workers.
    next: AtomicUsize,
    numa_aware: bool,
    accepting: AtomicBool,
    /// Each worker thread sends its index here as it exits.
    exits: Mutex<mpsc::Receiver<usize>>,
    /// Which workers have exited, from `exits`.
    exited: Mutex<Vec<bool>>,
    /// Notified by each worker as it exits, after its `exits` send.
    exit_notify: Arc<tokio::sync::Notify>,
    /// Gives up on stuck workers for `ExecutorDrain::finished` (watch.rs).
    watch: Arc<ShutdownWatch>,
    /// When shutdown began, and its deadline.
    shutdown_window: Mutex<Option<(Instant, Instant)>>,
    blocking: BlockingPool,
    topology: Topology,
}

#[derive(Debug)]
struct Worker {
    info: WorkerInfo,
    shared: Arc<WorkerShared>,
    /// Taken by shutdown to send the deadline; dropping it stops the
    /// worker at once.
    stop: Mutex<Option<oneshot::Sender<Instant>>>,
}

/// The workers of one NUMA node, with their own round-robin cursor.
#[derive(Debug)]
struct NodeWorkers {
    id: usize,
    workers: Vec<usize>,
    next: AtomicUsize,
}

/// Two handles are equal when they are handles of the same executor.
impl PartialEq for Executor {
    fn eq(&self, other: &Executor) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Executor {}

impl Executor {
    /// A builder with proc-daemon's `[performance]` defaults.
    pub fn builder() -> ExecutorBuilder {
        ExecutorBuilder::default()
    }

    /// Spawns `future` on a worker chosen by the placement policy (see the
    /// module docs). After shutdown has begun the handle reports
    /// [`JoinError::ShutDown`] and the future is dropped unpolled.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let worker = self.pick_worker();
        self.spawn_on_worker(worker, future)
    }

    /// Spawns `future` on worker `worker` (an index below
    /// [`worker_count`](Self::worker_count)).
    pub fn spawn_on<F>(&self, worker: usize, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if worker >= self.inner.workers.len() {
            return Err(SpawnError::NoSuchWorker {
                worker,
                workers: self.inner.workers.len(),
            });
        }
        Ok(self.spawn_on_worker(worker, future))
    }

    /// Spawns `future` on a worker of NUMA node `node` (the kernel's node
    /// number), round-robin among that node's workers.
    pub fn spawn_on_node<F>(
        &self,
        node: usize,
        future: F,
    ) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Some(workers) = self.inner.nodes.iter().find(|n| n.id == node) else {
            return Err(SpawnError::NoWorkerOnNode {
                node,
                nodes: self.inner.nodes.iter().map(|n| n.id).collect(),
            });
        };
        let worker = workers.pick();
        Ok(self.spawn_on_worker(worker, future))
    }

    /// Runs the synchronous `f` on the blocking pool, off the workers. The
    /// pool's threads are not pinned. After shutdown has begun the handle
    /// reports [`JoinError::ShutDown`].
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if !self.inner.accepting.load(Ordering::Acquire) {
            return JoinHandle::rejected();
        }
        self.inner.blocking.spawn(f)
    }

    /// How many workers there are.
    pub fn worker_count(&self) -> usize {
        self.inner.workers.len()
    }

    /// Where each worker runs: its node and the CPU it is pinned to.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.inner
            .workers
            .iter()
            .map(|worker| worker.info.clone())
            .collect()
    }

    /// Each worker's counters, read without a lock.
    pub fn metrics(&self) -> Vec<WorkerMetrics> {
        self.inner
            .workers
            .iter()
            .map(|worker| worker.shared.metrics())
            .collect()
    }

    /// The topology the workers were placed by.
    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// The index of the worker the calling thread is, if it is one of this
    /// executor's workers.
    pub fn current_worker(&self) -> Option<usize> {
        worker::current()
            .filter(|current| current.executor == self.inner.id)
            .map(|current| current.index)
    }

    /// Stops the executor: refuses new tasks, lets running tasks finish
    /// until `timeout`, aborts the rest, waits for the workers to exit and
    /// stops the blocking pool. Blocks the calling thread; from async code, call
    /// it through `spawn_blocking` (of another runtime). See
    /// [`ShutdownReport`] for what it reports.
    pub fn shutdown(&self, timeout: Duration) -> Result<ShutdownReport, ShutdownError> {
        let drain = self.drain();
        drain.begin(timeout)?;
        if let Some(worker) = self.current_worker() {
            self.inner.blocking.shutdown(Duration::ZERO);
            return Err(ShutdownError::CalledFromOwnWorker { worker });
        }
        drain.wait()
    }

    /// The same shutdown as [`shutdown`](Self::shutdown), in steps that
    /// never block until the last: for code that must begin the shutdown
    /// on a worker and wait for it elsewhere, or wait without blocking a
    /// thread. See [`ExecutorDrain`].
    pub fn drain(&self) -> ExecutorDrain {
        ExecutorDrain::new(self.clone())
    }

    fn pick_worker(&self) -> usize {
        let inner = &*self.inner;
        if inner.numa_aware
            && let Some(current) = self.current_worker()
        {
            let node = inner.workers[current].info.node;
            if let Some(node) = inner.nodes.iter().find(|n| n.id == node) {
                return node.pick();
            }
        }
        inner.next.fetch_add(1, Ordering::Relaxed) % inner.workers.len()
    }

    fn spawn_on_worker<F>(&self, index: usize, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if !self.inner.accepting.load(Ordering::Acquire) {
            return JoinHandle::rejected();
        }
        let worker = &self.inner.workers[index].shared;
        worker.task_spawned();
        let task = Task::new(future, worker.clone());
        worker::schedule(worker, task.clone());
        JoinHandle::task(task)
    }
}

impl NodeWorkers {
    fn pick(&self) -> usize {
        self.workers[self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len()]
    }
}
