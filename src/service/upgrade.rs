//! Upgrades with zero dropped connections: the running daemon starts its
//! successor (the same executable path, read again from disk, or another
//! one), hands it every listener, the control socket and the PID file as
//! inherited descriptors, waits until it is ready, and only then stops.
//!
//! # The hand-over
//!
//! The descriptors go the way systemd passes sockets (`LISTEN_FDS`,
//! `LISTEN_FDNAMES`, `LISTEN_PID`; `sd_listen_fds(3)`), so the successor
//! takes its listeners by name exactly as it would under socket
//! activation ([`tcp_listener`](super::tcp_listener)). Besides the
//! program's listeners, three names are the daemon's own:
//!
//! - `proc-daemon.control`: the control socket's listener, which the
//!   successor serves at the same path;
//! - `proc-daemon.pid-file`: the PID file's locked descriptor. A `flock`
//!   belongs to the open file, which both processes then share, so the
//!   lock is held throughout: there is no moment in which neither holds
//!   it, and the successor writes its own pid;
//! - `proc-daemon.upgrade-ready`: the write end of a pipe, on which the
//!   successor writes a newline once it is ready, as it would for s6.
//!
//! A listening socket is one socket in both processes: a connection the
//! kernel queued is accepted by whichever accepts first, and none is
//! refused while either listens. Once the successor is ready, this
//! process tells systemd its new main pid (`MAINPID=`), leaves the PID
//! file and the control socket to it, and begins its staged shutdown:
//! it stops accepting and drains what it had accepted.
//!
//! If the successor exits, or is not ready within
//! `service.upgrade_timeout_ms`, it is killed if still running, this
//! process keeps everything and goes on serving, and the error says what
//! happened.
//!
//! `LISTEN_PID` must name the successor, whose pid is only known after the
//! fork; it is started through `/bin/sh -c 'LISTEN_PID=$$ ... exec "$0"
//! "$@"'`, since `exec` keeps the shell's pid. Between fork and exec the
//! child only duplicates descriptors (`fcntl`, `dup2`), which is
//! async-signal-safe.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The name of the control socket's listener in a hand-over.
pub(crate) const CONTROL_NAME: &str = "proc-daemon.control";
/// The name of the PID file's descriptor in a hand-over.
pub(crate) const PID_FILE_NAME: &str = "proc-daemon.pid-file";
/// The name of the readiness pipe in a hand-over.
pub(crate) const READY_NAME: &str = "proc-daemon.upgrade-ready";

/// The most descriptors a hand-over carries.
const MAX_FDS: usize = 64;

/// What an upgrade did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpgradeReport {
    /// The successor's pid.
    pub pid: u32,
    /// The executable it runs.
    pub binary: PathBuf,
    /// From the start of the upgrade to the successor's readiness.
    pub took: Duration,
    /// The names of the descriptors it was handed.
    pub handed_over: Vec<String>,
}

/// Why an upgrade did not happen. The running daemon keeps serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// Another upgrade is under way.
    #[error("an upgrade is already in progress")]
    InProgress,
    /// The daemon is shutting down.
    #[error("the daemon is shutting down; it does not upgrade")]
    ShuttingDown,
    /// The successor could not be started.
    #[error("could not start {}: {source}", .binary.display())]
    Spawn {
        /// What was started.
        binary: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The successor ended before it was ready.
    #[error(
        "the new process (pid {pid}) ended before it was ready: {status}; this one goes on serving"
    )]
    Exited {
        /// Its pid.
        pid: u32,
        /// How it ended.
        status: String,
    },
    /// The successor was not ready in time, and was killed.
    #[error(
        "the new process (pid {pid}) was not ready within {timeout:?} and was killed; this one goes on serving"
    )]
    TimedOut {
        /// Its pid.
        pid: u32,
        /// `service.upgrade_timeout_ms`.
        timeout: Duration,
    },
    /// Preparing the hand-over failed.
    #[error("could not prepare the hand-over: {0}")]
    Io(#[from] io::Error),
}

/// What to start, and with what.
pub(crate) struct Successor<'a> {
    pub(crate) binary: &'a Path,
    pub(crate) args: &'a [OsString],
    /// Named descriptors to hand over (duplicates; closed here after the
    /// fork).
    pub(crate) fds: Vec<(String, OwnedFd)>,
    pub(crate) timeout: Duration,
}

/// Starts the successor and waits for its readiness (see the module
/// docs). Blocking: call it off the daemon's workers.
pub(crate) fn start(successor: Successor<'_>) -> Result<(u32, Vec<String>), UpgradeError> {
    let Successor {
        binary,
        args,
        mut fds,
        timeout,
    } = successor;
    let (ready_read, ready_write) = pipe()?;
    fds.push((READY_NAME.to_owned(), ready_write));
    if fds.len() > MAX_FDS {
        return Err(UpgradeError::Io(io::Error::other(format!(
            "{} descriptors to hand over; the most is {MAX_FDS}",
            fds.len()
        ))));
    }
    let names: Vec<String> = fds.iter().map(|(name, _)| name.clone()).collect();
    let raw: Vec<RawFd> = fds.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(r#"LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@""#)
        .arg(binary)
        .args(args)
        .env("LISTEN_FDS", raw.len().to_string())
        .env("LISTEN_FDNAMES", names.join(":"))
        .env_remove("LISTEN_PID")
        // systemd's variables as this process read them (it may have
        // removed them from its environment); the watchdog's pid is the
        // successor's once systemd hears MAINPID.
        .env_remove("WATCHDOG_PID")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        // s6's fd was this process's; the successor reports to the pipe.
        .env_remove("DAEMON_SERVICE_NOTIFICATION_FD");
    let env = super::notify::environment();
    if let Some(socket) = &env.notify_socket {
        command.env("NOTIFY_SOCKET", socket.raw());
    }
    if let Some(interval) = env.watchdog {
        command.env("WATCHDOG_USEC", interval.as_micros().to_string());
    }
    // SAFETY: the closure runs in the child between fork and exec. It
    // only calls fcntl and dup2, which are async-signal-safe, on the
    // descriptor numbers copied into `raw` before the fork; it allocates
    // nothing (the error it may return is built from errno alone).
    unsafe {
        command.pre_exec(move || place_fds(&raw));
    }
    let child = command.spawn().map_err(|source| UpgradeError::Spawn {
        binary: binary.to_owned(),
        source,
    })?;
    // The child has its copies; closing ours (the write end above all)
    // lets a child that dies show as the end of the pipe.
    drop(fds);
    let pid = child.id();
    wait_ready(ready_read, child, timeout)?;
    Ok((pid, names))
}

/// Puts `fds` at 3, 4, ... in the child (see `start`'s SAFETY).
fn place_fds(fds: &[RawFd]) -> io::Result<()> {
    let first = 3;
    let count = RawFd::try_from(fds.len()).unwrap_or(RawFd::MAX);
    let mut moved = [0 as RawFd; MAX_FDS];
    // Above the targets first, so that no target overwrites a source.
    for (slot, &fd) in moved.iter_mut().zip(fds) {
        // SAFETY: fcntl on a descriptor the child inherited.
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, first + count) };
        if copy < 0 {
            return Err(io::Error::last_os_error());
        }
        *slot = copy;
    }
    for (target, &copy) in (first..).zip(&moved[..fds.len()]) {
        // SAFETY: dup2 between descriptors of the child; the copies are
        // close-on-exec, the targets are not.
        if unsafe { libc::dup2(copy, target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A pipe, both ends close-on-exec.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut ends = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just opened by pipe2 and are owned by nothing
    // else.
    Ok(unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) })
}

/// Waits for a byte on `ready` (readiness), the end of the pipe (the
/// successor is gone), or the timeout (the successor is killed).
fn wait_ready(ready: OwnedFd, mut child: Child, timeout: Duration) -> Result<(), UpgradeError> {
    let pid = child.id();
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(UpgradeError::TimedOut { pid, timeout });
        }
        let mut poll = libc::pollfd {
            fd: ready.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let wait_ms = libc::c_int::try_from(left.as_millis().min(100)).unwrap_or(100);
        // SAFETY: poll reads and writes one pollfd, a live local.
        let polled = unsafe { libc::poll(&mut poll, 1, wait_ms) };
        if polled < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err.into());
        }
        if polled == 0 {
            continue;
        }
        let mut byte = 0u8;
        // SAFETY: read writes at most one byte into a live local.
        let read = unsafe { libc::read(ready.as_raw_fd(), (&raw mut byte).cast(), 1) };
        if read == 1 {
            return Ok(());
        }
        if read < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        // The end of the pipe: the successor is gone, or closed it
        // without a word (then it is killed at the deadline).
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Err(UpgradeError::Exited {
                        pid,
                        status: status.to_string(),
                    });
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(UpgradeError::TimedOut { pid, timeout });
                }
            }
        }
    }
}
