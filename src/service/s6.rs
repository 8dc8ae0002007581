//! s6's readiness notification: `s6-supervise` opens a pipe at the file
//! descriptor named by the service directory's `notification-fd` file;
//! the daemon writes a newline to it once it is ready, then closes it
//! (`s6-svwait -U` returns then). The fd is `service.notification_fd`.
//!
//! The fd is checked at start: it must be open, writable and a pipe (what
//! s6 passes). A number that names something else, such as a descriptor
//! the program opened itself because no supervisor passed one, is an error
//! at start rather than a newline written into the wrong file. It is
//! marked close-on-exec, so child processes do not inherit it.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

use crate::Result;
use crate::config::{ConfigError, ConfigProblem};
use crate::lock::lock;

/// The fd, until readiness is written and it is closed.
#[derive(Debug)]
pub(crate) struct ReadinessFd {
    pipe: Mutex<Option<std::fs::File>>,
    number: Option<i32>,
}

impl ReadinessFd {
    /// Checks and takes `fd` (see the module docs).
    pub(crate) fn open(fd: Option<i32>) -> Result<ReadinessFd> {
        let Some(number) = fd else {
            return Ok(ReadinessFd {
                pipe: Mutex::new(None),
                number: None,
            });
        };
        let refuse = |reason: String| -> crate::Error {
            ConfigError::new(
                Some("service.notification_fd"),
                Some(number.to_string()),
                None,
                ConfigProblem::Invalid { reason },
            )
            .into()
        };
        // SAFETY: fcntl(F_GETFL) and fstat only read the state of a
        // descriptor number; an unused number is an EBADF error, not UB.
        let flags = unsafe { libc::fcntl(number, libc::F_GETFL) };
        if flags < 0 {
            return Err(refuse(format!(
                "fd {number} is not open: {} (is the daemon run by s6-supervise with `notification-fd` containing {number}?)",
                std::io::Error::last_os_error()
            )));
        }
        if flags & libc::O_ACCMODE == libc::O_RDONLY {
            return Err(refuse(format!(
                "fd {number} is open read-only; s6's notification fd is the write end of a pipe"
            )));
        }
        // SAFETY: `stat` is a plain C struct for which all zeroes is a
        // valid value; fstat writes into it.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above, with a pointer to a live local.
        if unsafe { libc::fstat(number, &mut stat) } != 0
            || stat.st_mode & libc::S_IFMT != libc::S_IFIFO
        {
            return Err(refuse(format!(
                "fd {number} is not a pipe; s6 passes the notification fd as a pipe, so this number names something else"
            )));
        }
        // SAFETY: F_SETFD only changes the close-on-exec flag of the
        // descriptor checked open above.
        unsafe { libc::fcntl(number, libc::F_SETFD, libc::FD_CLOEXEC) };
        // SAFETY: the descriptor is open, is the pipe s6 passed for this
        // purpose (checked above), and nothing else in the process owns
        // it: the configuration hands it to the daemon, which closes it
        // once.
        let pipe = unsafe { std::fs::File::from_raw_fd(number) };
        Ok(ReadinessFd {
            pipe: Mutex::new(Some(pipe)),
            number: Some(number),
        })
    }

    /// The readiness pipe a daemon that is upgrading handed over (see
    /// `upgrade.rs`), or none.
    pub(crate) fn handed_over(pipe: Option<OwnedFd>) -> ReadinessFd {
        ReadinessFd {
            number: pipe.as_ref().map(AsRawFd::as_raw_fd),
            pipe: Mutex::new(pipe.map(std::fs::File::from)),
        }
    }

    /// Whether an fd was configured.
    pub(crate) fn is_set(&self) -> bool {
        self.number.is_some()
    }

    /// Writes the newline and closes the fd; later calls do nothing.
    pub(crate) fn notify(&self) {
        let Some(mut pipe) = lock(&self.pipe).take() else {
            return;
        };
        match pipe.write_all(b"\n") {
            Ok(()) => {
                tracing::debug!(fd = ?self.number, "readiness written to s6's notification fd")
            }
            Err(err) => {
                tracing::warn!(fd = ?self.number, %err, "could not write readiness to s6's notification fd")
            }
        }
    }
}
