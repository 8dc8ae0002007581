//! Errors: one [`Error`] type for the whole crate, and its [`Result`] alias.
//!
//! Every error is meant to be acted on by the person running the daemon, so
//! each variant carries the context that action needs: the configuration key,
//! the value and where it came from; the file and the operation that failed;
//! the subsystem's name. `Display` renders that context as one sentence,
//! suitable for a log line or for `main` returning `Err`.
//!
//! ```
//! use proc_daemon::{Config, Error, ErrorKind};
//!
//! // The configuration returns its own `ConfigError`; `?` (or `From`)
//! // makes it an `Error` of kind `Config`.
//! let err: Error = Config::builder().name("").ignore_env().build().unwrap_err().into();
//! assert_eq!(err.kind(), ErrorKind::Config);
//! assert!(err.to_string().contains("`name`"));
//! ```

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use proc_daemon_actors::supervision::InvalidBackoff;
use proc_daemon_actors::{AskError, BoxError, SharedError, TellError};

pub use crate::config::{ConfigError, ConfigProblem};

/// `Result<T, proc_daemon::Error>`, returned by every fallible operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The coarse kind of an [`Error`], for callers that branch on it
/// (for example to choose an exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Configuration parsing or validation failed (the reference's `ConfigError`).
    Config,
    /// File I/O, signal registration or PID-file handling failed (`IoError`).
    Io,
    /// A subsystem failed to start, run or stop (`SubsystemError`).
    Subsystem,
    /// Shutdown coordination timed out or was aborted (`ShutdownError`).
    Shutdown,
    /// A profiler could not start or write its output (`ProfilingError`).
    Profiling,
}

/// The error type of proc-daemon.
///
/// Match on [`Error::kind`] for the coarse category; the variants carry the
/// details. The enum is `#[non_exhaustive]` so that new failure modes can be
/// added without breaking callers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid. Boxed: a `ConfigError` is large, and
    /// `Result<T>` should stay small on the happy path.
    #[error(transparent)]
    Config(Box<ConfigError>),

    /// An I/O operation failed.
    #[error("could not {action}{}: {source}", path_suffix(.path))]
    Io {
        /// What was being done, as a verb phrase ("read config file").
        action: String,
        /// The file or directory involved, if any.
        path: Option<PathBuf>,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The PID file is locked by another process: another instance of the
    /// daemon runs.
    #[error("PID file {} is locked by {}: another instance is running", .path.display(), holder(.pid))]
    PidFileLocked {
        /// The PID file.
        path: PathBuf,
        /// The pid written in the file, if it could be read.
        pid: Option<u32>,
    },

    /// A subsystem failed.
    #[error("subsystem `{name}` failed: {reason}")]
    Subsystem {
        /// The subsystem's name.
        name: String,
        /// What went wrong, in words.
        reason: String,
    },

    /// Every subsystem stopped in time, but some cleanups failed: their
    /// `run` returned an error or panicked after the shutdown began. Exit
    /// code [`EXIT_CLEANUP_FAILED`](crate::exit::EXIT_CLEANUP_FAILED).
    #[error("the shutdown completed, but cleanup failed in {}", describe_failures(.failures))]
    CleanupFailed {
        /// Each subsystem whose cleanup failed, and what happened
        /// (`"panicked: ..."`, `"failed: ..."`).
        failures: Vec<(String, String)>,
    },

    /// Shutdown did not complete as configured.
    #[error("shutdown did not complete cleanly: {reason}")]
    Shutdown {
        /// What went wrong, in words.
        reason: String,
    },

    /// A profiler failed.
    #[error("profiling failed: {reason}")]
    Profiling {
        /// What went wrong, in words.
        reason: String,
    },

    /// An error from application code, converted by `?` (an
    /// `std::io::Error`, a `toml` error, any boxed error) or by
    /// [`Error::other`]. It is kept whole: [`source`](std::error::Error::source)
    /// returns it, and a subsystem that fails with it hands the same value
    /// to its supervisor's events
    /// ([`ExitReason::error`](proc_daemon_actors::ExitReason::error)).
    #[error("{source}")]
    Other {
        /// The error, as it was. (A `Box`, not an `Arc`: `source()` must
        /// return the error itself, and an `Arc` would answer as the
        /// `Arc`.)
        source: BoxError,
    },
}

/// `` `a` (panicked: boom), `b` (failed: ...) ``: the subsystems whose
/// cleanup failed, for [`Error::CleanupFailed`] and a forced stop's error.
pub(crate) fn describe_failures(failures: &[(String, String)]) -> String {
    failures
        .iter()
        .map(|(name, what)| format!("`{name}` ({what})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn holder(pid: &Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "another process (its pid is not written yet)".to_owned(),
    }
}

fn path_suffix(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!(" {}", path.display()),
        None => String::new(),
    }
}

impl Error {
    /// The coarse category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Config,
            Error::Io { .. } | Error::PidFileLocked { .. } => ErrorKind::Io,
            Error::Subsystem { .. } | Error::CleanupFailed { .. } => ErrorKind::Subsystem,
            Error::Shutdown { .. } => ErrorKind::Shutdown,
            Error::Profiling { .. } => ErrorKind::Profiling,
            Error::Other { source } if source.is::<io::Error>() => ErrorKind::Io,
            Error::Other { source } if source.is::<ConfigError>() => ErrorKind::Config,
            Error::Other { .. } => ErrorKind::Subsystem,
        }
    }

    /// The process exit code for this error, as documented in
    /// [`crate::exit`]: [`EXIT_FORCED`](crate::exit::EXIT_FORCED) for
    /// a forced shutdown,
    /// [`EXIT_CLEANUP_FAILED`](crate::exit::EXIT_CLEANUP_FAILED) for a
    /// failed cleanup, [`EXIT_FAILURE`](crate::exit::EXIT_FAILURE) for
    /// everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Shutdown { .. } => crate::exit::EXIT_FORCED,
            Error::CleanupFailed { .. } => crate::exit::EXIT_CLEANUP_FAILED,
            _ => crate::exit::EXIT_FAILURE,
        }
    }

    /// The configuration error inside, if this is one.
    pub fn as_config(&self) -> Option<&ConfigError> {
        match self {
            Error::Config(err) => Some(err),
            _ => None,
        }
    }

    /// An I/O error with the action that failed and the path involved.
    pub fn io(action: impl Into<String>, path: Option<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action: action.into(),
            path,
            source,
        }
    }

    /// A subsystem error.
    pub fn subsystem(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Subsystem {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// A shutdown error.
    pub fn shutdown(reason: impl Into<String>) -> Self {
        Error::Shutdown {
            reason: reason.into(),
        }
    }

    /// A profiling error.
    pub fn profiling(reason: impl Into<String>) -> Self {
        Error::Profiling {
            reason: reason.into(),
        }
    }

    /// An application error of any type, kept whole ([`Error::Other`]):
    /// for error types `?` cannot convert by itself.
    ///
    /// ```
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("the queue is gone")]
    /// struct QueueGone;
    ///
    /// let err = proc_daemon::Error::other(QueueGone);
    /// let source = std::error::Error::source(&err).expect("kept whole");
    /// assert!(source.downcast_ref::<QueueGone>().is_some());
    /// ```
    pub fn other(error: impl Into<BoxError>) -> Self {
        Error::Other {
            source: error.into(),
        }
    }

    /// The error as a supervisor's events carry it: the application's own
    /// error for [`Error::Other`], this error otherwise.
    pub(crate) fn into_shared(self) -> SharedError {
        match self {
            Error::Other { source } => SharedError::from(source),
            other => Arc::new(other),
        }
    }
}

impl From<io::Error> for Error {
    /// `?` on an I/O error in a subsystem's body. The error is kept whole;
    /// [`Error::io`] adds what was being done and the path.
    fn from(err: io::Error) -> Self {
        Error::other(err)
    }
}

#[cfg(feature = "toml")]
impl From<toml::de::Error> for Error {
    /// `?` on a `toml` parse error (of the application's own data; the
    /// daemon's config errors are [`Error::Config`]).
    fn from(err: toml::de::Error) -> Self {
        Error::other(err)
    }
}

#[cfg(feature = "toml")]
impl From<toml::ser::Error> for Error {
    /// `?` on a `toml` serialisation error.
    fn from(err: toml::ser::Error) -> Self {
        Error::other(err)
    }
}

impl From<AskError> for Error {
    /// `?` on an ask, or on adding a child to a supervisor (which asks
    /// it), kept whole.
    fn from(err: AskError) -> Self {
        Error::other(err)
    }
}

impl<M: Send + Sync + 'static> From<TellError<M>> for Error {
    /// `?` on a tell to an actor that has stopped. The undelivered message
    /// stays inside the error.
    fn from(err: TellError<M>) -> Self {
        Error::other(err)
    }
}

impl From<InvalidBackoff> for Error {
    /// `?` on [`RestartPolicy::exponential_backoff`](crate::RestartPolicy::exponential_backoff).
    fn from(err: InvalidBackoff) -> Self {
        Error::other(err)
    }
}

impl From<BoxError> for Error {
    /// `?` on any boxed error (`Box<dyn Error + Send + Sync>`), kept whole.
    fn from(err: BoxError) -> Self {
        Error::Other { source: err }
    }
}

impl From<ConfigError> for Error {
    fn from(err: ConfigError) -> Self {
        Error::Config(Box::new(err))
    }
}
