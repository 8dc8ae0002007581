//! The kill stage: the last resort of a staged shutdown, which ends the
//! process at `kill_timeout_ms` if it has still not finished.
//!
//! It must work when nothing else does: every worker stuck in blocking
//! code, the caller's runtime too, a lock held by a thread that will never
//! let it go. So no thread of the process runs any of its code before the
//! deadline, and at the deadline only a signal handler runs, calling
//! async-signal-safe functions and nothing else:
//!
//! - One POSIX timer per process (`timer_create` on `CLOCK_MONOTONIC`, the
//!   clock `Instant` reads), set to the earliest kill deadline of the
//!   armed daemons, sends a realtime signal. The kernel delivers it to a
//!   thread that does not block it, interrupting whatever that thread was
//!   doing, blocked or not.
//! - The handler checks that a deadline has really passed (a signal sent
//!   just before a disarm arrives late, and is ignored), removes the PID
//!   file of every armed daemon (if the path still names the file the
//!   daemon locked), writes one line to stderr and calls
//!   `_exit(EXIT_KILLED)`.
//! - A second timer sends SIGKILL [`BACKSTOP`] later: should every thread
//!   block the realtime signal, or no realtime signal be free, nothing can
//!   block or catch that one. The process then ends by signal 9 and the PID
//!   file stays, as after a crash (the next instance takes it over).
//!
//! The process claims one realtime signal for this, the highest one from
//! `SIGRTMAX` down that has no handler when the first daemon starts.
//!
//! # Why no thread
//!
//! The previous kill stage was a thread per process that slept on a
//! `timerfd`. It never woke on a clean exit, but the process's exit had to
//! wake it to end it: on a 2-vCPU VM, a process without that thread exits
//! about 20 µs sooner (docs/performance-history.md, "Daemon"). Its way out also took
//! locks: `tracing` to log, `process::exit` to run exit handlers, either
//! of which a stuck thread may hold. A timer and a signal need neither a
//! thread nor a lock, and the kernel's own SIGKILL stands behind them.
//!
//! The other deadline of a shutdown, after which `run` stops waiting for a
//! worker stuck in blocking code, is the executor's
//! (`proc_daemon_actors::executor`, watch.rs): the worker that began the
//! executor's shutdown gives up on the others.

use std::ffi::{CString, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::exit::EXIT_KILLED;
use crate::lock::lock;
use crate::pid_file::PidFile;
use crate::{Error, Result};

/// How long after the kill deadline the SIGKILL backstop fires, if the
/// realtime signal's handler has not ended the process by then.
const BACKSTOP: Duration = Duration::from_millis(500);

/// The line the handler writes to stderr before it exits.
const KILL_MESSAGE: &[u8] =
    b"proc-daemon: kill_timeout_ms reached with work still running; exiting\n";

/// One daemon's kill stage.
#[derive(Debug)]
pub(crate) struct KillSwitch {
    entry: Arc<Entry>,
    timers: &'static KillTimers,
}

/// What the kill stage knows of one daemon.
#[derive(Debug)]
struct Entry {
    state: Mutex<KillState>,
    /// The daemon's PID file, for the handler to remove.
    pid_file: Option<&'static PidTarget>,
    /// Set when an upgrade handed the PID file to the successor: it is
    /// the successor's to remove now.
    pid_file_handed_over: std::sync::atomic::AtomicBool,
}

/// Where one daemon's kill stage is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillState {
    /// Shutdown has not begun.
    Idle,
    /// Shutdown has begun: the process exits at `kill_at`.
    Armed { kill_at: Instant },
    /// `run` finished, or the daemon was dropped.
    Disarmed,
}

/// The process's two timers and the daemons they serve.
#[derive(Debug)]
struct KillTimers {
    /// Sends the claimed realtime signal; `None` if none was free.
    graceful: Option<PosixTimer>,
    /// Sends SIGKILL, [`BACKSTOP`] after the deadline.
    backstop: PosixTimer,
    /// The armed daemons.
    armed: Mutex<Vec<Arc<Entry>>>,
}

/// The earliest kill deadline of the armed daemons, in nanoseconds of
/// `CLOCK_MONOTONIC`, or `u64::MAX` when none is armed. The handler reads
/// it; it is written (with the timers) under the `armed` lock.
static KILL_AT_NS: AtomicU64 = AtomicU64::new(u64::MAX);

static KILL_TIMERS: OnceLock<std::result::Result<KillTimers, String>> = OnceLock::new();

impl KillSwitch {
    /// A kill stage for a daemon holding `pid_file`, idle until
    /// [`arm`](Self::arm). The first call in a process claims the signal
    /// and creates the timers.
    pub(crate) fn start(pid_file: Option<&PidFile>) -> Result<Self> {
        let timers = KILL_TIMERS
            .get_or_init(KillTimers::create)
            .as_ref()
            .map_err(|err| {
                Error::io(
                    "set up the kill stage",
                    None,
                    std::io::Error::other(err.clone()),
                )
            })?;
        Ok(KillSwitch {
            entry: Arc::new(Entry {
                state: Mutex::new(KillState::Idle),
                pid_file: pid_file.and_then(PidTarget::publish),
                pid_file_handed_over: std::sync::atomic::AtomicBool::new(false),
            }),
            timers,
        })
    }

    /// Starts the countdown to `kill_at` (only the first call counts, and
    /// none after [`disarm`](Self::disarm), which is final). Never wakes a
    /// thread: it sets the timers.
    pub(crate) fn arm(&self, kill_at: Instant) {
        {
            let mut state = lock(&self.entry.state);
            if *state != KillState::Idle {
                return;
            }
            *state = KillState::Armed { kill_at };
        }
        if let Some(target) = self.entry.pid_file
            && !self.entry.pid_file_handed_over.load(Ordering::SeqCst)
        {
            target.armed.store(true, Ordering::SeqCst);
        }
        let mut armed = lock(&self.timers.armed);
        armed.push(self.entry.clone());
        self.timers.reprogram(&armed);
    }

    /// The PID file now belongs to an upgrade's successor: the kill stage
    /// no longer removes it.
    pub(crate) fn hand_over_pid_file(&self) {
        self.entry
            .pid_file_handed_over
            .store(true, Ordering::SeqCst);
        if let Some(target) = self.entry.pid_file {
            target.armed.store(false, Ordering::SeqCst);
        }
    }

    /// Ends the countdown: the process will not be killed for this daemon.
    pub(crate) fn disarm(&self) {
        *lock(&self.entry.state) = KillState::Disarmed;
        if let Some(target) = self.entry.pid_file {
            target.armed.store(false, Ordering::SeqCst);
        }
        let mut armed = lock(&self.timers.armed);
        let before = armed.len();
        armed.retain(|entry| !Arc::ptr_eq(entry, &self.entry));
        if armed.len() != before {
            self.timers.reprogram(&armed);
        }
    }
}

impl KillTimers {
    fn create() -> std::result::Result<KillTimers, String> {
        let graceful = match claim_realtime_signal() {
            Some(signal) => Some(
                PosixTimer::new(signal)
                    .map_err(|err| format!("timer_create for the kill signal: {err}"))?,
            ),
            None => {
                tracing::warn!(
                    "no realtime signal is free for the kill stage; at kill_timeout_ms the process is killed with SIGKILL"
                );
                None
            }
        };
        let backstop = PosixTimer::new(libc::SIGKILL)
            .map_err(|err| format!("timer_create for the SIGKILL backstop: {err}"))?;
        Ok(KillTimers {
            graceful,
            backstop,
            armed: Mutex::new(Vec::new()),
        })
    }

    /// Sets both timers (and the handler's deadline) to the earliest kill
    /// deadline of `armed`, or stops them. Called with the list locked, so
    /// they always match it.
    fn reprogram(&self, armed: &[Arc<Entry>]) {
        let earliest = armed
            .iter()
            .filter_map(|entry| match *lock(&entry.state) {
                KillState::Armed { kill_at } => Some(kill_at),
                KillState::Idle | KillState::Disarmed => None,
            })
            .min();
        let kill_at_ns = earliest.map(monotonic_ns_at);
        // The handler's deadline before the timers: a signal from the old
        // setting that arrives now is checked against the new one.
        KILL_AT_NS.store(kill_at_ns.unwrap_or(u64::MAX), Ordering::SeqCst);
        let backstop_delay = if self.graceful.is_some() {
            duration_ns(BACKSTOP)
        } else {
            0
        };
        let results = [
            self.graceful.as_ref().map(|timer| timer.set(kill_at_ns)),
            Some(
                self.backstop
                    .set(kill_at_ns.map(|ns| ns.saturating_add(backstop_delay))),
            ),
        ];
        for result in results.into_iter().flatten() {
            if let Err(err) = result {
                tracing::error!(%err, "could not set the kill-stage timer; kill_timeout_ms may not be enforced");
            }
        }
    }
}

/// A POSIX timer that sends one signal to the process when it expires.
#[derive(Debug)]
struct PosixTimer(libc::timer_t);

// SAFETY: a `timer_t` is an identifier the kernel gave the process, not a
// pointer into memory of ours; any thread may pass it to timer_settime.
unsafe impl Send for PosixTimer {}
// SAFETY: as above; timer_settime on one timer from several threads is
// serialised by the kernel (and here by the `armed` lock as well).
unsafe impl Sync for PosixTimer {}

impl PosixTimer {
    /// A timer on `CLOCK_MONOTONIC` that sends `signal` to the process. It
    /// lives as long as the process (it is never deleted).
    fn new(signal: c_int) -> std::io::Result<Self> {
        // SAFETY: an all-zero `sigevent` is a valid value to fill in.
        let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
        event.sigev_notify = libc::SIGEV_SIGNAL;
        event.sigev_signo = signal;
        let mut id: libc::timer_t = std::ptr::null_mut();
        // SAFETY: `event` and `id` are valid for the call; the kernel
        // reads the first and writes the second.
        let rc = unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut id) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(PosixTimer(id))
    }

    /// Fires once at `at_ns` (absolute, `CLOCK_MONOTONIC`), or never.
    fn set(&self, at_ns: Option<u64>) -> std::io::Result<()> {
        // A zero value stops the timer; a deadline is never 0 ns after
        // boot, and `monotonic_ns_at` returns at least 1.
        let value = at_ns.unwrap_or(0);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(value / 1_000_000_000).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::try_from(value % 1_000_000_000).unwrap_or(0),
            },
        };
        // SAFETY: `self.0` is a live timer (never deleted); `spec` is a
        // valid `itimerspec` the kernel only reads; a null old value is
        // allowed.
        let rc = unsafe {
            libc::timer_settime(self.0, libc::TIMER_ABSTIME, &spec, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// A daemon's PID file as the signal handler sees it: the path as a C
/// string and the identity of the file the daemon locked.
///
/// Targets form a list that only grows, of values that live as long as
/// the process, so that the handler can walk it at any moment without a
/// lock and without reading freed memory: one small allocation per daemon
/// that has a PID file, which a process usually runs once.
#[derive(Debug)]
struct PidTarget {
    path: CString,
    device: u64,
    inode: u64,
    /// Whether the daemon's kill stage is armed.
    armed: AtomicBool,
    next: OnceLock<&'static PidTarget>,
}

/// The first target; the rest hang off its `next`.
static PID_TARGETS: OnceLock<&'static PidTarget> = OnceLock::new();

impl PidTarget {
    /// Adds `pid_file` to the list. `None` for a path with a NUL byte,
    /// which no PID file can have.
    fn publish(pid_file: &PidFile) -> Option<&'static PidTarget> {
        let (device, inode) = pid_file.identity();
        let target: &'static PidTarget = Box::leak(Box::new(PidTarget {
            path: CString::new(pid_file.path().as_os_str().as_bytes()).ok()?,
            device,
            inode,
            armed: AtomicBool::new(false),
            next: OnceLock::new(),
        }));
        // Append at the tail: a lost race to fill a `next` just moves on
        // to the one that won.
        let mut slot = &PID_TARGETS;
        loop {
            match slot.set(target) {
                Ok(()) => return Some(target),
                Err(_) => {
                    slot = &slot
                        .get()
                        .expect("a slot that refused a value holds one")
                        .next;
                }
            }
        }
    }

    /// Removes the file if the path still names the file that was locked.
    /// Async-signal-safe: `stat` and `unlink` only.
    fn remove_if_ours(&self) {
        // SAFETY: an all-zero `stat` is a valid value for stat(2) to fill.
        let mut now: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is a NUL-terminated string that lives as long as
        // the process; `now` is valid for writing.
        if unsafe { libc::stat(self.path.as_ptr(), &mut now) } != 0 {
            return;
        }
        if (now.st_dev, now.st_ino) == (self.device, self.inode) {
            // SAFETY: as above.
            unsafe { libc::unlink(self.path.as_ptr()) };
        }
    }
}

/// Installs the kill handler on the highest realtime signal that has no
/// handler, and returns it; `None` if none is free.
fn claim_realtime_signal() -> Option<c_int> {
    for signal in (libc::SIGRTMIN()..=libc::SIGRTMAX()).rev() {
        // SAFETY: an all-zero `sigaction` is a valid value to fill in.
        let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: queries the disposition only (null new action); `current`
        // is valid for writing.
        if unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) } != 0
            || current.sa_sigaction != libc::SIG_DFL
        {
            continue;
        }
        // SAFETY: as above.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_kill_signal as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        // SAFETY: `sa_mask` is a valid `sigset_t` to fill: every signal is
        // blocked while the handler runs.
        unsafe { libc::sigfillset(&mut action.sa_mask) };
        // SAFETY: `action` is a fully initialised disposition whose handler
        // is an `extern "C"` function of the signature SA_SIGINFO expects,
        // and it only calls async-signal-safe functions.
        if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } == 0 {
            return Some(signal);
        }
    }
    None
}

/// The kill signal's handler. Async-signal-safe: atomic loads,
/// `clock_gettime`, `stat`, `unlink`, `write` and `_exit`.
extern "C" fn on_kill_signal(_signal: c_int, _info: *mut libc::siginfo_t, _context: *mut c_void) {
    let deadline = KILL_AT_NS.load(Ordering::SeqCst);
    if deadline == u64::MAX || monotonic_ns() < deadline {
        // Sent for a deadline that was moved or disarmed since.
        return;
    }
    let mut next = PID_TARGETS.get();
    while let Some(target) = next {
        if target.armed.load(Ordering::SeqCst) {
            target.remove_if_ours();
        }
        next = target.next.get();
    }
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the message is
    // static. A failed write changes nothing: the process exits anyway.
    unsafe {
        libc::write(2, KILL_MESSAGE.as_ptr().cast(), KILL_MESSAGE.len());
        libc::_exit(EXIT_KILLED);
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds. Async-signal-safe.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is valid for writing; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    u64::try_from(now.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(now.tv_nsec).unwrap_or(0))
}

/// `at` on `CLOCK_MONOTONIC` (the clock `Instant` reads on Linux), in
/// nanoseconds, and never 0.
fn monotonic_ns_at(at: Instant) -> u64 {
    let now_ns = monotonic_ns();
    let ahead = at.saturating_duration_since(Instant::now());
    now_ns.saturating_add(duration_ns(ahead)).max(1)
}

fn duration_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn armed_deadline() -> u64 {
        KILL_AT_NS.load(Ordering::SeqCst)
    }

    /// Nothing may fire in a test process, so these use deadlines an hour
    /// or more away, and check what the handler would read.
    #[test]
    fn the_handler_reads_the_earliest_armed_deadline_and_nothing_once_disarmed() {
        let dir = tempfile::tempdir().unwrap();
        let held = PidFile::acquire(dir.path().join("kill.pid")).unwrap();
        let early = KillSwitch::start(Some(&held)).unwrap();
        let late = KillSwitch::start(None).unwrap();
        let now = Instant::now();
        late.arm(now + 2 * HOUR);
        let after_late = armed_deadline();
        early.arm(now + HOUR);
        let after_early = armed_deadline();
        assert!(
            after_early < after_late,
            "the earlier daemon moves the deadline"
        );
        let expected = monotonic_ns_at(now + HOUR);
        assert!(
            after_early.abs_diff(expected) < 50_000_000,
            "within 50 ms of an hour from now: {after_early} against {expected}"
        );
        let target = early.entry.pid_file.expect("published");
        assert!(target.armed.load(Ordering::SeqCst));

        // A later arming of the same daemon is ignored.
        early.arm(now + 3 * HOUR);
        assert_eq!(armed_deadline(), after_early);

        early.disarm();
        assert!(!target.armed.load(Ordering::SeqCst));
        // Converted from `Instant` again: equal within the conversion's
        // jitter.
        assert!(
            armed_deadline().abs_diff(after_late) < 1_000_000,
            "back to the other daemon's"
        );
        late.disarm();
        assert_eq!(armed_deadline(), u64::MAX, "nothing armed");
        // Disarming is final.
        late.arm(now + HOUR);
        assert_eq!(armed_deadline(), u64::MAX);
    }

    #[test]
    fn a_pid_target_is_removed_only_while_it_names_the_locked_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("target.pid");
        let held = PidFile::acquire(&path).unwrap();
        let target = PidTarget::publish(&held).unwrap();
        // Replaced by another file at the same path: left alone.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "someone else's\n").unwrap();
        target.remove_if_ours();
        assert!(path.exists());
        std::fs::remove_file(&path).unwrap();
        drop(held);

        let held = PidFile::acquire(&path).unwrap();
        let target = PidTarget::publish(&held).unwrap();
        target.remove_if_ours();
        assert!(!path.exists(), "the locked file is removed");
        // And the list holds both, in order of publication.
        let mut count = 0;
        let mut next = PID_TARGETS.get();
        while let Some(item) = next {
            count += 1;
            next = item.next.get();
        }
        assert!(count >= 2);
    }
}
