//! The blocking pool: threads for synchronous work, kept off the workers.
//!
//! A closure that blocks (file I/O without async, a C library, a long
//! computation) would stall every task on a worker, so
//! [`Executor::spawn_blocking`](super::Executor::spawn_blocking) sends it
//! here instead.
//!
//! The pool is tokio's blocking pool, owned by a small tokio runtime with
//! one driver thread, started at the first [`BlockingPool::spawn`]: an
//! executor that never runs blocking work has no thread for it, so it has
//! nothing to wake when it idles and nothing to stop when it exits.
//!
//! Pinning needs care: Linux gives a new thread the CPU mask of the thread
//! that creates it, and the first `spawn` may come from a pinned worker.
//! So the pool records the mask the process had when the executor was
//! built (before any worker was pinned), and every thread of the pool, the
//! driver and each blocking thread, takes that mask as it starts. Blocking
//! threads may run on every CPU the process is allowed, and never compete
//! with a worker for its core.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use super::task::{JoinError, JoinHandle};
use crate::lock::lock;

/// The blocking pool. See the module docs.
#[derive(Debug)]
pub(crate) struct BlockingPool {
    thread_name: String,
    max_threads: usize,
    /// The process's CPU mask when the executor was built; `None` if it
    /// could not be read (then threads keep the mask they inherit).
    mask: Option<CpuMask>,
    state: Mutex<PoolState>,
}

/// Where the pool is in its life.
#[derive(Debug)]
enum PoolState {
    /// No blocking work was asked for yet: no thread.
    NotStarted,
    Running(tokio::runtime::Runtime),
    /// `shutdown` ran; later work is refused.
    ShutDown,
}

impl BlockingPool {
    /// Records the calling thread's CPU mask, for the threads the pool
    /// will start. At most `max_threads` closures will run at once; more
    /// wait in a queue.
    pub(crate) fn new(thread_name: &str, max_threads: usize) -> Self {
        BlockingPool {
            thread_name: format!("{thread_name}-blk"),
            max_threads,
            mask: CpuMask::of_this_thread(),
            state: Mutex::new(PoolState::NotStarted),
        }
    }

    /// Runs `f` on a blocking thread, starting the pool if this is its
    /// first work.
    pub(crate) fn spawn<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let mut state = lock(&self.state);
        if matches!(*state, PoolState::NotStarted) {
            match self.start() {
                Ok(runtime) => *state = PoolState::Running(runtime),
                Err(err) => {
                    return JoinHandle::failed(JoinError::NoThread {
                        error: err.to_string(),
                    });
                }
            }
        }
        let PoolState::Running(runtime) = &*state else {
            return JoinHandle::rejected();
        };
        let on_driver =
            runtime.spawn(async move { AbortOnDrop(tokio::task::spawn_blocking(f)).await });
        JoinHandle::blocking(on_driver)
    }

    fn start(&self) -> io::Result<tokio::runtime::Runtime> {
        let mask = self.mask;
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(self.max_threads)
            .thread_name(self.thread_name.clone())
            .on_thread_start(move || {
                if let Some(mask) = mask {
                    mask.apply_to_this_thread();
                }
            })
            .build()
    }

    /// Stops the pool, waiting up to `timeout` for running closures. A
    /// closure still running after that is left to finish on its own
    /// thread; nothing can interrupt it.
    pub(crate) fn shutdown(&self, timeout: Duration) {
        let previous = std::mem::replace(&mut *lock(&self.state), PoolState::ShutDown);
        if let PoolState::Running(runtime) = previous {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Waiting would block a runtime thread, which tokio forbids.
                runtime.shutdown_background();
            } else {
                runtime.shutdown_timeout(timeout);
            }
        }
    }
}

impl Drop for BlockingPool {
    fn drop(&mut self) {
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let PoolState::Running(runtime) = std::mem::replace(state, PoolState::ShutDown) {
            // `Drop` may run inside a task; this never blocks.
            runtime.shutdown_background();
        }
    }
}

/// A thread's CPU affinity mask (`sched_getaffinity(2)`).
#[derive(Clone, Copy)]
struct CpuMask(libc::cpu_set_t);

impl std::fmt::Debug for CpuMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: `CPU_COUNT` only reads the set.
        let count = unsafe { libc::CPU_COUNT(&self.0) };
        write!(f, "CpuMask({count} CPUs)")
    }
}

impl CpuMask {
    /// The calling thread's mask, or `None` if the kernel refuses it
    /// (more CPUs than a `cpu_set_t` holds).
    fn of_this_thread() -> Option<Self> {
        // SAFETY: an all-zero `cpu_set_t` is a valid, empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a writable `cpu_set_t` of the size passed; pid 0
        // is the calling thread.
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        (rc == 0).then_some(CpuMask(set))
    }

    /// Gives the calling thread this mask. A refusal (a CPU went offline)
    /// leaves the inherited mask, which is only less spread.
    fn apply_to_this_thread(&self) {
        // SAFETY: `self.0` is a valid `cpu_set_t` of the size passed, read
        // by the kernel only; pid 0 is the calling thread.
        let rc =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) };
        if rc != 0 {
            tracing::debug!(
                err = %io::Error::last_os_error(),
                "a blocking-pool thread kept its inherited CPU mask"
            );
        }
    }
}

/// Aborts the blocking closure when its waiter is dropped (the caller
/// aborted), so a closure that has not started yet never starts.
struct AbortOnDrop<R>(tokio::task::JoinHandle<R>);

impl<R> Future for AbortOnDrop<R> {
    type Output = Result<R, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<R> Drop for AbortOnDrop<R> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
