//! The executor's shutdown in steps: [`ExecutorDrain`].
//!
//! [`Executor::shutdown`] blocks the calling thread until the workers have
//! exited, and refuses to run on one of the executor's own workers (which
//! cannot wait for itself). A daemon needs the same shutdown split up: its
//! root actor, on a worker, decides when the shutdown begins; `Daemon::run`,
//! on the caller's runtime, waits for it without blocking a thread and
//! reads the report. `ExecutorDrain` is that split, and `shutdown` is
//! built from it.
//!
//! ```
//! use std::time::Duration;
//! use proc_daemon_actors::executor::Executor;
//!
//! let executor = Executor::builder().worker_threads(2).build()?;
//! let drain = executor.drain();
//! let on_worker = drain.clone();
//! // Begun from a task on a worker, which `shutdown` would refuse.
//! executor
//!     .spawn(async move { on_worker.begin(Duration::from_secs(1)) })
//!     .join()??;
//! // Awaited from a runtime of the caller's own, without blocking it.
//! tokio::runtime::Builder::new_current_thread()
//!     .enable_time()
//!     .build()?
//!     .block_on(drain.finished());
//! assert!(drain.is_finished());
//! let report = drain.wait()?;
//! assert!(report.stuck_workers.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The steps, in order:
//!
//! 1. [`prepare`](ExecutorDrain::prepare), optional: a shutdown is coming,
//!    so an idle worker spins briefly instead of sleeping.
//! 2. [`begin`](ExecutorDrain::begin): stop accepting tasks and give the
//!    running ones until the timeout. Never blocks.
//! 3. [`finished`](ExecutorDrain::finished) (async) or
//!    [`is_finished`](ExecutorDrain::is_finished) (a poll): whether the
//!    workers have exited.
//! 4. [`wait`](ExecutorDrain::wait): the [`ShutdownReport`]; blocks until
//!    the workers have exited or the deadline plus a short grace has passed.

use std::time::{Duration, Instant};

use super::{Executor, ShutdownError, ShutdownReport};
use crate::lock::lock;

/// After the shutdown deadline, how long the workers get to drop the
/// tasks they abort before a worker that has not exited counts as stuck.
pub const ABORT_GRACE: Duration = Duration::from_millis(100);

/// A handle on one executor's shutdown, from [`Executor::drain`]. Cloning
/// gives another handle on the same shutdown. See the module docs.
#[derive(Debug, Clone)]
pub struct ExecutorDrain {
    executor: Executor,
}

impl ExecutorDrain {
    pub(super) fn new(executor: Executor) -> Self {
        ExecutorDrain { executor }
    }

    /// Tells the workers that a shutdown is under way, before it reaches
    /// the executor. Until the executor stops, an idle worker watches its
    /// queues for up to 250 µs before it sleeps (instead of
    /// [`idle_spin`](super::ExecutorBuilder::idle_spin)), and at most 20 ms
    /// in all per worker.
    ///
    /// A staged shutdown is a chain of hand-offs between workers: a
    /// cancelled task wakes on one worker, reports to its supervisor on
    /// another, which stops the next child, and finally every worker is
    /// told to exit. Waking a sleeping thread costs on the order of 100 µs
    /// on a small VM, more than the work itself; a worker that is spinning
    /// picks the hand-off up at once. A daemon calls this when its shutdown
    /// begins; [`begin`](Self::begin) calls it too.
    pub fn prepare(&self) {
        for worker in &self.executor.inner.workers {
            worker.shared.hurry();
        }
    }

    /// Stops accepting tasks and tells every worker to finish its tasks by
    /// `timeout` from now, then exit. Never blocks, and may be called from
    /// a task on one of the executor's workers.
    ///
    /// # Errors
    ///
    /// [`ShutdownError::AlreadyShutDown`] when the shutdown had already
    /// begun (through any handle, or [`Executor::shutdown`]).
    pub fn begin(&self, timeout: Duration) -> Result<(), ShutdownError> {
        self.prepare();
        let inner = &self.executor.inner;
        let started = Instant::now();
        if !inner.accepting.swap(false, std::sync::atomic::Ordering::AcqRel) {
            return Err(ShutdownError::AlreadyShutDown);
        }
        let deadline = started + timeout;
        *lock(&inner.shutdown_window) = Some((started, deadline));
        // Before any stop is sent: a worker that drains must find it.
        inner.watch.begin(self.executor.current_worker(), deadline);
        for worker in &inner.workers {
            let stop = lock(&worker.stop).take();
            if let Some(stop) = stop {
                worker.shared.stop_sent();
                // The worker may have exited already (a panic outside a
                // task); then there is nothing to stop.
                let _ = stop.send(deadline);
            }
        }
        Ok(())
    }

    /// Whether every worker has exited, without waiting: then
    /// [`wait`](Self::wait) returns without blocking on the workers.
    pub fn is_finished(&self) -> bool {
        let inner = &self.executor.inner;
        let exits = lock(&inner.exits);
        let mut exited = lock(&inner.exited);
        while let Ok(index) = exits.try_recv() {
            exited[index] = true;
        }
        exited.iter().all(|&done| done)
    }

    /// Resolves once every worker has exited (see
    /// [`is_finished`](Self::is_finished)), from any runtime, without
    /// blocking a thread.
    ///
    /// A worker stuck in blocking code never exits. When
    /// [`begin`](Self::begin) was called from one of this executor's
    /// workers and that worker's own tasks ran until the deadline (or were
    /// aborted there), it gives up on the stuck ones at the deadline plus
    /// [`ABORT_GRACE`], and this resolves once it has exited;
    /// [`wait`](Self::wait) then lists them in
    /// [`ShutdownReport::stuck_workers`] without waiting. Otherwise (begun
    /// from another thread, or that worker done before the deadline, or
    /// stuck itself) it does not time out: race it against a deadline of
    /// your own. A daemon's kill stage is that deadline.
    pub async fn finished(&self) {
        let inner = &self.executor.inner;
        loop {
            let notified = inner.exit_notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so an exit in between wakes it.
            notified.as_mut().enable();
            if self.is_finished() || inner.watch.settled() {
                return;
            }
            notified.await;
        }
    }

    /// Waits for the workers to exit (what runs at the deadline is
    /// aborted), stops the blocking pool, and reports. Blocks the calling
    /// thread until the workers have exited or the deadline plus
    /// [`ABORT_GRACE`] has passed; after [`finished`](Self::finished) it
    /// does not block on the workers.
    ///
    /// A worker reports its exit after the last of its thread's own code,
    /// thread-local destructors included, has run (see worker.rs); only the
    /// kernel's teardown of the thread is left, so the thread is not
    /// joined (it was detached at start). Joining would wait for that
    /// teardown, 50 to 100 µs on a small VM, on every daemon's way out.
    ///
    /// # Errors
    ///
    /// [`ShutdownError::NotStarted`] before [`begin`](Self::begin);
    /// [`ShutdownError::CalledFromOwnWorker`] from a worker of this
    /// executor.
    pub fn wait(&self) -> Result<ShutdownReport, ShutdownError> {
        let inner = &self.executor.inner;
        let Some((started, deadline)) = *lock(&inner.shutdown_window) else {
            return Err(ShutdownError::NotStarted);
        };
        if let Some(worker) = self.executor.current_worker() {
            return Err(ShutdownError::CalledFromOwnWorker { worker });
        }
        let mut exited = {
            let exits = lock(&inner.exits);
            let mut exited = lock(&inner.exited);
            let give_up = deadline + ABORT_GRACE;
            while exited.iter().any(|done| !done) {
                let wait = give_up.saturating_duration_since(Instant::now());
                match exits.recv_timeout(wait) {
                    Ok(index) => exited[index] = true,
                    Err(_) => break,
                }
            }
            exited.clone()
        };
        let mut aborted_tasks = 0;
        let mut stuck_workers = Vec::new();
        for (worker, exited) in inner.workers.iter().zip(exited.drain(..)) {
            // A stuck worker's thread is left to the process's exit.
            if exited {
                aborted_tasks += worker.shared.aborted_at_deadline();
            } else {
                stuck_workers.push(worker.info.index);
            }
        }
        inner
            .blocking
            .shutdown(deadline.saturating_duration_since(Instant::now()));
        Ok(ShutdownReport {
            aborted_tasks,
            stuck_workers,
            elapsed: started.elapsed(),
        })
    }
}
