//! Scheduler hints (feature `scheduler-hints`): the process's nice value,
//! and timer slack on the executor's workers.
//!
//! ```no_run
//! use proc_daemon::{Config, scheduler};
//!
//! let config = Config::builder().process_priority(5).build()?;
//! // Every thread of the process at nice 5 (best-effort).
//! let applied = scheduler::apply_process_hints(&config);
//! println!("{applied:?}");
//! // 1 ns of timer slack on every executor worker (best-effort).
//! scheduler::apply_runtime_hints();
//! # Ok::<(), proc_daemon::Error>(())
//! ```
//!
//! # What each does
//!
//! - [`apply_process_hints`] sets the nice value from
//!   `performance.process_priority` (unset by default, -20 to 19) with the
//!   `setpriority(2)` system call, not a `renice` subprocess. On Linux a
//!   nice value belongs to a thread, so it is set on every thread of the
//!   process (`/proc/self/task`); threads made later inherit it from the
//!   thread that makes them.
//! - [`apply_runtime_hints`] sets the timer slack of every executor worker
//!   of the daemons in this process, and of the calling thread, to 1 ns
//!   (`prctl(PR_SET_TIMERSLACK)`). The kernel's default lets a timer fire
//!   up to 50 µs late so that wake-ups can be merged; a daemon whose
//!   workers wait on short timers (health checks, backoff, `ask`
//!   timeouts) gets them on time instead, at the cost of more wake-ups.
//!
//! Both are best-effort, as the reference says: a refusal (a lower nice
//! value needs `CAP_SYS_NICE`) is logged at debug level and the rest goes
//! on. Each returns what it did, so that nothing is a silent no-op.
//!
//! The `scheduler-hints-unix` flag of the reference turns on
//! `scheduler-hints`: on Linux, the only platform of this crate, the Unix
//! calls are the implementation.

use std::sync::Mutex;

use proc_daemon_actors::Executor;

use crate::Config;
use crate::lock::lock;

/// The executors of the daemons that run in this process, for
/// [`apply_runtime_hints`]. A daemon adds its own when it is built and
/// removes it when it has stopped.
static EXECUTORS: Mutex<Vec<Executor>> = Mutex::new(Vec::new());

pub(crate) fn register_executor(executor: &Executor) {
    lock(&EXECUTORS).push(executor.clone());
}

pub(crate) fn unregister_executor(executor: &Executor) {
    lock(&EXECUTORS).retain(|known| known != executor);
}

/// What [`apply_process_hints`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessHints {
    /// The nice value asked for (`performance.process_priority`); `None`
    /// when the key is unset, and nothing was changed.
    pub priority: Option<i32>,
    /// Threads whose nice value was set.
    pub threads_set: usize,
    /// Threads that refused, with the first reason.
    pub refused: Option<(usize, String)>,
}

/// Sets every thread of the process to `performance.process_priority`.
/// See the module docs.
pub fn apply_process_hints(config: &Config) -> ProcessHints {
    let Some(priority) = config.performance.process_priority else {
        tracing::debug!("performance.process_priority is unset: the nice value stays as it is");
        return ProcessHints {
            priority: None,
            threads_set: 0,
            refused: None,
        };
    };
    let mut hints = ProcessHints {
        priority: Some(priority),
        threads_set: 0,
        refused: None,
    };
    for tid in thread_ids() {
        // SAFETY: setpriority(2) with PRIO_PROCESS and a thread id of this
        // process; it reads no memory of ours.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, priority) };
        if rc == 0 {
            hints.threads_set += 1;
        } else {
            let err = std::io::Error::last_os_error();
            match &mut hints.refused {
                Some((count, _)) => *count += 1,
                None => hints.refused = Some((1, err.to_string())),
            }
        }
    }
    if let Some((count, why)) = &hints.refused {
        tracing::debug!(priority, refused = count, %why, "some threads kept their nice value (a lower value needs CAP_SYS_NICE)");
    } else {
        tracing::debug!(priority, threads = hints.threads_set, "nice value set");
    }
    hints
}

/// What [`apply_runtime_hints`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeHints {
    /// Executor workers whose timer slack is now 1 ns.
    pub workers_set: usize,
    /// Workers that could not be reached (their executor stopped) or
    /// refused.
    pub workers_missed: usize,
    /// Whether the calling thread's slack was set too.
    pub caller_set: bool,
}

/// Sets 1 ns of timer slack on every executor worker of the daemons in
/// this process, and on the calling thread. See the module docs.
pub fn apply_runtime_hints() -> RuntimeHints {
    let executors: Vec<Executor> = lock(&EXECUTORS).clone();
    let mut hints = RuntimeHints {
        workers_set: 0,
        workers_missed: 0,
        caller_set: set_timer_slack(),
    };
    for executor in executors {
        for worker in 0..executor.worker_count() {
            let done = executor
                .spawn_on(worker, async { set_timer_slack() })
                .ok()
                .and_then(|handle| handle.join().ok());
            if done == Some(true) {
                hints.workers_set += 1;
            } else {
                hints.workers_missed += 1;
            }
        }
    }
    tracing::debug!(?hints, "timer slack set to 1 ns");
    hints
}

fn set_timer_slack() -> bool {
    // SAFETY: prctl(2) with PR_SET_TIMERSLACK takes an integer argument
    // and reads no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!(err = %std::io::Error::last_os_error(), "timer slack refused");
    }
    rc == 0
}

/// The ids of this process's threads.
fn thread_ids() -> Vec<libc::id_t> {
    match std::fs::read_dir("/proc/self/task") {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(err) => {
            tracing::debug!(%err, "/proc/self/task is not readable: only the calling thread is set");
            // SAFETY: gettid(2) takes nothing and cannot fail.
            vec![unsafe { libc::gettid() } as libc::id_t]
        }
    }
}
