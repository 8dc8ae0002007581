//! The blocking pool: threads for synchronous work, kept off the workers.
//!
//! A closure that blocks (file I/O without async, a C library, a long
//! computation) would stall every task on a worker, so
//! [`Executor::spawn_blocking`](super::Executor::spawn_blocking) sends it
//! here instead.
//!
//! The pool is tokio's blocking pool, owned by a small tokio runtime with
//! one driver thread. The indirection matters for pinning: Linux gives a new
//! thread the CPU mask of the thread that creates it, and tokio creates a
//! blocking thread from whichever thread asks for one. Were a pinned worker
//! to ask, the blocking thread would be pinned to that worker's core and
//! compete with it. Here the driver, an unpinned thread started before any
//! worker is pinned, always does the asking, so blocking threads may run on
//! every CPU the process is allowed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use super::task::JoinHandle;

/// The blocking pool. See the module docs.
#[derive(Debug)]
pub(crate) struct BlockingPool {
    handle: tokio::runtime::Handle,
    /// Taken by `shutdown`; dropped in the background otherwise.
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl BlockingPool {
    /// Starts the driver thread. At most `max_threads` closures run at
    /// once; more wait in a queue.
    pub(crate) fn new(thread_name: &str, max_threads: usize) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(max_threads)
            .thread_name(format!("{thread_name}-blk"))
            .build()?;
        Ok(BlockingPool {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
        })
    }

    /// Runs `f` on a blocking thread.
    pub(crate) fn spawn<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        // The driver calls `spawn_blocking`, so the driver's (unpinned) CPU
        // mask is what the new thread inherits.
        let on_driver = self
            .handle
            .spawn(async move { AbortOnDrop(tokio::task::spawn_blocking(f)).await });
        JoinHandle::blocking(on_driver)
    }

    /// Stops the pool, waiting up to `timeout` for running closures. A
    /// closure still running after that is left to finish on its own
    /// thread; nothing can interrupt it.
    pub(crate) fn shutdown(&self, timeout: Duration) {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(runtime) = runtime {
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
        let runtime = self
            .runtime
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(runtime) = runtime {
            // `Drop` may run inside a task; this never blocks.
            runtime.shutdown_background();
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
