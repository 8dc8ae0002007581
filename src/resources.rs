//! The process's own resource use, sampled with `sysinfo`: resident
//! memory, CPU and threads.
//!
//! ```
//! use proc_daemon::resources::ResourceTracker;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let tracker = ResourceTracker::new();
//! let sampling = tracker.clone();
//! let task = tokio::spawn(async move { sampling.start().await });
//!
//! let usage = tracker.current_usage();
//! assert!(usage.memory_mb > 0 && usage.thread_count >= 1);
//! task.abort();
//! # }
//! ```
//!
//! Only the current process is refreshed (never the whole process table),
//! which keeps a sample to a few reads of `/proc/self`: docs/PERFORMANCE.md
//! has the measured cost at a 1 s interval. A daemon with
//! `monitoring.track_resources` on runs one tracker at
//! `monitoring.metrics_interval_ms` and exports its figures as the
//! `proc_daemon_process_*` gauges.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::lock::lock;

/// One sample of the process's resource use.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct ResourceUsage {
    /// Resident memory, in MiB (rounded down).
    pub memory_mb: u64,
    /// Resident memory, in bytes.
    pub memory_bytes: u64,
    /// CPU used since the previous sample, in percent of one core (200
    /// is two cores busy). 0 in the first sample, which has nothing to
    /// compare with.
    pub cpu_percent: f64,
    /// Threads of the process.
    pub thread_count: usize,
}

/// Samples the process's resource use. A cheap clone: clones share the
/// samples. See the module docs.
#[derive(Clone)]
pub struct ResourceTracker {
    inner: Arc<Inner>,
}

struct Inner {
    pid: Pid,
    system: Mutex<System>,
    latest: Mutex<ResourceUsage>,
    interval_ms: AtomicU64,
}

impl std::fmt::Debug for ResourceTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceTracker")
            .field("interval", &self.interval())
            .field("latest", &self.current_usage())
            .finish()
    }
}

impl Default for ResourceTracker {
    fn default() -> Self {
        ResourceTracker::new()
    }
}

impl ResourceTracker {
    /// A tracker that samples every second once [`start`](Self::start)ed
    /// (`monitoring.metrics_interval_ms`'s default). It takes its first
    /// sample now, so [`current_usage`](Self::current_usage) has figures
    /// at once.
    pub fn new() -> ResourceTracker {
        ResourceTracker::with_interval(Duration::from_secs(1))
    }

    /// A tracker that samples every `interval` (at least 1 ms).
    pub fn with_interval(interval: Duration) -> ResourceTracker {
        let tracker = ResourceTracker {
            inner: Arc::new(Inner {
                pid: Pid::from_u32(std::process::id()),
                system: Mutex::new(System::new()),
                latest: Mutex::new(ResourceUsage::default()),
                interval_ms: AtomicU64::new(1000),
            }),
        };
        tracker.set_interval(interval);
        tracker.sample();
        tracker
    }

    /// Changes the sampling interval (at least 1 ms); a running
    /// [`start`](Self::start) uses it from its next sample on.
    pub fn set_interval(&self, interval: Duration) {
        let ms = u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.inner.interval_ms.store(ms, Ordering::Relaxed);
    }

    /// The sampling interval.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.inner.interval_ms.load(Ordering::Relaxed))
    }

    /// Samples at the interval until the task running it is dropped or
    /// aborted. Needs a tokio runtime (the daemon's workers, or the
    /// program's own).
    pub async fn start(&self) {
        loop {
            tokio::time::sleep(self.interval()).await;
            self.sample();
        }
    }

    /// The latest sample.
    pub fn current_usage(&self) -> ResourceUsage {
        *lock(&self.inner.latest)
    }

    /// Takes a sample now and returns it. (A sample reads `/proc/self`,
    /// and, to count threads, each thread's entry: run it off a busy
    /// worker if the process has thousands of threads.)
    pub fn sample(&self) -> ResourceUsage {
        let pid = self.inner.pid;
        let mut system = lock(&self.inner.system);
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing()
                .with_memory()
                .with_cpu()
                .with_tasks(),
        );
        let Some(process) = system.process(pid) else {
            // /proc is not mounted (or not readable): keep the last figures.
            return self.current_usage();
        };
        let memory_bytes = process.memory();
        let usage = ResourceUsage {
            memory_mb: memory_bytes / (1024 * 1024),
            memory_bytes,
            cpu_percent: f64::from(process.cpu_usage()),
            thread_count: process.tasks().map_or(1, |tasks| tasks.len().max(1)),
        };
        drop(system);
        *lock(&self.inner.latest) = usage;
        usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_sees_this_process_memory_threads_and_cpu() {
        let tracker = ResourceTracker::with_interval(Duration::from_millis(10));
        let first = tracker.current_usage();
        assert!(first.memory_bytes > 1024 * 1024, "{first:?}");
        // A second thread that spins, so that threads and CPU move.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spinner = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        };
        // sysinfo compares with the previous sample's CPU times, and skips
        // the comparison while those were zero (a fresh test process may
        // not have used a clock tick yet): the third sample has figures.
        std::thread::sleep(Duration::from_millis(250));
        tracker.sample();
        std::thread::sleep(Duration::from_millis(250));
        let busy = tracker.sample();
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        assert!(busy.thread_count >= 2, "{busy:?}");
        assert!(busy.cpu_percent > 30.0, "a spinning thread shows: {busy:?}");
    }
}
