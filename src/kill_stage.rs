//! The kill stage: the last resort of a staged shutdown, which exits the
//! process at `kill_timeout_ms` if it has still not finished.
//!
//! It must work when nothing else does (every worker stuck in blocking
//! code, the caller's runtime too), so it is a plain thread that sleeps on
//! a `timerfd`. One such thread serves every daemon of the process; it is
//! started with the first daemon and lives as long as the process.
//!
//! # Why a timerfd, and one thread
//!
//! The first version gave each daemon a thread that waited on a condition
//! variable: idle with no timeout, then with the deadlines once shutdown
//! began. Arming it woke it (to start its timed wait), and `run` woke it
//! again to end it. Both wake-ups fell on the busiest moments of the exit
//! path, on a 2-CPU machine where the thread competed with the workers
//! (docs/PERFORMANCE.md, "Daemon"). Here arming and disarming only
//! reprogram the timer (`timerfd_settime`): the thread wakes only when a
//! deadline passes, which on a clean exit is never. An idle daemon has no
//! wake-up from it either: the thread blocks in `read` with no timeout.
//!
//! # The two deadlines
//!
//! - **Give up waiting** (force deadline plus
//!   [`ABORT_GRACE`](proc_daemon_actors::executor::ABORT_GRACE)): a worker
//!   that has not exited by then is stuck in blocking code. `run` stops
//!   waiting for it, reports it and returns.
//! - **Kill** (`kill_timeout_ms`): the PID file is removed and the process
//!   exits with [`EXIT_KILLED`](crate::daemon::EXIT_KILLED).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::daemon::EXIT_KILLED;
use crate::lock::lock;
use crate::pid_file::PidFile;
use crate::shutdown::Token;
use crate::{Error, Result};

/// One daemon's kill stage.
#[derive(Debug)]
pub(crate) struct KillSwitch {
    entry: Arc<Entry>,
    timer: Arc<KillTimer>,
}

/// What the timer thread knows of one daemon.
#[derive(Debug)]
struct Entry {
    state: Mutex<KillState>,
    /// Cancelled at the give-up deadline.
    gave_up: Token,
    /// The PID file to remove before exiting: its path and the identity of
    /// the file the daemon locked.
    pid_file: Option<(PathBuf, (u64, u64))>,
}

/// Where one daemon's kill stage is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillState {
    /// Shutdown has not begun.
    Idle,
    /// Shutdown has begun: give up waiting for the workers at the first
    /// instant, exit the process at the second.
    Armed {
        give_up_at: Instant,
        kill_at: Instant,
    },
    /// Past the first deadline.
    GaveUp { kill_at: Instant },
    /// `run` finished, or the daemon was dropped.
    Disarmed,
}

impl KillState {
    /// The next deadline the timer must wake for.
    fn next_deadline(self) -> Option<Instant> {
        match self {
            KillState::Armed { give_up_at, .. } => Some(give_up_at),
            KillState::GaveUp { kill_at } => Some(kill_at),
            KillState::Idle | KillState::Disarmed => None,
        }
    }
}

/// The process's timer thread and the daemons it watches.
#[derive(Debug)]
struct KillTimer {
    /// A `timerfd` on `CLOCK_MONOTONIC`, the clock `Instant` reads.
    timer: OwnedFd,
    /// The armed daemons.
    armed: Mutex<Vec<Arc<Entry>>>,
}

static KILL_TIMER: OnceLock<std::result::Result<Arc<KillTimer>, String>> = OnceLock::new();

impl KillSwitch {
    /// A kill stage for a daemon holding `pid_file`, idle until
    /// [`arm`](Self::arm). The first call in a process starts the timer
    /// thread, so that starting a thread (a few hundred microseconds on a
    /// small VM) is never on the way out.
    pub(crate) fn start(pid_file: Option<&PidFile>) -> Result<Self> {
        let timer = KILL_TIMER
            .get_or_init(KillTimer::start)
            .as_ref()
            .map_err(|err| {
                Error::io(
                    "start the kill-stage timer",
                    None,
                    std::io::Error::other(err.clone()),
                )
            })?
            .clone();
        Ok(KillSwitch {
            entry: Arc::new(Entry {
                state: Mutex::new(KillState::Idle),
                gave_up: Token::default(),
                pid_file: pid_file.map(|p| (p.path().to_owned(), p.identity())),
            }),
            timer,
        })
    }

    /// Starts the countdown (only the first call counts, and none after
    /// [`disarm`](Self::disarm), which is final). Never wakes a
    /// thread: it reprograms the timer.
    pub(crate) fn arm(&self, give_up_at: Instant, kill_at: Instant) {
        {
            let mut state = lock(&self.entry.state);
            if *state != KillState::Idle {
                return;
            }
            *state = KillState::Armed {
                give_up_at,
                kill_at,
            };
        }
        let mut armed = lock(&self.timer.armed);
        armed.push(self.entry.clone());
        self.timer.reprogram(&armed);
    }

    /// Ends the countdown: the process will not be killed for this daemon.
    pub(crate) fn disarm(&self) {
        *lock(&self.entry.state) = KillState::Disarmed;
        let mut armed = lock(&self.timer.armed);
        let before = armed.len();
        armed.retain(|entry| !Arc::ptr_eq(entry, &self.entry));
        if armed.len() != before {
            self.timer.reprogram(&armed);
        }
    }

    /// Resolves once waiting for the workers should stop.
    pub(crate) async fn gave_up(&self) {
        self.entry.gave_up.cancelled().await;
    }
}

impl KillTimer {
    fn start() -> std::result::Result<Arc<KillTimer>, String> {
        // SAFETY: timerfd_create takes no pointers; a non-negative result
        // is a new descriptor that nothing else owns, so `OwnedFd` may take
        // it.
        let timer = unsafe {
            let fd = libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC);
            if fd < 0 {
                return Err(format!(
                    "timerfd_create: {}",
                    std::io::Error::last_os_error()
                ));
            }
            OwnedFd::from_raw_fd(fd)
        };
        let reader = timer
            .try_clone()
            .map_err(|err| format!("dup the timerfd: {err}"))?;
        let kill_timer = Arc::new(KillTimer {
            timer,
            armed: Mutex::new(Vec::new()),
        });
        let watcher = kill_timer.clone();
        std::thread::Builder::new()
            .name("daemon-kill-timer".into())
            .spawn(move || watcher.watch(File::from(reader)))
            .map_err(|err| format!("start the kill-stage timer thread: {err}"))?;
        Ok(kill_timer)
    }

    /// The timer thread: sleeps until the earliest deadline of any armed
    /// daemon, then acts on every deadline that has passed.
    fn watch(&self, mut expirations: File) {
        let mut count = [0u8; 8];
        loop {
            // Blocks with no timeout until the timer expires. `read_exact`
            // retries an interrupted read.
            if let Err(err) = expirations.read_exact(&mut count) {
                tracing::error!(%err, "the kill-stage timer failed; kill_timeout_ms is no longer enforced");
                return;
            }
            let now = Instant::now();
            let mut to_kill = None;
            let mut gave_up = Vec::new();
            {
                let mut armed = lock(&self.armed);
                for entry in armed.iter() {
                    let mut state = lock(&entry.state);
                    match *state {
                        KillState::Armed {
                            give_up_at,
                            kill_at,
                        } if now >= give_up_at => {
                            *state = KillState::GaveUp { kill_at };
                            gave_up.push(entry.clone());
                        }
                        KillState::GaveUp { kill_at } if now >= kill_at => {
                            to_kill = Some(entry.clone());
                        }
                        _ => {}
                    }
                }
                armed.retain(|entry| lock(&entry.state).next_deadline().is_some());
                self.reprogram(&armed);
            }
            for entry in gave_up {
                entry.gave_up.cancel();
            }
            if let Some(entry) = to_kill {
                tracing::error!(
                    code = EXIT_KILLED,
                    "kill timeout reached; exiting with work still running"
                );
                if let Some((path, identity)) = &entry.pid_file {
                    PidFile::remove(path, *identity);
                }
                std::process::exit(EXIT_KILLED);
            }
        }
    }

    /// Sets the timer to the earliest deadline of `armed`, or stops it.
    /// Called with the list locked, so the timer always matches it.
    fn reprogram(&self, armed: &[Arc<Entry>]) {
        let earliest = armed
            .iter()
            .filter_map(|entry| lock(&entry.state).next_deadline())
            .min();
        let value = match earliest {
            // A zero `it_value` would stop the timer: a deadline already
            // past fires in a nanosecond instead.
            Some(deadline) => deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_nanos(1)),
            None => Duration::ZERO,
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(value.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(value.subsec_nanos()),
            },
        };
        // SAFETY: `self.timer` is an open timerfd for as long as `self`
        // lives; `spec` is a valid `itimerspec` that the kernel only reads,
        // and a null old-value pointer is allowed.
        let rc = unsafe {
            libc::timerfd_settime(self.timer.as_raw_fd(), 0, &spec, std::ptr::null_mut())
        };
        if rc != 0 {
            tracing::error!(
                err = %std::io::Error::last_os_error(),
                "could not set the kill-stage timer; kill_timeout_ms may not be enforced"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `future` on a current-thread runtime.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    const FAR: Duration = Duration::from_secs(3600);

    #[test]
    fn the_give_up_deadline_fires_for_its_daemon_only() {
        let early = KillSwitch::start(None).unwrap();
        let late = KillSwitch::start(None).unwrap();
        let now = Instant::now();
        // Armed late one first: the timer must be moved to the earlier
        // deadline when the second daemon arms.
        late.arm(now + FAR, now + FAR);
        early.arm(now + Duration::from_millis(60), now + FAR);
        block_on(async {
            tokio::time::timeout(Duration::from_secs(5), early.gave_up())
                .await
                .expect("the give-up deadline fired");
        });
        assert!(now.elapsed() >= Duration::from_millis(60));
        assert!(!late.entry.gave_up.is_cancelled());
        early.disarm();
        late.disarm();
    }

    #[test]
    fn a_disarmed_daemon_never_gives_up() {
        let switch = KillSwitch::start(None).unwrap();
        let now = Instant::now();
        switch.arm(now + Duration::from_millis(50), now + FAR);
        switch.disarm();
        block_on(async {
            assert!(
                tokio::time::timeout(Duration::from_millis(300), switch.gave_up())
                    .await
                    .is_err(),
                "a disarmed kill stage fired"
            );
        });
    }

    #[test]
    fn only_the_first_arming_counts() {
        let switch = KillSwitch::start(None).unwrap();
        let now = Instant::now();
        switch.arm(now + Duration::from_millis(50), now + FAR);
        // A later arming with other deadlines is ignored.
        switch.arm(now + FAR, now + FAR);
        block_on(async {
            tokio::time::timeout(Duration::from_secs(5), switch.gave_up())
                .await
                .expect("the first deadlines hold");
        });
        switch.disarm();
    }
}
